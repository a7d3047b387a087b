// Start a real broker in-process on ephemeral ports, against the machine's real PostgreSQL.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import pg from 'pg';
import pino from 'pino';
import { parseConfig } from '../../broker/config.js';
import { startBroker, type Broker } from '../../broker/main.js';

export const UPSTREAM = process.env.JIT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

export const BASE_RULES = `
rules:
  - { id: scratch, tables: ["jit_t_*", "pgbench_*"], kinds: [read, write, ddl, destructive], action: allow }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;

export interface TestBroker {
  broker: Broker;
  dir: string;
  configFile: string;
  host: string;
  port: number;
  httpUrl: string;
  token(opts?: { build?: string; subject?: string; ttlSeconds?: number; audience?: string; claims?: Record<string, unknown> }): Promise<string>;
  /** node-postgres client config for the broker (TLS, token as password). */
  pgConfig(token: string, extra?: Partial<pg.ClientConfig>): pg.ClientConfig;
  stop(): Promise<void>;
}

/**
 * `yaml` is appended to a config with ephemeral listeners, a temp data_dir and target `app`.
 * `opts.identity`: extra keys of the `identity` map, as YAML flow entries (`single_use: true, issuers: [...]`);
 * `opts.targets`: more targets, as YAML lines under `targets:` (`  other: { engine: postgres, upstream: "..." }`);
 * `opts.listen`: extra keys of the `listen` map, as YAML flow entries (`login_timeout: 1s, max_logins: 4`);
 * `opts.store`: the store's URL (default: a SQLite file in the broker's temp folder).
 * The journal is indexed in the broker's own thread (`audit.journal.indexer: inline`) unless `yaml` says
 * otherwise: the thread costs a second of loading per broker under tsx; test/audit/journal and the
 * process-level tests (quick start, fleet, kill -9) run the default thread.
 */
export async function startTestBroker(
  yaml = BASE_RULES,
  opts: { plaintext?: boolean; identity?: string; targets?: string; listen?: string; store?: string } = {},
): Promise<TestBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-test-'));
  const text = `
data_dir: .jit
store: ${JSON.stringify(opts.store ?? 'sqlite:.jit/jit.db')}
listen: { postgres: 127.0.0.1:0, mysql: null, http: 127.0.0.1:0${opts.listen ? `, ${opts.listen}` : ''} }
tls: { plaintext: ${opts.plaintext ? 'loopback' : 'never'} }
identity: { local_issuer_url: "http://jit-broker.test"${opts.identity ? `, ${opts.identity}` : ''} }
targets:
  app: { engine: postgres, upstream: "${UPSTREAM}" }
${opts.targets ?? ''}
${yaml}`;
  const configFile = join(dir, 'jit.yaml');
  writeFileSync(configFile, text);
  const config = parseConfig(text, { file: configFile, baseDir: dir });
  if (!/\bindexer:/.test(yaml)) config.audit.journal.indexer = 'inline';
  const broker = await startBroker(config, { logger: pino({ level: process.env.JIT_TEST_LOG ?? 'silent' }) });
  const [host, port] = broker.addresses.postgres!.split(':') as [string, string];
  // The CLI reads the same files: point its config at the listeners really bound.
  writeFileSync(
    configFile,
    text.replace('postgres: 127.0.0.1:0', `postgres: 127.0.0.1:${port}`).replace('http: 127.0.0.1:0', `http: ${broker.addresses.http!.replace('http://', '')}`),
  );
  return {
    broker,
    dir,
    configFile,
    host,
    port: Number(port),
    httpUrl: broker.addresses.http!,
    token: (o = {}) =>
      broker.issuer!.sign({
        subject: o.subject ?? 'ci:test',
        build: o.build ?? 'build-test',
        audience: o.audience ?? config.identity.audience,
        ttlSeconds: o.ttlSeconds ?? 300,
        claims: o.claims,
      }),
    pgConfig: (token, extra = {}) => ({
      host,
      port: Number(port),
      user: 'ci',
      database: 'app',
      password: token,
      ssl: { rejectUnauthorized: false },
      ...extra,
    }),
    async stop() {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A direct connection to the real PostgreSQL, to check what really happened there. */
export async function direct<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: UPSTREAM });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a real client program (psql, pgbench, the jit CLI) and collect its output. */
export function run(cmd: string, args: string[], env: Record<string, string> = {}, input?: string): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

export function psqlEnv(t: TestBroker, token: string): Record<string, string> {
  return { PGPASSWORD: token, PGSSLMODE: 'require', PGHOST: t.host, PGPORT: String(t.port), PGUSER: 'ci', PGDATABASE: 'app', PGCONNECT_TIMEOUT: '10' };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `fn` returns a truthy value (for effects that land asynchronously, like a session's end). */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 5000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await sleep(50);
  }
}

/**
 * Make admission slow, as a catalog load or a busy audit journal makes it: every statement's audit record
 * (the real store's recordStatement) first waits for `delay()`. Returns a function that undoes it.
 */
export function slowAdmission(t: { broker: Broker }, delay: () => Promise<unknown>): () => void {
  const store = t.broker.store;
  const record = store.recordStatement;
  store.recordStatement = async (s) => {
    await delay();
    return record.call(store, s);
  };
  return () => {
    store.recordStatement = record;
  };
}
