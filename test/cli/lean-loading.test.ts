// The broker and the `jit` command load only what they use (issue 16: a start within a second, an idle
// broker within 100 MB, every command's first line within 0.3 s). Each case runs the real `jit` in a child
// process with a preload that records every module it loads (test/support/module-trace.mjs), checks what
// the user sees, then which dependencies came in: no Slack, demo database, MySQL parser or driver for a
// broker without them, the MySQL grammar alone (not node-sql-parser's every dialect) where MySQL is used,
// neither store nor SQL parser for the commands that only talk to the broker's HTTP API.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UPSTREAM } from '../support/broker.js';
import { MYSQL_UPSTREAM } from '../support/mysql.js';

const TRACER = new URL('../support/module-trace.mjs', import.meta.url).href;
const JIT = new URL('../../bin/jit.js', import.meta.url).pathname;

interface Traced {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every module file the process loaded (paths and file: URLs). */
  files: string[];
  /** The packages under node_modules those files belong to. */
  packages: Set<string>;
}

let dir: string;
let traces = 0;

const packageOf = (file: string): string | null => /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1] ?? null;

function traced(child: ReturnType<typeof spawn>, out: string): Promise<Traced> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) =>
    child.once('close', (code) => {
      const files = readFileSync(out, 'utf8').split('\n').filter(Boolean);
      resolve({ code, stdout, stderr, files, packages: new Set(files.map(packageOf).filter((p): p is string => p !== null)) });
    }),
  );
}

/** Runs `jit ...args` under the tracer; a broker is stopped (SIGTERM) once its output matches `stopWhen`. */
function jit(args: string[], stopWhen?: RegExp): Promise<Traced> {
  const out = join(dir, `trace-${++traces}.txt`);
  writeFileSync(out, '');
  const child = spawn(process.execPath, ['--import', TRACER, JIT, ...args], {
    cwd: dir,
    env: { ...process.env, JIT_MODULE_TRACE: out, JIT_ADMIN_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (stopWhen) {
    let seen = '';
    const look = (d: Buffer) => {
      seen += d.toString();
      if (stopWhen.test(seen) && child.exitCode === null && !child.killed) child.kill('SIGTERM');
    };
    child.stdout?.on('data', look);
    child.stderr?.on('data', look);
  }
  return traced(child, out);
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? ok(a.port) : fail(new Error('no port'))));
    });
  });
}

