// README.md is where a newcomer meets the command line. Every `signet …`
// command it shows (in fenced shell blocks and in inline code; written
// `signet`, `npx signet`, `node bin/signet.js` or an installed path such as
// `/opt/signet/current/bin/signet`) must name a subcommand the CLI has and
// only options that subcommand or one of its parents declares, and every
// `npm start`, `npm test` or `npm run <script>` must be a script of
// package.json. The commands are checked against the real commander program
// (buildProgram with every command loaded), never run: what they do is
// checked by their own tests, and the runbooks test runs the operator commands.
// Every problem names the file and line of the command, e.g.
//   README.md:41: npx signet sign … --explian: "signet sign" has no option --explian (did you mean --explain?)
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command, Option } from 'commander';
import { buildProgram } from '../../appliance/src/cli/program';
import { didYouMean } from '../../appliance/src/config/suggest';

const ROOT = resolve(__dirname, '../..');

/** Fenced blocks whose lines are shell commands: untagged ones too (README's listings hold no command at a line's start). */
const SHELL_BLOCKS = new Set(['', 'sh', 'bash', 'shell', 'zsh', 'console']);

/** Options of other programs that README's prose names on their own (not after a `signet …`), and whose they are. */
const FOREIGN_OPTIONS: Record<string, string> = {
  '--max-semi-space-size': 'a V8 flag the packaged launcher gives `signet serve`',
  '--policy-pack': "pulumi's (`pulumi preview|up --policy-pack infra/policy`)",
};

/** Words in front of a command that do not change which command it is. */
const PREFIX_WORDS = new Set(['do', 'then', 'else', 'time', '!', 'sudo', 'exec', 'command']);

/** A command the documentation shows: where, its text, and what it runs. */
interface DocCommand {
  line: number;
  /** The command as written (continuation lines joined). */
  text: string;
  /** From a fenced block (a complete command) or an inline code span (possibly a partial mention). */
  kind: 'block' | 'inline';
  /** Arguments after `signet` (or `npx signet`, `node bin/signet.js`, an installed path). */
  signet?: string[];
  /** `npm start`, `npm test`, `npm run NAME`: the script and the arguments after `--`. */
  npm?: { script: string; args: string[] };
}

/** What may hold commands: each shell line of a fenced block (continuations joined), each inline code span. */
function snippets(markdown: string): Array<{ line: number; text: string; kind: 'block' | 'inline' }> {
  const found: Array<{ line: number; text: string; kind: 'block' | 'inline' }> = [];
  const prose: string[] = [];
  let fence: { marker: string; shell: boolean } | undefined;
  let pending: { line: number; text: string } | undefined;
  markdown.split('\n').forEach((raw, index) => {
    const marker = /^[ \t]*(`{3,}|~{3,})[ \t]*([\w+-]*)/.exec(raw);
    if (!fence) {
      if (marker) fence = { marker: marker[1], shell: SHELL_BLOCKS.has(marker[2].toLowerCase()) };
      prose.push(marker ? '' : raw);
      return;
    }
    prose.push(''); // keeps the prose's line numbers those of the file
    if (marker && marker[1][0] === fence.marker[0] && marker[1].length >= fence.marker.length && marker[2] === '') {
      if (pending) found.push({ ...pending, kind: 'block' });
      fence = undefined;
      pending = undefined;
      return;
    }
    if (!fence.shell) return;
    const text = raw.trim();
    const start = pending?.line ?? index + 1;
    const joined = (pending ? `${pending.text} ${text}` : text).replace(/\s+/g, ' ');
    if (text.endsWith('\\')) {
      pending = { line: start, text: joined.slice(0, -1).trimEnd() };
      return;
    }
    pending = undefined;
    if (joined) found.push({ line: start, text: joined, kind: 'block' });
  });
  const text = prose.join('\n');
  // a code span may run over a line break, never over a paragraph break
  for (const m of text.matchAll(/(?<!`)(`+)(?!`)([\s\S]*?[^`])\1(?!`)/g)) {
    if (/\n[ \t]*\n/.test(m[2])) continue;
    found.push({ line: text.slice(0, m.index).split('\n').length, text: m[2].replace(/\s+/g, ' ').trim(), kind: 'inline' });
  }
  return found.sort((a, b) => a.line - b.line);
}

/** A command line cut into simple commands at `;`, `&&`, `||`, `|`, `(`, `)` and backticks outside quotes; a `#` comment ends it. */
function simpleCommands(line: string): string[] {
  const commands: string[] = [];
  let current = '';
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      current += ch;
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < line.length) current += line[++i];
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      current += ch;
    } else if (ch === '\\' && i + 1 < line.length) {
      current += ch + line[++i];
    } else if (ch === '#' && (i === 0 || /\s/.test(line[i - 1]))) {
      break;
    } else if (ch === '&' && (line[i - 1] === '>' || line[i + 1] === '>')) {
      current += ch; // 2>&1, &>file
    } else if (';|&()`'.includes(ch)) {
      commands.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  commands.push(current);
  return commands.map((c) => c.trim()).filter(Boolean);
}

