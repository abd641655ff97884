/*
 * guard.c: copies of memory that may be unmapped or freed under us (another thread's frames,
 * code objects that die between two reads), for the Python frame reader in signal handlers.
 *
 * Why not process_vm_readv on our own pid, which fails with EFAULT instead of faulting: it
 * costs one to five microseconds per call (it pins the pages), and a Python walk needs several;
 * a plain load costs nanoseconds and faults only on a torn chain, which is rare. The recovery
 * point is set per copy, so a fault never leaves a caller half-way through its own state.
 *
 * Must never: call memcpy (a sanitizer would check the source, which is not ours to vouch for,
 * and an intercepted memcpy is not async-signal-safe), allocate, or leave SIGSEGV/SIGBUS blocked
 * after a recovered fault.
 */
#include "guard.h"

#include <setjmp.h>
#include <signal.h>
#include <string.h>

static __thread sigjmp_buf *recovery __attribute__((tls_model("initial-exec")));

/* Word loads through volatile, uninstrumented: the compiler may neither turn the loop into a
 * memcpy call nor let AddressSanitizer judge memory that belongs to the interpreter. */
__attribute__((no_sanitize("address", "undefined"))) static void copy_words(uint8_t *dst,
                                                                            uint64_t src, size_t n)
{
    size_t i = 0;
    if (!(src & 7)) {
        for (; i + 8 <= n; i += 8) {
            uint64_t w = *(const volatile uint64_t *)(uintptr_t)(src + i);
            __builtin_memcpy(dst + i, &w, 8);
        }
    }
    for (; i < n; i++)
        dst[i] = *(const volatile uint8_t *)(uintptr_t)(src + i);
}

void cs_guard_unblock_fault_signals(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSEGV);
    sigaddset(&s, SIGBUS);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
}

__attribute__((no_sanitize("address", "undefined"))) static void store32(uint8_t *value,
                                                                         uint64_t dst, size_t n)
{
    (void)n;
    int32_t v;
    __builtin_memcpy(&v, value, sizeof v);
    __atomic_store_n((int32_t *)(uintptr_t)dst, v, __ATOMIC_RELAXED);
}

/* Runs OP(BUF, ADDR, N) under this thread's recovery point: 0, or -1 if it faulted. */
static int run_guarded(void (*op)(uint8_t *, uint64_t, size_t), uint8_t *buf, uint64_t addr,
                       size_t n)
{
    sigjmp_buf jb;
    sigjmp_buf *outer = recovery;
    if (sigsetjmp(jb, 0) != 0) {
        cs_guard_unblock_fault_signals(); /* left the fatal handler by a jump */
        recovery = outer;
        return -1;
    }
    recovery = &jb;
    op(buf, addr, n);
    recovery = outer;
    return 0;
}

int cs_guard_copy(void *dst, uint64_t src, size_t n)
{
    return run_guarded(copy_words, dst, src, n);
}

int cs_guard_store32(uint64_t dst, int32_t v)
{
    if (dst & 3)
        return -1;
    uint8_t value[sizeof v];
    __builtin_memcpy(value, &v, sizeof v);
    return run_guarded(store32, value, dst, sizeof v);
}

void cs_guard_recover(int sig)
{
    (void)sig;
    if (recovery)
        siglongjmp(*recovery, 1);
}
