/*
 * Hostile programs, one per mode, each with what it allocates known by
 * construction. Every mode prints one JSON line at the end.
 *
 * usage: hazards fork N [PAUSE]  3 threads churn (malloc/free) while the main
 *                                thread forks N times, one child at a time;
 *                                each child allocates CHILD_BLOCKS blocks of
 *                                CHILD_SIZE bytes (leaked) and calls exit(0);
 *                                PAUSE: microseconds of sleep after every 16
 *                                rounds of churn (a smaller trace)
 *        hazards dlopen N PLUGIN 3 threads churn while the main thread dlopens
 *                                PLUGIN (plugin.c), calls plugin_work(1) and
 *                                dlcloses it, N times
 *        hazards signals N       a thread sends SIGUSR1 to the main thread N
 *                                times while it allocates; the handler
 *                                allocates and frees a block of HANDLER_SIZE
 *        hazards cancel N        N times: 4 threads allocate in a loop with no
 *                                cancellation point of their own but a rare
 *                                pthread_testcancel, and are cancelled
 *        hazards closefrom K     closefrom(3), then K blocks of FD_SIZE
 *                                (leaked), one fork child allocating one
 *        hazards chdir K         chdir("/"), then the same
 *        hazards nofile K        RLIMIT_NOFILE lowered to the lowest free
 *                                descriptor (no new one can be opened), then
 *                                the same
 */
#include "victim.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#define CHILD_SIZE 4321
#define CHILD_BLOCKS 3
#define HANDLER_SIZE 333
#define FD_SIZE 2222
#define CHURN_THREADS 3

static volatile int stop_churn;
static unsigned long long churned[CHURN_THREADS];
static unsigned long churn_pause;

/* Background allocation: the moments the main thread's work lands in. */
static void *churn(void *arg) {
  unsigned long t = (unsigned long)(uintptr_t)arg;
  while (!__atomic_load_n(&stop_churn, __ATOMIC_ACQUIRE)) {
    void *p = v_keep(malloc(48 + 16 * (churned[t] % 8)));
    p = v_keep(realloc(p, 200));
    free(p);
    churned[t]++;
    if (churn_pause && churned[t] % 16 == 0) usleep((useconds_t)churn_pause);
  }
  return NULL;
}

static pthread_t churners[CHURN_THREADS];

static void start_churn(void) {
  for (unsigned long t = 0; t < CHURN_THREADS; t++)
    if (pthread_create(&churners[t], NULL, churn, (void *)(uintptr_t)t) != 0) v_die("pthread_create failed");
}

static void stop_churning(void) {
  __atomic_store_n(&stop_churn, 1, __ATOMIC_RELEASE);
  for (int t = 0; t < CHURN_THREADS; t++) pthread_join(churners[t], NULL);
}

/* ---- fork from a multithreaded program ---- */

__attribute__((noinline)) static void *child_block(void) { return v_keep(malloc(CHILD_SIZE)); }

static void fork_child_and_wait(void) {
  pid_t pid = fork();
  if (pid < 0) v_die("fork failed");
  if (pid == 0) {
    for (int i = 0; i < CHILD_BLOCKS; i++) child_block();
    exit(0);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    v_die("a fork child did not exit(0)");
}

static int forks(unsigned long n) {
  start_churn();
  for (unsigned long i = 0; i < n; i++) fork_child_and_wait();
  stop_churning();
  v_json_begin();
  v_json_i64("pid", getpid());
  v_json_u64("forks", n);
  v_json_end();
  return 0;
}

/* ---- dlopen/dlclose while threads allocate ---- */

static int dlopens(unsigned long n, const char *plugin) {
  start_churn();
  unsigned long bytes = 0;
  for (unsigned long i = 0; i < n; i++) {
    void *handle = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    if (!handle) v_die("dlopen failed");
    unsigned long (*work)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(handle, "plugin_work");
    if (!work) v_die("dlsym failed");
    bytes += work(1);
    if (dlclose(handle) != 0) v_die("dlclose failed");
  }
  stop_churning();
  v_json_begin();
  v_json_u64("cycles", n);
  v_json_u64("plugin_leaked_bytes", bytes);
  v_json_end();
  return 0;
}

/* ---- signal handlers that allocate, arriving during allocation ---- */

static volatile unsigned long handled;

/* glibc's malloc is not async-signal-safe: a handler that needed the arena
 * lock the interrupted malloc holds would deadlock in glibc, shim or not.
 * The handler's size has a tcache entry waiting (primed before the signals
 * start, and given back by each free), so its malloc and free take no lock. */
__attribute__((noinline)) static void on_signal(int sig) {
  (void)sig;
  free(v_keep(malloc(HANDLER_SIZE)));
  handled++;
}

static pthread_t main_thread;
static unsigned long signals_to_send;

static void *sender(void *arg) {
  (void)arg;
  for (unsigned long i = 0; i < signals_to_send; i++) {
    pthread_kill(main_thread, SIGUSR1);
    if (i % 16 == 0) sched_yield();
  }
  __atomic_store_n(&stop_churn, 1, __ATOMIC_RELEASE);
  return NULL;
}

__attribute__((noinline)) static void *signal_churn_block(size_t size) { return v_keep(malloc(size)); }

static int signals(unsigned long n) {
  free(v_keep(malloc(HANDLER_SIZE))); /* primes the tcache entry */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGUSR1, &sa, NULL) != 0) v_die("sigaction failed");
  /* Whoever started us may have left it blocked (the mask is inherited). */
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  main_thread = pthread_self();
  signals_to_send = n;
  pthread_t id;
  if (pthread_create(&id, NULL, sender, NULL) != 0) v_die("pthread_create failed");
  unsigned long long rounds = 0;
  while (!__atomic_load_n(&stop_churn, __ATOMIC_ACQUIRE)) {
    void *p = signal_churn_block(1000 + rounds % 64);
    p = v_keep(realloc(p, 3000));
    free(p);
    rounds++;
  }
  pthread_join(id, NULL);
  /* Signals still pending are delivered by now (pthread_kill to ourselves
   * from another thread: at the latest on the join's return). */
  v_json_begin();
  v_json_u64("handled", handled);
  v_json_u64("rounds", rounds);
  v_json_end();
  return 0;
}