/**
 * Shell words, quotes removed, without redirections (`< message.eml`, `2>/dev/null`);
 * the brackets of an optional part (`[--version N]`) are dropped, so what is inside is checked too.
 */
function shellWords(command: string): string[] {
  // a `<placeholder>` may hold spaces (`<customer tenant id>`)
  const words = [...command.matchAll(/(?:"(?:[^"\\]|\\.)*"|'[^']*'|<[^\s<>](?:[^<>]*[^\s<>])?>|[^\s"']+)+/g)].map((m) =>
    m[0].replace(/"((?:[^"\\]|\\.)*)"|'([^']*)'/g, (_all, double: string | undefined, single: string | undefined) => double ?? single ?? ''),
  );
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    if (/^<[^<>]+>$/.test(words[i])) {
      kept.push(words[i]);
      continue;
    }
    if (/^(?:\d*>>?|<<?|&>)$/.test(words[i])) {
      i++; // the redirection's target
      continue;
    }
    if (/^(?:\d*>>?|<|&>)\S/.test(words[i])) continue; // 2>/dev/null, 2>&1, >out.eml
    const word = words[i].replace(/^\[+/, '').replace(/\]+$/, '');
    if (word) kept.push(word);
  }
  return kept;
}

/** What one simple command runs, when it is the signet CLI or an npm script. */
function classify(words: string[]): Pick<DocCommand, 'signet' | 'npm'> | undefined {
  let i = 0;
  while (i < words.length && (PREFIX_WORDS.has(words[i]) || /^[A-Za-z_]\w*=/.test(words[i]))) i++;
  const [head, next] = [words[i], words[i + 1]];
  if (head === 'npx' && next === 'signet') return { signet: words.slice(i + 2) };
  if (head === 'signet' || /^(?:\.{0,2}\/)?(?:[\w.-]+\/)*bin\/signet$/.test(head ?? '')) return { signet: words.slice(i + 1) };
  if (head === 'node' && /(?:^|\/)bin\/signet(?:\.js)?$/.test(next ?? '')) return { signet: words.slice(i + 2) };
  if (head !== 'npm') return undefined;
  const rest = words.slice(i + 1);
  const dashes = rest.indexOf('--');
  const args = dashes < 0 ? [] : rest.slice(dashes + 1);
  const [verb, ...more] = dashes < 0 ? rest : rest.slice(0, dashes);
  if (verb === 'start' || verb === 'test' || verb === 'stop' || verb === 'restart') return { npm: { script: verb, args } };
  if (verb === 't') return { npm: { script: 'test', args } };
  if (verb === 'run' || verb === 'run-script') {
    const script = more.find((word) => !word.startsWith('-'));
    if (script) return { npm: { script, args } };
  }
  return undefined; // npm ci, npm install, …: npm's own commands
}

/** Every signet invocation and npm script a markdown text shows, with its line. */
function documentedCommands(markdown: string): DocCommand[] {
  const commands: DocCommand[] = [];
  for (const snippet of snippets(markdown)) {
    for (const simple of simpleCommands(snippet.text)) {
      const what = classify(shellWords(simple));
      // inline code naming the program alone (`signet`, `npx signet`) is the name, not a command
      if (what && !(snippet.kind === 'inline' && what.signet?.length === 0)) commands.push({ ...snippet, ...what });
    }
  }
  return commands;
}

/** Options written on their own in inline code (`--at 2026-12-20`), outside any command. */
function bareOptions(markdown: string): Array<{ line: number; text: string; flag: string }> {
  return snippets(markdown)
    .filter((s) => s.kind === 'inline')
    .flatMap((s) => {
      const m = /^(--[a-z][a-z0-9-]*)(?:[= ]|$)/.exec(s.text);
      return m ? [{ line: s.line, text: s.text, flag: m[1] }] : [];
    });
}

