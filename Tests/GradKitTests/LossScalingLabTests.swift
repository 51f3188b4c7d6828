// The lab's loss-scaling experiment on hand-made trials: which configuration underflows, restores
// FP32 or matches it follows the rules the report states; the zero share counts what the format
// stores; and the network stores every layer's output.
import Testing

@testable import GradKit
@testable import GradKitLab

/// A trial with this test score and these per-layer zero shares.
private func trial(_ score: Double, zeros: [Double]) -> Trial {
    var t = Trial(learningRate: 1e-3)
    t.score = score
    for (i, share) in zeros.enumerated() { t.values[LossScaling.Key.zeroShare(layer: i + 1)] = share }
    return t
}

/// One seed's selected trials.
private func seed(fp32: Trial, fp16: Trial, scaled: Trial, bf16: Trial, majority: Double = 0.1) -> SeedTrials {
    var floor = Trial()
    floor.score = majority
    let selected = [
        LossScaling.Name.fp32: fp32, LossScaling.Name.fp16: fp16, LossScaling.Name.scaled: scaled, LossScaling.Name.bf16: bf16,
        ControlName.majorityClass: floor,
    ]
    return SeedTrials(seed: RunSeed(value: 0), metric: .testAccuracy, grids: [:], selected: selected)
}

@Suite("Lab: loss scaling")
struct LossScalingLabTests {
    static let reference = [0.05, 0.03, 0.1, 0.18, 0.2, 0.09]

    @Test("fp16 underflows when a layer has 10 points more zeros than FP32 and it scores a quarter of the way down to the majority class")
    func underflowRule() {
        let fp32 = trial(0.9, zeros: Self.reference), ok = trial(0.9, zeros: Self.reference)
        let claim = LossScaling.underflows()
        // FP32 0.9, majority 0.1: the margin is 0.2.
        let starved = trial(0.69, zeros: [0.9, 0.9, 0.9, 0.9, 0.9, 0.4])
        #expect(claim.test(starved, seed(fp32: fp32, fp16: starved, scaled: ok, bf16: ok)))
        // Many zeros but still training well: not a failure.
        let survives = trial(0.85, zeros: [0.9, 0.9, 0.9, 0.9, 0.9, 0.4])
        #expect(!claim.test(survives, seed(fp32: fp32, fp16: survives, scaled: ok, bf16: ok)))
        // Poor accuracy without extra zeros (9 points at most): not underflow.
        let poor = trial(0.5, zeros: Self.reference.map { $0 + 0.09 })
        #expect(!claim.test(poor, seed(fp32: fp32, fp16: poor, scaled: ok, bf16: ok)))
        #expect(LossScaling.excessZeros(starved, seed(fp32: fp32, fp16: starved, scaled: ok, bf16: ok)).map { ($0 * 100).rounded() }
            == [85, 87, 80, 72, 70, 31])
    }

    @Test("loss scaling restores FP32 within 3 points, without extra zeros, beating unscaled fp16 clearly; bf16 only has to match")
    func restoreAndMatchRules() {
        let fp32 = trial(0.9, zeros: Self.reference), fp16 = trial(0.5, zeros: [0.9, 0.9, 0.9, 0.9, 0.9, 0.4])
        let restores = LossScaling.restores(), matches = LossScaling.matches()
        func check(_ candidate: Trial, fp16: Trial = fp16) -> (Bool, Bool) {
            let s = seed(fp32: fp32, fp16: fp16, scaled: candidate, bf16: candidate)
            return (restores.test(candidate, s), matches.test(candidate, s))
        }
        #expect(check(trial(0.875, zeros: Self.reference)) == (true, true))
        #expect(check(trial(0.865, zeros: Self.reference)) == (false, false))
        #expect(check(trial(0.95, zeros: Self.reference.map { $0 + 0.11 })) == (false, false))
        // Matching FP32 is not enough to restore it when unscaled fp16 did about as well.
        #expect(check(trial(0.9, zeros: Self.reference), fp16: trial(0.88, zeros: Self.reference)) == (false, true))
        #expect(LossScaling.lossWeightWords == "2⁻¹⁹")
        #expect(check(trial(.nan, zeros: Self.reference)) == (false, false))
    }

    @Test("the zero share counts the entries the format stores as zero in the layer's weight gradient")
    func zeroShare() throws {
        let recorder = LossScaling.Recorder(layers: 2)
        // 2^-26 and 1e-9 underflow in fp16, 0 is zero anyway; 2^-24, 1e-3 and 1 survive.
        let gradient = Tensor(shape: [2, 3], scalars: [0x1p-26, 1e-9, 0, 0x1p-24, 1e-3, 1])
        let stored = try #require(recorder.store(gradient, format: .float16, layer: 1))
        #expect(stored.scalars == [0, 0, 0, 0x1p-24, 0.0010004043579101562, 1])
        #expect(recorder.store(gradient, format: nil, layer: 0) == nil)
        _ = recorder.store(gradient, format: .bfloat16, layer: 0)
        // A bias (no layer) is rounded but not counted.
        _ = recorder.store(gradient, format: .float16, layer: nil)
        #expect(recorder.zeros == [2, 3] && recorder.entries == [12, 6])
        #expect(recorder.zeroShares == [2.0 / 12, 0.5])
    }

    @Test("the network stores its input and every layer's output in the format, and is the plain MLP in FP32")
    func network() {
        let plain = LossScaling.network(nil), stored = LossScaling.network(.float16)
        #expect(plain.children.count == 2 * LossScaling.depth - 1)
        #expect(stored.children.count == 1 + 2 * (2 * LossScaling.depth - 1))
        #expect(stored.children.enumerated().allSatisfy { i, layer in (i % 2 == 0) == (layer is StorageRounding) })
        #expect(plain.parameters.count == stored.parameters.count)
    }
}
