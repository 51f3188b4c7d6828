// GradKit — the shared generator behind layer initialization. SPDX-License-Identifier: MIT
import Synchronization

extension GradKit {
    private static let shared = Mutex(SeededGenerator(seed: 0x6772_6164_6b69_7400))

    /// Seeds the generator that layers draw their initial weights (and
    /// dropout layers their own seeds) from, like `torch.manual_seed`: the same
    /// seed and the same construction order give the same model on every machine.
    public static func seed(_ seed: UInt64) {
        shared.withLock { $0 = SeededGenerator(seed: seed) }
    }

    /// Runs `body` with the shared generator (locked: safe from any thread).
    static func withSharedGenerator<Result>(_ body: (inout SeededGenerator) -> Result) -> Result {
        shared.withLock { body(&$0) }
    }
}
