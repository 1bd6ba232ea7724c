// Issue 13, "fast start-up": the commands that do not need libtorch never load it, and the command
// list that --help prints without importing train and benchmark is theirs word for word.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Volume, writeNifti } from '../../src/io/index.ts';
import { buildProgram, commandNamed } from '../../src/cli/main.ts';
import { tempDir } from '../io/helpers.ts';

function probe(dir: string, args: string[]): { code: number; native: boolean; stderr: string } {
  const out = join(dir, 'probe.json');
  rmSync(out, { force: true });
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'native-probe.ts'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODULESEG_PROBE_OUT: out },
  });
  assert.ok(existsSync(out), `${args.join(' ')} crashed: ${r.stderr}`);
  return { ...(JSON.parse(readFileSync(out, 'utf8')) as { code: number; native: boolean }), stderr: r.stderr };
}

test('--help, inspect, lidc, eval and synth run without loading the libtorch addon; segment loads it', {
  skip: existsSync('/proc/self/maps') ? false : 'needs /proc',
}, () => {
  const dir = tempDir('startup');
  try {
    const crop = join(dir, 'crop.nii.gz');
    const mask = new Uint8Array(6 * 6 * 3).map((_, i) => (i % 5 === 0 ? 1 : 0));
    writeNifti(
      crop,
      new Volume({
        data: new Int16Array(6 * 6 * 3).fill(-800),
        dims: [6, 6, 3],
        spacingMm: [1, 1, 1],
        originMm: [0, 0, 0],
        modality: 'CT',
      }),
    );
    for (const d of ['pred', 'ref']) {
      mkdirSync(join(dir, d));
      writeNifti(join(dir, d, 'a.nii.gz'), new Volume({ data: mask, dims: [6, 6, 3], spacingMm: [1, 1, 1], originMm: [0, 0, 0] }));
    }
    mkdirSync(join(dir, 'empty'));
    const quiet: Array<[string[], number]> = [
      [['--help'], 0],
      [['inspect', crop], 0],
      [['eval', '--pred', join(dir, 'pred'), '--ref', join(dir, 'ref'), '--csv', join(dir, 'm.csv')], 0],
      [['synth', '--output', join(dir, 'synth'), '--count', '1'], 0],
      [['lidc', join(dir, 'empty')], 1], // no DICOM there: a one-line error, after the readers loaded
    ];
    for (const [args, code] of quiet) {
      const r = probe(dir, args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.native, false, `${args.join(' ')} loaded the native addon`);
    }
    // The control: segment loads it (and then fails on the fake model file).
    const r = probe(dir, ['segment', '-i', crop, '-m', crop]);
    assert.equal(r.code, 1);
    assert.equal(r.native, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the command list of --help (train and benchmark not imported) is the one their modules register', async () => {
  const lazy = await buildProgram(['node', 'noduleseg', '--help']);
  const full = await buildProgram([], { loadAll: true });
  assert.equal(lazy.helpInformation(), full.helpInformation());
  // The modules are imported when their command is run or its help asked for.
  assert.equal(commandNamed(['node', 'noduleseg', 'help', 'train']), 'train');
  assert.equal(commandNamed(['node', 'noduleseg', '-h']), undefined);
  const train = await buildProgram(['node', 'noduleseg', 'train', '--help']);
  assert.ok(train.commands.find((c) => c.name() === 'train')!.options.some((o) => o.long === '--config'));
});

test('help texts that avoid importing libtorch modules quote their constants right', async () => {
  const { HELP_DEFAULTS } = await import('../../src/cli/finetune.ts');
  const { DEFAULT_FINETUNE } = await import('../../src/transfer/index.ts');
  assert.deepEqual(HELP_DEFAULTS, { epochs: DEFAULT_FINETUNE.epochs, lr: DEFAULT_FINETUNE.lr, batchSize: DEFAULT_FINETUNE.batchSize });
});

test('bin/noduleseg gives the same answers from the compiled build (when current) and from the sources', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'noduleseg');
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env: { ...process.env, ...env } });
  const built = run({});
  const sources = run({ NODULESEG_SOURCES: '1' });
  assert.equal(built.status, 0, built.stderr);
  assert.equal(sources.status, 0, sources.stderr);
  assert.equal(built.stdout, sources.stdout);
});
