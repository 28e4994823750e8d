// One process-wide thread pool: pool_threads() - 1 workers plus the calling thread.
// Workers spin briefly after a job (back-to-back kernel calls restart fast), then sleep on a
// condition variable. A job is a task count; threads claim task indices from an atomic counter.
// Created once at load time; never a thread per call. LOOM_THREADS=n overrides the core count.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom.h"

#define MAX_THREADS 64
#define SPIN_ITERS 20000  // ~50-100 µs of pause instructions before a worker sleeps

static int nthreads = 1;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;  // one job at a time
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static atomic_uint generation;  // bumped once per job
static atomic_int next_task;    // next task index to claim
static atomic_int running;      // workers not yet done with the current job
static task_fn job_fn;
static void *job_ctx;
static int job_tasks;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static void drain(void) {
  for (int t; (t = atomic_fetch_add(&next_task, 1)) < job_tasks;) job_fn(job_ctx, t);
}

static void *worker_main(void *arg) {
  (void)arg;
  unsigned seen = atomic_load(&generation);
  for (;;) {
    unsigned g = atomic_load_explicit(&generation, memory_order_acquire);
    for (int spin = 0; g == seen && spin < SPIN_ITERS; spin++) {
      cpu_relax();
      g = atomic_load_explicit(&generation, memory_order_acquire);
    }
    if (g == seen) {
      pthread_mutex_lock(&wake_lock);
      while ((g = atomic_load(&generation)) == seen) pthread_cond_wait(&wake, &wake_lock);
      pthread_mutex_unlock(&wake_lock);
    }
    seen = g;
    drain();
    atomic_fetch_sub_explicit(&running, 1, memory_order_release);
  }
  return NULL;
}

static int usable_cores(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static void init(void) {
  const char *env = getenv("LOOM_THREADS");
  int n = env && atoi(env) > 0 ? atoi(env) : usable_cores();
  n = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
  nthreads = 1;
  for (int i = 1; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker_main, NULL) != 0) break;
    pthread_detach(t);
    nthreads++;
  }
}

void pool_init(void) { pthread_once(&init_once, init); }

int pool_threads(void) { return nthreads; }

int pool_tasks(double work, double grain, int max_tasks) {
  if (nthreads == 1 || work < grain) return 1;
  int t = work / grain < 4.0 * nthreads ? (int)(work / grain) : 4 * nthreads;
  return t < 1 ? 1 : t > max_tasks ? max_tasks : t;
}

void pool_run(task_fn fn, void *ctx, int ntasks) {
  if (ntasks <= 1 || nthreads == 1 || pthread_mutex_trylock(&run_lock) != 0) {
    for (int t = 0; t < ntasks; t++) fn(ctx, t);
    return;
  }
  job_fn = fn;
  job_ctx = ctx;
  job_tasks = ntasks;
  atomic_store(&next_task, 0);
  atomic_store(&running, nthreads - 1);
  pthread_mutex_lock(&wake_lock);
  atomic_fetch_add_explicit(&generation, 1, memory_order_release);
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&wake_lock);
  drain();
  while (atomic_load_explicit(&running, memory_order_acquire) > 0) cpu_relax();
  pthread_mutex_unlock(&run_lock);
}

// Per-thread scratch, freed when the thread exits (JS worker threads come and go).
typedef struct {
  float *buf[3];
  size_t cap[3];
} Scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
  Scratch *s = p;
  for (int i = 0; i < 3; i++) free(s->buf[i]);
  free(s);
}
static void scratch_key_init(void) { pthread_key_create(&scratch_key, scratch_free); }

float *pool_scratch(int slot, size_t nfloats) {
  pthread_once(&scratch_once, scratch_key_init);
  Scratch *s = pthread_getspecific(scratch_key);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) abort();
    pthread_setspecific(scratch_key, s);
  }
  if (s->cap[slot] < nfloats) {
    free(s->buf[slot]);
    size_t bytes = (nfloats * sizeof(float) + 63) & ~(size_t)63;
    s->buf[slot] = aligned_alloc(64, bytes);
    if (!s->buf[slot]) abort();
    s->cap[slot] = nfloats;
  }
  return s->buf[slot];
}
