// CRC-32 (ISO-HDLC, the zip format's), sixteen bytes per step ("slicing-by-16"): about three
// times the speed of the byte-at-a-time loop, which was the download page's largest cost.

const POLYNOMIAL = 0xedb88320;
const TABLES = new Uint32Array(16 * 256);

for (let byte = 0; byte < 256; byte += 1) {
  let crc = byte;
  for (let bit = 0; bit < 8; bit += 1) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
  TABLES[byte] = crc >>> 0;
}
// Table k maps a byte to its CRC followed by k zero bytes.
for (let table = 1; table < 16; table += 1) {
  for (let byte = 0; byte < 256; byte += 1) {
    const previous = TABLES[(table - 1) * 256 + byte] ?? 0;
    TABLES[table * 256 + byte] = ((previous >>> 8) ^ (TABLES[previous & 0xff] ?? 0)) >>> 0;
  }
}

// Words are read in the platform's byte order; the tables assume little-endian words.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The CRC-32 of `data`, continuing from `crc` (the CRC of what came before it; 0 at first). */
export function crc32(data: Uint8Array, crc = 0): number {
  const t = TABLES;
  let c = ~crc >>> 0;
  let i = 0;
  const end = data.byteLength;
  if (LITTLE_ENDIAN && end >= 32) {
    // Byte by byte up to a 4-byte boundary, so that the rest can be read as whole words.
    for (; ((data.byteOffset + i) & 3) !== 0; i += 1) c = (c >>> 8) ^ t[(c ^ data[i]!) & 0xff]!;
    const words = new Uint32Array(data.buffer, data.byteOffset + i, (end - i) >>> 2);
    const last = words.length - 4;
    let w = 0;
    for (; w <= last; w += 4) {
      const a = words[w]! ^ c;
      const b = words[w + 1]!;
      const d = words[w + 2]!;
      const e = words[w + 3]!;
      c =
        t[3840 + (a & 0xff)]! ^
        t[3584 + ((a >>> 8) & 0xff)]! ^
        t[3328 + ((a >>> 16) & 0xff)]! ^
        t[3072 + (a >>> 24)]! ^
        t[2816 + (b & 0xff)]! ^
        t[2560 + ((b >>> 8) & 0xff)]! ^
        t[2304 + ((b >>> 16) & 0xff)]! ^
        t[2048 + (b >>> 24)]! ^
        t[1792 + (d & 0xff)]! ^
        t[1536 + ((d >>> 8) & 0xff)]! ^
        t[1280 + ((d >>> 16) & 0xff)]! ^
        t[1024 + (d >>> 24)]! ^
        t[768 + (e & 0xff)]! ^
        t[512 + ((e >>> 8) & 0xff)]! ^
        t[256 + ((e >>> 16) & 0xff)]! ^
        t[e >>> 24]!;
    }
    i += w * 4;
  }
  for (; i < end; i += 1) c = (c >>> 8) ^ t[(c ^ data[i]!) & 0xff]!;
  return ~c >>> 0;
}
