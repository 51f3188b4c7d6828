import GradKit
let w = Parameter(Tensor(shape: [3, 2], scalars: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]), name: "w")
let x = Tensor(shape: [4, 3], scalars: (0..<12).map { Float($0) / 10 })
let loss = x.matmul(w.value).tanh().sum()
loss.backward()
print(loss.scalar, w.gradient!.scalars)
print(Kernels.summary)
