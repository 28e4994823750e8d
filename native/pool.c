// One process-wide thread pool: pool_threads() - 1 workers plus the calling thread.
// A job is a task count; threads claim task indices under `lock` and run them outside it.
// The caller waits for the tasks to be done, not for the workers to wake: a worker that wakes
// late (the machine is busy) finds the job finished, or the next one, and does no harm.
// Workers spin briefly after a job (back-to-back kernel calls restart fast), then sleep.
// Created once at load time; never a thread per call. LOOM_THREADS=n overrides the core count.
// pool_limit(n) lowers the threads later jobs use (data-parallel training runs one JS thread per
// core, each computing on its own core alone); the idle workers sleep.
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom.h"

#define MAX_THREADS 64
#define SPIN_ITERS 4000        // pause instructions (~20-80 µs) before a worker sleeps
// ~flops: below ~3 µs of work, handing tasks to a worker costs more. Workers spin between
// back-to-back calls, so a hand-off is ~1 µs; decoding's matvecs (1e5-1e6 flops) gain ~1.7x.
#define MIN_PARALLEL_WORK 1e5

static int nthreads = 1;
static atomic_int active = 1;  // threads a job uses: nthreads, or fewer after pool_limit
static double min_parallel_work = MIN_PARALLEL_WORK;  // LOOM_MIN_PARALLEL_WORK overrides
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;  // one job at a time
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;      // guards the job fields below
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static atomic_uint generation;  // bumped once per job (under lock); workers spin on it
static task_fn job_fn;
static void *job_ctx;
static int job_tasks, next_task;
static atomic_int done_tasks;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// Claims and runs tasks of the current job until none is left; call with `lock` held.
static void drain_locked(void) {
  while (next_task < job_tasks) {
    int t = next_task++;
    task_fn fn = job_fn;
    void *ctx = job_ctx;
    pthread_mutex_unlock(&lock);
    fn(ctx, t);
    atomic_fetch_add_explicit(&done_tasks, 1, memory_order_release);
    pthread_mutex_lock(&lock);
  }
}

static void *worker_main(void *arg) {
  int index = (int)(intptr_t)arg;  // 1 .. nthreads - 1; the caller of a job is thread 0
  unsigned seen = 0;
  for (;;) {
    for (int spin = 0; spin < SPIN_ITERS; spin++) {
      if (atomic_load_explicit(&generation, memory_order_relaxed) != seen) break;
      cpu_relax();
    }
    pthread_mutex_lock(&lock);
    while (atomic_load_explicit(&generation, memory_order_relaxed) == seen)
      pthread_cond_wait(&wake, &lock);
    seen = atomic_load_explicit(&generation, memory_order_relaxed);
    if (index < atomic_load_explicit(&active, memory_order_relaxed)) drain_locked();
    pthread_mutex_unlock(&lock);
  }
  return NULL;
}

static int usable_cores(void) {
#ifdef __linux__
  cpu_set_t set;  // the cores this process may run on (taskset, cgroup cpusets)
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

static void init(void) {
  const char *env = getenv("LOOM_THREADS");
  int n = env && atoi(env) > 0 ? atoi(env) : usable_cores();
  n = n > MAX_THREADS ? MAX_THREADS : n;
  const char *work = getenv("LOOM_MIN_PARALLEL_WORK");
  if (work && atof(work) > 0) min_parallel_work = atof(work);
  for (int i = 1; i < n; i++) {
    pthread_t t;
    if (pthread_create(&t, NULL, worker_main, (void *)(intptr_t)i) != 0) break;
    pthread_detach(t);
    nthreads++;
  }
  atomic_store(&active, nthreads);
}

void pool_init(void) { pthread_once(&init_once, init); }

int pool_threads(void) { return atomic_load(&active); }

int pool_limit(int n) {
  atomic_store(&active, n < 1 ? 1 : n > nthreads ? nthreads : n);
  return atomic_load(&active);
}

int pool_parallel(double work) { return atomic_load(&active) > 1 && work >= min_parallel_work; }

int pool_split(int items) {
  int n = atomic_load(&active);
  return items < 4 * n ? (items > 0 ? items : 1) : 4 * n;
}

void pool_run(task_fn fn, void *ctx, int ntasks, double work) {
  if (ntasks <= 1 || !pool_parallel(work) || pthread_mutex_trylock(&run_lock) != 0) {
    for (int t = 0; t < ntasks; t++) fn(ctx, t);
    return;
  }
  pthread_mutex_lock(&lock);
  job_fn = fn;
  job_ctx = ctx;
  job_tasks = ntasks;
  next_task = 0;
  atomic_store(&done_tasks, 0);
  atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed);
  pthread_cond_broadcast(&wake);
  drain_locked();
  pthread_mutex_unlock(&lock);
  // the last tasks may still run on workers; yield the core if one of them was preempted
  for (int spin = 0; atomic_load_explicit(&done_tasks, memory_order_acquire) < ntasks; spin++) {
    if (spin < SPIN_ITERS) cpu_relax();
    else sched_yield();
  }
  pthread_mutex_unlock(&run_lock);
}

// Per-thread scratch, freed when the thread exits (JS worker threads come and go).
typedef struct {
  float *buf[4];
  size_t cap[4];
} Scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
  Scratch *s = p;
  for (int i = 0; i < 4; i++) free(s->buf[i]);
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
