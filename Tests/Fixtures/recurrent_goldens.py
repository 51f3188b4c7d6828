#!/usr/bin/env python3
"""PyTorch references for GradKit's LSTM and GRU layers. Writes
Tests/GradKitTests/RecurrentGoldens.swift and two state dictionaries,
Tests/Fixtures/safetensors/torch_lstm.safetensors and torch_gru.safetensors.

    pip install torch==2.15.0
    python3 Tests/Fixtures/recurrent_goldens.py

Each case builds nn.LSTM / nn.GRU (one layer, batch_first=True) with
PyTorch's own initialization, draws an input, maybe an initial state, and the
coefficients of a fixed scalar function of the results,

    L = sum(output * w_out) + sum(h_n * w_h) [+ sum(c_n * w_c)],

and records the outputs, the final states and the gradients of L with respect
to the input, the initial state(s) and every parameter. Parameters, inputs and
coefficients are float32 values; the forward and backward passes run in
float64, so the goldens are the exact function's values rounded once (float32
PyTorch agrees with them to ~1e-6). The cases cover batch 1 and 3, time 1 and
7, hidden sizes 1, 5 and 16, with and without bias, with and without an
initial state.

The state dictionaries of the second case of each layer are written with the
safetensors layout (an 8-byte little-endian header length, a JSON header,
raw little-endian float32 data) by the small writer below, so the script
needs no package beyond torch.
"""
import json
import os
import struct

import torch
import torch.nn as nn

assert torch.__version__.startswith("2.15.0"), f"pinned to torch 2.15.0, found {torch.__version__}"
HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20)

# (batch, time, input, hidden, bias, initial state)
CASES = [
    (1, 1, 3, 1, True, False),
    (3, 7, 4, 5, True, True),
    (3, 7, 4, 16, False, True),
    (1, 7, 3, 16, True, False),
    (3, 1, 4, 5, False, False),
    (3, 7, 2, 1, True, True),
]


def floats(t):
    return "[" + ", ".join(repr(float(v)) for v in t.detach().to(torch.float32).flatten().tolist()) + "]"


def optional(t):
    return "nil" if t is None else floats(t)


def save_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def case(kind, index, batch, steps, inputs, hidden, bias, initial):
    layer = (nn.LSTM if kind == "lstm" else nn.GRU)(inputs, hidden, bias=bias, batch_first=True)
    state = {k: v.detach().clone() for k, v in layer.state_dict().items()}  # float32, PyTorch's init
    x = torch.randn(batch, steps, inputs)
    h0 = torch.randn(1, batch, hidden) if initial else None
    c0 = torch.randn(1, batch, hidden) if initial and kind == "lstm" else None
    w_out = torch.rand(batch, steps, hidden) * 2 - 1
    w_h = torch.rand(batch, hidden) * 2 - 1
    w_c = torch.rand(batch, hidden) * 2 - 1 if kind == "lstm" else None

    layer = layer.double()
    xd = x.double().requires_grad_()
    h0d = h0.double().requires_grad_() if h0 is not None else None
    c0d = c0.double().requires_grad_() if c0 is not None else None
    if kind == "lstm":
        out, (hn, cn) = layer(xd, (h0d, c0d) if initial else None)
    else:
        out, hn = layer(xd, h0d)
        cn = None
    loss = (out * w_out.double()).sum() + (hn[0] * w_h.double()).sum()
    if cn is not None:
        loss = loss + (cn[0] * w_c.double()).sum()
    loss.backward()

    gradients = [("input", xd.grad)] + [(k, p.grad) for k, p in layer.named_parameters()]
    if h0d is not None:
        gradients.append(("initial_hidden", h0d.grad[0]))
    if c0d is not None:
        gradients.append(("initial_cell", c0d.grad[0]))
    lines = [
        f"        Case(",
        f'            name: "{kind} {index}: batch {batch}, time {steps}, input {inputs}, hidden {hidden}'
        f'{"" if bias else ", no bias"}{", initial state" if initial else ""}",',
        f"            batch: {batch}, steps: {steps}, inputSize: {inputs}, hiddenSize: {hidden}, bias: {'true' if bias else 'false'},",
        f"            parameters: [",
        *[f'                "{k}": {floats(v)},' for k, v in state.items()],
        f"            ],",
        f"            input: {floats(x)},",
        f"            initialHidden: {optional(h0)},",
        f"            initialCell: {optional(c0)},",
        f"            outputWeights: {floats(w_out)},",
        f"            finalHiddenWeights: {floats(w_h)},",
        f"            finalCellWeights: {optional(w_c)},",
        f"            outputs: {floats(out)},",
        f"            finalHidden: {floats(hn[0])},",
        f"            finalCell: {optional(None if cn is None else cn[0])},",
        f"            gradients: [",
        *[f'                "{k}": {floats(g)},' for k, g in gradients],
        f"            ]",
        f"        ),",
    ]
    return state, lines


out = [
    "// Generated by Tests/Fixtures/recurrent_goldens.py with torch " + torch.__version__ + ". Do not edit.",
    "// swift-format-ignore-file",
    "",
    "/// PyTorch's nn.LSTM and nn.GRU on fixed cases: outputs, final states and the",
    "/// gradients of L = Σ outputs·outputWeights + Σ h_n·finalHiddenWeights (+ Σ c_n·finalCellWeights).",
    "enum RecurrentGoldens {",
    "    struct Case {",
    "        let name: String",
    "        let batch: Int, steps: Int, inputSize: Int, hiddenSize: Int, bias: Bool",
    "        /// The state dictionary, by PyTorch's names.",
    "        let parameters: [String: [Float]]",
    "        let input: [Float]",
    "        let initialHidden: [Float]?",
    "        let initialCell: [Float]?",
    "        let outputWeights: [Float]",
    "        let finalHiddenWeights: [Float]",
    "        let finalCellWeights: [Float]?",
    "        let outputs: [Float]",
    "        let finalHidden: [Float]",
    "        let finalCell: [Float]?",
    "        /// By parameter name, and \"input\", \"initial_hidden\", \"initial_cell\".",
    "        let gradients: [String: [Float]]",
    "    }",
]
for kind in ["lstm", "gru"]:
    out.append(f"    static let {kind}: [Case] = [")
    for index, spec in enumerate(CASES):
        state, lines = case(kind, index, *spec)
        out.extend(lines)
        if index == 1:
            save_safetensors(os.path.join(HERE, "safetensors", f"torch_{kind}.safetensors"), state)
    out.append("    ]")
out.append("}")

with open(os.path.join(HERE, "..", "GradKitTests", "RecurrentGoldens.swift"), "w") as f:
    f.write("\n".join(out) + "\n")
