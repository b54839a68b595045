// Image types a signature may carry, recognised by their leading bytes (the
// file name can lie). PNG, JPEG and GIF display in every mail client; SVG is
// refused because clients block it and it can carry script.

export type ImageType = 'image/png' | 'image/jpeg' | 'image/gif';

export const ALLOWED_IMAGE_TYPES: readonly ImageType[] = ['image/png', 'image/jpeg', 'image/gif'];

const EXTENSIONS: Record<ImageType, readonly string[]> = {
  'image/png': ['.png'],
  'image/jpeg': ['.jpg', '.jpeg'],
  'image/gif': ['.gif'],
};

export function sniffImageType(data: Buffer): ImageType | undefined {
  if (data.length >= 8 && data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    return 'image/png';
  }
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'image/jpeg';
  if (data.length >= 6 && /^GIF8[79]a$/.test(data.subarray(0, 6).toString('latin1'))) return 'image/gif';
  return undefined;
}

/** The content type a file name suggests, when it is one of the allowed ones. */
export function imageTypeFromName(name: string): ImageType | undefined {
  const lower = name.toLowerCase();
  return ALLOWED_IMAGE_TYPES.find((type) => EXTENSIONS[type].some((ext) => lower.endsWith(ext)));
}

/** What the leading bytes look like, for an error message about a refused file. */
export function describeContent(data: Buffer): string {
  const head = data.subarray(0, 256).toString('latin1').trimStart().toLowerCase();
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'SVG';
  if (data.length >= 4 && data.subarray(0, 4).toString('latin1') === 'RIFF') return 'RIFF (WebP?)';
  if (data.length >= 2 && data.subarray(0, 2).toString('latin1') === 'BM') return 'BMP';
  if (data.length >= 12 && data.subarray(4, 12).toString('latin1').startsWith('ftyp')) return 'HEIF/AVIF';
  return 'an unrecognised format';
}
