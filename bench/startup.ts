// How lean the broker and the `jit` CLI are: (1) the broker's time from start to ready (GET /readyz answers
// 200) without the demo database, (2) its RSS once idle without Slack, and (3) each CLI command's time to
// its first line of output. Then where the memory goes: the RSS a bare Node process adds for each large
// dependency loaded alone. Runs whatever `bin/jit.js` runs (the build in dist/ when it is current, else the
// sources through tsx). Prints figures; asserts nothing.
//
// usage: npx tsx bench/startup.ts            (targets: ≤ 1000 ms ready, ≤ 100 MB idle, ≤ 300 ms per command)
//
// Options, all through the environment:
//   RUNS=5            starts per figure (the median is printed, with min and max)
//   SETTLE_MS=15000   wait after ready before reading the idle RSS (at rest: the broker gives back what its
//                     start grew once it has been quiet a few seconds, broker/memory.ts); RSS 2 s after ready
//                     is printed too
//   UPSTREAM_PG=postgres://postgres@127.0.0.1:5432/test   the target (only its address is used to start)
//   JIT_BIN=bin/jit.js   the entry to measure (e.g. an installed package's node_modules/.bin/jit)
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = Number(process.env.RUNS ?? 5);
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 15000);
const UPSTREAM_PG = process.env.UPSTREAM_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const JIT_BIN = resolve(REPO, process.env.JIT_BIN ?? 'bin/jit.js');
const READY_TARGET_MS = 1000;
const RSS_TARGET_MB = 100;
const CLI_TARGET_MS = 300;

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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

/** Every process under pid (the demo database, an indexer would be a thread): their RSS counts too. */
function descendants(pid: number): number[] {
  const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout;
  const kids = out
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
  return kids.flatMap((k) => [k, ...descendants(k)]);
}

function stats(xs: number[]): { med: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { med: s[Math.floor(s.length / 2)] ?? Number.NaN, min: s[0] ?? Number.NaN, max: s[s.length - 1] ?? Number.NaN };
}

const fmt = (x: { med: number; min: number; max: number }, unit: string, digits = 0): string =>
  `${x.med.toFixed(digits)} ${unit} (min ${x.min.toFixed(digits)}, max ${x.max.toFixed(digits)})`;

async function writeConfig(dir: string): Promise<{ cfg: string; http: number; pg: number }> {
  const [pg, my, http] = [await freePort(), await freePort(), await freePort()];
  const cfg = join(dir, 'jit.yaml');
  writeFileSync(
    cfg,
    [
      `data_dir: ${join(dir, 'data')}`,
      `store: sqlite:${join(dir, 'data', 'jit.db')}`,
      `listen: { postgres: 127.0.0.1:${pg}, mysql: 127.0.0.1:${my}, http: 127.0.0.1:${http} }`,
      'targets:',
      `  app: { engine: postgres, upstream: "${UPSTREAM_PG}" }`,
      'rules:',
      '  - { id: reads, kinds: [read], action: allow }',
      'default: deny',
      'admin_token: generate',
      'tls: { plaintext: loopback }',
      '',
    ].join('\n'),
  );
  return { cfg, http, pg };
}

/** Starts the broker, returns ms to the first 200 from /readyz and the idle RSS after SETTLE_MS. */
async function startOnce(cfg: string, http: number): Promise<{ readyMs: number; rssMb: number; earlyMb: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [JIT_BIN, '--config', cfg, 'start'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let readyMs = Number.NaN;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the broker exited (${child.exitCode}): ${stderr}`);
      const ok = await fetch(`http://127.0.0.1:${http}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) {
        readyMs = performance.now() - t0;
        break;
      }
      if (performance.now() - t0 > 30_000) throw new Error(`not ready after 30 s: ${stderr}`);
      await sleep(5);
    }
    const pid = child.pid ?? 0;
    const rssNow = () => [pid, ...descendants(pid)].reduce((a, p) => a + rssKb(p), 0) / 1024;
    await sleep(Math.min(2000, SETTLE_MS));
    const early = rssNow();
    await sleep(Math.max(0, SETTLE_MS - 2000));
    return { readyMs, rssMb: rssNow(), earlyMb: early };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

