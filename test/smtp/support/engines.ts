// Small real Engine implementations for relay tests: the relay's semantics
// (streaming, mirroring, failure handling) do not depend on what the engine
// does to a message, only on the Engine contract.
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Engine, EngineResult, EngineRun, Envelope } from '../../../appliance/src/signature';

function baseResult(orgId: string, outcome: 'signed' | 'passed', bytesIn: number, bytesOut: number): EngineResult {
  return { outcome, orgId, configVersion: 'test-1', ruleIds: outcome === 'signed' ? ['rule-test'] : [], templateId: outcome === 'signed' ? 'tpl-test' : undefined, addons: [], parts: [], bytesIn, bytesOut, engineSeconds: 0.0001, reason: outcome === 'passed' ? 'already-processed' : undefined };
}

/** Adds `X-Signet-Processed: <orgId>` on top unless the message already carries this org's stamp; passes every other byte through. */
export function stampEngine(orgId = 'test-org'): Engine {
  return {
    orgId,
    configVersion: 'test-1',
    process(input: Readable, _envelope: Envelope): EngineRun {
      let head = Buffer.alloc(0);
      let decided = false;
      let stamped = false;
      let bytesIn = 0;
      let bytesOut = 0;
      let resolveResult!: (r: EngineResult) => void;
      let rejectResult!: (e: Error) => void;
      const result = new Promise<EngineResult>((resolve, reject) => {
        resolveResult = resolve;
        rejectResult = reject;
      });
      const decide = (self: Transform) => {
        decided = true;
        const end = head.indexOf('\r\n\r\n');
        const headers = (end < 0 ? head : head.subarray(0, end)).toString('latin1');
        const already = new RegExp(`^x-signet-processed:\\s*${orgId}\\b`, 'im').test(headers);
        if (!already) {
          const stamp = Buffer.from(`X-Signet-Processed: ${orgId}; v=test\r\n`);
          self.push(stamp);
          bytesOut += stamp.length;
          stamped = true;
        }
        self.push(head);
        bytesOut += head.length;
        head = Buffer.alloc(0);
      };
      const transform = new Transform({
        transform(chunk: Buffer, _enc, callback: TransformCallback) {
          bytesIn += chunk.length;
          if (decided) {
            bytesOut += chunk.length;
            return callback(null, chunk);
          }
          head = Buffer.concat([head, chunk]);
          if (head.indexOf('\r\n\r\n') >= 0 || head.length > 64 * 1024) decide(this);
          callback();
        },
        flush(callback: TransformCallback) {
          if (!decided) decide(this);
          callback();
        },
      });
      transform.on('end', () => resolveResult(baseResult(orgId, stamped ? 'signed' : 'passed', bytesIn, bytesOut)));
      input.on('error', (error) => {
        rejectResult(error);
        transform.destroy(error);
      });
      transform.on('error', rejectResult);
      result.catch(() => undefined);
      input.pipe(transform);
      return { output: transform, result };
    },
  };
}

/** Passes bytes through, then fails after `failAfterBytes`: output errors and the result rejects. */
export function faultyEngine(failAfterBytes: number, orgId = 'test-org'): Engine {
  return {
    orgId,
    configVersion: 'test-1',
    process(input: Readable): EngineRun {
      let seen = 0;
      const output = new PassThrough();
      let rejectResult!: (e: Error) => void;
      let resolveResult!: (r: EngineResult) => void;
      const result = new Promise<EngineResult>((resolve, reject) => {
        resolveResult = resolve;
        rejectResult = reject;
      });
      result.catch(() => undefined);
      input.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen > failAfterBytes) {
          const error = new Error('engine exploded mid-stream');
          input.unpipe(output);
          rejectResult(error);
          output.destroy(error);
          return;
        }
        if (!output.write(chunk)) input.pause();
      });
      output.on('drain', () => input.resume());
      input.on('end', () => {
        output.end();
        resolveResult(baseResult(orgId, 'passed', seen, seen));
      });
      return { output, result };
    },
  };
}
