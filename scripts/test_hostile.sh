#!/usr/bin/env bash
# test_hostile.sh: the test suite under conditions another machine or user could give it, each
# run on its own; a test that passes only on a quiet, fast machine of this kind fails here.
#
#   a  one core:             PYTEST_WORKERS=1 under `taskset -c 0` (one worker, everything slower)
#   b  busy cores:           the suite as `make test` runs it, beside two CPU-bound processes
#   c1 c2 c3  random order:  pytest-randomly (the dev extra) with the seeds in $SEEDS
#                            (default 1 2 3): files and the tests in each shuffled
#   d  other float results:  torch held to its generic kernels (ATEN_CPU_CAPABILITY=default) and
#                            MKL to SSE4.2 (MKL_ENABLE_INSTRUCTIONS=SSE4_2), as another CPU would
#
# Run from the repository root: `make test-hostile`, or `bash scripts/test_hostile.sh [VARIANT...]`
# for some of them (e.g. `d c1`). Each prints one line: PASS or FAIL, its wall time, the load
# average (`uptime`'s first figure) at its start and end, and the log of its pytest run. Exits 1 if
# any failed. Each run takes about as long as `make test` (longer for `a`): 5-12 minutes.
#
# Environment: PYTHON (default .venv/bin/python), SEEDS, LOGDIR (default: a new temporary folder).

set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
SEEDS=${SEEDS:-1 2 3}
LOGDIR=${LOGDIR:-$(mktemp -d "${TMPDIR:-/tmp}/test_hostile.XXXXXX")}
mkdir -p "$LOGDIR"
# As `make test` runs it (the Makefile's test target); pytest-randomly stays off unless a variant
# turns it on (pyproject.toml's addopts).
PYTEST=("$PYTHON" -m pytest -q --dist loadfile --no-loadscope-reorder --max-worker-restart=0)

hogs=()
stop_hogs() {
    for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${hogs[@]}"; do wait "$pid" 2>/dev/null; done
    hogs=()
}
trap stop_hogs EXIT
trap 'stop_hogs; exit 130' INT
trap 'stop_hogs; exit 143' TERM

load() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || uptime | sed 's/.*load averages*: *\([0-9.]*\).*/\1/'; }

failed=0
run_variant() {  # NAME DESCRIPTION COMMAND...
    local name=$1 what=$2 log="$LOGDIR/$1.log"
    shift 2
    local before start status seconds
    before=$(load)
    start=$(date +%s)
    "$@" >"$log" 2>&1
    status=$?
    seconds=$(( $(date +%s) - start ))
    local summary
    summary=$(grep -E '^(FAILED|ERROR) |[0-9]+ (passed|failed)' "$log" | tail -n 1)
    if [ "$status" -eq 0 ]; then
        printf '%s: PASS in %dm%02ds (load %s -> %s) %s: %s [%s]\n' "$name" $((seconds / 60)) $((seconds % 60)) \
            "$before" "$(load)" "$what" "$summary" "$log"
    else
        failed=1
        printf '%s: FAIL (exit %d) in %dm%02ds (load %s -> %s) %s: %s [%s]\n' "$name" "$status" $((seconds / 60)) \
            $((seconds % 60)) "$before" "$(load)" "$what" "$summary" "$log"
        grep -E '^(FAILED|ERROR) ' "$log" | head -n 20
    fi
}

variant() {
    case $1 in
        a)
            run_variant a "PYTEST_WORKERS=1 under taskset -c 0" taskset -c 0 "${PYTEST[@]}" -n 1 ;;
        b)
            for _ in 1 2; do
                "$PYTHON" -c "while True: pass" &
                hogs+=($!)
            done
            run_variant b "beside two CPU-bound processes" "${PYTEST[@]}" -n 2
            stop_hogs ;;
        c[0-9]*)
            local seeds=($SEEDS) index=${1#c}
            local seed=${seeds[$((index - 1))]:-}
            if [ -z "$seed" ]; then echo "$1: no seed $index in SEEDS='$SEEDS'"; failed=1; return; fi
            if ! "$PYTHON" -c "import pytest_randomly" 2>/dev/null; then
                echo "$1: FAIL: pytest-randomly is not installed (pip install -e '.[dev]')"; failed=1; return
            fi
            run_variant "$1" "random order, -p randomly --randomly-seed=$seed" \
                "${PYTEST[@]}" -n 2 -p randomly --randomly-seed="$seed" ;;
        d)
            run_variant d "ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2" \
                env ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2 "${PYTEST[@]}" -n 2 ;;
        *)
            echo "unknown variant $1 (a, b, c1, c2, c3, d)"; failed=1 ;;
    esac
}

if [ $# -eq 0 ]; then
    set -- a b c1 c2 c3 d
fi
echo "logs in $LOGDIR; $(nproc) cores; load $(load)"
for name in "$@"; do
    variant "$name"
done
exit "$failed"
