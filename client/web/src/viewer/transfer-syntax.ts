// Which transfer syntaxes the viewer decodes: those the Cornerstone DICOM image loader 5.14 has a
// decoder for (its decodeImageFrame switch). Any other is named in the viewport's message
// instead of failing somewhere inside a decoder.

const SUPPORTED: Record<string, string> = {
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
  "1.2.840.10008.1.2.1.98": "Encapsulated Uncompressed Explicit VR Little Endian",
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
  "1.2.840.10008.1.2.5": "RLE Lossless",
  "1.2.840.10008.1.2.8.1": "Encapsulated Uncompressed (deflate image frame)",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline",
  "1.2.840.10008.1.2.4.51": "JPEG Extended",
  "1.2.840.10008.1.2.4.53": "JPEG Spectral Selection",
  "1.2.840.10008.1.2.4.55": "JPEG Full Progression",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
  "1.2.840.10008.1.2.4.91": "JPEG 2000",
  "3.2.840.10008.1.2.4.96": "HTJ2K (pre-standard)",
  "1.2.840.10008.1.2.4.201": "HTJ2K Lossless",
  "1.2.840.10008.1.2.4.202": "HTJ2K Lossless RPCL",
  "1.2.840.10008.1.2.4.203": "HTJ2K",
  "1.2.840.10008.1.2.4.110": "JPEG XL Lossless",
  "1.2.840.10008.1.2.4.111": "JPEG XL JPEG Recompression",
  "1.2.840.10008.1.2.4.112": "JPEG XL",
};

// Names for the syntaxes people meet that the viewer does not decode, so the message says what
// the file is rather than only a number.
const UNSUPPORTED: Record<string, string> = {
  "1.2.840.10008.1.2.4.52": "JPEG Extended (Process 3 and 5)",
  "1.2.840.10008.1.2.4.92": "JPEG 2000 Part 2 Multi-component Lossless",
  "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 Multi-component",
  "1.2.840.10008.1.2.4.94": "JPIP Referenced",
  "1.2.840.10008.1.2.4.95": "JPIP Referenced Deflate",
  "1.2.840.10008.1.2.4.100": "MPEG2 Main Profile",
  "1.2.840.10008.1.2.4.100.1": "MPEG2 Main Profile (fragmentable)",
  "1.2.840.10008.1.2.4.101": "MPEG2 High Profile",
  "1.2.840.10008.1.2.4.101.1": "MPEG2 High Profile (fragmentable)",
  "1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264",
  "1.2.840.10008.1.2.4.102.1": "MPEG-4 AVC/H.264 (fragmentable)",
  "1.2.840.10008.1.2.4.103": "MPEG-4 AVC/H.264 BD-compatible",
  "1.2.840.10008.1.2.4.103.1": "MPEG-4 AVC/H.264 BD-compatible (fragmentable)",
  "1.2.840.10008.1.2.4.104": "MPEG-4 AVC/H.264 for 2D Video",
  "1.2.840.10008.1.2.4.105": "MPEG-4 AVC/H.264 for 3D Video",
  "1.2.840.10008.1.2.4.106": "MPEG-4 AVC/H.264 Stereo",
  "1.2.840.10008.1.2.4.107": "HEVC/H.265 Main Profile",
  "1.2.840.10008.1.2.4.108": "HEVC/H.265 Main 10 Profile",
  "1.2.840.10008.1.2.6.1": "RFC 2557 MIME encapsulation",
  "1.2.840.10008.1.2.6.2": "XML encoding",
  "1.2.840.10008.1.2.7.1": "SMPTE ST 2110-20 video",
};

export function isSupportedTransferSyntax(uid: string): boolean {
  return uid in SUPPORTED;
}

export function transferSyntaxName(uid: string): string {
  return SUPPORTED[uid] ?? UNSUPPORTED[uid] ?? "unknown";
}

/** Why the viewer cannot show pixels of this syntax, in words for the viewport. */
export function unsupportedReason(uid: string): string {
  return `transfer syntax ${uid} (${transferSyntaxName(uid)}) is not supported by the viewer`;
}
