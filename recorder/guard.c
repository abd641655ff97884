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

int cs_guard_copy(void *dst, uint64_t src, size_t n)
{
    sigjmp_buf jb;
    sigjmp_buf *outer = recovery;
    if (sigsetjmp(jb, 0) != 0) {
        /* Left the fatal handler by a jump: the kernel's mask for it is still on. */
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGSEGV);
        sigaddset(&s, SIGBUS);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
        recovery = outer;
        return -1;
    }
    recovery = &jb;
    copy_words(dst, src, n);
    recovery = outer;
    return 0;
}

int cs_guard_store32(uint64_t dst, int32_t v)
{
    if (dst & 3)
        return -1;
    sigjmp_buf jb;
    sigjmp_buf *outer = recovery;
    if (sigsetjmp(jb, 0) != 0) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGSEGV);
        sigaddset(&s, SIGBUS);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
        recovery = outer;
        return -1;
    }
    recovery = &jb;
    __atomic_store_n((int32_t *)(uintptr_t)dst, v, __ATOMIC_RELAXED);
    recovery = outer;
    return 0;
}

void cs_guard_recover(int sig)
{
    (void)sig;
    if (recovery)
        siglongjmp(*recovery, 1);
}
