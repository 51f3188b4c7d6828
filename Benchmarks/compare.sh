#!/usr/bin/env bash
# GradKit and PyTorch side by side, back to back, same filter and thread count:
#   bash Benchmarks/compare.sh [--filter NAME] [--threads N] [--native] [--rounds R]
# --native uses the NativeOpenMP build. PyTorch's side needs `pip install torch==2.15.0`.
# This machine's memory bandwidth drifts between states (about 100 and 200 GB/s
# for a*x+y here), so both sides report each streaming figure against their own
# a*x+y measured just before, and --rounds alternates the two sides R times.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
threads=2; filter=(); traits=(); rounds=1
while [ $# -gt 0 ]; do
    case "$1" in
        --filter) filter=(--filter "$2"); shift 2 ;;
        --threads) threads="$2"; shift 2 ;;
        --native) traits=(--traits NativeOpenMP); shift ;;
        --rounds) rounds="$2"; shift 2 ;;
        *) echo "usage: compare.sh [--filter NAME] [--threads N] [--native] [--rounds R]" >&2; exit 2 ;;
    esac
done
swift build -c release "${traits[@]}" --product gradkit-bench >/dev/null
for round in $(seq "$rounds"); do
    [ "$rounds" -gt 1 ] && echo "== round $round"
    swift run -c release "${traits[@]}" gradkit-bench --threads "$threads" "${filter[@]}"
    echo
    if python3 -c "import torch" 2>/dev/null; then
        python3 Benchmarks/torch_bench.py --threads "$threads" "${filter[@]}"
    else
        echo "(PyTorch not installed: pip install torch==2.15.0 for its side)"
    fi
    echo
done
