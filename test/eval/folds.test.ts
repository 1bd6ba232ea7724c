import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldSplit, parseFoldList, parseFoldSpec, stratifiedPatientFolds, type NoduleType } from '../../src/data/index.ts';

/** 120 patients: 1-3 nodules each, 1 in 8 nodules ground-glass, 1 in 20 part-solid, one patient with 8 ground-glass. */
function cohort(): Array<{ id: string; patientId: string; noduleType: NoduleType | null }> {
  const out: Array<{ id: string; patientId: string; noduleType: NoduleType | null }> = [];
  let n = 0;
  for (let p = 0; p < 120; p++) {
    const count = p === 7 ? 8 : 1 + (p % 3);
    for (let k = 0; k < count; k++, n++) {
      const t: NoduleType = p === 7 ? 'ground-glass' : n % 20 === 3 ? 'part-solid' : n % 8 === 5 ? 'ground-glass' : 'solid';
      out.push({ id: `c${n}`, patientId: `P${p}`, noduleType: t });
    }
  }
  return out;
}

test('folds keep each patient in one fold and spread every type evenly', () => {
  const cases = cohort();
  const k = 5;
  const folds = stratifiedPatientFolds(cases, k, 1);
  assert.equal(folds.size, 120);
  const counts = Array.from({ length: k }, () => ({ solid: 0, 'part-solid': 0, 'ground-glass': 0, total: 0 }));
  for (const c of cases) {
    const f = folds.get(c.patientId)!;
    counts[f]![c.noduleType!]++;
    counts[f]!.total++;
  }
  const range = (key: 'solid' | 'part-solid' | 'ground-glass' | 'total') =>
    Math.max(...counts.map((c) => c[key])) - Math.min(...counts.map((c) => c[key]));
  assert.ok(range('part-solid') <= 1, JSON.stringify(counts));
  // The 8-nodule patient cannot be split, so ground-glass may differ by up to its size.
  assert.ok(range('ground-glass') <= 8, JSON.stringify(counts));
  assert.ok(range('total') <= 4, JSON.stringify(counts));
  // Held-out and training sides are patient-disjoint and cover everything.
  for (let i = 0; i < k; i++) {
    const { train, heldOut } = foldSplit(cases, k, i, 1);
    assert.equal(train.length + heldOut.length, cases.length);
    const held = new Set(heldOut.map((c) => c.patientId));
    assert.ok(train.every((c) => !held.has(c.patientId)));
  }
  // Seeded: the same seed gives the same folds, another seed others.
  assert.deepEqual([...stratifiedPatientFolds(cases, k, 1)], [...folds]);
  assert.notDeepEqual([...stratifiedPatientFolds(cases, k, 2)], [...folds]);
});

test('fold specs and bad fold counts', () => {
  assert.deepEqual(parseFoldSpec('2/5'), { index: 1, count: 5 });
  assert.equal(parseFoldSpec('0/5'), null);
  assert.equal(parseFoldSpec('6/5'), null);
  assert.equal(parseFoldSpec('1/1'), null);
  assert.equal(parseFoldSpec('a/5'), null);
  assert.deepEqual(parseFoldList('3,1', 5), [0, 2]);
  assert.deepEqual(parseFoldList('5', 5), [4]);
  for (const bad of ['0', '6', '1,1', '1,,2', 'x', ''])
    assert.throws(() => parseFoldList(bad, 5), /--only: expected distinct fold numbers from 1 to 5/, bad);
  assert.throws(() => stratifiedPatientFolds([{ patientId: 'a', noduleType: 'solid' }], 2, 1), /at least 2 patients/);
});
