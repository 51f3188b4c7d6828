#!/usr/bin/env python3
"""Golden trajectories for GradKit's optimizers, clipping and schedules, from
PyTorch. Writes Tests/GradKitTests/OptimizerGoldens.swift.

    pip install torch==2.15.0
    python3 Tests/Fixtures/optimizer_goldens.py

Every optimizer and option runs 10 steps from fixed initial values over a
fixed gradient sequence that mixes small (1e-3) and large (1e2) gradients,
exact zeros, and steps where one parameter has no gradient (None). PyTorch's
results can differ in the last bit between CPUs (its kernels depend on the
instruction set); the Swift tests' tolerances absorb that.

Parameter groups: each optimizer also runs 8 steps with p1 and p2 in two
groups of their own (different learning rates, weight decay and one more
value), under a schedule stepped after every step; ReduceLROnPlateau also
runs over two groups with one minimum each.
"""
import math
import sys

import torch

assert torch.__version__.startswith("2.15.0"), f"pinned to torch 2.15.0, found {torch.__version__}"
torch.set_default_dtype(torch.float32)

P1 = [0.5, -1.25, 2.0, 0.0, 3.5, -0.75]          # shape [2, 3]
P2 = [1.0, -2.0, 0.25, 4.0]                      # shape [4]


def gradient_sequence():
    """(g1, g2) per step; None means the parameter has no gradient that step."""
    steps = []
    for t in range(10):
        scale = [1.0, 1e-3, 1e2, 1.0, 0.5, 1e-3, 10.0, 1.0, 1e2, 0.1][t]
        g1 = [scale * math.sin(1.3 * (i + 1) * (t + 1)) for i in range(6)]
        g2 = [scale * math.cos(0.7 * (i + 2) * (t + 1)) for i in range(4)]
        if t == 3:
            g1 = [0.0] * 6                      # exact zeros
        if t in (2, 6):
            g2 = None                           # no gradient this step
        if t == 5:
            g1[1] = 0.0
            g2[0] = 0.0
        steps.append((g1, g2))
    return steps


