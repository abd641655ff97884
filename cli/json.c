/*
 * json.c: JSON string output. Scripts parse what we print: never emit invalid JSON, whatever
 * bytes a symbol name or a command line holds.
 */
#include "json.h"

#include "../uploader/utf8.h"

void cs_json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
            p++;
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc(c, f);
            p++;
        } else {
            size_t n = cs_utf8_seq(p, 4); /* NUL-terminated */
            if (n) {
                fwrite(p, 1, n, f);
                p += n;
            } else {
                fputs("\\ufffd", f);
                p++;
            }
        }
    }
    fputc('"', f);
}

void cs_json_key(FILE *f, const char *key, int first)
{
    if (!first)
        fputc(',', f);
    cs_json_str(f, key);
    fputc(':', f);
}
