/** Whole LIDC scans for training: negatives sampled from them (sampling.scanNegatives), and scans validated on (valScans). */
import { isAbsolute, join } from 'node:path';
import { dataRoot, scanNegatives, type CropCase } from '../data/index.ts';
import { readLidcScan } from '../io/lidc.ts';
import type { TrainConfig } from './config.ts';
import { referenceLesions, type ReferenceLesion } from '../eval/scans.ts';
import type { Volume } from '../io/volume.ts';

/** A whole scan and its reference lesions, for validation during training. */
export interface ValScan {
  name: string;
  volume: Volume;
  lesions: ReferenceLesion[];
}

/** Reads the config's valScans. */
export async function loadValScans(cfg: TrainConfig): Promise<ValScan[]> {
  const out: ValScan[] = [];
  for (const rel of cfg.valScans) {
    const dir = isAbsolute(rel) ? rel : join(dataRoot(), rel);
    const scan = await readLidcScan(dir);
    const volume = scan.series.volume;
    out.push({
      name: rel,
      volume,
      lesions: referenceLesions(scan.nodules, volume.dims),
    });
  }
  return out;
}

/** Reads each scan (DICOM + LIDC XML) and samples its negatives; [] when the config has none. */
export async function loadScanNegatives(cfg: TrainConfig, onMessage?: (text: string) => void): Promise<CropCase[]> {
  const sn = cfg.sampling.scanNegatives;
  if (!sn) return [];
  const out: CropCase[] = [];
  for (const [k, rel] of sn.scans.entries()) {
    const dir = isAbsolute(rel) ? rel : join(dataRoot(), rel);
    const scan = await readLidcScan(dir);
    const vol = scan.series.volume;
    const patient =
      (vol.source?.format === 'dicom' ? vol.source.series.patientId : '') || (rel.split('/').filter(Boolean).pop() ?? `scan${k}`);
    const { scans: _scans, ...options } = sn;
    const negs = scanNegatives(vol, scan.xml, scan.nodules, cfg.slice, `${patient}`, patient, {
      ...options,
      seed: (options.seed ?? 1) + k,
    });
    onMessage?.(
      `negatives: ${negs.length} from ${dir} (${negs.filter((c) => c.id.includes('_neg_end_')).length} past the ends of its ${scan.nodules.length} nodules)`,
    );
    out.push(...negs);
  }
  return out;
}
