// The DICOMweb client against a real Orthanc (scripts/services.sh): QIDO-RS, WADO-RS, STOW-RS,
// and its one-line errors; credentials never appear in a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dcmjs from 'dcmjs';
import { UserError } from '../../src/errors.ts';
import { checkServerUrl, publicUrl, readAuthFile, resolveAuth } from '../../src/pacs/auth.ts';
import { DicomWebClient } from '../../src/pacs/dicomweb.ts';
import { buildMultipart, parseMultipart, boundaryOf } from '../../src/pacs/multipart.ts';
import { canonicalJson, segUidsFor, uidFrom, withSegUids } from '../../src/pacs/uids.ts';
import {
  DICOMWEB_URL,
  LIDC1_SERIES,
  LIDC1_STUDY,
  ORTHANC_PASSWORD,
  client,
  emptyOrthanc,
  lidc1Files,
  noOrthanc,
  noScans,
  uploadLidc1,
} from './helpers.ts';

/** The one-line message of the UserError `f` throws. */
async function userError(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
  } catch (e) {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e.message;
  }
  assert.fail('expected an error');
}

test('multipart/related: built and parsed back, binary bodies intact', () => {
  const a = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
  const b = new Uint8Array([13, 10, 45, 45, 13, 10]); // CRLF--CRLF inside a body
  const { body, contentType } = buildMultipart(
    [
      { contentType: 'application/dicom', body: a },
      { contentType: 'application/dicom', body: b },
    ],
    'application/dicom',
  );
  const parts = parseMultipart(body, boundaryOf(contentType)!);
  assert.equal(parts.length, 2);
  assert.deepEqual([...parts[0]!.body], [...a]);
  assert.deepEqual([...parts[1]!.body], [...b]);
  assert.equal(parts[0]!.headers['content-type'], 'application/dicom');
  assert.equal(boundaryOf('multipart/related; type="application/dicom"; boundary="x y"'), 'x y');
});

test('deterministic UIDs: same job, same UIDs; valid DICOM UIDs; order of keys irrelevant', () => {
  const k1 = canonicalJson({ study: '1.2', prompts: { point: '1,2,3' }, tta: false });
  const k2 = canonicalJson({ tta: false, prompts: { point: '1,2,3' }, study: '1.2' });
  assert.equal(k1, k2);
  assert.deepEqual(segUidsFor(k1), segUidsFor(k2));
  assert.notEqual(uidFrom(k1, 'seg-series'), uidFrom(k1, 'seg-instance'));
  // The SEG's contents (since the any-reader segment) are part of its UIDs: an earlier version's SEG is another object.
  assert.notEqual(segUidsFor(k1).seriesInstanceUid, uidFrom(k1, 'seg-series'));
  assert.notEqual(uidFrom(k1, 'x'), uidFrom(canonicalJson({ study: '1.3' }), 'x'));
  const u = uidFrom(k1, 'x');
  assert.match(u, /^2\.25\.[1-9][0-9]*$/);
  assert.ok(u.length <= 64);
});

test('credentials: from the environment or a file, never echoed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-auth-'));
  try {
    assert.equal(resolveAuth(undefined, {}).kind, 'none');
    assert.equal(resolveAuth(undefined, { NODULESEG_DICOMWEB_TOKEN: 'tok' }).header, 'Bearer tok');
    assert.equal(
      resolveAuth(undefined, { NODULESEG_DICOMWEB_USER: 'u', NODULESEG_DICOMWEB_PASSWORD: 'p' }).header,
      `Basic ${Buffer.from('u:p').toString('base64')}`,
    );
    assert.throws(() => resolveAuth(undefined, { NODULESEG_DICOMWEB_USER: 'u' }), /NODULESEG_DICOMWEB_PASSWORD is not/);
    const f = join(dir, 'auth.json');
    writeFileSync(f, JSON.stringify({ username: 'u', password: 'sekrit-1' }));
    assert.equal(readAuthFile(f).kind, 'basic');
    writeFileSync(f, JSON.stringify({ token: 'sekrit-2' }));
    assert.equal(resolveAuth(undefined, { NODULESEG_DICOMWEB_AUTH_FILE: f }).header, 'Bearer sekrit-2');
    writeFileSync(f, 'user=sekrit-3');
    assert.throws(
      () => readAuthFile(f),
      (e: Error) => e instanceof UserError && e.message.startsWith(f) && !e.message.includes('sekrit'),
    );
    assert.throws(
      () => checkServerUrl('http://u:sekrit-4@h/dicom-web'),
      (e: Error) => e instanceof UserError && !e.message.includes('sekrit'),
    );
    assert.equal(publicUrl('https://h:1/dicom-web/?access_token=sekrit-5#x'), 'https://h:1/dicom-web');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bearer token: sent as an Authorization header (checked on a local HTTP listener)', async () => {
  let seen = '';
  const server = createServer((req, res) => {
    seen = req.headers.authorization ?? '';
    res.writeHead(seen === 'Bearer tok-9' ? 200 : 401, { 'content-type': 'application/dicom+json' }).end('[]');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const ok = new DicomWebClient(`http://127.0.0.1:${port}/dicom-web`, {
      auth: resolveAuth(undefined, { NODULESEG_DICOMWEB_TOKEN: 'tok-9' }),
    });
    assert.deepEqual(await ok.searchStudies(), []);
    assert.equal(seen, 'Bearer tok-9');
    const bad = new DicomWebClient(`http://127.0.0.1:${port}/dicom-web`, {
      auth: resolveAuth(undefined, { NODULESEG_DICOMWEB_TOKEN: 'tok-wrong' }),
    });
    const msg = await userError(() => bad.searchStudies());
    assert.match(msg, /401 Unauthorized, bearer auth/);
    assert.ok(!msg.includes('tok-wrong'));
  } finally {
    server.close();
  }
});

