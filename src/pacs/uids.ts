/**
 * Deterministic UIDs for what we store: the same job (study, series, prompts, model, settings)
 * always makes a SEG with the same Series and SOP Instance UIDs, so running it twice (a retry, a
 * worker killed after storing) leaves one instance on the PACS, not two.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import dcmjs from 'dcmjs';

/** JSON with object keys sorted, so that equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A model file's identity for job keys: its bytes' digest (a retrained model makes new UIDs). */
export function fileDigest(file: string): string {
  return sha256Hex(readFileSync(file)).slice(0, 32);
}

/**
 * A UID under the 2.25 root (PS3.5 B.2: a UUID as a decimal integer), the UUID being a version 8
 * (name-based, custom hash) UUID from SHA-256 of `key` and `purpose`.
 */
export function uidFrom(key: string, purpose: string): string {
  const h = Buffer.from(sha256Hex(`${purpose}\n${key}`).slice(0, 32), 'hex');
  h[6] = (h[6]! & 0x0f) | 0x80; // version 8
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  return `2.25.${BigInt(`0x${h.toString('hex')}`).toString(10)}`;
}

export interface SegUids {
  seriesInstanceUid: string;
  sopInstanceUid: string;
}

/**
 * What noduleseg's SEG and SR hold, part of their UIDs: a SEG stored by an earlier version (one
 * segment, no any-reader extent) is a different object and is not taken for this one's.
 */
const CONTENTS = 'nodule, any-reader extent';

export function segUidsFor(key: string): SegUids {
  return { seriesInstanceUid: uidFrom(key, `seg-series ${CONTENTS}`), sopInstanceUid: uidFrom(key, `seg-instance ${CONTENTS}`) };
}

/** The UIDs of the SR that goes with the SEG of the same key. */
export function srUidsFor(key: string): SegUids {
  return { seriesInstanceUid: uidFrom(key, `sr-series ${CONTENTS}`), sopInstanceUid: uidFrom(key, `sr-instance ${CONTENTS}`) };
}

/** A Part 10 SEG with its Series and SOP Instance UIDs (and the file meta's copy) replaced. */
export function withSegUids(part10: Uint8Array, uids: SegUids): Uint8Array {
  const ab = part10.buffer.slice(part10.byteOffset, part10.byteOffset + part10.byteLength) as ArrayBuffer;
  const file = dcmjs.data.DicomMessage.readFile(ab);
  const set = (dict: Record<string, unknown>, tag: string, vr: string, value: string): void => {
    dict[tag] = { vr, Value: [value] };
  };
  set(file.meta, '00020003', 'UI', uids.sopInstanceUid);
  set(file.dict, '00080018', 'UI', uids.sopInstanceUid);
  set(file.dict, '0020000E', 'UI', uids.seriesInstanceUid);
  return new Uint8Array(file.write());
}
