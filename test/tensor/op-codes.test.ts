// The op table has one source (native/ops.def): the generated src/native/op-codes.ts must be
// current, the loaded addon must have been built from the same table, and every native entry
// point must refuse a code outside its family.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadNative, opTableMismatch, type NativeAddon } from '../../src/native/binding.ts';
import { OP_TABLE, type OpFamily } from '../../src/native/op-codes.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const GEN = join(root, 'scripts', 'gen-op-codes.mjs');
const DEF = join(root, 'native', 'ops.def');
const OUT = join(root, 'src', 'native', 'op-codes.ts');

function gen(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [GEN, ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe('generated op codes', () => {
  it('src/native/op-codes.ts is current with native/ops.def', () => {
    const r = gen('--check');
    assert.equal(r.status, 0, `stale: ${r.stderr}`);
  });

  it('--check fails for a table with an op the generated file lacks, and for a malformed line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'op-codes-'));
    try {
      const def = readFileSync(DEF, 'utf8');
      const added = join(dir, 'added.def');
      writeFileSync(added, def.replace('NS_UNARY(tan, at::tan(a))', 'NS_UNARY(tan, at::tan(a))\nNS_UNARY(asin, at::asin(a))'));
      const r = gen('--check', '--def', added, '--out', OUT);
      assert.equal(r.status, 1);
      assert.match(r.stderr, /not current/);

      const swapped = join(dir, 'swapped.def');
      writeFileSync(
        swapped,
        def.replace(
          'NS_BINARY(add, at::add(a, b))\nNS_BINARY(sub, at::sub(a, b))',
          'NS_BINARY(sub, at::sub(a, b))\nNS_BINARY(add, at::add(a, b))',
        ),
      );
      assert.equal(gen('--check', '--def', swapped, '--out', OUT).status, 1, 'two swapped ops change the codes');

      const bad = join(dir, 'bad.def');
      writeFileSync(bad, `${def}\nNS_UNARY(tan, at::tan(a))\n`);
      const rb = gen('--check', '--def', bad, '--out', OUT);
      assert.notEqual(rb.status, 0);
      assert.match(rb.stderr, /tan appears twice/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('codes are positions: every family is dense from 0', () => {
    for (const family of Object.keys(OP_TABLE) as OpFamily[]) {
      const names: readonly string[] = OP_TABLE[family];
      assert.equal(new Set(names).size, names.length, `${family} has a duplicate`);
      assert.notEqual(names.length, 0, `${family} is empty`);
    }
  });
});

describe('the addon and op-codes.ts agree', () => {
  const native: NativeAddon = loadNative();

  it('the loaded addon reports the same table', () => {
    assert.deepEqual(native.opTable(), JSON.parse(JSON.stringify(OP_TABLE)));
    assert.equal(opTableMismatch(native.opTable()), null);
  });

  it('a table with two ops swapped, a missing family or no table at all is named', () => {
    const swapped = { ...native.opTable(), binary: ['sub', 'add', ...OP_TABLE.binary.slice(2)] };
    assert.match(opTableMismatch(swapped) ?? '', /binary code 0 is 'sub' in the addon but 'add'/);
    const { dtype: _dtype, ...noDType } = native.opTable();
    assert.match(opTableMismatch(noDType) ?? '', /no 'dtype' op family/);
    const longer = { ...native.opTable(), unary: [...OP_TABLE.unary, 'asin'] };
    assert.match(opTableMismatch(longer) ?? '', /unary code 32 is 'asin' in the addon but '\(none\)'/);
    assert.match(opTableMismatch(undefined) ?? '', /no opTable/);
  });

  it('every entry point refuses a code outside its family', () => {
    const x = native.fromBuffer(new Float64Array([1, 2, 3, 4]), 1, [1, 1, 2, 2]);
    try {
      const n = (family: OpFamily): number => OP_TABLE[family].length;
      assert.throws(() => native.binary(n('binary') as 0, x, x), /binary: unknown op code 19/);
      assert.throws(() => native.binary(-1 as 0, x, x), /binary: unknown op code -1/);
      assert.throws(() => native.unary(n('unary') as 0, x), /unary: unknown op code/);
      assert.throws(() => native.reduce(n('reduce') as 0, x, null, false, true), /reduce: unknown op code/);
      assert.throws(() => native.pointLoss(n('pointLoss') as 0, x, x, 1, 1), /pointLoss: unknown loss code/);
      assert.throws(() => native.pointLoss(0, x, x, n('reduction') as 0, 1), /mseLoss: unknown reduction code/);
      assert.throws(() => native.bceWithLogits(x, x, null, null, 7 as 0), /binaryCrossEntropyWithLogits: unknown reduction code 7/);
      assert.throws(() => native.interpolate(x, [4, 4], n('interpMode') as 0, false, null), /interpolate: unknown mode code/);
      assert.throws(() => native.zeros([2], n('dtype')), /not a known dtype code/);
      assert.throws(() => new native.NativeOptimizer(n('optimizerKind') as 0, []), /optimizer: unknown kind/);
    } finally {
      x.dispose();
    }
  });
});
