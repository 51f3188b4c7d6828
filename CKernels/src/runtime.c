// GradKit CKernels — instruction-set detection and build facts. SPDX-License-Identifier: MIT
#include "ck_internal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if CK_HAVE_X86
#include <cpuid.h>
#endif

static ck_isa detect_isa(void) {
#if CK_HAVE_X86
    __builtin_cpu_init();
    // __builtin_cpu_supports also checks that the OS saves the wide registers.
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma")) {
        return CK_ISA_AVX512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return CK_ISA_AVX2;
    }
#endif
    return CK_ISA_PORTABLE;
}

// -1 until first use. Detection is idempotent, so racing first calls agree.
static _Atomic int detected_isa = -1;
// A thread's override of the level (-1: none). Per thread, so that a test or
// benchmark forcing a code path does not change other threads' results; the
// calling thread picks the path before a kernel forks, so pool workers follow it.
static _Thread_local int thread_isa = -1;

ck_isa ck_isa_detected(void) {
    int level = atomic_load_explicit(&detected_isa, memory_order_relaxed);
    if (level < 0) {
        level = (int)detect_isa();
        atomic_store_explicit(&detected_isa, level, memory_order_relaxed);
    }
    return (ck_isa)level;
}

ck_isa ck_isa_active(void) {
    int level = thread_isa;
    return level >= 0 ? (ck_isa)level : ck_isa_detected();
}

ck_isa ck_isa_select(ck_isa requested) {
    ck_isa best = ck_isa_detected();
    ck_isa level = requested < best ? requested : best;
    if ((int)level < 0) level = CK_ISA_PORTABLE;
    thread_isa = (int)level;
    return level;
}

void ck_isa_clear(void) { thread_isa = -1; }

int ck_isa_override(void) { return thread_isa; }

void ck_isa_set_override(int level) { thread_isa = level; }

// The largest cache cpu0 reports in sysfs ("32768K"), or 0. glibc's
// sysconf(_SC_LEVEL3_CACHE_SIZE) is not used: on AMD it reports the whole
// package's L3 (384 MiB on this project's 2-vCPU VM, whose vCPUs share 32 MiB).
static size_t last_level_cache_bytes(void) {
    size_t largest = 0;
    for (int index = 0; index < 8; ++index) {
        char path[64];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
        FILE *file = fopen(path, "r");
        if (!file) continue;
        unsigned long value = 0;
        char unit = 0;
        int fields = fscanf(file, "%lu%c", &value, &unit);
        fclose(file);
        if (fields < 1) continue;
        size_t bytes = value * (unit == 'K' ? 1024ul : unit == 'M' ? 1024ul * 1024 : 1ul);
        largest = bytes > largest ? bytes : largest;
    }
    return largest;
}

size_t ck_streaming_threshold_default(void) {
    static _Atomic size_t cached = 0;
    size_t bytes = atomic_load_explicit(&cached, memory_order_relaxed);
    if (bytes == 0) {
        bytes = last_level_cache_bytes();
        if (bytes == 0) bytes = (size_t)32 << 20;
        atomic_store_explicit(&cached, bytes, memory_order_relaxed);
    }
    return bytes;
}

// SIZE_MAX - 1 marks "not set": the default, read on first use.
static _Atomic size_t streaming_threshold = SIZE_MAX - 1;

void ck_set_streaming_threshold(size_t bytes) {
    atomic_store_explicit(&streaming_threshold, bytes, memory_order_relaxed);
}

size_t ck_streaming_threshold(void) {
    size_t bytes = atomic_load_explicit(&streaming_threshold, memory_order_relaxed);
    return bytes == SIZE_MAX - 1 ? ck_streaming_threshold_default() : bytes;
}