/* ---- pthread_cancel of allocating threads ---- */

static void *cancellable(void *arg) {
  (void)arg;
  for (unsigned long i = 0;; i++) {
    free(v_keep(malloc(64 + i % 512)));
    /* Slower, to keep the trace small; still no cancellation point. */
    for (volatile int spin = 0; spin < 200; spin++) {
    }
    if (i % 4096 == 0) pthread_testcancel();
  }
  return NULL;
}

static int cancels(unsigned long n) {
  for (unsigned long i = 0; i < n; i++) {
    pthread_t ids[4];
    for (int t = 0; t < 4; t++)
      if (pthread_create(&ids[t], NULL, cancellable, NULL) != 0) v_die("pthread_create failed");
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    for (int t = 0; t < 4; t++) pthread_cancel(ids[t]);
    for (int t = 0; t < 4; t++) {
      void *result;
      pthread_join(ids[t], &result);
      if (result != PTHREAD_CANCELED) v_die("a thread was not cancelled");
    }
  }
  v_json_begin();
  v_json_u64("cancelled", 4 * n);
  v_json_end();
  return 0;
}

/* ---- the program takes descriptors or the directory away ---- */

__attribute__((noinline)) static void *fd_block(void) { return v_alloc(V_MALLOC, malloc(FD_SIZE), FD_SIZE); }

static int after_change(unsigned long k) {
  for (unsigned long i = 0; i < k; i++) fd_block();
  pid_t pid = fork();
  if (pid < 0) v_die("fork failed");
  if (pid == 0) {
    v_keep(malloc(CHILD_SIZE));
    exit(0);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    v_die("the fork child did not exit(0)");
  v_json_begin();
  v_json_i64("pid", getpid());
  v_json_i64("child", pid);
  v_json_tally();
  v_json_end();
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) v_die("usage: hazards MODE N [ARG]");
  const char *mode = argv[1];
  unsigned long n = v_arg(argc, argv, 2, 0);
  if (strcmp(mode, "fork") == 0) {
    churn_pause = v_arg(argc, argv, 3, 0);
    return forks(n);
  }
  if (strcmp(mode, "dlopen") == 0 && argc == 4) return dlopens(n, argv[3]);
  if (strcmp(mode, "signals") == 0) return signals(n);
  if (strcmp(mode, "cancel") == 0) return cancels(n);
  if (strcmp(mode, "closefrom") == 0) {
    closefrom(3);
    return after_change(n);
  }
  if (strcmp(mode, "chdir") == 0) {
    if (chdir("/") != 0) v_die("chdir failed");
    return after_change(n);
  }
  if (strcmp(mode, "nofile") == 0) {
    /* The lowest free descriptor as the limit: no new descriptor can be
     * opened at all (those open above it stay usable). */
    int lowest = 0;
    while (fcntl(lowest, F_GETFD) != -1) lowest++;
    struct rlimit low = {(rlim_t)lowest, (rlim_t)lowest};
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) v_die("setrlimit failed");
    return after_change(n);
  }
  v_die("unknown mode");
  return 99;
}
