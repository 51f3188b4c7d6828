// The lab's framework, on hand-made trials: a verdict needs 80% of the seeds (else "mixed"); the
// learning rate and the epoch are chosen on validation data, never on test data; medians, ranges and
// the controls' yardstick are computed as documented; trials run in parallel come back in order.
import Testing

@testable import GradKit
@testable import GradKitLab

/// A trial with these validation and test scores per epoch.
private func trial(validation: [Double], test: [Double], rate: Float? = nil) -> Trial {
    var t = Trial(learningRate: rate)
    t.validation = validation
    t.test = test
    return t
}

private let holdsClaim = Claim(holds: "helps", fails: "does not help", rule: "") { trial, _ in trial.score > 0.5 }

@Suite("Lab framework")
struct LabFrameworkTests {
    @Test("a verdict needs at least 80% of the seeds; otherwise it is mixed")
    func verdicts() {
        func verdict(_ holding: Int, of seeds: Int) -> Verdict {
            Verdict(claim: holdsClaim, outcomes: (0..<seeds).map { $0 < holding }, seeds: seeds)
        }
        // 5 seeds: 4 is 80%.
        #expect(verdict(5, of: 5).label == "helps" && verdict(4, of: 5).label == "helps" && verdict(4, of: 5).agreeing == 4)
        #expect(verdict(3, of: 5).label == "mixed" && verdict(2, of: 5).label == "mixed" && verdict(3, of: 5).agreeing == 3)
        #expect(verdict(1, of: 5).label == "does not help" && verdict(1, of: 5).agreeing == 4 && verdict(0, of: 5).fails)
        // 3 seeds: 80% of 3 is 2.4, so all 3.
        #expect(verdict(3, of: 3).holds && verdict(2, of: 3).label == "mixed" && verdict(1, of: 3).label == "mixed")
        #expect(verdict(0, of: 3).label == "does not help")
        #expect(verdict(3, of: 5).describe(holdsClaim) == "mixed: helps in 3 of 5 seeds")
        #expect(verdict(1, of: 5).describe(holdsClaim) == "does not help in 4 of 5 seeds")
        let reference = Verdict(claim: nil, outcomes: [], seeds: 5)
        #expect(reference.label == "reference" && !reference.holds && !reference.fails && reference.seeds == 5 && reference.agreeing == 5)
    }

    @Test("the epoch with the best validation score is selected, and its test score reported")
    func epochSelection() {
        var t = trial(validation: [0.5, 0.9, 0.8, 0.9], test: [0.4, 0.7, 0.95, 0.6])
        t.selectEpoch(.testAccuracy)
        // Not the best test score (0.95 at epoch 3), not the last epoch: epoch 2, the first with validation 0.9.
        #expect(t.selectedEpoch == 2 && t.score == 0.7 && t.validationScore == 0.9)
        var error = trial(validation: [0.3, .nan, 0.1, 0.2], test: [0.31, .nan, 0.12, 0.05])
        error.selectEpoch(.testMeanSquaredError)
        #expect(error.selectedEpoch == 3 && error.score == 0.12)
        var none = trial(validation: [], test: [])
        none.selectEpoch(.testAccuracy)
        #expect(none.selectedEpoch == nil && none.score.isNaN)
    }

    @Test("the learning rate with the best validation score is kept; ties and non-finite scores go to the first rate")
    func rateSelection() {
        func scored(_ validation: Double, _ rate: Float) -> Trial {
            var t = trial(validation: [validation], test: [1 - validation], rate: rate)
            t.selectEpoch(.testAccuracy)
            return t
        }
        #expect(Analysis.select([scored(0.5, 0.1), scored(0.8, 0.3), scored(0.7, 1)], .testAccuracy).learningRate == 0.3)
        #expect(Analysis.select([scored(0.8, 0.1), scored(0.8, 0.3)], .testAccuracy).learningRate == 0.1)
        #expect(Analysis.select([scored(.nan, 0.1), scored(0.2, 0.3)], .testAccuracy).learningRate == 0.3)
        #expect(Analysis.select([scored(.nan, 0.1), scored(.nan, 0.3)], .testAccuracy).learningRate == 0.1)
        // Lower is better for an error.
        #expect(Analysis.select([scored(0.5, 0.1), scored(0.2, 0.3)], .testMeanSquaredError).learningRate == 0.3)
    }

    @Test("median and range over the seeds, a missing score counting as the worst")
    func ranges() {
        let odd = Range3([3, 1, 2]), even = Range3([4, 1, 3, 2])
        #expect(odd.median == 2 && odd.min == 1 && odd.max == 3 && even.median == 2.5)
        // An error: a missing score counts as the highest. An accuracy: as the lowest.
        let error = Range3([0.2, .nan, 0.4]), accuracy = Range3([0.2, .nan, 0.4], missingIsHigh: false)
        #expect(error.median == 0.4 && error.min == 0.2 && error.max == 0.4)
        #expect(accuracy.median == 0.2 && accuracy.min == 0.2 && accuracy.max == 0.4)
        #expect(Range3([.nan, .nan, 1]).median.isNaN && Range3([.nan, .nan, 1]).min == 1 && Range3([]).median.isNaN)
        #expect(describe(Range3([0.9, 0.95, 1]), percent) == "95.0% (90.0%–100.0%)" && describe(Range3([0.5, 0.5]), percent) == "50.0%")
    }

