// Reads the leaf parts of a message back (independent of the surgery code).
import { decodeBody, tokenize } from './invariant';

export interface LeafPart {
  header: string;
  contentType: string;
  charset: string;
  encoding: string;
  body: Buffer;
  decoded: string;
}

export async function leafParts(message: Buffer): Promise<LeafPart[]> {
  const tokens = await tokenize(message);
  const leaves: LeafPart[] = [];
  tokens.forEach((t, k) => {
    if (t.type !== 'node' || !t.node || t.node.contentType.startsWith('multipart/')) return;
    const body = tokens[k + 1]?.type === 'body' ? tokens[k + 1].bytes : Buffer.alloc(0);
    leaves.push({
      header: t.bytes.toString('latin1'),
      contentType: t.node.contentType,
      charset: t.node.charset,
      encoding: t.node.encoding,
      body,
      decoded: decodeBody(body, t.node.encoding, t.node.charset),
    });
  });
  return leaves;
}

export async function partOf(message: Buffer, contentType: string, index = 0): Promise<LeafPart> {
  const found = (await leafParts(message)).filter((p) => p.contentType === contentType)[index];
  if (!found) throw new Error(`no ${contentType} part #${index}`);
  return found;
}
