// The bad-input catalogue as a property test (issue 13, part 2): fast-check mutates valid NIfTI,
// MetaImage, DICOM and LIDC XML files (header fields, truncation, dimensions, spacing,
// orientation, data type, mixed series, non-CT modality, missing slices...) and every command that
// reads them must either succeed or end with exit code 1, exactly one line on stderr naming the
// input, nothing on stdout, and no output file (nor a temporary one) left behind. A crash, a hang
// or a partial output fails the test with the shrunk case. Seeds are fixed, so CI is repeatable.
// The hand-written cases live in test/io/bad-input.test.ts; counter-examples found here are kept
// as regular tests in test/property/regressions.test.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tempDir } from '../io/helpers.ts';
import { CliChild, type RunOutcome } from './driver.ts';
import { loadFixtures, type Base, type Fixtures } from './fixtures.ts';
import {
  applyDicom,
  applyMeta,
  applyNifti,
  applyXml,
  dicomMutation,
  metaMutation,
  niftiMutation,
  xmlMutation,
  type DicomMutation,
  type MetaMutation,
  type NiftiMutation,
  type XmlMutation,
} from './mutations.ts';

/**
 * Cases per format and CI run, with a fixed seed: the same cases every run. For a longer soak
 * elsewhere: NODULESEG_PROPERTY_SCALE=5 NODULESEG_PROPERTY_SEED=<any> (fast-check prints the seed
 * and path of a failure, to replay it).
 */
const SCALE = Number(process.env['NODULESEG_PROPERTY_SCALE'] ?? 1);
const RUNS = {
  nifti: Math.round(200 * SCALE),
  metaimage: Math.round(110 * SCALE),
  dicom: Math.round(120 * SCALE),
  lidcXml: Math.round(100 * SCALE),
};
const SEED = Number(process.env['NODULESEG_PROPERTY_SEED'] ?? 20261130);
/** A command past this is a hang (generous: CI shares two cores; the slowest case takes ~1 s). */
const LIMIT_MS = 20_000;
/** segment loads the model on its first case. */
const SEGMENT_LIMIT_MS = 60_000;

const root = tempDir('property');
const fixtures: Fixtures = await loadFixtures(join(root, 'fixtures'));
const bases: Base[] = fixtures.realMissing === null ? ['synthetic', 'real'] : ['synthetic'];
if (fixtures.realMissing !== null)
  console.log(`property test: real LIDC files skipped, mutating synthetic files only: ${fixtures.realMissing}`);

const child = new CliChild();
after(() => {
  child.stop();
  rmSync(root, { recursive: true, force: true });
});

type Format = keyof typeof RUNS;
interface Tally {
  cases: number;
  succeeded: number;
  refused: number;
  commands: Record<string, number>;
  ms: number;
  /** Milliseconds per command name, to keep the share of slow commands in check. */
  msBy: Record<string, number>;
}
const tally = Object.fromEntries(
  Object.keys(RUNS).map((f) => [f, { cases: 0, succeeded: 0, refused: 0, commands: {}, ms: 0, msBy: {} } satisfies Tally]),
) as Record<Format, Tally>;
let caseNo = 0;

/** Everything under `dir` (relative paths; folders end in /), files with a digest of their bytes. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        // A folder left behind (a writer's temporary one, say) counts as output too.
        out.set(`${relative(dir, p)}/`, '');
        walk(p);
      } else out.set(relative(dir, p), createHash('sha1').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

interface Invocation {
  command: string;
  args: string[];
  /** Files the command must have written when it succeeds. */
  outputs: string[];
  isSegment?: boolean;
}

/**
 * Runs one command on a case folder (`in/` holds the mutated input, `out/` is where outputs go)
 * and checks the contract. Returns normally when it holds; throws (with what happened) when not.
 */
