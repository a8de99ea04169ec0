// The study's instances as the viewer knows them: the manifest entry from the start, and once a
// file has been read, a small header summary that stays when the file itself leaves the cache.
// Reading a file also registers its header (without pixel data) with Cornerstone's metadata, so
// image geometry, pixel module and VOI stay known for every image of a series while at most the
// cache's budget of whole files is held.

import { wadouri } from "@cornerstonejs/dicom-image-loader";
import { utilities as metadataUtilities } from "@cornerstonejs/metadata";
import dcmjs from "dcmjs";

import type { StudyInstance } from "../study-source";
import type { FileCache, ReadPriority } from "./cache";
import { isSupportedTransferSyntax, unsupportedReason } from "./transfer-syntax";

export type DataSet = ReturnType<typeof wadouri.dataSetCacheManager.get>;

export type Vector3 = [number, number, number];

/** What the viewer keeps of a file once read: enough to sort, label and explain it. */
export interface Header {
  fileId: string;
  sopInstanceUid: string;
  sopClassUid: string;
  modality: string;
  seriesNumber: number | null;
  seriesDescription: string;
  instanceNumber: number | null;
  transferSyntax: string;
  hasPixels: boolean;
  rows: number;
  columns: number;
  frames: number;
  position: Vector3 | null;
  /** Row then column direction cosines. */
  orientation: [number, number, number, number, number, number] | null;
  /** Frames per second the file suggests for cine, if it says. */
  cineRate: number | null;
}

export const SCHEME = "pacs";

/** The image id of one frame: `pacs:<fileId>` or, for multi-frame files, `…?frame=<n>` (1-based). */
export function imageIdsOf(header: Header): string[] {
  const base = `${SCHEME}:${header.fileId}`;
  if (header.frames <= 1) return [base];
  return Array.from({ length: header.frames }, (_, i) => `${base}?frame=${i + 1}`);
}

export function parseImageId(imageId: string): { fileId: string; frameIndex: number } {
  const match = /^pacs:([^?]+)(?:\?frame=(\d+))?$/.exec(imageId);
  if (match === null) throw new Error(`Not a viewer image id: ${imageId}`);
  return { fileId: match[1]!, frameIndex: match[2] === undefined ? 0 : Number(match[2]) - 1 };
}

// Modalities and SOP classes that carry no pixels the viewer could show, named for the note.
const NON_IMAGE: Record<string, string> = {
  SR: "structured report",
  PR: "presentation state",
  KO: "key object selection",
  RTPLAN: "radiotherapy plan",
  RTSTRUCT: "radiotherapy structure set",
  RTRECORD: "radiotherapy treatment record",
  ECG: "waveform",
  HD: "waveform",
  AU: "audio waveform",
  DOC: "encapsulated document",
  REG: "registration",
  FID: "fiducials",
};

/** The note shown for an instance without pixel data. */
function nonImageNote(header: Header): string {
  const kind = NON_IMAGE[header.modality] ?? "non-image object";
  return `${header.modality || "Instance"} (${kind}): listed, but the viewer does not display it.`;
}

function numbers(value: string | undefined): number[] {
  if (value === undefined) return [];
  return value
    .split("\\")
    .map((part) => Number(part.trim()))
    .filter((n) => Number.isFinite(n));
}

function integer(dataSet: DataSet, tag: string): number | null {
  const raw = dataSet.string(tag);
  if (raw === undefined || raw.trim() === "") return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : null;
}

function summarise(fileId: string, dataSet: DataSet): Header {
  const text = (tag: string): string => dataSet.string(tag)?.trim() ?? "";
  const position = numbers(dataSet.string("x00200032"));
  const orientation = numbers(dataSet.string("x00200037"));
  const frameTime = Number(dataSet.string("x00181063"));
  const cineRate = integer(dataSet, "x00180040");
  const elements = dataSet.elements;
  return {
    fileId,
    sopInstanceUid: text("x00080018"),
    sopClassUid: text("x00080016"),
    modality: text("x00080060").toUpperCase(),
    seriesNumber: integer(dataSet, "x00200011"),
    seriesDescription: text("x0008103e"),
    instanceNumber: integer(dataSet, "x00200013"),
    transferSyntax: text("x00020010") || "1.2.840.10008.1.2",
    hasPixels: elements.x7fe00010 !== undefined || elements.x7fe00008 !== undefined || elements.x7fe00009 !== undefined,
    rows: dataSet.uint16("x00280010") ?? 0,
    columns: dataSet.uint16("x00280011") ?? 0,
    frames: Math.max(1, integer(dataSet, "x00280008") ?? 1),
    position: position.length === 3 ? (position as Vector3) : null,
    orientation: orientation.length === 6 ? (orientation as Header["orientation"]) : null,
    cineRate: cineRate !== null && cineRate > 0 ? cineRate : Number.isFinite(frameTime) && frameTime > 0 ? 1000 / frameTime : null,
  };
}

let parses = 0;

/** dicom-parser through the loader's own entry point, which also inflates deflated files. */
async function parse(bytes: ArrayBuffer): Promise<DataSet> {
  parses += 1;
  // The loader keeps what it parses under a uri until unloaded: a throwaway uri, unloaded at
  // once, makes it a plain parse whose result only this cache holds.
  const uri = `pacs-parse:${parses}`;
  const dataSet = await wadouri.dataSetCacheManager.load(uri, () => Promise.resolve(bytes), uri);
  wadouri.dataSetCacheManager.unload(uri);
  return dataSet;
}

