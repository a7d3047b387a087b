// The `jit` command's output as a user sees it: piped into a reader that closes early, it exits quietly
// (no EPIPE stack trace); `jit session ID` wraps long SQL (saying when it had to cut) and shows it whole
// on one line with --wide.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startTestBroker, UPSTREAM, type TestBroker } from '../support/broker.js';

describe('a closed pipe', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'jit-epipe-'));
    writeFileSync(join(dir, 'jit.yaml'), `data_dir: .jit\nstore: sqlite:.jit/jit.db\ntargets:\n  app: { engine: postgres, upstream: "${UPSTREAM}" }\n`);
    // Far more output than a pipe holds, so the CLI is still writing when the reader has gone.
    writeFileSync(join(dir, 'big.sql'), Array.from({ length: 3000 }, (_, i) => `SELECT ${i}`).join(';\n'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const piped = (args: string, reader: string) =>
    run('bash', ['-c', `set -o pipefail; "${process.execPath}" bin/jit.js --config "${dir}/jit.yaml" ${args} < "${dir}/big.sql" | ${reader}`]);

  it.each([
    ['policy check | head -1', 'policy check --target app', 'head -1', /^DECISION\s+RULE\s+KINDS\s+STATEMENT\n$/],
    ['policy check --json | head -c 1', 'policy check --target app --json', 'head -c 1', /^\{$/],
  ])('jit %s: exits quietly, no stack trace', async (_name, args, reader, stdout) => {
    const res = await piped(args, reader);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(stdout);
  });
});

describe('jit session ID: long SQL', () => {
  let t: TestBroker;
  let sessionId: string;
  const words = (n: number, tag: string) => Array.from({ length: n }, (_, i) => `'${tag}${String(i).padStart(3, '0')}' AS ${tag}c${i}`).join(', ');
  // About 150 characters: wraps onto two lines. About 1300: more than four lines, so it is cut.
  const medium = `SELECT ${words(8, 'med')}`;
  const long = `SELECT ${words(60, 'lng')}`;
  const jit = (...args: string[]) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, ...args]);

  beforeAll(async () => {
    t = await startTestBroker();
    const c = new pg.Client(t.pgConfig(await t.token({ build: 'cli-output/1' })));
    await c.connect();
    await c.query(medium);
    await c.query(long);
    await c.end();
    sessionId = (await t.broker.store.listSessions({ build: 'cli-output/1' }))[0]!.id;
  });
  afterAll(async () => t?.stop());

  it('by default wraps SQL at 80 columns, shows a statement of a few lines whole, and says when it cut one', async () => {
    const res = await jit('session', sessionId);
    expect(res.code).toBe(0);
    const lines = res.stdout.split('\n');
    const header = lines.findIndex((l) => l.startsWith('#'));
    const sqlColumn = lines[header]!.indexOf('SQL');
    const table = lines.slice(header + 1).filter((l) => /^\s*\d*\s/.test(l) && l.length > sqlColumn);
    expect(table.length).toBeGreaterThan(6); // 2 lines for the medium statement, 4 for the long one, and others
    for (const line of table) expect(line.slice(sqlColumn).split('  ')[0]!.length).toBeLessThanOrEqual(80);
    // Every part of the medium statement is there, across lines.
    for (const w of medium.split(' ')) expect(res.stdout).toContain(w.replace(/,$/, ''));
    expect(res.stdout).toContain("'lng000'");
    expect(res.stdout).not.toContain("'lng059'");
    expect(res.stdout).toMatch(/…/);
    expect(res.stdout).toContain('(long SQL or errors were cut, ending in …: --wide or --json shows them whole)');
  });

  it('--wide shows every statement whole, on one line', async () => {
    const res = await jit('session', sessionId, '--wide');
    expect(res.code).toBe(0);
    const lines = res.stdout.split('\n');
    expect(lines.some((l) => l.includes(medium))).toBe(true);
    expect(lines.some((l) => l.includes(long))).toBe(true);
    expect(res.stdout).not.toContain('were cut');
  });
});