async function runCase(format: Format, caseDir: string, inv: Invocation): Promise<void> {
  const inDir = join(caseDir, 'in');
  const outDir = join(caseDir, 'out');
  const before = snapshot(inDir);
  const r: RunOutcome = await child.run(inv.args, inv.isSegment ? SEGMENT_LIMIT_MS : LIMIT_MS);
  const t = tally[format];
  t.cases++;
  t.commands[inv.command] = (t.commands[inv.command] ?? 0) + 1;
  const what = `noduleseg ${inv.args.join(' ')}`;
  if (r.kind === 'hang') assert.fail(`${what}: no answer after ${r.limitMs} ms (a hang)\n${r.stderr}`);
  if (r.kind === 'died') assert.fail(`${what}: the process died (${r.exit})\n${r.stderr}`);
  t.ms += r.elapsedMs;
  t.msBy[inv.command] = (t.msBy[inv.command] ?? 0) + r.elapsedMs;
  if (r.code === 99) assert.fail(`${what}: crashed\n${r.stderr}`);
  assert.ok(r.code === 0 || r.code === 1, `${what}: exit code ${r.code}\n${r.stderr}`);
  assert.deepEqual(snapshot(inDir), before, `${what}: an input was changed, or a file written among the inputs`);
  const written = [...snapshot(outDir).keys()];
  if (r.code === 1) {
    t.refused++;
    assert.equal(r.stdout, '', `${what}: printed on stdout before failing`);
    assert.match(r.stderr, /^noduleseg: [^\n]+\n$/, `${what}: stderr is not one "noduleseg: ..." line:\n${r.stderr}`);
    assert.ok(r.stderr.includes(inDir), `${what}: the message does not name the input: ${r.stderr}`);
    assert.deepEqual(written, [], `${what}: failed but left files or folders in its output folder`);
    return;
  }
  t.succeeded++;
  for (const o of inv.outputs) assert.ok(existsSync(o) && statSync(o).size > 0, `${what}: succeeded without writing ${o}\n${r.stderr}`);
  const temps = written.filter((p) => /\.tmp\b|\.tmp-|staging/.test(p));
  assert.deepEqual(temps, [], `${what}: left temporary files`);
  if (inv.command === 'inspect-json') {
    const info = JSON.parse(r.stdout) as {
      range: { min: unknown; max: unknown };
      spacingMm: unknown[];
      originMm: unknown[];
      direction: unknown[];
    };
    const numbers = [info.range.min, info.range.max, ...info.spacingMm, ...info.originMm, ...info.direction];
    assert.ok(
      numbers.every((x) => typeof x === 'number' && Number.isFinite(x)),
      `${what}: non-finite values reported: ${r.stdout}`,
    );
  } else if (inv.command === 'inspect') {
    assert.doesNotMatch(r.stdout, /NaN|Infinity/, `${what}: non-finite values reported:\n${r.stdout}`);
  }
}

function report(format: Format): void {
  const t = tally[format];
  const commands = Object.entries(t.commands)
    .sort()
    .map(([c, n]) => `${c} ${n} (${((t.msBy[c] ?? 0) / 1000).toFixed(1)} s)`)
    .join(', ');
  console.log(
    `property test: ${format}: ${t.cases} cases (${t.succeeded} accepted, ${t.refused} refused; ${commands}) in ${(t.ms / 1000).toFixed(1)} s of commands`,
  );
}

function newCase(format: Format): { caseDir: string; inDir: string; outDir: string } {
  const caseDir = join(root, `${format}-${++caseNo}`);
  const inDir = join(caseDir, 'in');
  mkdirSync(inDir, { recursive: true });
  return { caseDir, inDir, outDir: join(caseDir, 'out') };
}

function segmentArgs(input: string, outDir: string, extra: string[] = [], ext = 'nii.gz'): Invocation {
  const mask = join(outDir, `mask.${ext}`);
  const report = join(outDir, 'report.json');
  return {
    command: `segment${extra.length ? '-point' : ''}${ext === 'dcm' ? '-seg' : ''}`,
    args: ['segment', '-i', input, '-o', mask, '--report', report, '--png', join(outDir, 'png'), '--threads', '1', ...extra],
    outputs: [mask, report],
    isSegment: true,
  };
}

function evalArgs(inDir: string, outDir: string): Invocation {
  const csv = join(outDir, 'metrics.csv');
  const md = join(outDir, 'summary.md');
  return {
    command: 'eval',
    args: ['eval', '--pred', join(inDir, 'pred'), '--ref', join(inDir, 'ref'), '--csv', csv, '--md', md],
    outputs: [csv, md],
  };
}

function inspectArgs(path: string, json: boolean): Invocation {
  return { command: json ? 'inspect-json' : 'inspect', args: ['inspect', path, ...(json ? ['--json'] : [])], outputs: [] };
}

// Commands per case, weighted: inspect reads every format in milliseconds; segment loads the model
// and takes about half a second a case, so its share is smaller but there.
const imageCommand = fc.oneof(
  { weight: 12, arbitrary: fc.constant('inspect' as const) },
  { weight: 8, arbitrary: fc.constant('inspect-json' as const) },
  { weight: 4, arbitrary: fc.constant('eval-pred' as const) },
  { weight: 4, arbitrary: fc.constant('eval-ref' as const) },
  { weight: 1, arbitrary: fc.constant('segment' as const) },
  { weight: 1, arbitrary: fc.constant('segment-point' as const) },
);
type ImageCommand = 'inspect' | 'inspect-json' | 'eval-pred' | 'eval-ref' | 'segment' | 'segment-point';

