import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { ConfigError, loadOrgFolder, readOrgFolder } from '../../appliance/src/config';
import { EXAMPLE_DIR } from './helpers';

async function copyExample(into: string): Promise<string> {
  const dir = path.join(into, 'org');
  await fs.cp(EXAMPLE_DIR, dir, { recursive: true });
  return dir;
}

async function readError(dir: string): Promise<ConfigError> {
  try {
    await readOrgFolder(dir);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('readOrgFolder accepted the folder');
}

describe('organization config: reading a folder', () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'signet-org-'));
  });
  afterEach(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('collects only the files of the format, by relative path with forward slashes', async () => {
    const dir = await copyExample(tmp);
    await fs.writeFile(path.join(dir, 'README.md'), 'notes');
    await fs.writeFile(path.join(dir, 'templates', '.DS_Store'), 'junk');
    const files = await readOrgFolder(dir);
    expect([...files.keys()].sort()).to.deep.equal([
      'addons/legal-disclaimer.html.ejs',
      'addons/legal-disclaimer.yaml',
      'addons/winter-campaign.yaml',
      'images/contoso-logo.png',
      'org.yaml',
      'rules.yaml',
      'templates/ceo.html.ejs',
      'templates/ceo.txt.ejs',
      'templates/default.html.ejs',
      'templates/default.txt.ejs',
      'templates/reply.html.ejs',
      'templates/reply.txt.ejs',
      'templates/sales.html.ejs',
      'users.yaml',
    ]);
    expect(files.has('directory.yaml'), 'the directory is a separate source').to.equal(false);
    expect(files.get('images/contoso-logo.png')!.equals(await fs.readFile(path.join(dir, 'images/contoso-logo.png')))).to.equal(true);
  });

  it('refuses a symbolic link that leads outside the folder', async () => {
    const dir = await copyExample(tmp);
    const secret = path.join(tmp, 'secret.html.ejs');
    await fs.writeFile(secret, 'outside');
    await fs.symlink(secret, path.join(dir, 'templates', 'stolen.html.ejs'));
    await fs.symlink(tmp, path.join(dir, 'images', 'parent'));
    const error = await readError(dir);
    expect(error.issues.map((i) => i.file).sort()).to.deep.equal(['images/parent', 'templates/stolen.html.ejs']);
    for (const issue of error.issues) expect(issue.message).to.match(/symbolic link points outside the organization folder; refused/);
  });

  it('follows a symbolic link that stays inside the folder', async () => {
    const dir = await copyExample(tmp);
    await fs.symlink(path.join(dir, 'templates', 'reply.html.ejs'), path.join(dir, 'templates', 'short.html.ejs'));
    const files = await readOrgFolder(dir);
    expect(files.get('templates/short.html.ejs')!.toString()).to.equal(files.get('templates/reply.html.ejs')!.toString());
    const org = await loadOrgFolder(dir);
    expect(org.templates.has('short')).to.equal(true);
  });

  it('reads a folder reached through a symbolic link', async () => {
    const dir = await copyExample(tmp);
    const link = path.join(tmp, 'current');
    await fs.symlink(dir, link);
    expect((await loadOrgFolder(link)).orgId).to.equal('contoso');
  });

  it('reports a broken link, a missing folder and a file in place of a folder', async () => {
    const dir = await copyExample(tmp);
    await fs.symlink(path.join(dir, 'nowhere.png'), path.join(dir, 'images', 'gone.png'));
    expect((await readError(dir)).issues[0]).to.deep.include({ file: 'images/gone.png', message: 'symbolic link to nothing (broken link)' });
    expect((await readError(path.join(tmp, 'absent'))).issues[0].message).to.equal('cannot read the organization folder: no such folder');
    expect((await readError(path.join(dir, 'org.yaml'))).issues[0].message).to.equal('cannot read the organization folder: not a folder');
  });

  it('refuses a file over the size limit without reading it', async () => {
    const dir = await copyExample(tmp);
    const handle = await fs.open(path.join(dir, 'images', 'huge.png'), 'w');
    await handle.truncate(11 * 1024 * 1024);
    await handle.close();
    const issue = (await readError(dir)).issues[0];
    expect(issue).to.deep.include({ file: 'images/huge.png', message: 'file is 11 MiB; the limit is 10 MiB' });
  });
});
