// Relay benchmark (a measurement, not a test). The relay runs as `signet serve`
// in its own process (so its peak RSS is its own: VmHWM from /proc), with the
// example organization; clients (nodemailer, STARTTLS + client certificate)
// and the downstream sink run in this process, all on loopback.
//
// For 1, 20 and 100 concurrent sessions and a realistic message mix it prints
// messages/s, p50/p99 latency added by the relay (relay minus sending straight
// to the sink), and peak RSS, for the relay signing and the same relay with
// `passThrough: true` (the floor), and their ratio, each after a warm-up that
// is not counted (WARM_UP). Direct, pass-through and signing take turns in
// rounds (ROUND_ORDERS) and each mode's rounds are pooled, with the relay
// process's CPU time per message (/proc/<pid>/stat) and the share of the time
// its thread was busy (its own signet_event_loop_busy_seconds_total, the figure
// a node's dashboard and SignetNodeBusy read). Those runs send as
// fast as the relay answers; at 20 sessions the three modes also run at a fixed
// offered load (half of signing's rate), for the latency signing adds below
// saturation. Then peak RSS with one ~145 MB message in flight and with 20
// concurrent 10 MB messages.
// Run: node --import tsx bench/relay.ts   (or npm run bench -- relay)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import { stringify } from 'yaml';
import { createCertificateAuthority } from '../appliance/src/smtp/dev/certs';
import { startSink, type DevSink } from '../appliance/src/smtp/dev/sink';
import { benchOrgFolder } from './example-org';
import { buildBenchMessages, type BenchMessage } from './mime';

const ROOT = resolve(__dirname, '..');
const SENDER = 'tom.okafor@contoso.com'; // a user of the example organization: messages get signed
const CRLF = '\r\n';

interface Certs {
  dir: string;
  ca: string;
  exoKey: string;
  exoCert: string;
  /** The example organization, its campaign running (bench/example-org.ts). */
  orgDir: string;
}

async function makeCerts(): Promise<Certs> {
  const dir = mkdtempSync(join(tmpdir(), 'signet-bench-'));
  const ca = await createCertificateAuthority('Signet Bench CA');
  const local = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] };
  // the relay's certificate names its hostname (the certificate domain) as well as the loopback names the clients use
  const server = await ca.issue({ commonName: 'localhost', dnsNames: ['localhost', 'relay.bench.invalid'], ipAddresses: ['127.0.0.1'], usage: ['server'] });
  const client = await ca.issue({ commonName: 'relay.bench.invalid', usage: ['client'] });
  const sink = await ca.issue({ commonName: 'localhost', ...local, usage: ['server'] });
  const exo = await ca.issue({ commonName: 'mail.protection.outlook.com', usage: ['client'] });
  const files: Record<string, string> = { 'ca.crt': ca.cert, 'server.crt': server.cert, 'server.key': server.key, 'client.crt': client.cert, 'client.key': client.key, 'sink.crt': sink.cert, 'sink.key': sink.key };
  for (const [n, c] of Object.entries(files)) writeFileSync(join(dir, n), c);
  return { dir, ca: ca.cert, exoKey: exo.key, exoCert: exo.cert, orgDir: benchOrgFolder().dir };
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface RelayProc {
  child: ChildProcess;
  port: number;
  peakRssMb(): number;
  rssMb(): number;
  /** CPU time (user + system) the relay process has used. */
  cpuSeconds(): number;
  /** signet_event_loop_busy_seconds_total from its /metrics: what a node's dashboard reads. */
  busySeconds(): Promise<number>;
  stop(): Promise<void>;
}

/** Clock ticks per second of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

function procCpuSeconds(pid: number): number {
  // utime and stime are fields 14 and 15; the command name (field 2) may hold spaces, so count from its ')'
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function procStatusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The Node.js flags packaging/signet runs `signet serve` with. */
function launcherServeFlags(): string {
  const m = /^SERVE_NODE_FLAGS="([^"]*)"/m.exec(readFileSync(join(ROOT, 'packaging/signet'), 'utf8'));
  if (!m) throw new Error('packaging/signet does not set SERVE_NODE_FLAGS');
  return m[1];
}

