import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
// The `jit` command and the HTTP listener, as a user runs them against a live broker.
import net from 'node:net';
import tls from 'node:tls';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier } from '../../broker/identity/index.js';
import { psqlEnv, run, startTestBroker, type TestBroker } from '../support/broker.js';

let t: TestBroker;
const jit = (...args: string[]) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, ...args]);

beforeAll(async () => {
  t = await startTestBroker();
});
afterAll(async () => t?.stop());

describe('jit token', () => {
  it('prints an ES256 JWT from the dev issuer with the requested subject, build, lifetime, audience and claims', async () => {
    const r = await jit('token', '--sub', 'ci:demo', '--build', 'build-123', '--ttl', '10m', '--claim', 'ref=refs/heads/main', '--claim', 'run_attempt=2');
    expect(r.stderr).toBe('');
    const token = r.stdout.trim();
    expect(decodeProtectedHeader(token).alg).toBe('ES256');
    const c = decodeJwt(token);
    expect(c).toMatchObject({ sub: 'ci:demo', build: 'build-123', aud: 'jit-broker', ref: 'refs/heads/main', run_attempt: 2, iss: t.broker.issuer!.issuer });
    expect(c.exp! - c.iat!).toBe(600);
    const id = await createVerifier({ issuers: [], local: { issuer: t.broker.issuer!, audience: 'jit-broker' } }).verify(token);
    expect(id).toMatchObject({ subject: 'ci:demo', build: 'build-123' });
  });

  it('--aud sets the audience (and the broker then refuses it)', async () => {
    const token = (await jit('token', '--aud', 'elsewhere')).stdout.trim();
    expect(decodeJwt(token).aud).toBe('elsewhere');
    const c = new pg.Client(t.pgConfig(token));
    await expect(c.connect()).rejects.toMatchObject({ code: '28P01', message: expect.stringMatching(/audience/) });
  });

  it('refuses a lifetime over identity.max_ttl and a malformed --claim, with exit code 2', async () => {
    const long = await jit('token', '--ttl', '2h');
    expect(long.code).toBe(2);
    expect(long.stderr).toContain('max_ttl');
    const bad = await jit('token', '--claim', 'novalue');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('k=v');
  });

  it('a token from the CLI opens a psql session (the README quick start)', async () => {
    const token = (await jit('token', '--build', 'build-readme')).stdout.trim();
    const r = await run('psql', ['-X', '-A', '-t', '-c', 'SELECT current_database()'], psqlEnv(t, token));
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('test'); // the upstream database; the client asked for target "app"
  });
});

describe('jit sessions', () => {
  it('lists the sessions of a build as a table and as JSON', async () => {
    const token = (await jit('token', '--sub', 'ci:lister', '--build', 'build-list')).stdout.trim();
    for (let i = 0; i < 2; i++) await run('psql', ['-X', '-c', 'SELECT 1', '-c', 'SELECT 2'], psqlEnv(t, token));
    const table = await jit('sessions', '--build', 'build-list');
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SESSION\s+SUBJECT\s+BUILD\s+TARGET\s+ENGINE\s+CLIENT\s+STARTED\s+ENDED\s+STATEMENTS$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^s_\w+\s+ci:lister\s+build-list\s+app\s+postgres\s+127\.0\.0\.1 \(psql\)\s+\S+ \S+\s+\S+ \S+\s+2 \(0 denied\)$/);
    const json = JSON.parse((await jit('sessions', '--build', 'build-list', '--json')).stdout) as Record<string, unknown>[];
    expect(json).toHaveLength(2);
    expect(json[0]).toMatchObject({ subject: 'ci:lister', build: 'build-list', target: 'app', statementCount: 2, clientAddress: '127.0.0.1' });
    expect(typeof json[0]!.startedAt).toBe('string');
    expect(typeof json[0]!.endedAt).toBe('string');
    const none = await jit('sessions', '--build', 'no-such-build');
    expect(none.stdout.trim()).toBe('no sessions');
  });

  it('jit session ID shows the statements with decisions', async () => {
    const [s] = await t.broker.store.listSessions({ build: 'build-list', limit: 1 });
    const r = await jit('session', s!.id.slice(0, 8));
    expect(r.stdout).toContain(`session ${s!.id}`);
    expect(r.stdout).toMatch(/1\s+allow\s+day-to-day\s+read\s+SELECT 1\s+SELECT 1/);
  });

  it('a config error names the key at fault and exits 2', async () => {
    const r = await run(process.execPath, ['bin/jit.js', '--config', 'test/fixtures/bad.yaml', 'sessions']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/listen\.postgres: expected host:port/);
  });
});

describe('http listener', () => {
  it('serves /healthz, /readyz and the dev issuer JWKS and discovery document', async () => {
    // The version and commit this broker runs (from the sources here: package.json and git).
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(await (await fetch(`${t.httpUrl}/healthz`)).json()).toEqual({ status: 'ok', version, commit: head });
    const ready = await fetch(`${t.httpUrl}/readyz`);
    expect(ready.status).toBe(200);
    const jwks = (await (await fetch(`${t.httpUrl}/.well-known/jwks.json`)).json()) as { keys: Record<string, unknown>[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });
    expect(jwks.keys[0]!.d).toBeUndefined();
    const disco = (await (await fetch(`${t.httpUrl}/.well-known/openid-configuration`)).json()) as Record<string, string>;
    expect(disco.issuer).toBe(t.broker.issuer!.issuer);
    expect(disco.jwks_uri).toBe(`${t.broker.issuer!.issuer}/.well-known/jwks.json`);
  });
});

describe('shutdown', () => {
  it('also tells a client that is still logging in, instead of leaving it hanging', async () => {
    const b = await startTestBroker();
    const tlsSocket = await new Promise<import('node:tls').TLSSocket>((resolve, reject) => {
      const raw = net.connect(b.port, b.host, () => raw.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])));
      raw.once('data', () => {
        const s = tls.connect({ socket: raw, rejectUnauthorized: false }, () => resolve(s));
      });
      raw.once('error', reject);
    });
    const startup = Buffer.from('\0\0\0\0\0\x03\0\0user\0ci\0database\0app\0\0', 'latin1');
    startup.writeInt32BE(startup.length, 0);
    const chunks: Buffer[] = [];
    const asked = new Promise<void>((resolve) => tlsSocket.on('data', (d: Buffer) => (chunks.push(d), resolve())));
    const gone = new Promise<void>((resolve) => tlsSocket.on('close', () => resolve()));
    tlsSocket.write(startup);
    await asked; // the broker asked for the password; the client never sends it
    await b.broker.postgres!.close('maintenance window');
    await gone;
    const answer = Buffer.concat(chunks).toString('latin1');
    expect(answer).toContain('57P01');
    expect(answer).toContain('maintenance window');
    await b.stop();
  });

  it('tells connected clients, and records the end of their sessions', async () => {
    const b = await startTestBroker();
    const c = new pg.Client(b.pgConfig(await b.token({ build: 'build-shutdown' })));
    await c.connect();
    const gone = new Promise<Error>((resolve) => c.on('error', resolve));
    const store = b.broker.store;
    const [open] = await store.listSessions({ build: 'build-shutdown' });
    expect(open!.endedAt).toBeNull();
    // Read the record before the store closes with the broker.
    const closing = b.broker.postgres!.close('maintenance window');
    expect((await gone).message).toContain('maintenance window');
    await closing;
    const s = await store.getSession(open!.id);
    expect(s!.endReason).toContain('maintenance window');
    await b.stop();
  });
});
