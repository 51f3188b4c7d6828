#!/usr/bin/env python3
"""safetensors interchange between PyTorch and GradKit, both ways.

Write the committed fixture (PyTorch -> GradKit):

    pip install torch==2.15.0 safetensors==0.8.0
    python3 Tests/Fixtures/safetensors_fixture.py write

  Tests/Fixtures/safetensors/torch_sequential.safetensors   model.state_dict() of
      nn.Sequential(Linear(5, 8), BatchNorm1d(8), Tanh(), Linear(8, 3)) with random
      BatchNorm affine parameters, after three training-mode batches (so the
      running statistics are not trivial), saved
      with safetensors.torch.save_file (num_batches_tracked is I64)
  Tests/Fixtures/safetensors/torch_sequential_io.safetensors  an input [4, 5] and
      the model's output in eval mode
  The Swift test "a PyTorch nn.Sequential state dict loads and gives the same
  outputs" reads both.

Check GradKit's files (GradKit -> PyTorch):

    GRADKIT_EXPORT_DIR=/tmp/gradkit-export swift test --filter SafeTensorsTests
    python3 Tests/Fixtures/safetensors_fixture.py check /tmp/gradkit-export

  The Swift test "GradKit's checkpoint loads into PyTorch" writes model.safetensors
  (a GradKit Sequential of the same architecture) and io.safetensors (an input and
  GradKit's output); this loads the model with safetensors.torch.load_file into
  the PyTorch model with strict=True and compares the outputs.
"""
import os
import sys

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")


def model():
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3))


def write():
    assert torch.__version__.startswith("2.15.0"), f"pinned to torch 2.15.0, found {torch.__version__}"
    torch.manual_seed(11)
    m = model()
    with torch.no_grad():
        nn.init.uniform_(m[1].weight, 0.5, 1.5)
        nn.init.uniform_(m[1].bias, -0.5, 0.5)
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(16, 5) * 2 + 0.5)
    m.eval()
    x = torch.randn(4, 5)
    with torch.no_grad():
        y = m(x)
    save_file(m.state_dict(), os.path.join(HERE, "torch_sequential.safetensors"))
    save_file({"input": x, "output": y}, os.path.join(HERE, "torch_sequential_io.safetensors"))
    print("wrote", HERE)


def check(directory):
    m = model()
    state = load_file(os.path.join(directory, "model.safetensors"))
    state = {k: (v.long() if k.endswith("num_batches_tracked") else v) for k, v in state.items()}
    m.load_state_dict(state, strict=True)
    m.eval()
    io = load_file(os.path.join(directory, "io.safetensors"))
    with torch.no_grad():
        y = m(io["input"])
    error = (y - io["output"]).abs().max().item()
    print(f"PyTorch output vs GradKit output: max abs difference {error:.3g}")
    assert error < 1e-5, "outputs differ"
    print("ok: GradKit's safetensors file loads into PyTorch with strict=True and gives the same outputs")


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "write":
        write()
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        sys.exit(__doc__)
