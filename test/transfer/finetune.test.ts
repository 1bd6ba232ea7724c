import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { readModelInfo } from '../../src/models/index.ts';
import { setNumThreads } from '../../src/tensor/index.ts';
import {
  DEFAULT_FINETUNE,
  disposeSourceModel,
  finetune,
  loadCropFolder,
  loadSourceModel,
  parseStrategy,
  type FinetuneSettings,
} from '../../src/transfer/index.ts';
import { fileTensorBytes, tempDir, writeTinyData, writeTinySource } from './helpers.ts';

setNumThreads(1);
const dir = tempDir('ft');
after(() => rmSync(dir, { recursive: true, force: true }));
const data = writeTinyData(dir, 6);
const folder = loadCropFolder(data);
const cases = { train: folder.cases.filter((c) => c.split === 'train'), val: folder.cases.filter((c) => c.split === 'val') };
const settings: FinetuneSettings = { ...DEFAULT_FINETUNE, maxSteps: 4, batchSize: 8, lr: 1e-2, threads: 1, seed: 5 };

function run(arch: 'joint' | 'resunet', strategy: string, lrDecay = 1, onLrs?: (lrs: number[]) => void): { before: Map<string, Buffer>; after: Map<string, Buffer>; file: string; frozen: string[] } {
  const src = writeTinySource(dir, arch);
  const source = loadSourceModel(src);
  try {
    const r = finetune({
      source,
      strategy: parseStrategy(strategy),
      cases,
      data,
      settings: { ...settings, lrDecay },
      outDir: join(dir, `run-${arch}-${strategy}-${lrDecay}`),
      events: { onStep: (_s, _n, info) => onLrs?.(info.lrs) },
    });
    return { before: fileTensorBytes(src), after: fileTensorBytes(r.bestModelPath), file: r.bestModelPath, frozen: r.frozenParameters };
  } finally {
    disposeSourceModel(source);
  }
}

/** Every frozen tensor (parameters and, in frozen batch norms, running statistics) byte-identical; every other parameter and statistic changed. */
function checkFrozen(r: ReturnType<typeof run>, isFrozen: (name: string) => boolean): void {
  assert.deepEqual([...r.after.keys()].sort(), [...r.before.keys()].sort());
  let frozenSeen = 0, trainedSeen = 0;
  for (const [name, bytes] of r.after) {
    const before = r.before.get(name)!;
    if (isFrozen(name)) {
      assert.ok(bytes.equals(before), `${name} is frozen and must not change`);
      frozenSeen++;
    } else if (!name.endsWith('num_batches_tracked')) {
      assert.ok(!bytes.equals(before), `${name} trains and must change`);
      trainedSeen++;
    }
  }
  assert.ok(frozenSeen > 0 && trainedSeen > 0, `${frozenSeen} frozen, ${trainedSeen} trained`);
}

test('encoder:2 on the joint model: frozen parameters and BN statistics byte-identical, the rest trained', () => {
  const r = run('joint', 'encoder:2');
  const frozen = (n: string) => /^(segEncoder|clsEncoder|fcbs)\.[01]\./.test(n);
  checkFrozen(r, frozen);
  assert.ok(r.frozen.every(frozen) && r.frozen.length > 0);
  // Running statistics of a frozen BN are among the unchanged tensors, of a trained one among the changed.
  assert.ok(r.before.has('segEncoder.0.norm1.running_mean') && r.before.has('decoder.0.block.norm1.running_var'));
  const info = readModelInfo(r.file);
  const ft = info.provenance['finetune'] as Record<string, unknown>;
  assert.equal(ft['strategy'], 'encoder:2');
  assert.match(String(ft['fromSha256']), /^[0-9a-f]{64}$/);
  assert.equal(ft['data'], data);
  assert.equal(ft['seed'], 5);
  assert.equal(ft['maxSteps'], 4);
  assert.deepEqual(ft['frozenPrefixes'], ['segEncoder.0', 'clsEncoder.0', 'fcbs.0', 'segEncoder.1', 'clsEncoder.1', 'fcbs.1']);
});

test('classifier on the joint model and all-but-head on the residual U-Net keep exactly their parts', () => {
  checkFrozen(run('joint', 'classifier'), (n) => /^(clsEncoder|classifier)\./.test(n) || /^fcbs\.\d\.(toCls|clsNorm)\./.test(n));
  checkFrozen(run('resunet', 'all-but-head'), (n) => !n.startsWith('head.'));
});

test('--lr-decay 0.5: each encoder stage steps at half the rate of the one above it', () => {
  const seen: number[][] = [];
  run('joint', 'none', 0.5, (lrs) => seen.push(lrs));
  assert.equal(seen.length, 4);
  const base = seen[0]![0]!;
  assert.ok(Math.abs(base - settings.lr) < 1e-12, `first step at the base rate, got ${base}`);
  for (const lrs of seen) {
    assert.equal(lrs.length, 4);
    lrs.forEach((lr, i) => assert.ok(Math.abs(lr - lrs[0]! * 0.5 ** i) < 1e-12, `group ${i}: ${lr}`));
  }
  assert.ok(seen[3]![0]! < seen[0]![0]!, 'the schedule decays');
});