test('unreachable server: one line naming it', async () => {
  // A port that was just free: nothing listens there.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  const msg = await userError(() => new DicomWebClient(`http://127.0.0.1:${port}/dicom-web`).searchStudies());
  assert.equal(msg, `http://127.0.0.1:${port}/dicom-web: cannot reach the DICOMweb server (connection refused)`);
});

test('Orthanc: STOW-RS upload, QIDO-RS search, WADO-RS fetch byte for byte; 401, missing study, non-CT series', {
  skip: noOrthanc || noScans,
  timeout: 120_000,
}, async () => {
  await emptyOrthanc();
  await uploadLidc1();
  const c = client();
  const studies = await c.searchStudies({ patientId: 'LIDC-IDRI-0001' });
  assert.equal(studies.length, 1);
  assert.equal(studies[0]!.studyInstanceUid, LIDC1_STUDY);
  assert.equal(studies[0]!.instanceCount, 133);
  assert.equal((await c.searchStudies({ patientId: 'NOBODY' })).length, 0);
  const series = await c.ctSeries(LIDC1_STUDY);
  assert.equal(series.seriesInstanceUid, LIDC1_SERIES);
  assert.equal(series.modality, 'CT');

  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-wado-'));
  try {
    const files = await c.retrieveSeries(LIDC1_STUDY, LIDC1_SERIES, dir);
    assert.equal(files.length, 133);
    // As stored: the same bytes as the files uploaded (in whatever order the server sends them).
    const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
    const want = new Set(lidc1Files().map((f) => digest(readFileSync(f))));
    for (const f of files) assert.ok(want.has(digest(readFileSync(f))), `${f} is one of the uploaded files`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  // Errors: no credentials, wrong ones (not echoed), a missing study, a missing series.
  const anon = await userError(() => new DicomWebClient(DICOMWEB_URL).searchStudies());
  assert.match(anon, /: the server asks for credentials \(401 Unauthorized\); set NODULESEG_DICOMWEB_USER/);
  const wrong = new DicomWebClient(DICOMWEB_URL, {
    auth: resolveAuth(undefined, { NODULESEG_DICOMWEB_USER: 'noduleseg', NODULESEG_DICOMWEB_PASSWORD: 'wrong-sekrit' }),
  });
  const refused = await userError(() => wrong.searchStudies());
  assert.match(refused, /refused our credentials \(401 Unauthorized, basic auth\)/);
  assert.ok(!refused.includes('wrong-sekrit') && !refused.includes(ORTHANC_PASSWORD));
  assert.equal(await userError(() => c.ctSeries('1.2.3.4')), `${DICOMWEB_URL}: study 1.2.3.4 not found`);
  assert.equal(
    await userError(() => c.ctSeries(LIDC1_STUDY, '1.2.3.4')),
    `${DICOMWEB_URL}: series 1.2.3.4 not found in study ${LIDC1_STUDY}`,
  );
  assert.match(await userError(() => c.ctSeries('1.2;rm')), /--study: not a DICOM UID/);

  // A non-CT series: one slice turned into an MR series of its own study.
  const file = dcmjs.data.DicomMessage.readFile(toArrayBuffer(readFileSync(lidc1Files()[0]!)));
  const set = (d: Record<string, unknown>, tag: string, vr: string, v: string): void => {
    d[tag] = { vr, Value: [v] };
  };
  set(file.dict, '00080060', 'CS', 'MR');
  set(file.dict, '0020000D', 'UI', '1.2.826.0.1.3680043.10.1453.99.1');
  set(file.dict, '0020000E', 'UI', '1.2.826.0.1.3680043.10.1453.99.2');
  set(file.dict, '00080018', 'UI', '1.2.826.0.1.3680043.10.1453.99.3');
  set(file.meta, '00020003', 'UI', '1.2.826.0.1.3680043.10.1453.99.3');
  await c.store([new Uint8Array(file.write())]);
  assert.equal(
    await userError(() => c.ctSeries('1.2.826.0.1.3680043.10.1453.99.1', '1.2.826.0.1.3680043.10.1453.99.2')),
    `${DICOMWEB_URL}: series 1.2.826.0.1.3680043.10.1453.99.2 is MR, not CT`,
  );
  assert.equal(
    await userError(() => c.ctSeries('1.2.826.0.1.3680043.10.1453.99.1')),
    `${DICOMWEB_URL}: study 1.2.826.0.1.3680043.10.1453.99.1 has no CT series (only MR)`,
  );

  // withSegUids on a real instance: the UIDs change, nothing else does.
  const uids = segUidsFor('k');
  const re = dcmjs.data.DicomMessage.readFile(toArrayBuffer(withSegUids(readFileSync(lidc1Files()[1]!), uids)));
  const nat = dcmjs.data.DicomMetaDictionary.naturalizeDataset(re.dict);
  assert.equal(nat['SOPInstanceUID'], uids.sopInstanceUid);
  assert.equal(nat['SeriesInstanceUID'], uids.seriesInstanceUid);
  assert.equal(nat['StudyInstanceUID'], LIDC1_STUDY);
});

function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}
