/** Storing a SEG once: a check before storing, on top of the deterministic UIDs (uids.ts). */
import type { DicomWebClient } from './dicomweb.ts';
import type { SegUids } from './uids.ts';

export interface StoredSeg extends SegUids {
  studyInstanceUid: string;
  /** false when the server already had this instance (a job run again): nothing was sent. */
  stored: boolean;
}

/** True when the server already holds this SEG instance. */
export async function hasInstance(client: DicomWebClient, studyUid: string, uids: SegUids): Promise<boolean> {
  const series = await client.searchSeries(studyUid, { seriesInstanceUid: uids.seriesInstanceUid });
  if (!series.some((s) => s.seriesInstanceUid === uids.seriesInstanceUid)) return false;
  return (await client.searchInstances(studyUid, uids.seriesInstanceUid)).includes(uids.sopInstanceUid);
}

/**
 * Stores `seg` (whose UIDs are `uids`) unless the server has it already. Two workers racing past
 * the check send the same UIDs, which a PACS keeps as one instance.
 */
export async function storeSegOnce(client: DicomWebClient, studyUid: string, seg: Uint8Array, uids: SegUids): Promise<StoredSeg> {
  if (await hasInstance(client, studyUid, uids)) return { studyInstanceUid: studyUid, ...uids, stored: false };
  await client.store([seg], studyUid);
  return { studyInstanceUid: studyUid, ...uids, stored: true };
}
