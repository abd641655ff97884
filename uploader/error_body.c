/*
 * error_body.c: the message of an error response (see error_body.h). A minimal JSON reader,
 * only to find a top-level "message" string.
 *
 * Must never: read past the body it is given, recurse without bound (nesting is cut at 16),
 * or return a control character (escapes such as \n become spaces).
 */
#include "error_body.h"

#include <ctype.h>
#include <string.h>

static const char *js_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* The four hex digits of a JSON unicode escape, or -1. */
static long js_u4(const char *p, const char *e)
{
    if (e - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!isxdigit(c))
            return -1;
        v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* p at '"'. Decodes the string into out (cap bytes, NUL-terminated, silently cut) when out is
 * not NULL. Returns the position after the closing quote, or NULL if it is not a string. */
static const char *js_string(const char *p, const char *e, char *out, size_t cap)
{
    size_t o = 0;
    if (p >= e || *p != '"')
        return NULL;
    p++;
    while (p < e && *p != '"') {
        char buf[4];
        size_t n = 1;
        if (*p == '\\') {
            if (++p >= e)
                return NULL;
            switch (*p) {
            case 'n':
            case 'r':
            case 't':
            case 'b':
            case 'f': buf[0] = ' '; break;
            case 'u': {
                long cp = js_u4(p + 1, e);
                if (cp < 0)
                    return NULL;
                p += 4;
                if (cp >= 0xd800 && cp < 0xdc00 && e - p > 6 && p[1] == '\\' && p[2] == 'u') {
                    long lo = js_u4(p + 3, e);
                    if (lo >= 0xdc00 && lo < 0xe000) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        p += 6;
                    }
                }
                if (cp >= 0xd800 && cp < 0xe000)
                    cp = 0xfffd; /* lone surrogate */
                if (cp < 0x20)
                    cp = ' ';
                n = put_utf8(buf, (unsigned long)cp);
                break;
            }
            default: buf[0] = *p; break; /* \" \\ \/ */
            }
        } else {
            buf[0] = *p;
        }
        if (out && o + n < cap) {
            memcpy(out + o, buf, n);
            o += n;
        }
        p++;
    }
    if (p >= e)
        return NULL;
    if (out && cap)
        out[o < cap ? o : cap - 1] = '\0';
    return p + 1;
}

static const char *js_value(const char *p, const char *e, int depth)
{
    p = js_ws(p, e);
    if (p >= e || depth > 16)
        return NULL;
    if (*p == '"')
        return js_string(p, e, NULL, 0);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = js_ws(p + 1, e);
        if (p < e && *p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                p = js_string(js_ws(p, e), e, NULL, 0);
                if (!p)
                    return NULL;
                p = js_ws(p, e);
                if (p >= e || *p != ':')
                    return NULL;
                p++;
            }
            p = js_value(p, e, depth + 1);
            if (!p)
                return NULL;
            p = js_ws(p, e);
            if (p >= e)
                return NULL;
            if (*p == close)
                return p + 1;
            if (*p != ',')
                return NULL;
            p++;
        }
    }
    /* number, true, false, null */
    const char *s = p;
    while (p < e && !strchr(",}] \t\r\n", *p))
        p++;
    return p > s ? p : NULL;
}

/* Finds "message" in a top-level JSON object such as Connect's {"code":..,"message":..}. */
static int json_message(const char *body, size_t len, char *out, size_t cap)
{
    const char *p = body, *e = body + len;
    p = js_ws(p, e);
    if (p >= e || *p != '{')
        return 0;
    p = js_ws(p + 1, e);
    while (p < e && *p != '}') {
        char key[16];
        p = js_string(p, e, key, sizeof key);
        if (!p)
            return 0;
        p = js_ws(p, e);
        if (p >= e || *p != ':')
            return 0;
        p = js_ws(p + 1, e);
        if (strcmp(key, "message") == 0 && p < e && *p == '"')
            return js_string(p, e, out, cap) != NULL;
        p = js_value(p, e, 1);
        if (!p)
            return 0;
        p = js_ws(p, e);
        if (p < e && *p == ',')
            p = js_ws(p + 1, e);
    }
    return 0;
}

int cs_error_body_says(const char *body, size_t len, char *out, size_t cap)
{
    if (!cap)
        return 0;
    out[0] = '\0';
    if (json_message(body, len, out, cap))
        return out[0] != '\0';
    out[0] = '\0';
    const char *p = body;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (!*p || *p == '<' || *p == '{')
        return 0;
    size_t n = strcspn(p, "\r\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 1;
}
