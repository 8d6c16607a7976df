/*
 * One steadily growing site hidden among bigger churn (the unbounded cache).
 *
 * usage: growth grow|flat|teardown ROUNDS
 *   each round, churn() allocates 20 blocks of 5,000 bytes and frees the
 *   previous round's (its live memory stays at ~100 KB, up and down);
 *   with `grow`, cache_add() also keeps one block of 1,000 bytes per round;
 *   with `teardown`, the same growth, then everything freed at the end (as
 *   CPython does at exit);
 *   rounds are 5 ms apart, so time-spaced samples see the trend.
 */
#include "victim.h"

#include <time.h>

static void *churned[20];

__attribute__((noinline)) static void churn(void) {
  for (int i = 0; i < 20; i++) {
    if (churned[i]) v_free(churned[i]);
    churned[i] = v_alloc(V_MALLOC, malloc(5000), 5000);
  }
}

static void *cached[V_MAX_LIVE];
static unsigned long cached_count;

__attribute__((noinline)) static void cache_add(void) {
  cached[cached_count++] = v_alloc(V_MALLOC, malloc(1000), 1000); /* never evicted */
}

int main(int argc, char **argv) {
  if (argc != 3) v_die("usage: growth grow|flat|teardown ROUNDS");
  int teardown = strcmp(argv[1], "teardown") == 0;
  int grow = teardown || strcmp(argv[1], "grow") == 0;
  unsigned long rounds = v_arg(argc, argv, 2, 200);
  if (rounds > V_MAX_LIVE - 100) v_die("ROUNDS too large");
  for (unsigned long r = 0; r < rounds; r++) {
    churn();
    if (grow) cache_add();
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  for (int i = 0; i < 20; i++) v_free(churned[i]);
  if (teardown)
    for (unsigned long i = 0; i < cached_count; i++) v_free(cached[i]);
  v_json_begin();
  v_json_tally();
  v_json_end();
  return 0;
}
