#!/usr/bin/env bash
# Builds the fuzz harness with libFuzzer, AddressSanitizer and coverage, and
# fuzzes each target for a bounded time, starting from the committed corpus
# and regression inputs. Exits non-zero on the first crash, timeout or
# out-of-memory (over 256 MB), after printing the input (base64) and where
# libFuzzer saved it.
#
# Usage: Fuzz/run.sh [SECONDS_PER_TARGET] [TARGET ...]    (default: 60, every target)
#   FUZZ_BUILD=debug   build without optimization (half the build's CPU; under ASan the
#                      targets run at 0.3-4x the release build's rate, CI's choice)
#   FUZZ_RUNS=N        stop each target after N inputs instead of after SECONDS
#   FUZZ_BUDGET=S      the whole run, build included, within about S seconds: the time
#                      the build leaves is shared by the targets (each SECONDS at most,
#                      FUZZ_MIN at least, default 20), so a slow build shortens fuzzing instead of CI
#   FUZZ_WORK=DIR      keep the new corpus entries, logs and artifacts there (default: a temporary directory)
# Extra libFuzzer flags go in FUZZ_FLAGS (e.g. FUZZ_FLAGS="-jobs=2").
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
started=$(date +%s)

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors idx csv log arguments)
configuration=${FUZZ_BUILD:-release}

# libFuzzer without its main(): SwiftPM links an executable's main under another name.
fuzzer=$(ls /opt/swift/usr/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)
swift build -c "$configuration" --build-path .build-fuzz --product GradKitFuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
    -Xswiftc -DFUZZING -Xlinker "$fuzzer" -Xlinker -lstdc++ 2>&1 | grep -v "Cannot export local symbol '__asan" || true
harness=.build-fuzz/$configuration/GradKitFuzz
[ -x "$harness" ] || { echo "fuzz build failed" >&2; exit 1; }
echo "fuzz build: $(( $(date +%s) - started )) s"

work=${FUZZ_WORK:-$(mktemp -d /tmp/gradkit-fuzz-XXXXXX)}
left=${#targets[@]}
for target in "${targets[@]}"; do
    if [ -n "${FUZZ_RUNS:-}" ]; then
        limit=(-runs="$FUZZ_RUNS"); what="$FUZZ_RUNS runs"
    else
        share=$seconds
        if [ -n "${FUZZ_BUDGET:-}" ]; then
            share=$(( (FUZZ_BUDGET - ($(date +%s) - started)) / left ))
            [ "$share" -le "$seconds" ] || share=$seconds
            [ "$share" -ge "${FUZZ_MIN:-20}" ] || share=${FUZZ_MIN:-20}
        fi
        limit=(-max_total_time="$share"); what="${share} s"
    fi
    left=$((left - 1))
    mkdir -p "$work/$target" "$work/artifacts"
    dictionary=$work/$target.dict
    cat "Fuzz/dictionaries/$target.dict" > "$dictionary"
    case $target in safetensors|log) cat Fuzz/dictionaries/json.dict >> "$dictionary" ;; esac
    echo "== fuzzing $target ($what)"
    # New inputs go to the first directory only: the committed ones stay as they are.
    inputs=("$work/$target" "Fuzz/corpus/$target")
    [ -d "Fuzz/regressions/$target" ] && inputs+=("Fuzz/regressions/$target")
    status=0
    # shellcheck disable=SC2086
    "$harness" "$target" "${inputs[@]}" -dict="$dictionary" -rss_limit_mb=256 -timeout=10 "${limit[@]}" \
        -artifact_prefix="$work/artifacts/$target-" -print_final_stats=1 ${FUZZ_FLAGS:-} \
        > "$work/$target.log" 2>&1 || status=$?
    grep -E "^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::|Done)" "$work/$target.log" || true
    if [ "$status" -ne 0 ]; then
        tail -60 "$work/$target.log"
        for artifact in "$work/artifacts/$target"-*; do
            [ -e "$artifact" ] || continue
            echo "-- $artifact (base64; decode it into Fuzz/regressions/$target/ to replay it):"
            base64 -w 76 "$artifact" | head -200
        done
        echo "fuzzing $target failed (exit $status); log: $work/$target.log" >&2
        exit 1
    fi
done
[ -n "${FUZZ_WORK:-}" ] || rm -rf "$work"
echo "fuzzing passed: ${targets[*]} ($(( $(date +%s) - started )) s in all)"
