/**
 * A DICOMweb client: QIDO-RS (search), WADO-RS (a series into a folder), STOW-RS (store).
 *
 * Plain `fetch` (Node 20) rather than the `dicomweb-client` package: that library is written for
 * browsers (XMLHttpRequest, which Node lacks), and what we need of it is three requests, a
 * multipart/related parser and builder (multipart.ts, ~60 lines) and DICOM JSON lookups. One less
 * dependency, and errors and credentials stay under our control (see auth.ts).
 *
 * Every failure is a UserError of one line naming the server (without credentials) and the reason.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { AUTH_ENV, type DicomWebAuth, NO_AUTH, checkServerUrl, publicUrl } from './auth.ts';
import { boundaryOf, buildMultipart, type Part, parseMultipart } from './multipart.ts';

/** One DICOM JSON dataset (PS3.18 F.2): tags as 8 hex digits. */
export type DicomJson = Record<string, { vr: string; Value?: unknown[] } | undefined>;

export interface StudySummary {
  studyInstanceUid: string;
  patientName: string;
  patientId: string;
  studyDate: string;
  accessionNumber: string;
  studyDescription: string;
  modalities: string[];
  seriesCount: number | null;
  instanceCount: number | null;
}

export interface SeriesSummary {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  modality: string;
  seriesNumber: number | null;
  seriesDescription: string;
  instanceCount: number | null;
}

export interface StoredInstance {
  sopClassUid: string;
  sopInstanceUid: string;
}

export interface StoreResult {
  stored: StoredInstance[];
}

/** Search keys for studies (QIDO-RS attribute matching; `*` wildcards where the server allows). */
export interface StudyQuery {
  patientName?: string;
  patientId?: string;
  accessionNumber?: string;
  studyInstanceUid?: string;
  studyDate?: string;
  limit?: number;
  offset?: number;
}

export interface ClientOptions {
  auth?: DicomWebAuth;
  /** Per request; a whole series can take a while on a slow link. */
  timeoutMs?: number;
}

const DICOM_JSON = 'application/dicom+json';

/** A failure to talk to the server; `transient` when the same request may succeed later (network, timeout, 429, 5xx): a queue retries those. */
export class DicomWebError extends UserError {
  readonly transient: boolean;
  constructor(message: string, transient: boolean) {
    super(message);
    this.name = 'DicomWebError';
    this.transient = transient;
  }
}

/** The first value of a tag as a string ('' when absent); person names by their alphabetic form. */
export function str(ds: DicomJson, tag: string): string {
  const v = ds[tag]?.Value?.[0];
  if (v === undefined || v === null) return '';
  if (typeof v === 'object') {
    const pn = (v as { Alphabetic?: unknown }).Alphabetic;
    return typeof pn === 'string' ? pn : '';
  }
  return String(v);
}

function num(ds: DicomJson, tag: string): number | null {
  const v = Number(str(ds, tag));
  return str(ds, tag) !== '' && Number.isFinite(v) ? v : null;
}

function studyOf(ds: DicomJson): StudySummary {
  return {
    studyInstanceUid: str(ds, '0020000D'),
    patientName: str(ds, '00100010'),
    patientId: str(ds, '00100020'),
    studyDate: str(ds, '00080020'),
    accessionNumber: str(ds, '00080050'),
    studyDescription: str(ds, '00081030'),
    modalities: (ds['00080061']?.Value ?? []).map(String),
    seriesCount: num(ds, '00201206'),
    instanceCount: num(ds, '00201208'),
  };
}

function seriesOf(ds: DicomJson, studyUid: string): SeriesSummary {
  return {
    studyInstanceUid: str(ds, '0020000D') || studyUid,
    seriesInstanceUid: str(ds, '0020000E'),
    modality: str(ds, '00080060'),
    seriesNumber: num(ds, '00200011'),
    seriesDescription: str(ds, '0008103E'),
    instanceCount: num(ds, '00201209'),
  };
}

