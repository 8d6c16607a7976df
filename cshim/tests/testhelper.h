/*
 * A tiny test harness in the style of mimalloc's test/testhelper.h.
 *
 *     CHECK(expr)        records file:line when expr is false; returns expr so
 *                        loops can stop at the first bad item
 *     RUN_TEST(fn)       runs `void fn(void)` under a watchdog and prints ok/FAILED
 *                        (only if its name contains test_filter, when set)
 *     test_summary()     prints the totals; returns the process exit code
 *
 * CHECK may be called from any thread.
 */
#ifndef MEMSIFT_TESTHELPER_H
#define MEMSIFT_TESTHELPER_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A test that hangs (a producer waiting on a ring nobody drains) must fail,
 * not stall CI. */
#ifndef TEST_TIMEOUT_SECONDS
#define TEST_TIMEOUT_SECONDS 50
#endif

/* Past this many messages only the count grows: a broken ring fails the same
 * check a million times. */
#define TEST_MAX_MESSAGES 40

static unsigned long test_checks;
static unsigned long test_failures;
static unsigned long tests_run;
static unsigned long tests_failed;
static const char *test_current = "?";
static const char *test_filter; /* run only tests whose name contains this */

static inline int test_check(int ok, const char *expr, const char *file, int line) {
    __atomic_fetch_add(&test_checks, 1, __ATOMIC_RELAXED);
    if (ok) return 1;
    unsigned long n = __atomic_fetch_add(&test_failures, 1, __ATOMIC_RELAXED);
    if (n < TEST_MAX_MESSAGES)
        fprintf(stderr, "\n  %s:%d: CHECK(%s) failed [%s]", file, line, expr, test_current);
    else if (n == TEST_MAX_MESSAGES)
        fprintf(stderr, "\n  (further failure messages suppressed)");
    return 0;
}

#define CHECK(expr) test_check(!!(expr), #expr, __FILE__, __LINE__)

static void test_on_alarm(int sig) {
    (void)sig;
    /* Async-signal-safe only: the test may be wedged inside anything. */
    static const char msg[] = "\n  TIMEOUT: test did not finish in time; aborting\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(3);
}

static inline double test_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void test_run(void (*fn)(void), const char *name) {
    if (test_filter && !strstr(name, test_filter)) return;
    signal(SIGALRM, test_on_alarm);
    unsigned long before = __atomic_load_n(&test_failures, __ATOMIC_RELAXED);
    test_current = name;
    fprintf(stderr, "test: %s... ", name);
    double t0 = test_now_s();
    alarm(TEST_TIMEOUT_SECONDS);
    fn();
    alarm(0);
    double dt = test_now_s() - t0;
    tests_run++;
    if (__atomic_load_n(&test_failures, __ATOMIC_RELAXED) == before) {
        fprintf(stderr, "ok (%.2fs)\n", dt);
    } else {
        tests_failed++;
        fprintf(stderr, "\n  FAILED (%.2fs)\n", dt);
    }
}

#define RUN_TEST(fn) test_run(fn, #fn)

static inline int test_summary(void) {
    fprintf(stderr, "\n%lu tests, %lu failed; %lu checks, %lu failed\n", tests_run, tests_failed,
            __atomic_load_n(&test_checks, __ATOMIC_RELAXED), __atomic_load_n(&test_failures, __ATOMIC_RELAXED));
    return __atomic_load_n(&test_failures, __ATOMIC_RELAXED) == 0 ? 0 : 1;
}

/* For a test that cannot go on (its threads would wait forever). */
static inline void test_abort(const char *why) {
    fprintf(stderr, "\n  ABORT [%s]: %s\n", test_current, why);
    test_summary();
    _exit(2);
}

#endif
