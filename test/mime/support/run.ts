// Runs a message through transformMessage and collects the output.
import { Readable } from 'node:stream';
import { transformMessage } from '../../../appliance/src/mime';
import type { BodyInsertion, Edit, MessageFacts, TransformReport } from '../../../appliance/src/mime';

export interface RunResult {
  output: Buffer;
  report: TransformReport;
  facts?: MessageFacts;
}

export async function runSurgery(
  input: Buffer,
  edit: Edit | ((facts: MessageFacts) => Edit),
  maxEditablePartBytes = 1024 * 1024,
  chunkSize = 65536,
): Promise<RunResult> {
  let seen: MessageFacts | undefined;
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunkSize) chunks.push(input.subarray(i, i + chunkSize));
  const handle = transformMessage(
    Readable.from(chunks),
    (facts) => {
      seen = facts;
      return typeof edit === 'function' ? edit(facts) : edit;
    },
    { maxEditablePartBytes },
  );
  const out: Buffer[] = [];
  for await (const c of handle.output) out.push(c as Buffer);
  const report = await handle.report;
  return { output: Buffer.concat(out), report, facts: seen };
}

export const MARK_HTML_START = '<div class="sig-mark">SIGNET-HTML-START';
export const MARK_HTML_END = 'SIGNET-HTML-END</div>';
export const MARK_TEXT_START = 'SIGNET-TEXT-START';
export const MARK_TEXT_END = 'SIGNET-TEXT-END';

export function markerBody(extra: Partial<BodyInsertion> = {}): BodyInsertion {
  return {
    html: `${MARK_HTML_START}<br>Jane Doe | Acme Ltd${MARK_HTML_END}`,
    text: `${MARK_TEXT_START}\nJane Doe | Acme Ltd\n${MARK_TEXT_END}`,
    topHtml: '',
    topText: '',
    placeholder: '{{signature}}',
    images: [],
    ...extra,
  };
}

export function markerEdit(extra: Partial<BodyInsertion> = {}): Edit {
  return {
    addHeaders: [['X-Signet-Processed', 'org=acme; rule=default; template=std; engine=test']],
    removeHeaders: ['DKIM-Signature'],
    body: markerBody(extra),
  };
}

export const markerSnippets = {
  html: [{ start: MARK_HTML_START, end: MARK_HTML_END }],
  text: [{ start: MARK_TEXT_START, end: MARK_TEXT_END }],
};
