#!/usr/bin/env bash
# bench_gpu.sh: the torch training speed of this project on one NVIDIA GPU, as a dated table.
#
# What it runs: `python cli.py bench --config configs/mnist.yaml --framework torch --device gpu`
# at batch sizes 512 and 4096, once per variant below. Each bench run measures both torch
# variants with the same switches: `plain` (a hand-written loop) and `lightning` (our
# Classifier + DataModule in a real lightning.Trainer), so "Lightning / plain" compares loops.
#
#   variant          --channels-last  --compile  --precision
#   fp32-nchw        off              off        32-true      (the layout before channels_last)
#   fp32             on               off        32-true      (the defaults of `fit`)
#   bf16             on               off        bf16-mixed
#   fp32-compile     on               on         32-true
#   bf16-compile     on               on         bf16-mixed
#
# Needs: an NVIDIA GPU, and the project installed with its own dependencies only
# (`pip install -e .`: torch, lightning, ...). MLX is not needed and never imported on this path.
# Run from anywhere:   bash scripts/bench_gpu.sh
#
# Writes, under bench/ (created if missing), with a UTC date and time in the names:
#   bench/gpu-<stamp>/<variant>.json   every figure of every bench run (cli.py bench --out)
#   bench/gpu-<stamp>/tb/              the same medians as TensorBoard scalars
#   bench/gpu-<stamp>.json             all variants' reports in one file
#   bench/gpu-<stamp>.md               the table below, also printed at the end:
#     date, GPU name, torch / lightning / CUDA versions, then per variant and batch size:
#     plain img/s, Lightning img/s (medians of the repeats) and Lightning / plain in percent.
#
# Settings (environment variables; defaults in brackets):
#   PYTHON [python]  CONFIG [configs/mnist.yaml]  DEVICE [gpu]  BATCH_SIZES [512,4096]
#   STEPS [40]  WARMUP [20]  REPEATS [3]  TEST_IMAGES [10000]  OUT_DIR [bench]
#   VARIANTS ["fp32-nchw fp32 bf16 fp32-compile bf16-compile"]
# WARMUP 20 covers a whole epoch at batch 4096 (14 steps), so a compiled network meets the
# epoch's short last batch (and recompiles for it) before the timed steps; 20 + 2 x 40 steps
# stay inside the first epoch at batch 512 (106 steps). About 10 minutes on an H200.
# DEVICE=cpu with tiny sizes checks the script without a GPU, e.g.
#   DEVICE=cpu BATCH_SIZES=16 STEPS=2 WARMUP=1 REPEATS=1 TEST_IMAGES=100 VARIANTS="fp32" \
#     bash scripts/bench_gpu.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
CONFIG=${CONFIG:-configs/mnist.yaml}
DEVICE=${DEVICE:-gpu}
BATCH_SIZES=${BATCH_SIZES:-512,4096}
STEPS=${STEPS:-40}
WARMUP=${WARMUP:-20}
REPEATS=${REPEATS:-3}
TEST_IMAGES=${TEST_IMAGES:-10000}
OUT_DIR=${OUT_DIR:-bench}
VARIANTS=${VARIANTS:-"fp32-nchw fp32 bf16 fp32-compile bf16-compile"}

flags_of() {
    case "$1" in
        fp32-nchw)    echo "--no-channels-last --no-compile --precision 32-true" ;;
        fp32)         echo "--channels-last --no-compile --precision 32-true" ;;
        bf16)         echo "--channels-last --no-compile --precision bf16-mixed" ;;
        fp32-compile) echo "--channels-last --compile --precision 32-true" ;;
        bf16-compile) echo "--channels-last --compile --precision bf16-mixed" ;;
        *) echo "unknown variant '$1' (fp32-nchw fp32 bf16 fp32-compile bf16-compile)" >&2
           return 2 ;;
    esac
}

for variant in $VARIANTS; do  # check every name before the first long run
    flags_of "$variant" > /dev/null