/** Lays out an image case for its command: the mutated file alone, or as one side of an eval pair. */
function imageInvocation(
  command: ImageCommand,
  inDir: string,
  outDir: string,
  fileName: string,
  write: (path: string, asMask: boolean) => void,
  writeGoodMask: (path: string) => void,
  base: Base,
): Invocation {
  if (command === 'eval-pred' || command === 'eval-ref') {
    const [bad, good] = command === 'eval-pred' ? ['pred', 'ref'] : ['ref', 'pred'];
    mkdirSync(join(inDir, bad));
    mkdirSync(join(inDir, good));
    write(join(inDir, bad, fileName), true);
    writeGoodMask(join(inDir, good, fileName));
    return evalArgs(inDir, outDir);
  }
  const path = join(inDir, fileName);
  write(path, false);
  if (command === 'segment') return segmentArgs(path, outDir);
  if (command === 'segment-point') return segmentArgs(path, outDir, ['--point', fixtures.images[base]!.pointMm.join(',')]);
  return inspectArgs(path, command === 'inspect-json');
}

test(`NIfTI: ${RUNS.nifti} mutated files through inspect, eval and segment`, async () => {
  await fc.assert(
    fc.asyncProperty(niftiMutation(bases), imageCommand, async (m: NiftiMutation, command: ImageCommand) => {
      const { caseDir, inDir, outDir } = newCase('nifti');
      try {
        const img = fixtures.images[m.base]!;
        const name = `case${caseNo}.${m.gzip ? 'nii.gz' : 'nii'}`;
        const write = (p: string, asMask: boolean) => writeFileSync(p, applyNifti(asMask ? img.niftiMask : img.niftiImage, m));
        const good = (p: string) => writeFileSync(p, applyNifti(img.niftiMask, { ...m, ops: [], gzipOps: [] }));
        await runCase('nifti', caseDir, imageInvocation(command, inDir, outDir, name, write, good, m.base));
      } finally {
        rmSync(caseDir, { recursive: true, force: true });
      }
    }),
    { seed: SEED, numRuns: RUNS.nifti, includeErrorInReport: true },
  );
  report('nifti');
});

test(`MetaImage: ${RUNS.metaimage} mutated files through inspect, eval and segment`, async () => {
  await fc.assert(
    fc.asyncProperty(metaMutation(bases), imageCommand, async (m: MetaMutation, command: ImageCommand) => {
      const { caseDir, inDir, outDir } = newCase('metaimage');
      try {
        const img = fixtures.images[m.base]!;
        // eval reads .mhd masks (not .mha); the other commands read both.
        const container = command.startsWith('eval') ? 'mhd' : m.container;
        const mm = { ...m, container };
        const stem = `case${caseNo}`;
        const writeMeta = (p: string, src: { header: string; data: Uint8Array }, mut: MetaMutation) => {
          const { header, data } = applyMeta(src.header, src.data, mut, `${stem}.raw`);
          if (container === 'mha') writeFileSync(p, Buffer.concat([Buffer.from(header, 'latin1'), data]));
          else {
            writeFileSync(p, header, 'latin1');
            writeFileSync(join(p, '..', `${stem}.raw`), data);
          }
        };
        const write = (p: string, asMask: boolean) => writeMeta(p, asMask ? img.metaMask : img.metaImage, mm);
        const good = (p: string) => writeMeta(p, img.metaMask, { ...mm, ops: [] });
        await runCase('metaimage', caseDir, imageInvocation(command, inDir, outDir, `${stem}.${container}`, write, good, m.base));
      } finally {
        rmSync(caseDir, { recursive: true, force: true });
      }
    }),
    { seed: SEED + 1, numRuns: RUNS.metaimage, includeErrorInReport: true },
  );
  report('metaimage');
});

const seriesCommand = fc.oneof(
  { weight: 10, arbitrary: fc.constant('inspect' as const) },
  { weight: 6, arbitrary: fc.constant('inspect-json' as const) },
  { weight: 8, arbitrary: fc.constant('lidc' as const) },
  { weight: 1, arbitrary: fc.constant('segment-point' as const) },
  { weight: 1, arbitrary: fc.constant('segment-seg' as const) },
);
type SeriesCommand = 'inspect' | 'inspect-json' | 'lidc' | 'segment-point' | 'segment-seg';

