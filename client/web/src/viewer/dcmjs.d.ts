// The small part of dcmjs 0.52 the tag browser uses; the package ships no type declarations.

declare module "dcmjs" {
  export interface DicomElement {
    vr: string;
    Value?: unknown;
  }

  export type DicomDataset = Record<string, DicomElement>;

  export interface DictionaryEntry {
    tag: string;
    vr: string;
    name: string;
    vm: string;
  }

  interface ReadOptions {
    ignoreErrors?: boolean;
    untilTag?: string | null;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
  }

  const dcmjs: {
    data: {
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: ReadOptions): { meta: DicomDataset; dict: DicomDataset };
      };
      DicomMetaDictionary: {
        dictionary: Record<string, DictionaryEntry | undefined>;
      };
    };
  };

  export default dcmjs;
}
