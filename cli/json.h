/*
 * json.h: the little JSON output the CLI needs (no parsing).
 */
#ifndef CS_JSON_H
#define CS_JSON_H

#include <stdio.h>

/* Writes S as a JSON string (with quotes); NULL as null. Invalid UTF-8 bytes become U+FFFD. */
void cs_json_str(FILE *f, const char *s);
/* Writes "KEY": (with a leading comma unless FIRST). */
void cs_json_key(FILE *f, const char *key, int first);

#endif
