// Memory per idle session: a broker (its own process, as bench/pgbench.sh starts it) holding N clients that
// logged in and then send nothing — PostgreSQL over TLS and plaintext, MySQL over TLS and plaintext. The
// clients live in a separate process, so only the broker's memory is counted. After each step the broker's
// heap is collected (through its inspector) and its memory read: RSS, V8 heap used, external and
// arrayBuffers; per session = (with N sessions − before) ÷ N. Prints figures; asserts nothing.
//
// usage: npx tsx bench/idle-sessions.ts
//
// Options, all through the environment:
//   N=400                 idle sessions per kind. Each holds one upstream connection: PostgreSQL's default
//                         max_connections is 100, so the PostgreSQL target goes through a pgbouncer in
//                         transaction mode (started here, when installed) that holds them all on a few
//                         server connections; for MySQL, MariaDB's max_connections is raised (SET GLOBAL,
//                         until its restart) when it is below N + 50
//   PGBOUNCER=pgbouncer   the binary; PGBOUNCER= (empty): the target is PostgreSQL itself (then N ≤ ~70)
//   KINDS="pg-tls pg-plain my-tls my-plain"   which kinds to run, in order
//   STATES="login used"   login: each client logs in and sends nothing more; used: each client first runs
//                         `SELECT 1` and one statement that sends and reads back WORK_BYTES (so messages
//                         span reads both ways), then sends nothing more (a pooled connection between uses)
//   WORK_BYTES=200000
//   SETTLE_MS=1500        wait after the last login before measuring
//   SNAPSHOT_DIR=         a folder: write a heap snapshot of the broker before and with the sessions of
//                         each kind there, and print the heap objects that grew, per session, by type
//   UPSTREAM_PG=postgres://postgres@127.0.0.1:5432/test  UPSTREAM_MYSQL=mysql://root@127.0.0.1:3306/test
//   TRIM=1                when gdb is installed: after each GC, also call malloc_trim(0) in the broker (gdb -p)
//                         and read its RSS again: memory malloc holds free is then told from memory in use
//   KEEP_TMP=0            1: keep the temp dir (config, broker log, store)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Inspector, type Memory, printGrowth } from './broker-memory.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.N ?? 400);
const PGBOUNCER = process.env.PGBOUNCER ?? 'pgbouncer';
const STATES = (process.env.STATES ?? 'login used').split(/\s+/).filter(Boolean);
const WORK_BYTES = Number(process.env.WORK_BYTES ?? 200_000);
const KINDS = (process.env.KINDS ?? 'pg-tls pg-plain my-tls my-plain').split(/\s+/).filter(Boolean);
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 1500);
const SNAPSHOT_DIR = process.env.SNAPSHOT_DIR ?? '';
const UPSTREAM_PG = process.env.UPSTREAM_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
const UPSTREAM_MYSQL = process.env.UPSTREAM_MYSQL ?? 'mysql://root@127.0.0.1:3306/test';
/** Logins at once (the listener's max_logins is 256 by default). */
const CONCURRENCY = 16;

type Kind = 'pg-tls' | 'pg-plain' | 'my-tls' | 'my-plain';

// ---------------------------------------------------------------- the client process
async function clientMain(kind: Kind, port: number, token: string, n: number, used: boolean): Promise<void> {
  const closers: (() => Promise<unknown>)[] = [];
  const open = async (): Promise<void> => {
    if (kind.startsWith('pg')) {
      const { default: pg } = await import('pg');
      const c = new pg.Client({
        host: '127.0.0.1',
        port,
        user: 'bench',
        password: token,
        database: kind.startsWith('pg') ? 'app' : 'my',
        ssl: kind === 'pg-tls' ? { rejectUnauthorized: false } : false,
      });
      c.on('error', () => {});
      await c.connect();
      if (used) {
        await c.query('SELECT 1');
        await c.query('SELECT length($1::text) AS n, $1::text AS t', ['x'.repeat(WORK_BYTES)]);
      }
      closers.push(() => c.end());
    } else {
      const { default: mysql } = await import('mysql2/promise');
      const c = await mysql.createConnection({
        host: '127.0.0.1',
        port,
        user: 'bench',
        password: token,
        database: 'my',
        enableCleartextPlugin: true,
        ...(kind === 'my-tls' ? { ssl: { rejectUnauthorized: false } } : {}),
      });
      c.on('error', () => {});
      if (used) {
        await c.query('SELECT 1');
        await c.query('SELECT length(?) AS n, ? AS t', ['x'.repeat(WORK_BYTES), 'x'.repeat(WORK_BYTES)]);
      }
      closers.push(() => c.end());
    }
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONCURRENCY, n) }, async () => {
      while (next < n) {
        next++;
        await open();
      }
    }),
  );
  process.stdout.write('ready\n');
  // Idle until told to go (stdin closes): then every client logs out.
  await new Promise<void>((resolve) => {
    process.stdin.on('end', resolve);
    process.stdin.resume();
  });
  await Promise.allSettled(closers.map((c) => c()));
  process.exit(0);
}

