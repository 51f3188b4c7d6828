// GradKit CKernels — the parallel-for primitive. SPDX-License-Identifier: MIT
//
// Two implementations behind ck_parallel_for:
//   * OpenMP (NativeOpenMP trait): one `parallel for schedule(static)` region.
//     libomp 14 lacks __kmpc_dispatch_deinit, which clang 21 emits for dynamic
//     and guided schedules, so only static schedules appear here.
//   * Otherwise a persistent pool of pthreads. A job is published by bumping a
//     ticket that also carries the number of parts; the caller and the workers
//     then claim parts from one counter, so the caller never waits for a worker
//     that is still waking up. Workers spin briefly after a job (the
//     next kernel of a training step usually follows within microseconds), then
//     sleep on a condition variable so idle threads cost nothing.
#define _GNU_SOURCE 1 // sched_getaffinity, CPU_COUNT; must precede every libc header
#include "ck_internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define CK_MAX_THREADS 256

static _Atomic size_t configured_threads = 0; // 0: not yet resolved

size_t ck_threads_default(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int count = CPU_COUNT(&set);
        if (count > 0) return (size_t)count;
    }
#endif
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (size_t)online : 1;
}

size_t ck_threads_get(void) {
    size_t n = atomic_load_explicit(&configured_threads, memory_order_relaxed);
    if (n == 0) {
        n = ck_min_size(ck_threads_default(), CK_MAX_THREADS);
        size_t expected = 0;
        atomic_compare_exchange_strong(&configured_threads, &expected, n);
        n = atomic_load_explicit(&configured_threads, memory_order_relaxed);
    }
    return n;
}

void ck_threads_set(size_t count) {
    if (count == 0) count = ck_threads_default();
    atomic_store_explicit(&configured_threads, ck_min_size(count, CK_MAX_THREADS), memory_order_relaxed);
}

static _Atomic int fine_grained_enabled = 1;

void ck_threads_set_fine_grained(int enabled) {
    atomic_store_explicit(&fine_grained_enabled, enabled != 0, memory_order_relaxed);
}

int ck_threads_fine_grained(void) { return atomic_load_explicit(&fine_grained_enabled, memory_order_relaxed); }

size_t ck_parallel_parts(size_t n, size_t grain) {
    if (grain == 0) grain = 1;
    size_t units = ck_div_up(n, grain);
    return ck_max_size(1, ck_min_size(ck_threads_get(), units));
}

// Range of part `p` when [0, n) is split in `parts` grain-aligned pieces.
static inline void part_range(size_t n, size_t grain, size_t parts, size_t p, size_t *begin, size_t *end) {
    size_t units = ck_div_up(n, grain);
    size_t per = units / parts, extra = units % parts;
    size_t first = p * per + (p < extra ? p : extra);
    size_t count = per + (p < extra ? 1 : 0);
    *begin = ck_min_size(first * grain, n);
    *end = ck_min_size((first + count) * grain, n);
}

// A controller at the start of its first probe window (splitting).
#define SPLIT_CONTROLLER_START { .mode = 1, .chosen = 1 }

void ck_split_controller_init(ck_split_controller *controller) {
    *controller = (ck_split_controller)SPLIT_CONTROLLER_START;
}

int ck_split_controller_decide(ck_split_controller *c, uint64_t now_ns) {
    // The interval since the previous decision was spent in the current window's mode.
    if (c->last_ns != 0 && now_ns > c->last_ns) {
        uint64_t interval = now_ns - c->last_ns;
        c->window_ns += interval < CK_SPLIT_GAP_NS ? interval : CK_SPLIT_GAP_NS;
    }
    c->last_ns = now_ns;
    if (++c->decisions < CK_SPLIT_WINDOW) return c->mode;
    if (c->window < 4) c->probe_ns[c->mode != 0] += c->window_ns;
    c->decisions = 0;
    c->window_ns = 0;
    c->window = (c->window + 1) % (4 + CK_SPLIT_EXPLOIT);
    if (c->window == 4) {
        c->chosen = c->probe_ns[0] < c->probe_ns[1] ? 0 : 1;
        c->probe_ns[0] = c->probe_ns[1] = 0;
    }
    static const int probe_modes[4] = { 1, 0, 0, 1 };
    c->mode = c->window < 4 ? probe_modes[c->window] : c->chosen;
    return c->mode;
}

