// A real broker in-process with both database listeners (target `app` on the machine's PostgreSQL, `my`
// on its MariaDB), single-use tokens, an admin token, and its log lines captured, for the refused-login
// tests: every refusal must leave a record and a warn line, and never the token itself.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, importJWK, type JWK } from 'jose';
import pino from 'pino';
import { parseConfig } from '../../broker/config.js';
import { startBroker, type Broker } from '../../broker/main.js';
import { BASE_RULES, UPSTREAM } from './broker.js';
import { MYSQL_UPSTREAM } from './mysql.js';

export const ADMIN = 'logins-admin-token-0123456789';

export interface LoginsBroker {
  broker: Broker;
  dir: string;
  configFile: string;
  pgPort: number;
  myPort: number;
  httpUrl: string;
  /** Every log line so far, as written. */
  logs: string[];
  /** A token from the broker's dev issuer. */
  token(o?: { subject?: string; build?: string; audience?: string; ttlSeconds?: number; claims?: Record<string, unknown> }): Promise<string>;
  /** A token signed with the broker's own key, with exactly these claims. */
  signed(claims: Record<string, unknown>): Promise<string>;
  /** Every byte of the store (database, WAL) as latin1 text, to search for what must not be there. */
  storeText(): string;
  stop(): Promise<void>;
}

export async function startLoginsBroker(extra = ''): Promise<LoginsBroker> {
  const dir = mkdtempSync(join(tmpdir(), 'jit-logins-test-'));
  const text = `
data_dir: .jit
store: sqlite:.jit/jit.db
listen: { postgres: 127.0.0.1:0, mysql: 127.0.0.1:0, http: 127.0.0.1:0 }
tls: { plaintext: never }
identity: { local_issuer_url: "http://jit-broker.test", single_use: true }
admin_token: "${ADMIN}"
targets:
  app: { engine: postgres, upstream: "${UPSTREAM}" }
  my: { engine: mysql, upstream: "${MYSQL_UPSTREAM}" }
${BASE_RULES}
${extra}`;
  const configFile = join(dir, 'jit.yaml');
  writeFileSync(configFile, text);
  const config = parseConfig(text, { file: configFile, baseDir: dir });
  const logs: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
  const broker = await startBroker(config, { logger });
  const pgPort = Number(broker.addresses.postgres!.split(':')[1]);
  const myPort = Number(broker.addresses.mysql!.split(':')[1]);
  const http = broker.addresses.http!.replace('http://', '');
  // The CLI reads the same files: point its config at the listeners really bound.
  writeFileSync(
    configFile,
    text
      .replace('postgres: 127.0.0.1:0', `postgres: 127.0.0.1:${pgPort}`)
      .replace('mysql: 127.0.0.1:0', `mysql: 127.0.0.1:${myPort}`)
      .replace('http: 127.0.0.1:0', `http: ${http}`),
  );
  const dataDir = join(dir, '.jit');
  return {
    broker,
    dir,
    configFile,
    pgPort,
    myPort,
    httpUrl: broker.addresses.http!,
    logs,
    token: (o = {}) =>
      broker.issuer!.sign({
        subject: o.subject ?? 'ci:test',
        build: o.build ?? 'build-logins',
        audience: o.audience ?? config.identity.audience,
        ttlSeconds: o.ttlSeconds ?? 300,
        claims: o.claims,
      }),
    async signed(claims) {
      const jwk = JSON.parse(readFileSync(join(dataDir, 'issuer.jwk'), 'utf8')) as JWK;
      return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: jwk.kid! }).sign(await importJWK(jwk, 'ES256'));
    },
    storeText: () =>
      readdirSync(dataDir)
        .filter((f) => f.startsWith('jit.db'))
        .map((f) => readFileSync(join(dataDir, f)).toString('latin1'))
        .join('\n'),
    async stop() {
      await broker.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
