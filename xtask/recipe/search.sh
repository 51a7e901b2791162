#!/usr/bin/env bash
# The recipe search of docs/recipe.md: each candidate trains with the last 5,000 training
# images held out (--validation 5000) and is judged on them alone; the test set is not
# looked at. Prints one Markdown row per run: model, candidate, flags, validation accuracy
# of the last epoch, and its mean over the last 3 epochs.
#
#   bash xtask/recipe/search.sh [small_cnn|medium_cnn|all] [mnist|fashion] ["name|flags"...]
#
# Without candidates it runs the first round's four; later rounds pass theirs, e.g.
#   bash xtask/recipe/search.sh medium_cnn mnist "light,lr0.2|--augment light --lr 0.2"
set -euo pipefail
cd "$(dirname "$0")/../.."
which="${1:-all}"
dataset="${2:-mnist}"
shift 2 || true
cargo build --release --bin cnn-train >/dev/null 2>&1
out=target/recipe-search/$dataset
mkdir -p "$out"
# A copy of its own: a rebuild, or a second search, while this runs must not change the runs.
bin=$out/cnn-train-$$
cp target/release/cnn-train "$bin"
trap 'rm -f "$bin"' EXIT

candidates=(
  "none|--augment none"
  "light|--rotate 5 --scale 0.05 --translate 1.5"
  "light+ls|--rotate 5 --scale 0.05 --translate 1.5 --label-smoothing 0.05"
  "heavy|--rotate 10 --scale 0.1 --translate 2.5"
)
[ "$#" -gt 0 ] && candidates=("$@")
models=(small_cnn medium_cnn)
[ "$which" != all ] && models=("$which")

echo "| model | candidate | flags | val. accuracy (last epoch) | mean of last 3 |"
echo "|---|---|---|---:|---:|"
for model in "${models[@]}"; do
  for c in "${candidates[@]}"; do
    name="${c%%|*}"
    flags="${c#*|}"
    dir="$out/$model-$name"
    # shellcheck disable=SC2086
    "$bin" --model "$model" --dataset "$dataset" --validation 5000 $flags \
      --overwrite --out "$dir" >"$dir.log" 2>&1
    python3 - "$dir/history.csv" "$model" "$name" "$flags" <<'PY'
import csv, sys
path, model, name, flags = sys.argv[1:]
rows = list(csv.DictReader(open(path)))
val = [float(r["val_accuracy"]) for r in rows]
print(f"| `{model}` | {name} | `{flags}` | {100 * val[-1]:.2f}% | {100 * sum(val[-3:]) / 3:.2f}% |")
PY
  done
done
