// Independent check of the surgery's invariant: split input and output with a
// fresh mailsplit Splitter, drop what the edit is allowed to add (top header
// fields, CID image parts, a new multipart/related wrapper), and compare the
// rest token by token. Edited nodes must be main text parts whose decoded text
// equals the original plus the inserted snippets (found by their start/end
// markers) and line breaks only. This code shares nothing with the surgery.
import { Splitter } from '@zone-eu/mailsplit';
import type { MimeNode } from '@zone-eu/mailsplit';
import { decode as decodeCharset } from 'libmime/lib/charset';
import libqp from 'libqp';
import libbase64 from 'libbase64';
import { Readable } from 'node:stream';

export interface Token {
  type: 'node' | 'body' | 'data';
  bytes: Buffer;
  node?: { contentType: string; encoding: string; charset: string; boundary?: string; cid?: string; root: boolean };
}

export async function tokenize(buf: Buffer): Promise<Token[]> {
  const splitter = new Splitter();
  const tokens: Token[] = [];
  Readable.from([buf]).pipe(splitter);
  for await (const chunk of splitter as AsyncIterable<MimeNode | { type: 'data' | 'body'; value: Buffer }>) {
    if (chunk.type === 'node') {
      const node = chunk;
      const headers = node.headers;
      tokens.push({
        type: 'node',
        bytes: node.getHeaders(),
        node: {
          contentType: String(node.contentType || 'text/plain'),
          encoding: String(node.encoding || ''),
          charset: String(node.charset || ''),
          boundary: node._boundary ? node._boundary.toString('latin1') : undefined,
          cid: headers ? headers.getFirst('content-id').replace(/^<|>$/g, '') || undefined : undefined,
          root: !node.parentNode,
        },
      });
    } else {
      const last = tokens[tokens.length - 1];
      // a body may come in several chunks; one token per run keeps the comparison simple
      if (last && last.type === chunk.type) last.bytes = Buffer.concat([last.bytes, chunk.value]);
      else tokens.push({ type: chunk.type, bytes: Buffer.from(chunk.value) });
    }
  }
  // a leaf without body bytes gets an empty body token, so an edit that gives it one still aligns
  const withBodies: Token[] = [];
  tokens.forEach((t, k) => {
    withBodies.push(t);
    if (t.type === 'node' && !t.node!.contentType.startsWith('multipart/') && tokens[k + 1]?.type !== 'body') {
      withBodies.push({ type: 'body', bytes: Buffer.alloc(0) });
    }
  });
  return withBodies;
}

export interface Field {
  name: string;
  raw: Buffer;
}

export function fields(header: Buffer): { mbox?: Buffer; list: Field[]; rest: Buffer } {
  const text = header.toString('latin1');
  const lines = text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const list: Field[] = [];
  let mbox: Buffer | undefined;
  let i = 0;
  if (lines[0]?.startsWith('From ')) mbox = Buffer.from(lines[i++], 'latin1');
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (line === '\n' || line === '\r\n') break;
    if ((line[0] === ' ' || line[0] === '\t') && list.length) {
      const f = list[list.length - 1];
      f.raw = Buffer.concat([f.raw, Buffer.from(line, 'latin1')]);
    } else list.push({ name: line.slice(0, Math.max(0, line.indexOf(':'))).trim().toLowerCase(), raw: Buffer.from(line, 'latin1') });
  }
  return { mbox, list, rest: Buffer.from(lines.slice(i).join(''), 'latin1') };
}

export function decodeBody(bytes: Buffer, encoding: string, charset: string): string {
  let raw = bytes;
  if (encoding === 'base64') raw = libbase64.decode(bytes.toString('latin1'));
  else if (encoding === 'quoted-printable') raw = libqp.decode(bytes.toString('latin1'));
  // Readers disagree on 8-bit bytes under no label or an ASCII one; the engine reads them as UTF-8
  // when they are valid UTF-8 (and relabels the part), so its edit is checked against that reading.
  const label = charset.trim().toLowerCase();
  if ((!label || label === 'us-ascii' || label === 'ascii') && raw.some((b) => b > 0x7f)) {
    const text = raw.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(raw)) return text;
  }
  return decodeCharset(raw, charset || 'us-ascii');
}