bool ck_build_openmp(void) {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

bool ck_build_native(void) {
#ifdef CK_NATIVE_BUILD // set by Package.swift with the NativeOpenMP trait
    return true;
#else
    return false;
#endif
}

#if CK_HAVE_X86
// XCR0, the state components the OS saves on a context switch (0 without OSXSAVE).
static uint64_t os_saved_state(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return 0;
    unsigned int low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}
#endif

bool ck_cpu_has_avx512_bf16(void) {
#if CK_HAVE_X86
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_max(0, NULL) < 7) return false;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    if (!(ebx & (1u << 16)) || eax < 1) return false; // AVX512F; subleaf 1 exists
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    if (!(eax & (1u << 5))) return false;
    const uint64_t avx512_state = 0xe6; // SSE, AVX, opmask, ZMM0-15 upper halves, ZMM16-31
    return (os_saved_state() & avx512_state) == avx512_state;
#else
    return false;
#endif
}

bool ck_cpu_has_amx_bf16(void) {
#if CK_HAVE_X86
    unsigned int eax, ebx, ecx, edx;
    if (__get_cpuid_max(0, NULL) < 7) return false;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    if (!(edx & (1u << 22)) || !(edx & (1u << 24))) return false;
    const uint64_t tile_state = (uint64_t)3 << 17; // XTILECFG, XTILEDATA
    return (os_saved_state() & tile_state) == tile_state;
#else
    return false;
#endif
}

void ck_cpu_brand(char *buffer, size_t capacity) {
    if (capacity == 0) return;
    char brand[49] = "unknown";
#if CK_HAVE_X86
    unsigned int regs[12];
    if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned int i = 0; i < 3; ++i) {
            __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
        }
        memcpy(brand, regs, 48);
        brand[48] = '\0';
    }
#endif
    // Trim the padding some CPUs put around the name.
    char *start = brand;
    while (*start == ' ') ++start;
    size_t length = strlen(start);
    while (length > 0 && start[length - 1] == ' ') --length;
    if (length >= capacity) length = capacity - 1;
    memcpy(buffer, start, length);
    buffer[length] = '\0';
}

// ---------------------------------------------------------------- subnormal flushing

// The bits of the thread's floating-point control register that flush
// subnormals: MXCSR's FTZ (bit 15: a subnormal result becomes zero) and DAZ
// (bit 6: a subnormal operand is read as zero) on x86-64, FPCR's FZ (bit 24:
// both) on AArch64. The control register is per thread, so the pool carries the
// publishing thread's bits to the workers that run its job.
#if CK_HAVE_X86
#define FP_FLUSH_BITS 0x8040u
static inline unsigned fp_control(void) { return _mm_getcsr(); }
static inline void set_fp_control(unsigned value) { _mm_setcsr(value); }
#elif defined(__aarch64__)
#define FP_FLUSH_BITS (1u << 24)
static inline unsigned fp_control(void) {
    uint64_t value;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(value));
    return (unsigned)value;
}
static inline void set_fp_control(unsigned value) {
    uint64_t wide = value;
    __asm__ __volatile__("msr fpcr, %0" ::"r"(wide));
}
#else
#define FP_FLUSH_BITS 0u
static inline unsigned fp_control(void) { return 0; }
static inline void set_fp_control(unsigned value) { (void)value; }
#endif

int ck_fp_can_flush_subnormals(void) { return FP_FLUSH_BITS != 0; }

unsigned ck_fp_mode(void) { return fp_control() & FP_FLUSH_BITS; }

void ck_fp_adopt_mode(unsigned mode) {
    unsigned control = fp_control();
    if ((control & FP_FLUSH_BITS) != mode) set_fp_control((control & ~FP_FLUSH_BITS) | mode);
}

int ck_fp_flushes_subnormals(void) { return FP_FLUSH_BITS != 0 && ck_fp_mode() == FP_FLUSH_BITS; }

int ck_fp_set_flush_subnormals(int enabled) {
    ck_fp_adopt_mode(enabled ? FP_FLUSH_BITS : 0);
    return FP_FLUSH_BITS != 0;
}
