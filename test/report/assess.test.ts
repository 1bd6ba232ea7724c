/** Guidelines added to the nodules of a scan, as `segment` and the viewer report them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  withGuidelines,
  withGuidelinesOne,
  clinicalSummary,
  NO_TYPE_WARNING,
  PART_SOLID_REVIEW_PROBABILITY,
} from '../../src/report/assess.ts';
import { DEFAULT_FLEISCHNER_CONTEXT } from '../../src/guidelines/index.ts';
import { Session } from '../../src/server/session.ts';
import { scene } from './helpers.ts';

test('one nodule: single rows; two found: multiple rows; an empty one does not count', () => {
  const { nodule } = scene();
  const ctx = { ...DEFAULT_FLEISCHNER_CONTEXT, risk: 'low' as const, ageYears: 50 };
  const [one] = withGuidelines([nodule], ctx);
  assert.match(one!.fleischner!.row!, /single/);
  assert.equal(one!.lungRads!.version, 'Lung-RADS v2022 (baseline)');
  const empty = { ...nodule, label: 3, measures: { ...nodule.measures, voxelCount: 0 } };
  assert.match(withGuidelines([nodule, empty], ctx)[0]!.fleischner!.row!, /single/);
  const two = withGuidelines([nodule, { ...nodule, label: 2 }], ctx);
  assert.match(two[0]!.fleischner!.row!, /multiple/);
  assert.equal(withGuidelines([nodule, empty], ctx)[1]!.lungRads, null);
  assert.deepEqual(withGuidelinesOne(nodule, 2, ctx).fleischner, two[0]!.fleischner);
  assert.match(
    clinicalSummary(one!),
    /^part-solid \(p 0\.70\), .* mm \(mean .* mm\), solid component .* mm, Lung-RADS (2|3|4A|4B), Fleischner: /,
  );
});

test('a solid call with a part-solid probability at the review level is flagged with its part-solid category', () => {
  const { nodule } = scene();
  const review = (p: number, type: 'solid' | 'ground-glass' | 'part-solid') =>
    withGuidelinesOne({ ...nodule, type, typeProbabilities: type === 'ground-glass' ? [0.1, p, 0.9 - p] : [0.9 - p, p, 0.1] }, 1);
  const flagged = review(PART_SOLID_REVIEW_PROBABILITY, 'solid');
  const asPartSolid = withGuidelinesOne({ ...nodule, type: 'part-solid' }, 1);
  const w = flagged.warnings.find((x) => x.startsWith('possibly part-solid'));
  assert.ok(w, `warnings ${flagged.warnings}`);
  assert.ok(w.includes(`Lung-RADS ${asPartSolid.lungRads!.category} (${asPartSolid.lungRads!.reason})`), w);
  assert.match(flagged.lungRads!.reason, /^solid/);
  assert.ok(review(PART_SOLID_REVIEW_PROBABILITY, 'ground-glass').warnings.some((x) => x.startsWith('possibly part-solid')));
  assert.ok(!review(PART_SOLID_REVIEW_PROBABILITY - 0.01, 'solid').warnings.some((x) => x.startsWith('possibly part-solid')));
  assert.ok(!review(0.7, 'part-solid').warnings.some((x) => x.startsWith('possibly part-solid')));
});

test('without heads: no categories, and a warning that says why', () => {
  const { nodule } = scene();
  const [r] = withGuidelines([
    { ...nodule, type: null, typeProbabilities: null, calcified: null, malignancySuspicion: null, spiculation: null },
  ]);
  assert.equal(r!.lungRads, null);
  assert.equal(r!.fleischner, null);
  assert.ok(r!.warnings.includes(NO_TYPE_WARNING));
});

test('the viewer panel gets the same type, measurements and categories; the count selects multiple', () => {
  const { nodule } = scene();
  const sessionNodule = { label: 1, result: nodule, voxels: new Int32Array(0), anyReaderVoxels: null, lidcMatch: null };
  const v1 = Session.view(sessionNodule, 1);
  const [expected] = withGuidelines([nodule]);
  assert.equal(v1.type, 'part-solid');
  assert.deepEqual(v1.typeProbabilities, nodule.typeProbabilities);
  assert.deepEqual(v1.guidelineMeasures, nodule.guidelineMeasures);
  assert.deepEqual(v1.lungRads, expected!.lungRads);
  assert.deepEqual(v1.fleischner, expected!.fleischner);
  assert.match(Session.view(sessionNodule, 2).fleischner!.row!, /multiple/);
});

test("the viewer's HTML download: the same page as segment --html, from the session's nodules", () => {
  const { volume, labels, nodule } = scene();
  const session = new Session('s', 'LIDC-IDRI-9999/series', volume, [], []);
  const voxels = Int32Array.from([...labels.keys()].filter((i) => labels[i] === 1));
  session.nodules.push({ label: 1, result: nodule, voxels, anyReaderVoxels: null, lidcMatch: null });
  const html = session.htmlReport('noduleseg.safetensors (joint)');
  assert.match(html, /Input: LIDC-IDRI-9999\/series/);
  assert.match(html, /<b>part-solid<\/b>/);
  assert.equal([...html.matchAll(/data:image\/png;base64,/g)].length, 2, 'key images drawn from the session mask');
  assert.match(html, /risk not given/);
});
