// CID image parts added next to the edited HTML part.
import { randomUUID } from 'node:crypto';
import libmime from 'libmime';
import { encodeBase64 } from './codec';
import { formatField } from './header-block';
import type { InlineImage } from './types';

/**
 * A boundary no existing part can contain (122 random bits), with the `=_` that
 * cannot occur in base64 or QP lines. randomUUID draws from a cached entropy
 * pool instead of asking the system for every message.
 */
export function freshBoundary(): string {
  return `----=_Signet_${randomUUID().replace(/-/g, '')}`;
}

// The same few images (a logo, a banner) go into every signed message of a
// config version: encode each once per line ending, keyed by the image's bytes.
const encodedParts = new WeakMap<Buffer, Map<string, Buffer>>();

/** Header block + base64 body of one image part (no delimiter, no trailing line ending). */
function imagePart(image: InlineImage, eol: string): Buffer {
  const key = `${eol}\0${image.cid}\0${image.contentType}\0${image.filename}`;
  let byKey = encodedParts.get(image.data);
  if (!byKey) encodedParts.set(image.data, (byKey = new Map()));
  let part = byKey.get(key);
  if (!part) byKey.set(key, (part = encodeImagePart(image, eol)));
  return part;
}

function encodeImagePart(image: InlineImage, eol: string): Buffer {
  const cid = image.cid.replace(/^<|>$/g, '');
  const fields = [
    formatField('Content-Type', libmime.buildHeaderValue({ value: image.contentType.toLowerCase(), params: { name: image.filename } }), eol),
    formatField('Content-Transfer-Encoding', 'base64', eol),
    formatField('Content-ID', `<${cid}>`, eol),
    formatField('Content-Disposition', libmime.buildHeaderValue({ value: 'inline', params: { filename: image.filename } }), eol),
  ];
  return Buffer.concat([...fields, Buffer.from(eol, 'latin1'), encodeBase64(image.data, eol, 76)]);
}

/**
 * Image parts to append right after the body of a part of the multipart
 * `boundary`: each is `EOL--boundary EOL part` (the line ending in front of a
 * delimiter belongs to the delimiter).
 */
export function imagePartsAfterBody(boundary: string, images: InlineImage[], eol: string): Buffer {
  return Buffer.concat(images.flatMap((img) => [Buffer.from(`${eol}--${boundary}${eol}`, 'latin1'), imagePart(img, eol)]));
}

/** Image parts to insert at the start of an existing delimiter line of `boundary`: each is `--boundary EOL part EOL`. */
export function imagePartsBeforeDelimiter(boundary: string, images: InlineImage[], eol: string): Buffer {
  return Buffer.concat(
    images.flatMap((img) => [Buffer.from(`--${boundary}${eol}`, 'latin1'), imagePart(img, eol), Buffer.from(eol, 'latin1')]),
  );
}

/**
 * Offset of a delimiter line (`--boundary`, `--boundary--`) of `boundary` in `buf` that starts a line, or -1.
 * As in RFC 2046 5.1.1 (and mailsplit): after the boundary only `--`, then whitespace and the line
 * ending may follow, so the delimiter of `b` is not mistaken in `--b-alt`, a longer boundary's line.
 */
export function findDelimiter(buf: Buffer, boundary: string, atLineStart: boolean): number {
  const needle = Buffer.from(`--${boundary}`, 'latin1');
  let from = 0;
  for (;;) {
    const idx = buf.indexOf(needle, from);
    if (idx < 0) return -1;
    const lineStart = idx === 0 ? atLineStart : buf[idx - 1] === 0x0a || buf[idx - 1] === 0x0d;
    let i = idx + needle.length;
    if (buf[i] === 0x2d && buf[i + 1] === 0x2d) i += 2;
    while (buf[i] === 0x20 || buf[i] === 0x09) i++;
    const next = buf[i];
    if (lineStart && (next === undefined || next === 0x0d || next === 0x0a)) return idx;
    from = idx + 1;
  }
}