OPTIMIZERS = [
    ("SGD", "sgd_plain", torch.optim.SGD, dict(lr=0.1)),
    ("SGD", "sgd_momentum", torch.optim.SGD, dict(lr=0.1, momentum=0.9)),
    ("SGD", "sgd_dampening", torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5)),
    ("SGD", "sgd_nesterov", torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", "sgd_weight_decay", torch.optim.SGD, dict(lr=0.1, momentum=0.5, weight_decay=0.01)),
    ("SGD", "sgd_maximize", torch.optim.SGD, dict(lr=0.1, momentum=0.9, maximize=True)),
    ("AdaGrad", "adagrad_plain", torch.optim.Adagrad, dict(lr=0.1)),
    ("AdaGrad", "adagrad_lr_decay", torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.1)),
    ("AdaGrad", "adagrad_weight_decay", torch.optim.Adagrad, dict(lr=0.1, weight_decay=0.1)),
    ("AdaGrad", "adagrad_initial_accumulator", torch.optim.Adagrad, dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-3)),
    ("AdaGrad", "adagrad_maximize", torch.optim.Adagrad, dict(lr=0.1, maximize=True)),
    ("RMSprop", "rmsprop_plain", torch.optim.RMSprop, dict(lr=0.01)),
    ("RMSprop", "rmsprop_centered", torch.optim.RMSprop, dict(lr=0.01, centered=True)),
    ("RMSprop", "rmsprop_momentum", torch.optim.RMSprop, dict(lr=0.01, momentum=0.9)),
    ("RMSprop", "rmsprop_centered_momentum", torch.optim.RMSprop, dict(lr=0.01, momentum=0.9, centered=True)),
    ("RMSprop", "rmsprop_weight_decay_alpha", torch.optim.RMSprop, dict(lr=0.01, alpha=0.9, weight_decay=0.1, eps=1e-6)),
    ("RMSprop", "rmsprop_maximize", torch.optim.RMSprop, dict(lr=0.01, maximize=True)),
    ("Adam", "adam_plain", torch.optim.Adam, dict(lr=0.01)),
    ("Adam", "adam_amsgrad", torch.optim.Adam, dict(lr=0.01, amsgrad=True)),
    ("Adam", "adam_weight_decay", torch.optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    ("Adam", "adam_betas_eps", torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", "adam_maximize", torch.optim.Adam, dict(lr=0.01, maximize=True)),
    ("AdamW", "adamw_plain", torch.optim.AdamW, dict(lr=0.01)),
    ("AdamW", "adamw_weight_decay", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", "adamw_amsgrad", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", "adamw_maximize", torch.optim.AdamW, dict(lr=0.01, maximize=True)),
]


def run_optimizer(cls, options):
    p1 = torch.tensor(P1).reshape(2, 3).requires_grad_()
    p2 = torch.tensor(P2).requires_grad_()
    opt = cls([p1, p2], foreach=False, **options)
    trajectory = []
    for g1, g2 in gradient_sequence():
        p1.grad = None if g1 is None else torch.tensor(g1, dtype=torch.float32).reshape(2, 3)
        p2.grad = None if g2 is None else torch.tensor(g2, dtype=torch.float32)
        opt.step()
        trajectory.append(p1.detach().flatten().tolist() + p2.detach().tolist())
    state = {}
    for index, p in enumerate([p1, p2]):
        for key, value in opt.state[p].items():
            if key != "step" and torch.is_tensor(value):
                state[f"{index}.{key}"] = value.flatten().tolist()
    return trajectory, state


def fmt(x):
    if math.isinf(x):
        return "Float.infinity" if x > 0 else "-Float.infinity"
    r = repr(float(x))
    return r


def floats(values):
    return "[" + ", ".join(fmt(v) for v in values) + "]"


out = []
out.append("// Generated by Tests/Fixtures/optimizer_goldens.py with torch " + torch.__version__ + ". Do not edit.")
out.append("// swift-format-ignore-file")
out.append("")
out.append("enum OptimizerGoldens {")
out.append("    static let p1: [Float] = " + floats(P1))
out.append("    static let p2: [Float] = " + floats(P2))
seq = gradient_sequence()
out.append("    /// Per step: gradients of p1 and p2 (nil: no gradient).")
out.append("    static let gradients: [([Float]?, [Float]?)] = [")
for g1, g2 in seq:
    a = "nil" if g1 is None else floats([float(torch.tensor(v, dtype=torch.float32)) for v in g1])
    b = "nil" if g2 is None else floats([float(torch.tensor(v, dtype=torch.float32)) for v in g2])
    out.append(f"        ({a}, {b}),")
out.append("    ]")
out.append("")
out.append("    struct Case {")
out.append("        var kind: String, name: String, options: [String: Double]")
out.append("        /// p1 then p2, flattened, after each step.")
out.append("        var trajectory: [[Float]]")
out.append("        /// Final state buffers by \"parameterIndex.name\".")
out.append("        var state: [String: [Float]]")
out.append("    }")
out.append("")
out.append("    static let cases: [Case] = [")
for kind, name, cls, options in OPTIMIZERS:
    trajectory, state = run_optimizer(cls, options)
    opts = {}
    for k, v in options.items():
        if k == "betas":
            opts["beta1"], opts["beta2"] = v
        else:
            opts[k] = float(v)
    opt_text = "[" + ", ".join(f'"{k}": {repr(float(v))}' for k, v in opts.items()) + "]"
    state_text = "[" + ", ".join(f'"{k}": {floats(v)}' for k, v in sorted(state.items())) + "]" if state else "[:]"
    out.append(f'        Case(kind: "{kind}", name: "{name}", options: {opt_text}, trajectory: [')
    for row in trajectory:
        out.append("            " + floats(row) + ",")
    out.append(f"        ], state: {state_text}),")
out.append("    ]")
out.append("")

# Clipping: clip_grad_norm_ for p = 1, 2, inf, 3, below and above the threshold.
out.append("    struct ClipCase { var normType: Float; var maxNorm: Float; var total: Float; var clipped: [Float] }")
out.append("    static let clipGradients: [Float] = " + floats([v * 3 for v in P1] + [v * -2 for v in P2]))
out.append("    static let clipCases: [ClipCase] = [")
grads = [v * 3 for v in P1] + [v * -2 for v in P2]
for norm_type in (1.0, 2.0, float("inf"), 3.0):
    for max_norm in (1.0, 100.0):
        p1 = torch.zeros(2, 3, requires_grad=True)
        p2 = torch.zeros(4, requires_grad=True)
        p1.grad = torch.tensor(grads[:6]).reshape(2, 3)
        p2.grad = torch.tensor(grads[6:])
        total = torch.nn.utils.clip_grad_norm_([p1, p2], max_norm=max_norm, norm_type=norm_type)
        clipped = p1.grad.flatten().tolist() + p2.grad.tolist()
        out.append(f"        ClipCase(normType: {fmt(norm_type)}, maxNorm: {fmt(max_norm)}, total: {fmt(float(total))}, clipped: {floats(clipped)}),")
out.append("    ]")
p1 = torch.zeros(2, 3, requires_grad=True)
p2 = torch.zeros(4, requires_grad=True)
p1.grad = torch.tensor(grads[:6]).reshape(2, 3)
p2.grad = torch.tensor(grads[6:])
torch.nn.utils.clip_grad_value_([p1, p2], clip_value=2.5)
out.append("    static let clipValue: Float = 2.5")
out.append("    static let clippedByValue: [Float] = " + floats(p1.grad.flatten().tolist() + p2.grad.tolist()))
out.append("")

# Schedules: learning rates over 130 scheduler steps, base lr 0.1.
STEPS = 130


def schedule_values(make, momentum=False, optimizer="sgd"):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9) if optimizer == "sgd" else torch.optim.Adam([p], lr=0.1)
    sched = make(opt)
    rates, momenta = [], []
    for _ in range(STEPS):
        rates.append(opt.param_groups[0]["lr"])
        if momentum:
            group = opt.param_groups[0]
            momenta.append(group["momentum"] if optimizer == "sgd" else group["betas"][0])
        opt.step()
        sched.step()
    return rates, momenta


