// GradKit — the shared generator behind layer initialization. SPDX-License-Identifier: MIT
import Synchronization

/// Seeds the generator that layers draw their initial weights (and dropout
/// layers their own seeds) from, like `torch.manual_seed`: the same seed and
/// the same construction order give the same model on every machine.
public func manualSeed(_ seed: UInt64) {
    SharedRandom.generator.withLock { $0 = SeededGenerator(seed: seed) }
}

enum SharedRandom {
    static let generator = Mutex(SeededGenerator(seed: 0x6772_6164_6b69_7400))

    /// Runs `body` with the shared generator (locked: safe from any thread).
    static func with<Result>(_ body: (inout SeededGenerator) -> Result) -> Result {
        generator.withLock { body(&$0) }
    }

    /// The shared generator's state, for checkpoints.
    static var state: [UInt64] {
        get { generator.withLock { $0.stateWords } }
        set { generator.withLock { $0 = SeededGenerator(state: newValue) } }
    }
}
