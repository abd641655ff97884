/*
 * crashscope.h: the public C API of libcrashscope.so (preloaded or linked).
 *
 * Tags label the samples of the calling thread while they are pushed, like the Pyroscope
 * SDKs' tag wrappers: they show up as labels in the database and in uploads. Without the
 * recorder loaded, resolve the symbols weakly or with dlsym and skip the calls.
 */
#ifndef CRASHSCOPE_H
#define CRASHSCOPE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Pushes KEY=VALUE for the calling thread. Keys are letters, digits, '_' and '.'; a value may
 * not contain ',' or '='. Returns 0, or -1 (bad tag, or no room: 16 tags or 240 bytes per
 * thread), in which case nothing was pushed and no pop is owed. */
int crashscope_tag_push(const char *key, const char *value);
/* Pops the calling thread's most recent tag (nothing when there is none). */
void crashscope_tag_pop(void);

#ifdef __cplusplus
}
#endif

#endif
