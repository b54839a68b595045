// The local directory file as the relay's live directory: checked at an
// interval and re-read when it or a photo it names changed on disk (inode,
// size or mtime), validated as a whole before it replaces the running
// snapshot. A broken or vanished file (or photo) keeps the last good snapshot,
// logged and counted, and is reported once: it is read again when it changes again.
import { basename } from 'node:path';
import { directorySyncCounter, type Logger, type SignetMetrics } from '../observability';
import { fileFingerprint, parseDirectoryFile, readDirectoryFile, type DirectoryFileContents } from './file';
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

export function createDirectoryFileSource(options: DirectoryFileSourceOptions): DirectoryFileSource {
  const { file, metrics, logger } = options;
  const countSync = directorySyncCounter(metrics, 'file');
  let snapshot: DirectorySnapshot | undefined;
  let seen: string | undefined;
  // the photo files the last read named: a stat each per check
  let photoFiles: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<'loaded' | 'unchanged' | 'failed'> | undefined;

  async function checkOnce(): Promise<'loaded' | 'unchanged' | 'failed'> {
    const [own, ...photos] = await Promise.all([file, ...photoFiles].map(fileFingerprint));
    const now = [own, ...photos].join('\n');
    if (now === seen) return 'unchanged';
    seen = now;
    let contents: DirectoryFileContents | undefined;
    try {
      contents = await readDirectoryFile(file);
      // what this read named, each as it was just before it was read: a change after shows at the next check
      photoFiles = [...contents.photoFingerprints.keys()];
      seen = [own, ...contents.photoFingerprints.values()].join('\n');
      const next = parseDirectoryFile(contents.bytes, basename(file), new Date(), contents.photos);
      snapshot = next;
      logger?.info({ event: 'directory-loaded', source: 'file', users: next.size }, 'directory loaded');
      metrics?.directoryUsers.set({ source: 'file' }, next.size);
      let photos = 0;
      for (const user of next.users()) if (user.photo) photos++;
      metrics?.directoryPhotos.set({ source: 'file' }, photos);
      metrics?.directoryLastSync.set({ source: 'file' }, next.syncedAt.getTime() / 1000);
      countSync('ok');
      return 'loaded';
    } catch (error) {
      if (!contents) {
        // the file itself is gone or unreadable: nothing to watch but the file
        photoFiles = [];
        seen = own;
      }
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
