/*
 * labels.h: a profile's series labels as the server takes them. Pyroscope refuses a whole
 * profile for one bad label (a name it does not allow, a duplicate, invalid UTF-8, more than
 * its limits): what the caller gives is made acceptable here instead.
 */
#ifndef CS_LABELS_H
#define CS_LABELS_H

#include "push.h"

#include <stddef.h>

/* Server defaults (pkg/validation/limits.go): over these, the whole profile is refused. */
#define CS_MAX_LABELS    30
#define CS_MAX_NAME_LEN  1024
#define CS_MAX_VALUE_LEN 2048

typedef struct {
    char *name, *value; /* malloc'd */
} cs_wire_label;

/* The label set actually sent: names reduced to [A-Za-z0-9_.] (not starting with a digit),
 * values valid UTF-8 of at most CS_MAX_VALUE_LEN bytes, empty ones dropped, the first of
 * duplicates kept, __name__ and service_name first, at most CS_MAX_LABELS. Returns 0; -1
 * when IN lacks __name__ or service_name (*ERR says which); -2 when out of memory. */
int cs_labels_normalize(const cs_label *in, size_t nin, cs_wire_label **out, size_t *nout,
                        const char **err);

void cs_labels_free(cs_wire_label *l, size_t n);

#endif
