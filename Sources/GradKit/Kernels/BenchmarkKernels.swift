// GradKit — raw kernels for the benchmark executable (SPI, not public API). SPDX-License-Identifier: MIT

/// Raw kernel entry points for `gradkit-bench`, which needs baselines (a
/// streaming a*x+y) that no tensor operation maps to one-to-one.
/// `@_spi(Benchmarks) import GradKit` to use; not part of the public API.
@_spi(Benchmarks)
public enum BenchmarkKernels {
    /// `count` floats allocated as GradKit allocates large buffers (2 MiB
    /// aligned, transparent huge pages requested); free with `deallocate()`.
    public static func allocateFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
        LargeAllocation.allocate(bytes: count * 4).bindMemory(to: Float.self, capacity: count)
    }

    /// y += alpha * x over `count` elements, on the active backend.
    public static func axpy(count: Int, y: UnsafeMutablePointer<Float>, alpha: Float, x: UnsafePointer<Float>) {
        Kernels.axpy(count: count, output: y, alpha: alpha, input: x)
    }
}