/** Which of lidc's outputs a case asks for: the NIfTI mask always, the SEG and the PNG (slower) sometimes. */
const lidcOutputs = fc.record({
  json: fc.boolean(),
  seg: fc.boolean(),
  png: fc.oneof({ weight: 2, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
type LidcOutputs = { json: boolean; seg: boolean; png: boolean };

function lidcArgs(series: string, outDir: string, o: LidcOutputs): Invocation {
  const nii = join(outDir, 'consensus.nii.gz');
  const seg = join(outDir, 'consensus.dcm');
  const png = join(outDir, 'consensus.png');
  return {
    command: o.json ? 'lidc-json' : 'lidc',
    args: [
      'lidc',
      series,
      '--output',
      nii,
      ...(o.seg ? ['--seg', seg] : []),
      ...(o.png ? ['--png', png] : []),
      ...(o.json ? ['--json'] : []),
    ],
    outputs: [nii, ...(o.seg ? [seg] : []), ...(o.png ? [png] : [])],
  };
}

function seriesInvocation(command: SeriesCommand, series: string, outDir: string, base: Base, o: LidcOutputs): Invocation {
  const point = ['--point', fixtures.series[base]!.pointMm.join(',')];
  if (command === 'lidc') return lidcArgs(series, outDir, o);
  if (command === 'segment-point') return segmentArgs(series, outDir, point);
  if (command === 'segment-seg') return segmentArgs(series, outDir, point, 'dcm');
  return inspectArgs(series, command === 'inspect-json');
}

test(`DICOM: ${RUNS.dicom} mutated series through inspect, lidc and segment`, async () => {
  await fc.assert(
    fc.asyncProperty(dicomMutation(bases), seriesCommand, lidcOutputs, async (m: DicomMutation, command: SeriesCommand, o: LidcOutputs) => {
      const { caseDir, inDir, outDir } = newCase('dicom');
      try {
        const s = fixtures.series[m.base]!;
        const series = join(inDir, 'series');
        mkdirSync(series);
        for (const [name, bytes] of applyDicom(s.slices, m)) writeFileSync(join(series, name), bytes);
        writeFileSync(join(series, s.xmlName), s.xml);
        await runCase('dicom', caseDir, seriesInvocation(command, series, outDir, m.base, o));
      } finally {
        rmSync(caseDir, { recursive: true, force: true });
      }
    }),
    { seed: SEED + 2, numRuns: RUNS.dicom, includeErrorInReport: true },
  );
  report('dicom');
});

test(`LIDC XML: ${RUNS.lidcXml} mutated reads through lidc`, async () => {
  await fc.assert(
    fc.asyncProperty(xmlMutation(bases), lidcOutputs, async (m: XmlMutation, o: LidcOutputs) => {
      const { caseDir, inDir, outDir } = newCase('lidcXml');
      try {
        const s = fixtures.series[m.base]!;
        const series = join(inDir, 'series');
        mkdirSync(series);
        for (const [name, bytes] of s.slices) writeFileSync(join(series, name), bytes);
        writeFileSync(join(series, s.xmlName), applyXml(s.xml, m));
        await runCase('lidcXml', caseDir, lidcArgs(series, outDir, o));
      } finally {
        rmSync(caseDir, { recursive: true, force: true });
      }
    }),
    { seed: SEED + 3, numRuns: RUNS.lidcXml, includeErrorInReport: true },
  );
  report('lidcXml');
});

test('the catalogue ran every format, with both accepted and refused inputs', () => {
  let total = 0;
  for (const [format, t] of Object.entries(tally) as Array<[Format, Tally]>) {
    total += t.cases;
    assert.ok(t.succeeded > 0 && t.refused > 0, `${format}: the generator should produce both readable and refused inputs`);
  }
  console.log(`property test: ${total} mutated inputs in all (real LIDC files ${fixtures.realMissing === null ? 'included' : 'skipped'})`);
  assert.ok(total >= 500 * Math.min(1, SCALE), `at least 500 cases per run, got ${total}`);
});

// The harness itself: a command past its limit must come back as a hang (not pass, not wait
// forever), and the next command must get a fresh child.
test('the driver reports a command past its limit as a hang, then carries on', async () => {
  const path = join(root, 'fixtures', 'syn.nii');
  const slow = await child.run(['inspect', path], 1);
  assert.equal(slow.kind, 'hang');
  const next = await child.run(['inspect', path, '--json'], LIMIT_MS);
  assert.equal(next.kind, 'done');
  assert.equal(next.kind === 'done' && next.code, 0);
});
