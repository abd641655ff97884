/*
 * utf8.h: UTF-8 as Go (and so Pyroscope and go tool pprof) decodes it: no overlong forms, no
 * surrogates, nothing past U+10FFFF. A profile with one invalid string is refused whole, and
 * JSON readers reject what these reject, so every text that leaves crashscope goes through
 * here.
 */
#ifndef CS_UTF8_H
#define CS_UTF8_H

#include <stddef.h>

/* The length of the well-formed sequence at S (N bytes readable), or 0 when none starts
 * there. On a NUL-terminated string N may be 4 whatever is left: a NUL is never a
 * continuation byte, so nothing past it is read. */
size_t cs_utf8_seq(const unsigned char *s, size_t n);

/* Copies N bytes of S to DST as valid UTF-8, each invalid byte replaced by U+FFFD, and stops
 * at the last whole character that fits in MAX bytes. Returns the bytes written (no NUL
 * added). */
size_t cs_utf8_sanitize(char *dst, size_t max, const char *s, size_t n);

#endif
