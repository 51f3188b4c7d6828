// gradkit train — what a run reports: the human summary and the --json line. SPDX-License-Identifier: MIT
import GradKit

/// The figures a training run ends with.
struct TrainResult {
    /// Loss and accuracy on the test part; nil without a test set.
    var test: (loss: Float, accuracy: Float?, count: Int)?
    var trainLoss: Float
    var validationAccuracy: Float?
    var epochs: Int
    var epochsThisRun: Int
    var steps: Int
    var skippedSteps: Int
    var trainingSeconds: Double
    var stopped: String?
    /// Training ended because its gradients stayed non-finite (the process exits with status 1).
    var diverged: Bool
    var report: GradientMonitor.Report
    /// How the run's matrix products computed (`--matmul-precision`).
    var matmulPrecision: MatmulPrecision

    /// The `--json` line's object; numbers that do not apply (or are not finite) are null.
    func json(totalSeconds: Double) -> JSON {
        func number(_ value: Float?) -> JSON { value.map { .number(Double($0)) } ?? .null }
        let layers = report.layers.map { layer in
            JSON.object(["layer": .number(Double(layer.index)), "path": .string(layer.path), "verdict": .string(layer.verdict.rawValue)])
        }
        return .object([
            "test_accuracy": number(test?.accuracy), "test_loss": number(test?.loss), "test_examples": test.map { .number(Double($0.count)) } ?? .null,
            "train_loss": number(trainLoss), "validation_accuracy": number(validationAccuracy),
            "epochs": .number(Double(epochs)), "epochs_this_run": .number(Double(epochsThisRun)), "steps": .number(Double(steps)),
            "skipped_steps": .number(Double(skippedSteps)), "seconds": .number(trainingSeconds), "total_seconds": .number(totalSeconds),
            "stopped": stopped.map(JSON.string) ?? .null, "diverged": .bool(diverged), "healthy": .bool(report.isHealthy), "layers": .array(layers),
            "matmul_precision": .string(matmulPrecision.rawValue),
        ])
    }
}

extension TrainingRun {
    /// The run's figures after `history`: the test part evaluated, if there is one.
    func result(_ history: History?, trainingSeconds: Double) -> TrainResult {
        let test = data.test.map { part in
            let evaluation = trainer.evaluate(part)
            return (loss: evaluation.loss, accuracy: evaluation.accuracy, count: part.count)
        }
        let stopped = configuration.outputs.stopAfter == trainer.completedEpochs && history?.stoppedEarly != nil
            ? "stopped after epoch \(trainer.completedEpochs) (--stop-after)" : history?.stoppedEarly
        return TrainResult(
            test: test, trainLoss: history?.epochs.last?.loss ?? trainer.evaluate(data.train).loss,
            validationAccuracy: history?.epochs.last?.validationAccuracy ?? data.validation.flatMap { trainer.evaluate($0).accuracy },
            epochs: trainer.completedEpochs, epochsThisRun: history?.epochs.count ?? 0,
            steps: trainer.completedSteps, skippedSteps: trainer.monitor.report.skippedSteps, trainingSeconds: trainingSeconds,
            stopped: stopped, diverged: history?.diverged ?? false, report: trainer.monitor.report,
            matmulPrecision: configuration.plan.matmulPrecision)
    }

    /// How the run stopped, the test figures (or that there is no test set) and the gradient-health report.
    func printSummary(_ result: TrainResult) {
        if let stopped = result.stopped { print(stopped) }
        let what = "\(result.epochsThisRun) epochs in \(fixed(Float(result.trainingSeconds))) s"
        if let test = result.test {
            let accuracy = test.accuracy.map { "accuracy \(percent($0)), " } ?? ""
            print("test: \(accuracy)loss \(fixed(test.loss)) on \(test.count) examples; \(what)")
        } else {
            print("no test set (--test-fraction 0 and no --test): training loss \(fixed(result.trainLoss)); \(what)")
        }
        print(result.report)
    }
}
