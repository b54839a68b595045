// A local stand-in for the Azure endpoints Signet uses, speaking their
// documented REST contracts over HTTPS on 127.0.0.1 with a throw-away test CA,
// so that the real SDK clients (@azure/identity, @azure/keyvault-keys,
// @azure/keyvault-secrets, @azure/storage-blob) run their own request code:
//
// - managed identity token endpoint (IMDS contract, reached through
//   AZURE_POD_IDENTITY_AUTHORITY_HOST, which MSAL documents as the IMDS override;
//   one per test process, see identityEndpoint):
//     GET /metadata/identity/oauth2/token?api-version&resource[&client_id]   (Metadata: true)
// - Key Vault keys (RSA keys held here; private halves never leave):
//     GET  /keys/{name}[/{version}]            POST /keys/{name}/create   POST /keys/{name}/rotate
//     PATCH /keys/{name}/{version} (enable/disable)
//     POST /keys/{name}/{version}/wrapkey|unwrapkey   (RSA-OAEP-256, base64url values)
//     POST /keys/{name}/{version}/sign                (PS256 over a SHA-256 digest, base64url values)
//   each key with its key_ops (an operation a key was not created for is refused),
//   and optionally per-key role assignments (keyRoles: Key Vault RBAC scoped to one key).
// - Key Vault secrets: GET /secrets/{name}[/{version}]
//   with the Key Vault challenge: an unauthenticated request gets 401 and
//   `WWW-Authenticate: Bearer authorization="…", resource="https://vault.azure.net"`.
// - Blob Storage (path-style URL, as for an emulator): GET/HEAD/PUT /{account}/{container}/{blob}
//   with ETag, If-None-Match (304) and If-Match (412).
import 'reflect-metadata'; // @peculiar/x509 (through tsyringe) needs the Reflect metadata polyfill
import * as x509 from '@peculiar/x509';
import { constants, createHash, generateKeyPairSync, privateDecrypt, privateEncrypt, publicEncrypt, randomBytes, randomUUID, webcrypto, type KeyObject } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const VAULT_RESOURCE = 'https://vault.azure.net';
export const STORAGE_RESOURCE = 'https://storage.azure.com';
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
const TENANT = '72f988bf-0000-4000-8000-000000000001';

export interface TestCa {
  caPem: string;
  /** A server certificate for 127.0.0.1 / ::1 / localhost, signed by the CA. */
  issueServer(): Promise<{ cert: string; key: string }>;
}

const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;

export async function createTestCa(): Promise<TestCa> {
  const caKeys = (await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomBytes(8).toString('hex'),
    name: 'CN=Signet test CA (stand-ins)',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * 3600_000),
    keys: caKeys,
    signingAlgorithm: RSA,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return {
    caPem: ca.toString('pem'),
    async issueServer() {
      const keys = (await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as CryptoKeyPair;
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomBytes(8).toString('hex'),
        subject: 'CN=127.0.0.1',
        issuer: ca.subject,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 24 * 3600_000),
        signingKey: caKeys.privateKey,
        publicKey: keys.publicKey,
        signingAlgorithm: RSA,
        extensions: [
          new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }, { type: 'ip', value: '::1' }, { type: 'dns', value: 'localhost' }]),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        ],
      });
      const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
      return { cert: cert.toString('pem'), key: `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END PRIVATE KEY-----\n` };
    },
  };
}

/**
 * Make this process trust the test CA for new TLS connections (Node's
 * documented `tls.setDefaultCACertificates`, the in-process counterpart of
 * NODE_EXTRA_CA_CERTS): every SDK then verifies the stand-in's certificate with
 * its own, unmodified HTTP stack. Returns a function restoring the previous set.
 */
export function trustTestCa(caPem: string): () => void {
  const before = tls.getCACertificates('default');
  tls.setDefaultCACertificates([...before, caPem]);
  return () => tls.setDefaultCACertificates(before);
}

