/*
 * merge.h: where a thread's Python frames go in its native stack.
 *
 * The rule py-spy, austin and echion share: walking the native stack from the innermost
 * frame, every native frame of the evaluation loop (_PyEval_EvalFrameDefault, and its .cold
 * part) stands for the Python frames up to and including the next one marked as an entry
 * frame; it is replaced by them. Python frames left over when the native stack ends (an
 * unwind that stopped early) go at the outer end. Used by the writer and the crash helper.
 */
#ifndef CS_MERGE_H
#define CS_MERGE_H

#include <stdint.h>

typedef struct cs_merged {
    int python; /* 1: py[index], 0: native[index] */
    int index;
} cs_merged;

/* Whether the native function NAME is the evaluation loop. */
int cs_merge_is_eval(const char *name);

/* NATIVE_EVAL[i] says whether native frame i is an evaluation-loop frame; PY_ENTRY[j] whether
 * Python frame j is an entry frame. Writes the merged order (innermost first) into OUT
 * (room for nnative + npy) and returns its length. */
int cs_merge(const uint8_t *native_eval, int nnative, const uint8_t *py_entry, int npy,
             cs_merged *out);

#endif
