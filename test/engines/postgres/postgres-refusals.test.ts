// Everything the broker refuses, as a client sees it: tokens, TLS, targets, policy, audit, bad bytes.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, importJWK, type JWK } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalIssuer } from '../../../broker/identity/index.js';
import { direct, psqlEnv, run, startTestBroker, type TestBroker } from '../../support/broker.js';

let t: TestBroker;

beforeAll(async () => {
  t = await startTestBroker();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_keep; CREATE TABLE jit_keep (id int)'));
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_keep'));
});

/** Connect with node-postgres and return the error the broker answered, or null if it let us in. */
async function loginError(password: string, extra: Partial<pg.ClientConfig> = {}): Promise<{ code?: string; message: string } | null> {
  const c = new pg.Client(t.pgConfig(password, extra));
  try {
    await c.connect();
    await c.end();
    return null;
  } catch (e) {
    return e as { code?: string; message: string };
  }
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

async function signWithBrokerKey(claims: Record<string, unknown>): Promise<string> {
  const jwk = JSON.parse(readFileSync(join(t.dir, '.jit', 'issuer.jwk'), 'utf8')) as JWK;
  const key = await importJWK(jwk, 'ES256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: jwk.kid! }).sign(key);
}

/** Send raw bytes to the broker and collect everything it answers until it closes (or 1 s passes). */
function rawExchange(bytes: Buffer, expectClose = false): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = net.connect(t.port, t.host);
    const chunks: Buffer[] = [];
    const done = () => {
      s.destroy();
      resolve(Buffer.concat(chunks));
    };
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (!expectClose) done();
    });
    s.on('close', done);
    s.on('error', done);
    setTimeout(done, 1000);
    s.write(bytes);
  });
}

describe('token refusals (SQLSTATE 28P01, saying which check failed)', () => {
  const base = () => ({ iss: t.broker.issuer!.issuer, aud: 'jit-broker', sub: 'ci:test', iat: now(), exp: now() + 300 });

  it.each([
    ['not a JWT', async () => 'hunter2', /malformed/],
    ['alg none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(base())}.`, /algorithm/],
    [
      'HS256 with a shared secret',
      async () => new SignJWT(base()).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(32))),
      /algorithm/,
    ],
    ['expired', async () => signWithBrokerKey({ ...base(), iat: now() - 600, exp: now() - 300 }), /expired/],
    ['not yet valid', async () => signWithBrokerKey({ ...base(), nbf: now() + 600 }), /not.yet.valid/],
    ['wrong audience', async () => t.token({ audience: 'someone-else' }), /audience/],
    ['unknown issuer', async () => signWithBrokerKey({ ...base(), iss: 'https://evil.example' }), /issuer/],
    [
      'a key the issuer does not hold',
      async () => {
        const other = await LocalIssuer.loadOrCreate(join(t.dir, 'other.jwk'), t.broker.issuer!.issuer);
        return other.sign({ subject: 'ci:test', audience: 'jit-broker', ttlSeconds: 60 });
      },
      /unknown.key|signature/,
    ],
  ])('%s', async (_name, make, why) => {
    const token = await make();
    const err = await loginError(token);
    expect(err?.code).toBe('28P01');
    expect(err?.message).toMatch(why);
    expect(err?.message).not.toContain(token);
  });

  it('psql shows the reason', async () => {
    const r = await run('psql', ['-X', '-c', 'SELECT 1'], psqlEnv(t, 'not-a-token'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/token refused: .*malformed/);
  });

  it('no session is recorded for a refused login', async () => {
    await loginError('nope', { application_name: 'refused-login' });
    const sessions = await t.broker.store.listSessions({});
    expect(sessions.some((s) => s.clientApplication === 'refused-login')).toBe(false);
  });
});

