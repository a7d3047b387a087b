// The package as a user gets it: `npm pack` of this checkout, installed into an empty folder with npm, then
// `npx jit --version` and `npx jit start` on a config, a statement through psql, /healthz and /metrics.
// The install compiles better-sqlite3 when no prebuilt binary is reachable: about a minute here.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, run, UPSTREAM, type RunResult } from '../support/broker.js';
import { freePort } from '../support/fleet.js';

const ROOT = resolve('.');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const HEAD = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();

let dir: string;
let tarball: string;
let files: string[];
let broker: ChildProcess | undefined;
let log = '';

/** `npx jit …` in the folder the package is installed in. */
function npx(args: string[]): Promise<RunResult> {
  return new Promise((done) => {
    execFile('npx', ['--no-install', 'jit', ...args], { cwd: join(dir, 'app'), timeout: 60_000 }, (err, stdout, stderr) =>
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jit-pack-'));
  // The build is current (the global setup made it); `prepare` would only make it again.
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
  const [packed] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  tarball = join(dir, packed!.filename);
  files = packed!.files.map((f) => f.path);
  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), '{ "name": "pack-test", "private": true }\n');
  execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: app, stdio: 'pipe', timeout: 280_000 });
}, 300_000);

afterAll(async () => {
  if (broker && broker.exitCode === null) {
    broker.kill('SIGTERM');
    await new Promise((r) => broker!.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('holds the build, the entry, the migrations and the changelog, and no sources, tests or build state', () => {
    for (const f of [
      'package.json',
      'bin/jit.js',
      'dist/broker/cli/index.js',
      'dist/broker/main.js',
      'dist/build-info.json',
      'migrations/sqlite/meta/_journal.json',
      'migrations/postgres/meta/_journal.json',
      'CHANGELOG.md',
      'README.md',
    ])
      expect(files).toContain(f);
    expect(files.filter((f) => /\.ts$|^test\/|^bench\/|^broker\/|^bot\/|tsbuildinfo|^docs\//.test(f))).toEqual([]);
  });

  it('depends on no dev tooling', () => {
    for (const dev of ['tsx', 'typescript', 'vitest', 'vite', 'drizzle-kit', '@biomejs/biome', 'fast-check']) {
      expect(pkg.dependencies[dev]).toBeUndefined();
      expect(existsSync(join(dir, 'app', 'node_modules', dev))).toBe(false);
    }
  });
});

describe('the installed package', () => {
  it('npx jit --version prints the version and the commit it was built from', async () => {
    const r = await npx(['--version']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`jit-broker ${pkg.version} (commit ${HEAD.slice(0, 12)})`);
  });

  it('npx jit start runs a broker on a config: a statement through psql is recorded, /healthz and /metrics carry the version', async () => {
    const [pgPort, httpPort] = [await freePort(), await freePort()];
    const cfg = join(dir, 'jit.yaml');
    writeFileSync(
      cfg,
      [
        `data_dir: ${join(dir, 'data')}`,
        `listen: { postgres: 127.0.0.1:${pgPort}, mysql: null, http: 127.0.0.1:${httpPort} }`,
        'tls: { plaintext: loopback }',
        `targets: { app: { engine: postgres, upstream: "${UPSTREAM}" } }`,
        'rules: [{ id: reads, kinds: [read], action: allow }]',
        'default: deny',
        'metrics: { public: true }',
        '',
      ].join('\n'),
    );
    broker = spawn('npx', ['--no-install', 'jit', 'start', '--config', cfg], { cwd: join(dir, 'app') });
    broker.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const base = `http://127.0.0.1:${httpPort}`;
    await eventually(async () => (await fetch(`${base}/readyz`).catch(() => null))?.ok, 30_000).catch(() => {
      throw new Error(`not ready: ${log}`);
    });

    const health = (await (await fetch(`${base}/healthz`)).json()) as { status: string; version: string; commit: string };
    expect(health).toEqual({ status: 'ok', version: pkg.version, commit: HEAD });
    // The console's assets ship in the package and are served from it.
    const css = await fetch(`${base}/ui/assets/app.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toContain('text/css');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain(`jit_build_info{version="${pkg.version}",commit="${HEAD}"} 1`);

    const token = (await npx(['--config', cfg, 'token', '--build', 'pack-1', '--ttl', '5m'])).stdout.trim();
    const through = { PGHOST: '127.0.0.1', PGPORT: String(pgPort), PGUSER: 'ci', PGDATABASE: 'app', PGPASSWORD: token, PGSSLMODE: 'require' };
    const psql = await run('psql', ['-XAtc', "SELECT 'through the package'"], through);
    expect(psql.stderr).toBe('');
    expect(psql.stdout.trim()).toBe('through the package');
    const denied = await run('psql', ['-XAtc', 'CREATE TABLE pack_nope (id int)'], through);
    expect(denied.code).not.toBe(0);

    let last: RunResult | undefined;
    const sessions = await eventually(async () => {
      last = await npx(['--config', cfg, 'sessions', '--build', 'pack-1', '--json']);
      const rows = JSON.parse(last.stdout || '[]') as { statementCount: number; denied: number }[];
      return rows.reduce((n, r) => n + r.statementCount, 0) === 2 ? rows : null;
    }, 10_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(last)}`);
    });
    // Two sessions (one psql each): the read ran, the CREATE was refused.
    expect(sessions.map((s) => s.denied).sort()).toEqual([0, 1]);
  });
});
