/*
 * merge.c: splices Python frames into a native stack (see merge.h). Pure computation on
 * arrays: no allocation, usable anywhere.
 */
#include "merge.h"

#include <string.h>

int cs_merge_is_eval(const char *name)
{
    static const char eval[] = "_PyEval_EvalFrameDefault";
    return name && !strncmp(name, eval, sizeof eval - 1) &&
           (name[sizeof eval - 1] == 0 || name[sizeof eval - 1] == '.');
}

int cs_merge(const uint8_t *native_eval, int nnative, const uint8_t *py_entry, int npy,
             cs_merged *out)
{
    int n = 0, j = 0;
    for (int i = 0; i < nnative; i++) {
        if (!native_eval[i] || j >= npy) {
            /* an evaluation-loop frame with no Python frame left keeps its native name */
            out[n++] = (cs_merged){0, i};
            continue;
        }
        while (j < npy) {
            out[n++] = (cs_merged){1, j};
            if (py_entry[j++])
                break;
        }
    }
    while (j < npy)
        out[n++] = (cs_merged){1, j++};
    return n;
}