/** The file up to its pixel data: what Cornerstone's metadata needs, a few KB instead of the whole file. */
function headerBytes(bytes: ArrayBuffer, dataSet: DataSet): ArrayBuffer {
  const pixels = dataSet.elements.x7fe00010 ?? dataSet.elements.x7fe00008 ?? dataSet.elements.x7fe00009;
  if (pixels === undefined) return bytes;
  const view = new Uint8Array(bytes);
  const littleTag = [pixels.tag.slice(3, 5), pixels.tag.slice(1, 3), pixels.tag.slice(7, 9), pixels.tag.slice(5, 7)];
  const bigTag = [pixels.tag.slice(1, 3), pixels.tag.slice(3, 5), pixels.tag.slice(5, 7), pixels.tag.slice(7, 9)];
  // The element header is 12 bytes in explicit VR (tag, VR, reserved, 32-bit length) and 8 in
  // implicit VR; the tag's own bytes confirm which.
  for (const size of [12, 8]) {
    const start = pixels.dataOffset - size;
    if (start < 0) continue;
    const tag = Array.from(view.subarray(start, start + 4), (b) => b.toString(16).padStart(2, "0"));
    const matches = (expected: string[]): boolean => expected.every((part, i) => part === tag[i]);
    if (matches(littleTag) || matches(bigTag)) return bytes.slice(0, start);
  }
  return bytes;
}

const DEFLATED = "1.2.840.10008.1.2.1.99";

/** Give Cornerstone's metadata the file's header, without its pixel data. */
async function registerMetadata(imageId: string, bytes: ArrayBuffer, dataSet: DataSet, transferSyntax: string): Promise<void> {
  if (transferSyntax !== DEFLATED) {
    await metadataUtilities.addDicomPart10Instance(imageId, headerBytes(bytes, dataSet));
    return;
  }
  // Cornerstone's streaming Part 10 reader does not inflate deflated files; dcmjs's whole-file
  // reader does, and its result is the DICOM JSON model Cornerstone also accepts.
  const message = dcmjs.data.DicomMessage.readFile(bytes, { untilTag: "7FE00010", includeUntilTagValue: false, ignoreErrors: true });
  await metadataUtilities.addDicomWebInstance(imageId, { ...message.meta, ...message.dict });
}

export interface LoadedFile {
  header: Header;
  dataSet: DataSet;
}

export class Instances {
  readonly byFileId = new Map<string, StudyInstance>();
  private readonly headers = new Map<string, Header>();
  private readonly registering = new Map<string, Promise<Header>>();
  // Parsed forms live exactly as long as the cached bytes they view.
  private readonly parsed = new WeakMap<ArrayBuffer, Promise<DataSet>>();
  private readonly listeners = new Set<(header: Header) => void>();

  constructor(
    private readonly files: FileCache,
    instances: StudyInstance[],
  ) {
    for (const instance of instances) this.byFileId.set(instance.fileId, instance);
  }

  header(fileId: string): Header | undefined {
    return this.headers.get(fileId);
  }

  onHeader(listener: (header: Header) => void): void {
    this.listeners.add(listener);
  }

  /** The file parsed, reading it from the source first if the cache does not hold it. */
  async load(fileId: string, priority: ReadPriority): Promise<LoadedFile> {
    const bytes = await this.files.get(fileId, priority);
    let dataSet = this.parsed.get(bytes);
    if (dataSet === undefined) {
      dataSet = parse(bytes);
      this.parsed.set(bytes, dataSet);
    }
    let parsed: DataSet;
    try {
      parsed = await dataSet;
    } catch (error) {
      throw new Error(`${this.describe(fileId)} is not a readable DICOM file: ${messageOf(error)}`);
    }
    const header = await this.register(fileId, bytes, parsed);
    return { header, dataSet: parsed };
  }

  private register(fileId: string, bytes: ArrayBuffer, dataSet: DataSet): Promise<Header> {
    let registered = this.registering.get(fileId);
    if (registered === undefined) {
      registered = (async () => {
        const header = summarise(fileId, dataSet);
        await registerMetadata(`${SCHEME}:${fileId}`, bytes, dataSet, header.transferSyntax);
        this.headers.set(fileId, header);
        for (const listener of this.listeners) listener(header);
        return header;
      })();
      this.registering.set(fileId, registered);
      registered.catch(() => this.registering.delete(fileId));
    }
    return registered;
  }

  /** Why this file's pixels cannot be shown, or null when they can be decoded. */
  undecodable(header: Header): string | null {
    if (!header.hasPixels) return nonImageNote(header);
    if (!isSupportedTransferSyntax(header.transferSyntax)) return unsupportedReason(header.transferSyntax);
    return null;
  }

  /** How a message names an instance: its number if known, always its SOP Instance UID. */
  describe(fileId: string): string {
    const header = this.headers.get(fileId);
    const uid = header?.sopInstanceUid || this.byFileId.get(fileId)?.instanceUid || fileId;
    const number = header?.instanceNumber;
    return number === null || number === undefined ? `Instance ${uid}` : `Instance ${number} (SOP Instance UID ${uid})`;
  }
}

export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  // The DICOM image loader rejects with {error, dataSet} objects rather than Errors.
  if (typeof error === "object" && error !== null && "error" in error) return messageOf((error as { error: unknown }).error);
  return String(error);
}
