/** Which reader an image path goes to, by its name. Light on purpose: the readers load on demand. */
export function isItkPath(path: string): boolean {
  return /\.(mhd|mha|nrrd|nhdr)$/i.test(path);
}
