// Gradient clipping: PyTorch goldens, properties, AGC against its formula, NaN handling.
#if canImport(Glibc)
import Glibc
#endif
import Testing

@testable import GradKit

private func parametersWithGradients(_ values: [Float]) -> [Parameter] {
    let p1 = Parameter(Tensor(zeros: [2, 3]), name: "p1"), p2 = Parameter(Tensor(zeros: [4]), name: "p2")
    p1.gradient = Tensor(shape: [2, 3], scalars: Array(values[0..<6]))
    p2.gradient = Tensor(shape: [4], scalars: Array(values[6..<10]))
    return [p1, p2]
}

private func allGradients(_ parameters: [Parameter]) -> [Float] { parameters.flatMap { $0.gradient?.scalars ?? [] } }

@Suite("Clipping")
struct ClippingTests {
    @Test("clipGradientNorm matches torch.nn.utils.clip_grad_norm_ for p = 1, 2, ∞, 3", arguments: KernelBackend.allCases)
    func goldens(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            for golden in OptimizerGoldens.clipCases {
                let parameters = parametersWithGradients(OptimizerGoldens.clipGradients)
                let total = clipGradientNorm(parameters, maxNorm: golden.maxNorm, normType: golden.normType)
                // Totals: double accumulation here, float in PyTorch; a few ulp.
                expectClose([total], [golden.total], relative: 1e-6, "total p=\(golden.normType) \(backend)")
                expectClose(allGradients(parameters), golden.clipped, relative: 2e-6, "clipped p=\(golden.normType) max=\(golden.maxNorm) \(backend)")
            }
            let parameters = parametersWithGradients(OptimizerGoldens.clipGradients)
            clipGradientValue(parameters, clipValue: OptimizerGoldens.clipValue)
            expectIdentical(allGradients(parameters), OptimizerGoldens.clippedByValue, "clip_grad_value_")
        }
    }

    @Test("properties: bounded result, untouched below the threshold, (nearly) idempotent")
    func properties() {
        for normType: Float in [1, 2, 3, .infinity] {
            for seed in 0..<20 {
                let values = randomScalars(10, seed: UInt64(seed), in: -5...5)
                let parameters = parametersWithGradients(values)
                let total = gradientNorm(parameters, normType: normType)
                let maxNorm = total * [0.1, 0.5, 0.99, 1.01, 3][seed % 5]
                clipGradientNorm(parameters, maxNorm: maxNorm, normType: normType)
                let after = gradientNorm(parameters, normType: normType)
                #expect(after <= maxNorm * (1 + 1e-6), "p=\(normType): \(after) > \(maxNorm)")
                if maxNorm >= total {
                    expectIdentical(allGradients(parameters), values, "below the threshold nothing changes")
                }
                let once = allGradients(parameters)
                clipGradientNorm(parameters, maxNorm: maxNorm, normType: normType)
                // The second coefficient is maxNorm / (maxNorm' + 1e-6) with
                // maxNorm' <= maxNorm: within 1e-6 / maxNorm of 1.
                expectClose(allGradients(parameters), once, relative: 1e-6 / Swift.min(maxNorm, 1) + 2.4e-7, "idempotent p=\(normType)")
            }
        }
    }

    @Test("norms are deterministic: any thread count, either backend")
    func deterministicNorms() {
        withExclusiveThreadCount {
            // Few segments, one long (split in blocks), and many of uneven
            // lengths like a deep MLP's weights and biases (whole segments per part).
            let fewLong = (0..<5).map { i in Parameter(Tensor(zeros: [i == 2 ? 300_001 : 1000 * (i + 1)])) }
            let many = (0..<42).map { i in Parameter(Tensor(zeros: [i % 2 == 0 ? 4096 + 7 * i : 64])) }
            for (i, p) in (fewLong + many).enumerated() { p.gradient = randomTensor(p.shape, seed: UInt64(i), in: -3...3) }
            for parameters in [fewLong, many] {
                for normType: Float in [1, 2, 3, .infinity] {
                    var results: [UInt32] = []
                    for threads in [1, 2, 3] {
                        Kernels.threadCount = threads
                        results.append(Kernels.withBackend(.c) { gradientNorm(parameters, normType: normType) }.bitPattern)
                    }
                    results.append(Kernels.withBackend(.swift) { gradientNorm(parameters, normType: normType) }.bitPattern)
                    #expect(Set(results).count == 1, "p=\(normType), \(parameters.count) tensors: \(results)")
                }
                for threads in [1, 2, 3] {
                    Kernels.threadCount = threads
                    let norms = gradientNorms(parameters)
                    for (p, norm) in zip(parameters, norms) {
                        let reference = p.gradient!.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                        #expect(Swift.abs(Double(norm!) - reference) <= 1e-6 * reference)
                    }
                }
            }
        }
    }

    @Test("NaN and infinity leave gradients untouched and are named")
    func nonFinite() {
        for backend in KernelBackend.allCases {
            Kernels.withBackend(backend) {
                var values = randomScalars(10, seed: 9, in: -5...5)
                values[7] = .nan
                let parameters = parametersWithGradients(values)
                let total = clipGradientNorm(parameters, maxNorm: 0.1)
                #expect(total.isNaN)
                expectIdentical(allGradients(parameters), values, "untouched (\(backend))")
                #expect(nonFiniteGradients(parameters).map(\.name) == ["p2"])
                values[7] = 1
                values[2] = -.infinity
                let second = parametersWithGradients(values)
                #expect(clipGradientNorm(second, maxNorm: 0.1) == .infinity)
                expectIdentical(allGradients(second), values, "untouched (\(backend))")
                #expect(nonFiniteGradients(second).map(\.name) == ["p1"])
                #expect(clipGradientNormPerTensor(second, maxNorm: 0.1) == 1, "only the finite tensor is clipped")
                expectIdentical(Array(allGradients(second)[0..<6]), Array(values[0..<6]))
            }
        }
    }

    @Test("per-tensor clipping: each gradient to its own limit (Keras clipnorm)")
    func perTensor() {
        let parameters = parametersWithGradients(OptimizerGoldens.clipGradients)
        let norms = gradientNorms(parameters).map { $0! }
        let limit = (norms[0] + norms[1]) / 2 // between the two: only the larger is clipped
        #expect(clipGradientNormPerTensor(parameters, maxNorm: limit) == 1)
        let after = gradientNorms(parameters).map { $0! }
        let larger = norms[0] > norms[1] ? 0 : 1
        expectClose([after[larger]], [limit], relative: 1e-6)
        #expect(after[1 - larger] == norms[1 - larger])
    }

    @Test("adaptive clipping matches its formula, unit by unit", arguments: KernelBackend.allCases)
    func adaptive(backend: KernelBackend) {
        Kernels.withBackend(backend) {
            let weight = Parameter(randomTensor([7, 33], seed: 1, in: -1...1), name: "w")
            let bias = Parameter(randomTensor([7], seed: 2, in: -0.001...0.001), name: "b")
            let gradW = randomTensor([7, 33], seed: 3, in: -1...1).scalars.enumerated().map { $0.offset / 33 % 2 == 0 ? $0.element * 0.001 : $0.element }
            let gradB = randomTensor([7], seed: 4, in: -1...1).scalars
            weight.gradient = Tensor(shape: [7, 33], scalars: gradW)
            bias.gradient = Tensor(shape: [7], scalars: gradB)
            let clipped = adaptiveClipGradients([weight, bias], clipFactor: 0.05, epsilon: 1e-3)
            // The formula in Double: limit = f max(|w_unit|, eps); scale when |g_unit| > limit.
            func expected(_ g: [Float], _ w: [Float], rows: Int) -> ([Float], Int) {
                let columns = g.count / rows
                var result = g, count = 0
                for r in 0..<rows {
                    let range = (r * columns)..<((r + 1) * columns)
                    let gn = range.reduce(0.0) { $0 + Double(g[$1]) * Double(g[$1]) }.squareRoot()
                    let wn = range.reduce(0.0) { $0 + Double(w[$1]) * Double(w[$1]) }.squareRoot()
                    let limit = 0.05 * Swift.max(wn, 1e-3)
                    if gn > limit {
                        count += 1
                        for i in range { result[i] = Float(Double(g[i]) * limit / Swift.max(gn, 1e-6)) }
                    }
                }
                return (result, count)
            }
            let (w, wCount) = expected(gradW, weight.value.scalars, rows: 7)
            let (b, bCount) = expected(gradB, bias.value.scalars, rows: 1)
            #expect(clipped == wCount + bCount && wCount > 0 && wCount < 7, "some units clipped, not all")
            expectClose(weight.gradient!.scalars, w, relative: 1e-6, "weights \(backend)")
            expectClose(bias.gradient!.scalars, b, relative: 1e-6, "bias \(backend)")
        }
    }

    @Test("clipping never writes through a gradient handed out earlier")
    func valueSemantics() {
        let parameters = parametersWithGradients(OptimizerGoldens.clipGradients)
        let before = parameters[0].gradient!
        let copy = before.scalars
        clipGradientNorm(parameters, maxNorm: 0.1)
        #expect(before.scalars == copy)
        #expect(parameters[0].gradient!.scalars != copy)
    }

    @Test("a negative or NaN maxNorm traps")
    func invalidMaxNorm() async {
        let negative = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let p = Parameter(Tensor(ones: [2]))
            p.gradient = Tensor(ones: [2])
            clipGradientNorm([p], maxNorm: -1)
        }
        #expect(standardError(negative).contains("clipGradientNorm: maxNorm must be >= 0, got -1.0"))
        let nan = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let p = Parameter(Tensor(ones: [2]))
            p.gradient = Tensor(ones: [2])
            clipGradientNorm([p], maxNorm: .nan)
        }
        #expect(standardError(nan).contains("clipGradientNorm: maxNorm must be >= 0, got nan"))
    }
}
