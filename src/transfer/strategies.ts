/**
 * Freezing strategies for fine-tuning (docs/transfer.md), by name:
 *   none           nothing frozen (fine-tune everything)
 *   stem           the first encoder stage (of both branches for the joint model)
 *   encoder:K      the first K encoder stages
 *   encoder        every encoder stage
 *   classifier     the joint model's classification branch (its encoder, the FCB halves that
 *                  feed it, its linear layer)
 *   all-but-head   everything except the segmentation head (and the STD layer's scalars)
 * A joint-model stage i is segEncoder.i + clsEncoder.i + fcbs.i (the FCB mixes that scale's
 * maps, so it belongs to the stage); a U-Net stage is encoder.i.
 * Batch norms inside frozen parts are frozen too (eval mode: running statistics used, not
 * updated), so a frozen layer computes exactly what it did in the source model.
 */
import { UserError } from '../errors.ts';
import { freezeBatchNorm, type NamePattern } from '../nn/index.ts';
import type { SegmentationNetwork } from '../models/index.ts';
import type { TrainParamGroup } from '../train/trainer.ts';

export type Strategy =
  | { kind: 'none' }
  | { kind: 'stem' }
  | { kind: 'encoder'; stages: number | 'all' }
  | { kind: 'classifier' }
  | { kind: 'all-but-head' };

export const STRATEGY_NAMES = ['none', 'stem', 'encoder:K', 'encoder', 'classifier', 'all-but-head'] as const;

/** Parses a strategy name; a bad one is a UserError naming `flag`. */
export function parseStrategy(text: string, flag = '--freeze'): Strategy {
  const t = text.trim();
  if (t === 'none' || t === 'stem' || t === 'classifier' || t === 'all-but-head') return { kind: t };
  if (t === 'encoder') return { kind: 'encoder', stages: 'all' };
  const m = /^encoder:(\d+)$/.exec(t);
  if (m) {
    const k = Number(m[1]);
    if (k < 1) throw new UserError(`${flag}: encoder:K needs K >= 1, got "${text}"`);
    return { kind: 'encoder', stages: k };
  }
  throw new UserError(
    `${flag}: unknown strategy "${text}" (expected ${STRATEGY_NAMES.join(', ')}${flag === '--freeze' ? ' or auto' : ''})`,
  );
}

export function strategyName(s: Strategy): string {
  return s.kind === 'encoder' ? (s.stages === 'all' ? 'encoder' : `encoder:${s.stages}`) : s.kind;
}

/** Encoder levels of a network. */
export function encoderLevels(model: SegmentationNetwork): number {
  return model.config.features.length;
}

/** The module names (dotted prefixes) of encoder stage i. */
export function stagePrefixes(model: SegmentationNetwork, i: number): string[] {
  const c = model.config;
  if (c.arch === 'joint') return [`segEncoder.${i}`, `clsEncoder.${i}`, ...(c.fcb ? [`fcbs.${i}`] : [])];
  return [`encoder.${i}`];
}

/**
 * The dotted prefixes a strategy freezes on this model. Throws a UserError when the strategy
 * does not fit the architecture (a classifier on a U-Net, more stages than the encoder has).
 */
export function frozenPrefixes(model: SegmentationNetwork, s: Strategy): string[] {
  const c = model.config;
  const levels = encoderLevels(model);
  const stages = (k: number) => Array.from({ length: k }, (_, i) => stagePrefixes(model, i)).flat();
  switch (s.kind) {
    case 'none':
      return [];
    case 'stem':
      return stages(1);
    case 'encoder': {
      const k = s.stages === 'all' ? levels : s.stages;
      if (k > levels)
        throw new UserError(`--freeze encoder:${k}: this ${c.arch} model has ${levels} encoder stages (K must be 1..${levels})`);
      return stages(k);
    }
    case 'classifier': {
      if (c.arch !== 'joint')
        throw new UserError(`--freeze classifier: a ${c.arch} model has no classification branch (only the joint model has one)`);
      const fcbHalves = c.fcb ? c.features.flatMap((_, i) => [`fcbs.${i}.toCls`, `fcbs.${i}.clsNorm`]) : [];
      return ['clsEncoder', ...fcbHalves, 'classifier'];
    }
    case 'all-but-head':
      // Every top-level part with parameters except the head and the STD layer after it.
      return model
        .namedChildren()
        .map(([n]) => n)
        .filter((n) => n !== 'head' && n !== 'std' && model.getSubmodule(n).parameters().length > 0);
  }
}

export interface AppliedStrategy {
  strategy: string;
  frozenPrefixes: string[];
  frozenParameters: string[];
  trainableParameters: string[];
  frozenBatchNorms: number;
}

/** Freezes the strategy's parameters (requiresGrad false) and batch norms (bnFrozen) in place. */
export function applyStrategy(model: SegmentationNetwork, s: Strategy): AppliedStrategy {
  const prefixes = frozenPrefixes(model, s);
  model.unfreeze();
  freezeBatchNorm(model, false);
  let bns = 0;
  for (const p of prefixes) {
    model.freeze(prefixPattern(p));
    bns += freezeBatchNorm(model, true, prefixPattern(p));
  }
  const named = model.namedParameters();
  return {
    strategy: strategyName(s),
    frozenPrefixes: prefixes,
    frozenParameters: named.filter(([, t]) => !t.requiresGrad).map(([n]) => n),
    trainableParameters: named.filter(([, t]) => t.requiresGrad).map(([n]) => n),
    frozenBatchNorms: bns,
  };
}

/** Matches the prefix itself and everything under it, never a sibling that shares its start. */
function prefixPattern(prefix: string): NamePattern {
  return new RegExp(`^${prefix.replace(/[.]/g, '\\.')}(\\.|$)`);
}

/**
 * Discriminative learning rates: the top (decoder, head, STD, classifier) trains at the base
 * rate and each encoder stage one step shallower at `decay` times the stage above it, so stage
 * i of L gets decay^(L - i). decay = 1 gives one group. The top group comes first (the rate the
 * training log shows).
 */
export function stageParamGroups(model: SegmentationNetwork, decay: number): TrainParamGroup[] {
  if (!(decay > 0 && decay <= 1)) throw new UserError(`--lr-decay: expected a number in (0, 1], got ${decay}`);
  if (decay === 1) return [{ name: 'all', params: model.parameters(), lrScale: 1 }];
  const levels = encoderLevels(model);
  const named = model.namedParameters();
  const taken = new Set<string>();
  const stageGroups: TrainParamGroup[] = [];
  for (let i = 0; i < levels; i++) {
    const pats = stagePrefixes(model, i).map(prefixPattern);
    const inStage = named.filter(([n]) => pats.some((p) => (p as RegExp).test(n)));
    for (const [n] of inStage) taken.add(n);
    stageGroups.push({ name: `stage ${i}`, params: inStage.map(([, t]) => t), lrScale: decay ** (levels - i) });
  }
  const top: TrainParamGroup = { name: 'top', params: named.filter(([n]) => !taken.has(n)).map(([, t]) => t), lrScale: 1 };
  return [top, ...stageGroups.reverse()];
}
