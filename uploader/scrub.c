/*
 * scrub.c: secrets out of error text (see scrub.h).
 *
 * Must never: let a secret through in any form it knows, leave a secret's bytes in memory it
 * frees, or print anything.
 */
#include "scrub.h"

#include "utf8.h"

#include <stdlib.h>
#include <string.h>

void cs_secrets_add(cs_secrets *sc, const char *s)
{
    if (s && s[0] && sc->n < sizeof sc->s / sizeof sc->s[0])
        sc->s[sc->n++] = s;
}

/* Secrets are replaced before cutting, so that a cut can never leave behind the prefix of a
 * secret that was whole in src. */
void cs_scrub_line(char *dst, size_t cap, const char *src, const cs_secrets *sc)
{
    size_t o = 0, n = strlen(src);
    int cut = 0;
    if (cap == 0)
        return;
    for (size_t i = 0; i < n && !cut;) {
        const char *piece = NULL;
        size_t plen = 0, adv = 0;
        for (size_t k = 0; k < sc->n; k++) {
            size_t sl = strlen(sc->s[k]);
            if (sl <= n - i && memcmp(src + i, sc->s[k], sl) == 0) {
                piece = "***";
                plen = 3;
                adv = sl;
                break;
            }
        }
        if (!piece) {
            unsigned char c = (unsigned char)src[i];
            if (c < 0x20 || c == 0x7f) {
                piece = " ";
                plen = adv = 1;
            } else {
                size_t k = cs_utf8_seq((const unsigned char *)src + i, n - i);
                if (k == 0) {
                    piece = "?";
                    plen = adv = 1;
                } else {
                    piece = src + i;
                    plen = adv = k;
                }
            }
        }
        if (o + plen + 1 > cap) {
            cut = 1;
            break;
        }
        memcpy(dst + o, piece, plen);
        o += plen;
        i += adv;
    }
    if (cut) {
        /* Make room for "..." by dropping whole characters. */
        while (o > 0 && o + 4 > cap) {
            do {
                o--;
            } while (o > 0 && ((unsigned char)dst[o] & 0xc0) == 0x80);
        }
        if (o + 4 <= cap) {
            memcpy(dst + o, "...", 3);
            o += 3;
        }
    }
    /* Trailing blanks say nothing. */
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}

char *cs_basic_token(const char *a, const char *b)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t la = strlen(a), lb = strlen(b), n = la + 1 + lb;
    unsigned char *in = malloc(n + 1);
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!in || !out) {
        free(in);
        free(out);
        return NULL;
    }
    memcpy(in, a, la);
    in[la] = ':';
    memcpy(in + la + 1, b, lb);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    /* The input held the password: do not leave it in freed memory. */
    memset(in, 0, n);
    free(in);
    return out;
}

void cs_secret_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}
