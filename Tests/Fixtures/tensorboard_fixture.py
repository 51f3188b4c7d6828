#!/usr/bin/env python3
"""TensorBoard event records written by TensorBoard's own Python writer, for
GradKit's TensorBoardWriter to match byte for byte.

    pip install tensorboard==2.21.0 numpy==2.4.6 protobuf==7.36.2
    python3 Tests/Fixtures/tensorboard_fixture.py

writes Tests/Fixtures/tensorboard/events.fixture: TFRecords framed by
tensorboard.summary.writer.record_writer.RecordWriter, each an Event protobuf
serialized by tensorboard.compat.proto:

  1. the file-version event ("brain.Event:2"), wall time 1700000000.25;
  2. scalar "loss" = 0.4375 at step 3;
  3. scalar "accuracy" = 0.0 at step 0 (proto3 leaves step 0 out, keeps the oneof's 0.0);
  4. histogram "gradient/layer_01_0" at step 300 of VALUES_A;
  5. histogram "gradient/layer_02_1.body.0" at step 2**40 of VALUES_B;
  6. histogram "edges" at step 1 of VALUES_C.

The histograms follow PyTorch's SummaryWriter.add_histogram with its default
bins="tensorflow": numpy.histogram over the edges 0, +-1e-12 * 1.1**k below
1e20, then only the buckets from the first to the last non-empty one, plus the
empty bucket before them (torch/utils/tensorboard/summary.py, make_histogram).
This script does that with numpy, independently of GradKit's bisection.

The values are float32 (GradKit's gradients). VALUES_A and VALUES_B are chosen
so that their sums and sums of squares are exact in double, whatever the order
of summation (numpy sums pairwise, GradKit in order): the records must then be
identical bytes. VALUES_C sits next to bucket edges; the Swift test compares
its buckets exactly and its sums with a tolerance.
"""
import os

import numpy as np
from tensorboard.compat.proto import event_pb2, histogram_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

HERE = os.path.dirname(os.path.abspath(__file__))

# Multiples of 2**-12 in [-1000, 1000] * 2**-12: sums exact in double.
VALUES_A = np.array([((i * 7919) % 2001 - 1000) / 4096 for i in range(1000)], dtype=np.float32)
# Powers of two spanning 2**-43 .. 2**-20 (their squares span 46 bits): exact, and a zero.
VALUES_B = np.array([0.0, 2.0**-43, -(2.0**-38), 2.0**-30, 2.0**-25, -(2.0**-20), 2.0**-25], dtype=np.float32)


def default_edges():
    v = 1e-12
    positive = []
    while v < 1e20:
        positive.append(v)
        v *= 1.1
    return [-x for x in reversed(positive)] + [0.0] + positive


EDGES = np.array(default_edges(), dtype=np.float64)
# The float32 nearest each of a few edges (above or below it), and the edges' negatives.
VALUES_C = np.array([EDGES[k] for k in (780, 900, 1100, 1300)] + [-EDGES[1000], 1e-13, -1e-13], dtype=np.float32)


def histogram(values):
    values = values.astype(np.float64).reshape(-1)
    counts, limits = np.histogram(values, bins=EDGES)
    nonzero = np.nonzero(counts)[0]
    first, last = int(nonzero[0]), int(nonzero[-1])
    if first > 0:
        kept_counts = counts[first - 1 : last + 1]
    else:
        kept_counts = np.concatenate([[0], counts[: last + 1]])
    kept_limits = limits[first : last + 2]
    return histogram_pb2.HistogramProto(
        min=values.min(), max=values.max(), num=len(values), sum=values.sum(),
        sum_squares=values.dot(values), bucket_limit=kept_limits.tolist(), bucket=kept_counts.tolist())


def main():
    events = [
        event_pb2.Event(wall_time=1700000000.25, file_version="brain.Event:2"),
        event_pb2.Event(wall_time=1700000001.5, step=3, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="loss", simple_value=0.4375)])),
        event_pb2.Event(wall_time=1700000002.75, step=0, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="accuracy", simple_value=0.0)])),
        event_pb2.Event(wall_time=1700000003.0, step=300, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="gradient/layer_01_0", histo=histogram(VALUES_A))])),
        event_pb2.Event(wall_time=1700000004.125, step=2**40, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="gradient/layer_02_1.body.0", histo=histogram(VALUES_B))])),
        event_pb2.Event(wall_time=1700000005.0, step=1, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="edges", histo=histogram(VALUES_C))])),
    ]
    os.makedirs(os.path.join(HERE, "tensorboard"), exist_ok=True)
    path = os.path.join(HERE, "tensorboard", "events.fixture")
    with open(path, "wb") as f:
        writer = RecordWriter(f)
        for event in events:
            writer.write(event.SerializeToString())
        writer.flush()
    print(f"wrote {path}: {os.path.getsize(path)} bytes, {len(EDGES)} default edges")
    print("VALUES_C as float32 bit patterns:", [hex(v) for v in VALUES_C.view(np.uint32)])


if __name__ == "__main__":
    main()