#ifdef _OPENMP

// Swift's clang ships no omp.h; these are the libomp entry points used.
extern int omp_get_thread_num(void);
extern int omp_in_parallel(void);
extern void kmp_set_blocktime(int milliseconds);

static pthread_once_t omp_once = PTHREAD_ONCE_INIT;
// libomp's threads otherwise spin for 200 ms after each region and slow down
// the Swift code that runs between kernels; not spinning at all (0) makes every
// region pay a wake-up (an MNIST-sized training step took 1.2 ms instead of
// 0.69 ms). 1 ms is the shortest libomp offers.
static void omp_setup(void) { kmp_set_blocktime(1); }

int ck_parallel_fine_grained(void) { return 1; } // OpenMP builds split only long jobs anyway

void ck_parallel_for(size_t n, size_t grain, ck_range_fn fn, void *context) {
    if (grain == 0) grain = 1;
    size_t parts = ck_parallel_parts(n, grain);
    if (parts <= 1 || omp_in_parallel()) { // nested (a GEMM pair): run here
        fn(context, 0, n, 0);
        return;
    }
    pthread_once(&omp_once, omp_setup);
    long count = (long)parts;
    unsigned fp_mode = ck_fp_mode(); // libomp's threads take on the caller's subnormal flushing
#pragma omp parallel for schedule(static) num_threads((int)parts)
    for (long p = 0; p < count; ++p) {
        ck_fp_adopt_mode(fp_mode);
        size_t begin, end;
        part_range(n, grain, parts, (size_t)p, &begin, &end);
        fn(context, begin, end, (size_t)p);
    }
}

#else // persistent pthread pool

typedef struct pool_job {
    ck_range_fn fn;
    void *context;
    size_t n, grain, parts;
    unsigned fp_mode; // the caller's subnormal flushing (ck_fp_mode)
} pool_job;

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    atomic_flag busy;                 // held by the thread running a job
    _Atomic uint64_t ticket;          // (generation << 16) | parts: a job was published
    _Atomic uint64_t claim;           // (generation << 16) | next unclaimed part
    _Atomic size_t remaining;         // parts of the job not yet finished
    _Atomic int sleepers;
    size_t workers;                   // started worker threads (guarded by mutex)
    pool_job job;
} pool = {
    .mutex = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .busy = ATOMIC_FLAG_INIT,
};

