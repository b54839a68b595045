// Builds hand-made MIME messages for the tests: every byte is chosen here
// (charsets via iconv-lite / encoding-japanese, transfer encodings via
// libqp / libbase64), so each fixture's exact shape is known.
import iconv from 'iconv-lite';
import Encoding from 'encoding-japanese';
import libqp from 'libqp';
import libbase64 from 'libbase64';

export type Cte = '7bit' | '8bit' | 'quoted-printable' | 'base64' | 'none';

export interface LeafSpec {
  type: string;
  /** Decoded content: a string (encoded with `charset`) or raw bytes. */
  content: string | Buffer;
  charset?: string;
  cte?: Cte;
  disposition?: 'attachment' | 'inline';
  filename?: string;
  contentId?: string;
  /** Extra Content-Type parameters, e.g. `format=flowed`. */
  params?: string;
  extraHeaders?: string[];
}

export interface MultipartSpec {
  multipart: string;
  boundary: string;
  parts: PartSpec[];
  preamble?: string;
  epilogue?: string;
  params?: string;
}

export type PartSpec = LeafSpec | MultipartSpec;

export function encodeCharset(text: string, charset: string): Buffer {
  if (/^iso-2022-jp$/i.test(charset)) return Buffer.from(Encoding.convert(Encoding.stringToCode(text), { to: 'JIS', from: 'UNICODE' }));
  return iconv.encode(text, charset);
}

function encodeBody(bytes: Buffer, cte: Cte, eol: string): string {
  if (cte === 'base64') return libbase64.wrap(libbase64.encode(bytes), 76).replace(/\r?\n/g, eol);
  if (cte === 'quoted-printable') return libqp.wrap(libqp.encode(bytes), 76).replace(/=\r\n/g, `=${eol}`);
  return bytes.toString('latin1');
}

function leafHeaders(spec: LeafSpec): string[] {
  const ct = [spec.type, spec.charset ? `charset=${spec.charset}` : '', spec.params ?? '', spec.filename && spec.disposition !== 'inline' ? `name="${spec.filename}"` : '']
    .filter(Boolean)
    .join('; ');
  const lines = [`Content-Type: ${ct}`];
  if (spec.cte && spec.cte !== 'none') lines.push(`Content-Transfer-Encoding: ${spec.cte}`);
  if (spec.contentId) lines.push(`Content-ID: <${spec.contentId}>`);
  if (spec.disposition) lines.push(`Content-Disposition: ${spec.disposition}${spec.filename ? `; filename="${spec.filename}"` : ''}`);
  return [...lines, ...(spec.extraHeaders ?? [])];
}

/** Renders a part (headers + body) as a latin1 string; `top` headers go first for the message itself. */
export function renderPart(spec: PartSpec, eol: string, top: string[] = []): string {
  if ('multipart' in spec) {
    const headers = [...top, `Content-Type: multipart/${spec.multipart}; boundary="${spec.boundary}"${spec.params ? `; ${spec.params}` : ''}`];
    let out = headers.join(eol) + eol + eol;
    if (spec.preamble !== undefined) out += spec.preamble + eol;
    for (const p of spec.parts) out += `--${spec.boundary}${eol}${renderPart(p, eol)}${eol}`;
    out += `--${spec.boundary}--${eol}`;
    if (spec.epilogue !== undefined) out += spec.epilogue;
    return out;
  }
  const bytes = typeof spec.content === 'string' ? (spec.charset ? encodeCharset(spec.content.replace(/\n/g, eol), spec.charset) : Buffer.from(spec.content.replace(/\n/g, eol), 'utf8')) : spec.content;
  return [...top, ...leafHeaders(spec)].join(eol) + eol + eol + encodeBody(bytes, spec.cte ?? '7bit', eol);
}

export interface MessageSpec {
  eol?: '\r\n' | '\n';
  headers?: string[];
  mbox?: string;
  body: PartSpec;
}

export const DEFAULT_HEADERS = [
  'DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=sel;',
  '\tbh=abc; b=def',
  'From: Jane Doe <jane@example.com>',
  'To: bob@example.net',
  'Subject: Quarterly report',
  'Date: Mon, 23 Nov 2026 10:00:00 +0000',
  'Message-ID: <m1@example.com>',
  'MIME-Version: 1.0',
];

export function buildMessage(spec: MessageSpec): Buffer {
  const eol = spec.eol ?? '\r\n';
  const head = spec.headers ?? DEFAULT_HEADERS;
  const text = (spec.mbox ? spec.mbox + eol : '') + renderPart(spec.body, eol, head);
  return Buffer.from(text, 'latin1');
}

export const html = (content: string, extra: Partial<LeafSpec> = {}): LeafSpec => ({ type: 'text/html', charset: 'utf-8', cte: 'quoted-printable', content, ...extra });
export const text = (content: string, extra: Partial<LeafSpec> = {}): LeafSpec => ({ type: 'text/plain', charset: 'utf-8', cte: 'quoted-printable', content, ...extra });
export const attachment = (filename: string, data: Buffer, type = 'application/pdf'): LeafSpec => ({ type, content: data, cte: 'base64', disposition: 'attachment', filename });
export const multipart = (kind: string, boundary: string, parts: PartSpec[], extra: Partial<MultipartSpec> = {}): MultipartSpec => ({ multipart: kind, boundary, parts, ...extra });
