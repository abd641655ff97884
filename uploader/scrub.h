/*
 * scrub.h: keeps secrets out of every text the uploader gives back. An error line from
 * libcurl or a server may quote a URL, a header or a request back; before it reaches a log,
 * the database or a report, every known form of every secret in it becomes "***".
 */
#ifndef CS_SCRUB_H
#define CS_SCRUB_H

#include <stddef.h>

/* Every form of a secret that could show up in text from the server or libcurl: the
 * password, the password from the URL (raw and percent-decoded), the basic-auth token. */
typedef struct {
    const char *s[4];
    size_t n;
} cs_secrets;

/* Adds S (kept by pointer, not copied; NULL and "" are ignored) to the set. */
void cs_secrets_add(cs_secrets *sc, const char *s);

/* Copies SRC to DST (CAP bytes, NUL-terminated) as one printable line: every secret of SC
 * replaced by "***", control characters by spaces, invalid UTF-8 by '?', cut at a character
 * boundary with "..." when it does not fit. */
void cs_scrub_line(char *dst, size_t cap, const char *src, const cs_secrets *sc);

/* base64("USER:PASSWORD"), the token an Authorization: Basic header carries, so that it can
 * be scrubbed should a server echo it. Malloc'd (free it after wiping); NULL when out of
 * memory. */
char *cs_basic_token(const char *user, const char *password);

/* Wipes S and frees it (NULL is nothing). */
void cs_secret_free(char *s);

#endif
