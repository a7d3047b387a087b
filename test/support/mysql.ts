// Start a real broker in-process with a MySQL listener (target `app` on the machine's MariaDB) beside a
// PostgreSQL one (target `pg`), and helpers to reach it with the mariadb CLI, mysql2, and raw packets.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pino from 'pino';
import { parseConfig } from '../../broker/config.js';
import { startBroker, type Broker } from '../../broker/main.js';
import { PacketIO } from '../../broker/engines/mysql/framing.js';
import { CAP, handshakeResponsePayload, packet } from '../../broker/engines/mysql/protocol.js';
import { run, UPSTREAM, type RunResult } from './broker.js';

export const MYSQL_UPSTREAM = process.env.JIT_TEST_MYSQL ?? 'mysql://root@127.0.0.1:3306/test';
const up = new URL(MYSQL_UPSTREAM);

export const MYSQL_RULES = `
rules:
  - { id: scratch, tables: ["jit_my_*"], kinds: [read, write, ddl, destructive], action: allow }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;

export interface MysqlTestBroker {
  broker: Broker;
  dir: string;
  configFile: string;
  host: string;
  /** The MySQL listener. */
  port: number;
  pgPort: number;
  httpUrl: string;
  token(opts?: { build?: string; subject?: string; ttlSeconds?: number; audience?: string; claims?: Record<string, unknown> }): Promise<string>;
  /** mysql2 options for the broker: TLS (certificate not checked), the token as the password, database `app`. */
  options(token: string, extra?: mysql.ConnectionOptions): mysql.ConnectionOptions;
  connect(token: string, extra?: mysql.ConnectionOptions): Promise<mysql.Connection>;
  /** The mariadb CLI against the broker (TLS by default: the client's own default). */
  cli(token: string, args: string[], input?: string): Promise<RunResult>;
  stop(): Promise<void>;
}

/** `opts.listen`: extra keys of the `listen` map, as YAML flow entries (`login_timeout: 1s, max_logins: 4`). */
export async function startMysqlBroker(yaml = MYSQL_RULES, opts: { plaintext?: boolean; listen?: string } = {}): Promise<MysqlTestBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-mysql-test-'));
  const text = `
data_dir: .jit
store: sqlite:.jit/jit.db
listen: { postgres: 127.0.0.1:0, mysql: 127.0.0.1:0, http: 127.0.0.1:0${opts.listen ? `, ${opts.listen}` : ''} }
tls: { plaintext: ${opts.plaintext ? 'loopback' : 'never'} }
identity: { local_issuer_url: "http://jit-broker.test" }
targets:
  app: { engine: mysql, upstream: "${MYSQL_UPSTREAM}" }
  pg: { engine: postgres, upstream: "${UPSTREAM}" }
${yaml}`;
  const configFile = join(dir, 'jit.yaml');
  writeFileSync(configFile, text);
  const config = parseConfig(text, { file: configFile, baseDir: dir });
  config.audit.journal.indexer = 'inline'; // as startTestBroker: no indexer thread to load per test broker
  const broker = await startBroker(config, { logger: pino({ level: process.env.JIT_TEST_LOG ?? 'silent' }) });
  const [host, port] = broker.addresses.mysql!.split(':') as [string, string];
  const pgPort = broker.addresses.postgres!.split(':')[1]!;
  const http = broker.addresses.http!.replace('http://', '');
  // The CLI reads the same files: point its config at the listeners really bound.
  writeFileSync(
    configFile,
    text
      .replace('postgres: 127.0.0.1:0', `postgres: 127.0.0.1:${pgPort}`)
      .replace('mysql: 127.0.0.1:0', `mysql: 127.0.0.1:${port}`)
      .replace('http: 127.0.0.1:0', `http: ${http}`),
  );
  const options = (token: string, extra: mysql.ConnectionOptions = {}): mysql.ConnectionOptions => ({
    host,
    port: Number(port),
    user: 'ci',
    password: token,
    database: 'app',
    ssl: { rejectUnauthorized: false },
    ...extra,
  });
  return {
    broker,
    dir,
    configFile,
    host,
    port: Number(port),
    pgPort: Number(pgPort),
    httpUrl: broker.addresses.http!,
    token: (o = {}) =>
      broker.issuer!.sign({
        subject: o.subject ?? 'ci:test',
        build: o.build ?? 'build-test',
        audience: o.audience ?? config.identity.audience,
        ttlSeconds: o.ttlSeconds ?? 300,
        claims: o.claims,
      }),
    options,
    connect: (token, extra) => mysql.createConnection(options(token, extra)),
    cli: (token, args, input) => run('mariadb', ['-h', host, '-P', port, '-u', 'ci', `-p${token}`, '--connect-timeout=10', ...args], {}, input),
    async stop() {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A direct connection to the real MariaDB, to check what really happened there. */
export async function directMy<T>(fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const c = await mysql.createConnection({
    host: up.hostname,
    port: Number(up.port || 3306),
    user: decodeURIComponent(up.username) || 'root',
    password: decodeURIComponent(up.password),
    database: up.pathname.slice(1),
    multipleStatements: true,
  });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Rows of a direct query. */
export const rowsOf = async (sql: string): Promise<Record<string, unknown>[]> => directMy(async (c) => (await c.query(sql))[0] as Record<string, unknown>[]);

/** Log in on a raw socket (loopback plaintext, mysql_clear_password); reads the OK. */
export async function rawLogin(port: number, token: string, database = 'app'): Promise<{ socket: net.Socket; io: PacketIO; closed: Promise<void> }> {
  const socket = net.connect(port, '127.0.0.1');
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const io = new PacketIO(socket, 'broker', 1 << 24);
  const greeting = await io.read();
  if (greeting.payload[0] !== 10) throw new Error('no greeting');
  const caps = CAP.LONG_PASSWORD | CAP.PROTOCOL_41 | CAP.SECURE_CONNECTION | CAP.PLUGIN_AUTH | CAP.PLUGIN_AUTH_LENENC_CLIENT_DATA | CAP.CONNECT_WITH_DB;
  socket.write(
    packet(
      1,
      handshakeResponsePayload({
        capabilities: caps,
        collation: 45,
        user: 'ci',
        authData: Buffer.from(`${token}\0`),
        database,
        plugin: 'mysql_clear_password',
        attrs: {},
      }),
    ),
  );
  const ok = await io.read();
  if (ok.payload[0] !== 0) throw new Error(`login refused: ${ok.payload.toString('utf8', 9)}`);
  return { socket, io, closed };
}

/** The capability flags of the broker's greeting. */
export async function greetingCapabilities(port: number): Promise<number> {
  const socket = net.connect(port, '127.0.0.1');
  const io = new PacketIO(socket, 'broker', 1 << 16);
  try {
    const p = (await io.read()).payload;
    const afterVersion = p.indexOf(0, 1) + 1 + 4 + 8 + 1;
    return (p.readUInt16LE(afterVersion) | (p.readUInt16LE(afterVersion + 5) << 16)) >>> 0; // low half, collation, status, high half
  } finally {
    socket.destroy();
  }
}
