// The addon loader's errors name the cause and the fix.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { explainLoadError } from '../../src/native/binding.ts';

describe('native addon loader', () => {
  it('a missing build says to run npm run setup', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', '-e', "import('./src/tensor/index.ts').catch((e) => { console.error(e.message); process.exit(3); })"],
      {
        env: { ...process.env, NODULESEG_NATIVE_ADDON: '/nonexistent/noduleseg_native.node' },
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /native addon is not built \(\/nonexistent\/noduleseg_native\.node is missing\)/);
    assert.match(r.stderr, /npm run setup/);
    assert.match(r.stderr, /LIBTORCH=\/path\/to\/libtorch npm run setup/);
  });

  it('maps dlopen failures to causes and fixes', () => {
    assert.match(
      explainLoadError(new Error('libtorch_cpu.so: cannot open shared object file: No such file or directory')),
      /libtorch is missing or moved: install it with `apt-get install -y libtorch-dev`, or set LIBTORCH/,
    );
    assert.match(explainLoadError(new Error('undefined symbol: _ZN3c105ErrorC1E')), /built against another libtorch/);
    assert.match(
      explainLoadError(new Error('was compiled against a different Node.js version using NODE_MODULE_VERSION 108')),
      /another Node\.js version/,
    );
    assert.match(explainLoadError(new Error('weird')), /cause and fix: a broken build/);
  });
});
