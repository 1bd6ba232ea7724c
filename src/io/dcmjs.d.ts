// The part of dcmjs (0.51, untyped) that noduleseg uses: reading and writing Part 10 files
// through naturalized datasets (plain objects keyed by DICOM keyword).
declare module 'dcmjs' {
  export type NaturalDataset = Record<string, unknown>;
  interface DicomDictInstance {
    meta: Record<string, unknown>;
    dict: Record<string, unknown>;
    write(options?: Record<string, unknown>): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: Record<string, unknown>): DicomDictInstance;
      };
      DicomDict: new (meta: Record<string, unknown>) => DicomDictInstance;
      DicomMetaDictionary: {
        naturalizeDataset(dict: Record<string, unknown>): NaturalDataset;
        denaturalizeDataset(ds: NaturalDataset): Record<string, unknown>;
        uid(): string;
        date(): string;
        time(): string;
      };
    };
  };
  export default dcmjs;
}
