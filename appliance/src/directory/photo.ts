// User photos from either directory source: the bytes decide the type (a
// Content-Type from Graph or a file's extension is not trusted), and the size
// is bounded, because every photo is held in memory and goes into every
// message its user signs.
import type { PhotoType, UserPhoto } from './types';

/** A photo larger than this is not used (Graph's 96x96 JPEGs are 2–10 KB). */
export const MAX_PHOTO_BYTES = 100 * 1024;

const SIGNATURES: ReadonlyArray<[PhotoType, Buffer]> = [
  ['image/jpeg', Buffer.from([0xff, 0xd8, 0xff])],
  ['image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
  ['image/gif', Buffer.from('GIF87a', 'latin1')],
  ['image/gif', Buffer.from('GIF89a', 'latin1')],
];

/** Why a photo of this many bytes is not used, or undefined: also asked before reading a file. */
export function photoSizeProblem(bytes: number): string | undefined {
  if (bytes === 0) return 'the photo is empty';
  if (bytes > MAX_PHOTO_BYTES) return `the photo has ${bytes} bytes, more than ${MAX_PHOTO_BYTES}`;
  return undefined;
}

/** The photo, or why it cannot be one (for a log line or a config error). */
export function readPhoto(data: Buffer): UserPhoto | { refused: string } {
  const size = photoSizeProblem(data.length);
  if (size) return { refused: size };
  const match = SIGNATURES.find(([, magic]) => data.length > magic.length && data.subarray(0, magic.length).equals(magic));
  if (!match) return { refused: 'the photo is not a JPEG, PNG or GIF image' };
  return Object.freeze({ data, contentType: match[0] });
}
