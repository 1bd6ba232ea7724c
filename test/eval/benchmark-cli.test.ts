import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lidcCropsDir, lidcScansDir, missingDataReason } from '../../src/data/index.ts';
import { DEFAULT_MODEL } from '../../src/cli/segment.ts';
import { runCliBatch, tempDir } from '../io/helpers.ts';

const missing = missingDataReason(lidcCropsDir()) ?? missingDataReason(lidcScansDir());

test('benchmark: folds, crops and scans from the command line; bad arguments end with one line and exit 1', {
  skip: missing ?? false,
}, () => {
  const d = tempDir('bench');
  const csv = join(d, 'rows.csv'),
    md = join(d, 'table.md');
  const scan0001 = join(lidcScansDir(), 'LIDC-IDRI-0001');
  const [folds, crops, clicked, badClick, scans, badPrompt, overModel, badFold, noModel] = runCliBatch([
    ['benchmark', 'folds', '--folds', '5'],
    ['benchmark', 'crops', '--split', 'val', '--limit', '3', '--csv', csv, '--md', md, '--threads', '1'],
    ['benchmark', 'crops', '--split', 'val', '--limit', '2', '--click', 'on-nodule', '--threads', '1'],
    ['benchmark', 'crops', '--limit', '1', '--click', '2cm'],
    ['benchmark', 'scans', scan0001, '--prompts', 'point', '--threads', '1'],
    ['benchmark', 'scans', scan0001, '--prompts', 'click'],
    ['benchmark', 'crops', '--limit', '1', '--csv', DEFAULT_MODEL],
    ['benchmark', 'crops', '--fold', '6/5'],
    ['benchmark', 'crops', '--model', join(d, 'none.safetensors')],
  ]);
  assert.equal(folds!.code, 0, folds!.stderr);
  assert.equal(folds!.stdout.trim().split('\n').length, 2 + 5);
  assert.equal(crops!.code, 0, crops!.stderr);
  assert.match(crops!.stdout, /3 nodules of lidc-crops val/);
  assert.match(crops!.stdout, /\| type: solid \|/);
  assert.equal(readFileSync(csv, 'utf8').trim().split('\n').length, 4);
  assert.ok(existsSync(md));
  assert.equal(clicked!.code, 0, clicked!.stderr);
  assert.match(clicked!.stdout, /2 nodules of lidc-crops val, model .*, clicked at a random voxel of the readers' 50% consensus/);
  assert.equal(scans!.code, 0, scans!.stderr);
  assert.match(scans!.stdout, /\| LIDC-IDRI-0001 \| 1 \| 4 \| point \|/);
  for (const [r, what] of [
    [badPrompt, /--prompts: expected point, box/],
    [badClick, /--click: expected centre, on-nodule or an offset/],
    [overModel, /an output may not overwrite an input/],
    [badFold, /--fold: expected i\/k/],
    [noModel, /no such model file/],
  ] as const) {
    assert.equal(r!.code, 1, r!.stderr);
    assert.match(r!.stderr, what);
    assert.equal(r!.stderr.trim().split('\n').length, 1, r!.stderr);
  }
});
