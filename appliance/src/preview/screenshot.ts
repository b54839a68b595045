// Screenshot of a local HTML file with headless Chromium (Debian's `chromium`).
// A fresh profile per run, no GPU, no network: background services off and every
// host name resolving to nothing, so a page cannot reach out even if it tried.
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ScreenshotOptions {
  width: number;
  height: number;
  /** Executable; default `chromium` (or env SIGNET_CHROMIUM). */
  chromium?: string;
  /** Time limit of one attempt; default 60 s (a healthy capture takes a few seconds). */
  timeoutMs?: number;
}

/** Stopped by our time limit with no screenshot written: headless Chromium sometimes hangs at start-up. */
class ChromiumHung extends Error {}

/**
 * Screenshot of `htmlFile` into `pngFile`. A Chromium that hangs without writing
 * anything is tried once more, with a fresh profile; any other failure is final.
 */
export async function screenshot(htmlFile: string, pngFile: string, options: ScreenshotOptions): Promise<void> {
  try {
    await captureOnce(htmlFile, pngFile, options);
  } catch (error) {
    if (!(error instanceof ChromiumHung)) throw error;
    await captureOnce(htmlFile, pngFile, options);
  }
}

export function chromiumCommand(): string {
  return process.env.SIGNET_CHROMIUM ?? 'chromium';
}

async function captureOnce(htmlFile: string, pngFile: string, options: ScreenshotOptions): Promise<void> {
  const profile = mkdtempSync(join(tmpdir(), 'signet-chromium-'));
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-extensions',
    '--hide-scrollbars',
    // Let every frame finish loading and painting before the capture.
    '--virtual-time-budget=5000',
    '--run-all-compositor-stages-before-draw',
    '--host-resolver-rules=MAP * ~NOTFOUND',
    `--user-data-dir=${profile}`,
    `--screenshot=${pngFile}`,
    `--window-size=${Math.round(options.width)},${Math.round(Math.min(options.height, 16_000))}`,
    pathToFileURL(htmlFile).href,
  ];
  // a file left from an earlier run must not pass for this run's screenshot
  rmSync(pngFile, { force: true });
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(options.chromium ?? chromiumCommand(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, options.timeoutMs ?? 60_000);
      // Headless Chromium sometimes writes the screenshot and then never exits:
      // a complete PNG (it ends with the IEND chunk) is the result, so stop it then.
      let captured = false;
      const watch = setInterval(() => {
        if (pngComplete(pngFile)) {
          captured = true;
          child.kill('SIGKILL');
        }
      }, 500);
      child.on('error', (error) => {
        clearTimeout(timer);
        clearInterval(watch);
        reject(new Error(`cannot start ${options.chromium ?? chromiumCommand()}: ${error.message} (install Debian's chromium package)`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        clearInterval(watch);
        if (code === 0 || captured) resolve();
        else {
          const message = `chromium ended with ${signal ?? `exit ${code}`}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`;
          const wroteNothing = !statSync(pngFile, { throwIfNoEntry: false })?.size;
          reject(timedOut && wroteNothing ? new ChromiumHung(message) : new Error(message));
        }
      });
    });
    if (statSync(pngFile, { throwIfNoEntry: false })?.size ? false : true) throw new Error(`chromium wrote no screenshot to ${pngFile}`);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

const PNG_END = Buffer.from('0000000049454e44ae426082', 'hex');

/** Whether `file` holds a whole PNG: the signature at the start and the IEND chunk at the end. */
export function pngComplete(file: string): boolean {
  const size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  if (size < 8 + PNG_END.length) return false;
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(8);
    const tail = Buffer.alloc(PNG_END.length);
    readSync(fd, head, 0, 8, 0);
    readSync(fd, tail, 0, tail.length, size - tail.length);
    return head.equals(Buffer.from('89504e470d0a1a0a', 'hex')) && tail.equals(PNG_END);
  } finally {
    closeSync(fd);
  }
}
