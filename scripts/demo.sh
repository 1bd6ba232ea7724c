#!/usr/bin/env bash
# The demo: segment a handful of real LIDC-IDRI crops (validation patients) and one nodule in the
# whole LIDC-IDRI-0001 scan with the shipped model; print the reports; write masks and PNGs.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${NODULESEG_DATA:-../shared/data}"
OUT="${NODULESEG_DEMO_OUT:-demo-out}"
MODEL="models/noduleseg.safetensors"
CROPS="$DATA/lidc-crops"
SCAN_DIR="$DATA/lidc-scans/LIDC-IDRI-0001"
if [ ! -d "$CROPS/image" ] || [ ! -d "$SCAN_DIR" ]; then
  echo "noduleseg demo: the LIDC-IDRI data is not at $DATA (set NODULESEG_DATA to the folder holding lidc-crops and lidc-scans)" >&2
  exit 1
fi
if [ ! -f "$MODEL" ]; then
  echo "noduleseg demo: $MODEL is missing from this checkout" >&2
  exit 1
fi
rm -rf "$OUT"
mkdir -p "$OUT/crops" "$OUT/reference"
echo "== 1. Five nodule crops from validation patients (4 to 17 mm)"
for c in LIDC-IDRI-0034_R_1 LIDC-IDRI-0301_R_2 LIDC-IDRI-0181_R_2 LIDC-IDRI-0260_R_3 LIDC-IDRI-0252_R_1; do
  cp "$CROPS/image/$c.nii.gz" "$OUT/crops/"
  cp "$CROPS/mask/$c.nii.gz" "$OUT/reference/"
done
./bin/noduleseg segment --input "$OUT/crops" --output "$OUT/masks" --png "$OUT/png"
echo
echo "== 2. The same crops scored against the radiologists' masks (union of the LIDC readers)"
./bin/noduleseg eval --pred "$OUT/masks" --ref "$OUT/reference" --csv "$OUT/metrics.csv"
echo
echo "== 3. One nodule in the whole LIDC-IDRI-0001 scan (133 DICOM slices), from a point in world mm"
SERIES="$(dirname "$(find "$SCAN_DIR" -name '*.xml' | head -1)")"
./bin/noduleseg lidc "$SERIES"
./bin/noduleseg segment --input "$SERIES" --point=56.4,86.3,-116.0 --output "$OUT/LIDC-IDRI-0001-nodule.nii.gz" --png "$OUT/png-scan"
echo
echo "report: $OUT/LIDC-IDRI-0001-nodule.json"
echo "masks: $OUT/masks/*.nii.gz, $OUT/LIDC-IDRI-0001-nodule.nii.gz; pictures: $OUT/png/*.png, $OUT/png-scan/*.png"
echo
echo "== 4. The browser viewer: open a scan, click a nodule, see and download its mask"
echo "   ./bin/noduleseg serve --data $DATA/lidc-scans"
echo "   then open the address it prints (http://127.0.0.1:8600/) and pick LIDC-IDRI-0001; Ctrl-C stops it."
echo "Images: LIDC-IDRI (CC BY 3.0), Armato SG III et al., Med Phys 38(2):915-931, 2011; doi 10.7937/K9/TCIA.2015.LO9QL9SX"
