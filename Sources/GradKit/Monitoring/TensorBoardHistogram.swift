// GradKit — histograms bucketed as TensorBoard's and PyTorch's writers do. SPDX-License-Identifier: MIT

/// A histogram in TensorBoard's `HistogramProto` form: summary statistics and
/// bucket counts, each bucket named by its right edge.
///
/// The edges are PyTorch's `SummaryWriter` default (`bins="tensorflow"`, from
/// TensorFlow's `histogram.cc`): 0 and ±1e-12·1.1^k for every k that keeps
/// the magnitude below 1e20 (1,549 edges), computed in double exactly as
/// PyTorch does. A value v counts in the bucket [e_i, e_{i+1}) (the last
/// bucket is closed), as `numpy.histogram` counts; values beyond ±1e20 count
/// in the statistics only. As in PyTorch's `make_histogram`, only the buckets
/// from the first to the last non-empty one are kept, plus an empty bucket
/// before them whose right edge is the first kept bucket's left edge.
public struct TensorBoardHistogram: Sendable, Equatable {
    /// The smallest value.
    public var minimum: Double
    /// The largest value.
    public var maximum: Double
    /// How many values.
    public var count: Double
    /// Σv.
    public var sum: Double
    /// Σv².
    public var sumOfSquares: Double
    /// Each kept bucket's right edge, increasing.
    public var bucketLimits: [Double]
    /// Each kept bucket's count.
    public var bucketCounts: [Double]

    /// The default bucket edges, increasing, as PyTorch's `SummaryWriter` builds them.
    public static let defaultEdges: [Double] = {
        var positive: [Double] = []
        var v = 1e-12
        while v < 1e20 {
            positive.append(v)
            v *= 1.1
        }
        return positive.reversed().map { -$0 } + [0] + positive
    }()

    /// The histogram of `values`, or nil when it has no bucket to show: no
    /// values, a value that is not finite (TensorBoard's histogram op rejects
    /// those), or every value beyond ±1e20.
    public init?(_ values: some Collection<Float>) {
        guard !values.isEmpty else { return nil }
        let edges = TensorBoardHistogram.defaultEdges
        var counts = [Double](repeating: 0, count: edges.count - 1)
        var minimum = Double.infinity, maximum = -Double.infinity, sum = 0.0, squares = 0.0
        for value in values {
            guard value.isFinite else { return nil }
            let v = Double(value)
            minimum = Swift.min(minimum, v)
            maximum = Swift.max(maximum, v)
            sum += v
            squares += v * v
            if let bucket = TensorBoardHistogram.bucket(of: v, edges: edges) { counts[bucket] += 1 }
        }
        guard let first = counts.firstIndex(where: { $0 > 0 }), let last = counts.lastIndex(where: { $0 > 0 }) else { return nil }
        // counts[i] is the bucket [edges[i], edges[i + 1]); TensorBoard names a bucket by its right edge.
        if first > 0 {
            bucketCounts = Array(counts[(first - 1)...last])
            bucketLimits = Array(edges[first...(last + 1)])
        } else {
            bucketCounts = [0] + counts[...last]
            bucketLimits = Array(edges[0...(last + 1)])
        }
        self.minimum = minimum
        self.maximum = maximum
        self.count = Double(values.count)
        self.sum = sum
        self.sumOfSquares = squares
    }

    /// The bucket i with edges[i] <= v < edges[i + 1] (the last one closed), or nil outside the edges.
    static func bucket(of v: Double, edges: [Double]) -> Int? {
        guard v >= edges[0], v <= edges[edges.count - 1] else { return nil }
        if v == edges[edges.count - 1] { return edges.count - 2 }
        // The first edge above v, by bisection; its predecessor starts v's bucket.
        var low = 0, high = edges.count - 1
        while low < high {
            let middle = (low + high) / 2
            if edges[middle] > v { high = middle } else { low = middle + 1 }
        }
        return low - 1
    }
}
