/**
 * `segment --dicomweb <url> --study <uid> [--series <uid>]`: the series is fetched by WADO-RS into a
 * temporary folder, segmented by segment's own code path for a DICOM folder, and its SEG and SR
 * stored back by STOW-RS (before any local file is written); `--output`, `--report` and `--sr`
 * still write locally (the same SEG and SR). Their UIDs derive from the run's inputs, so the same
 * run twice stores one SEG and one SR.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { SegmentCliOptions, SegmentRemote } from '../cli/segment.ts';
import { resolveAuth } from './auth.ts';
import { DicomWebClient } from './dicomweb.ts';
import { storeSegOnce } from './store.ts';
import { canonicalJson, fileDigest, segUidsFor, sha256Hex, srUidsFor, withSegUids } from './uids.ts';

type RunSegment = (opts: SegmentCliOptions, remote?: SegmentRemote) => Promise<void>;

export async function runSegmentDicomweb(opts: SegmentCliOptions, runSegment: RunSegment): Promise<void> {
  // Arguments first: nothing is fetched for a run that would fail on them.
  if (opts.dicomweb === undefined) throw new UserError('--study, --series and --dicomweb-auth go with --dicomweb <url>');
  if (opts.input !== undefined) throw new UserError('give --input or --dicomweb, not both');
  if (opts.study === undefined) throw new UserError('--dicomweb needs --study <Study Instance UID>');
  const given = { point: opts.point, voxel: opts.voxel, points: opts.points, box: opts.box, voxelBox: opts.voxelBox };
  if (Object.values(given).every((v) => v === undefined))
    throw new UserError('--dicomweb: say where the nodules are (--point, --voxel, --points, --box or --voxel-box)');
  if (opts.output && !/\.(nii\.gz|nii|dcm)$/i.test(opts.output))
    throw new UserError(`${opts.output}: the output must end in .nii.gz, .nii or .dcm`);
  if (!existsSync(opts.model)) throw new UserError(`${opts.model}: model file not found`);
  if (opts.points !== undefined && !existsSync(opts.points)) throw new UserError(`${opts.points}: cannot read the points CSV`);

  const client = new DicomWebClient(opts.dicomweb, { auth: resolveAuth(opts.dicomwebAuth) });
  const series = await client.ctSeries(opts.study, opts.series);
  const studyUid = opts.study;
  const seriesUid = series.seriesInstanceUid;
  const key = canonicalJson({
    study: studyUid,
    series: seriesUid,
    prompts: { ...given, points: opts.points === undefined ? undefined : sha256Hex(readFileSync(opts.points)) },
    threshold: opts.threshold ?? null,
    tta: opts.tta ?? false,
    model: fileDigest(opts.model),
  });
  const uids = segUidsFor(key);
  const srUids = srUidsFor(key);
  const dir = mkdtempSync(join(tmpdir(), 'noduleseg-dicomweb-'));
  try {
    const t0 = performance.now();
    let fetchS = 0;
    const fetching = client.retrieveSeries(studyUid, seriesUid, dir).then((f) => {
      fetchS = (performance.now() - t0) / 1000;
      return f;
    });
    // Meanwhile the modules that segment loads next (libtorch among them): their loading overlaps
    // the transfer (which the kernel keeps receiving while the loader holds the event loop).
    const warm = Promise.all([
      import('../io/index.ts'),
      import('../models/index.ts'),
      import('../inference/index.ts'),
      import('../tensor/index.ts'),
    ]);
    const [files] = await Promise.all([fetching, warm]);
    process.stderr.write(`fetched series ${seriesUid} (${files.length} instances) from ${client.label} in ${fetchS.toFixed(1)} s\n`);
    const remote: SegmentRemote = {
      input: `${client.label} study ${studyUid} series ${seriesUid}`,
      store: async (volume, labels, anyReaderLabels, info, reported) => {
        const { encodeNoduleSeg, encodeNoduleSr } = await import('../report/index.ts');
        // Both built before either is stored: a failure stores nothing.
        const seg = withSegUids(encodeNoduleSeg(volume, labels, anyReaderLabels, info.config.arch), uids);
        const sr = withSegUids(encodeNoduleSr(reported, volume, seg, info.config.arch), srUids);
        const t1 = performance.now();
        const stored = await storeSegOnce(client, studyUid, seg, uids);
        const storedSr = await storeSegOnce(client, studyUid, sr, srUids);
        process.stderr.write(
          stored.stored || storedSr.stored
            ? `stored the SEG and SR on ${client.label} in ${((performance.now() - t1) / 1000).toFixed(1)} s (SEG series ${uids.seriesInstanceUid})\n`
            : `${client.label} already has this SEG and SR (SEG series ${uids.seriesInstanceUid}); not stored again\n`,
        );
        return {
          seg,
          sr,
          report: { pacs: { server: client.label, studyInstanceUid: studyUid, seriesInstanceUid: seriesUid, seg: stored, sr: storedSr } },
        };
      },
    };
    await runSegment({ ...opts, input: dir }, remote);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
