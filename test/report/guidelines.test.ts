/**
 * Lung-RADS v2022 (baseline) and Fleischner 2017: every row of each table with a worked example,
 * the boundaries of every size band (including the rounding the guidelines prescribe), and the
 * cases where a guideline does not apply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  lungRadsBaseline,
  fleischner2017,
  assessNodule,
  roundToTenthMm,
  roundToMm,
  LUNG_RADS_VERSION,
  FLEISCHNER_VERSION,
  DEFAULT_FLEISCHNER_CONTEXT,
  type FleischnerContext,
  type GuidelineMeasures,
} from '../../src/guidelines/index.ts';

const solid = (d: number) => lungRadsBaseline({ type: 'solid', meanDiameterMm: d, benignCalcification: false });
const partSolid = (d: number, s: number) =>
  lungRadsBaseline({ type: 'part-solid', meanDiameterMm: d, solidComponentMeanDiameterMm: s, benignCalcification: false });
const ggn = (d: number) => lungRadsBaseline({ type: 'ground-glass', meanDiameterMm: d, benignCalcification: false });

test('rounding: Lung-RADS to 0.1 mm, Fleischner to the nearest mm', () => {
  assert.equal(roundToTenthMm(5.95), 6);
  assert.equal(roundToTenthMm(5.94), 5.9);
  assert.equal(roundToTenthMm(7.25), 7.3);
  assert.equal(roundToMm(5.5), 6);
  assert.equal(roundToMm(5.49), 5);
  assert.equal(roundToMm(8.49), 8);
  assert.equal(roundToMm(8.5), 9);
});

test('Lung-RADS: calcified nodule (benign pattern) is category 1 whatever its size and type', () => {
  for (const type of ['solid', 'part-solid', 'ground-glass'] as const) {
    const r = lungRadsBaseline({ type, meanDiameterMm: 22, solidComponentMeanDiameterMm: 10, benignCalcification: true });
    assert.equal(r.category, '1');
    assert.match(r.reason, /calcification/);
    assert.equal(r.management, 'Continue annual screening with LDCT in 12 months');
    assert.equal(r.version, LUNG_RADS_VERSION);
  }
});

test('Lung-RADS: solid nodule rows (2: < 6; 3: 6 to < 8; 4A: 8 to < 15; 4B: >= 15 mm)', () => {
  // worked example: long 6.4 mm, short 5.4 mm -> mean 5.9 mm -> category 2
  assert.equal(solid((6.4 + 5.4) / 2).category, '2');
  assert.equal(solid(5.94).category, '2');
  assert.equal(solid(5.95).category, '3', '5.95 rounds to 6.0 mm');
  assert.equal(solid(7.9).category, '3');
  assert.equal(solid(7.96).category, '4A', '7.96 rounds to 8.0 mm');
  assert.equal(solid(14.9).category, '4A');
  assert.equal(solid(15).category, '4B');
  assert.equal(solid(31).category, '4B');
  assert.equal(solid(0).category, '2');
  assert.match(solid(7).reason, /solid nodule >= 6 to < 8 mm \(7\.0 mm\)/);
  assert.equal(solid(7).management, 'LDCT in 6 months');
  assert.match(solid(10).management, /^LDCT in 3 months/);
  assert.match(solid(16).management, /^Diagnostic chest CT/);
});

test('Lung-RADS: part-solid rows (2: < 6 total; 3: solid < 6; 4A: solid 6 to < 8; 4B: solid >= 8 mm)', () => {
  assert.equal(partSolid(5.9, 3).category, '2');
  // worked example: total 12 mm with a 4 mm solid part -> 3
  assert.equal(partSolid(12, 4).category, '3');
  assert.equal(partSolid(6, 5.94).category, '3');
  assert.equal(partSolid(9, 5.96).category, '4A', 'solid part 5.96 rounds to 6.0 mm');
  assert.equal(partSolid(9, 7.9).category, '4A');
  assert.equal(partSolid(14, 8).category, '4B');
  assert.match(partSolid(14, 8).reason, /solid component >= 8 mm \(8\.0 mm; total 14\.0 mm\)/);
  assert.throws(
    () => lungRadsBaseline({ type: 'part-solid', meanDiameterMm: 10, benignCalcification: false }),
    /solidComponentMeanDiameterMm/,
  );
});

test('Lung-RADS: ground-glass rows (2: < 30; 3: >= 30 mm)', () => {
  assert.equal(ggn(12).category, '2');
  assert.equal(ggn(29.94).category, '2');
  assert.equal(ggn(29.96).category, '3');
  assert.equal(ggn(41).category, '3');
});

test('Lung-RADS: 4X is flagged on categories 3 and 4 with suspicious features, never assigned', () => {
  const r = lungRadsBaseline({ type: 'solid', meanDiameterMm: 18, benignCalcification: false, suspiciousFeatures: ['spiculation'] });
  assert.equal(r.category, '4B');
  assert.match(r.consider4X!, /spiculation: the reader may assign 4X/);
  assert.equal(
    lungRadsBaseline({ type: 'solid', meanDiameterMm: 7, benignCalcification: false, suspiciousFeatures: ['spiculation'] }).consider4X !==
      null,
    true,
  );
  assert.equal(
    lungRadsBaseline({ type: 'solid', meanDiameterMm: 4, benignCalcification: false, suspiciousFeatures: ['spiculation'] }).consider4X,
    null,
  );
  assert.equal(solid(18).consider4X, null);
});

test('Lung-RADS: a size that is not a size is refused', () => {
  assert.throws(() => solid(Number.NaN), RangeError);
  assert.throws(() => solid(-1), RangeError);
  assert.throws(() => partSolid(10, -2), RangeError);
});

const ctx = (over: Partial<FleischnerContext> = {}): FleischnerContext => ({ ...DEFAULT_FLEISCHNER_CONTEXT, ageYears: 60, ...over });
const fl = (type: 'solid' | 'part-solid' | 'ground-glass', d: number, multiple: boolean, c: FleischnerContext, s: number | null = null) =>
  fleischner2017({ type, meanDiameterMm: d, solidComponentMeanDiameterMm: s, multiple, benignCalcification: false }, c);

test('Fleischner: solid, single, by risk (every row)', () => {
  const low = ctx({ risk: 'low' }),
    high = ctx({ risk: 'high' });
  // worked example: long 6.2, short 5.0 -> mean 5.6 -> 6 mm -> "6-8 mm"
  assert.equal(fl('solid', (6.2 + 5.0) / 2, false, low).recommendation, 'CT at 6-12 months, then consider CT at 18-24 months');
  assert.equal(fl('solid', 5.4, false, low).recommendation, 'No routine follow-up');
  assert.equal(fl('solid', 5.4, false, high).recommendation, 'Optional CT at 12 months');
  assert.equal(fl('solid', 8.4, false, high).recommendation, 'CT at 6-12 months, then CT at 18-24 months');
  assert.equal(fl('solid', 8.5, false, low).recommendation, 'Consider CT at 3 months, PET/CT, or tissue sampling');
  assert.equal(fl('solid', 12, false, high).recommendation, 'Consider CT at 3 months, PET/CT, or tissue sampling');
  assert.equal(fl('solid', 7, false, low).row, 'solid, single, 6-8 mm (7 mm)');
  assert.equal(fl('solid', 7, false, low).version, FLEISCHNER_VERSION);
});

test('Fleischner: solid, multiple, by risk (every row)', () => {
  const low = ctx({ risk: 'low' }),
    high = ctx({ risk: 'high' });
  assert.equal(fl('solid', 4, true, low).recommendation, 'No routine follow-up');
  assert.equal(fl('solid', 4, true, high).recommendation, 'Optional CT at 12 months');
  assert.equal(fl('solid', 7, true, low).recommendation, 'CT at 3-6 months, then consider CT at 18-24 months');
  assert.equal(fl('solid', 7, true, high).recommendation, 'CT at 3-6 months, then at 18-24 months');
  assert.equal(fl('solid', 10, true, low).recommendation, 'CT at 3-6 months, then consider CT at 18-24 months');
  assert.equal(fl('solid', 10, true, high).recommendation, 'CT at 3-6 months, then consider CT at 18-24 months');
  assert.equal(fl('solid', 10, true, high).row, 'solid, multiple, > 8 mm (10 mm)');
});

test('Fleischner: subsolid rows (ground-glass, part-solid, multiple; risk does not change them)', () => {
  for (const risk of ['low', 'high'] as const) {
    const c = ctx({ risk });
    assert.equal(fl('ground-glass', 5, false, c).recommendation, 'No routine follow-up');
    assert.equal(
      fl('ground-glass', 14, false, c).recommendation,
      'CT at 6-12 months to confirm persistence, then CT every 2 years until 5 years',
    );
    assert.equal(fl('part-solid', 5.4, false, c, 2).recommendation, 'No routine follow-up');
    assert.equal(
      fl('part-solid', 9, false, c, 3).recommendation,
      'CT at 3-6 months to confirm persistence; if unchanged and the solid component remains < 6 mm, annual CT for 5 years',
    );
    assert.equal(fl('ground-glass', 4, true, c).recommendation, 'CT at 3-6 months; if stable, consider CT at 2 and 4 years');
    assert.equal(
      fl('part-solid', 12, true, c, 7).recommendation,
      'CT at 3-6 months; subsequent management based on the most suspicious nodule(s)',
    );
  }
  assert.match(fl('part-solid', 12, false, ctx(), 6.6).recommendation, /solid component of 6 mm or more is highly suspicious/);
  assert.equal(fl('ground-glass', 5.5, false, ctx()).row, 'subsolid (ground-glass), single, >= 6 mm (6 mm)');
});

test('Fleischner: without a risk both answers are given; without an age the age limit is recalled', () => {
  const r = fl('solid', 7, false, ctx());
  assert.equal(
    r.recommendation,
    'low risk: CT at 6-12 months, then consider CT at 18-24 months; high risk: CT at 6-12 months, then CT at 18-24 months',
  );
  assert.match(fl('solid', 7, false, DEFAULT_FLEISCHNER_CONTEXT).recommendation, /\(applies from age 35\)$/);
});

test('Fleischner: not applicable under 35, in screening, with a known cancer, when immunosuppressed, when calcified', () => {
  const cases: Array<[Partial<FleischnerContext>, RegExp]> = [
    [{ ageYears: 34 }, /under 35/],
    [{ setting: 'screening' }, /screening/],
    [{ knownCancer: true }, /known cancer/],
    [{ immunosuppressed: true }, /immunosuppressed/],
  ];
  for (const [over, why] of cases) {
    const r = fl('solid', 10, false, ctx(over));
    assert.equal(r.applicable, false);
    assert.equal(r.row, null);
    assert.match(r.recommendation, why);
  }
  assert.equal(fl('solid', 10, false, ctx({ ageYears: 35 })).applicable, true);
  const calc = fleischner2017({ type: 'solid', meanDiameterMm: 10, multiple: false, benignCalcification: true }, ctx());
  assert.equal(calc.applicable, false);
  assert.throws(() => fl('solid', Number.NaN, false, ctx()), RangeError);
});

function measures(longMm: number, shortMm: number, solid: [number, number] | null): GuidelineMeasures {
  const axes = (l: number, s: number) => ({
    longAxisMm: l,
    shortAxisMm: s,
    meanDiameterLungRadsMm: roundToTenthMm((l + s) / 2),
    meanDiameterFleischnerMm: roundToMm((l + s) / 2),
    volumeMm3: 0,
    axialSlice: 0,
    voxelCount: 1,
  });
  return { ...axes(longMm, shortMm), solidComponent: solid ? axes(solid[0], solid[1]) : null, solidThresholdHU: -300 };
}

test('assessNodule: the probabilities and measures reach both guidelines', () => {
  const a = assessNodule({ type: 'part-solid', calcified: 0.1, spiculation: 0.8 }, measures(14, 10, [7, 6]), 1, ctx({ risk: 'high' }));
  assert.equal(a.lungRads.category, '4A');
  assert.match(a.lungRads.consider4X!, /spiculation/);
  assert.match(a.fleischner.row!, /part-solid.*single.*12 mm/);
  const calcified = assessNodule({ type: 'solid', calcified: 0.9, spiculation: null }, measures(14, 10, null), 3, ctx());
  assert.equal(calcified.lungRads.category, '1');
  assert.equal(calcified.fleischner.applicable, false);
  const multiple = assessNodule({ type: 'solid', calcified: 0.2, spiculation: 0.2 }, measures(8, 6, null), 2, ctx({ risk: 'low' }));
  assert.equal(multiple.fleischner.row, 'solid, multiple, 6-8 mm (7 mm)');
  assert.equal(multiple.lungRads.category, '3');
  assert.equal(multiple.lungRads.consider4X, null);
});
