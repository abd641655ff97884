/*
 * url.h: the server URL a user configures, taken apart: http(s)://[user[:password]@]host
 * [:port][/prefix]. The credentials in it are lifted out (they travel in the Authorization
 * header, never in a URL sent), and what is left is the base every endpoint is appended to.
 */
#ifndef CS_URL_H
#define CS_URL_H

typedef struct {
    char *base;         /* scheme://host[:port][/prefix] without trailing '/' or userinfo */
    char *url_user;     /* from userinfo, percent-decoded, or NULL */
    char *url_pass;     /* idem; a secret */
    char *url_pass_raw; /* as written in the URL (still percent-encoded); a secret */
} cs_url;

/* Splits URL into U. Returns 0; -1 with a message in *ERR that never quotes the URL (it may
 * hold a password): no URL, spaces or control characters, a scheme other than http(s), a
 * query string or fragment, no host; or -2 when out of memory. U needs cs_url_free after 0
 * only. */
int cs_url_parse(const char *url, cs_url *u, const char **err);

/* Frees U's parts, wiping the secrets first. */
void cs_url_free(cs_url *u);

#endif
