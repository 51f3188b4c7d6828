// GradKit — the operation codes shared by the C kernels and their Swift twins. SPDX-License-Identifier: MIT
import CKernels

/// One-input maps `y = f(x; a, b)`; see `ck_elementwise.h` for each formula.
enum UnaryOperation: Int, Sendable, CaseIterable {
    case negate, exp, log, sqrt, abs, square, sigmoid, tanh, relu, leakyRelu, elu, gelu, geluTanh
    case softplus, pow, clamp, addScalar, mulScalar, divScalar, rsubScalar, rdivScalar

    var c: ck_unary_op {
        switch self {
        case .negate: CK_UNARY_OP_NEGATE
        case .exp: CK_UNARY_OP_EXP
        case .log: CK_UNARY_OP_LOG
        case .sqrt: CK_UNARY_OP_SQRT
        case .abs: CK_UNARY_OP_ABS
        case .square: CK_UNARY_OP_SQUARE
        case .sigmoid: CK_UNARY_OP_SIGMOID
        case .tanh: CK_UNARY_OP_TANH
        case .relu: CK_UNARY_OP_RELU
        case .leakyRelu: CK_UNARY_OP_LEAKY_RELU
        case .elu: CK_UNARY_OP_ELU
        case .gelu: CK_UNARY_OP_GELU
        case .geluTanh: CK_UNARY_OP_GELU_TANH
        case .softplus: CK_UNARY_OP_SOFTPLUS
        case .pow: CK_UNARY_OP_POW
        case .clamp: CK_UNARY_OP_CLAMP
        case .addScalar: CK_UNARY_OP_ADD_SCALAR
        case .mulScalar: CK_UNARY_OP_MUL_SCALAR
        case .divScalar: CK_UNARY_OP_DIV_SCALAR
        case .rsubScalar: CK_UNARY_OP_RSUB_SCALAR
        case .rdivScalar: CK_UNARY_OP_RDIV_SCALAR
        }
    }

    /// The method that applies it, for messages (`"sqrt()"`).
    var name: String {
        switch self {
        case .negate: "- (negation)"
        case .exp: "exp()"
        case .log: "log()"
        case .sqrt: "sqrt()"
        case .abs: "abs()"
        case .square: "squared()"
        case .sigmoid: "sigmoid()"
        case .tanh: "tanh()"
        case .relu: "relu()"
        case .leakyRelu: "leakyRelu(negativeSlope:)"
        case .elu: "elu(alpha:)"
        case .gelu, .geluTanh: "gelu(approximation:)"
        case .softplus: "softplus(beta:threshold:)"
        case .pow: "pow(_:)"
        case .clamp: "clamped(min:max:)"
        case .addScalar: "+"
        case .mulScalar: "*"
        case .divScalar, .rdivScalar: "/"
        case .rsubScalar: "-"
        }
    }

    /// Which forward values the pullback reads (mirrors ck_unary_backward_f32).
    var pullbackNeedsInput: Bool {
        switch self {
        case .negate, .exp, .sqrt, .sigmoid, .tanh, .relu, .addScalar, .mulScalar, .divScalar, .rsubScalar: false
        default: true
        }
    }

    var pullbackNeedsOutput: Bool {
        switch self {
        case .exp, .sqrt, .sigmoid, .tanh, .relu, .rdivScalar: true
        default: false
        }
    }
}

/// Two-input maps `y = f(a, b)` with broadcasting.
enum BinaryOperation: Int, Sendable, CaseIterable {
    case add, sub, mul, div, maximum, minimum, pow, equal

    var c: ck_binary_op {
        switch self {
        case .add: CK_BINARY_OP_ADD
        case .sub: CK_BINARY_OP_SUB
        case .mul: CK_BINARY_OP_MUL
        case .div: CK_BINARY_OP_DIV
        case .maximum: CK_BINARY_OP_MAXIMUM
        case .minimum: CK_BINARY_OP_MINIMUM
        case .pow: CK_BINARY_OP_POW
        case .equal: CK_BINARY_OP_EQUAL
        }
    }
}

/// Reductions of the middle axis of `[outer, extent, inner]`.
enum ReductionOperation: Int, Sendable, CaseIterable {
    case sum, max, min

    var c: ck_reduce_op {
        switch self {
        case .sum: CK_REDUCE_OP_SUM
        case .max: CK_REDUCE_OP_MAX
        case .min: CK_REDUCE_OP_MIN
        }
    }
}

/// A strided operand after dimension merging: the index space and the operand
/// strides in elements (0 along broadcast dimensions).
struct StridedLayout {
    var shape: [Int]
    var strides: [[Int]]
}
