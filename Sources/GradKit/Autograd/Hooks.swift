// GradKit — hooks: code that runs when a gradient is computed or a layer runs. SPDX-License-Identifier: MIT

/// A gradient hook: sees the gradient computed for a tensor or parameter
/// during `backward()` and may replace it (return the new gradient, of the
/// same shape) or leave it (return nil), as PyTorch's `register_hook`.
public typealias GradientHook = (_ gradient: Tensor) -> Tensor?

/// Removes the hook it was returned for (PyTorch's `RemovableHandle`).
///
/// A hook stays registered until ``remove()`` is called, whether or not the
/// handle is kept; removing twice does nothing.
public final class HookHandle {
    private var removal: (() -> Void)?

    init(_ removal: @escaping () -> Void) { self.removal = removal }

    /// Unregisters the hook.
    public func remove() {
        removal?()
        removal = nil
    }
}

/// Hooks of one owner in registration order, each with an identifier its
/// handle removes it by.
struct HookList<Hook> {
    private(set) var entries: [(id: Int, hook: Hook)] = []
    private var nextID = 0

    @inline(__always) var isEmpty: Bool { entries.isEmpty }

    /// Appends `hook` and returns its identifier.
    mutating func append(_ hook: Hook) -> Int {
        nextID += 1
        entries.append((nextID, hook))
        return nextID
    }

    mutating func remove(_ id: Int) { entries.removeAll { $0.id == id } }
}

extension HookList where Hook == GradientHook {
    /// Runs every hook in order, each seeing the previous one's result.
    /// - Precondition: a replacement has the gradient's shape.
    func apply(to gradient: Tensor, of owner: @autoclosure () -> String) -> Tensor {
        var current = gradient
        for entry in entries {
            guard let replacement = entry.hook(current) else { continue }
            precondition(
                replacement.shape == current.shape,
                "gradient hook on \(owner()): returned a gradient of shape \(replacement.shape) for shape \(current.shape)")
            current = replacement.detached()
        }
        return current
    }
}
