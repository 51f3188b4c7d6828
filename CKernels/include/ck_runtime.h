// GradKit CKernels — threads, instruction sets, build facts. SPDX-License-Identifier: MIT
#ifndef CK_RUNTIME_H
#define CK_RUNTIME_H

#include "ck_config.h"

/// Instruction-set levels with a dedicated code path.
typedef enum ck_isa {
    CK_ISA_PORTABLE = 0, ///< plain C, whatever the compiler flags allow
    CK_ISA_AVX2 = 1,     ///< AVX2 + FMA (x86-64)
    CK_ISA_AVX512 = 2,   ///< AVX-512 F/BW/DQ/VL (x86-64)
} ck_isa;

/// The best level this CPU (and OS) supports; detected once.
ck_isa ck_isa_detected(void);

/// The level kernels called on this thread use: the detected one unless this
/// thread lowered it with ck_isa_select.
ck_isa ck_isa_active(void);

/// Makes kernels called on this thread use `requested`, clamped to what the CPU
/// supports; returns the level now active. Other threads are unaffected. For
/// tests and benchmarks that exercise every code path.
ck_isa ck_isa_select(ck_isa requested);

/// Ends this thread's ck_isa_select: back to the detected level.
void ck_isa_clear(void);

/// Number of threads parallel kernels use (the calling thread included).
size_t ck_threads_get(void);

/// Sets the thread count; 0 restores the default (the CPUs this process may use).
/// Under OpenMP the count is passed to each parallel region; otherwise the
/// persistent pool grows on demand and never shrinks (idle workers sleep).
void ck_threads_set(size_t count);

/// Whether products of a few microseconds (SGEMM below 2 MFLOP, a linear
/// layer's backward pair) may be split over threads; default on, and then the
/// split controller below decides, by measurement, whether they are. Off keeps
/// them on one thread. Never changes results. No effect under OpenMP, which
/// never splits them.
void ck_threads_set_fine_grained(int enabled);
int ck_threads_fine_grained(void);

/// Whether this CPU's floating-point unit can flush subnormal numbers to zero
/// (x86-64: MXCSR's FTZ and DAZ; AArch64: FPCR's FZ).
int ck_fp_can_flush_subnormals(void);

/// Whether arithmetic on the calling thread flushes subnormals: a subnormal
/// result becomes zero of its sign and a subnormal operand is read as zero.
int ck_fp_flushes_subnormals(void);

/// Sets the calling thread's mode (as torch.set_flush_denormal); returns 0
/// where the CPU cannot flush. Kernels follow the mode of the thread that
/// calls them: the pool's workers take it on for the parts they run of that
/// thread's jobs. Subnormal arithmetic takes a slow path in hardware (on
/// Intel cores about a hundred cycles per instruction), so a model whose
/// optimizer moments or gradients decay into the subnormal range slows down
/// for no change a trained model could show.
int ck_fp_set_flush_subnormals(int enabled);

/// Decisions per measured window of the split controller.
#define CK_SPLIT_WINDOW 512u
/// Windows in the chosen mode after each probe of four.
#define CK_SPLIT_EXPLOIT 28u
/// The longest interval between two decisions the controller counts, in ns:
/// a longer one means the program was busy elsewhere (evaluation, I/O), and
/// counts as this much.
#define CK_SPLIT_GAP_NS 250000u

/// Whether small products are split is decided from what the choice is for:
/// the time the program takes per small product in either mode. Whether
/// splitting pays depends on the machine's state (on shared VMs the cost of
/// handing data between cores changes for minutes at a time, and shows more in
/// the code between the products, which reads what the other core wrote, than
/// in the products themselves), so it is measured, not predicted. The
/// decisions are counted in windows of CK_SPLIT_WINDOW; a cycle is a probe of
/// four windows split, unsplit, unsplit, split (the symmetric order cancels a
/// steady drift of the machine's speed), then CK_SPLIT_EXPLOIT windows in the
/// mode whose probe windows took less time (split on a tie). The time of a
/// window is the sum of the intervals between its decisions, each at most
/// CK_SPLIT_GAP_NS. In a training loop the same products recur every step, so
/// equal numbers of decisions are equal work in either mode; a wrong choice
/// (a workload that changes between windows) costs speed for one cycle, never
/// results. One process-wide controller serves every thread; this type is
/// public so that tests can drive one with a synthetic clock.
typedef struct ck_split_controller {
    uint64_t last_ns;     ///< the clock at the previous decision; 0 before the first
    uint64_t window_ns;   ///< time counted in the current window
    uint64_t probe_ns[2]; ///< time of this cycle's probe windows, unsplit [0] and split [1]
    uint32_t decisions;   ///< decisions so far in the current window
    uint32_t window;      ///< the current window's place in the cycle (0-3: probe)
    int mode;             ///< the current window's mode: 1 splits
    int chosen;           ///< the last probe's choice
} ck_split_controller;

/// A controller at the start of its first probe (splitting).
void ck_split_controller_init(ck_split_controller *controller);

/// One decision at clock `now_ns`: 1 to split the product it is asked for.
int ck_split_controller_decide(ck_split_controller *controller, uint64_t now_ns);

/// Out-of-place elementwise kernels (maps, their backward rules, broadcast
/// binary ops, fill) whose operands total more than this many bytes write the
/// output with non-temporal stores: at that size the output leaves the cache
/// before anyone reads it, and a normal store would first read each line of it
/// from memory (write-allocate) only to overwrite it. Default: the last-level
/// cache (ck_streaming_threshold_default). 0 streams every such call, SIZE_MAX
/// none. Never changes results.
void ck_set_streaming_threshold(size_t bytes);
size_t ck_streaming_threshold(void);

/// The largest cache CPU 0 reports (Linux sysfs; the last-level cache one
/// core sees), or 32 MiB where none is reported.
size_t ck_streaming_threshold_default(void);

/// The default thread count: CPUs in this process's affinity mask.
size_t ck_threads_default(void);

/// True when compiled with -fopenmp (the NativeOpenMP trait).
bool ck_build_openmp(void);

/// True when compiled for the build machine's CPU (-march=native).
bool ck_build_native(void);

/// Writes the CPU's brand string (cpuid leaves 0x80000002-4), NUL-terminated,
/// into `buffer`; writes "unknown" where the CPU does not report one.
void ck_cpu_brand(char *buffer, size_t capacity);

/// True when the CPU reports AVX512_BF16 (cpuid leaf 7 subleaf 1, EAX bit 5:
/// vdpbf16ps, vcvtneps2bf16) and the OS saves the AVX-512 registers (XCR0).
/// CK_GEMM_PRECISION_BF16's order is the one it computes; the GEMM uses it
/// through ck_bf16_dot_detected (ck_gemm.h).
bool ck_cpu_has_avx512_bf16(void);

/// True when the CPU reports AMX-BF16 and AMX-TILE (cpuid leaf 7, EDX bits 22
/// and 24) and the OS enables the tile state (XCR0 bits 17 and 18). For
/// information only: no kernel uses AMX.
bool ck_cpu_has_amx_bf16(void);

#endif
