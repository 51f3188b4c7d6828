// GradKit — mean-field signal propagation: the variance map, its fixed point and χ₁. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Mean-field theory of a deep, wide, randomly initialized fully connected
/// network (Poole et al., "Exponential expressivity in deep neural networks
/// through transient chaos", 2016; Schoenholz et al., "Deep Information
/// Propagation", 2017): how the pre-activations' variance and the
/// back-propagated gradient change from layer to layer at initialization.
///
/// Each layer is `h = W·φ(h_prev) + b` with `W_ij` drawn with variance
/// `σ_w² / fanIn` and `b_i` with variance `σ_b²`, all independent. With
/// `z ~ N(0, 1)`:
/// ```
/// q_{l+1} = σ_w² · E_z[φ(√q_l · z)²] + σ_b²          (the variance map)
/// q*      = q*'s own image under the map             (the fixed point)
/// χ(q)    = σ_w² · E_z[φ′(√q · z)²]                  (squared-gradient factor of one layer)
/// χ₁      = χ(q*)
/// ```
/// The back-propagated gradient's squared norm is multiplied by `χ(q_l)` at
/// each layer, so its norm by `√χ(q_l)`: below 1 gradients vanish
/// exponentially with depth (the ordered phase), above 1 they explode (the
/// chaotic phase), and `χ₁ = 1` is the edge of chaos, where deep networks
/// train. ``gradientRatios(depth:inputVariance:)`` follows `q_l` layer by
/// layer from the input's variance instead of assuming the fixed point, which
/// is what a network of finite depth sees.
///
/// Expectations are integrals against the Gaussian density, computed by
/// Romberg quadrature on z in `[-12, 12]` (the mass beyond is below 1e-32),
/// in pieces that end where x is 0, ±1, ±2, ±4, ... and at the activation's
/// kink, each refined until successive estimates agree to 1e-12; see
/// `gaussianExpectation(mean:variance:kink:_:)`.
///
/// ```swift
/// let relu = SignalPropagation(activation: .relu, weightVariance: 2)
/// relu.chi1                       // 1: He initialization is critical
/// SignalPropagation(activation: .tanh, weightScale: 1).chi1   // 1 (q* = 0)
/// ```
public struct SignalPropagation: Sendable, Equatable {
    /// The nonlinearity φ; nil for none (a linear network).
    public var activation: Activation?
    /// `σ_w²`: the weights' variance times their fan-in.
    public var weightVariance: Double
    /// `σ_b²`: the biases' variance.
    public var biasVariance: Double

    /// The theory of a network whose layers have weights of variance
    /// `weightVariance / fan-in` and biases of variance `biasVariance`, followed by `activation`.
    /// - Precondition: both variances finite and at least 0.
    public init(activation: Activation?, weightVariance: Double, biasVariance: Double = 0) {
        precondition(
            weightVariance.isFinite && weightVariance >= 0 && biasVariance.isFinite && biasVariance >= 0,
            "SignalPropagation: variances must be finite and >= 0, got σ_w² \(weightVariance) and σ_b² \(biasVariance)")
        self.activation = activation
        self.weightVariance = weightVariance
        self.biasVariance = biasVariance
    }

    /// The same from the standard deviations `σ_w` and `σ_b`, as the papers' phase diagrams are drawn.
    public init(activation: Activation?, weightScale: Double, biasScale: Double = 0) {
        self.init(activation: activation, weightVariance: weightScale * weightScale, biasVariance: biasScale * biasScale)
    }

    /// The variance of the next layer's pre-activations, `σ_w² E[φ(√q z)²] + σ_b²`.
    public func nextVariance(after q: Double) -> Double {
        weightVariance * Self.meanSquare(of: activation, mean: 0, variance: q) + biasVariance
    }

    /// `χ(q) = σ_w² E[φ′(√q z)²]`: the factor by which one layer multiplies the
    /// squared norm of the gradient flowing back through it, when its
    /// pre-activations have variance `q`.
    public func gradientFactor(atVariance q: Double) -> Double {
        weightVariance * Self.meanSquaredSlope(of: activation, mean: 0, variance: q)
    }

