import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decodeNifti1 } from '../../src/io/nifti.ts';
import { rawRequest, runCli, startServe, writeSphereCt, type ServeProcess } from './helpers.ts';

// One server for the whole file (start-up loads the model): a data folder with two synthetic
// scans, a secret file beside it, and links from inside the folder to outside it.
const root = mkdtempSync(join(tmpdir(), 'noduleseg-serve-test-'));
const data = join(root, 'data');
const tmp = join(root, 'tmp');
const SECRET = 'TOP-SECRET-CONTENT-0123';
let srv: ServeProcess;

interface NoduleJson {
  nodule: {
    label: number;
    volumeMm3: number;
    anyReaderVolumeMm3: number | null;
    voxelCount: number;
    promptWorldMm: number[];
    warnings: string[];
  };
  existing: boolean;
}
interface SessionJson {
  id: string;
  dims: number[];
  dicom: boolean;
  nodules: Array<{ label: number }>;
}

async function api(path: string, init?: RequestInit): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(new URL(path, srv.url), init);
  const text = await res.text();
  return { status: res.status, json: JSON.parse(text) as Record<string, unknown> };
}

async function alive(): Promise<void> {
  const r = await api('/api/info');
  assert.equal(r.status, 200, 'the server still answers');
}

function form(files: Array<[string, Uint8Array]>): FormData {
  const f = new FormData();
  for (const [name, bytes] of files) f.append('file', new Blob([bytes]), name);
  return f;
}

/** Upload folders left in the server's temporary area (it lives under our TMPDIR). */
function leftoverUploads(): string[] {
  return readdirSync(tmp)
    .filter((d) => d.startsWith('noduleseg-serve-'))
    .flatMap((d) => readdirSync(join(tmp, d)));
}