S = torch.optim.lr_scheduler
SCHEDULES = [
    ("step", lambda o: S.StepLR(o, step_size=7, gamma=0.5), False),
    ("multistep", lambda o: S.MultiStepLR(o, milestones=[10, 25, 60], gamma=0.3), False),
    ("exponential", lambda o: S.ExponentialLR(o, gamma=0.97), False),
    ("inverse_time", lambda o: S.LambdaLR(o, lambda e: 1.0 / (1.0 + 0.5 * e / 10)), False),
    ("inverse_time_staircase", lambda o: S.LambdaLR(o, lambda e: 1.0 / (1.0 + 0.5 * (e // 10))), False),
    ("cosine", lambda o: S.CosineAnnealingLR(o, T_max=50, eta_min=0.001), False),
    ("cosine_restarts", lambda o: S.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=0.002), False),
    ("cosine_restarts_constant", lambda o: S.CosineAnnealingWarmRestarts(o, T_0=15), False),
    ("linear_warmup", lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=20), False),
    ("warmup_then_cosine", lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=10),
                                                          S.CosineAnnealingLR(o, T_max=110)], milestones=[10]), False),
    ("one_cycle", lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=STEPS), True),
    ("one_cycle_linear_three_phase", lambda o: S.OneCycleLR(o, max_lr=0.4, total_steps=STEPS, pct_start=0.25,
                                                            anneal_strategy="linear", three_phase=True), True),
]
out.append("    struct ScheduleCase { var name: String; var rates: [Double]; var momenta: [Double] }")
out.append("    static let schedules: [ScheduleCase] = [")
for name, make, momentum in SCHEDULES:
    rates, momenta = schedule_values(make, momentum)
    out.append(f'        ScheduleCase(name: "{name}", rates: {floats(rates)}, momenta: {floats(momenta)}),')
rates, momenta = schedule_values(lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=STEPS), True, optimizer="adam")
out.append(f'        ScheduleCase(name: "one_cycle_adam", rates: {floats(rates)}, momenta: {floats(momenta)}),')
out.append("    ]")

# ReduceLROnPlateau over a metric that improves, stalls, and improves again.
metrics = [1.0 / (1 + e) if e < 20 else 0.05 + 0.001 * math.sin(e) for e in range(60)] + [0.04 - 0.0005 * e for e in range(40)]
p = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([p], lr=0.1)
sched = S.ReduceLROnPlateau(opt, patience=5, factor=0.5, cooldown=2, min_lr=0.005)
rates = []
for m in metrics:
    opt.step()
    sched.step(m)
    rates.append(opt.param_groups[0]["lr"])
out.append("    static let plateauMetrics: [Double] = " + floats(metrics))
out.append("    static let plateauRates: [Double] = " + floats(rates))

# The same plateau over two groups with their own minimum (min_lr as a list).
opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                       {"params": [torch.zeros(1, requires_grad=True)], "lr": 0.05}], lr=0.1)
sched = S.ReduceLROnPlateau(opt, patience=5, factor=0.5, cooldown=2, min_lr=[0.005, 0.02])
group_rates = []
for m in metrics:
    opt.step()
    sched.step(m)
    group_rates.append([g["lr"] for g in opt.param_groups])
out.append("    static let plateauGroupMinimums: [Double] = [0.005, 0.02]")
out.append("    static let plateauGroupRates: [[Double]] = [" + ", ".join(floats(r) for r in group_rates) + "]")
out.append("")