    /// The fixed point `q*` of the variance map, reached by iterating it from
    /// `q0` until a step changes `q` by less than 1e-10 of itself (at most
    /// 500 steps: near the edge of chaos the approach is algebraic, not
    /// geometric, and the last iterate is returned). `.infinity` when `q`
    /// grows without bound (an unbounded φ in the chaotic phase).
    public func fixedPoint(startingAt q0: Double = 1) -> Double {
        var q = q0
        for _ in 0..<500 {
            let next = nextVariance(after: q)
            if !next.isFinite || next > 1e12 { return .infinity }
            if abs(next - q) <= 1e-10 * Swift.max(q, 1e-300) { return next }
            q = next
        }
        return q
    }

    /// `χ₁ = χ(q*)`. When `q*` is infinite, the limit of `χ(q)` as q grows,
    /// evaluated at q = 1e12 (for ReLU-like φ, χ does not depend on q at all).
    public var chi1: Double {
        let q = fixedPoint()
        return gradientFactor(atVariance: q.isFinite ? q : 1e12)
    }

    /// The pre-activation variances `q_1 ... q_depth` of `depth` layers fed an
    /// input whose features have mean square `inputVariance` (their variance,
    /// when centered): `q_1 = σ_w² · inputVariance + σ_b²`, then the map.
    /// - Precondition: `depth >= 0`, `inputVariance >= 0`.
    public func variances(depth: Int, inputVariance: Double) -> [Double] {
        precondition(depth >= 0 && inputVariance >= 0, "SignalPropagation.variances: need depth >= 0 and inputVariance >= 0, got \(depth), \(inputVariance)")
        var result: [Double] = []
        var q = weightVariance * inputVariance + biasVariance
        for _ in 0..<depth {
            result.append(q)
            q = nextVariance(after: q)
        }
        return result
    }

    /// The predicted per-layer gradient-norm ratios of a network of `depth`
    /// hidden layers (`Linear → φ`) and a linear readout, all with these
    /// `σ_w²` and `σ_b²`, fed inputs of variance `inputVariance`: element `l`
    /// is `√χ(q_{l+1})`, the norm of the gradient at hidden layer `l+1`'s
    /// pre-activations over that at the next layer's (the readout's, for the
    /// last). Their product is the first hidden layer's gradient over the readout's.
    public func gradientRatios(depth: Int, inputVariance: Double) -> [Double] {
        variances(depth: depth, inputVariance: inputVariance).map { gradientFactor(atVariance: $0).squareRoot() }
    }

    /// The first hidden layer's pre-activation gradient norm over the
    /// readout's: the product of ``gradientRatios(depth:inputVariance:)``.
    public func firstToLastRatio(depth: Int, inputVariance: Double) -> Double {
        gradientRatios(depth: depth, inputVariance: inputVariance).reduce(1, *)
    }

    /// The `σ_w²` at which `χ₁ = 1` for `activation` and `biasVariance`: the
    /// edge of chaos (2 for ReLU, 1 for tanh without biases), found by
    /// bisection on `log σ_w²` in [1e-2, 1e4]; nil when χ₁ stays on one side of
    /// 1 over that range.
    public static func criticalWeightVariance(activation: Activation?, biasVariance: Double = 0) -> Double? {
        func excess(_ logVariance: Double) -> Double {
            SignalPropagation(activation: activation, weightVariance: exp(logVariance), biasVariance: biasVariance).chi1 - 1
        }
        var low = log(1e-2), high = log(1e4)
        guard excess(low) < 0, excess(high) > 0 else { return nil }
        for _ in 0..<30 {
            let middle = (low + high) / 2
            if excess(middle) < 0 { low = middle } else { high = middle }
        }
        return exp((low + high) / 2)
    }
}

// MARK: - The activations and their Gaussian moments

