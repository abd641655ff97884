/*
 * url.c: the server URL, taken apart (see url.h).
 *
 * Must never: quote the URL in an error (it may hold a password), or free a secret without
 * wiping it.
 */
#include "url.h"

#include "scrub.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void cs_url_free(cs_url *u)
{
    free(u->base);
    free(u->url_user);
    cs_secret_free(u->url_pass);
    cs_secret_free(u->url_pass_raw);
    memset(u, 0, sizeof *u);
}

static char *pct_decode_dup(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h1, h2;
        if (s[i] == '%' && i + 2 < n && (h1 = hexval(s[i + 1])) >= 0 &&
            (h2 = hexval(s[i + 2])) >= 0) {
            out[o++] = (char)(h1 * 16 + h2);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static char *strndup_or_null(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int cs_url_parse(const char *url, cs_url *u, const char **err)
{
    memset(u, 0, sizeof *u);
    *err = NULL;
    if (!url || !url[0]) {
        *err = "no server URL";
        return -1;
    }
    for (const char *p = url; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            *err = "server URL contains spaces or control characters";
            return -1;
        }
    }
    size_t slen;
    if (strncasecmp(url, "http://", 7) == 0)
        slen = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        slen = 8;
    else {
        *err = "server URL must start with http:// or https://";
        return -1;
    }
    const char *auth = url + slen;
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    if (strpbrk(rest, "?#")) {
        *err = "server URL must not contain a query string or fragment";
        return -1;
    }
    /* userinfo ends at the last '@' of the authority (a password may contain '@' only
     * percent-encoded, but be lenient). */
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    const char *host = at ? at + 1 : auth;
    size_t hlen = (size_t)(auth + alen - host);
    if (hlen == 0 || host[0] == ':') {
        *err = "server URL has no host";
        return -1;
    }
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
        u->url_user = pct_decode_dup(auth, ulen);
        if (!u->url_user)
            goto oom;
        if (colon) {
            size_t plen = (size_t)(at - colon - 1);
            u->url_pass = pct_decode_dup(colon + 1, plen);
            u->url_pass_raw = strndup_or_null(colon + 1, plen);
            if (!u->url_pass || !u->url_pass_raw)
                goto oom;
        }
    }
    size_t plen = strlen(rest);
    while (plen > 0 && rest[plen - 1] == '/')
        plen--; /* "http://h:4040/" and "...//" alike */
    u->base = malloc(slen + hlen + plen + 1);
    if (!u->base)
        goto oom;
    memcpy(u->base, url, slen);
    memcpy(u->base + slen, host, hlen);
    memcpy(u->base + slen + hlen, rest, plen);
    u->base[slen + hlen + plen] = '\0';
    return 0;
oom:
    cs_url_free(u);
    return -2;
}
