// A zip of stored (uncompressed) files, written as a stream whose exact length is known before
// the first byte (PKWARE APPNOTE 6.3.10): each file's local header, its bytes as they come, and
// a data descriptor with its CRC-32; then the central directory. Zip64 records are written
// only where a size, an offset or the number of files needs them, so that every unzip tool
// reads a study of any size. Names are UTF-8 (general purpose flag bit 11).

import { crc32 } from "./crc32";

export interface ZipFile {
  /** The path inside the zip, with "/" between folders. */
  name: string;
  /** The exact number of bytes `input` gives; the writer stops with an error otherwise. */
  size: number;
  input: AsyncIterable<Uint8Array>;
  /** This file begins a run of files whose entries the source writes itself. */
  run?: FramedRun;
}

/** What comes before and after a file's bytes in the zip (see `zipFrames`). */
export interface ZipFrame {
  /** The local header. */
  head: Uint8Array;
  /** The data descriptor, its CRC-32 (bytes 4 to 7, little-endian) left 0. */
  tail: Uint8Array;
}

/**
 * A run of consecutive files whose entries the source writes itself, in one buffer: each file's
 * `head` from `zipFrames`, its bytes, then its `tail` with the file's CRC-32 in bytes 4 to 7.
 * The download's worker does this as it decrypts a group of files, which spares the page and
 * the service worker three pieces per file.
 */
export interface FramedRun {
  /** How many files the run holds: the one it is given with and the ones after it. */
  count: number;
  /** The run's entries and each file's CRC-32, or null: the run's files are then read one by one. */
  read(): Promise<{ bytes: Uint8Array; crc32s: number[] } | null>;
}

export class ZipSizeMismatch extends Error {
  constructor(readonly file: string) {
    super(`${file} is not the size announced for it.`);
  }
}

/** A framed run that is not what the writer would have written (its source is at fault). */
export class ZipRunMismatch extends Error {
  constructor(readonly file: string) {
    super(`The files from ${file} on did not come as the zip needs them.`);
  }
}

/** Where the 32- and 16-bit fields overflow into zip64 (lowered only by the format's tests). */
export interface ZipLimits {
  u32: number;
  u16: number;
}

const LIMITS: ZipLimits = { u32: 0xffffffff, u16: 0xffff };

const LOCAL_HEADER = 30;
const CENTRAL_HEADER = 46;
const DESCRIPTOR = 16;
const DESCRIPTOR_64 = 24;
const ZIP64_LOCAL_EXTRA = 20; // tag, length, two 8-byte sizes
const END = 22;
const END_64 = 56;
const LOCATOR_64 = 20;
// Stored, data descriptor follows (bit 3), UTF-8 names (bit 11).
const FLAGS = 0x0808;
// Made by Unix (so that the mode below is honoured), spec version 4.5.
const MADE_BY = (3 << 8) | 45;
const FILE_MODE = 0o100644;

const encoder = new TextEncoder();

interface Planned {
  name: Uint8Array;
  size: number;
  offset: number;
  /** The sizes need 8 bytes (local zip64 extra and a 24-byte descriptor). */
  big: boolean;
}

function plan(files: readonly { name: string; size: number }[], limits: ZipLimits): { entries: Planned[]; directory: number; length: number } {
  const entries: Planned[] = [];
  let offset = 0;
  for (const file of files) {
    const name = encoder.encode(file.name);
    if (name.byteLength > 0xffff) throw new RangeError(`The name ${file.name.slice(0, 40)}… is too long for a zip.`);
    const entry = { name, size: file.size, offset, big: file.size >= limits.u32 };
    entries.push(entry);
    offset += entryLength(entry);
  }
  const directory = offset;
  let length = offset;
  for (const entry of entries) length += CENTRAL_HEADER + entry.name.byteLength + centralExtra(entry, limits);
  const directorySize = length - directory;
  if (needsZip64End(entries.length, directory, directorySize, limits)) length += END_64 + LOCATOR_64;
  return { entries, directory, length: length + END };
}

function entryLength(entry: Planned): number {
  return LOCAL_HEADER + entry.name.byteLength + (entry.big ? ZIP64_LOCAL_EXTRA : 0) + entry.size + (entry.big ? DESCRIPTOR_64 : DESCRIPTOR);
}

function centralExtra(entry: Planned, limits: ZipLimits): number {
  const fields = (entry.big ? 2 : 0) + (entry.offset >= limits.u32 ? 1 : 0);
  return fields === 0 ? 0 : 4 + 8 * fields;
}

