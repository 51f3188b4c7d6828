// GradKit — the shared generator behind layer initialization. SPDX-License-Identifier: MIT
import Synchronization

/// Seeds the generator that layers draw their initial weights (and dropout
/// layers their own seeds) from, like `torch.manual_seed`: the same seed and
/// the same construction order give the same model on every machine.
///
/// The generator is shared by every thread, as PyTorch's is: code that builds
/// models on several threads at once interleaves its draws. Use
/// ``withManualSeed(_:_:)`` there.
public func manualSeed(_ seed: UInt64) {
    SharedRandom.generator.withLock { $0 = SeededGenerator(seed: seed) }
}

/// Runs `body` with layer initialization on this thread drawing from its own
/// generator seeded with `seed` instead of the shared one, so that other
/// threads cannot interleave their draws: the same seed gives the same model
/// whatever runs concurrently. Calls nest; the shared generator is untouched.
///
/// ```swift
/// let model = withManualSeed(42) { MLP(sizes: [64, 128, 10]) }
/// ```
public func withManualSeed<Result>(_ seed: UInt64, _ body: () throws -> Result) rethrows -> Result {
    let scope = SharedRandom.scopes.current
    scope.stack.append(SeededGenerator(seed: seed))
    defer { scope.stack.removeLast() }
    return try body()
}

enum SharedRandom {
    static let generator = Mutex(SeededGenerator(seed: 0x6772_6164_6b69_7400))

    /// This thread's generators from ``withManualSeed(_:_:)``, innermost last.
    final class Scopes {
        var stack: [SeededGenerator] = []
    }

    static let scopes = ThreadLocal { Scopes() }

    /// Runs `body` with this thread's scoped generator, or else the shared one
    /// (locked: safe from any thread).
    static func with<Result>(_ body: (inout SeededGenerator) -> Result) -> Result {
        let scope = scopes.current
        if !scope.stack.isEmpty { return body(&scope.stack[scope.stack.count - 1]) }
        return generator.withLock { body(&$0) }
    }

    /// The shared generator's state, for checkpoints.
    static var state: [UInt64] {
        get { generator.withLock { $0.stateWords } }
        set { generator.withLock { $0 = SeededGenerator(state: newValue) } }
    }
}
