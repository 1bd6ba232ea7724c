/**
 * The viewer on a PACS (`serve --dicomweb <url>`): search studies (patient name or ID, accession),
 * list a study's series, open one (WADO-RS into a temporary folder, read like a local DICOM
 * folder, the folder removed before the answer), and "Save to PACS": the open scan's SEG stored by
 * STOW-RS. The SEG's UIDs derive from the series and the mask, so saving the same nodules twice
 * stores one SEG. DICOMweb errors reach the page as their one-line message (502 for the server's
 * failures, 404 for a missing study or series); credentials stay on the server side.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LidcRead, Session } from './session.ts';
import type { Volume } from '../io/index.ts';
import { HttpError } from './http-error.ts';
import { readScanOffThread } from './read-scan.ts';
import { isUserError } from '../errors.ts';
import type { DicomWebAuth } from '../pacs/auth.ts';
import { DicomWebClient, DicomWebError, type StudySummary } from '../pacs/dicomweb.ts';
import { storeSegOnce } from '../pacs/store.ts';
import { canonicalJson, segUidsFor, sha256Hex, srUidsFor, withSegUids } from '../pacs/uids.ts';

export interface PacsContext {
  addSession: (name: string, volume: Volume, lidc: LidcRead[], notes: string[]) => Session;
  getSession: (id: string) => Session;
  describe: (s: Session) => Record<string, unknown>;
  modelArch: string;
  tempRoot: string;
  log: (line: string) => void;
  sendJson: (res: ServerResponse, status: number, value: unknown) => void;
}

export interface PacsRoutes {
  label: string;
  /** Answers /api/pacs/...; false when the path is not one of its routes. */
  handle: (req: IncomingMessage, res: ServerResponse, url: URL, ctx: PacsContext) => Promise<boolean>;
}

const UID = /^[0-9]+(\.[0-9]+)*$/;

/** DICOMweb failures as the page sees them: the message, with a status that says whose fault it is. */
function asHttp(e: unknown): never {
  if (e instanceof HttpError) throw e;
  if (e instanceof DicomWebError) throw new HttpError(502, e.message);
  if (isUserError(e)) throw new HttpError(/ not found$/.test(e.message) ? 404 : 400, e.message);
  throw e;
}

function uidParam(url: URL, name: string, required: boolean): string | undefined {
  const v = url.searchParams.get(name) ?? undefined;
  if (v === undefined || v === '') {
    if (required) throw new HttpError(400, `${name}: required`);
    return undefined;
  }
  if (!UID.test(v) || v.length > 64) throw new HttpError(400, `${name}: not a DICOM UID`);
  return v;
}

export function createPacsRoutes(url: string, auth: DicomWebAuth): PacsRoutes {
  const client = new DicomWebClient(url, { auth });
  // Which series each session came from (Save to PACS stores into that study).
  const origins = new Map<string, { study: string; series: string }>();

  const search = async (u: URL): Promise<StudySummary[]> => {
    const patient = (u.searchParams.get('patient') ?? '').trim();
    const accession = (u.searchParams.get('accession') ?? '').trim();
    const limit = Math.min(Number(u.searchParams.get('limit') ?? 50) || 50, 200);
    if (/[\\*?]/.test(patient + accession)) throw new HttpError(400, 'search: no wildcards or backslashes; a part of the name is enough');
    if (!patient && !accession) return client.searchStudies({ limit });
    if (accession) return client.searchStudies({ accessionNumber: accession, limit });
    // By name (any part, case as the server matches it) or by patient ID: two searches, merged.
    const [byName, byId] = await Promise.all([
      client.searchStudies({ patientName: `*${patient}*`, limit }),
      client.searchStudies({ patientId: patient, limit }),
    ]);
    const seen = new Set<string>();
    return [...byId, ...byName].filter((s) => {
      if (seen.has(s.studyInstanceUid)) return false;
      seen.add(s.studyInstanceUid);
      return true;
    });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, u: URL, ctx: PacsContext): Promise<boolean> => {
    const method = req.method ?? 'GET';
    const path = u.pathname;
    try {
      if (path === '/api/pacs/studies' && method === 'GET') {
        ctx.sendJson(res, 200, { server: client.label, studies: await search(u) });
        return true;
      }
      if (path === '/api/pacs/series' && method === 'GET') {
        const study = uidParam(u, 'study', true)!;
        ctx.sendJson(res, 200, { study, series: await client.searchSeries(study) });
        return true;
      }
      if (path === '/api/pacs/open' && method === 'POST') {
        const study = uidParam(u, 'study', true)!;
        const s = await client.ctSeries(study, uidParam(u, 'series', false));
        const dir = mkdtempSync(join(ctx.tempRoot, 'pacs-'));
        try {
          const t0 = performance.now();
          const files = await client.retrieveSeries(study, s.seriesInstanceUid, dir);
          const read = await readScanOffThread({ kind: 'path', path: dir });
          const session = ctx.addSession(
            `PACS: ${s.seriesDescription || 'series'} ${s.seriesInstanceUid}`,
            read.volume,
            read.lidc,
            read.notes,
          );
          origins.set(session.id, { study, series: s.seriesInstanceUid });
          ctx.log(
            `opened series ${s.seriesInstanceUid} from ${client.label}: ${files.length} instances in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
          );
          ctx.sendJson(res, 200, { ...ctx.describe(session), pacs: { study, series: s.seriesInstanceUid } });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
        return true;
      }
      if (path === '/api/pacs/save' && method === 'POST') {
        const session = ctx.getSession(u.searchParams.get('session') ?? '');
        const origin = origins.get(session.id);
        if (!origin) throw new HttpError(400, 'this scan was not opened from the PACS; download its DICOM SEG instead');
        if (session.nodules.length === 0) throw new HttpError(400, 'no nodule to save yet: click on a nodule first');
        const plain = session.dicomSeg(ctx.modelArch);
        // Same series, same mask: same UIDs (saved twice, stored once); a changed mask is a new SEG.
        const key = canonicalJson({ series: origin.series, mask: sha256Hex(session.labelMask()), model: ctx.modelArch });
        const uids = segUidsFor(key);
        const srUids = srUidsFor(key);
        // Both built before either is stored (as segment --dicomweb): the SR references the SEG as stored.
        const seg = withSegUids(plain, uids);
        const sr = withSegUids(session.dicomSr(ctx.modelArch, seg), srUids);
        const stored = await storeSegOnce(client, origin.study, seg, uids);
        const storedSr = await storeSegOnce(client, origin.study, sr, srUids);
        ctx.log(
          `${stored.stored ? 'stored' : 'already had'} SEG ${uids.seriesInstanceUid} and ${storedSr.stored ? 'stored' : 'already had'} its SR on ${client.label}`,
        );
        ctx.sendJson(res, 200, { server: client.label, ...stored, sr: storedSr });
        return true;
      }
    } catch (e) {
      asHttp(e);
    }
    return false;
  };

  return { label: client.label, handle };
}
