#!/usr/bin/env bash
# Segments every crop of the val split with a model and scores it with `noduleseg eval`, the way
# the held-out test set is scored. Usage: scripts/eval-val.sh [model] [out-dir] [extra segment args]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${1:-models/noduleseg.safetensors}"
OUT="${2:-runs/eval-val}"
shift 2 2>/dev/null || shift $#
DATA="${NODULESEG_DATA:-../shared/data}/lidc-crops"
[ -f "$DATA/splits.csv" ] || { echo "eval-val: $DATA/splits.csv not found (set NODULESEG_DATA)" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT/image" "$OUT/ref"
DATA_ABS="$(cd "$DATA" && pwd)"
tr -d "\r" < "$DATA/splits.csv" | awk -F, '$3=="val"{print $1}' | while read -r c; do
  ln -s "$DATA_ABS/image/$c.nii.gz" "$OUT/image/$c.nii.gz"
  ln -s "$DATA_ABS/mask/$c.nii.gz" "$OUT/ref/$c.nii.gz"
done
start=$(date +%s.%N)
./bin/noduleseg segment --input "$OUT/image" --output "$OUT/pred" --model "$MODEL" "$@"
end=$(date +%s.%N)
echo "segment: $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", b-a}') s for $(ls "$OUT/image" | wc -l) crops (start-up included)"
./bin/noduleseg eval --pred "$OUT/pred" --ref "$OUT/ref" --csv "$OUT/metrics.csv" --md "$OUT/summary.md"
