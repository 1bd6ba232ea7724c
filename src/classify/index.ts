/**
 * Nodule-level classification (type, calcification, malignancy suspicion, spiculation) from the
 * frozen joint network and the nodule's mask; see heads.ts and features.ts.
 */
import { UserError } from '../errors.ts';
import { readSafetensors } from '../nn/safetensors.ts';
import type { SliceConfig } from '../data/index.ts';
import type { Volume, Vec3 } from '../io/volume.ts';
import type { SegmentationNetwork } from '../models/types.ts';
import { asJointNet, noduleFeatures, networkFeatureCount } from './features.ts';
import { HU_FEATURE_NAMES } from './pooling.ts';
import { classifyNodule, parseHeads, HEADS_KEY, type NoduleHeads, type NoduleClassification } from './heads.ts';

export {
  classifyNodule,
  parseHeads,
  serialiseHeads,
  headForward,
  HEADS_KEY,
  type NoduleHeads,
  type NoduleClassification,
  type Head,
  type HeadName,
  type DenseLayer,
} from './heads.ts';
export { noduleFeatures, type NoduleFeatures } from './features.ts';
export { HU_FEATURE_NAMES } from './pooling.ts';

/**
 * The heads stored in a model file, or null when it has none (a model made before them).
 * A file whose heads are unreadable, or do not fit its network, is a UserError naming it.
 */
export function readHeads(file: string, model: SegmentationNetwork): NoduleHeads | null {
  const text = readSafetensors(file).metadata[HEADS_KEY];
  if (text === undefined) return null;
  let heads: NoduleHeads;
  try {
    heads = parseHeads(text);
  } catch (e) {
    throw new UserError(`${file}: its nodule-level heads are unreadable: ${(e as Error).message}`);
  }
  const joint = asJointNet(model);
  const want = heads.features.network;
  if (want > 0 && (!joint || networkFeatureCount(joint) !== want))
    throw new UserError(
      `${file}: its nodule-level heads expect ${want} network features, the network gives ${joint ? networkFeatureCount(joint) : 0}`,
    );
  if (heads.features.hu.some((n, i) => n !== HU_FEATURE_NAMES[i]))
    throw new UserError(`${file}: its nodule-level heads use HU features this version does not compute`);
  return heads;
}

/** Classifies a segmented nodule (its mask on `volume`'s grid); null for an empty mask. */
export function characteriseNodule(
  model: SegmentationNetwork,
  slice: SliceConfig,
  heads: NoduleHeads,
  volume: Volume,
  mask: Uint8Array,
  centreVoxel: Vec3,
): NoduleClassification | null {
  let any = false;
  for (let i = 0; i < mask.length && !any; i++) any = mask[i] !== 0;
  if (!any) return null;
  const joint = asJointNet(model);
  if (!joint) throw new UserError('nodule-level heads need the joint network');
  const f = noduleFeatures(joint, slice, volume, mask, centreVoxel);
  const raw = new Float32Array(heads.mean.length);
  let o = 0;
  if (heads.features.network > 0) {
    raw.set(f.network, 0);
    o = f.network.length;
  }
  raw.set(f.hu.subarray(0, heads.features.hu.length), o);
  return classifyNodule(heads, raw);
}
