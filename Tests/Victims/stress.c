/*
 * Up to 16 threads churning the heap, each from a call site of its own
 * (stress_site_N, a noinline function allocating SITE_SIZE(N) bytes, a size
 * no other site uses), handing every block to the next thread, which frees
 * it. The blocks a thread frees go back to the arena of the thread that
 * allocated them, which soon hands the same addresses out again: the order
 * of a free and the reuse of its address cross threads all the time.
 *
 * So a report by site has exact numbers, whatever the interleaving: site N
 * allocates ROUNDS + N + 1 blocks of SITE_SIZE(N), frees ROUNDS of them
 * (freed by thread N+1) and leaks the last N + 1.
 *
 * usage: stress THREADS ROUNDS [PROGRESS]
 *   THREADS 1..16
 *   ROUNDS  blocks per thread; 0 with PROGRESS: churn until killed
 *   PROGRESS a file of 17 words the victim maps shared: word 0 its pid,
 *           word 1+N how many allocations of site N had returned, stored
 *           after each malloc returned (the shim has committed its record
 *           by then), so a test that kills the victim knows a lower bound
 *           of what the trace must hold.
 */
#include "victim.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#define MAX_THREADS 16
#define QUEUE_CAP 64
#define SITE_SIZE(n) (24 + 40 * (n))

#include "queue.h"

static queue_t queues[MAX_THREADS];
static pthread_barrier_t barrier;
static unsigned long threads, rounds;
static int producers_done;
static volatile uint64_t *progress; /* [0] pid, [1 + n] site n */

/* One site per thread: the call below is the only malloc of its size. The
 * v_keep after the call keeps it from being a tail call (the site's frame
 * stays on the stack). */
#define SITE(n)                                                   \
  __attribute__((noinline)) static void *stress_site_##n(void) {  \
    void *p = malloc(SITE_SIZE(n));                               \
    if (!p) v_die("malloc failed");                               \
    return v_keep(p);                                             \
  }
SITE(0) SITE(1) SITE(2) SITE(3) SITE(4) SITE(5) SITE(6) SITE(7)
SITE(8) SITE(9) SITE(10) SITE(11) SITE(12) SITE(13) SITE(14) SITE(15)

static void *(*const sites[MAX_THREADS])(void) = {
    stress_site_0,  stress_site_1,  stress_site_2,  stress_site_3,  stress_site_4,  stress_site_5,
    stress_site_6,  stress_site_7,  stress_site_8,  stress_site_9,  stress_site_10, stress_site_11,
    stress_site_12, stress_site_13, stress_site_14, stress_site_15,
};

static void drain(queue_t *q) {
  void *p;
  while (queue_pop(q, &p)) free(p);
}

static void *worker(void *arg) {
  unsigned long t = (unsigned long)(uintptr_t)arg;
  queue_t *mine = &queues[t], *next = &queues[(t + 1) % threads];
  pthread_barrier_wait(&barrier);
  for (unsigned long i = 0; rounds == 0 || i < rounds; i++) {
    void *p = sites[t]();
    /* After the call returned: the allocation is in the ring. */
    if (progress) __atomic_store_n(&progress[1 + t], i + 1, __ATOMIC_RELEASE);
    while (!queue_push(next, p)) {
      drain(mine);
      sched_yield();
    }
    if (i % 4 == 3) drain(mine);
  }
  /* Keep freeing what arrives until every producer is done (one may be
   * waiting for room in our queue), then free what is left. */
  __atomic_add_fetch(&producers_done, 1, __ATOMIC_ACQ_REL);
  while (__atomic_load_n(&producers_done, __ATOMIC_ACQUIRE) < (int)threads) {
    drain(mine);
    sched_yield();
  }
  drain(mine);
  pthread_barrier_wait(&barrier);
  for (unsigned long k = 0; k <= t; k++) sites[t]();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) v_die("usage: stress THREADS ROUNDS [PROGRESS]");
  threads = v_arg(argc, argv, 1, 0);
  rounds = v_arg(argc, argv, 2, 0);
  if (threads < 1 || threads > MAX_THREADS) v_die("THREADS must be 1..16");
  if (argc == 4) {
    int fd = open(argv[3], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) v_die("cannot make the progress file");
    void *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) v_die("cannot map the progress file");
    close(fd);
    progress = map;
    __atomic_store_n(&progress[0], (uint64_t)getpid(), __ATOMIC_RELEASE);
  } else if (rounds == 0) {
    v_die("ROUNDS 0 needs a PROGRESS file");
  }
  pthread_barrier_init(&barrier, NULL, (unsigned)threads);
  for (unsigned long t = 0; t < threads; t++) pthread_mutex_init(&queues[t].lock, NULL);
  pthread_t ids[MAX_THREADS];
  for (unsigned long t = 0; t < threads; t++)
    if (pthread_create(&ids[t], NULL, worker, (void *)(uintptr_t)t) != 0) v_die("pthread_create failed");
  for (unsigned long t = 0; t < threads; t++) pthread_join(ids[t], NULL);

  v_json_begin();
  v_json_u64("threads", threads);
  v_json_u64("rounds", rounds);
  for (unsigned long t = 0; t < threads; t++) {
    char key[32];
    snprintf(key, sizeof key, "site%lu_size", t);
    v_json_u64(key, SITE_SIZE(t));
  }
  v_json_end();
  return 0;
}