    @Test("an experiment's analysis judges every claim at every seed against that seed's trials, found by name")
    func analysis() {
        let experiment = Experiment(
            name: "toy", title: "Toy", metric: .testAccuracy, configurations: { _ in [] },
            conclude: { _ in Conclusion(headline: "", demonstrated: false, blocks: []) })
        let beatsBaseline = Claim(holds: "helps", fails: "does not help", rule: "") { trial, seed in
            trial.score > seed["baseline"].score
        }
        let configurations = [
            Configuration("baseline", role: .pathology) { _ in Trial() },
            Configuration("cure", role: .remedy, learningRates: [0.1, 1], claim: beatsBaseline) { _ in Trial() },
        ]
        func t(_ v: Double, _ rate: Float? = nil) -> Trial {
            var x = trial(validation: [v], test: [v], rate: rate)
            x.selectEpoch(.testAccuracy)
            return x
        }
        // Three seeds; the cure's rate 1 is better at seeds 0 and 2, and beats the baseline there only.
        let trials: [[[Trial]]] = [
            [[t(0.5)], [t(0.5)], [t(0.5)]],
            [[t(0.4, 0.1), t(0.9, 1)], [t(0.45, 0.1), t(0.3, 1)], [t(0.2, 0.1), t(0.6, 1)]],
        ]
        let analysis = Analysis(experiment: experiment, plan: Plan(quick: true, seeds: [0, 1, 2]), configurations: configurations, trials: trials)
        let cure = analysis["cure"]
        #expect(cure.trials.map(\.learningRate) == [1, 0.1, 1] && cure.outcomes == [true, false, true])
        #expect(cure.verdict.label == "mixed" && analysis["baseline"].verdict.label == "reference")
        #expect(analysis.mostSeeds(3) && !analysis.mostSeeds(2))
    }

    @Test("the yardstick: halfway from the majority class to the linear model, or half the linear model's error")
    func yardstick() {
        func seed(_ metric: Metric, _ scores: [String: Double]) -> SeedTrials {
            var selected: [String: Trial] = [:]
            for (name, score) in scores {
                var t = Trial()
                t.score = score
                selected[name] = t
            }
            return SeedTrials(seed: RunSeed(value: 0), metric: metric, grids: [:], selected: selected)
        }
        // Binary fractions, so that the thresholds are exact.
        let classification = Yardstick(seed(.testAccuracy, [ControlName.majorityClass: 0.125, ControlName.linear: 0.875]))
        #expect(classification.learned == 0.5 && classification.margin == 0.1875)
        #expect(classification.learns(0.5) && !classification.learns(0.49) && !classification.learns(.nan))
        #expect(classification.clearlyBeats(0.7, 0.5) && !classification.clearlyBeats(0.68, 0.5))
        // A run without a score counts as the majority class.
        #expect(classification.clearlyBeats(0.35, .nan) && !classification.clearlyBeats(0.3, .nan))
        let regression = Yardstick(seed(.testMeanSquaredError, [ControlName.mean: 0.17, ControlName.linear: 0.16]))
        #expect(regression.learned == 0.08 && regression.margin == 0.04)
        #expect(regression.learns(0.05) && !regression.learns(0.09) && regression.clearlyBeats(0.1, .nan) && !regression.clearlyBeats(0.14, .nan))
    }

    @Test("least squares recovers the coefficients of an exact linear target")
    func leastSquaresFit() throws {
        var generator = SeededGenerator(seed: 5)
        let x = Tensor(randomNormal: [50, 3, 2], using: &generator)
        let coefficients: [Double] = [0.5, -1, 2, 0.25, 3, -0.75], constant = 1.5
        var y: [Float] = []
        for i in 0..<50 {
            var sum = constant
            for j in 0..<6 { sum += coefficients[j] * Double(x.scalars[i * 6 + j]) }
            y.append(Float(sum))
        }
        let fitted = leastSquares(try Dataset(features: x, targets: Tensor(shape: [50, 1], scalars: y)))
        let expected = coefficients + [constant]
        #expect(fitted.count == expected.count)
        for (a, b) in zip(fitted, expected) { #expect(Swift.abs(a - b) < 1e-4, "\(fitted)") }
    }

    @Test("median curves: runs that stopped count as infinite, so the median breaks once most have; the band spans the rest")
    func medianCurves() {
        let series = medianSeries("s", [[1, 2, 3, 4], [3, 4], [5]], pastEnd: .infinity)
        #expect(series.points.map(\.y) == [3, 4, .infinity, .infinity])
        #expect(series.band.map(\.low) == [1, 2, 3, 4] && series.band.map(\.high) == [5, 4, 3, 4])
        let ignoring = medianSeries("s", [[1, 2, 3], [3]], pastEnd: .nan)
        #expect(ignoring.points.map(\.y) == [2, 2, 3])
    }

    @Test("run seeds: 5 in a full run, 3 quick, disjoint between base seeds; the three streams differ")
    func seeds() {
        #expect(Lab.seeds(for: LabOptions()) == [0, 1, 2, 3, 4] && Lab.seeds(for: LabOptions(quick: true)).count == 3)
        let a = Set(Lab.seeds(for: LabOptions(seed: 100))), b = Set(Lab.seeds(for: LabOptions(seed: 200)))
        #expect(a.count == 5 && a.isDisjoint(with: b))
        let seed = RunSeed(value: 3)
        #expect(Set([seed.data, seed.initialization, seed.shuffling, RunSeed(value: 4).data]).count == 4)
    }

    @Test("parallelMap returns results in order for any number of threads")
    func parallel() {
        let inputs = Array(0..<37)
        for threads in [1, 2, 3, 8] {
            #expect(parallelMap(inputs, threads: threads) { $0 * $0 } == inputs.map { $0 * $0 }, "\(threads) threads")
        }
    }
}