function needsZip64End(count: number, directory: number, directorySize: number, limits: ZipLimits): boolean {
  return count >= limits.u16 || directory >= limits.u32 || directorySize >= limits.u32;
}

/** The exact length of the zip that `zipStream` writes for these files. */
export function zipLength(files: readonly { name: string; size: number }[], limits: ZipLimits = LIMITS): number {
  return plan(files, limits).length;
}

class Fields {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private at = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u16(value: number): this {
    this.view.setUint16(this.at, value, true);
    this.at += 2;
    return this;
  }

  u32(value: number): this {
    this.view.setUint32(this.at, value >>> 0, true);
    this.at += 4;
    return this;
  }

  u64(value: number): this {
    this.view.setBigUint64(this.at, BigInt(value), true);
    this.at += 8;
    return this;
  }

  raw(bytes: Uint8Array): this {
    this.bytes.set(bytes, this.at);
    this.at += bytes.byteLength;
    return this;
  }
}

/** MS-DOS time and date, in local time as unzip tools show them. */
function dosTime(date: Date): { time: number; date: number } {
  const year = Math.min(Math.max(date.getFullYear(), 1980), 2107);
  return {
    time: (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate(),
  };
}

function localHeader(entry: Planned, time: number, date: number): Uint8Array {
  const out = new Fields(LOCAL_HEADER + entry.name.byteLength + (entry.big ? ZIP64_LOCAL_EXTRA : 0))
    .u32(0x04034b50)
    .u16(entry.big ? 45 : 20)
    .u16(FLAGS)
    .u16(0)
    .u16(time)
    .u16(date)
    .u32(0)
    .u32(entry.big ? 0xffffffff : 0)
    .u32(entry.big ? 0xffffffff : 0)
    .u16(entry.name.byteLength)
    .u16(entry.big ? ZIP64_LOCAL_EXTRA : 0)
    .raw(entry.name);
  // Sizes come in the descriptor; this extra only says that they are 8 bytes there.
  if (entry.big) out.u16(0x0001).u16(16).u64(0).u64(0);
  return out.bytes;
}

function descriptor(entry: Planned, value: number): Uint8Array {
  const out = new Fields(entry.big ? DESCRIPTOR_64 : DESCRIPTOR).u32(0x08074b50).u32(value);
  return (entry.big ? out.u64(entry.size).u64(entry.size) : out.u32(entry.size).u32(entry.size)).bytes;
}

/** Each file's local header and data descriptor as `zipStream` writes them, for framed runs. */
export function zipFrames(files: readonly { name: string; size: number }[], modified: Date, limits: ZipLimits = LIMITS): ZipFrame[] {
  const { time, date } = dosTime(modified);
  return plan(files, limits).entries.map((entry) => ({ head: localHeader(entry, time, date), tail: descriptor(entry, 0) }));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The zip of `files`, in their order, produced as it is read: a file's input is asked for its
 * next piece only when the reader wants more. `modified` is every entry's time.
 */
export function zipStream(files: readonly ZipFile[], modified: Date, limits: ZipLimits = LIMITS): ReadableStream<Uint8Array> {
  const { entries, directory } = plan(files, limits);
  const { time, date } = dosTime(modified);
  const crcs: number[] = [];
  let index = 0;
  let reader: AsyncIterator<Uint8Array> | null = null;
  let read = 0;
  let crc = 0;
  let finished = false;
  // The file whose run the source declined: its files are read one by one.
  let declined = -1;

  const local = (entry: Planned): Uint8Array => localHeader(entry, time, date);

  /**
   * The run's buffer, checked against what this writer would have written around each file
   * (the bytes between are the source's), and its CRCs in their place; null if declined.
   */
  const framedRun = async (first: number, run: FramedRun): Promise<Uint8Array | null> => {
    const members = entries.slice(first, first + run.count);
    const name = files[first]?.name ?? "";
    if (run.count < 1 || members.length !== run.count) throw new ZipRunMismatch(name);
    const framed = await run.read();
    if (framed === null) return null;
    const { bytes, crc32s } = framed;
    if (crc32s.length !== run.count) throw new ZipRunMismatch(name);
    let at = 0;
    for (const [position, entry] of members.entries()) {
      const value = crc32s[position] ?? -1;
      const head = local(entry);
      const tail = descriptor(entry, value);
      const dataAt = at + head.byteLength;
      const tailAt = dataAt + entry.size;
      if (
        !Number.isInteger(value) ||
        value < 0 ||
        value > 0xffffffff ||
        tailAt + tail.byteLength > bytes.byteLength ||
        !sameBytes(bytes.subarray(at, dataAt), head) ||
        !sameBytes(bytes.subarray(tailAt, tailAt + tail.byteLength), tail)
      ) {
        throw new ZipRunMismatch(name);
      }
      at = tailAt + tail.byteLength;
    }
    if (at !== bytes.byteLength) throw new ZipRunMismatch(name);
    crcs.push(...crc32s);
    return bytes;
  };

  const central = (): Uint8Array => {
    const parts: Uint8Array[] = [];
    let directorySize = 0;
    for (const [position, entry] of entries.entries()) {
      const extra = centralExtra(entry, limits);
      const farOffset = entry.offset >= limits.u32;
      const out = new Fields(CENTRAL_HEADER + entry.name.byteLength + extra)
        .u32(0x02014b50)
        .u16(MADE_BY)
        .u16(entry.big || farOffset ? 45 : 20)
        .u16(FLAGS)
        .u16(0)
        .u16(time)
        .u16(date)
        .u32(crcs[position] ?? 0)
        .u32(entry.big ? 0xffffffff : entry.size)
        .u32(entry.big ? 0xffffffff : entry.size)
        .u16(entry.name.byteLength)
        .u16(extra)
        .u16(0)
        .u16(0)
        .u16(0)
        .u32(FILE_MODE << 16)
        .u32(farOffset ? 0xffffffff : entry.offset)
        .raw(entry.name);
      if (extra > 0) {
        out.u16(0x0001).u16(extra - 4);
        // APPNOTE 4.5.3: only the fields whose header value is 0xFFFFFFFF, in this order.
        if (entry.big) out.u64(entry.size).u64(entry.size);
        if (farOffset) out.u64(entry.offset);
      }
      parts.push(out.bytes);
      directorySize += out.bytes.byteLength;
    }
    const count = entries.length;
    if (needsZip64End(count, directory, directorySize, limits)) {
      const end64 = directory + directorySize;
      parts.push(
        new Fields(END_64 + LOCATOR_64)
          .u32(0x06064b50)
          .u64(END_64 - 12)
          .u16(MADE_BY)
          .u16(45)
          .u32(0)
          .u32(0)
          .u64(count)
          .u64(count)
          .u64(directorySize)
          .u64(directory)
          .u32(0x07064b50)
          .u32(0)
          .u64(end64)
          .u32(1).bytes,
      );
    }
    const small = (value: number, limit: number, overflow: number): number => (value >= limit ? overflow : value);
    parts.push(
      new Fields(END)
        .u32(0x06054b50)
        .u16(0)
        .u16(0)
        .u16(small(count, limits.u16, 0xffff))
        .u16(small(count, limits.u16, 0xffff))
        .u32(small(directorySize, limits.u32, 0xffffffff))
        .u32(small(directory, limits.u32, 0xffffffff))
        .u16(0).bytes,
    );
    const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
    let at = 0;
    for (const part of parts) {
      joined.set(part, at);
      at += part.byteLength;
    }
    return joined;
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          if (finished) return;
          const entry = entries[index];
          const file = files[index];
          if (entry === undefined || file === undefined) {
            finished = true;
            controller.enqueue(central());
            controller.close();
            return;
          }
          if (reader === null && file.run !== undefined && declined !== index) {
            const bytes = await framedRun(index, file.run);
            if (finished) return;
            if (bytes !== null) {
              index += file.run.count;
              controller.enqueue(bytes);
              return;
            }
            declined = index;
          }
          if (reader === null) {
            reader = file.input[Symbol.asyncIterator]();
            read = 0;
            crc = 0;
            controller.enqueue(local(entry));
          }
          const next = await reader.next();
          if (!next.done) {
            const piece = next.value;
            read += piece.byteLength;
            if (read > entry.size) throw new ZipSizeMismatch(file.name);
            crc = crc32(piece, crc);
            if (piece.byteLength > 0) {
              controller.enqueue(piece);
              return;
            }
            continue;
          }
          if (read !== entry.size) throw new ZipSizeMismatch(file.name);
          crcs.push(crc);
          controller.enqueue(descriptor(entry, crc));
          reader = null;
          index += 1;
          return;
        }
      },
      cancel(reason) {
        finished = true;
        // Not awaited: a reader waiting for a piece returns only once the piece arrives, and a
        // cancel must end the zip now (the download page stops the source on its own).
        reader?.return?.(reason)?.catch(() => undefined);
      },
    },
    // Pulled one piece at a time: the reader's own queue decides how much is read ahead.
    { highWaterMark: 0 },
  );
}