/** A config under dir: these targets, the HTTP API on `http` (a closed port for the CLI cases). */
function config(name: string, targets: string[], http: string): string {
  const file = join(dir, name);
  const lines = [
    `data_dir: .jit-${name}`,
    `store: sqlite:.jit-${name}/jit.db`,
    'admin_token: lean-loading-test',
    `listen: { postgres: 127.0.0.1:0, mysql: 127.0.0.1:0, http: ${http} }`,
    'targets:',
    ...targets.map((t) => `  ${t}`),
    'rules:',
    '  - { id: reads, kinds: [read], action: allow }',
    'default: deny',
  ];
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

// What no command and no broker without Slack, the demo database or MySQL targets has any use for.
const NEVER = ['@slack/bolt', '@electric-sql/pglite', 'mysql2', 'selfsigned'];
const ENGINES = ['libpg-query', 'node-sql-parser', 'mysql2', 'fastify'];
const STORE = ['better-sqlite3', 'drizzle-orm'];
const CONFIG = ['zod', 'yaml'];
/** The pg driver itself (its Client), not the SCRAM helper the broker's own upstream connection borrows. */
const pgDriver = (t: Traced) => t.files.some((f) => /node_modules\/pg\/(lib\/client\.js|esm\/index\.mjs)$/.test(f));
const sqlParserBuilds = (t: Traced) =>
  t.files
    .map((f) => /node_modules\/node-sql-parser\/(index\.js|build\/\w+\.js)$/.exec(f)?.[1])
    .filter((b): b is string => b !== undefined)
    .sort();

let cli: string;
/** Where the CLI cases' config says the broker listens: nothing does. */
let closedHttp: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jit-lean-'));
  closedHttp = `127.0.0.1:${await freePort()}`;
  cli = config(
    'cli.yaml',
    [`app: { engine: postgres, upstream: "${UPSTREAM}" }`, 'shop: { engine: mysql, upstream: "mysql://root@127.0.0.1:1/shop" }'],
    closedHttp,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('jit --help and --version', () => {
  it.each([['--help'], ['--version']])('jit %s loads commander and the command registrations only', async (flag) => {
    const t = await jit([flag]);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(flag === '--help' ? /Usage: jit .*\n[\s\S]*sessions/ : /^jit-broker \d+\.\d+\.\d+/);
    expect([...t.packages].filter((p) => p !== 'commander' && p !== 'tsx' && p !== 'esbuild' && p !== 'get-tsconfig' && p !== 'resolve-pkg-maps')).toEqual([]);
  });
});

describe('commands that talk to the running broker', () => {
  it.each([
    ['approvals'],
    ['approve', '01ABC'],
    ['deny', '01ABC', '--reason', 'no'],
    ['revoke', '--build', 'b1'],
    ['revocations'],
    ['replay', '01ABC', '--url'],
  ])('jit %s: reads the config, loads neither a store nor an engine', async (...args) => {
    // --url last: the same closed port as the config's listen.http.
    const t = await jit(['--config', cli, ...args, ...(args.at(-1) === '--url' ? [`http://${closedHttp}`] : [])]);
    expect(t.stderr).toMatch(/cannot reach the broker at http:\/\/127\.0\.0\.1:\d+/);
    expect(t.code).toBe(1);
    for (const p of CONFIG) expect(t.packages).toContain(p);
    for (const p of [...NEVER, ...ENGINES, ...STORE, 'jose']) expect(t.packages).not.toContain(p);
    expect(pgDriver(t)).toBe(false);
  });
});

describe('commands that read the store', () => {
  it.each([
    [['sessions'], 'no sessions\n'],
    [['logins'], 'no logins\n'],
  ])('jit %s: the SQLite store, no engine, no JWT library', async (args, stdout) => {
    const t = await jit(['--config', cli, ...args]);
    expect(t.stdout).toBe(stdout);
    expect(t.code).toBe(0);
    for (const p of STORE) expect(t.packages).toContain(p);
    for (const p of [...NEVER, ...ENGINES, 'jose']) expect(t.packages).not.toContain(p);
    expect(pgDriver(t)).toBe(false);
  });
});

describe('jit policy check: the parser of the target engine only', () => {
  it('a PostgreSQL target: libpg-query, no MySQL parser', async () => {
    const t = await jit(['--config', cli, 'policy', 'check', '--target', 'app', 'SELECT 1']);
    expect(t.stdout).toMatch(/=> allow \(rule reads\)/);
    expect(t.packages).toContain('libpg-query');
    expect(sqlParserBuilds(t)).toEqual([]);
  });

  it("a MySQL target: node-sql-parser's MySQL build, not its every-dialect entry; no libpg-query", async () => {
    const t = await jit(['--config', cli, 'policy', 'check', '--target', 'shop', 'SELECT id FROM orders']);
    expect(t.stdout).toMatch(/=> allow \(rule reads\)/);
    expect(sqlParserBuilds(t)).toEqual(['build/mysql.js']);
    expect(t.packages).not.toContain('libpg-query');
  });

  it('a statement only the MariaDB grammar reads (RETURNING) loads that build too', async () => {
    const t = await jit(['--config', cli, 'policy', 'check', '--target', 'shop', 'DELETE FROM orders WHERE id = 1 RETURNING id']);
    expect(t.stdout).toMatch(/^deny\s+\(default\)\s+write\s+DELETE FROM orders/m);
    expect(sqlParserBuilds(t)).toEqual(['build/mariadb.js', 'build/mysql.js']);
  });
});

describe('jit start', () => {
  /** Starts a broker on `file`, stops it once `settled` shows in its output (its privilege check done). */
  const broker = (file: string, settled: RegExp) => jit(['--config', file, 'start'], settled);

  it('a PostgreSQL target, no Slack, no demo: no MySQL parser or driver, no pg driver, no Slack, no demo database', async () => {
    const file = config('pg.yaml', [`app: { engine: postgres, upstream: "${UPSTREAM}" }`], '127.0.0.1:0');
    await broker(file, /jit-broker ready/); // the first start generates the TLS certificate
    const t = await broker(file, /upstream role \\"postgres\\" is a superuser/);
    expect(t.stderr).toMatch(/jit-broker ready: postgres 127\.0\.0\.1:\d+, http http:\/\/127\.0\.0\.1:\d+, targets app/);
    expect(t.code).toBe(0);
    for (const p of ['libpg-query', 'fastify', ...STORE]) expect(t.packages).toContain(p);
    for (const p of NEVER) expect(t.packages).not.toContain(p);
    expect(sqlParserBuilds(t)).toEqual([]);
    // The privilege check reads pg_roles over the broker's own upstream connection: the driver stays unloaded.
    expect(pgDriver(t)).toBe(false);
  });

  it('a MySQL target only: the MySQL grammar alone, no libpg-query', async () => {
    const file = config('my.yaml', [`shop: { engine: mysql, upstream: "${MYSQL_UPSTREAM}" }`], '127.0.0.1:0');
    await broker(file, /jit-broker ready/);
    const t = await broker(file, /"target":"shop".*upstream account/);
    expect(t.code).toBe(0);
    expect(sqlParserBuilds(t)).toEqual(['build/mysql.js']);
    for (const p of ['libpg-query', ...NEVER]) expect(t.packages).not.toContain(p);
    expect(pgDriver(t)).toBe(false);
  });
});