async function startRelay(certs: Certs, sinkPort: number, passThrough: boolean): Promise<RelayProc> {
  const port = await freePort();
  const httpPort = await freePort();
  const config = {
    hostname: 'relay.bench.invalid',
    passThrough,
    listen: [{ host: '127.0.0.1', port }],
    tls: { cert: 'server.crt', key: 'server.key', ca: 'ca.crt' },
    downstream: { host: '127.0.0.1', port: sinkPort, tls: { cert: 'client.crt', key: 'client.key', ca: 'ca.crt', servername: 'localhost' }, probeSeconds: 3600 },
    limits: { maxSessions: 1000, maxSessionsPerSource: 1000 },
    http: { listen: '127.0.0.1', port: httpPort },
    org: { source: certs.orgDir },
    logging: { level: 'warn' },
  };
  const file = join(certs.dir, `relay-${port}.yaml`);
  writeFileSync(file, stringify(config));
  // the compiled relay with the V8 flags the packaged launcher gives `serve`, so
  // RSS is what a node shows (SIGNET_BENCH_NODE_OPTIONS replaces the flags)
  const nodeOptions = (process.env.SIGNET_BENCH_NODE_OPTIONS ?? launcherServeFlags()).split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeOptions, join(ROOT, 'dist/cli/main.js'), 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${httpPort}/readyz`)).status === 200) break;
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    port,
    peakRssMb: () => procStatusMb(child.pid!, 'VmHWM'),
    rssMb: () => procStatusMb(child.pid!, 'VmRSS'),
    cpuSeconds: () => procCpuSeconds(child.pid!),
    busySeconds: async () => {
      const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      const m = /^signet_event_loop_busy_seconds_total (\S+)$/m.exec(text);
      if (!m) throw new Error('the relay exports no signet_event_loop_busy_seconds_total');
      return Number(m[1]);
    },
    stop: async () => {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

function transport(port: number, certs: Certs) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    pool: true,
    maxConnections: 1,
    maxMessages: Infinity,
    tls: { key: certs.exoKey, cert: certs.exoCert, ca: certs.ca, servername: 'localhost' },
    socketTimeout: 600_000,
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The mix: mostly short messages and reply threads, some with a 5 MB attachment. */
function mixPick(messages: BenchMessage[], i: number): BenchMessage {
  const r = (i * 7919) % 100;
  if (r < 60) return messages[0]; // 10 KB new HTML message
  if (r < 97) return messages[1]; // 60 KB Outlook reply thread
  return messages[2]; // 5 MB with attachment
}

interface LoadResult {
  seconds: number;
  /** Sorted. */
  latencies: number[];
  /** Sorted, per message of the mix. */
  byMessage: Map<string, number[]>;
  failures: number;
}

/**
 * Sends `total` messages of the mix over `sessions` connections. Without a
 * rate it is a closed loop: each session sends its next message as soon as
 * the last is answered, i.e. as fast as the relay goes, and the latencies are
 * those of a saturated node (every session queues behind the others). With a
 * rate (messages/s) it is an open loop: message i is due at start + i / rate
 * whatever happened to the ones before it, the sessions take the due messages
 * in order, and a message's latency runs from when it was due, so time spent
 * waiting for a free connection counts: the latency the relay adds at a load
 * it can carry.
 */
async function load(port: number, certs: Certs, sessions: number, total: number, messages: BenchMessage[], rate?: number): Promise<LoadResult> {
  const workers = Array.from({ length: sessions }, () => transport(port, certs));
  let next = 0;
  let failures = 0;
  const latencies: number[] = [];
  const byMessage = new Map<string, number[]>();
  const started = process.hrtime.bigint();
  await Promise.all(
    workers.map(async (t) => {
      for (;;) {
        const i = next++;
        if (i >= total) break;
        const m = mixPick(messages, i);
        let t0 = process.hrtime.bigint();
        if (rate !== undefined) {
          const due = started + BigInt(Math.round((i / rate) * 1e9));
          if (due > t0) await new Promise((r) => setTimeout(r, Number(due - t0) / 1e6));
          t0 = due;
        }
        try {
          await t.sendMail({ envelope: { from: SENDER, to: [`partner${i}@fabrikam.example`] }, raw: m.open() });
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          latencies.push(ms);
          if (!byMessage.has(m.name)) byMessage.set(m.name, []);
          byMessage.get(m.name)!.push(ms);
        } catch {
          failures++;
        }
      }
      t.close();
    }),
  );
  for (const list of byMessage.values()) list.sort((a, b) => a - b);
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, latencies: latencies.sort((a, b) => a - b), byMessage, failures };
}

function throughput(r: LoadResult): number {
  return r.latencies.length / r.seconds;
}

/** Rounds of one session count, pooled: time and failures add up, latencies are merged. */
function pool(results: LoadResult[]): LoadResult {
  const byMessage = new Map<string, number[]>();
  for (const r of results) for (const [name, list] of r.byMessage) byMessage.set(name, [...(byMessage.get(name) ?? []), ...list]);
  for (const list of byMessage.values()) list.sort((a, b) => a - b);
  return {
    seconds: results.reduce((sum, r) => sum + r.seconds, 0),
    latencies: results.flatMap((r) => r.latencies).sort((a, b) => a - b),
    byMessage,
    failures: results.reduce((sum, r) => sum + r.failures, 0),
  };
}

/** A message of about `bytes` with one base64 attachment, generated as it is read. */
function bigMessage(bytes: number): () => Readable {
  const head = Buffer.from(
    [`From: Tom Okafor <${SENDER}>`, 'To: partner@fabrikam.example', 'Subject: Large file', 'Date: Mon, 23 Nov 2026 10:00:00 +0000', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b1"', '', '--b1', 'Content-Type: text/plain; charset=utf-8', '', 'The file is attached.', '--b1', 'Content-Type: application/octet-stream; name="big.bin"', 'Content-Disposition: attachment; filename="big.bin"', 'Content-Transfer-Encoding: base64', '', ''].join(CRLF),
  );
  const line = Buffer.from(Buffer.from(Array.from({ length: 57 }, (_, i) => (i * 37 + 5) % 256)).toString('base64') + CRLF);
  const block = Buffer.concat(Array.from({ length: 800 }, () => line));
  const blocks = Math.floor(bytes / block.length);
  return () =>
    Readable.from(
      (function* () {
        yield head;
        for (let i = 0; i < blocks; i++) yield Buffer.from(block);
        yield Buffer.from(`--b1--${CRLF}`);
      })(),
      { objectMode: false },
    );
}

/**
 * Messages of the mix each relay gets before a measured run, not counted: a
 * freshly started node runs its first few hundred messages several times
 * slower while V8 compiles the mail path, and the figures are meant to be a
 * running node's. With one session the warm-up itself is printed as the
 * cold start ("pass cold", "signing cold").
 */
const WARM_UP = 300;

type Mode = 'direct' | 'pass' | 'sign';
/** Each round runs every mode once; the order rotates so none always runs first or last. */
const ROUND_ORDERS: readonly (readonly Mode[])[] = [
  ['direct', 'pass', 'sign'],
  ['sign', 'direct', 'pass'],
  ['pass', 'sign', 'direct'],
];

/**
 * Every mode once per round, in the round's order, each relay's CPU and busy
 * seconds (its own /proc and signet_event_loop_busy_seconds_total) summed over
 * its own runs only.
 */
async function inRounds(
  rounds: number,
  relays: Record<Exclude<Mode, 'direct'>, RelayProc>,
  ports: Record<Mode, number>,
  run: (port: number) => Promise<LoadResult>,
): Promise<{ runs: Record<Mode, LoadResult[]>; cpu: Record<Exclude<Mode, 'direct'>, number>; busy: Record<Exclude<Mode, 'direct'>, number> }> {
  const runs: Record<Mode, LoadResult[]> = { direct: [], pass: [], sign: [] };
  const cpu = { pass: 0, sign: 0 };
  const busy = { pass: 0, sign: 0 };
  for (let round = 0; round < rounds; round++) {
    for (const mode of ROUND_ORDERS[round % ROUND_ORDERS.length]!) {
      if (mode === 'direct') {
        runs.direct.push(await run(ports.direct));
        continue;
      }
      const relay = relays[mode];
      const [cpu0, busy0] = [relay.cpuSeconds(), await relay.busySeconds()];
      runs[mode].push(await run(ports[mode]));
      cpu[mode] += relay.cpuSeconds() - cpu0;
      busy[mode] += (await relay.busySeconds()) - busy0;
    }
  }
  return { runs, cpu, busy };
}

/** One row of the table; "added" is against `direct` (none for the direct row itself). */
function printRow(sessions: number, mode: string, r: LoadResult, direct?: LoadResult, rss?: number): void {
  const added = (p: number) => (direct ? percentile(r.latencies, p) - percentile(direct.latencies, p) : NaN);
  console.log(
    `${String(sessions).padStart(8)}  ${mode.padEnd(12)} ${fmt(throughput(r)).padStart(7)} ${fmt(percentile(r.latencies, 50)).padStart(8)} ${fmt(percentile(r.latencies, 99)).padStart(7)} ${fmt(added(50)).padStart(10)} ${fmt(added(99)).padStart(10)} ${rss === undefined ? '      -' : fmt(rss).padStart(12)} ${String(r.failures).padStart(9)}`,
  );
}

/** The mix's p99 is mostly its largest messages: each message kind's p99, to say which one moved. */
function p99ByMessage(pass: LoadResult, sign: LoadResult): string {
  return [...pass.byMessage.keys()].map((name) => `${name.replace(/ message.*$/, '')} ${fmt(percentile(pass.byMessage.get(name)!, 99), 0)} → ${fmt(percentile(sign.byMessage.get(name) ?? [], 99), 0)}`).join('; ');
}

/** The session count also measured at a fixed offered load (open loop, see `load`), that load as a share of signing's closed-loop rate, and messages per round. */
const PACED_SESSIONS = 20;
const PACED_LOAD = 0.5;
const PACED_MESSAGES = 400;

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
/** Busy seconds of the relay's thread as a share of the rounds' time (what rate() of the counter shows on a node). */
const busyShare = (busySeconds: number, r: LoadResult) => `${fmt((busySeconds / r.seconds) * 100, 0)}%`;

async function main(): Promise<void> {
  console.log(`relay benchmark: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${Math.round(totalmem() / 1024 ** 3)} GiB, node ${process.version}`);
  console.log(`relay node flags: ${process.env.SIGNET_BENCH_NODE_OPTIONS ?? launcherServeFlags()} (${process.env.SIGNET_BENCH_NODE_OPTIONS === undefined ? 'as packaging/signet runs serve' : 'SIGNET_BENCH_NODE_OPTIONS'})`);
  // compile as `npm run build` does (dist/ is git-ignored); emitted even if another module has a type error
  spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'ignore' });
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('could not compile the relay (tsc -p tsconfig.build.json)');
  const certs = await makeCerts();
  const sink: DevSink = await startSink({ key: readFileSync(join(certs.dir, 'sink.key')), cert: readFileSync(join(certs.dir, 'sink.crt')), clientCa: certs.ca, keep: 1 });
  const messages = buildBenchMessages();
  try {
    if (process.env.SIGNET_BENCH_ONLY !== 'large') {
    console.log('\nsessions  mode          msgs/s   p50 ms  p99 ms  added p50  added p99  peak RSS MB  failures');
    for (const [sessions, total, rounds] of [
      [1, 300, 3],
      [20, 600, 3],
      [100, 1000, 2],
    ] as const) {
      // Both relays run side by side (the idle one costs nothing) and the three
      // modes take turns in rounds, in rotating order: a neighbour's load on a
      // shared VM then falls on all of them instead of on whichever ran last.
      const relays = { pass: await startRelay(certs, sink.port, true), sign: await startRelay(certs, sink.port, false) };
      try {
        const ports = { direct: sink.port, pass: relays.pass.port, sign: relays.sign.port };
        await load(sink.port, certs, Math.min(sessions, 20), WARM_UP, messages);
        const cold = {
          pass: await load(ports.pass, certs, Math.min(sessions, 20), WARM_UP, messages),
          sign: await load(ports.sign, certs, Math.min(sessions, 20), WARM_UP, messages),
        };
        const { runs, cpu: relayCpu, busy: relayBusy } = await inRounds(rounds, relays, ports, (port) => load(port, certs, sessions, Math.round(total / rounds), messages));
        const direct = pool(runs.direct);
        const row = (mode: string, r: LoadResult, rss?: number) => printRow(sessions, mode, r, mode === 'direct' ? undefined : direct, rss);
        row('direct', direct);
        const pass = pool(runs.pass);
        const sign = pool(runs.sign);
        if (sessions === 1) row('pass cold', cold.pass);
        row('pass-through', pass, relays.pass.peakRssMb());
        if (sessions === 1) row('signing cold', cold.sign);
        row('signing', sign, relays.sign.peakRssMb());
        const perRound = runs.sign.map((r, i) => (throughput(r) / throughput(runs.pass[i]!)) * 100).sort((a, b) => a - b);
        console.log(
          `${' '.repeat(10)}signing/pass-through: throughput ${fmt((throughput(sign) / throughput(pass)) * 100, 0)}% (rounds ${perRound.map((x) => fmt(x, 0)).join(', ')}%), p99 +${fmt(percentile(sign.latencies, 99) - percentile(pass.latencies, 99))} ms`,
        );
        console.log(`${' '.repeat(10)}p99 ms by message, pass-through → signing: ${p99ByMessage(pass, sign)}`);
        // the relay is one thread: with a core to itself (no clients or sink beside it) its rate is 1 / CPU per message
        const cpuMs = { pass: (relayCpu.pass / pass.latencies.length) * 1000, sign: (relayCpu.sign / sign.latencies.length) * 1000 };
        console.log(
          `${' '.repeat(10)}relay CPU per message: pass-through ${fmt(cpuMs.pass, 2)} ms, signing ${fmt(cpuMs.sign, 2)} ms (with a core to itself: ${fmt(1000 / cpuMs.pass, 0)} and ${fmt(1000 / cpuMs.sign, 0)} msg/s, signing at ${fmt((cpuMs.pass / cpuMs.sign) * 100, 0)}%)`,
        );
        console.log(`${' '.repeat(10)}relay thread busy (signet_event_loop_busy_seconds_total): pass-through ${busyShare(relayBusy.pass, pass)}, signing ${busyShare(relayBusy.sign, sign)}`);
        if (sessions === PACED_SESSIONS && throughput(sign) >= 2) {
          // the same sessions at a fixed offered load both relays carry: the latency signing adds below saturation
          const rate = Math.round(throughput(sign) * PACED_LOAD);
          const { runs: pacedRuns, busy: pacedBusy } = await inRounds(rounds, relays, ports, (port) => load(port, certs, sessions, PACED_MESSAGES, messages, rate));
          console.log(`${String(sessions).padStart(8)}  offered ${rate} msg/s (${PACED_LOAD * 100}% of signing's rate above), latency from each message's due time:`);
          const pacedDirect = pool(pacedRuns.direct);
          const pacedPass = pool(pacedRuns.pass);
          const pacedSign = pool(pacedRuns.sign);
          printRow(sessions, 'paced direct', pacedDirect);
          printRow(sessions, 'paced pass', pacedPass, pacedDirect);
          printRow(sessions, 'paced sign', pacedSign, pacedDirect);
          console.log(`${' '.repeat(10)}paced: signing p99 +${fmt(percentile(pacedSign.latencies, 99) - percentile(pacedPass.latencies, 99))} ms; p99 ms by message, pass-through → signing: ${p99ByMessage(pacedPass, pacedSign)}`);
          console.log(`${' '.repeat(10)}paced: relay thread busy: pass-through ${busyShare(pacedBusy.pass, pacedPass)}, signing ${busyShare(pacedBusy.sign, pacedSign)}`);
        }
      } finally {
        await relays.pass.stop();
        await relays.sign.stop();
      }
    }

    }
    // one ~145 MB message (under the 150 MB limit) in flight
    {
      const relay = await startRelay(certs, sink.port, false);
      const idle = relay.peakRssMb();
      const t = transport(relay.port, certs);
      const t0 = process.hrtime.bigint();
      await t.sendMail({ envelope: { from: SENDER, to: ['partner@fabrikam.example'] }, raw: bigMessage(145 * 1024 * 1024)() });
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      t.close();
      console.log(`\none 145 MB message (signing): ${fmt(seconds, 1)} s; relay peak RSS ${fmt(relay.peakRssMb())} MB (idle ${fmt(idle)} MB)`);
      await relay.stop();
    }
    // 20 concurrent 10 MB messages
    for (const passThrough of [true, false]) {
      const relay = await startRelay(certs, sink.port, passThrough);
      const idle = relay.peakRssMb();
      const make = bigMessage(10 * 1024 * 1024);
      const transports = Array.from({ length: 20 }, () => transport(relay.port, certs));
      const t0 = process.hrtime.bigint();
      await Promise.all(transports.map((t, i) => t.sendMail({ envelope: { from: SENDER, to: [`p${i}@fabrikam.example`] }, raw: make() })));
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      for (const t of transports) t.close();
      console.log(`20 concurrent 10 MB messages (${passThrough ? 'pass-through' : 'signing'}): ${fmt(seconds, 1)} s; relay peak RSS ${fmt(relay.peakRssMb())} MB (idle ${fmt(idle)} MB; target ≤ 150 MB)`);
      await relay.stop();
    }
  } finally {
    await sink.close();
    rmSync(certs.dir, { recursive: true, force: true });
    rmSync(certs.orgDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
