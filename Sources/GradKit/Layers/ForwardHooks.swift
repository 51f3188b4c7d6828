// GradKit — forward hooks: code that sees a layer's input and output. SPDX-License-Identifier: MIT
import Synchronization

/// A forward hook: called after a layer runs, with the layer, its input and
/// its output (PyTorch's `register_forward_hook`). It observes: the output
/// goes on unchanged.
public typealias ForwardHook = (_ layer: any Layer, _ input: Tensor, _ output: Tensor) -> Void

/// The forward hooks of one layer, in registration order. Like the layer, used
/// from one thread at a time (hence unchecked: the foreign-layer table only
/// hands it out under its lock).
final class ForwardHooks: @unchecked Sendable {
    private var list = HookList<ForwardHook>()

    init() {}

    @inline(__always) var isEmpty: Bool { list.isEmpty }

    func append(_ hook: @escaping ForwardHook) -> HookHandle {
        let id = list.append(hook)
        return HookHandle { [weak self] in self?.list.remove(id) }
    }

    /// Calls every hook with `layer`, `input` and `output`; returns `output`.
    @inline(__always)
    func run(_ layer: any Layer, _ input: Tensor, _ output: Tensor) -> Tensor {
        if !list.isEmpty { for entry in list.entries { entry.hook(layer, input, output) } }
        return output
    }
}

/// A layer that keeps its forward hooks and runs them itself at the end of
/// `callAsFunction`: every layer GradKit defines.
protocol HookedLayer: Layer {
    var forwardHooks: ForwardHooks { get }
}

extension Layer {
    /// Registers a hook called with this layer's input and output each time it
    /// runs (PyTorch's `register_forward_hook`).
    ///
    /// GradKit's layers run their hooks whenever they are called. A layer you
    /// define runs its hooks when a GradKit container (``Sequential``,
    /// ``Residual``), a ``Trainer`` or ``GradientMonitor/observeForward(_:)``
    /// applies it — calling it directly runs only your `callAsFunction`.
    ///
    /// Hooks observe. A ``Linear`` followed by a ``ReLU`` in a ``Sequential``
    /// stays one fused operation when either has hooks: the hooks see the
    /// pre-activations as the Linear's output and the ReLU's input.
    /// - Returns: a handle whose ``HookHandle/remove()`` unregisters the hook.
    @discardableResult
    public func registerForwardHook(_ hook: @escaping ForwardHook) -> HookHandle {
        if let hooked = self as? any HookedLayer { return hooked.forwardHooks.append(hook) }
        return ForeignLayerHooks.hooks(of: self).append(hook)
    }

    /// Whether `callAsFunction` runs this layer's forward hooks itself.
    var runsOwnForwardHooks: Bool { self is any HookedLayer }

    /// Applies the layer, running its forward hooks when it does not do so itself.
    @inline(__always)
    func apply(_ input: Tensor, runsOwnHooks: Bool) -> Tensor {
        if runsOwnHooks { return self(input) }
        guard let hooks = ForeignLayerHooks.existingHooks(of: self) else { return self(input) }
        return hooks.run(self, input, self(input))
    }
}

/// Forward hooks of layers GradKit does not define, kept beside them (a
/// protocol extension cannot add storage). Entries hold their layer weakly
/// and are dropped once it is gone.
enum ForeignLayerHooks {
    private struct Entry {
        weak var layer: AnyObject?
        let hooks: ForwardHooks
    }

    private struct Table: @unchecked Sendable {
        var entries: [ObjectIdentifier: Entry] = [:]
    }

    private static let table = Mutex(Table())

    /// The hooks of `layer`, made on first use.
    static func hooks(of layer: any Layer) -> ForwardHooks {
        table.withLock { table in
            let key = ObjectIdentifier(layer)
            if let entry = table.entries[key], entry.layer === layer { return entry.hooks }
            table.entries = table.entries.filter { $0.value.layer != nil }
            let hooks = ForwardHooks()
            table.entries[key] = Entry(layer: layer, hooks: hooks)
            return hooks
        }
    }

    /// The hooks of `layer` if any were ever registered.
    static func existingHooks(of layer: any Layer) -> ForwardHooks? {
        table.withLock { table in
            guard let entry = table.entries[ObjectIdentifier(layer)], entry.layer === layer, !entry.hooks.isEmpty else {
                return nil
            }
            return entry.hooks
        }
    }
}