const commandPath = (command: Command): string => (command.parent ? `${commandPath(command.parent)} ${command.name()}` : command.name());
const flagsOf = (option: Option) => [option.long, option.short].filter((f): f is string => Boolean(f));
const isPlaceholder = (word: string) => /^(?:…|\.\.\.|<.*>|[A-Z][A-Z0-9_-]*)$/.test(word);

/** Every command of the program, the program included. */
function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap(allCommands)];
}

/**
 * The subcommand the leading words of `args` name, and the index of the first word after them;
 * `placeholder` when they stop at `…`, `DIR` or `<name>` instead of naming one.
 */
function locate(program: Command, args: string[]): { command: Command; next: number; placeholder?: boolean; problem?: string } {
  let command = program;
  let i = 0;
  for (; i < args.length && !args[i].startsWith('-') && command.commands.length > 0; i++) {
    const word = args[i];
    if (isPlaceholder(word) || word === 'help') return { command, next: i, placeholder: true };
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) {
      const names = command.commands.map((c) => c.name());
      const hint = didYouMean(word, names);
      return { command, next: i, problem: `"${commandPath(command)}" has no subcommand "${word}"${hint ? ` (did you mean "${hint}"?)` : ''}; it has ${names.join(', ')}` };
    }
    command = sub;
  }
  return { command, next: i };
}

/**
 * What is wrong with one `signet …` invocation against the program: a subcommand it lacks,
 * an option neither the subcommand nor a parent declares, more arguments than it takes; for a
 * complete command (a fenced block's), also a missing argument or mandatory option.
 */
function signetProblems(program: Command, args: string[], complete: boolean): string[] {
  const problems: string[] = [];
  const found = locate(program, args);
  if (found.problem) return [found.problem];
  if (found.placeholder) return [];
  const command = found.command;
  let i = found.next;
  const chain: Command[] = [];
  for (let c: Command | null = command; c; c = c.parent) chain.push(c);
  const options = chain.flatMap((c) => [...c.options]);
  const given = new Set<Option>();
  let positionals = 0;
  let help = false;
  let unknown = false;
  for (; i < args.length; i++) {
    const word = args[i];
    if (word === '--') {
      positionals += args.length - i - 1;
      break;
    }
    if (!/^--?[A-Za-z]/.test(word)) {
      positionals++;
      continue;
    }
    const [flag, value] = word.split(/=(.*)/s, 2);
    if (flag === '--help' || flag === '-h') {
      help = true;
      continue;
    }
    const option = options.find((o) => flagsOf(o).includes(flag));
    if (!option) {
      unknown = true;
      const hint = didYouMean(flag, options.flatMap((o) => (o.long ? [o.long] : [])));
      problems.push(`"${commandPath(command)}" has no option ${flag}${hint ? ` (did you mean ${hint}?)` : ''}`);
      continue;
    }
    given.add(option);
    const next = args[i + 1];
    if (value === undefined && (option.required || (option.optional && next !== undefined && !next.startsWith('-')))) i++;
  }
  const declared = command.registeredArguments;
  const names = declared.map((a) => `<${a.name()}>`).join(' ');
  const most = declared.some((a) => a.variadic) ? Infinity : declared.length;
  if (!unknown && positionals > most) {
    problems.push(`"${commandPath(command)}" takes ${most === 0 ? 'no arguments' : `at most ${most} (${names})`}, given ${positionals}`);
  }
  if (complete && !help) {
    if (command.commands.length > 0) problems.push(`"${commandPath(command)}" names no subcommand (it has ${command.commands.map((c) => c.name()).join(', ')})`);
    const required = declared.filter((a) => a.required).length;
    if (!unknown && positionals < required) problems.push(`"${commandPath(command)}" needs ${names}, given ${positionals} argument(s)`);
    for (const option of command.options) {
      if (option.mandatory && option.defaultValue === undefined && !option.envVar && !given.has(option)) {
        problems.push(`"${commandPath(command)}" requires ${option.long ?? option.short}`);
      }
    }
  }
  return problems;
}

