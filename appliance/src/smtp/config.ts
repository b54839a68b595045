// The relay's own settings: one YAML file per node (listeners, TLS files,
// downstream, limits, HTTP port, where the organization config comes from).
// Validated with zod; the JSON Schema in config/schema/relay.schema.json is
// generated from the same schema (`relayConfigJsonSchema`).
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument, LineCounter } from 'yaml';
import { z } from 'zod';
import { allowedKeysAt, schemaAt, schemaLayers, valueAt } from '../config/schema-path';
import { didYouMean } from '../config/suggest';
import { GRAPH_CLOUD_NAMES, otherCloudOf, type GraphCloud } from '../directory/graph/client';

const port = z.number().int().min(0).max(65535);
/** Node.js timers wait at most 2^31-1 ms; a longer one fires at once (a long session limit would end every session at its greeting). */
const MAX_TIMER_SECONDS = Math.floor((2 ** 31 - 1) / 1000);
const seconds = (def: number, what: string, min?: number) =>
  // .max (not a refine) so that the JSON Schema carries the bound too
  (min === undefined ? z.number().positive() : z.number().min(min))
    .max(MAX_TIMER_SECONDS, `at most ${MAX_TIMER_SECONDS} seconds (about 24 days): a longer timer would fire at once`)
    .default(def)
    .describe(what);
const fileList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);
const LABELS = '[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*';
const HOST_NAME = new RegExp(`^${LABELS}$`);
/** Exact host name or a leading `*.` wildcard of one label. */
const certName = z.string().regex(new RegExp(`^(\\*\\.)?${LABELS}$`), 'must be a host name, optionally starting with "*."');
const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3']);
/** A name that goes into the SMTP greeting, EHLO or SNI as it is: a space or line break would break (or forge) the protocol line. */
const hostName = z.string().regex(HOST_NAME, 'must be a host name (letters, digits, hyphens and dots)');
/** Where to connect or bind: `host:25` is a common slip that would only fail at the first connection. */
const hostOrAddress = z
  .string()
  .min(1)
  // '' is min(1)'s to report, once
  .refine((v) => v === '' || isIP(v) !== 0 || HOST_NAME.test(v), 'must be a host name or an IP address, without a port (the port is its own setting)');
/** Another URL scheme (http, HTTPS…) would be taken for a relative path and fail only when first read. */
const notOtherUrl = (v: string) => v.startsWith('https://') || !/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v);

// The shipped relay.yaml holds the all-zero id as a placeholder: left as it is, every message
// would be refused as another tenant's (550, a bounce), so the relay refuses to start instead.
const NOT_PLACEHOLDER = [(v: string) => !/^0{8}-0{4}-0{4}-0{4}-0{12}$/.test(v), { message: 'is the all-zero placeholder: set the customer\'s Microsoft Entra tenant id' }] as const;
const tenantGuid = z.guid().refine(...NOT_PLACEHOLDER);

