#!/usr/bin/env bash
# Runs every test file under test/ (Node 20's runner needs an explicit file list).
set -euo pipefail
cd "$(dirname "$0")/.."
# Types first: a type error fails the run before any test (the tests run the sources through tsx, which does not check types).
echo "noduleseg: type-checking (tsc --noEmit)" >&2
npx --no-install tsc --noEmit -p tsconfig.json
# Then formatting and lint (Biome, biome.json): an unformatted file or a lint finding fails the run.
echo "noduleseg: format and lint (biome ci)" >&2
npx --no-install biome ci .
mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ ${#files[@]} -eq 0 ]; then echo "no test files found under test/" >&2; exit 1; fi
# Orthanc (DICOMweb) and Redis for the PACS and queue tests: started for the run and stopped after
# it (scripts/services.sh); where they cannot be started those tests skip with a message.
exec bash scripts/services.sh node --import tsx --test --test-concurrency=1 "${files[@]}"
