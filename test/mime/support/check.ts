// Shared assertions for the MIME surgery tests.
import { simpleParser } from 'mailparser';
import { checkInvariant } from './invariant';
import type { InvariantResult } from './invariant';
import { MARK_HTML_START, MARK_TEXT_START, markerSnippets, runSurgery } from './run';
import type { RunResult } from './run';
import type { Edit, MessageFacts } from '../../../appliance/src/mime';

export interface Checked extends RunResult {
  invariant: InvariantResult;
}

/** Runs the surgery and checks the byte invariant and that each edited part holds its marker exactly once. */
export async function surgeryChecked(input: Buffer, edit: Edit | ((f: MessageFacts) => Edit), max?: number, chunkSize?: number): Promise<Checked> {
  const run = await runSurgery(input, edit, max, chunkSize);
  const applied = run.report.edit;
  const invariant = await checkInvariant(input, run.output, {
    addedHeaders: applied.addHeaders.map(([n]) => n),
    removedHeaders: applied.removeHeaders,
    ...markerSnippets,
    imageCids: applied.body?.images.map((i) => i.cid) ?? [],
    placeholder: applied.body?.placeholder,
  });
  if (invariant.edited.length !== run.report.parts.length) {
    throw new Error(`report says ${run.report.parts.length} parts edited, ${invariant.edited.length} changed`);
  }
  invariant.edited.forEach((e, i) => {
    if (e.contentType !== run.report.parts[i].contentType) throw new Error(`edited part ${i} is ${e.contentType}, report says ${run.report.parts[i].contentType}`);
    const marker = e.contentType === 'text/html' ? MARK_HTML_START : MARK_TEXT_START;
    const count = e.after.split(marker).length - 1;
    if (count !== 1) throw new Error(`marker appears ${count} times in edited ${e.contentType}`);
  });
  return { ...run, invariant };
}

export interface AttachmentSum {
  contentType: string;
  filename?: string;
  checksum: string;
  size: number;
}

/** Attachments as an independent parser (mailparser) sees them, minus the added CID images and possible main text parts. */
export async function attachmentSums(message: Buffer, ignoreCids: string[] = []): Promise<AttachmentSum[]> {
  const parsed = await simpleParser(message, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true, skipImageLinks: true });
  const ignore = new Set(ignoreCids.map((c) => `<${c.replace(/^<|>$/g, '')}>`));
  return parsed.attachments
    .filter((a) => !(a.contentId && ignore.has(a.contentId)))
    .filter((a) => !((a.contentType === 'text/plain' || a.contentType === 'text/html') && !a.filename))
    .map((a) => ({ contentType: a.contentType, filename: a.filename, checksum: a.checksum, size: a.size }));
}

export function lines(buf: Buffer): string[] {
  return buf.toString('latin1').split(/\r?\n/);
}
