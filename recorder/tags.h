/*
 * tags.h: the calling thread's tags, as the sampling handler copies them.
 */
#ifndef CS_TAGS_H
#define CS_TAGS_H

#define CS_TAGS_MAX 240

/* Async-signal-safe: copies the calling thread's tags ("k=v,k=v", NUL-terminated) into OUT
 * (CS_TAGS_MAX + 1 bytes) and returns their length. */
int cs_tags_copy(char *out);

#endif
