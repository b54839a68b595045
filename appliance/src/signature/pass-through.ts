// The engine behind the relay's `passThrough` switch: no rules, no templates,
// no MIME surgery — every byte goes out as it came in, except this
// organization's X-Signet-Processed stamp, added at the top of the header
// block as the engine adds it to every message it passes. The stamp is what
// Exchange Online's routing rule excepts: a message returned without it is
// routed to Signet again, and again, until Exchange Online's own hop limit
// bounces it (the relay's loop check counts stamps, so it never sees one).
import { Transform, type TransformCallback, type Readable } from 'node:stream';
import { formatField, headerView, parseHeaderBlock, topHeaderEnd } from '../mime/header-block';
import { ENGINE_VERSION } from '../version';
import { STAMP_HEADER, formatStamp, parseStamps } from './classify';
import type { Engine, EngineResult, EngineRun, PassReason } from './types';

/** Header blocks larger than this are stamped without being read further (as the relay's hop check bounds them). */
const MAX_HEADER_BYTES = 1024 * 1024;

class StampTop extends Transform {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private open = false;
  reason: PassReason = 'pass-through';
  bytesIn = 0;
  bytesOut = 0;

  constructor(private readonly orgId: string, private readonly configVersion: string) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytesIn += chunk.length;
    if (this.open) return this.out(chunk, callback);
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    const buffered = this.held.length === 1 ? chunk : Buffer.concat(this.held);
    this.held = [buffered];
    if (topHeaderEnd(buffered) < 0 && this.heldBytes < MAX_HEADER_BYTES) return callback();
    this.release(buffered, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.open) return callback();
    this.release(Buffer.concat(this.held), callback);
  }

  private release(buffered: Buffer, callback: TransformCallback): void {
    this.open = true;
    this.held = [];
    const end = topHeaderEnd(buffered);
    const block = parseHeaderBlock(end < 0 ? buffered : buffered.subarray(0, end), true);
    if (parseStamps(headerView(block)).some((s) => s.org === this.orgId)) {
      // already stamped by this organization: unchanged, as the engine leaves it
      this.reason = 'already-processed';
      return this.out(buffered, callback);
    }
    const stamp = formatField(STAMP_HEADER, formatStamp([
      ['org', this.orgId],
      ['result', 'passed'],
      ['reason', this.reason],
      ['config', this.configVersion],
      ['v', ENGINE_VERSION],
    ]), block.eol);
    const mbox = block.mbox?.length ?? 0;
    this.out(Buffer.concat([buffered.subarray(0, mbox), stamp, buffered.subarray(mbox)]), callback);
  }

  private out(chunk: Buffer, callback: TransformCallback): void {
    this.bytesOut += chunk.length;
    callback(null, chunk);
  }
}

/** An engine that relays every message unchanged but for the stamp (`passThrough: true`). */
export function createPassThroughEngine(orgId: string, configVersion: string): Engine {
  return {
    orgId,
    configVersion,
    process(input: Readable): EngineRun {
      const started = process.hrtime.bigint();
      const output = new StampTop(orgId, configVersion);
      const result = new Promise<EngineResult>((resolve, reject) => {
        output.on('end', () =>
          resolve({
            outcome: 'passed',
            reason: output.reason,
            orgId,
            configVersion,
            ruleIds: [],
            addons: [],
            parts: [],
            bytesIn: output.bytesIn,
            bytesOut: output.bytesOut,
            engineSeconds: Number(process.hrtime.bigint() - started) / 1e9,
          }),
        );
        input.on('error', reject);
        output.on('error', reject);
      });
      result.catch(() => undefined);
      input.on('error', (error) => output.destroy(error));
      input.pipe(output);
      return { output, result };
    },
  };
}
