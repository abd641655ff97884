/* pprof.h: in-memory builder and encoder for Google pprof profiles (perftools.profiles.Profile,
 * profile.proto), as read by `go tool pprof` and Grafana Pyroscope. The wire format is
 * protobuf.c's, the gzip wrapper gzip.c's (zlib).
 *
 * Must never: keep global state, crash on NULL or malformed strings, leak on allocation
 * failure, or emit a profile that Pyroscope rejects (string_table[0] != "", an id of 0, a
 * value count that differs from the sample type count, '-' in a sample type name, invalid
 * UTF-8, symbols over 65535 bytes).
 *
 * Not thread-safe: one cs_pprof belongs to one thread at a time (or the caller locks). Not
 * async-signal-safe: it allocates, so never call it from a signal handler.
 */
#ifndef CS_PPROF_H
#define CS_PPROF_H

#include "alloc.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cs_pprof cs_pprof;

/* One stack frame. Any string may be NULL. address is module-relative, or 0 if unknown.
 * A frame with neither module nor build_id gets no Mapping. A frame without a function name
 * gets a synthetic one ("libfoo.so+0x1a2b", "0x1a2b" or "[unknown]") so that flame graphs
 * still tell frames apart. */
typedef struct {
    const char *function;
    const char *file;
    int64_t line;
    const char *module;
    const char *build_id;
    uint64_t address;
} cs_pprof_frame;

/* Per-sample label. str == NULL makes it a numeric label carrying num. A NULL key drops the
 * label. */
typedef struct {
    const char *key;
    const char *str;
    int64_t num;
} cs_pprof_label;

/* Creates an empty profile. Strings may be NULL (period_type is then omitted if both are
 * NULL). Returns NULL on allocation failure. */
cs_pprof *cs_pprof_new(const char *period_type, const char *period_unit, int64_t period,
                       int64_t time_nanos, int64_t duration_nanos);

/* As cs_pprof_new, but every allocation (including zlib's and the buffer cs_pprof_encode
 * returns) goes through *alloc, which is copied. alloc == NULL means malloc/realloc/free. */
cs_pprof *cs_pprof_new_with_alloc(const cs_alloc *alloc, const char *period_type,
                                  const char *period_unit, int64_t period, int64_t time_nanos,
                                  int64_t duration_nanos);

/* Declares the next value column. Must be called before the first cs_pprof_add_sample.
 * '-' in type is replaced by '_' (Pyroscope rejects it). Returns the column index, or -1
 * (errno EINVAL after samples were added, ENOMEM on allocation failure). */
int cs_pprof_add_sample_type(cs_pprof *p, const char *type, const char *unit);

/* Adds one sample. frames: leaf (innermost) first; may be empty. values: exactly one per
 * sample type, or NULL for all zeros. Identical frames (same function/file/line/module/
 * build_id/address) share one Location; same function+file share one Function; strings are
 * interned. Nothing is retained from the arguments. Returns 0, or -1 with errno ENOMEM (the
 * sample is not added, the profile stays valid) or EINVAL (no sample types declared yet,
 * NULL array with non-zero count). */
int cs_pprof_add_sample(cs_pprof *p, const cs_pprof_frame *frames, size_t nframes,
                        const int64_t *values, const cs_pprof_label *labels, size_t nlabels);

/* Serialises the profile into a newly allocated buffer (free() it, or the custom allocator's
 * free_fn). gzip != 0 wraps it in gzip, as pprof files on disk and Pyroscope uploads
 * normally are. The profile is not modified and may be encoded again or extended. Returns 0,
 * or -1 with errno ENOMEM/EINVAL, in which case *out and *out_len are untouched. */
int cs_pprof_encode(cs_pprof *p, int gzip, uint8_t **out, size_t *out_len);

/* Number of samples successfully added. */
size_t cs_pprof_sample_count(const cs_pprof *p);

/* Frees the profile and everything it owns. NULL is a no-op. */
void cs_pprof_free(cs_pprof *p);

#ifdef __cplusplus
}
#endif

#endif /* CS_PPROF_H */