extension SignalPropagation {
    /// `E[φ(x)²]` for x ~ N(mean, variance).
    static func meanSquare(of activation: Activation?, mean: Double, variance: Double) -> Double {
        gaussianExpectation(mean: mean, variance: variance, kink: kink(of: activation)) { x in
            let y = value(of: activation, at: x)
            return y * y
        }
    }

    /// `E[φ(x)]` for x ~ N(mean, variance).
    static func mean(of activation: Activation?, mean: Double, variance: Double) -> Double {
        gaussianExpectation(mean: mean, variance: variance, kink: kink(of: activation)) { value(of: activation, at: $0) }
    }

    /// `E[φ′(x)²]` for x ~ N(mean, variance).
    static func meanSquaredSlope(of activation: Activation?, mean: Double, variance: Double) -> Double {
        gaussianExpectation(mean: mean, variance: variance, kink: kink(of: activation)) { x in
            let slope = derivative(of: activation, at: x)
            return slope * slope
        }
    }

    /// φ(x) in Double, as GradKit's layers compute it in Float (GELU exact,
    /// softplus with β 1 and threshold 20; nil is the identity).
    static func value(of activation: Activation?, at x: Double) -> Double {
        switch activation {
        case nil: x
        case .sigmoid?: 1 / (1 + exp(-x))
        case .tanh?: Glibc.tanh(x)
        case .relu?: Swift.max(x, 0)
        case .leakyRelu(let slope)?: x > 0 ? x : Double(slope) * x
        case .elu(let alpha)?: x > 0 ? x : Double(alpha) * expm1(x)
        case .gelu?: x * 0.5 * erfc(-x / 2.0.squareRoot())
        case .softplus?: x > 20 ? x : log1p(exp(x))
        }
    }

    /// φ′(x), with GradKit's choice at a kink (ReLU's derivative at 0 is 0).
    static func derivative(of activation: Activation?, at x: Double) -> Double {
        switch activation {
        case nil: return 1
        case .sigmoid?:
            let s = 1 / (1 + exp(-x))
            return s * (1 - s)
        case .tanh?:
            let t = Glibc.tanh(x)
            return 1 - t * t
        case .relu?: return x > 0 ? 1 : 0
        case .leakyRelu(let slope)?: return x > 0 ? 1 : Double(slope)
        case .elu(let alpha)?: return x > 0 ? 1 : Double(alpha) * exp(x)
        case .gelu?: return 0.5 * erfc(-x / 2.0.squareRoot()) + x * exp(-x * x / 2) / (2 * Double.pi).squareRoot()
        case .softplus?: return x > 20 ? 1 : 1 / (1 + exp(-x))
        }
    }

    /// Where φ or a derivative of it jumps (the quadrature splits there):
    /// ReLU-like φ at 0, softplus at its threshold 20, where it switches to x
    /// (a jump of 2e-9).
    static func kink(of activation: Activation?) -> Double? {
        switch activation {
        case .relu?, .leakyRelu?, .elu?: 0
        case .softplus?: 20
        default: nil
        }
    }