/** Every problem of a markdown file's commands, each as `FILE:LINE: command: problem`. */
function markdownProblems(file: string, markdown: string, program: Command, scripts: Record<string, string>): string[] {
  const problems: string[] = [];
  const at = (c: { line: number; text: string }, problem: string) => `${file}:${c.line}: ${c.text}: ${problem}`;
  for (const command of documentedCommands(markdown)) {
    const complete = command.kind === 'block';
    if (command.signet) problems.push(...signetProblems(program, command.signet, complete).map((p) => at(command, p)));
    if (!command.npm) continue;
    const body = scripts[command.npm.script];
    if (body === undefined) {
      const hint = didYouMean(command.npm.script, Object.keys(scripts));
      problems.push(at(command, `package.json has no script "${command.npm.script}"${hint ? ` (did you mean "${hint}"?)` : ''}`));
      continue;
    }
    // a script that runs the CLI (`npm start` = `node bin/signet.js dev`) runs it with the arguments after `--`
    const signet = simpleCommands(body).map((c) => classify(shellWords(c))?.signet).filter((s): s is string[] => s !== undefined);
    if (signet.length === 0) continue;
    const invocation = [...signet[signet.length - 1], ...command.npm.args];
    problems.push(...signetProblems(program, invocation, complete).map((p) => at(command, `script "${command.npm!.script}" (${body}): ${p}`)));
  }
  const known = new Set(allCommands(program).flatMap((c) => c.options.flatMap(flagsOf)));
  for (const bare of bareOptions(markdown)) {
    if (known.has(bare.flag) || bare.flag in FOREIGN_OPTIONS || bare.flag === '--help') continue;
    const hint = didYouMean(bare.flag, [...known].filter((f) => f.startsWith('--')));
    problems.push(at(bare, `no signet command has the option ${bare.flag}${hint ? ` (did you mean ${hint}?)` : ''}, nor is it in FOREIGN_OPTIONS`));
  }
  return problems;
}