# Parameter groups: p1 alone in group 0, p2 alone in group 1, each with its
# own values; the schedule is stepped after every optimizer step.
GROUP_STEPS = 8
GROUP_SCHEDULES = {
    "step": lambda o: S.StepLR(o, step_size=3, gamma=0.5),                          # StepDecay(stepSize: 3, gamma: 0.5)
    "inverse_time": lambda o: S.LambdaLR(o, lambda e: 1.0 / (1.0 + 0.5 * e / 2)),   # InverseTimeDecay(decayRate: 0.5, decaySteps: 2)
}
GROUP_CASES = [
    ("SGD", "sgd_momentum_groups", torch.optim.SGD, dict(lr=0.1, momentum=0.9),
     [dict(lr=0.05, weight_decay=0.1), dict(momentum=0.5)], "step"),
    ("AdamW", "adamw_groups", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1),
     [dict(lr=0.03, weight_decay=0.0), dict(amsgrad=True)], "inverse_time"),
    ("Adam", "adam_groups", torch.optim.Adam, dict(lr=0.01),
     [dict(weight_decay=0.1), dict(lr=0.02, betas=(0.8, 0.99))], "step"),
    ("RMSprop", "rmsprop_groups", torch.optim.RMSprop, dict(lr=0.01, momentum=0.9),
     [dict(weight_decay=0.1, centered=True), dict(lr=0.005)], "inverse_time"),
    # PyTorch fills every accumulator with the constructor's
    # initial_accumulator_value and ignores a group's (GradKit uses the
    # group's): so it is given to the constructor here.
    ("AdaGrad", "adagrad_groups", torch.optim.Adagrad, dict(lr=0.1, initial_accumulator_value=0.5),
     [dict(weight_decay=0.1, lr_decay=0.1), dict(lr=0.05, eps=1e-3)], "step"),
]


def swift_options(options):
    """PyTorch options as GradKit's keys: betas split, flags as 0/1."""
    opts = {}
    for k, v in options.items():
        if k == "betas":
            opts["beta1"], opts["beta2"] = v
        else:
            opts[k] = float(v)
    return "[" + ", ".join(f'"{k}": {repr(float(v))}' for k, v in opts.items()) + "]" if opts else "[:]"


def run_groups(cls, options, groups, schedule):
    p1 = torch.tensor(P1).reshape(2, 3).requires_grad_()
    p2 = torch.tensor(P2).requires_grad_()
    opt = cls([dict(params=[p1], **groups[0]), dict(params=[p2], **groups[1])], foreach=False, **options)
    sched = GROUP_SCHEDULES[schedule](opt)
    trajectory, rates = [], []
    for g1, g2 in gradient_sequence()[:GROUP_STEPS]:
        rates.append([g["lr"] for g in opt.param_groups])
        p1.grad = None if g1 is None else torch.tensor(g1, dtype=torch.float32).reshape(2, 3)
        p2.grad = None if g2 is None else torch.tensor(g2, dtype=torch.float32)
        opt.step()
        sched.step()
        trajectory.append(p1.detach().flatten().tolist() + p2.detach().tolist())
    state = {}
    for index, p in enumerate([p1, p2]):
        for key, value in opt.state[p].items():
            if key != "step" and torch.is_tensor(value):
                state[f"{index}.{key}"] = value.flatten().tolist()
    return trajectory, state, rates


out.append("    struct GroupCase {")
out.append("        var kind: String, name: String, options: [String: Double]")
out.append("        /// Per group (p1 alone, then p2 alone): the values it sets.")
out.append("        var groups: [[String: Double]]")
out.append("        var schedule: String")
out.append("        /// Per step: each group's learning rate during the step.")
out.append("        var rates: [[Double]]")
out.append("        /// p1 then p2, flattened, after each step.")
out.append("        var trajectory: [[Float]]")
out.append("        /// Final state buffers by \"parameterIndex.name\".")
out.append("        var state: [String: [Float]]")
out.append("    }")
out.append("")
out.append("    static let groupCases: [GroupCase] = [")
for kind, name, cls, options, groups, schedule in GROUP_CASES:
    trajectory, state, rates = run_groups(cls, options, groups, schedule)
    groups_text = "[" + ", ".join(swift_options(g) for g in groups) + "]"
    rates_text = "[" + ", ".join(floats(r) for r in rates) + "]"
    state_text = "[" + ", ".join(f'"{k}": {floats(v)}' for k, v in sorted(state.items())) + "]"
    out.append(f'        GroupCase(kind: "{kind}", name: "{name}", options: {swift_options(options)}, groups: {groups_text},')
    out.append(f'                  schedule: "{schedule}", rates: {rates_text}, trajectory: [')
    for row in trajectory:
        out.append("            " + floats(row) + ",")
    out.append(f"        ], state: {state_text}),")
out.append("    ]")
out.append("}")

path = "Tests/GradKitTests/OptimizerGoldens.swift"
with open(path, "w") as f:
    f.write("\n".join(out) + "\n")
print(f"wrote {path}")