// MSAL keeps the managed identity endpoint it first resolved in a static for
// the life of the process, so the token endpoint must outlive any one stand-in:
// one test CA and one identity endpoint per test process, shared by all stand-ins.
interface Issued { resource: string; clientId: string; expires: number }
interface SharedIdentity { ca: TestCa; url: string; tokens: Map<string, Issued>; requests: RecordedRequest[] }
let sharedIdentity: Promise<SharedIdentity> | undefined;

function identityEndpoint(): Promise<SharedIdentity> {
  sharedIdentity ??= (async () => {
    const ca = await createTestCa();
    const cert = await ca.issueServer();
    const tokens = new Map<string, Issued>();
    const requests: RecordedRequest[] = [];
    const server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      const parsed = new URL(req.url ?? '/', 'https://127.0.0.1');
      requests.push({ method: req.method ?? '', path: parsed.pathname });
      if (/^\/metadata\/identity\/oauth2\/token\/?$/.test(parsed.pathname)) return handleToken(req, res, parsed.searchParams, tokens, requests);
      let m: RegExpExecArray | null;
      if ((m = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(parsed.pathname))) {
        const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}/${m[1]}`;
        return sendJson(res, 200, {
          issuer: `${base}/v2.0`,
          token_endpoint: `${base}/oauth2/v2.0/token`,
          authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${base}/oauth2/v2.0/logout`,
          jwks_uri: `${base}/discovery/v2.0/keys`,
          response_types_supported: ['code', 'id_token', 'token'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['RS256'],
          token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
          tenant_region_scope: 'EU',
        });
      }
      if ((m = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(parsed.pathname)) && req.method === 'POST') {
        return void readBody(req).then((body) => handleClientCredentials(res, new URLSearchParams(body.toString('utf8')), tokens, requests));
      }
      sendJson(res, 404, { error: 'not_found' });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    server.unref(); // lives as long as the test process, never keeps it alive
    return { ca, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, tokens, requests };
  })();
  return sharedIdentity;
}

/** The process-wide test CA and token endpoint; other stand-ins (Graph) check tokens with `verify`. */
export async function standinIdentity(): Promise<{ ca: TestCa; url: string; verify(authorization: string | undefined, resource: string): string | undefined }> {
  const shared = await identityEndpoint();
  return {
    ca: shared.ca,
    url: shared.url,
    verify(authorization, resource) {
      const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
      const issued = token ? shared.tokens.get(token) : undefined;
      return issued && issued.resource === resource && issued.expires > Date.now() ? issued.clientId : undefined;
    },
  };
}

/** App registrations the token endpoint knows: client id → client secret (client credentials grant). */
export const standinAppSecrets = new Map<string, string>();