describe('noduleseg serve (HTTP, no browser)', () => {
  before(async () => {
    mkdirSync(join(data, 'scans'), { recursive: true });
    mkdirSync(tmp);
    writeSphereCt(join(data, 'scans', 'small.nii.gz'), 4);
    writeSphereCt(join(data, 'scans', 'large.nii.gz'), 7);
    writeFileSync(join(root, 'secret.txt'), SECRET);
    writeFileSync(join(root, 'secret.nii'), SECRET);
    mkdirSync(join(root, 'outside-dir'));
    writeSphereCt(join(root, 'outside-dir', 'other.nii.gz'), 5);
    symlinkSync(join(root, 'secret.nii'), join(data, 'link-out.nii'));
    symlinkSync(join(root, 'outside-dir'), join(data, 'dir-out'));
    symlinkSync(join(data, 'scans', 'small.nii.gz'), join(data, 'link-in.nii.gz'));
    srv = await startServe(['--data', data, '--max-upload-mb', '1'], { TMPDIR: tmp });
  });
  after(async () => {
    try {
      const code = await srv.stop();
      assert.equal(code, 0, `clean exit on SIGTERM: ${srv.log()}`);
      assert.deepEqual(
        readdirSync(tmp).filter((d) => d.startsWith('noduleseg-serve-')),
        [],
        'the upload area is removed on exit',
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('lists the scans inside the data folder only', async () => {
    const r = await api('/api/scans');
    assert.equal(r.status, 200);
    const paths = (r.json['scans'] as Array<{ path: string }>).map((s) => s.path).sort();
    assert.deepEqual(paths, ['link-in.nii.gz', 'scans/large.nii.gz', 'scans/small.nii.gz']);
  });

  test('refuses paths out of the data folder: .., encoded .., absolute, symlinks', async () => {
    const refused: Array<[string, number]> = [
      ['../secret.txt', 403],
      ['scans/../../secret.txt', 403],
      ['..\\secret.txt', 403],
      [join(root, 'secret.txt'), 403],
      ['/etc/passwd', 403],
      ['link-out.nii', 403],
      ['dir-out/other.nii.gz', 403],
      ['nope.nii.gz', 404],
      // Decoded once only: a literal "%2e%2e" is just a (missing) name, never "..".
      ['%2e%2e/secret.txt', 404],
    ];
    for (const [p, status] of refused) {
      const r = await api(`/api/open?path=${encodeURIComponent(p)}`, { method: 'POST' });
      assert.equal(r.status, status, `${p} -> ${JSON.stringify(r.json)}`);
      assert.equal(typeof r.json['error'], 'string');
      assert.ok(!JSON.stringify(r.json).includes(SECRET));
    }
    // The query string's own encoding decodes to "../": refused.
    const enc = await rawRequest(srv.port, 'POST', '/api/open?path=%2e%2e%2fsecret.txt');
    assert.equal(enc.status, 403, enc.body);
    // Raw request paths never reach the file system: static files are a fixed table.
    for (const p of [
      '/../secret.txt',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/vendor/..%2f..%2fpackage.json',
      '/..%2fsecret.txt',
      '/api/sessions/..%2f..%2fsecret.txt/scan-1.nii',
    ]) {
      const r = await rawRequest(srv.port, 'GET', p);
      assert.ok(r.status === 404 || r.status === 400, `${p} -> ${r.status}`);
      assert.ok(!r.body.includes(SECRET) && !r.body.includes('root:'), p);
    }
    // A link that stays inside the folder is fine.
    const ok = await api(`/api/open?path=${encodeURIComponent('link-in.nii.gz')}`, { method: 'POST' });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
  });

  test('answers only requests addressed to the local machine (DNS rebinding) and from its own page (CSRF)', async () => {
    const r = await rawRequest(srv.port, 'GET', '/api/scans', { host: 'evil.example:80' });
    assert.equal(r.status, 403);
    const ok = await rawRequest(srv.port, 'GET', '/api/info', { host: `localhost:${srv.port}` });
    assert.equal(ok.status, 200);
    // Another site's page posting here (CSRF): its Origin is not this server.
    const csrf = await rawRequest(srv.port, 'POST', '/api/open?path=scans%2Fsmall.nii.gz', { origin: 'http://evil.example' });
    assert.equal(csrf.status, 403);
    assert.equal((await rawRequest(srv.port, 'POST', '/api/open?path=scans%2Fsmall.nii.gz', { origin: 'null' })).status, 403);
    const own = await rawRequest(srv.port, 'POST', '/api/open?path=scans%2Fsmall.nii.gz', { origin: `http://127.0.0.1:${srv.port}` });
    assert.equal(own.status, 200, own.body);
  });

  test('an oversized upload gets 413 and the server keeps running', async () => {
    const big = new Uint8Array(2 * 1024 * 1024 + 10);
    const r = await api('/api/upload', { method: 'POST', body: form([['big.nii', big]]) });
    assert.equal(r.status, 413);
    assert.match(String(r.json['error']), /larger than the limit of 1 MiB/);
    // The same without a Content-Length (chunked): counted while it arrives.
    const chunks = Buffer.concat([
      Buffer.from('--x\r\nContent-Disposition: form-data; name="file"; filename="a.nii"\r\n\r\n'),
      Buffer.alloc(3 << 20),
    ]);
    const chunked = await new Promise<number>((done, reject) => {
      import('node:http').then(({ request }) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: srv.port,
            method: 'POST',
            path: '/api/upload',
            headers: { 'content-type': 'multipart/form-data; boundary=x', 'transfer-encoding': 'chunked' },
          },
          (res) => {
            res.resume();
            res.on('end', () => done(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        for (let o = 0; o < chunks.length; o += 65536) req.write(chunks.subarray(o, o + 65536));
        req.end();
      }, reject);
    });
    assert.equal(chunked, 413);
    await alive();
    assert.deepEqual(leftoverUploads(), []);
  });

  test('malformed uploads get an error message and the server keeps running', async () => {
    const cases: Array<[RequestInit, RegExp]> = [
      [{ method: 'POST', body: 'just text', headers: { 'content-type': 'text/plain' } }, /multipart\/form-data/],
      [
        { method: 'POST', body: '--zzz\r\ngarbage', headers: { 'content-type': 'multipart/form-data; boundary=zzz' } },
        /not a readable multipart/,
      ],
      [
        {
          method: 'POST',
          body: form([
            ['scan.nii.gz', new TextEncoder().encode('this is not a NIfTI file at all, but long enough to have a header?'.repeat(8))],
          ]),
        },
        /scan\.nii\.gz/,
      ],
      [
        {
          method: 'POST',
          body: form([
            ['a.dcm', new Uint8Array(300).fill(7)],
            ['b.dcm', new Uint8Array(10)],
          ]),
        },
        /DICOM|dicom/,
      ],
      [
        {
          method: 'POST',
          body: form([
            ['x.nii.gz', new Uint8Array(0)],
            ['y.nrrd', new Uint8Array(5)],
          ]),
        },
        /one scan at a time/,
      ],
    ];
    for (const [init, re] of cases) {
      const r = await api('/api/upload', init);
      assert.equal(r.status, 400, JSON.stringify(r.json));
      assert.match(String(r.json['error']), re);
      assert.ok(!String(r.json['error']).includes(tmp), `no server paths in the message: ${r.json['error']}`);
      await alive();
    }
    assert.deepEqual(leftoverUploads(), [], 'uploads are removed whether they could be read or not');
  });

  test('segments where asked, as `segment --point` does; sessions do not mix; downloads', async () => {
    // Two scans open at once (one from the folder, one uploaded), nodules requested concurrently.
    const small = (await api(`/api/open?path=scans/small.nii.gz`, { method: 'POST' })).json as unknown as SessionJson;
    const largeBytes = readFileSync(join(data, 'scans', 'large.nii.gz'));
    const up = await api('/api/upload', { method: 'POST', body: form([['large.nii.gz', largeBytes]]) });
    assert.equal(up.status, 200, JSON.stringify(up.json));
    const large = up.json as unknown as SessionJson;
    assert.notEqual(small.id, large.id);
    assert.deepEqual(large.dims, [64, 64, 24]);
    assert.deepEqual(leftoverUploads(), [], 'the upload is removed once read');
    // The sphere centre in world mm (LPS): origin + (dims / 2) * spacing.
    const centre = [-20 + 32 * 0.7, -30 + 32 * 0.7, -100 + 12 * 1.25];
    const post = (id: string, p: number[]) =>
      api(`/api/sessions/${id}/nodules`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pointMm: p }),
      });
    const [a, b] = await Promise.all([post(small.id, centre), post(large.id, centre)]);
    assert.equal(a.status, 200, JSON.stringify(a.json));
    assert.equal(b.status, 200, JSON.stringify(b.json));
    const na = (a.json as unknown as NoduleJson).nodule;
    const nb = (b.json as unknown as NoduleJson).nodule;
    assert.ok(na.voxelCount > 0 && nb.voxelCount > na.voxelCount, `small ${na.voxelCount} < large ${nb.voxelCount} voxels`);
    // The command line on the same files and point gives the same nodules.
    const dir = mkdtempSync(join(tmpdir(), 'noduleseg-serve-cli-'));
    try {
      const point = centre.join(',');
      const cli = [
        await runCli([
          'segment',
          '-i',
          join(data, 'scans', 'small.nii.gz'),
          `--point=${point}`,
          '-o',
          join(dir, 'small.nii.gz'),
          '--threads',
          '1',
        ]),
        await runCli([
          'segment',
          '-i',
          join(data, 'scans', 'large.nii.gz'),
          `--point=${point}`,
          '-o',
          join(dir, 'large.nii.gz'),
          '--threads',
          '1',
        ]),
      ];
      for (const [k, name, n] of [
        [0, 'small', na],
        [1, 'large', nb],
      ] as const) {
        assert.equal(cli[k]!.code, 0, cli[k]!.stderr);
        const rep = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as {
          nodules: Array<{ measures: { volumeMm3: number; voxelCount: number } }>;
        };
        assert.equal(n.voxelCount, rep.nodules[0]!.measures.voxelCount, `${name}: voxels as the CLI`);
        assert.ok(Math.abs(n.volumeMm3 - rep.nodules[0]!.measures.volumeMm3) < 1e-6, `${name}: volume as the CLI`);
      }
      // Each session holds its own nodule only.
      const sa = (await api(`/api/sessions/${small.id}`)).json as unknown as SessionJson;
      const sb = (await api(`/api/sessions/${large.id}`)).json as unknown as SessionJson;
      assert.equal(sa.nodules.length, 1);
      assert.equal(sb.nodules.length, 1);
      // A click inside a nodule selects it rather than segmenting it twice.
      const again = (await post(small.id, centre)).json as unknown as NoduleJson;
      assert.equal(again.existing, true);
      // Downloads: the label mask on the scan's grid, with the nodule's voxels; the report; no SEG for NIfTI.
      const mask = decodeNifti1(
        gunzipSync(Buffer.from(await (await fetch(new URL(`/api/sessions/${large.id}/labels.nii.gz`, srv.url))).arrayBuffer())),
        'labels.nii.gz',
      );
      assert.deepEqual(mask.dims, [64, 64, 24]);
      let on = 0;
      for (const v of mask.data) if (v === nb.label) on++;
      assert.equal(on, nb.voxelCount);
      const cliMask = decodeNifti1(gunzipSync(readFileSync(join(dir, 'large.nii.gz'))), 'cli');
      assert.deepEqual(
        Array.from(mask.data, (v) => (v ? 1 : 0)),
        Array.from(cliMask.data, (v) => (v ? 1 : 0)),
        'the same voxels as the CLI mask',
      );
      // The display overlay: full grid, and the half-resolution one a browser without GPU gets.
      const fetchNifti = async (p: string) => decodeNifti1(new Uint8Array(await (await fetch(new URL(p, srv.url))).arrayBuffer()), p);
      const full = await fetchNifti(`/api/sessions/${large.id}/overlay-1-${nb.label}-0.nii`);
      assert.equal(Array.from(full.data).filter((v) => v === 2).length, nb.voxelCount, 'the selected nodule is value 2');
      assert.equal(Array.from(full.data).filter((v) => v === 4).length, 0, 'the any-reader extent only when asked');
      // With it: yellow (4) where the any-reader mask reaches beyond the mask, the mask unchanged;
      // its voxels and the mask's make the report's any-reader volume.
      const wide = await fetchNifti(`/api/sessions/${large.id}/overlay-1-${nb.label}-0-1-123.nii`);
      const beyond = Array.from(wide.data).filter((v) => v === 4).length;
      assert.equal(Array.from(wide.data).filter((v) => v === 2).length, nb.voxelCount);
      assert.ok(beyond > 0, 'the shipped model draws some reader beyond its mask');
      const voxelMm3 = wide.spacingMm[0] * wide.spacingMm[1] * wide.spacingMm[2];
      assert.ok(
        nb.anyReaderVolumeMm3 !== null &&
          Math.abs((nb.voxelCount + beyond) * voxelMm3 - nb.anyReaderVolumeMm3) < 1e-6 * nb.anyReaderVolumeMm3,
      );
      const half = await fetchNifti(`/api/sessions/${large.id}/overlay-2-${nb.label}-0.nii`);
      assert.deepEqual(half.dims, [32, 32, 24]);
      assert.deepEqual(
        half.spacingMm.map((v) => Math.round(v * 1e4) / 1e4),
        [1.4, 1.4, 1.25],
      );
      // Display voxel (i, j) covers full voxels (2i, 2i+1): its centre is at full voxel 2i + 0.5.
      const c = half.voxelToWorld([10, 7, 3]);
      const f = full.voxelToWorld([20.5, 14.5, 3]);
      assert.ok(Math.hypot(c[0] - f[0], c[1] - f[1], c[2] - f[2]) < 1e-4, `${c} vs ${f}`);
      const report = (await api(`/api/sessions/${large.id}/report.json`)).json as { nodules: Array<{ measures: { volumeMm3: number } }> };
      assert.equal(report.nodules[0]!.measures.volumeMm3, nb.volumeMm3);
      const seg = await api(`/api/sessions/${large.id}/seg.dcm`);
      assert.equal(seg.status, 400);
      assert.match(String(seg.json['error']), /DICOM SEG needs a scan read from DICOM/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Removing a nodule; bad requests are one-line errors.
    const del = await api(`/api/sessions/${small.id}/nodules/${na.label}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.deepEqual((del.json as unknown as SessionJson).nodules, []);
    assert.equal((await api(`/api/sessions/${small.id}/nodules/99`, { method: 'DELETE' })).status, 404);
    assert.equal((await post(small.id, [1e6, 0, 0])).status, 400);
    assert.equal((await api(`/api/sessions/${small.id}/nodules`, { method: 'POST', body: '{"pointMm": "x"}' })).status, 400);
    assert.equal((await api('/api/sessions/00000000-0000-0000-0000-000000000000')).status, 404);
  });

  test('segments in a box, as `segment --box` does; a box around a listed nodule replaces it', async () => {
    const s = (await api(`/api/open?path=scans/large.nii.gz`, { method: 'POST' })).json as unknown as SessionJson;
    const centre = [-20 + 32 * 0.7, -30 + 32 * 0.7, -100 + 12 * 1.25];
    // Drawn on an axial view: flat in z, so it limits the nodule in-plane only.
    const flat = [
      [centre[0]! - 3, centre[1]! - 3, centre[2]!],
      [centre[0]! + 3, centre[1]! + 3, centre[2]!],
    ];
    const post = (body: unknown) =>
      api(`/api/sessions/${s.id}/nodules`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const first = await post({ boxMm: flat });
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const n1 = (first.json as unknown as NoduleJson & { replaced: boolean }).nodule as NoduleJson['nodule'] & {
      promptBoxWorldMm: number[][];
    };
    assert.equal((first.json as { replaced?: boolean }).replaced, false);
    assert.ok(n1.voxelCount > 0);
    assert.deepEqual(
      n1.promptBoxWorldMm.map((c) => c.map((v) => Math.round(v * 1e3) / 1e3)),
      flat.map((c) => c.map((v) => Math.round(v * 1e3) / 1e3)),
    );
    const dir = mkdtempSync(join(tmpdir(), 'noduleseg-serve-box-'));
    try {
      const cli = await runCli([
        'segment',
        '-i',
        join(data, 'scans', 'large.nii.gz'),
        `--box=${flat.flat().join(',')}`,
        '-o',
        join(dir, 'box.nii.gz'),
        '--threads',
        '1',
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      const mask = decodeNifti1(
        gunzipSync(Buffer.from(await (await fetch(new URL(`/api/sessions/${s.id}/labels.nii.gz`, srv.url))).arrayBuffer())),
        'labels.nii.gz',
      );
      const cliMask = decodeNifti1(gunzipSync(readFileSync(join(dir, 'box.nii.gz'))), 'cli');
      assert.deepEqual(
        Array.from(mask.data, (v) => (v ? 1 : 0)),
        Array.from(cliMask.data, (v) => (v ? 1 : 0)),
        'the same voxels as `segment --box`',
      );
      // The sphere is 7 mm in radius: the 3 mm half-box plus the 2 mm margin clips it in-plane.
      let rows = 0;
      for (let z = 0; z < 24; z++)
        for (let y = 0; y < 64; y++)
          for (let x = 0; x < 64; x++) if (mask.data[x + 64 * (y + 64 * z)] && Math.abs((x - 32) * 0.7) > 5 + 1e-6) rows++;
      assert.equal(rows, 0, 'nothing beyond the box and its margin in x');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // A wider 3D box whose centre lies in that nodule segments it again under the same label.
    const wide = [
      [centre[0]! - 8, centre[1]! - 8, centre[2]! - 8],
      [centre[0]! + 8, centre[1]! + 8, centre[2]! + 8],
    ];
    const second = await post({ boxMm: wide });
    assert.equal(second.status, 200, JSON.stringify(second.json));
    assert.equal((second.json as { replaced?: boolean }).replaced, true);
    const n2 = (second.json as unknown as NoduleJson).nodule;
    assert.equal(n2.label, n1.label);
    assert.ok(n2.voxelCount > n1.voxelCount, `the wider box keeps more of the sphere: ${n2.voxelCount} > ${n1.voxelCount}`);
    assert.equal(((await api(`/api/sessions/${s.id}`)).json as unknown as SessionJson).nodules.length, 1);
    // Bad prompts are one-line errors.
    assert.equal((await post({ boxMm: [[0, 0, 0]] })).status, 400);
    assert.equal((await post({ pointMm: centre, boxMm: wide })).status, 400);
    assert.equal((await post({})).status, 400);
    const outside = await post({
      boxMm: [
        [1e6, 0, 0],
        [1e6 + 5, 5, 5],
      ],
    });
    assert.equal(outside.status, 400);
    assert.match(String(outside.json['error']), /box's centre lies outside the scan/);
  });
});
