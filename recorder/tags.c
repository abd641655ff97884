/*
 * tags.c: per-thread tags pushed by the program (crashscope.h, or the Python tag_wrapper).
 *
 * The tags live in initial-exec TLS of the preloaded library, so the sampling handler can
 * read them without allocation. A push appends to the thread's string and a pop truncates it,
 * each finished by a compiler barrier before the length changes, so a handler landing in the
 * middle of either sees the old or the new tags, never a torn string.
 */
#include "tags.h"

#include "crashscope.h"
#include "shim.h"

#include <ctype.h>
#include <string.h>

#define MAX_DEPTH 16

typedef struct thread_tags {
    char buf[CS_TAGS_MAX + 1];
    volatile int len;
    int depth;
    int mark[MAX_DEPTH];
} thread_tags;

static __thread thread_tags tags __attribute__((tls_model("initial-exec")));

static int key_ok(const char *k)
{
    if (!*k || (k[0] == '_' && k[1] == '_'))
        return 0;
    for (; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '_' || *k == '.'))
            return 0;
    return 1;
}

CS_PUBLIC int crashscope_tag_push(const char *key, const char *value)
{
    if (!key || !value || !key_ok(key) || strpbrk(value, ",=\n") || tags.depth == MAX_DEPTH)
        return -1;
    size_t kl = strlen(key), vl = strlen(value);
    int at = tags.len;
    size_t need = (at ? 1 : 0) + kl + 1 + vl;
    if (at + need > CS_TAGS_MAX)
        return -1;
    char *p = tags.buf + at;
    if (at)
        *p++ = ',';
    memcpy(p, key, kl);
    p[kl] = '=';
    memcpy(p + kl + 1, value, vl);
    p[kl + 1 + vl] = 0;
    tags.mark[tags.depth++] = at;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    tags.len = at + (int)need;
    return 0;
}

CS_PUBLIC void crashscope_tag_pop(void)
{
    if (tags.depth == 0)
        return;
    int at = tags.mark[--tags.depth];
    tags.len = at;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    tags.buf[at] = 0;
}

int cs_tags_copy(char *out)
{
    int n = tags.len;
    if (n < 0 || n > CS_TAGS_MAX)
        n = 0;
    memcpy(out, tags.buf, (size_t)n);
    out[n] = 0;
    return n;
}