function handleClientCredentials(res: ServerResponse, form: URLSearchParams, tokens: Map<string, Issued>, requests: RecordedRequest[]): void {
  const clientId = form.get('client_id') ?? '';
  const scope = (form.get('scope') ?? '').split(' ').find((s) => s.endsWith('/.default'));
  requests[requests.length - 1].clientId = clientId;
  if (form.get('grant_type') !== 'client_credentials' || !scope) return sendJson(res, 400, { error: 'invalid_request', error_description: 'client_credentials with a /.default scope only' });
  if (!standinAppSecrets.has(clientId) || standinAppSecrets.get(clientId) !== form.get('client_secret')) {
    return sendJson(res, 401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.', error_codes: [7000215] });
  }
  const resource = scope.slice(0, -'/.default'.length);
  requests[requests.length - 1].resource = resource;
  const token = randomBytes(24).toString('base64url');
  tokens.set(token, { resource, clientId, expires: Date.now() + 3600_000 });
  sendJson(res, 200, { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token });
}

function handleToken(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, tokens: Map<string, Issued>, requests: RecordedRequest[]): void {
  if (req.headers.metadata !== 'true') return sendJson(res, 400, { error: 'invalid_request', error_description: 'Required metadata header not specified' });
  const resource = query.get('resource');
  if (!resource) return sendJson(res, 400, { error: 'invalid_request', error_description: 'resource is required' });
  const clientId = query.get('client_id') ?? 'system-assigned';
  requests[requests.length - 1].clientId = clientId;
  requests[requests.length - 1].resource = resource;
  const token = randomBytes(24).toString('base64url');
  const expiresIn = 3600;
  tokens.set(token, { resource, clientId, expires: Date.now() + expiresIn * 1000 });
  sendJson(res, 200, { access_token: token, expires_in: String(expiresIn), expires_on: String(Math.floor(Date.now() / 1000) + expiresIn), resource, token_type: 'Bearer', client_id: clientId });
}

interface KeyVersion { version: string; privateKey: KeyObject; publicKey: KeyObject; enabled: boolean; created: number; ops: string[] }

/** Key Vault data-plane roles, as far as keys go (Azure built-in roles). */
export type KeyRole = 'Key Vault Crypto Officer' | 'Key Vault Crypto User' | 'Key Vault Reader';
const KEY_ROLE_ACTIONS: Record<KeyRole, ReadonlySet<string>> = {
  'Key Vault Crypto Officer': new Set(['read', 'write', 'wrapKey', 'unwrapKey', 'sign']),
  'Key Vault Crypto User': new Set(['read', 'wrapKey', 'unwrapKey', 'sign']),
  'Key Vault Reader': new Set(['read']), // Microsoft.KeyVault/vaults/*/read: the key's properties and public half
};
const KEY_ACTION_NAMES: Record<string, string> = {
  read: 'Microsoft.KeyVault/vaults/keys/read',
  write: 'Microsoft.KeyVault/vaults/keys/write',
  wrapKey: 'Microsoft.KeyVault/vaults/keys/wrap/action',
  unwrapKey: 'Microsoft.KeyVault/vaults/keys/unwrap/action',
  sign: 'Microsoft.KeyVault/vaults/keys/sign/action',
};
const DEFAULT_KEY_OPS = ['wrapKey', 'unwrapKey', 'encrypt', 'decrypt'];

/**
 * RSASSA-PSS signature of an already computed SHA-256 digest, salt length 32
 * (JWA PS256), as Key Vault's `sign` does. Node's sign() always hashes its
 * input itself, so EMSA-PSS encoding (RFC 8017 §9.1.1) is done here by hand
 * and the RSA private operation applied with no padding.
 */
function signPs256Digest(privateKey: KeyObject, digest: Buffer): Buffer {
  const modBits = privateKey.asymmetricKeyDetails!.modulusLength!;
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = 32;
  const salt = randomBytes(hLen);
  const h = createHash('sha256').update(Buffer.alloc(8)).update(digest).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - 2 * hLen - 2), Buffer.from([0x01]), salt]);
  const mask = Buffer.alloc(db.length);
  for (let counter = 0, at = 0; at < mask.length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    at += createHash('sha256').update(h).update(c).digest().copy(mask, at);
  }
  for (let i = 0; i < db.length; i++) db[i] ^= mask[i];
  db[0] &= 0xff >> (8 * emLen - emBits);
  const em = Buffer.concat([Buffer.alloc(k - emLen), db, h, Buffer.from([0xbc])]);
  return privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, em);
}
interface SecretVersion { version: string; value: string; enabled: boolean; created: number }
interface StoredBlob { data: Buffer; etag: string; lastModified: Date; contentType: string }

export interface RecordedRequest { method: string; path: string; clientId?: string; resource?: string }