export interface Snippet {
  /** Text that starts the inserted snippet in the decoded part. */
  start: string;
  /** Text that ends it. */
  end: string;
}

export interface InvariantOptions {
  addedHeaders: string[];
  removedHeaders: string[];
  /** Markers of the snippets inserted into each kind of part. */
  html: Snippet[];
  text: Snippet[];
  imageCids: string[];
  placeholder?: string;
}

export interface InvariantResult {
  edited: Array<{ contentType: string; before: string; after: string }>;
}

function fail(message: string): never {
  throw new Error(`invariant: ${message}`);
}

/**
 * The text without the inserted snippets. `closer` (HTML: `</a>`) is an end
 * tag the edit may put right in front of a snippet (a link the sender left
 * open ends there): every way of taking such end tags off with the snippet is
 * returned, the caller accepts the message if one of them is the original.
 */
function removeSpans(text: string, snippets: Snippet[], where: string, closer?: string): string[] {
  let outs = [text];
  for (const s of snippets) {
    outs = outs.flatMap((out) => {
      const a = out.indexOf(s.start);
      if (a < 0) fail(`${where}: snippet starting ${JSON.stringify(s.start)} not found`);
      const b = out.indexOf(s.end, a + s.start.length);
      if (b < 0) fail(`${where}: snippet end ${JSON.stringify(s.end)} not found`);
      let head = out.slice(0, a);
      const tail = out.slice(b + s.end.length);
      if ((head + tail).includes(s.start)) fail(`${where}: snippet ${JSON.stringify(s.start)} inserted more than once`);
      const variants = [head + tail];
      while (closer && head.endsWith(closer)) {
        head = head.slice(0, -closer.length);
        variants.push(head + tail);
      }
      return variants;
    });
  }
  return outs;
}

/** Where `after` stops being `before` with only line breaks (CRLF/LF) added, or undefined when it is. */
function lineBreakDifference(before: string, after: string): string | undefined {
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    if (i < before.length && j < after.length && before[i] === after[j]) {
      i++;
      j++;
      continue;
    }
    if (after[j] === '\n') j++;
    else if (after[j] === '\r' && after[j + 1] === '\n') j += 2;
    else return `${i}/${j}: ${JSON.stringify(before.slice(i, i + 40))} vs ${JSON.stringify(after.slice(j, j + 40))}`;
  }
  return undefined;
}

/** One of `candidates` must equal `before` with only line breaks added. */
function equalUpToLineBreaks(before: string, candidates: string[], where: string): void {
  const differences = candidates.map((after) => lineBreakDifference(before, after));
  if (differences.some((d) => d === undefined)) return;
  fail(`${where}: decoded text differs beyond the inserted snippets at ${differences[0]}`);
}

function partition(list: Field[]): Field[] {
  return [...list.filter((f) => !f.name.startsWith('content-')), ...list.filter((f) => f.name.startsWith('content-'))];
}

function sameFields(a: Field[], b: Field[], where: string): void {
  if (a.length !== b.length) fail(`${where}: ${a.length} fields vs ${b.length}: ${a.map((f) => f.name)} / ${b.map((f) => f.name)}`);
  a.forEach((f, k) => {
    if (!f.raw.equals(b[k].raw)) fail(`${where}: field ${k} differs: ${JSON.stringify(f.raw.toString('latin1'))} vs ${JSON.stringify(b[k].raw.toString('latin1'))}`);
  });
}

const CT_CTE = new Set(['content-type', 'content-transfer-encoding']);

