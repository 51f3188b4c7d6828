// GradKit — package-level facts. SPDX-License-Identifier: MIT

/// The library's version (semantic versioning).
public let gradKitVersion = "0.1.0"
