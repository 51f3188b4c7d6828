// A package outside GradKit that depends on it by version tag. It runs the
// README's autograd example and checks the gradient against the closed form
// dL/dW = Xᵀ (1 − tanh²(X W)), computed here in Double. Exit status 1 on mismatch.
#if canImport(Glibc)
import Glibc
#endif
import GradKit

let w = Parameter(Tensor(shape: [3, 2], scalars: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]), name: "w")
let x = Tensor(shape: [4, 3], scalars: (0..<12).map { Float($0) / 10 })
let loss = x.matmul(w.value).tanh().sum()
loss.backward()
print(w.gradient!.scalars)   // d loss / d w

let wv = w.value.scalars.map(Double.init), xv = x.scalars.map(Double.init)
var expected = [Double](repeating: 0, count: 6)
for i in 0..<4 {
    for j in 0..<2 {
        var z = 0.0
        for p in 0..<3 { z += xv[i * 3 + p] * wv[p * 2 + j] }
        let t = tanh(z)
        for p in 0..<3 { expected[p * 2 + j] += xv[i * 3 + p] * (1 - t * t) }
    }
}
let worst = zip(w.gradient!.scalars, expected).map { abs(Double($0) - $1) / max(abs($1), 1e-6) }.max()!
print("build: \(Kernels.isNativeOpenMPBuild ? "NativeOpenMP" : "default"); worst relative error \(worst)")
exit(worst < 1e-5 ? 0 : 1)
