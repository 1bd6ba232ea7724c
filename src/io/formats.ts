/**
 * The image formats noduleseg reads, by file name: the one list every command, the viewer and the
 * readers take their extensions from. Light on purpose: the readers load on demand.
 */
export type ImageFormat = 'nifti' | 'metaimage' | 'nrrd';

/** Longest extension first within a format, so that "x.nii.gz" is not taken for "x.nii" + ".gz". */
export const IMAGE_FORMATS: ReadonlyArray<{ format: ImageFormat; extensions: readonly string[]; name: string }> = [
  { format: 'nifti', extensions: ['.nii.gz', '.nii'], name: 'NIfTI' },
  { format: 'metaimage', extensions: ['.mha', '.mhd'], name: 'MetaImage' },
  { format: 'nrrd', extensions: ['.nrrd', '.nhdr'], name: 'NRRD' },
];

/** Every image extension, as the messages list them: ".nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr". */
export const IMAGE_EXTENSIONS_TEXT = IMAGE_FORMATS.flatMap((f) => f.extensions).join(', ');

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const FORMAT_PATTERNS = IMAGE_FORMATS.map((f) => ({
  format: f.format,
  re: new RegExp(`(?:${f.extensions.map(escapeRegExp).join('|')})$`, 'i'),
}));
const ANY_IMAGE = new RegExp(
  `(?:${IMAGE_FORMATS.flatMap((f) => f.extensions)
    .map(escapeRegExp)
    .join('|')})$`,
  'i',
);

/** The format a file name says it holds, or undefined (a DICOM folder, or something else). */
export function imageFormatOf(path: string): ImageFormat | undefined {
  return FORMAT_PATTERNS.find((p) => p.re.test(path))?.format;
}

/** Whether a file name is an image noduleseg reads (any format of IMAGE_FORMATS). */
export function isImagePath(path: string): boolean {
  return ANY_IMAGE.test(path);
}

/** The name without its image extension: "a.nii.gz" -> "a", "b.mha" -> "b"; other names unchanged. */
export function imageStem(name: string): string {
  return name.replace(ANY_IMAGE, '');
}

export function isNiftiPath(path: string): boolean {
  return imageFormatOf(path) === 'nifti';
}

/** MetaImage and NRRD go to the ITK reader (itk-wasm). */
export function isItkPath(path: string): boolean {
  const f = imageFormatOf(path);
  return f === 'metaimage' || f === 'nrrd';
}