/** ms from spawn to the first byte on stdout or stderr (whichever speaks first). */
function firstLine(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ ms: number; code: number | null; out: string }> {
  return new Promise((ok) => {
    const t0 = performance.now();
    let ms = Number.NaN;
    let out = '';
    const child = spawn(process.execPath, [JIT_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const seen = (d: Buffer): void => {
      if (Number.isNaN(ms)) ms = performance.now() - t0;
      out += d.toString();
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.once('close', (code) => ok({ ms, code, out }));
  });
}

/** RSS a bare `node` adds by importing one module (the dependency and what it loads), in MB. */
function moduleRss(spec: string): number {
  const code = `const before = process.memoryUsage().rss; await import(${JSON.stringify(spec)}); globalThis.gc?.(); console.log((process.memoryUsage().rss - before) / 1048576);`;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { cwd: REPO, encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : Number.NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-startup-'));
  try {
    const { cfg, http, pg } = await writeConfig(dir);
    console.log(`entry: ${JIT_BIN}; node ${process.version}; ${RUNS} runs each, median (min, max)`);

    // The first start creates the store, key and certificate; it is not counted.
    await startOnce(cfg, http);
    const starts: { readyMs: number; rssMb: number; earlyMb: number }[] = [];
    for (let i = 0; i < RUNS; i++) starts.push(await startOnce(cfg, http));
    const ready = stats(starts.map((s) => s.readyMs));
    const rss = stats(starts.map((s) => s.rssMb));
    const early = stats(starts.map((s) => s.earlyMb));

    // The CLI runs beside a running broker (the API commands need one) that recorded one session.
    const running = spawn(process.execPath, [JIT_BIN, '--config', cfg, 'start'], { stdio: 'ignore' });
    const cli: { name: string; t: ReturnType<typeof stats>; code: number | null }[] = [];
    try {
      while (
        !(await fetch(`http://127.0.0.1:${http}/readyz`).then(
          (r) => r.ok,
          () => false,
        ))
      )
        await sleep(20);
      const token = (await firstLine(['--config', cfg, 'token', '--build', 'bench', '--ttl', '10m'])).out.trim();
      const psql = spawnSync('psql', ['-XAtc', 'SELECT 1'], {
        env: { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(pg), PGUSER: 'bench', PGDATABASE: 'app', PGPASSWORD: token, PGSSLMODE: 'disable' },
        encoding: 'utf8',
      });
      if (psql.status !== 0) throw new Error(`psql through the broker failed: ${psql.stderr}`);
      const listed = await firstLine(['--config', cfg, 'sessions', '--build', 'bench', '--json']);
      const session = (JSON.parse(listed.out) as { id: string }[])[0]?.id ?? 'none';
      const commands: { name: string; args: string[] }[] = [
        { name: 'jit --version', args: ['--version'] },
        { name: 'jit --help', args: ['--help'] },
        { name: 'jit token', args: ['--config', cfg, 'token', '--build', 'bench', '--ttl', '10m'] },
        { name: 'jit sessions', args: ['--config', cfg, 'sessions'] },
        { name: 'jit session ID', args: ['--config', cfg, 'session', session] },
        { name: 'jit replay ID', args: ['--config', cfg, 'replay', session] },
        { name: 'jit approvals', args: ['--config', cfg, 'approvals'] },
        { name: 'jit revocations', args: ['--config', cfg, 'revocations'] },
        { name: 'jit logins', args: ['--config', cfg, 'logins'] },
        { name: 'jit policy show', args: ['--config', cfg, 'policy', 'show'] },
        { name: 'jit policy history', args: ['--config', cfg, 'policy', 'history'] },
        { name: 'jit policy check', args: ['--config', cfg, 'policy', 'check', '--target', 'app', 'SELECT 1'] },
      ];
      for (const c of commands) {
        const runs = [];
        for (let i = 0; i < RUNS; i++) runs.push(await firstLine(c.args));
        cli.push({ name: c.name, t: stats(runs.map((r) => r.ms)), code: runs[0]?.code ?? null });
      }
    } finally {
      running.kill('SIGTERM');
      await new Promise((r) => running.once('exit', r));
    }

    const mark = (ok: boolean): string => (ok ? 'met' : 'NOT met');
    console.log('');
    console.log(
      `broker ready (GET /readyz 200 after start, no demo)  ${fmt(ready, 'ms')}   target ≤ ${READY_TARGET_MS} ms: ${mark(ready.med <= READY_TARGET_MS)}`,
    );
    console.log(
      `broker idle RSS (no Slack, ${SETTLE_MS} ms after ready)   ${fmt(rss, 'MB', 1)}   target ≤ ${RSS_TARGET_MB} MB: ${mark(rss.med <= RSS_TARGET_MB)}`,
    );
    console.log(`  (2000 ms after ready, before the idle reducer has run: ${fmt(early, 'MB', 1)})`);
    console.log('');
    console.log(`CLI, time to its first line of output (target ≤ ${CLI_TARGET_MS} ms)`);
    for (const c of cli) {
      console.log(`  ${c.name.padEnd(20)} ${fmt(c.t, 'ms').padEnd(30)} exit ${c.code}  ${mark(c.t.med <= CLI_TARGET_MS)}`);
    }
    const worst = Math.max(...cli.map((c) => c.t.med));
    console.log(`  slowest median ${worst.toFixed(0)} ms: ${mark(worst <= CLI_TARGET_MS)}`);

    console.log('');
    const bare = spawnSync(process.execPath, ['-e', 'console.log(process.memoryUsage().rss / 1048576)'], { encoding: 'utf8' });
    console.log(
      `RSS of a bare node process: ${Number(bare.stdout.trim()).toFixed(1)} MB; what importing one dependency alone adds to it (MB; shared parts count in each):`,
    );
    for (const m of [
      'node-sql-parser',
      'node-sql-parser/build/mariadb.js',
      'node-sql-parser/build/mysql.js',
      '@slack/bolt',
      'libpg-query',
      'fastify',
      'better-sqlite3',
      'drizzle-orm/better-sqlite3',
      'pg',
      'mysql2',
      'pino',
      'prom-client',
      'zod',
      'jose',
      '@electric-sql/pglite',
      'tsx/esm/api',
    ]) {
      console.log(`  ${m.padEnd(34)} ${moduleRss(m).toFixed(1)}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