/** UIDs go into paths and queries: only digits and dots, as PS3.5 9.1 allows. */
export function checkUid(uid: string, what: string): string {
  if (!/^[0-9]+(\.[0-9]+)*$/.test(uid) || uid.length > 64)
    throw new UserError(`${what}: not a DICOM UID (digits and dots, at most 64): "${uid.slice(0, 80)}"`);
  return uid;
}

export class DicomWebClient {
  /** The server as messages and reports name it: no credentials, no query. */
  readonly label: string;
  private readonly base: string;
  private readonly auth: DicomWebAuth;
  private readonly timeoutMs: number;

  constructor(url: string, options: ClientOptions = {}) {
    const u = checkServerUrl(url);
    this.base = `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
    this.label = publicUrl(u);
    this.auth = options.auth ?? NO_AUTH;
    this.timeoutMs = options.timeoutMs ?? 300_000;
  }

  /** A request with the credentials and a timeout; every failure becomes a one-line UserError. */
  private async request(
    path: string,
    init: { method?: string; accept: string; body?: Buffer; contentType?: string; notFound?: string },
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: init.accept };
    if (this.auth.header) headers['authorization'] = this.auth.header;
    if (init.contentType) headers['content-type'] = init.contentType;
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method: init.method ?? 'GET',
        headers,
        body: init.body,
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
    } catch (e) {
      throw new DicomWebError(`${this.label}: ${describeFetchError(e, this.timeoutMs)}`, true);
    }
    if (res.ok) return res;
    // Drain the body (the connection is reused); a short excerpt helps with 4xx/5xx other than auth.
    const text = await res.text().catch(() => '');
    if (res.status === 401) {
      const hint =
        this.auth.kind === 'none' ? `; set ${AUTH_ENV.user} and ${AUTH_ENV.password}, ${AUTH_ENV.token}, or ${AUTH_ENV.file}` : '';
      const what =
        this.auth.kind === 'none'
          ? 'the server asks for credentials (401 Unauthorized)'
          : `the server refused our credentials (401 Unauthorized, ${this.auth.kind} auth)`;
      throw new UserError(`${this.label}: ${what}${hint}`);
    }
    if (res.status === 403) throw new UserError(`${this.label}: access forbidden to ${path.split('?')[0]} (403 Forbidden)`);
    if (res.status === 404 && init.notFound) throw new UserError(`${this.label}: ${init.notFound}`);
    const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, 160);
    throw new DicomWebError(
      `${this.label}: ${init.method ?? 'GET'} ${path.split('?')[0]} failed (HTTP ${res.status} ${res.statusText})${excerpt ? `: ${excerpt}` : ''}`,
      res.status === 429 || res.status >= 500,
    );
  }

  private async json(path: string, notFound?: string): Promise<DicomJson[]> {
    const res = await this.request(path, { accept: DICOM_JSON, notFound });
    const text = await res.text();
    if (res.status === 204 || text.trim() === '') return [];
    try {
      const v: unknown = JSON.parse(text);
      if (Array.isArray(v)) return v as DicomJson[];
    } catch {
      // reported below
    }
    throw new UserError(
      `${this.label}: ${path.split('?')[0]}: the answer is not a DICOM JSON list (is this the DICOMweb root, e.g. .../dicom-web?)`,
    );
  }

  /** QIDO-RS studies. */
  async searchStudies(q: StudyQuery = {}): Promise<StudySummary[]> {
    const params = new URLSearchParams();
    if (q.patientName) params.set('PatientName', q.patientName);
    if (q.patientId) params.set('PatientID', q.patientId);
    if (q.accessionNumber) params.set('AccessionNumber', q.accessionNumber);
    if (q.studyInstanceUid) params.set('StudyInstanceUID', q.studyInstanceUid);
    if (q.studyDate) params.set('StudyDate', q.studyDate);
    if (q.limit !== undefined) params.set('limit', String(q.limit));
    if (q.offset !== undefined) params.set('offset', String(q.offset));
    for (const tag of ['00100010', '00100020', '00080020', '00080050', '00081030', '00080061', '00201206', '00201208'])
      params.append('includefield', tag);
    return (await this.json(`/studies?${params}`)).map(studyOf);
  }

  /** The study, or a one-line error when the server does not have it. */
  async study(studyUid: string): Promise<StudySummary> {
    checkUid(studyUid, '--study');
    const found = (await this.searchStudies({ studyInstanceUid: studyUid })).find((s) => s.studyInstanceUid === studyUid);
    if (!found) throw new UserError(`${this.label}: study ${studyUid} not found`);
    return found;
  }

  /** QIDO-RS series of a study. */
  async searchSeries(studyUid: string, filter: { modality?: string; seriesInstanceUid?: string } = {}): Promise<SeriesSummary[]> {
    checkUid(studyUid, '--study');
    const params = new URLSearchParams();
    if (filter.modality) params.set('Modality', filter.modality);
    if (filter.seriesInstanceUid) params.set('SeriesInstanceUID', filter.seriesInstanceUid);
    for (const tag of ['00080060', '00200011', '0008103E', '00201209']) params.append('includefield', tag);
    return (await this.json(`/studies/${studyUid}/series?${params}`, `study ${studyUid} not found`)).map((ds) => seriesOf(ds, studyUid));
  }

  /** QIDO-RS instances of a series: their SOP Instance UIDs. */
  async searchInstances(studyUid: string, seriesUid: string): Promise<string[]> {
    checkUid(studyUid, '--study');
    checkUid(seriesUid, '--series');
    const list = await this.json(
      `/studies/${studyUid}/series/${seriesUid}/instances?includefield=00080018`,
      `series ${seriesUid} of study ${studyUid} not found`,
    );
    return list.map((ds) => str(ds, '00080018'));
  }

  /** A CT series found by its UID alone (its study unknown), as a LUNA16 candidates list names them. */
  async findCtSeries(seriesUid: string): Promise<SeriesSummary> {
    checkUid(seriesUid, '--series');
    const params = new URLSearchParams({ SeriesInstanceUID: seriesUid });
    for (const tag of ['0020000D', '00080060', '00200011', '0008103E', '00201209']) params.append('includefield', tag);
    const s = (await this.json(`/series?${params}`)).map((ds) => seriesOf(ds, '')).find((x) => x.seriesInstanceUid === seriesUid);
    if (!s?.studyInstanceUid) throw new UserError(`${this.label}: series ${seriesUid} not found`);
    if (s.modality !== 'CT') throw new UserError(`${this.label}: series ${seriesUid} is ${s.modality || 'of no modality'}, not CT`);
    return s;
  }

  /**
   * The CT series to segment: `seriesUid` when given (it must exist and be CT), else the study's
   * CT series with the most instances. One-line errors for a missing study or series, or no CT.
   */
  async ctSeries(studyUid: string, seriesUid?: string): Promise<SeriesSummary> {
    await this.study(studyUid);
    const all = await this.searchSeries(studyUid);
    if (seriesUid !== undefined) {
      checkUid(seriesUid, '--series');
      const s = all.find((x) => x.seriesInstanceUid === seriesUid);
      if (!s) throw new UserError(`${this.label}: series ${seriesUid} not found in study ${studyUid}`);
      if (s.modality !== 'CT') throw new UserError(`${this.label}: series ${seriesUid} is ${s.modality || 'of no modality'}, not CT`);
      return s;
    }
    const cts = all.filter((s) => s.modality === 'CT').sort((a, b) => (b.instanceCount ?? 0) - (a.instanceCount ?? 0));
    if (cts.length === 0) {
      const mods = [...new Set(all.map((s) => s.modality || '?'))].join(', ');
      throw new UserError(`${this.label}: study ${studyUid} has no CT series (${all.length ? `only ${mods}` : 'no series'})`);
    }
    return cts[0]!;
  }

  /**
   * WADO-RS: every instance of a series, as stored (transfer-syntax=*), written into `dir` as
   * Part 10 files. Returns the files.
   */
  async retrieveSeries(studyUid: string, seriesUid: string, dir: string): Promise<string[]> {
    checkUid(studyUid, '--study');
    checkUid(seriesUid, '--series');
    const res = await this.request(`/studies/${studyUid}/series/${seriesUid}`, {
      accept: 'multipart/related; type="application/dicom"; transfer-syntax=*',
      notFound: `series ${seriesUid} of study ${studyUid} not found`,
    });
    const contentType = res.headers.get('content-type') ?? '';
    const boundary = boundaryOf(contentType);
    if (!/^multipart\/related/i.test(contentType) || !boundary) {
      await res.body?.cancel();
      throw new UserError(`${this.label}: WADO-RS answered ${contentType || 'without a Content-Type'}, not multipart/related DICOM`);
    }
    const body = new Uint8Array(await res.arrayBuffer());
    let parts: Part[];
    try {
      parts = parseMultipart(body, boundary);
    } catch (e) {
      throw new UserError(`${this.label}: WADO-RS answer for series ${seriesUid}: ${(e as Error).message}`);
    }
    mkdirSync(dir, { recursive: true });
    const files: string[] = [];
    for (const [n, p] of parts.entries()) {
      const type = p.headers['content-type'] ?? 'application/dicom';
      if (!/^application\/dicom\b/i.test(type)) continue; // e.g. a bulk-data part: not an instance
      const f = join(dir, `${String(n + 1).padStart(6, '0')}.dcm`);
      writeFileSync(f, p.body);
      files.push(f);
    }
    if (files.length === 0) throw new UserError(`${this.label}: series ${seriesUid} of study ${studyUid} has no instances`);
    return files;
  }

  /** STOW-RS: stores Part 10 instances; every one must be accepted. */
  async store(instances: readonly Uint8Array[], studyUid?: string): Promise<StoreResult> {
    const { body, contentType } = buildMultipart(
      instances.map((b) => ({ contentType: 'application/dicom', body: b })),
      'application/dicom',
    );
    const path = studyUid ? `/studies/${checkUid(studyUid, 'study')}` : '/studies';
    const res = await this.request(path, { method: 'POST', accept: DICOM_JSON, body, contentType });
    const text = await res.text();
    let ds: DicomJson = {};
    try {
      const v: unknown = text.trim() ? JSON.parse(text) : {};
      ds = (Array.isArray(v) ? v[0] : v) as DicomJson;
    } catch {
      throw new UserError(`${this.label}: STOW-RS: the answer is not DICOM JSON`);
    }
    const items = (tag: string): DicomJson[] => (ds[tag]?.Value ?? []) as DicomJson[];
    const failed = items('00081198');
    if (failed.length > 0) {
      const reasons = [...new Set(failed.map((f) => str(f, '00081197')))].map((r) =>
        r ? `0x${Number(r).toString(16).toUpperCase()}` : '?',
      );
      throw new UserError(
        `${this.label}: STOW-RS refused ${failed.length} of ${instances.length} instance(s) (failure reason ${reasons.join(', ')})`,
      );
    }
    const stored = items('00081199').map((r) => ({ sopClassUid: str(r, '00081150'), sopInstanceUid: str(r, '00081155') }));
    if (stored.length < instances.length)
      throw new UserError(`${this.label}: STOW-RS stored ${stored.length} of ${instances.length} instance(s)`);
    return { stored };
  }
}

/** Why fetch failed, in words: connection refused, unknown host, timeout... */
function describeFetchError(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return `no answer within ${Math.round(timeoutMs / 1000)} s`;
  const code = err?.cause?.code;
  if (code === 'ECONNREFUSED') return 'cannot reach the DICOMweb server (connection refused)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'cannot reach the DICOMweb server (unknown host)';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'the DICOMweb server closed the connection';
  if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'cannot reach the DICOMweb server (connection timed out)';
  if (code && /CERT|SSL|TLS/.test(code)) return `TLS error (${code})`;
  return `cannot reach the DICOMweb server (${code ?? err?.cause?.message ?? 'network error'})`;
}
