// The local directory file as the relay's live directory: checked at an
// interval and re-read when it changed on disk (inode, size or mtime), validated
// as a whole before it replaces the running snapshot. A broken or vanished file
// keeps the last good snapshot, logged and counted, and is reported once: it is
// read again when it changes again.
import { stat } from 'node:fs/promises';
import { directorySyncCounter, type Logger, type SignetMetrics } from '../observability';
import { loadDirectoryFile } from './file';
import type { DirectorySnapshot } from './types';

export interface DirectoryFileSourceOptions {
  file: string;
  /** Seconds between checks; 0 = no timer (call check()). */
  pollSeconds: number;
  metrics?: SignetMetrics;
  logger?: Logger;
}

export interface DirectoryFileSource {
  /** First load (never throws: a failure leaves senders unknown and is logged), then checks on the timer. */
  start(): Promise<void>;
  stop(): void;
  /** The last good snapshot; undefined before the first good load. */
  current(): DirectorySnapshot | undefined;
  /** One check now (what the timer does). */
  check(): Promise<'loaded' | 'unchanged' | 'failed'>;
}

async function fingerprint(file: string): Promise<string> {
  try {
    const s = await stat(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch (error) {
    return `missing:${(error as NodeJS.ErrnoException).code ?? ''}`;
  }
}

export function createDirectoryFileSource(options: DirectoryFileSourceOptions): DirectoryFileSource {
  const { file, metrics, logger } = options;
  const countSync = directorySyncCounter(metrics, 'file');
  let snapshot: DirectorySnapshot | undefined;
  let seen: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<'loaded' | 'unchanged' | 'failed'> | undefined;

  async function checkOnce(): Promise<'loaded' | 'unchanged' | 'failed'> {
    const now = await fingerprint(file);
    if (now === seen) return 'unchanged';
    seen = now;
    try {
      const next = await loadDirectoryFile(file);
      snapshot = next;
      logger?.info({ event: 'directory-loaded', source: 'file', users: next.size }, 'directory loaded');
      metrics?.directoryUsers.set({ source: 'file' }, next.size);
      metrics?.directoryLastSync.set({ source: 'file' }, next.syncedAt.getTime() / 1000);
      countSync('ok');
      return 'loaded';
    } catch (error) {
      countSync('failed');
      const err = (error as Error).message;
      if (snapshot) logger?.error({ event: 'directory-failed', source: 'file', err }, 'directory file refused; keeping the running directory');
      else logger?.error({ event: 'directory-failed', source: 'file', err }, 'directory file could not be loaded: senders are unknown and their messages pass unsigned');
      return 'failed';
    }
  }

  const source: DirectoryFileSource = {
    async start() {
      await source.check();
      if (options.pollSeconds > 0 && !timer) {
        timer = setInterval(() => void source.check(), options.pollSeconds * 1000);
        timer.unref();
      }
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    current: () => snapshot,
    check() {
      running ??= checkOnce().finally(() => (running = undefined));
      return running;
    },
  };
  return source;
}
