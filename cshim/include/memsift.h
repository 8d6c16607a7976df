/*
 * memsift's annotation API, for programs that link against libmemsift.so.
 *
 * A program that must also run without memsift looks the function up
 * instead of linking it:
 *
 *     void (*snapshot)(const char *) =
 *         (void (*)(const char *))dlsym(RTLD_DEFAULT, "memsift_snapshot");
 *     if (snapshot) snapshot("after warm-up");
 */
#ifndef MEMSIFT_H
#define MEMSIFT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Marks this moment in the trace under `label` (at most 256 bytes kept), so
 * `memsift snapshots` and `memsift diff TRACE@label ...` can name it. Does
 * nothing when the process is not traced. Safe from any thread. */
void memsift_snapshot(const char *label);

#ifdef __cplusplus
}
#endif

#endif
