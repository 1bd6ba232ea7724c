import type { Command } from 'commander';
import { UserError } from '../errors.ts';
import type { Agreement } from '../io/index.ts';
import { refuseOutputsOverInputs } from '../io/guard.ts';

interface LidcOptions {
  agreement: string;
  output?: string;
  seg?: string;
  png?: string;
  nodule?: string;
  series?: string;
  json?: boolean;
}

/** `noduleseg lidc <dicom-dir>`: the nodules of the LIDC XML beside a series, and their consensus mask. */
export function register(program: Command): void {
  program
    .command('lidc')
    .description('list the nodules of the LIDC-IDRI XML beside a DICOM series and write their consensus mask')
    .argument('<dicom-dir>', 'folder holding the DICOM series and its LIDC XML')
    .option(
      '--agreement <level>',
      "voxels marked by this share of a nodule's readers: a fraction (0.5), any, all, or a reader count (2)",
      '0.5',
    )
    .option('--output <mask.nii.gz>', 'write the consensus mask of all (or --nodule) nodules as NIfTI on the series grid')
    .option('--seg <mask.dcm>', 'write the consensus mask as DICOM SEG referencing the series')
    .option('--png <overlay.png>', 'write a PNG montage of the slices through the mask, lung window')
    .option('--nodule <n>', 'only this nodule (its number in the list)')
    .option('--series <uid>', 'the series to read when the folder holds several')
    .option('--json', 'print the nodule reports as JSON')
    .action(async (dir: string, opts: LidcOptions) => {
      // Loaded here, not at start-up: the other commands and --help do without the readers.
      const {
        consensusMask,
        describeAgreement,
        noduleReport,
        parseAgreement,
        readLidcScan,
        encodeDicomSeg,
        encodeNiftiFile,
        renderOverlayPng,
        writeFilesAtomicSet,
      } = await import('../io/index.ts');
      const agreement: Agreement = parseAgreement(opts.agreement);
      refuseOutputsOverInputs([opts.output, opts.seg, opts.png], [dir]);
      const { series, xml, nodules } = await readLidcScan(dir, opts.series ? { seriesUid: opts.series } : {});
      const vol = series.volume;
      let chosen = nodules;
      if (opts.nodule !== undefined) {
        const n = Number(opts.nodule);
        chosen = nodules.filter((x) => x.index === n);
        if (chosen.length === 0) throw new UserError(`--nodule: no nodule ${opts.nodule} in ${xml.path} (there are ${nodules.length})`);
      }
      const reports = chosen.map((n) => noduleReport(n, vol, xml, agreement));
      const written: string[] = [];
      if (opts.output || opts.seg || opts.png) {
        const mask = consensusMask(chosen, agreement, vol.voxelCount);
        // Encode everything first, then write the set, so a failure leaves no partial output.
        const files: Array<[string, Uint8Array]> = [];
        if (opts.output) files.push([opts.output, encodeNiftiFile(opts.output, vol.withData(mask, 'SEG'))]);
        if (opts.seg)
          files.push([opts.seg, encodeDicomSeg(mask, vol, { algorithmType: 'MANUAL', segmentLabel: 'Nodule (LIDC consensus)' })]);
        if (opts.png) files.push([opts.png, renderOverlayPng(vol, mask, { slices: 'all-mask' })]);
        // Written before anything is printed: a failure prints one line and leaves no file.
        writeFilesAtomicSet(files);
        written.push(...files.map(([p]) => p));
      }
      if (opts.json) {
        process.stdout.write(
          JSON.stringify(
            {
              xml: xml.path,
              readers: xml.readers.length,
              smallNodules: xml.smallNodules.length,
              nonNodules: xml.nonNodules.length,
              nodules: reports,
            },
            null,
            2,
          ) + '\n',
        );
      } else {
        const out = [
          `${xml.path}`,
          `${xml.readers.length} readers; ${nodules.length} nodule(s) >= 3 mm; ${xml.smallNodules.length} mark(s) of nodules < 3 mm; ${xml.nonNodules.length} non-nodule mark(s); agreement ${describeAgreement(agreement)}`,
          ' #  readers  volume mm3  long axis mm  centre LPS mm              malignancy',
        ];
        for (const r of reports) {
          const c = r.centreMm.map((v) => v.toFixed(1).padStart(7)).join(' ');
          out.push(
            `${String(r.index).padStart(2)}  ${String(r.readers).padStart(7)}  ${r.volumeMm3.toFixed(0).padStart(10)}  ${r.longestAxialDiameterMm.toFixed(1).padStart(12)}  (${c})  ${r.characteristics.malignancy ?? '-'}`,
          );
        }
        process.stdout.write(out.join('\n') + '\n');
      }
      for (const path of written) process.stderr.write(`wrote ${path}\n`);
    });
}