describe('connection refusals', () => {
  it('requires TLS: a plaintext login is refused before any password is asked for', async () => {
    const err = await loginError(await t.token(), { ssl: false });
    expect(err?.code).toBe('28000');
    expect(err?.message).toMatch(/requires TLS.*sslmode=require/);
  });

  it('allows plaintext on loopback only when the config says so', async () => {
    const p = await startTestBroker(undefined, { plaintext: true });
    try {
      const c = new pg.Client({ ...p.pgConfig(await p.token()), ssl: false });
      await c.connect();
      expect((await c.query('SELECT 1 AS x')).rows).toEqual([{ x: 1 }]);
      await c.end();
    } finally {
      await p.stop();
    }
  });

  it('refuses a client_encoding at connect that would let the server read quotes the classifier does not', async () => {
    const token = await t.token();
    const sjis = await run('psql', ['-X', '-c', 'SELECT 1'], { ...psqlEnv(t, token), PGCLIENTENCODING: 'SJIS' });
    expect(sjis.code).not.toBe(0);
    expect(sjis.stderr).toMatch(/client_encoding="SJIS" is not allowed through the broker/);
    const utf8 = await run('psql', ['-X', '-A', '-t', '-c', 'SHOW client_encoding'], { ...psqlEnv(t, token), PGCLIENTENCODING: 'UTF8' });
    expect(utf8.stdout.trim()).toBe('UTF8');
  });

  it('an unknown database name is not a target', async () => {
    const err = await loginError(await t.token(), { database: 'nope' });
    expect(err?.code).toBe('3D000');
    expect(err?.message).toContain('"nope" is not a target');
  });

  it('a malformed message closes only its own connection', async () => {
    const good = new pg.Client(t.pgConfig(await t.token()));
    await good.connect();
    // A startup packet that claims a length of 3 bytes.
    const bad = net.connect(t.port, t.host);
    const answer = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      bad.on('data', (d: Buffer) => chunks.push(d));
      bad.on('close', () => resolve(Buffer.concat(chunks)));
      bad.write(Buffer.from([0, 0, 0, 3, 0, 0, 0, 0]));
    });
    expect(answer.toString('latin1')).toContain('08P01');
    expect((await good.query('SELECT 2 AS x')).rows).toEqual([{ x: 2 }]);
    await good.end();
  });

  it('answers GSSENCRequest with N, and refuses bytes smuggled after SSLRequest before the TLS handshake', async () => {
    const gss = await rawExchange(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]));
    expect(gss.toString('latin1')).toBe('N');
    // SSLRequest followed at once by a plaintext startup packet: the broker must not read it.
    const startup = Buffer.from('\0\0\0\0\0\x03\0\0user\0ci\0database\0app\0\0', 'latin1');
    startup.writeInt32BE(startup.length, 0);
    const smuggled = await rawExchange(Buffer.concat([Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]), startup]), true);
    expect(smuggled.toString('latin1')).toMatch(/08P01.*before the TLS handshake/s);
  });

  it('an oversized message ends that connection with a clear error', async () => {
    const c = new pg.Client(t.pgConfig(await t.token()));
    await c.connect();
    const ended = new Promise<Error>((resolve) => c.on('error', resolve));
    const header = Buffer.from([0x51, 0, 0, 0, 0]);
    header.writeInt32BE(300 * 1024 * 1024, 1); // a Query claiming 300 MiB
    (c as unknown as { connection: { stream: net.Socket } }).connection.stream.write(header);
    expect((await ended).message).toMatch(/larger than the \d+-byte limit/);
  });

  it('a bad message after login ends that session with a protocol error, and others go on', async () => {
    const good = new pg.Client(t.pgConfig(await t.token()));
    await good.connect();
    const victim = new pg.Client(t.pgConfig(await t.token({ build: 'build-bad-bytes' })));
    await victim.connect();
    const ended = new Promise<Error>((resolve) => victim.on('error', resolve));
    (victim as unknown as { connection: { stream: net.Socket } }).connection.stream.write(Buffer.from([0x7a, 0, 0, 0, 4]));
    expect((await ended).message).toMatch(/protocol violation: unexpected message type/);
    expect((await good.query('SELECT 3 AS x')).rows).toEqual([{ x: 3 }]);
    await good.end();
  });
});

describe('policy on the wire', () => {
  let c: pg.Client;
  beforeAll(async () => {
    c = new pg.Client(t.pgConfig(await t.token({ build: 'build-policy' })));
    await c.connect();
  });
  afterAll(async () => c?.end());

  it('denies by default with SQLSTATE 42501 naming the reason; the session goes on', async () => {
    await expect(c.query('DROP TABLE jit_keep')).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/destructive statement is denied by the default policy/),
    });
    expect((await c.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    expect(await direct(async (d) => (await d.query("SELECT to_regclass('jit_keep') AS t")).rows[0].t)).toBe('jit_keep');
  });

  it('runs none of a multi-statement string when one statement is refused', async () => {
    await expect(c.query('INSERT INTO jit_keep VALUES (1); DROP TABLE jit_keep')).rejects.toMatchObject({ code: '42501' });
    expect(await direct(async (d) => (await d.query('SELECT count(*)::int AS n FROM jit_keep')).rows[0].n)).toBe(0);
  });

  it('refuses in the extended protocol at Parse, and the connection stays usable', async () => {
    await expect(c.query('DELETE FROM jit_keep WHERE id = $1 OR true', [1])).rejects.toMatchObject({ code: '42501' });
    expect((await c.query('SELECT $1::int AS v', [7])).rows).toEqual([{ v: 7 }]);
  });

  it('a denial inside a transaction aborts it on both sides: a later COMMIT commits nothing', async () => {
    await c.query('BEGIN');
    await c.query('INSERT INTO jit_keep VALUES (42)');
    await expect(c.query('DROP TABLE jit_keep')).rejects.toMatchObject({ code: '42501' });
    await expect(c.query('SELECT 1')).rejects.toMatchObject({ code: '25P02' }); // in failed transaction
    const commit = await c.query('COMMIT');
    expect(commit.command).toBe('ROLLBACK');
    expect(await direct(async (d) => (await d.query('SELECT count(*)::int AS n FROM jit_keep WHERE id = 42')).rows[0].n)).toBe(0);
  });

  it('records denials with their rule and reason', async () => {
    const [s] = await t.broker.store.listSessions({ build: 'build-policy' });
    const denied = (await t.broker.store.listStatements(s!.id)).filter((x) => x.decision === 'deny');
    expect(denied.map((x) => x.sql)).toEqual([
      'DROP TABLE jit_keep',
      'INSERT INTO jit_keep VALUES (1); DROP TABLE jit_keep',
      'DELETE FROM jit_keep WHERE id = $1 OR true',
      'DROP TABLE jit_keep',
    ]);
    expect(denied.every((x) => x.ruleId === null && x.kinds.includes('destructive') && /denied/.test(x.message ?? ''))).toBe(true);
  });
});