// ---------------------------------------------------------------- the run
function waitLine(child: ChildProcess, stream: 'stdout' | 'stderr', re: RegExp, ms: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${re} after ${ms} ms`)), ms);
    const rl = createInterface({ input: child[stream]! });
    rl.on('line', (line) => {
      const m = re.exec(line);
      if (m) {
        clearTimeout(timer);
        rl.close();
        resolve(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`exited (${code}) before ${re}`)));
  });
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;

const TRIM = process.env.TRIM !== '0' && spawnSync('gdb', ['--version'], { stdio: 'ignore' }).status === 0;

/** The process's RSS after glibc's malloc_trim(0) (gdb attaches for a moment), or NaN without gdb. */
function trimmedRss(pid: number): number {
  if (!TRIM) return Number.NaN;
  spawnSync('gdb', ['-p', String(pid), '-batch', '-ex', 'call (int)malloc_trim(0)'], { stdio: 'ignore' });
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** Whether `bin` runs (`bin --version`). */
function installed(bin: string): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** pgbouncer in transaction mode before UPSTREAM_PG: N broker upstream connections on a few server ones. */
async function startPgbouncer(tmp: string, port: number): Promise<{ url: string; child: ChildProcess }> {
  const u = new URL(UPSTREAM_PG);
  const dir = join(tmp, 'pgbouncer');
  mkdirSync(dir);
  const user = decodeURIComponent(u.username || 'postgres');
  const db = u.pathname.slice(1) || 'postgres';
  writeFileSync(join(dir, 'userlist.txt'), `"${user}" ""\n`);
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]
idle = host=${u.hostname} port=${u.port || 5432} dbname=${db} user=${user} pool_mode=transaction
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${dir}/userlist.txt
default_pool_size = 4
max_client_conn = ${N + 100}
ignore_startup_parameters = extra_float_digits,client_encoding,DateStyle,TimeZone
logfile = ${dir}/pgbouncer.log
log_connections = 0
log_disconnections = 0
`,
  );
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    chmodSync(tmp, 0o755); // pgbouncer runs as postgres: it must reach its folder
    spawnSync('chown', ['-R', 'postgres', dir]);
  }
  const child = spawn(PGBOUNCER, [...(asRoot ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')], { stdio: 'ignore' });
  const { default: pg } = await import('pg');
  for (let i = 0; ; i++) {
    const c = new pg.Client({ host: '127.0.0.1', port, user, database: 'idle', ssl: false });
    const ok = await c.connect().then(
      () => c.end().then(() => true),
      () => false,
    );
    if (ok) break;
    if (i > 100) {
      child.kill('SIGTERM');
      throw new Error(`pgbouncer is not ready after 10 s; see ${dir}/pgbouncer.log`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `postgres://${encodeURIComponent(user)}@127.0.0.1:${port}/idle`, child };
}

/** MariaDB's max_connections, raised (until its restart) when below what N sessions need. */
async function roomInMysql(n: number): Promise<void> {
  const { default: mysql } = await import('mysql2/promise');
  const c = await mysql.createConnection(UPSTREAM_MYSQL);
  try {
    const [rows] = await c.query('SELECT @@max_connections AS m');
    const max = Number((rows as { m: number }[])[0]!.m);
    if (max < n + 50) {
      await c.query(`SET GLOBAL max_connections = ${n + 50}`);
      console.error(`bench: MariaDB max_connections raised from ${max} to ${n + 50} (until it restarts)`);
    }
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'jit-idle.'));
  const cfg = join(tmp, 'jit.yaml');
  const pgPort = 26500 + Math.floor(Math.random() * 400);
  const myPort = pgPort + 1000;
  const httpPort = pgPort + 2000;
  let bouncer: ChildProcess | null = null;
  let upstreamPg = UPSTREAM_PG;
  if (PGBOUNCER && installed(PGBOUNCER)) {
    const b = await startPgbouncer(tmp, pgPort + 3000);
    bouncer = b.child;
    upstreamPg = b.url;
  } else if (N > 70) console.error(`bench: no pgbouncer: N=${N} PostgreSQL sessions may exceed the server's max_connections`);
  if (KINDS.some((k) => k.startsWith('my'))) await roomInMysql(N);
  writeFileSync(
    cfg,
    `data_dir: ${tmp}/data
store: sqlite:${tmp}/data/jit.db
listen: { postgres: 127.0.0.1:${pgPort}, mysql: 127.0.0.1:${myPort}, http: 127.0.0.1:${httpPort} }
tls: { plaintext: loopback }
targets:
  app: { engine: postgres, upstream: "${upstreamPg}" }
  my: { engine: mysql, upstream: "${UPSTREAM_MYSQL}" }
rules:
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`,
  );
  const clients: ChildProcess[] = [];
  let broker: ChildProcess | null = null;
  const stopBroker = async () => {
    if (!broker || broker.exitCode !== null) return;
    const exited = new Promise((r) => broker!.once('exit', r));
    broker.kill('SIGTERM');
    await exited;
  };
  const cleanup = () => {
    for (const c of clients) c.kill('SIGKILL');
    broker?.kill('SIGTERM');
    bouncer?.kill('SIGTERM');
    if (process.env.KEEP_TMP === '1') console.error(`bench: kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  };
  process.on('SIGINT', () => (cleanup(), process.exit(130)));
  /** A fresh broker (same config, data dir and store), ready, with its inspector open. */
  const startBroker = async (): Promise<Inspector> => {
    const b = spawn(process.execPath, ['--inspect=127.0.0.1:0', join(REPO, 'bin/jit.js'), '--config', cfg, 'start'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    broker = b;
    const log = createWriteStream(join(tmp, 'broker.log'), { flags: 'a' });
    b.stdout!.pipe(log);
    const inspectorUrl = (await waitLine(b, 'stderr', /(ws:\/\/\S+)/, 30_000))[1]!;
    b.stderr!.pipe(log);
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${httpPort}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 300) throw new Error(`the broker is not ready after 30 s; see ${tmp}/broker.log`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return Inspector.open(inspectorUrl);
  };
  const mintToken = () =>
    new Promise<string>((resolve, reject) => {
      const t = spawn(process.execPath, [join(REPO, 'bin/jit.js'), '--config', cfg, 'token', '--build', 'idle-bench', '--ttl', '1h'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let s = '';
      t.stdout.on('data', (d: Buffer) => (s += d.toString()));
      t.on('exit', (code) => (code === 0 ? resolve(s.trim()) : reject(new Error(`jit token exited ${code}`))));
    });
  const self = fileURLToPath(import.meta.url);
  const runClients = async (token: string, kind: Kind, n: number, state: string): Promise<() => Promise<void>> => {
    const port = kind.startsWith('pg') ? pgPort : myPort;
    const c = spawn(process.execPath, ['--import', 'tsx', self, '--client', kind, String(port), token, String(n), state], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    clients.push(c);
    await waitLine(c, 'stdout', /^ready$/, 120_000);
    return async () => {
      const exited = new Promise((r) => c.once('exit', r));
      c.stdin!.end();
      await exited;
      clients.splice(clients.indexOf(c), 1);
    };
  };
  const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS));

  try {
    let token = '';
    console.log(`idle sessions: a fresh broker per kind; memory read before any GC and after a full GC (node ${process.version})`);
    console.log();
    const rows: string[] = [];
    for (const state of STATES)
      for (const kind of KINDS as Kind[]) {
        const label = `${kind}/${state}`;
        const inspector = await startBroker();
        token ||= await mintToken();
        // Warm up: the first sessions load modules, the catalog, TLS, caches. Not counted.
        await (await runClients(token, kind, 4, state))();
        await settle();
        const before = await inspector.memory();
        const beforeTrim = trimmedRss(broker!.pid!);
        if (SNAPSHOT_DIR) {
          mkdirSync(SNAPSHOT_DIR, { recursive: true });
          await inspector.snapshot(join(SNAPSHOT_DIR, `${kind}-${state}-before.heapsnapshot`));
        }
        const stop = await runClients(token, kind, N, state);
        await settle();
        const settled = await inspector.memory(false);
        const held = await inspector.memory();
        const heldTrim = trimmedRss(broker!.pid!);
        if (SNAPSHOT_DIR) await inspector.snapshot(join(SNAPSHOT_DIR, `${kind}-${state}-held.heapsnapshot`));
        await stop();
        await settle();
        const after = await inspector.memory();
        inspector.close();
        await stopBroker();
        const per = (k: keyof Memory, at = held) => (at[k] - before[k]) / N;
        console.log(`${label}: ${N} sessions`);
        console.log(`  no GC:      rss ${mb(before.rss)} → ${mb(settled.rss)}   heapUsed ${mb(before.heapUsed)} → ${mb(settled.heapUsed)}`);
        console.log(
          `  after GC:   rss ${mb(before.rss)} → ${mb(held.rss)} (closed: ${mb(after.rss)})   heapUsed ${mb(before.heapUsed)} → ${mb(held.heapUsed)} (closed: ${mb(after.heapUsed)})   external ${mb(before.external)} → ${mb(held.external)}   arrayBuffers ${mb(before.arrayBuffers)} → ${mb(held.arrayBuffers)}`,
        );
        console.log(
          `  per session: rss ${kb(per('rss', settled))} before GC, ${kb(per('rss'))} after   heap ${kb(per('heapUsed', settled))} before GC, ${kb(per('heapUsed'))} after   heapTotal ${kb(per('heapTotal'))}  external ${kb(per('external'))}  arrayBuffers ${kb(per('arrayBuffers'))}`,
        );
        const trimmed = (heldTrim - beforeTrim) / N;
        if (TRIM) console.log(`  after GC and malloc_trim: rss ${mb(beforeTrim)} → ${mb(heldTrim)}: ${kb(trimmed)} per session`);
        if (SNAPSHOT_DIR) printGrowth(join(SNAPSHOT_DIR, `${kind}-${state}-before.heapsnapshot`), join(SNAPSHOT_DIR, `${kind}-${state}-held.heapsnapshot`), N);
        rows.push(
          `${label.padEnd(14)} ${String(N).padStart(5)} ${kb(per('rss', settled)).padStart(12)} ${kb(per('rss')).padStart(12)} ${kb(per('heapUsed', settled)).padStart(12)} ${kb(per('heapUsed')).padStart(12)} ${kb(per('external')).padStart(10)} ${kb(trimmed).padStart(12)}`,
        );
      }
    console.log();
    console.log('per idle session (with N sessions − before, ÷ N); the broker fresh for each kind');
    console.log(
      `${'KIND/STATE'.padEnd(14)} ${'N'.padStart(5)} ${'rss no GC'.padStart(12)} ${'rss GC'.padStart(12)} ${'heap no GC'.padStart(12)} ${'heap GC'.padStart(12)} ${'external'.padStart(10)} ${'rss GC+trim'.padStart(12)}`,
    );
    for (const r of rows) console.log(r);
  } finally {
    cleanup();
  }
}

if (process.argv[2] === '--client') {
  const [, , , kind, port, token, n, state] = process.argv;
  await clientMain(kind as Kind, Number(port), token!, Number(n), state === 'used');
} else if (typeof WebSocket === 'undefined') {
  // Node 20 has its WebSocket client behind a flag: run again with it.
  const c = spawn(process.execPath, ['--experimental-websocket', ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  c.on('exit', (code) => process.exit(code ?? 1));
} else {
  await main();
}
