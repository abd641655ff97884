/*
 * labels.c: series labels made acceptable to the server (see labels.h).
 *
 * Must never: drop __name__ or service_name for the cap, send two labels of one name, or send
 * invalid UTF-8.
 */
#include "labels.h"

#include "utf8.h"

#include <stdlib.h>
#include <string.h>

/* A valid UTF-8 copy of s (see cs_utf8_sanitize) of at most max bytes. NULL when out of
 * memory. */
static char *utf8_sanitize_dup(const char *s, size_t max)
{
    size_t n = strlen(s);
    /* Each input byte yields at most 3 output bytes (U+FFFD), and never more than max. */
    size_t cap = n <= max / 3 ? n * 3 : max;
    char *out = malloc(cap + 1);
    if (out)
        out[cs_utf8_sanitize(out, cap, s, n)] = '\0';
    return out;
}

void cs_labels_free(cs_wire_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].name);
        free(l[i].value);
    }
    free(l);
}

/* Label names are reduced to what both APIs accept everywhere: [A-Za-z0-9_.], not starting
 * with a digit (Prometheus rules, plus '.' which ingest tag keys allow). */
static char *clean_name(const char *s)
{
    size_t n = strlen(s);
    if (n > CS_MAX_NAME_LEN - 1)
        n = CS_MAX_NAME_LEN - 1;
    char *out = malloc(n + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    if (s[0] >= '0' && s[0] <= '9')
        out[o++] = '_';
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.';
        out[o++] = ok ? c : '_';
    }
    out[o] = '\0';
    return out;
}

int cs_labels_normalize(const cs_label *in, size_t nin, cs_wire_label **out, size_t *nout,
                        const char **err)
{
    *out = NULL;
    *nout = 0;
    *err = NULL;
    if (nin && !in) {
        *err = "labels: NULL array";
        return -1;
    }
    cs_wire_label *all = calloc(nin ? nin : 1, sizeof *all);
    if (!all)
        return -2;
    size_t n = 0;
    for (size_t i = 0; i < nin; i++) {
        if (!in[i].name || !in[i].name[0] || !in[i].value || !in[i].value[0])
            continue;
        char *name = clean_name(in[i].name);
        if (!name)
            goto oom;
        int dup = 0;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(all[k].name, name) == 0;
        if (dup) {
            free(name);
            continue;
        }
        char *value = utf8_sanitize_dup(in[i].value, CS_MAX_VALUE_LEN);
        if (!value) {
            free(name);
            goto oom;
        }
        all[n].name = name;
        all[n].value = value;
        n++;
    }
    /* Reorder: required labels first, so that the cap never drops them. */
    static const char *const required[] = {"__name__", "service_name"};
    size_t front = 0;
    for (size_t r = 0; r < 2; r++) {
        size_t k = front;
        while (k < n && strcmp(all[k].name, required[r]) != 0)
            k++;
        if (k == n) {
            cs_labels_free(all, n);
            *err = r == 0 ? "labels: __name__ is required (e.g. process_cpu)"
                          : "labels: service_name is required";
            return -1;
        }
        cs_wire_label t = all[k];
        memmove(all + front + 1, all + front, (k - front) * sizeof *all);
        all[front++] = t;
    }
    while (n > CS_MAX_LABELS) {
        n--;
        free(all[n].name);
        free(all[n].value);
    }
    *out = all;
    *nout = n;
    return 0;
oom:
    cs_labels_free(all, n);
    return -2;
}
