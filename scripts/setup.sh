#!/usr/bin/env bash
# One-shot set-up for a fresh Debian 12 machine: system packages, npm ci, the native addon.
# Idempotent and quick when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# libtorch: from LIBTORCH (a libtorch 2.x download; noduleseg computes on the CPU) or Debian's libtorch-dev (1.13).
if [ -z "${LIBTORCH:-}" ]; then
  have_pkg libtorch-dev || need_pkgs+=(libtorch-dev)
  # Gloo's headers, for the c10d addon (data-parallel training); libtorch-dev does not pull them in.
  have_pkg libgloo-dev || need_pkgs+=(libgloo-dev)
fi
# Debian's libtorch calls BLAS through the system alternative; without OpenBLAS GEMM is ~35x slower.
have_pkg libopenblas0-pthread || need_pkgs+=(libopenblas0-pthread)
command -v g++ >/dev/null 2>&1 || need_pkgs+=(g++)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
# The viewer's end-to-end test drives Debian's chromium (playwright-core never downloads a browser).
have_pkg chromium || need_pkgs+=(chromium)
have_pkg dicom3tools || need_pkgs+=(dicom3tools)  # dciodvfy checks the DICOM SEG and SR in the tests
have_pkg dcmtk || need_pkgs+=(dcmtk)  # dsrdump reads the SR back in the tests
# Extra packages asked for by a caller (benchmarks, browser tests): NODULESEG_EXTRA_APT="pkg1 pkg2".
for p in ${NODULESEG_EXTRA_APT:-}; do have_pkg "$p" || need_pkgs+=("$p"); done

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "noduleseg: missing system packages; run as root: apt-get install -y ${need_pkgs[*]}" >&2
    exit 1
  fi
  echo "noduleseg: installing ${need_pkgs[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "noduleseg: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi

# Native addon: rebuild when missing or when a source is newer than the binary.
# Also rebuild when the libtorch asked for (LIBTORCH, or the system one) differs from the last build's.
addon=build/Release/noduleseg_native.node
stamp=build/libtorch.stamp
want_torch="${LIBTORCH:-system}"
if [ -f binding.gyp ]; then
  if [ ! -f "$addon" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want_torch" ] || [ -n "$(find native binding.gyp scripts/find-libtorch.mjs -path native/c10d -prune -o -newer "$addon" -print 2>/dev/null | head -1)" ]; then
    echo "noduleseg: building the native addon (libtorch; takes a few minutes)" >&2
    npx --no-install node-gyp rebuild -j 2 >build-native.log 2>&1 || { tail -40 build-native.log >&2; echo "noduleseg: native build failed; full log in build-native.log" >&2; exit 1; }
    echo "$want_torch" > "$stamp"
  fi
fi

# c10d addon (data-parallel training, native/c10d): its own build, rebuilt like the one above. A
# libtorch download (LIBTORCH) carries Gloo's headers in include/gloo, or it is skipped.
c10d=native/c10d/build/Release/noduleseg_c10d.node
c10d_stamp=native/c10d/build/libtorch.stamp
if [ -f native/c10d/binding.gyp ]; then
  if [ -n "${LIBTORCH:-}" ] && [ ! -f "$LIBTORCH/include/gloo/config.h" ]; then
    echo "noduleseg: $LIBTORCH has no include/gloo: data-parallel training (native/c10d) is not built" >&2
  elif [ ! -f "$c10d" ] || [ "$(cat "$c10d_stamp" 2>/dev/null)" != "$want_torch" ] || [ -n "$(find native/c10d/binding.gyp native/c10d/*.cc scripts/find-libtorch.mjs -newer "$c10d" 2>/dev/null | head -1)" ]; then
    echo "noduleseg: building the c10d addon (data-parallel training)" >&2
    mkdir -p build
    npx --no-install node-gyp rebuild -j 2 --directory native/c10d >build/c10d-build.log 2>&1 || { tail -40 build/c10d-build.log >&2; echo "noduleseg: c10d build failed; full log in build/c10d-build.log" >&2; exit 1; }
    echo "$want_torch" > "$c10d_stamp"
  fi
fi

# Compiled JavaScript for bin/noduleseg (tsx compiling src/ at every start costs ~3 s): rebuilt
# when missing or when a source is newer than the build. It is made beside dist/ and swapped in,
# and its stamp carries the build's start time, so that a source edited meanwhile makes it stale;
# bin/noduleseg runs the sources through tsx whenever dist/ is missing or stale.
if [ ! -f dist/.built ] || [ -n "$(find src tsconfig.json tsconfig.build.json -newer dist/.built 2>/dev/null | head -1)" ]; then
  # Unique names: two set-ups at once (a test run beside a benchmark) must not share a folder.
  new=$(mktemp -d dist.new.XXXXXX) && chmod 755 "$new" && touch "$new/.built"
  if npx --no-install tsc -p tsconfig.build.json --outDir "$new" >build-js.log 2>&1; then
    old="dist.old.$$"
    if [ -d dist ]; then mv dist "$old"; fi
    mv -T "$new" dist 2>/dev/null || rm -rf "$new"   # another set-up swapped its build in first
    rm -rf "$old"
  else
    rm -rf "$new"
    echo "noduleseg: compiling src/ failed (log in build-js.log); bin/noduleseg runs the sources through tsx (slower start)" >&2
  fi
fi
