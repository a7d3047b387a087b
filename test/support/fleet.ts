// A fleet as local processes: brokers started with `jit start` (bin/jit.js) on one PostgreSQL store (a
// database of its own on the machine's server), each serving the two targets (the machine's PostgreSQL as
// `app`, its MariaDB as `shop`), a shared data_dir (the issuer key: a token minted by one
// verifies on all) and a journal folder each, and a fake Slack Web API they all post to.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { eventually, run, UPSTREAM, type RunResult } from './broker.js';
import { MYSQL_UPSTREAM } from './mysql.js';

const BIN = resolve('bin/jit.js');
export const ADMIN_TOKEN = 'fleet-admin-token-0123456789';
export const SIGNING_SECRET = 'fleet-signing-secret';
const ADMIN_URL = new URL(UPSTREAM);

export interface Replica {
  id: string;
  pgPort: number;
  mysqlPort: number;
  httpUrl: string;
  configFile: string;
  child: ChildProcess;
  log(): string;
  /** `jit …` against this replica's config (its HTTP API). */
  jit(...args: string[]): Promise<RunResult>;
  /** Admin API call on this replica. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }>;
}

export interface Fleet {
  dir: string;
  storeUrl: string;
  replicas: Map<string, Replica>;
  start(id: string): Promise<Replica>;
  /** A token minted by the shared issuer (through replica `via`'s config). */
  token(build: string, via?: string): Promise<string>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: `postgres://${ADMIN_URL.username || 'postgres'}@${ADMIN_URL.host}/postgres` });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** `rules` is YAML appended to each replica's config; `slackUrl` the fake Slack Web API's base URL. */
export async function startFleet(o: { rules: string; slackUrl?: string; lease?: string }): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-fleet-'));
  const db = `jit_fleet_${process.pid}_${Date.now() % 100000}`;
  await admin(`CREATE DATABASE ${db}`);
  const storeUrl = `postgres://${ADMIN_URL.username || 'postgres'}@${ADMIN_URL.host}/${db}`;
  const replicas = new Map<string, Replica>();
  const fleet: Fleet = {
    dir,
    storeUrl,
    replicas,
    async start(id) {
      const [pgPort, mysqlPort, httpPort] = [await freePort(), await freePort(), await freePort()];
      const configFile = join(dir, `${id}.yaml`);
      mkdirSync(join(dir, `journal-${id}`), { recursive: true });
      writeFileSync(
        configFile,
        `data_dir: shared
store: ${storeUrl}
replica_id: ${id}
listen: { postgres: 127.0.0.1:${pgPort}, mysql: 127.0.0.1:${mysqlPort}, http: 127.0.0.1:${httpPort} }
tls: { plaintext: loopback }
identity: { local_issuer_url: "http://jit-fleet.test" }
audit: { journal: { dir: journal-${id} } }
approvals: { lease: ${o.lease ?? '2s'} }
admin_token: ${ADMIN_TOKEN}
${o.slackUrl ? `slack: { bot_token: xoxb-fleet, signing_secret: ${SIGNING_SECRET}, channel: C01APPROVALS, api_url: "${o.slackUrl}" }` : ''}
targets:
  app: { engine: postgres, upstream: "${UPSTREAM}" }
  shop: { engine: mysql, upstream: "${MYSQL_UPSTREAM}" }
${o.rules}
`,
      );
      const child = spawn(process.execPath, [BIN, 'start', '--config', configFile], { cwd: dir, env: { ...process.env, JIT_LOG_LEVEL: 'warn' } });
      let log = '';
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      await eventually(async () => log.includes('jit-broker ready') || child.exitCode !== null, 60_000);
      if (child.exitCode !== null) throw new Error(`replica ${id} did not start:\n${log}`);
      const httpUrl = `http://127.0.0.1:${httpPort}`;
      const r: Replica = {
        id,
        pgPort,
        mysqlPort,
        httpUrl,
        configFile,
        child,
        log: () => log,
        jit: (...args) => run(process.execPath, [BIN, ...args, '--config', configFile]),
        async api(method, path, body) {
          const res = await fetch(`${httpUrl}${path}`, {
            method,
            headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
            body: body === undefined ? undefined : JSON.stringify(body),
          });
          return { status: res.status, json: await res.json().catch(() => null) };
        },
      };
      replicas.set(id, r);
      return r;
    },
    async token(build, via) {
      const r = replicas.get(via ?? [...replicas.keys()][0]!)!;
      const out = await r.jit('token', '--build', build);
      if (out.code !== 0) throw new Error(`jit token failed: ${out.stderr}`);
      return out.stdout.trim();
    },
    async stop() {
      for (const r of replicas.values()) {
        if (r.child.exitCode === null && r.child.signalCode === null) {
          r.child.kill('SIGTERM');
          await new Promise((done) => r.child.once('exit', done));
        }
      }
      await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return fleet;
}

/** A node-postgres client of a replica (plaintext from loopback, the token as password). */
export async function clientOf(r: Replica, token: string): Promise<pg.Client> {
  const c = new pg.Client({ host: '127.0.0.1', port: r.pgPort, user: 'ci', database: 'app', password: token, ssl: false });
  c.on('error', () => {});
  await c.connect();
  return c;
}
