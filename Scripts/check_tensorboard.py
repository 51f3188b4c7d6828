#!/usr/bin/env python3
"""Checks a GradKit TensorBoard log directory with TensorBoard's own reader.

    pip install tensorboard
    python3 Scripts/check_tensorboard.py DIR

DIR holds one event file written by GradKit's TensorBoardWriter with
TensorBoardWriter.addSampledStep(of:step:loss:accuracy:learningRate:) after every
training step. The script loads it with
tensorboard.backend.event_processing.event_accumulator.EventAccumulator and
asserts that:
  - a `loss` scalar is present, with finite values;
  - there is at least one layer, and every layer has a `gradient_norm/<layer>`
    scalar at every sampled step (the steps of any layer's gradient norms);
  - every layer has `gradient/<layer>` histograms, one per sampled step, whose
    bucket counts add up to the histogram's count.
It prints what it found and exits 1 on the first failed check (2 on bad usage).
Not needed to build or test the package: CI runs it after `pip install tensorboard`.
"""
import math
import os
import sys


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def main():
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: python3 Scripts/check_tensorboard.py DIR", file=sys.stderr)
        sys.exit(2)
    from tensorboard.backend.event_processing import event_accumulator

    directory = sys.argv[1]
    files = [f for f in os.listdir(directory) if "tfevents" in f]
    if len(files) != 1:
        fail(f"expected one event file in {directory}, found {files}")
    # Keep every event: the defaults sample scalars down to 10,000 and histograms to 500.
    accumulator = event_accumulator.EventAccumulator(
        os.path.join(directory, files[0]), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars, histograms = set(tags["scalars"]), set(tags["histograms"])

    if "loss" not in scalars:
        fail(f"no 'loss' scalar (scalars: {sorted(scalars)[:10]})")
    losses = accumulator.Scalars("loss")
    if not losses or not all(math.isfinite(e.value) for e in losses):
        fail("the loss is empty or not finite")
    print(f"loss: {len(losses)} steps, {losses[0].value:.4f} at step {losses[0].step} -> {losses[-1].value:.4f} at step {losses[-1].step}")

    layers = sorted(t[len("gradient_norm/"):] for t in scalars if t.startswith("gradient_norm/"))
    if not layers:
        fail("no gradient_norm/<layer> scalars")
    sampled = sorted({e.step for layer in layers for e in accumulator.Scalars("gradient_norm/" + layer)})
    print(f"{len(layers)} layers: {', '.join(layers)}; {len(sampled)} sampled steps ({sampled[0]}..{sampled[-1]})")
    for layer in layers:
        steps = [e.step for e in accumulator.Scalars("gradient_norm/" + layer)]
        if steps != sampled:
            missing = sorted(set(sampled) - set(steps))
            fail(f"gradient_norm/{layer}: {len(steps)} steps, missing {missing[:10]}")
        tag = "gradient/" + layer
        if tag not in histograms:
            fail(f"no histogram {tag} (histograms: {sorted(histograms)})")
        events = accumulator.Histograms(tag)
        if [e.step for e in events] != sampled:
            fail(f"{tag}: histograms at {len(events)} steps, expected one at each of the {len(sampled)} sampled steps")
        for e in events:
            value = e.histogram_value
            if sum(value.bucket) != value.num or len(value.bucket) != len(value.bucket_limit):
                fail(f"{tag} at step {e.step}: buckets add up to {sum(value.bucket)}, num is {value.num}")
        last = events[-1].histogram_value
        print(f"  {layer}: gradient norm {accumulator.Scalars('gradient_norm/' + layer)[-1].value:.3e} at step {sampled[-1]}, "
              f"last histogram {int(last.num)} values in {len(last.bucket)} buckets [{last.min:.2e}, {last.max:.2e}]")
    print(f"OK: {files[0]}")


if __name__ == "__main__":
    main()