const readme = () => readFileSync(join(ROOT, 'README.md'), 'utf8');
const scripts = () => (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('README commands exist in the CLI and package.json (doc drift)', () => {
  let program: Command;
  before(() => (program = buildProgram()));

  it('finds the commands the README shows, in blocks and inline, with their lines', () => {
    const found = documentedCommands(readme());
    const paths = found.filter((c) => c.signet).map((c) => commandPath(locate(program, c.signet!).command));
    expect(paths).to.include.members(['signet sign', 'signet config validate', 'signet config seal', 'signet connectors script', 'signet status', 'signet explain', 'signet preview', 'signet serve', 'signet dev', 'signet keys create-local', 'signet directory sync']);
    expect(found.filter((c) => c.npm).map((c) => c.npm!.script)).to.include.members(['start', 'test', 'send-sample', 'bench', 'schema', 'package', 'test:only']);
    expect(found.some((c) => c.kind === 'block' && c.signet?.[0] === 'sign' && c.signet.includes('--explain'))).to.equal(true);
    expect(found.some((c) => c.kind === 'inline' && c.signet?.join(' ') === 'status --via fqdn')).to.equal(true); // a span over a line break
    for (const c of found) expect(c.line, c.text).to.be.greaterThan(0);
  });

  it('every signet subcommand and option in README.md is one the CLI declares, and every npm script one package.json has', () => {
    const problems = markdownProblems('README.md', readme(), program, scripts());
    expect(problems, `\n${problems.join('\n')}\n`).to.deep.equal([]);
  });

  it('so is every one in the runbooks', () => {
    const problems = readdirSync(join(ROOT, 'runbooks'))
      .filter((f) => f.endsWith('.md'))
      .sort()
      .flatMap((f) => markdownProblems(`runbooks/${f}`, readFileSync(join(ROOT, 'runbooks', f), 'utf8'), program, scripts()));
    expect(problems, `\n${problems.join('\n')}\n`).to.deep.equal([]);
  });

  it('fails, naming the line, for a misspelt option, subcommand or script and a command that would not parse', () => {
    // a copy of README.md with drift put in: each edit must find its text (if README changed, pick another line)
    const text = readme();
    const lines = text.split('\n');
    const line = (needle: string | RegExp) => lines.findIndex((l) => (typeof needle === 'string' ? l.includes(needle) : needle.test(l))) + 1;
    const edits: Array<[string | RegExp, string]> = [
      ['--in message.eml --out signed.eml --explain', '--in message.eml --out signed.eml --explian'],
      [/^npx signet config validate config\/examples\/contoso$/m, 'npx signet config valdate config/examples/contoso'],
      [/^npm run send-sample(?= +#)/m, 'npm run send-samples'],
      ['`signet dev --help`', '`signet dev --prot 2600`'],
      ['`--at 2026-12-20`', '`--att 2026-12-20`'],
      [/^signet config inspect contoso\.bundle(?= +#)/m, 'signet config inspect contoso.bundle x'],
      [/^signet config publish config\.bundle --to /m, 'signet config publish config.bundle --ot '],
    ];
    const broken = edits.reduce((t, [from, to]) => {
      expect(typeof from === 'string' ? t.includes(from) : from.test(t), `README.md no longer has ${String(from)}`).to.equal(true);
      return t.replace(from, to);
    }, text);
    const problems = markdownProblems('README.md', broken, program, scripts());
    const configSubcommands = program.commands.find((c) => c.name() === 'config')!.commands.map((c) => c.name()).join(', ');
    expect(problems).to.include.members([
      `README.md:${line('npx signet sign --org config/examples/contoso \\')}: npx signet sign --org config/examples/contoso --from tom.okafor@contoso.com --to buyer@fabrikam.example --in message.eml --out signed.eml --explian: "signet sign" has no option --explian (did you mean --explain?)`,
      `README.md:${line(/^npx signet config validate config\/examples\/contoso$/)}: npx signet config valdate config/examples/contoso: "signet config" has no subcommand "valdate" (did you mean "validate"?); it has ${configSubcommands}`,
      `README.md:${line(/^npm run send-sample +#/)}: npm run send-samples # in a second terminal: one message from the example organization: package.json has no script "send-samples" (did you mean "send-sample"?)`,
      `README.md:${line('`signet dev --help`')}: signet dev --prot 2600: "signet dev" has no option --prot (did you mean --port?)`,
      `README.md:${line('`--at 2026-12-20`')}: --att 2026-12-20: no signet command has the option --att (did you mean --at?), nor is it in FOREIGN_OPTIONS`,
      `README.md:${line(/^signet config inspect contoso\.bundle +#/)}: signet config inspect contoso.bundle x # metadata only, no key needed: "signet config inspect" takes at most 1 (<file>), given 2`,
    ]);
    const publish = problems.filter((p) => p.startsWith(`README.md:${line(/^signet config publish config\.bundle --to /)}:`));
    expect(publish.join('\n')).to.include('has no option --ot').and.to.include('"signet config publish" requires --to');
    expect(problems).to.have.length(8);
    expect(markdownProblems('README.md', text, program, scripts())).to.deep.equal([]);
  });

  it('reads shell the way the README writes it: continuations, quotes, redirections, optional parts, npm arguments', () => {
    const md = [
      'Intro `npx signet` and `signet …` name the CLI; `signet config` is a group.',
      '',
      '```sh',
      'signet config seal DIR --key "$(jq -r .orgKeyId outputs.json)" --out b.bundle [--version N]   # a comment: signet nope',
      'npx signet sign --org o --from a@b.example < in.eml > out.eml 2>&1 && signet status --node http://x:1 | cat',
      'node bin/signet.js explain --org o \\',
      '  --from a@b.example --kind reply',
      '/opt/signet/current/bin/signet serve --config /etc/signet/relay.yaml --check',
      'npm ci && npm start -- --port 2600',
      'npm run send-sample -- --from a@b.example --frm x',
      '```',
      '',
      '```yaml',
      'signet: not a command in YAML',
      '```',
    ].join('\n');
    const found = documentedCommands(md);
    expect(found.map((c) => [c.line, c.kind, c.signet?.join(' ') ?? `npm ${c.npm!.script} ${c.npm!.args.join(' ')}`.trim()])).to.deep.equal([
      [1, 'inline', '…'],
      [1, 'inline', 'config'],
      [4, 'block', 'config seal DIR --key $(jq -r .orgKeyId outputs.json) --out b.bundle --version N'],
      [5, 'block', 'sign --org o --from a@b.example'],
      [5, 'block', 'status --node http://x:1'],
      [6, 'block', 'explain --org o --from a@b.example --kind reply'],
      [8, 'block', 'serve --config /etc/signet/relay.yaml --check'],
      [9, 'block', 'npm start --port 2600'],
      [10, 'block', 'npm send-sample --from a@b.example --frm x'],
    ]);
    expect(markdownProblems('X.md', md, program, scripts())).to.deep.equal([
      'X.md:10: npm run send-sample -- --from a@b.example --frm x: script "send-sample" (node bin/signet.js send-sample): "signet send-sample" has no option --frm (did you mean --from?)',
    ]);
  });
});
