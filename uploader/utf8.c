/*
 * utf8.c: UTF-8 validation and repair (see utf8.h).
 *
 * Must never: read past the N bytes it is given, or cut a character in two.
 */
#include "utf8.h"

#include <string.h>

size_t cs_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    if (c < 0xc2)
        return 0; /* a continuation byte, or the start of an overlong 2-byte form */
    if (c < 0xe0)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c < 0xf0) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
            return 0; /* overlong; a surrogate */
        return 3;
    }
    if (c < 0xf5) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
            return 0; /* overlong; past U+10FFFF */
        return 4;
    }
    return 0;
}

size_t cs_utf8_sanitize(char *dst, size_t max, const char *s, size_t n)
{
    static const char repl[] = "\xef\xbf\xbd"; /* U+FFFD */
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = cs_utf8_seq((const unsigned char *)s + i, n - i);
        const char *src = s + i;
        size_t w = k;
        if (k == 0) {
            src = repl;
            w = 3;
            k = 1;
        }
        if (w > max - o)
            break;
        memcpy(dst + o, src, w);
        o += w;
        i += k;
    }
    return o;
}
