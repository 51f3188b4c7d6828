// GradKit — package-level facts. SPDX-License-Identifier: MIT

/// GradKit: training neural networks with gradients you can see.
public enum GradKit {
    /// The library's version (semantic versioning).
    public static let version = "0.1.0"
}
