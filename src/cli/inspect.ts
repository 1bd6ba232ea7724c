import type { Command } from 'commander';
import type { Volume } from '../io/volume.ts';
import { IMAGE_EXTENSIONS_TEXT, IMAGE_FORMATS, imageFormatOf } from '../io/formats.ts';
import { existsSync, statSync } from 'node:fs';

function fmt(xs: readonly number[], digits: number): string {
  return xs.map((x) => x.toFixed(digits)).join(' x ');
}

function formatOf(path: string, vol: Volume): string {
  const src = vol.source;
  if (!src) return 'unknown';
  if (src.format === 'dicom') return `DICOM series ${src.series.seriesInstanceUid} (${vol.dims[2]} slices)`;
  if (src.format === 'nifti') return /\.gz$/i.test(path) ? 'NIfTI-1 (gzip)' : 'NIfTI-1';
  const format = imageFormatOf(path);
  return IMAGE_FORMATS.find((f) => f.format === format)?.name ?? 'ITK image';
}

/** `noduleseg inspect <file|dicom-dir>`: what a volume is and where it lies. */
export function register(program: Command): void {
  program
    .command('inspect')
    .description('print dims, spacing, origin, direction, value (HU) range and modality of an image or DICOM series folder')
    .argument('<path>', `an image (${IMAGE_EXTENSIONS_TEXT}) or a folder holding a DICOM series`)
    .option('--series <uid>', 'the series to read when the folder holds several')
    .option('--json', 'print JSON instead of text')
    .action(async (path: string, opts: { series?: string; json?: boolean }) => {
      const isDir = existsSync(path) && statSync(path).isDirectory();
      // Loaded here, not at start-up: the other commands and --help do without the readers.
      const { readVolume } = await import('../io/read.ts');
      const warnings: string[] = [];
      let vol: Volume;
      if (isDir) {
        const { readDicomSeries } = await import('../io/dicom.ts');
        const r = await readDicomSeries(path, opts.series ? { seriesUid: opts.series } : {});
        vol = r.volume;
        warnings.push(...r.warnings);
      } else {
        vol = await readVolume(path);
      }
      const { min, max } = vol.range();
      const info = {
        path,
        format: formatOf(path, vol),
        dims: vol.dims,
        spacingMm: vol.spacingMm,
        originMm: vol.originMm,
        direction: vol.direction,
        modality: vol.modality,
        voxelType: vol.data.constructor.name.replace('Array', '').toLowerCase(),
        range: { min, max },
        warnings,
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        return;
      }
      const isCt = vol.modality === 'CT';
      const lines = [
        `file:      ${path}`,
        `format:    ${info.format}`,
        `modality:  ${isCt ? 'CT' : `${vol.modality} (the file does not say)`}`,
        `dims:      ${vol.dims.join(' x ')} voxels (${info.voxelType})`,
        `spacing:   ${fmt(vol.spacingMm, 4)} mm`,
        `origin:    (${vol.originMm.map((x) => x.toFixed(3)).join(', ')}) mm, LPS`,
        `direction: [${vol.direction.map((x) => +x.toFixed(6)).join(', ')}]`,
        `${isCt ? 'HU range: ' : 'range:    '} ${min} .. ${max}`,
        `extent:    ${fmt(
          vol.dims.map((d, a) => d * vol.spacingMm[a]!),
          1,
        )} mm`,
        ...warnings.map((w) => `warning:   ${w}`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