export async function checkInvariant(input: Buffer, output: Buffer, opts: InvariantOptions): Promise<InvariantResult> {
  const tin = await tokenize(input);
  const tout = await tokenize(output);
  const inputText = input.toString('latin1');
  const cids = new Set(opts.imageCids.map((c) => c.replace(/^<|>$/g, '')));

  // 1. synthetic multipart/related wrappers: boundaries that do not occur in the input
  // (as written, or as the splitter reads a folded parameter back: "a--Type:\r\n\tb" is "a--Type: b")
  const inputBoundaries = new Set(tin.map((t) => t.node?.boundary).filter((b) => b !== undefined));
  const wrappers = new Set<string>();
  for (const t of tout) {
    const b = t.node?.boundary;
    if (t.node?.contentType === 'multipart/related' && b && !inputText.includes(b) && !inputBoundaries.has(b)) wrappers.add(b);
  }
  const delimiter = (b: string): RegExp => new RegExp(`(?:\\r?\\n)?--${b.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--|[ \\t]*\\r?\\n)`, 'g');

  // 2. drop what the edit may add
  const kept: Token[] = [];
  let wrappedRoot: Token | undefined;
  for (let k = 0; k < tout.length; k++) {
    const t = tout[k];
    if (t.type === 'node' && t.node?.cid && cids.has(t.node.cid) && !inputText.includes(t.bytes.toString('latin1'))) {
      // an added image: drop it, its body, and the delimiter line that opened it
      const prev = kept[kept.length - 1];
      if (prev?.type === 'data') prev.bytes = Buffer.from(prev.bytes.toString('latin1').replace(/(?:\r?\n)?--[^\r\n]*\r?\n$/, ''), 'latin1');
      if (tout[k + 1]?.type === 'body') k++;
      continue;
    }
    if (t.type === 'node' && t.node?.boundary && wrappers.has(t.node.boundary)) {
      if (t.node.root) wrappedRoot = t;
      continue;
    }
    if (t.type === 'data') {
      let text = t.bytes.toString('latin1');
      for (const b of wrappers) text = text.replace(delimiter(b), '');
      // a wrapped message ends with the new closing delimiter's line ending
      if (wrappedRoot && k === tout.length - 1 && /^\r?\n$/.test(text)) text = '';
      if (!text.length) continue;
      const prev = kept[kept.length - 1];
      if (prev?.type === 'data') {
        prev.bytes = Buffer.concat([prev.bytes, Buffer.from(text, 'latin1')]);
        continue;
      }
      kept.push({ ...t, bytes: Buffer.from(text, 'latin1') });
      continue;
    }
    kept.push({ ...t });
  }
  // input data tokens are merged the same way
  const base: Token[] = [];
  for (const t of tin) {
    const prev = base[base.length - 1];
    if (t.type === 'data' && prev?.type === 'data') prev.bytes = Buffer.concat([prev.bytes, t.bytes]);
    else base.push({ ...t });
  }

  if (kept.length !== base.length) {
    fail(`token count ${base.length} in input vs ${kept.length} in output: ${base.map((t) => t.type)} / ${kept.map((t) => t.type)}`);
  }

  const result: InvariantResult = { edited: [] };
  for (let k = 0; k < base.length; k++) {
    const a = base[k];
    const b = kept[k];
    if (a.type !== b.type) fail(`token ${k}: ${a.type} vs ${b.type}`);
    if (a.type === 'data') {
      if (!a.bytes.equals(b.bytes)) fail(`data token ${k} differs: ${JSON.stringify(a.bytes.toString('latin1').slice(0, 200))} vs ${JSON.stringify(b.bytes.toString('latin1').slice(0, 200))}`);
      continue;
    }
    if (a.type === 'node') {
      const bodyA = base[k + 1]?.type === 'body' ? base[k + 1] : undefined;
      const bodyB = kept[k + 1]?.type === 'body' ? kept[k + 1] : undefined;
      const edited = !!bodyA && !!bodyB && !bodyA.bytes.equals(bodyB.bytes);
      if (!!bodyA !== !!bodyB) fail(`node ${k}: body present on one side only`);
      const fa = fields(a.bytes);
      let fb = fields(b.bytes);
      if (a.node!.root) {
        if (wrappedRoot) {
          const outer = fields(wrappedRoot.bytes);
          fb = { mbox: outer.mbox, list: [...outer.list, ...fb.list], rest: outer.rest };
        }
        // indented lines that open a malformed block stay first; added fields follow them
        let lead = 0;
        while (lead < fa.list.length && /^[ \t]/.test(fa.list[lead].raw.toString('latin1'))) lead++;
        // A message that is only an mbox From line and such indented lines, its last line unterminated
        // (truncated): the stamp that follows needs a line end there, and gets the only one it can.
        if (lead === fa.list.length && !fa.rest.length) {
          const last = lead > 0 ? fa.list[lead - 1].raw : fa.mbox;
          if (last && last[last.length - 1] !== 0x0a) {
            const inB = lead > 0 ? fb.list[lead - 1] : undefined;
            if (inB) inB.raw = Buffer.from(inB.raw.toString('latin1').replace(/\r?\n$/, ''), 'latin1');
            else if (fb.mbox) fb.mbox = Buffer.from(fb.mbox.toString('latin1').replace(/\r?\n$/, ''), 'latin1');
          }
        }
        if (String(fa.mbox ?? '') !== String(fb.mbox ?? '')) fail('mbox From line changed');
        sameFields(fa.list.slice(0, lead), fb.list.slice(0, lead), 'leading indented lines');
        fa.list = fa.list.slice(lead);
        fb.list = fb.list.slice(lead);
        const added = fb.list.slice(0, opts.addedHeaders.length);
        added.forEach((f, n) => {
          if (f.name !== opts.addedHeaders[n].toLowerCase()) fail(`added header ${n} is ${f.name}`);
        });
        const removed = new Set(opts.removedHeaders.map((h) => h.toLowerCase()));
        let restA = fa.list.filter((f) => !removed.has(f.name));
        let restB = fb.list.slice(opts.addedHeaders.length);
        if (restB.some((f) => removed.has(f.name))) fail('a removed header is still there');
        if (edited || wrappedRoot) {
          restA = partition(restA.filter((f) => !CT_CTE.has(f.name)));
          restB = partition(restB.filter((f) => !CT_CTE.has(f.name)));
          // a message that was not MIME gets MIME-Version with the Content-* fields written for it
          if (!restA.some((f) => f.name === 'mime-version')) {
            const added = restB.filter((f) => f.name === 'mime-version');
            if (added.length > 1 || added.some((f) => !/^MIME-Version: 1\.0\r?\n$/.test(f.raw.toString('latin1')))) fail('bad MIME-Version added');
            restB = restB.filter((f) => f.name !== 'mime-version');
          }
        }
        sameFields(restA, restB, 'top header');
        if (!edited && !wrappedRoot && !fa.rest.equals(fb.rest)) fail('header/body separator changed');
      } else if (edited) {
        sameFields(
          fa.list.filter((f) => !CT_CTE.has(f.name)),
          fb.list.filter((f) => !CT_CTE.has(f.name)),
          `edited part ${k} header`,
        );
      } else if (!a.bytes.equals(b.bytes)) {
        fail(`header of node ${k} (${a.node!.contentType}) differs`);
      }
      if (edited) {
        const ct = a.node!.contentType;
        if (ct !== 'text/html' && ct !== 'text/plain') fail(`a ${ct} part was changed`);
        const before = decodeBody(bodyA!.bytes, a.node!.encoding, a.node!.charset);
        const after = decodeBody(bodyB!.bytes, b.node!.encoding, b.node!.charset);
        const html = ct === 'text/html';
        const stripped = removeSpans(after, html ? opts.html : opts.text, `${ct} part ${k}`, html ? '</a>' : undefined);
        const placeholder = opts.placeholder;
        const original = placeholder ? before.split(placeholder).join('') : before;
        equalUpToLineBreaks(original, placeholder ? stripped.map((t) => t.split(placeholder).join('')) : stripped, `${ct} part ${k}`);
        result.edited.push({ contentType: ct, before, after });
        // a line break added at the end of an edited body is read as the next delimiter's
        const nextA = base[k + 2];
        const nextB = kept[k + 2];
        if (nextA?.type === 'data' && nextB?.type === 'data' && !nextA.bytes.equals(nextB.bytes)) {
          const stripped = nextB.bytes.toString('latin1').replace(/^\r?\n/, '');
          if (stripped === nextA.bytes.toString('latin1')) nextB.bytes = nextA.bytes;
        }
        k++;
      }
      continue;
    }
    if (!a.bytes.equals(b.bytes)) fail(`body token ${k} differs`);
  }
  return result;
}
