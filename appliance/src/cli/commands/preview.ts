// `signet preview`: every user's signature (new and reply, HTML and text, with
// the add-ons the rules give a message to an external recipient) on one
// self-contained HTML page, optionally screenshotted to PNG with headless Chromium.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DIRECTORY_FILE, loadOrgFolder } from '../../config';
import { loadDirectoryFile } from '../../directory';
import { buildGallery, screenshot } from '../../preview';

interface PreviewOptions {
  org: string;
  user?: string;
  directory?: string;
  out?: string;
  png?: string;
  date?: string;
  width: string;
}

export function register(program: Command): void {
  program
    .command('preview')
    .description("render every user's signature into one self-contained HTML page (and a PNG screenshot with --png)")
    .requiredOption('--org <dir>', 'organization config folder')
    .option('--user <address>', 'only this user')
    .option('--directory <file>', `directory file (default: ${DIRECTORY_FILE} in the org folder)`)
    .option('--out <file>', 'write the gallery here (default: stdout, or a temporary file with --png)')
    .option('--png <file>', 'screenshot the gallery with headless Chromium')
    .option('--date <iso>', 'evaluate date windows (campaigns) at this time instead of now')
    .option('--width <pixels>', 'screenshot width', '1280')
    .action(async (options: PreviewOptions) => {
      const now = options.date ? new Date(options.date) : new Date();
      if (Number.isNaN(now.getTime())) throw new Error(`--date: not an ISO 8601 date: ${options.date}`);
      const width = Number(options.width);
      if (!Number.isInteger(width) || width < 320 || width > 4000) throw new Error(`--width: ${options.width} is not a width between 320 and 4000 pixels`);
      const org = await loadOrgFolder(options.org);
      const directoryFile = options.directory ?? join(options.org, DIRECTORY_FILE);
      if (options.directory && !existsSync(directoryFile)) throw new Error(`--directory: no such file: ${options.directory}`);
      const directory = existsSync(directoryFile) ? await loadDirectoryFile(directoryFile) : undefined;
      const gallery = buildGallery(org, directory, { user: options.user, now });

      let htmlFile = options.out;
      let scratch: string | undefined;
      if (!htmlFile && options.png) {
        scratch = mkdtempSync(join(tmpdir(), 'signet-preview-'));
        htmlFile = join(scratch, 'preview.html');
      }
      try {
        if (htmlFile) writeFileSync(htmlFile, gallery.html);
        else process.stdout.write(gallery.html);
        if (options.png && htmlFile) await screenshot(htmlFile, options.png, { width, height: gallery.height });
        const wrote = [options.out, options.png].filter(Boolean).join(' and ');
        if (wrote) process.stderr.write(`signet: ${gallery.users.length} user(s) previewed, wrote ${wrote}\n`);
      } finally {
        if (scratch) rmSync(scratch, { recursive: true, force: true });
      }
      if (gallery.errors) {
        process.stderr.write(`signet: ${gallery.errors} signature(s) failed to render; the gallery shows the errors\n`);
        process.exitCode = 1;
      }
    });
}
