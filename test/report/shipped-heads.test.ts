/**
 * The shipped model's heads: present, readable, ignored by the strict segmentation loader, and
 * right on held-out (val) crops whose LIDC labels are unambiguous.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DEFAULT_MODEL } from '../../src/cli/segment.ts';
import { loadModel } from '../../src/models/index.ts';
import { readHeads } from '../../src/classify/index.ts';
import { readSafetensors } from '../../src/nn/safetensors.ts';
import { segmentCrop } from '../../src/inference/index.ts';
import { readVolume } from '../../src/io/index.ts';
import { lidcCropsDir, missingDataReason } from '../../src/data/index.ts';
import { withGuidelines } from '../../src/report/assess.ts';

test('the shipped model carries heads beside the untouched segmentation network', () => {
  const { model } = loadModel(DEFAULT_MODEL); // strict: every tensor is the network's
  try {
    const heads = readHeads(DEFAULT_MODEL, model);
    assert.ok(heads, 'noduleseg.heads metadata');
    assert.deepEqual(heads.heads.type.classes, ['solid', 'part-solid', 'ground-glass']);
    assert.ok(heads.features.network > 0 && heads.features.hu.length > 0);
    const { tensors } = readSafetensors(DEFAULT_MODEL);
    assert.ok(
      [...tensors.keys()].every((k) => !k.startsWith('heads')),
      'no extra tensors',
    );
  } finally {
    model.dispose();
  }
});

const missing = missingDataReason(lidcCropsDir());
test('val crops: a calcified nodule, a large malignant-rated one, a ground-glass one, a part-solid one', {
  skip: missing ?? false,
}, async () => {
  const { model, info } = loadModel(DEFAULT_MODEL);
  try {
    const heads = readHeads(DEFAULT_MODEL, model);
    const run = async (id: string) => {
      const crop = await readVolume(join(lidcCropsDir(), 'image', `${id}.nii.gz`));
      return withGuidelines([segmentCrop(model, info, crop, { heads }).nodule])[0]!;
    };
    // LIDC (max-voting): calcified, malignancy 1
    const calcified = await run('LIDC-IDRI-0021_R_3');
    assert.ok(calcified.calcified! > 0.9, `calcified ${calcified.calcified}`);
    assert.equal(calcified.lungRads!.category, '1');
    // solid, malignancy 5, 20+ mm
    const large = await run('LIDC-IDRI-0023_R_1');
    assert.equal(large.type, 'solid');
    assert.ok(large.malignancySuspicion! > 0.5, `suspicion ${large.malignancySuspicion}`);
    assert.equal(large.lungRads!.category, '4B');
    // ground-glass (texture 1)
    const ggo = await run('LIDC-IDRI-0352_R_2');
    assert.equal(ggo.type, 'ground-glass', `type probabilities ${ggo.typeProbabilities}`);
    assert.match(ggo.lungRads!.reason, /^ground-glass/);
    // part-solid (texture 3): the type head finds few of them (4 of 22 in train's CV since the
    // composition features of session 9, 2 before); this one is found with margin (0.57 against 0.22)
    const partSolid = await run('LIDC-IDRI-0702_R_5');
    assert.equal(partSolid.type, 'part-solid', `type probabilities ${partSolid.typeProbabilities}`);
    assert.match(partSolid.lungRads!.reason, /^part-solid/);
  } finally {
    model.dispose();
  }
});