export interface AzureStandin {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** The managed identity endpoint (IMDS contract), shared by every stand-in of the process. */
  readonly identityUrl: string;
  /** Token requests made since this stand-in started (client id, resource). */
  tokenRequests(): RecordedRequest[];
  readonly vaultUrl: string;
  readonly caPem: string;
  /** Every request, in order (method, path without query, identity used). */
  readonly requests: RecordedRequest[];
  /** Create a key (or a new version of it) with its key_ops (default: wrap/unwrap/encrypt/decrypt; `['sign', 'verify']` for a signing key). Returns the versioned key id. */
  createKey(name: string, options?: { ops?: string[] }): string;
  /**
   * Role assignments scoped to one key: key name → (client id → role). A key
   * listed here admits only the identities assigned to it, each to what its
   * role allows (403 otherwise); a key not listed admits every identity the
   * vault admits.
   */
  readonly keyRoles: Map<string, Map<string, KeyRole>>;
  disableKeyVersion(name: string, version: string): void;
  setSecret(name: string, value: string): string;
  blobUrl(account: string, container: string, blob: string): string;
  putBlob(account: string, container: string, blob: string, data: Buffer): string;
  getBlob(account: string, container: string, blob: string): Buffer | undefined;
  /** Blob GETs answered with a body, in order, each with a promise that settles when its response is over (read, or the client went away). */
  readonly blobDownloads: Array<{ path: string; closed: Promise<void> }>;
  /** Managed identities (client ids) refused by the vault with 403 (role missing). */
  readonly deniedClients: Set<string>;
  /** When set, a vault request it answers for gets that error instead (network rules, throttling, outages). */
  vaultFault?: (method: string, path: string) => { status: number; code: string; message: string } | undefined;
  /** Validate a bearer token this stand-in issued for `resource`; returns the client id it was issued to. */
  verifyToken(authorization: string | undefined, resource: string): string | undefined;
  close(): Promise<void>;
}

const b64url = (data: Buffer) => data.toString('base64url');

async function readBody(req: IncomingMessage, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'x-ms-request-id': randomUUID(), ...headers });
  res.end(text);
}

function kvError(res: ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

function storageError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), 'x-ms-error-code': code, 'x-ms-request-id': randomUUID(), 'x-ms-version': '2025-11-05' });
  res.end(status === 304 ? undefined : body);
}