done

stamp=$(date -u +%Y-%m-%dT%H%MZ)
run_dir="$OUT_DIR/gpu-$stamp"
mkdir -p "$run_dir"

done_variants=()
failed=()
for variant in $VARIANTS; do
    echo "== $variant: $(flags_of "$variant")" >&2
    # shellcheck disable=SC2046  # the flags are meant to split into words
    if "$PYTHON" cli.py bench --config "$CONFIG" --framework torch --device "$DEVICE" \
        --batch-sizes "$BATCH_SIZES" --steps "$STEPS" --warmup "$WARMUP" \
        --repeats "$REPEATS" --test-images "$TEST_IMAGES" \
        --out "$run_dir/$variant.json" --logdir "$run_dir/tb" $(flags_of "$variant"); then
        done_variants+=("$variant")
    else  # one failing variant (say, compile without a working compiler) keeps the others
        echo "== $variant FAILED (exit $?); left out of the table" >&2
        failed+=("$variant")
    fi
done
if [ ${#done_variants[@]} -eq 0 ]; then
    echo "no variant ran; nothing to tabulate" >&2
    exit 1
fi

"$PYTHON" - "$run_dir" "$OUT_DIR/gpu-$stamp" "${done_variants[@]}" <<'PY'
"""Merge the variants' reports into one JSON file and one dated markdown table."""
import json
import sys
from pathlib import Path

run_dir, stem, variants = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
reports = {v: json.loads((run_dir / f"{v}.json").read_text()) for v in variants}
first = next(iter(reports.values()))["meta"]
versions = first["versions"]
repeats = len(next(iter(reports.values()))["results"][0]["figures"]["train_img_per_s"]["values"])
lines = [
    f"# torch training speed, {first['torch']['device_name']}, {first['date'][:10]}",
    "",
    f"- date: {first['date']}; host: {first['host']}",
    f"- device: {first['torch']['device_name']} (CUDA {first['torch']['cuda']}, "
    f"cuDNN {first['torch']['cudnn']})",
    f"- torch {versions['torch']}, lightning {versions['lightning']}, "
    f"python {versions['python']}",
    f"- {first['dataset']}, seed CNN, Adam; {first['settings']['steps']} timed steps after "
    f"{first['settings']['warmup']} warm-up steps; img/s: median of {repeats} repeats",
    "",
    "| variant | channels_last | compile | precision | batch | plain img/s | Lightning img/s "
    "| Lightning / plain |",
    "|---|---|---|---|---|---|---|---|",
]
for variant, report in reports.items():
    settings = report["meta"]["settings"]
    rows = {(r["variant"], r["batch_size"]): r["figures"]["train_img_per_s"]["median"]
            for r in report["results"]}
    for size in settings["batch_sizes"]:
        plain, lightning = rows.get(("plain", size)), rows.get(("lightning", size))
        ratio = f"{100 * lightning / plain:.0f}%" if plain and lightning else "-"
        lines.append(f"| {variant} | {'on' if settings['channels_last'] else 'off'} | "
                     f"{'on' if settings['compile'] else 'off'} | {settings['precision']} | "
                     f"{size} | {plain:,.0f} | {lightning:,.0f} | {ratio} |")
lines += ["", "Commands:", ""] + [f"- {v}: `{r['meta']['command']}`" for v, r in reports.items()]
lines += ["", "Reference, H200, 2026-11-27, before these changes (batch 512, fp32, NCHW): "
          "Lightning / plain = 61% (`self.log` every step, batches copied from the host).", ""]
Path(f"{stem}.md").write_text("\n".join(lines))
Path(f"{stem}.json").write_text(json.dumps({"schema": "cnn-bench-gpu/1", "variants": reports},
                                           indent=2) + "\n")
print("\n".join(lines))
PY
echo "wrote $OUT_DIR/gpu-$stamp.md, $OUT_DIR/gpu-$stamp.json and $run_dir/" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
