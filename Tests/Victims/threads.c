/*
 * 8 threads allocating, handing blocks to each other and freeing each
 * other's blocks, with heavy address reuse: every thread cycles through the
 * same 8 sizes, so glibc's per-thread caches hand an address freed by one
 * thread to the next allocation of the same size, often in another thread.
 * A tracer that records a free after the real free (or an allocation before
 * the real call) misattributes such addresses; the report then counts
 * `reused_without_free` or `unmatched_frees`.
 *
 * Each thread allocates ROUNDS blocks and pushes each one to the next
 * thread's queue; the receiver reallocs every EVERY-th block to twice its
 * size (the block carries its index) and frees it. After a barrier, thread
 * t leaks t+1 blocks of (t+1)*100 bytes: 36 blocks, 20400 bytes in all.
 *
 * usage: threads ROUNDS [EVERY]   ROUNDS 0: the baseline — same threads, no
 *                                 workload, no leak; EVERY 0: no realloc
 *                                 (default 4)
 */
#include "victim.h"

#include <pthread.h>
#include <sched.h>

#define THREADS 8
#define QUEUE_CAP 256

#include "queue.h"

static queue_t queues[THREADS];
static pthread_barrier_t barrier;
static unsigned long rounds;
static unsigned long realloc_every;
static int producers_done;

typedef struct {
  unsigned long long mallocs, reallocs, frees, allocations, bytes, leaked_bytes, leaked_allocations;
} counts_t;

static counts_t counts[THREADS];

static size_t size_of(unsigned long i) { return 16 + (i % 8) * 24; }

/* Frees a block another thread made; every realloc_every-th is grown first. */
static void consume(counts_t *c, void *p) {
  unsigned long index;
  memcpy(&index, p, sizeof index);
  if (realloc_every && index % realloc_every == 0) {
    size_t bigger = size_of(index) * 2;
    void *q = v_keep(realloc(p, bigger));
    if (!q) v_die("realloc failed");
    c->reallocs++;
    c->frees++; /* the old block */
    c->allocations++;
    c->bytes += bigger;
    p = q;
  }
  free(p);
  c->frees++;
}

static int drain(counts_t *c, queue_t *q) {
  int n = 0;
  void *p;
  while (queue_pop(q, &p)) {
    consume(c, p);
    n++;
  }
  return n;
}

static void *worker(void *arg) {
  int t = (int)(intptr_t)arg;
  counts_t *c = &counts[t];
  queue_t *mine = &queues[t], *next = &queues[(t + 1) % THREADS];
  pthread_barrier_wait(&barrier);
  for (unsigned long i = 0; i < rounds; i++) {
    size_t size = size_of(i);
    void *p = malloc(size);
    if (!p) v_die("malloc failed");
    memcpy(p, &i, sizeof i);
    c->mallocs++;
    c->allocations++;
    c->bytes += size;
    while (!queue_push(next, p)) {
      drain(c, mine);
      sched_yield();
    }
    if (i % 4 == 3) drain(c, mine);
  }
  /* Keep taking our blocks until every producer is done (one may be waiting
   * for room in our queue), then take what is left. */
  __atomic_add_fetch(&producers_done, 1, __ATOMIC_ACQ_REL);
  while (__atomic_load_n(&producers_done, __ATOMIC_ACQUIRE) < THREADS) {
    drain(c, mine);
    sched_yield();
  }
  drain(c, mine);
  pthread_barrier_wait(&barrier);
  if (rounds > 0) {
    for (int k = 0; k <= t; k++) {
      size_t size = (size_t)(t + 1) * 100;
      char *leak = v_keep(malloc(size));
      if (!leak) v_die("malloc failed");
      leak[0] = (char)k;
      c->mallocs++;
      c->allocations++;
      c->bytes += size;
      c->leaked_bytes += size;
      c->leaked_allocations++;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  rounds = v_arg(argc, argv, 1, 10000);
  realloc_every = v_arg(argc, argv, 2, 4);
  pthread_barrier_init(&barrier, NULL, THREADS);
  for (int t = 0; t < THREADS; t++) pthread_mutex_init(&queues[t].lock, NULL);
  pthread_t ids[THREADS];
  /* All threads exist before any is joined, so that glibc never reuses a
   * cached thread stack: its own allocations are the same in every run. */
  for (int t = 0; t < THREADS; t++)
    if (pthread_create(&ids[t], NULL, worker, (void *)(intptr_t)t) != 0) v_die("pthread_create failed");
  for (int t = 0; t < THREADS; t++) pthread_join(ids[t], NULL);

  counts_t sum = {0};
  for (int t = 0; t < THREADS; t++) {
    sum.mallocs += counts[t].mallocs;
    sum.reallocs += counts[t].reallocs;
    sum.frees += counts[t].frees;
    sum.allocations += counts[t].allocations;
    sum.bytes += counts[t].bytes;
    sum.leaked_bytes += counts[t].leaked_bytes;
    sum.leaked_allocations += counts[t].leaked_allocations;
  }
  v_json_begin();
  v_json_u64("threads", THREADS);
  v_json_u64("malloc", sum.mallocs);
  v_json_u64("realloc", sum.reallocs);
  v_json_u64("free", sum.frees - sum.reallocs);
  v_json_u64("allocations", sum.allocations);
  v_json_u64("frees", sum.frees);
  v_json_u64("bytes_allocated", sum.bytes);
  v_json_u64("leaked_bytes", sum.leaked_bytes);
  v_json_u64("leaked_allocations", sum.leaked_allocations);
  v_json_end();
  return 0;
}
