#!/usr/bin/env node
// Locates libtorch for binding.gyp: LIBTORCH (an unpacked libtorch download) first, else Debian's
// system install (libtorch-dev). Usage: node scripts/find-libtorch.mjs include|libdir|libs|abi|defines
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function fail(msg) {
  process.stderr.write(`find-libtorch: ${msg}\n`);
  process.exit(1);
}

function locate() {
  const root = process.env.LIBTORCH;
  if (root) {
    const inc = join(root, 'include');
    const lib = join(root, 'lib');
    if (!existsSync(join(inc, 'ATen', 'ATen.h')))
      fail(`LIBTORCH=${root} has no include/ATen/ATen.h (expected an unpacked libtorch download)`);
    if (!existsSync(join(lib, 'libc10.so'))) fail(`LIBTORCH=${root} has no lib/libc10.so`);
    return { includes: [inc, join(inc, 'torch', 'csrc', 'api', 'include')], libdir: lib, root };
  }
  const inc = '/usr/include';
  const lib = '/usr/lib/x86_64-linux-gnu';
  if (!existsSync(join(inc, 'ATen', 'ATen.h')) || !existsSync(join(lib, 'libtorch_cpu.so'))) {
    fail("libtorch not found: install Debian's libtorch-dev (apt-get install -y libtorch-dev) or set LIBTORCH=/path/to/libtorch");
  }
  return { includes: [inc, join(inc, 'torch', 'csrc', 'api', 'include')], libdir: lib, root: null };
}

// The addon must use the same std::string ABI as libtorch or linking fails (or worse, it crashes).
function cxx11Abi(loc) {
  const forced = process.env.LIBTORCH_CXX11_ABI;
  if (forced === '0' || forced === '1') return forced;
  if (loc.root) {
    const cfg = join(loc.root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake');
    if (existsSync(cfg)) {
      const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readFileSync(cfg, 'utf8'));
      if (m) return m[1];
    }
  }
  // c10::Error's constructor takes a std::string; its mangled name says which ABI was used.
  const bytes = readFileSync(join(loc.libdir, 'libc10.so'));
  if (bytes.includes('_ZN3c105ErrorC1ENS_14SourceLocationENSt7__cxx1112basic_string')) return '1';
  if (bytes.includes('_ZN3c105ErrorC1ENS_14SourceLocationESs')) return '0';
  return bytes.includes('St7__cxx11') ? '1' : '0';
}

const loc = locate();
const what = process.argv[2];
switch (what) {
  case 'include':
    console.log(loc.includes.join(' '));
    break;
  case 'libdir':
    console.log(loc.libdir);
    break;
  case 'libs': {
    const libs = ['c10', 'torch_cpu', 'torch'].filter((l) => existsSync(join(loc.libdir, `lib${l}.so`)));
    console.log(libs.map((l) => `-l${l}`).join(' '));
    break;
  }
  case 'abi':
    console.log(cxx11Abi(loc));
    break;
  default:
    fail(`unknown query '${what}' (include|libdir|libs|abi)`);
}