static inline void cpu_relax(void) {
#if CK_HAVE_X86
    __builtin_ia32_pause();
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// How long an idle worker keeps polling for the next job before it sleeps.
#define CK_SPIN_NS 50000u

// The ticket each worker last saw, written by its creator before pthread_create
// (a worker started for a job must not mistake that job's ticket for an old one).
static uint64_t initial_ticket[CK_MAX_THREADS];

// Runs parts of the job published as `ticket` until none is left unclaimed.
// Parts are claimed, not assigned: a worker that wakes late (or not at all)
// delays nobody, the caller takes the parts it has not reached. A part's
// index, not the thread that runs it, decides its range (and any per-part
// workspace), and a worker takes on the caller's subnormal flushing, so
// results do not depend on who ran what.
static void run_claimed_parts(uint64_t ticket) {
    uint64_t generation = ticket >> 16;
    size_t parts = (size_t)(ticket & 0xffffu);
    uint64_t claim = atomic_load_explicit(&pool.claim, memory_order_acquire);
    for (;;) {
        if ((claim >> 16) != generation || (size_t)(claim & 0xffffu) >= parts) return;
        if (!atomic_compare_exchange_weak_explicit(&pool.claim, &claim, claim + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        size_t part = (size_t)(claim & 0xffffu);
        pool_job job = pool.job; // stable: the caller waits for every claimed part
        ck_fp_adopt_mode(job.fp_mode);
        size_t begin, end;
        part_range(job.n, job.grain, parts, part, &begin, &end);
        job.fn(job.context, begin, end, part);
        atomic_fetch_sub_explicit(&pool.remaining, 1, memory_order_release);
        claim = atomic_load_explicit(&pool.claim, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    size_t index = (size_t)(uintptr_t)arg; // 1-based: 0 is the caller
    uint64_t seen = initial_ticket[index];
    for (;;) {
        uint64_t ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire);
        if (ticket == seen) {
            uint64_t start = now_ns();
            unsigned spins = 0;
            while ((ticket = atomic_load_explicit(&pool.ticket, memory_order_acquire)) == seen) {
                cpu_relax();
                if ((++spins & 255u) == 0 && now_ns() - start > CK_SPIN_NS) {
                    pthread_mutex_lock(&pool.mutex);
                    atomic_fetch_add(&pool.sleepers, 1);
                    while ((ticket = atomic_load(&pool.ticket)) == seen) {
                        pthread_cond_wait(&pool.wake, &pool.mutex);
                    }
                    atomic_fetch_sub(&pool.sleepers, 1);
                    pthread_mutex_unlock(&pool.mutex);
                    break;
                }
            }
        }
        seen = ticket;
        run_claimed_parts(ticket);
    }
    return NULL;
}

// Whether splitting products of a microsecond or two pays is decided by the
// controller below (ck_split_controller_decide) from the time the program
// takes per small product in either mode, under a lock a decision skips
// rather than waits for (a skipped decision keeps the current mode and is not
// counted).
static ck_split_controller split_controller = SPLIT_CONTROLLER_START;
static atomic_flag split_lock = ATOMIC_FLAG_INIT;
static _Atomic int split_mode = 1;

int ck_parallel_fine_grained(void) {
    if (!ck_threads_fine_grained()) return 0;
    if (atomic_flag_test_and_set_explicit(&split_lock, memory_order_acquire))
        return atomic_load_explicit(&split_mode, memory_order_relaxed);
    int mode = ck_split_controller_decide(&split_controller, now_ns());
    atomic_store_explicit(&split_mode, mode, memory_order_relaxed);
    atomic_flag_clear_explicit(&split_lock, memory_order_release);
    return mode;
}

// Starts workers until `needed` exist. Called with pool.busy held.
static size_t ensure_workers(size_t needed) {
    pthread_mutex_lock(&pool.mutex);
    while (pool.workers < needed) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        initial_ticket[pool.workers + 1] = atomic_load(&pool.ticket);
        int failed = pthread_create(&thread, &attr, worker_main, (void *)(uintptr_t)(pool.workers + 1));
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool.workers += 1;
    }
    size_t available = pool.workers;
    pthread_mutex_unlock(&pool.mutex);
    return available;
}

void ck_parallel_for(size_t n, size_t grain, ck_range_fn fn, void *context) {
    if (grain == 0) grain = 1;
    size_t parts = ck_parallel_parts(n, grain);
    if (parts <= 1 || atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) {
        // Small, nested, or concurrent with another thread's job: run here.
        fn(context, 0, n, 0);
        return;
    }
    size_t workers = ensure_workers(parts - 1);
    if (workers + 1 < parts) parts = workers + 1;
    if (parts <= 1) {
        atomic_flag_clear_explicit(&pool.busy, memory_order_release);
        fn(context, 0, n, 0);
        return;
    }
    pool.job = (pool_job){ .fn = fn, .context = context, .n = n, .grain = grain, .parts = parts, .fp_mode = ck_fp_mode() };
    atomic_store_explicit(&pool.remaining, parts, memory_order_relaxed);
    uint64_t generation = (atomic_load_explicit(&pool.ticket, memory_order_relaxed) >> 16) + 1;
    uint64_t ticket = (generation << 16) | parts;
    atomic_store(&pool.claim, generation << 16);   // before the ticket: a worker that sees
    atomic_store(&pool.ticket, ticket);             // the ticket sees its claims (seq_cst: pairs with sleepers)
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mutex);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mutex);
    }
    run_claimed_parts(ticket);
    unsigned spins = 0;
    while (atomic_load_explicit(&pool.remaining, memory_order_acquire) != 0) {
        cpu_relax();
        if (++spins > 4096u) sched_yield();
    }
    atomic_flag_clear_explicit(&pool.busy, memory_order_release);
}

#endif
