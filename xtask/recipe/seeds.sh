#!/usr/bin/env bash
# The default recipe on all the training images, seeds 0, 1 and 2: the test accuracy of
# each run (reported once, after the recipe was chosen on validation data; see
# docs/recipe.md), its mean and spread, and the median seconds per epoch.
#
#   bash xtask/recipe/seeds.sh [small_cnn|medium_cnn|all] [mnist|fashion] [extra cnn-train flags...]
set -euo pipefail
cd "$(dirname "$0")/../.."
which="${1:-all}"
dataset="${2:-mnist}"
shift 2 || true
cargo build --release --bin cnn-train >/dev/null 2>&1
mkdir -p target/recipe-seeds
# A copy of its own: a rebuild, or a second run of this script, must not change the runs.
bin=target/recipe-seeds/cnn-train-$$
cp target/release/cnn-train "$bin"
trap 'rm -f "$bin"' EXIT
models=(small_cnn medium_cnn)
[ "$which" != all ] && models=("$which")
echo "| model | data | seed 0 | seed 1 | seed 2 | mean | spread (max-min) | s/epoch (median) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for model in "${models[@]}"; do
  dirs=()
  for seed in 0 1 2; do
    dir="target/recipe-seeds/$dataset-$model-seed$seed"
    "$bin" --model "$model" --dataset "$dataset" --seed "$seed" "$@" --overwrite --out "$dir" \
      >"$dir.log" 2>&1
    dirs+=("$dir")
  done
  python3 - "$model" "$dataset" "${dirs[@]}" <<'PY'
import csv, statistics, sys
model, dataset, *dirs = sys.argv[1:]
accs, secs = [], []
for d in dirs:
    rows = list(csv.DictReader(open(f"{d}/history.csv")))
    accs.append(100 * float(rows[-1]["test_accuracy"]))
    secs += [float(r["train_seconds"]) for r in rows]
cells = " | ".join(f"{a:.2f}%" for a in accs)
print(f"| `{model}` | {dataset} | {cells} | {statistics.mean(accs):.2f}% | {max(accs) - min(accs):.2f} | {statistics.median(secs):.1f} |")
PY
done