    /// `E[f(x)]` for x ~ N(mean, variance): `∫ f(mean + √variance · z) ϕ(z) dz`
    /// over z in [-12, 12] (the mass beyond is below 1e-32) by Romberg
    /// quadrature on pieces. With `variance` 0 it is `f(mean)`.
    ///
    /// The pieces end where x is 0, ±1, ±2, ±4, ... and at `kink`. Every φ
    /// GradKit offers changes on a scale of about 1 around x = 0 (and the
    /// ReLU-like ones kink there), so each piece is smooth and about as wide as
    /// the variation inside it, however wide the Gaussian: at variance 100,
    /// tanh′(x)² is a spike 0.1 wide in z, which a grid over the whole range
    /// undersamples. A piece's ends are evaluated just inside it, at the next
    /// representable x (the one-sided limits at a kink).
    ///
    /// Each piece starts with 4 panels and doubles them, each trapezoid sum
    /// reusing the points before it; Richardson extrapolation of those sums
    /// (Romberg's table, whose second column is Simpson's rule) gives the
    /// estimates. A piece stops when two successive estimates agree to 1e-12
    /// of its value, or of the integral of |f ϕ| over the whole range divided
    /// by the number of pieces (for integrands that cancel, such as E[tanh x]),
    /// after at least 16 panels and at most 4,096. A typical expectation costs
    /// about a thousand evaluations of f.
    static func gaussianExpectation(mean: Double, variance: Double, kink: Double? = nil, _ f: (Double) -> Double) -> Double {
        guard variance > 0 else { return f(mean) }
        let s = variance.squareRoot(), limit = 12.0
        let density = 1 / (2 * Double.pi).squareRoot()
        func g(_ z: Double) -> Double { f(mean + s * z) * density * exp(-z * z / 2) }
        // A piece's end: z, and the x it stands for (a cut's exact x, so that a kink is not missed by rounding).
        typealias End = (z: Double, x: Double)
        func inside(_ end: End, toward other: End) -> Double {
            f(other.z > end.z ? end.x.nextUp : end.x.nextDown) * density * exp(-end.z * end.z / 2)
        }
        var ends: [End] = [(-limit, mean - limit * s), (limit, mean + limit * s)]
        func cut(atX x: Double) {
            let z = (x - mean) / s
            if z > -limit && z < limit { ends.append((z, x)) }
        }
        cut(atX: 0)
        if let kink { cut(atX: kink) }
        var width = 1.0
        while width <= abs(mean) + limit * s && width.isFinite {
            cut(atX: width)
            cut(atX: -width)
            width *= 2
        }
        ends.sort { $0.z < $1.z }
        let pieces = zip(ends, ends.dropFirst()).filter { $0.z < $1.z }

        // The first trapezoid sums, 4 panels a piece, also estimate ∫|f ϕ| for the absolute floor.
        let startingPanels = 4
        var sums: [Double] = [], magnitude = 0.0
        for (a, b) in pieces {
            let h = (b.z - a.z) / Double(startingPanels)
            let fa = inside(a, toward: b), fb = inside(b, toward: a)
            var sum = (fa + fb) / 2, absoluteSum = (abs(fa) + abs(fb)) / 2
            for k in 1..<startingPanels {
                let value = g(a.z + Double(k) * h)
                sum += value
                absoluteSum += abs(value)
            }
            sums.append(sum)
            magnitude += absoluteSum * h
        }
        let floor = 1e-12 * magnitude / Double(Swift.max(pieces.count, 1))
        var total = 0.0
        for (piece, sum) in zip(pieces, sums) {
            total += romberg(g, from: piece.0.z, to: piece.1.z, panels: startingPanels, trapezoidSum: sum, floor: floor)
        }
        return total
    }

    /// Romberg quadrature of `g` over [a, b] from a trapezoid sum (the
    /// interior points plus half the ends) over `panels` panels: the panels
    /// double until the table's last two diagonal entries agree to 1e-12 of
    /// the estimate or to `floor`, after two doublings and at most 10.
    private static func romberg(
        _ g: (Double) -> Double, from a: Double, to b: Double, panels: Int, trapezoidSum: Double, floor: Double
    ) -> Double {
        var panels = panels, sum = trapezoidSum
        var row = [sum * (b - a) / Double(panels)]
        for doubling in 1...10 {
            let h = (b - a) / Double(2 * panels)
            for k in stride(from: 1, to: 2 * panels, by: 2) { sum += g(a + Double(k) * h) }
            panels *= 2
            // Row `doubling` of the table: each column removes the next even power of h from the error.
            var next = [sum * h], power = 1.0
            for column in 1...doubling {
                power *= 4
                next.append(next[column - 1] + (next[column - 1] - row[column - 1]) / (power - 1))
            }
            let change = abs(next[doubling] - row[doubling - 1])
            row = next
            if doubling >= 2 && (change <= 1e-12 * abs(next[doubling]) || change <= floor) { break }
        }
        return row[row.count - 1]
    }
}
