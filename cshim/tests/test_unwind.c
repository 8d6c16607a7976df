/*
 * Stacks the fast unwinder (src/unwind.c) must get exactly as libunwind
 * does. Run under a shim built with -DMS_UNWIND_CHECK (make test-unwind):
 * every allocation's stack is then unwound both ways, and a difference
 * traps (the test dies of SIGILL/SIGTRAP).
 *
 * The hazards: frames with and without frame pointers (libc's qsort calling
 * back), variable-size frames (alloca), an allocation in a signal handler
 * (a signal frame), threads, and a library loaded and unloaded in between.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile void *sink;

static __attribute__((noinline)) void leaf_alloc(size_t n) {
    void *p = malloc(n);
    sink = p;
    free(p);
}

static __attribute__((noinline)) void with_alloca(int depth, size_t n) {
    char *buf = alloca(n);
    memset(buf, 1, n);
    if (depth > 0)
        with_alloca(depth - 1, n * 2 + 16);
    else
        leaf_alloc(n);
    sink = buf;
}

static __attribute__((noinline)) int compare(const void *a, const void *b) {
    leaf_alloc(24);
    return *(const int *)a - *(const int *)b;
}

static void on_signal(int sig) {
    (void)sig;
    leaf_alloc(40); /* not async-signal-safe in general; fine for this test */
}

static void *thread_main(void *arg) {
    for (int i = 0; i < 2000; i++) with_alloca(i % 7, 32 + (size_t)(uintptr_t)arg);
    return NULL;
}

int main(void) {
    for (int i = 0; i < 1000; i++) with_alloca(i % 11, 16);
    int v[64];
    for (int i = 0; i < 64; i++) v[i] = (i * 37) % 64;
    qsort(v, 64, sizeof v[0], compare);
    signal(SIGUSR1, on_signal);
    for (int i = 0; i < 50; i++) raise(SIGUSR1);
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, thread_main, (void *)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++) {
        void *h = dlopen("libm.so.6", RTLD_NOW);
        leaf_alloc(8);
        if (h) dlclose(h);
    }
    char *s = strdup("done");
    puts(s);
    free(s);
    return 0;
}