export async function startAzureStandin(): Promise<AzureStandin> {
  const identity = await identityEndpoint();
  const ca = identity.ca;
  const serverCert = await ca.issueServer();
  const keys = new Map<string, KeyVersion[]>();
  const secrets = new Map<string, SecretVersion[]>();
  const blobs = new Map<string, StoredBlob>();
  const blobDownloads: AzureStandin['blobDownloads'] = [];
  const tokens = identity.tokens;
  const requests: RecordedRequest[] = [];
  const tokenRequestsBefore = identity.requests.length;
  const deniedClients = new Set<string>();
  let url = '';

  const newVersion = () => randomBytes(16).toString('hex');
  const keyId = (name: string, version: string) => `${url}/keys/${name}/${version}`;

  const keyRoles = new Map<string, Map<string, KeyRole>>();

  function createKey(name: string, options: { ops?: string[] } = {}): string {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const version = newVersion();
    const list = keys.get(name) ?? [];
    const ops = options.ops ?? list[list.length - 1]?.ops ?? DEFAULT_KEY_OPS;
    list.push({ version, privateKey, publicKey, enabled: true, created: Math.floor(Date.now() / 1000), ops: [...ops] });
    keys.set(name, list);
    return keyId(name, version);
  }

  function keyBundle(name: string, k: KeyVersion) {
    const jwk = k.publicKey.export({ format: 'jwk' }) as { n: string; e: string };
    return {
      key: { kid: keyId(name, k.version), kty: 'RSA', key_ops: k.ops, n: jwk.n, e: jwk.e },
      attributes: { enabled: k.enabled, created: k.created, updated: k.created, recoveryLevel: 'Recoverable', exportable: false },
    };
  }

  function verifyToken(authorization: string | undefined, resource: string): string | undefined {
    const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
    const issued = token ? tokens.get(token) : undefined;
    return issued && issued.resource === resource && issued.expires > Date.now() ? issued.clientId : undefined;
  }

  function findKey(name: string, version: string | undefined): KeyVersion | undefined {
    const list = keys.get(name);
    if (!list) return undefined;
    return version ? list.find((k) => k.version === version) : list[list.length - 1];
  }

  async function handleVault(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const clientId = verifyToken(req.headers.authorization, VAULT_RESOURCE);
    requests[requests.length - 1].clientId = clientId;
    if (!clientId) {
      await readBody(req);
      res.writeHead(401, { 'www-authenticate': `Bearer authorization="https://login.microsoftonline.com/${TENANT}", resource="${VAULT_RESOURCE}"`, 'content-length': 0 });
      res.end();
      return;
    }
    if (deniedClients.has(clientId)) {
      await readBody(req);
      kvError(res, 403, 'Forbidden', `Caller is not authorized to perform action on resource. Caller: appid=${clientId}; Assignment: (not found)`);
      return;
    }
    const body = await readBody(req);
    const fault = standin.vaultFault?.(req.method ?? '', path);
    if (fault) return kvError(res, fault.status, fault.code, fault.message);
    const json = () => (body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {});
    /** Key Vault RBAC on one key: true when the caller may, else the 403 is sent. */
    const allowed = (name: string, action: string): boolean => {
      const roles = keyRoles.get(name);
      if (!roles) return true;
      const role = roles.get(clientId);
      if (role && KEY_ROLE_ACTIONS[role].has(action)) return true;
      kvError(res, 403, 'Forbidden', `Caller is not authorized to perform action on resource. Caller: appid=${clientId}; Action: '${KEY_ACTION_NAMES[action] ?? action}'; Resource: '${name}'; Assignment: (not found)`);
      return false;
    };
    let m: RegExpExecArray | null;
    if ((m = /^\/secrets\/([^/]+)(?:\/([^/]*))?$/.exec(path)) && req.method === 'GET') {
      const list = secrets.get(m[1]);
      const s = list && (m[2] ? list.find((v) => v.version === m![2]) : list[list.length - 1]);
      if (!s) return kvError(res, 404, 'SecretNotFound', `A secret with (name/id) ${m[1]} was not found in this key vault.`);
      if (!s.enabled) return kvError(res, 403, 'Forbidden', 'Operation get is not allowed on a disabled secret.');
      return sendJson(res, 200, { value: s.value, id: `${url}/secrets/${m[1]}/${s.version}`, attributes: { enabled: true, created: s.created, updated: s.created, recoveryLevel: 'Recoverable' } });
    }
    if ((m = /^\/keys\/([^/]+)\/(create|rotate)$/.exec(path)) && req.method === 'POST') {
      if (!allowed(m[1], 'write')) return;
      if (m[2] === 'rotate' && !keys.has(m[1])) return kvError(res, 404, 'KeyNotFound', `A key with (name/id) ${m[1]} was not found in this key vault.`);
      const ops = m[2] === 'create' ? (json().key_ops as string[] | undefined) : undefined;
      createKey(m[1], ops ? { ops } : {});
      return sendJson(res, 200, keyBundle(m[1], findKey(m[1], undefined)!));
    }
    if ((m = /^\/keys\/([^/]+)(?:\/([^/]*))?\/sign$/.exec(path)) && req.method === 'POST') {
      if (!allowed(m[1], 'sign')) return;
      const k = findKey(m[1], m[2] || undefined);
      if (!k) return kvError(res, 404, 'KeyNotFound', `A key with (name/id) ${m[1]}${m[2] ? `/${m[2]}` : ''} was not found in this key vault.`);
      if (!k.enabled) return kvError(res, 403, 'Forbidden', 'Operation sign is not allowed on a disabled key.');
      if (!k.ops.includes('sign')) return kvError(res, 403, 'Forbidden', 'Operation sign is not permitted on this key.');
      const { alg, value } = json() as { alg?: string; value?: string };
      const digest = typeof value === 'string' ? Buffer.from(value, 'base64url') : Buffer.alloc(0);
      if (alg !== 'PS256' || digest.length !== 32) return kvError(res, 400, 'BadParameter', `Invalid algorithm or digest (${alg}, ${digest.length} bytes).`);
      return sendJson(res, 200, { kid: keyId(m[1], k.version), value: b64url(signPs256Digest(k.privateKey, digest)) });
    }
    if ((m = /^\/keys\/([^/]+)(?:\/([^/]*))?\/(wrapkey|unwrapkey)$/.exec(path)) && req.method === 'POST') {
      const op = m[3] === 'wrapkey' ? 'wrapKey' : 'unwrapKey';
      if (!allowed(m[1], op)) return;
      const k = findKey(m[1], m[2] || undefined);
      if (!k) return kvError(res, 404, 'KeyNotFound', `A key with (name/id) ${m[1]}${m[2] ? `/${m[2]}` : ''} was not found in this key vault.`);
      if (!k.enabled) return kvError(res, 403, 'Forbidden', `Operation ${op} is not allowed on a disabled key.`);
      if (!k.ops.includes(op)) return kvError(res, 403, 'Forbidden', `Operation ${op} is not permitted on this key.`);
      const { alg, value } = json() as { alg?: string; value?: string };
      if (alg !== 'RSA-OAEP-256' || typeof value !== 'string') return kvError(res, 400, 'BadParameter', `Invalid algorithm or value (${alg}).`);
      const input = Buffer.from(value, 'base64url');
      const oaep = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' };
      try {
        const output = m[3] === 'wrapkey' ? publicEncrypt({ key: k.publicKey, ...oaep }, input) : privateDecrypt({ key: k.privateKey, ...oaep }, input);
        return sendJson(res, 200, { kid: keyId(m[1], k.version), value: b64url(output) });
      } catch {
        return kvError(res, 400, 'BadParameter', 'Decryption failed: the value is not valid for this key.');
      }
    }
    if ((m = /^\/keys\/([^/]+)(?:\/([^/]*))?$/.exec(path))) {
      if (!allowed(m[1], req.method === 'GET' ? 'read' : 'write')) return;
      const k = findKey(m[1], m[2] || undefined);
      if (!k) return kvError(res, 404, 'KeyNotFound', `A key with (name/id) ${m[1]} was not found in this key vault.`);
      if (req.method === 'PATCH') {
        const attributes = (json().attributes ?? {}) as { enabled?: boolean };
        if (typeof attributes.enabled === 'boolean') k.enabled = attributes.enabled;
        return sendJson(res, 200, keyBundle(m[1], k));
      }
      if (req.method === 'GET') return sendJson(res, 200, keyBundle(m[1], k));
    }
    return kvError(res, 400, 'BadParameter', `Unsupported ${req.method} ${path}`);
  }

  async function handleBlob(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const clientId = verifyToken(req.headers.authorization, STORAGE_RESOURCE);
    requests[requests.length - 1].clientId = clientId;
    const body = await readBody(req);
    if (!clientId) return storageError(res, 401, 'InvalidAuthenticationInfo', 'Authentication information is not given in the correct format.');
    if (deniedClients.has(clientId)) return storageError(res, 403, 'AuthorizationPermissionMismatch', 'This request is not authorized to perform this operation using this permission.');
    const stored = blobs.get(path);
    const common = { 'x-ms-request-id': randomUUID(), 'x-ms-version': String(req.headers['x-ms-version'] ?? '2025-11-05'), date: new Date().toUTCString() };
    if (req.method === 'PUT') {
      if (req.headers['x-ms-blob-type'] !== 'BlockBlob') return storageError(res, 400, 'InvalidHeaderValue', 'x-ms-blob-type must be BlockBlob');
      if (req.headers['if-match'] && req.headers['if-match'] !== stored?.etag) return storageError(res, 412, 'ConditionNotMet', 'The condition specified using HTTP conditional header(s) is not met.');
      if (req.headers['if-none-match'] === '*' && stored) return storageError(res, 409, 'BlobAlreadyExists', 'The specified blob already exists.');
      const etag = `"0x${createHash('sha256').update(body).update(randomBytes(4)).digest('hex').slice(0, 15).toUpperCase()}"`;
      const blob = { data: body, etag, lastModified: new Date(), contentType: String(req.headers['x-ms-blob-content-type'] ?? 'application/octet-stream') };
      blobs.set(path, blob);
      res.writeHead(201, { ...common, etag, 'last-modified': blob.lastModified.toUTCString(), 'content-md5': createHash('md5').update(body).digest('base64'), 'x-ms-request-server-encrypted': 'true', 'content-length': 0 });
      return void res.end();
    }
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (!stored) return storageError(res, 404, 'BlobNotFound', 'The specified blob does not exist.');
      if (req.headers['if-none-match'] === stored.etag) {
        res.writeHead(304, { ...common, etag: stored.etag, 'last-modified': stored.lastModified.toUTCString() });
        return void res.end();
      }
      res.writeHead(200, {
        ...common,
        etag: stored.etag,
        'last-modified': stored.lastModified.toUTCString(),
        'content-length': stored.data.length,
        'content-type': stored.contentType,
        'x-ms-blob-type': 'BlockBlob',
        'x-ms-lease-state': 'available',
        'x-ms-lease-status': 'unlocked',
        'x-ms-server-encrypted': 'true',
        'accept-ranges': 'bytes',
      });
      if (req.method === 'GET') {
        blobDownloads.push({ path, closed: new Promise<void>((resolve) => res.once('close', () => resolve())) });
      }
      return void res.end(req.method === 'HEAD' ? undefined : stored.data);
    }
    return storageError(res, 405, 'UnsupportedHttpVerb', `${req.method} is not supported here`);
  }

  const server: Server = createServer({ cert: serverCert.cert, key: serverCert.key }, (req, res) => {
    const parsed = new URL(req.url ?? '/', 'https://127.0.0.1');
    requests.push({ method: req.method ?? '', path: parsed.pathname });
    const route = async () => {
      if (/^\/(keys|secrets)\//.test(parsed.pathname)) return handleVault(req, res, parsed.pathname);
      if (/^\/[^/]+\/[^/]+\/.+/.test(parsed.pathname)) return handleBlob(req, res, decodeURIComponent(parsed.pathname));
      sendJson(res, 404, { error: { code: 'NotFound', message: parsed.pathname } });
    };
    route().catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: { code: 'InternalError', message: String(error) } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const standin: AzureStandin = {
    url,
    identityUrl: identity.url,
    tokenRequests: () => identity.requests.slice(tokenRequestsBefore),
    vaultUrl: url,
    caPem: ca.caPem,
    requests,
    deniedClients,
    keyRoles,
    createKey,
    disableKeyVersion(name, version) {
      const k = findKey(name, version);
      if (!k) throw new Error(`no key ${name}/${version}`);
      k.enabled = false;
    },
    setSecret(name, value) {
      const version = newVersion();
      const list = secrets.get(name) ?? [];
      list.push({ version, value, enabled: true, created: Math.floor(Date.now() / 1000) });
      secrets.set(name, list);
      return version;
    },
    blobUrl: (account, container, blob) => `${url}/${account}/${container}/${blob}`,
    putBlob(account, container, blob, data) {
      const etag = `"0x${randomBytes(7).toString('hex').toUpperCase()}"`;
      blobs.set(`/${account}/${container}/${blob}`, { data, etag, lastModified: new Date(), contentType: 'application/octet-stream' });
      return etag;
    },
    getBlob: (account, container, blob) => blobs.get(`/${account}/${container}/${blob}`)?.data,
    blobDownloads,
    verifyToken,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return standin;
}

/**
 * Point @azure/identity's ManagedIdentityCredential at the stand-in (the IMDS
 * override MSAL reads when the credential is created). Returns a restore function.
 */
export function useStandinManagedIdentity(standin: { identityUrl: string }): () => void {
  const before = process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
  process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = standin.identityUrl;
  return () => {
    if (before === undefined) delete process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST;
    else process.env.AZURE_POD_IDENTITY_AUTHORITY_HOST = before;
  };
}