export const relayConfigSchema = z
  .object({
    hostname: hostName.default('localhost').describe('Name this node uses in its SMTP greeting and its EHLO to the downstream (the certificate domain).'),
    passThrough: z
      .boolean()
      .default(false)
      .describe('Relay every message unchanged but for the X-Signet-Processed stamp (reason pass-through), without the signature engine (emergency switch; the floor for benchmarks). Policy, limits and loop checks still apply.'),
    listen: z
      .array(z.object({ host: hostOrAddress.describe('Address to bind, e.g. 0.0.0.0, ::, 127.0.0.1.'), port: port.describe('SMTP port, 25 in production.') }).strict())
      .min(1)
      .default([{ host: '0.0.0.0', port: 25 }])
      .describe('SMTP listeners.'),
    tls: z
      .object({
        cert: z.string().min(1).describe('PEM server certificate (chain) for the tenant certificate domain.'),
        key: z.string().min(1).describe('PEM private key of the server certificate.'),
        ca: fileList.describe('PEM CA bundle(s) a client certificate must chain to.'),
        acceptedClientNames: z
          .array(certName)
          .min(1)
          .default(['mail.protection.outlook.com'])
          .describe('Names a client certificate must carry (subject CN or SAN dNSName); exact, or "*.example.com" for one label.'),
        minVersion: tlsVersion.default('TLSv1.2').describe('Lowest TLS version accepted.'),
        reloadSeconds: seconds(60, 'How often certificate files are re-checked besides file-change events.'),
      })
      .strict()
      .describe('Inbound TLS: the server certificate and key this node presents, and the CA bundle(s) client certificates must chain to.'),
    tenantId: tenantGuid
      .optional()
      .describe('The customer\'s Microsoft Entra tenant id. Every Microsoft 365 tenant presents the same client certificate, so a message must also carry this id in X-MS-Exchange-CrossTenant-Id (stamped by Exchange Online): another tenant\'s is refused (550 5.7.1), none is deferred (451 4.7.1). Unset: not checked (development).'),
    allowNetworks: z
      .array(z.union([z.cidrv4(), z.cidrv6()]))
      .default([])
      .describe('Source networks allowed to connect (CIDR, IPv4 or IPv6). Empty: any source (the certificate still decides).'),
    downstream: z
      .object({
        host: hostOrAddress.describe('Where signed mail goes: the tenant\'s <tenant>.mail.protection.outlook.com.'),
        port: port.default(25),
        tls: z
          .object({
            cert: z.string().min(1).describe('PEM client certificate of this node; must cover hostname, which the inbound connector\'s TlsSenderCertificateName names.'),
            key: z.string().min(1).describe('PEM private key of the client certificate.'),
            ca: fileList.optional().describe('PEM CA bundle(s) to verify the downstream server; default: the runtime\'s public roots.'),
            servername: hostName.optional().describe('Name the downstream certificate must carry; default: host.'),
            minVersion: tlsVersion.default('TLSv1.2'),
          })
          .strict()
          .describe('TLS toward the downstream: this node\'s client certificate and key.'),
        timeouts: z
          .object({
            connectSeconds: seconds(15, 'TCP connect timeout.'),
            greetingSeconds: seconds(30, 'Wait for the downstream greeting.'),
            commandSeconds: seconds(120, 'Wait for the answer to each command (MAIL, RCPT, DATA).'),
            dataSeconds: seconds(600, 'Wait for the answer to the end of DATA.'),
          })
          .strict()
          .prefault({}),
        maxAddresses: z
          .number()
          .int()
          .min(1)
          .max(10)
          .default(3)
          .describe('How many of the host\'s addresses a new downstream session tries in turn (next on no answer, refusal, an error greeting or a TLS failure) before the transaction gets 451. Addresses that failed in the last minute are tried last.'),
        reuse: z
          .object({
            maxIdle: z.number().int().min(0).default(16).describe('Downstream sessions kept open after a completed transaction for the next one; 0 opens a new session per transaction.'),
            idleSeconds: seconds(30, 'An idle downstream session older than this is closed.'),
          })
          .strict()
          .prefault({}),
        probeSeconds: seconds(30, 'Interval of the readiness probe (connect, EHLO, STARTTLS, QUIT).'),
        readyWithinSeconds: seconds(120, '/readyz fails when the downstream has not answered within this time.'),
      })
      .strict()
      .describe('Where signed mail goes (the tenant\'s Exchange Online endpoint) and how.'),
    limits: z
      .object({
        maxMessageBytes: z.number().int().positive().default(150 * 1024 * 1024).describe('Largest message accepted (advertised as SIZE); 150 MB is Exchange Online\'s maximum.'),
        maxRecipients: z.number().int().positive().default(1000).describe('Recipients per message; more get 452 4.5.3.'),
        maxLineLength: z.number().int().min(512).default(4096).describe('Longest SMTP command line accepted.'),
        sessionSeconds: seconds(1800, 'Longest SMTP session; a session past it is closed after its current transaction.'),
        idleSeconds: seconds(300, 'Idle timeout while waiting for the client.'),
        maxSessions: z.number().int().positive().default(1000).describe('Concurrent sessions per node; more get 421 4.7.0.'),
        maxSessionsPerSource: z.number().int().positive().default(100).describe('Concurrent sessions per source address; more get 421 4.7.0.'),
        maxSignetHops: z.number().int().min(1).default(3).describe('A message with more X-Signet-Processed headers than this is refused (554 5.4.6 loop).'),
        drainSeconds: seconds(60, 'On SIGTERM, how long in-flight transactions may take before the process exits. The packaged unit stops the process 90 s after SIGTERM (TimeoutStopSec): keep this at 85 or less there.'),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        listen: hostOrAddress.default('127.0.0.1').describe('Address of the HTTP listener for /metrics, /healthz, /readyz.'),
        port: port.default(9025),
      })
      .strict()
      .prefault({}),
    stateDir: z
      .string()
      .min(1)
      .optional()
      .describe('Directory where the node keeps state across restarts (the highest config bundle version loaded, for rollback protection); default: $STATE_DIRECTORY as systemd sets it (/var/lib/signet in the packaged unit), else none.'),
    org: z
      .object({
        source: z
          .string()
          .min(1)
          // the node reads the blob with its managed identity; a SAS token would be a secret in the config and its logs
          .refine((v) => !/^https?:\/\/[^?#]*[?#]/i.test(v), 'an https blob URL without a query string or fragment (no SAS token: the node reads the blob with its managed identity)')
          .refine(notOtherUrl, 'a folder, a bundle file or an https:// blob URL (lower-case https: another scheme is not read)')
          .describe('Organization config: a folder, or a sealed bundle (file path or https URL without a query string).'),
        keyRef: z.string().min(1).refine(notOtherUrl, 'file:PATH (or a bare path) or a Key Vault key URL https://<vault>.vault.azure.net/keys/<name> (another scheme is not read)').optional().describe('Key that opens a sealed bundle: file:PATH (or a bare path) for a local key file, or a Key Vault key URL https://<vault>.vault.azure.net/keys/<name>.'),
        // Each check is a storage request (and a directory file read); below a second it only loads the account.
        pollSeconds: seconds(60, 'How often the source (and the offline directory file) is checked for a new version.', 1),
      })
      .strict()
      .describe('Where the organization config (templates, rules) comes from and the key that opens it.'),
    directory: z
      .object({
        file: z.string().min(1).optional().describe('Local directory file (offline mode), re-read when it changes (checked every org.pollSeconds).'),
        graph: z
          .object({
            tenantId: z.string().min(1).refine(...NOT_PLACEHOLDER).describe('The customer\'s Entra tenant id, whose directory is read.'),
            clientId: z.string().min(1).optional().describe('Managed identity client id; default: the node\'s identity.'),
            app: z
              .object({
                clientId: z.string().min(1).describe('Application (client) id of the Graph app registration consented in the customer tenant.'),
                secret: z
                  .string()
                  .regex(/^(file:.+|https:\/\/[^/]+\/secrets\/[A-Za-z0-9-]+)$/, 'a Key Vault secret URL https://<vault>.vault.azure.net/secrets/<name> or file:PATH')
                  .describe('Where the app\'s client secret is kept: a Key Vault secret (read with the node\'s identity) or file:PATH.'),
                authorityHost: z.url().optional().describe('Entra ID sign-in host; default the cloud\'s (https://login.microsoftonline.com for global). Set it only for a sign-in host other than the cloud\'s own.'),
              })
              .strict()
              .optional()
              .describe('Read Graph as this app (app-only, User.Read.All + GroupMember.Read.All) instead of the node\'s managed identity: needed when the nodes run in another tenant than the customer\'s (an MSP subscription).'),
            cloud: z
              .enum(GRAPH_CLOUD_NAMES as [GraphCloud, ...GraphCloud[]])
              .default('global')
              .describe('Where the customer\'s tenant lives: global (worldwide, and GCC), usgov (GCC High), usgov-dod (DoD) or china (21Vianet). Sets the Graph endpoint, its token scope and the sign-in host. Nodes outside that cloud (e.g. in worldwide Azure) read it as `app`: their managed identity cannot get tokens there.'),
            refreshSeconds: seconds(900, 'Delta refresh interval.'),
          })
          .strict()
          .superRefine((g, ctx) => {
            const other = g.app?.authorityHost ? otherCloudOf(g.app.authorityHost, g.cloud) : undefined;
            if (other) ctx.addIssue({ code: 'custom', path: ['cloud'], message: `is ${g.cloud}, but app.authorityHost is the sign-in host of ${other.join(' or ')}: set cloud to that (it also sets Graph's endpoint and token scope), and authorityHost only for a host other than the cloud's own` });
          })
          .optional()
          .describe('Microsoft Graph (app-only).'),
      })
      .strict()
      .prefault({}),
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
        idHashKeyFile: z.string().min(1).optional().describe('Key for the keyed hash of Message-IDs in logs; default: a random key per process.'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type RelayConfig = z.infer<typeof relayConfigSchema>;

/** One problem of a relay config file as a line: `file:line path: message`. */
export function formatRelayProblem(file: string, problem: { path: string; message: string; line?: number }): string {
  return `${file}${problem.line ? `:${problem.line}` : ''} ${problem.path || '(top)'}: ${problem.message}`;
}

export class RelayConfigError extends Error {
  readonly problems: Array<{ path: string; message: string; line?: number }>;

  constructor(readonly file: string, problems: Array<{ path: string; message: string; line?: number }>) {
    problems = [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)); // top to bottom, as the file reads
    super(`relay configuration ${file} has ${problems.length === 1 ? '1 problem' : `${problems.length} problems`}:\n${problems.map((p) => `  ${formatRelayProblem(file, p)}`).join('\n')}`);
    this.name = 'RelayConfigError';
    this.problems = problems;
  }
}

/** A setting's path as the administrator reads it: `downstream.tls.ca[1]`. */
export function pathLabel(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${String(seg)}` : String(seg);
  return out;
}

/**
 * One zod issue in an administrator's words: a missing setting is `required`
 * (with what it is for), an unknown key gets the closest known one, a value
 * not among the allowed ones the closest allowed one.
 */
function describeIssue(issue: z.core.$ZodIssue, data: unknown): Array<{ path: ReadonlyArray<PropertyKey>; message: string }> {
  const { path } = issue;
  if (issue.code === 'unrecognized_keys') {
    const allowed = allowedKeysAt(relayConfigSchema, path);
    return issue.keys.map((key) => {
      const hint = didYouMean(key, allowed);
      return { path, message: `Unrecognized key: "${key}"${hint ? `; did you mean "${hint}"?` : allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}` };
    });
  }
  const value = valueAt(data, path);
  const parent = path.length ? valueAt(data, path.slice(0, -1)) : undefined;
  const absent = path.length > 0 && parent !== null && typeof parent === 'object' && !Array.isArray(parent) && (value === undefined || value === null);
  if (absent && (issue.code === 'invalid_type' || issue.code === 'invalid_union')) {
    const setting = schemaAt(relayConfigSchema, path);
    const what = setting && schemaLayers(setting).find((layer) => layer.description)?.description;
    return [{ path, message: `required${value === null ? ' (it is there, but empty)' : ''}${what ? ` — ${what}` : ''}` }];
  }
  if (issue.code === 'invalid_value' && typeof value === 'string') {
    const hint = didYouMean(value, issue.values.map((v) => String(v)));
    return [{ path, message: `${issue.message}${hint ? `; did you mean "${hint}"?` : ''}` }];
  }
  return [{ path, message: issue.message }];
}

/** Validates a parsed relay config; file paths inside it are resolved against `baseDir`. */
export function parseRelayConfig(data: unknown, file = '<config>', baseDir = process.cwd(), lineOf?: (path: ReadonlyArray<PropertyKey>) => number | undefined): RelayConfig {
  const input = data ?? {};
  const parsed = relayConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new RelayConfigError(
      file,
      parsed.error.issues.flatMap((issue) => describeIssue(issue, input)).map(({ path, message }) => ({ path: pathLabel(path), message, line: lineOf?.(path) })),
    );
  }
  const config = parsed.data;
  const abs = (p: string) => (isAbsolute(p) || /^https?:\/\//.test(p) ? p : resolve(baseDir, p));
  const absList = (p: string | string[]) => (Array.isArray(p) ? p.map(abs) : abs(p));
  config.tls.cert = abs(config.tls.cert);
  config.tls.key = abs(config.tls.key);
  config.tls.ca = absList(config.tls.ca);
  config.downstream.tls.cert = abs(config.downstream.tls.cert);
  config.downstream.tls.key = abs(config.downstream.tls.key);
  if (config.downstream.tls.ca) config.downstream.tls.ca = absList(config.downstream.tls.ca);
  config.org.source = abs(config.org.source);
  if (config.stateDir) config.stateDir = abs(config.stateDir);
  // key references: `file:PATH` (a local key file) or a Key Vault key URL; a bare path means file:PATH
  if (config.org.keyRef && !/^https:\/\//.test(config.org.keyRef)) config.org.keyRef = `file:${abs(config.org.keyRef.replace(/^file:/, ''))}`;
  if (config.directory.file) config.directory.file = abs(config.directory.file);
  if (config.logging.idHashKeyFile) config.logging.idHashKeyFile = abs(config.logging.idHashKeyFile);
  return config;
}

/** A relay config read from its file, with the line of each setting (for messages that name it). */
export interface RelayConfigFile {
  config: RelayConfig;
  /** Line of the setting at `path` in the file, or of its nearest ancestor that is there. */
  lineOf(path: ReadonlyArray<PropertyKey>): number | undefined;
}

/** Reads and validates a relay YAML file, keeping its lines; errors name the file, the line, the path and the problem. */
export function readRelayConfig(file: string): RelayConfigFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new RelayConfigError(file, [{ path: '', message: `cannot read: ${(error as Error).message}` }]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length) {
    throw new RelayConfigError(
      file,
      doc.errors.map((e) => {
        const at = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
        return { path: '', message: `${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')} (column ${at.col})`, line: at.line };
      }),
    );
  }
  const lineOf = (path: ReadonlyArray<PropertyKey>): number | undefined => {
    for (let depth = path.length; depth >= 0; depth--) {
      const node = doc.getIn(path.slice(0, depth) as Array<string | number>, true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === 'object' && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // an alias without its anchor (or an alias bomb) only shows when the document becomes data
    throw new RelayConfigError(file, [{ path: '', message: (error as Error).message.split('\n')[0] }]);
  }
  return { config: parseRelayConfig(data, file, dirname(resolve(file)), lineOf), lineOf };
}

/** Reads and validates a relay YAML file; errors name the file, the line, the path and the problem. */
export function loadRelayConfig(file: string): RelayConfig {
  return readRelayConfig(file).config;
}

/** The JSON Schema of the relay config file (for editors and CI validation). */
export function relayConfigJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(relayConfigSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return { ...schema, $id: 'https://signet.invalid/schema/relay.schema.json', title: 'Signet relay configuration' };
}
