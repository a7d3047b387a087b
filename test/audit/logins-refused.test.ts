// Every refused login leaves a record (reason, target asked for, client, and what its token claimed,
// decoded without trusting it) and a warn log line, through real clients of both engines: forged tokens
// (alg none, a tampered payload), expired ones, and every other refusal path. The token text itself
// never reaches the store or the logs.
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RefusedLogin } from '../../broker/store/index.js';
import { eventually, run } from '../support/broker.js';
import { startLoginsBroker, type LoginsBroker } from '../support/logins.js';

let t: LoginsBroker;
/** Every token a test sent: none may be found in the store or the logs. */
const sent: string[] = [];

beforeAll(async () => {
  t = await startLoginsBroker();
});
afterAll(async () => t?.stop());

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;

const forged = {
  /** A token with no signature at all. */
  algNone: (sub: string) => {
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: t.broker.issuer!.issuer, aud: 'jit-broker', sub, build: `${sub}/1`, jti: `jti-${sub}`, exp: now() + 300 })}.`;
    sent.push(token);
    return token;
  },
  /** A real token whose payload was rewritten to claim another subject; the signature is the original one. */
  tampered: async (sub: string) => {
    const real = await t.token({ subject: 'ci:honest', build: 'honest/1' });
    const [header, , signature] = real.split('.');
    const token = `${header}.${b64({ ...claimsOf(real), sub, build: `${sub}/1` })}.${signature}`;
    sent.push(real, token);
    return token;
  },
  expired: async (sub: string) => {
    const token = await t.signed({
      iss: t.broker.issuer!.issuer,
      aud: 'jit-broker',
      sub,
      build: `${sub}/1`,
      jti: `jti-${sub}`,
      iat: now() - 600,
      exp: now() - 300,
    });
    sent.push(token);
    return token;
  },
};

async function pgLogin(password: string, extra: Partial<pg.ClientConfig> = {}): Promise<{ code?: string; message: string }> {
  const c = new pg.Client({ host: '127.0.0.1', port: t.pgPort, user: 'ci', database: 'app', password, ssl: { rejectUnauthorized: false }, ...extra });
  try {
    await c.connect();
    await c.end();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('the broker let the login in');
}

async function myLogin(password: string, extra: mysql.ConnectionOptions = {}): Promise<{ errno?: number; message: string }> {
  try {
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: t.myPort,
      user: 'ci',
      database: 'my',
      password,
      ssl: { rejectUnauthorized: false },
      ...extra,
    });
    await c.end();
  } catch (e) {
    return e as { errno?: number; message: string };
  }
  throw new Error('the broker let the login in');
}

/** The newest refused login matching `match`, once it is recorded. */
const refusal = (match: (r: RefusedLogin) => boolean) => eventually(async () => (await t.broker.store.listRefusedLogins()).find(match));

describe('forged and expired tokens, PostgreSQL', () => {
  it('alg none (node-postgres): recorded as `algorithm`, with the subject and issuer it claimed', async () => {
    const err = await pgLogin(forged.algNone('forger:pg-none'), { application_name: 'forger-app' });
    expect(err).toMatchObject({ code: '28P01', message: expect.stringMatching(/algorithm 'none' is not allowed/) });
    const r = await refusal((x) => x.subject === 'forger:pg-none');
    expect(r).toMatchObject({
      engine: 'postgres',
      target: 'app',
      reason: 'algorithm',
      issuer: t.broker.issuer!.issuer,
      build: 'forger:pg-none/1',
      tokenId: 'jti-forger:pg-none',
      clientAddress: '127.0.0.1',
      clientApplication: 'forger-app',
      dbUser: 'ci',
      tls: true,
      message: err.message,
    });
  });

  it('a tampered payload (psql): recorded as `signature`, with the subject the tampered payload claims', async () => {
    const token = await forged.tampered('forger:pg-tampered');
    const res = await run('psql', ['-X', '-c', 'SELECT 1'], {
      PGPASSWORD: token,
      PGSSLMODE: 'require',
      PGHOST: '127.0.0.1',
      PGPORT: String(t.pgPort),
      PGUSER: 'ci',
      PGDATABASE: 'app',
      PGAPPNAME: 'psql-forger',
      PGCONNECT_TIMEOUT: '10',
    });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/signature does not verify/);
    const r = await refusal((x) => x.subject === 'forger:pg-tampered');
    expect(r).toMatchObject({
      engine: 'postgres',
      target: 'app',
      reason: 'signature',
      issuer: t.broker.issuer!.issuer,
      build: 'forger:pg-tampered/1',
      clientApplication: 'psql-forger',
    });
  });

  it('an expired token (node-postgres): recorded as `expired`', async () => {
    const err = await pgLogin(await forged.expired('late:pg'));
    expect(err.message).toMatch(/expired/);
    expect(await refusal((x) => x.subject === 'late:pg')).toMatchObject({
      engine: 'postgres',
      reason: 'expired',
      issuer: t.broker.issuer!.issuer,
      tokenId: 'jti-late:pg',
    });
  });
});

describe('forged and expired tokens, MySQL', () => {
  it('alg none (mysql2): recorded as `algorithm`', async () => {
    const err = await myLogin(forged.algNone('forger:my-none'));
    expect(err).toMatchObject({ errno: 1045, message: expect.stringMatching(/algorithm 'none' is not allowed/) });
    expect(await refusal((x) => x.subject === 'forger:my-none')).toMatchObject({
      engine: 'mysql',
      target: 'my',
      reason: 'algorithm',
      issuer: t.broker.issuer!.issuer,
      build: 'forger:my-none/1',
      clientAddress: '127.0.0.1',
      dbUser: 'ci',
      tls: true,
    });
  });

  it('a tampered payload (mysql2): recorded as `signature`', async () => {
    const err = await myLogin(await forged.tampered('forger:my-tampered'));
    expect(err.message).toMatch(/signature does not verify/);
    expect(await refusal((x) => x.subject === 'forger:my-tampered')).toMatchObject({ engine: 'mysql', reason: 'signature', build: 'forger:my-tampered/1' });
  });

  it('an expired token (mariadb CLI): recorded as `expired`, with the client program', async () => {
    const token = await forged.expired('late:my');
    const res = await run('mariadb', [
      '-h',
      '127.0.0.1',
      '-P',
      String(t.myPort),
      '-u',
      'ci',
      `-p${token}`,
      '--ssl',
      '--skip-ssl-verify-server-cert',
      '--connect-timeout=10',
      'my',
      '-e',
      'SELECT 1',
    ]);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/expired/);
    const r = await refusal((x) => x.subject === 'late:my');
    expect(r).toMatchObject({ engine: 'mysql', target: 'my', reason: 'expired' });
    expect(r.clientApplication).toMatch(/mariadb|mysql/);
  });
});

describe('every other refusal path is recorded with its reason', () => {
  it('wrong audience, revoked, single-use replay, token limited to other targets (node-postgres)', async () => {
    const aud = await t.token({ subject: 'path:aud', audience: 'someone-else' });
    sent.push(aud);
    expect((await pgLogin(aud)).message).toMatch(/audience/);
    expect(await refusal((x) => x.subject === 'path:aud')).toMatchObject({ reason: 'audience', issuer: t.broker.issuer!.issuer });

    await t.broker.revocations.revoke({ build: 'revoked/1', reason: 'leaked in a log', by: 'test', trusted: true });
    const revoked = await t.token({ subject: 'path:revoked', build: 'revoked/1' });
    sent.push(revoked);
    expect((await pgLogin(revoked)).message).toMatch(/revoked/);
    expect(await refusal((x) => x.subject === 'path:revoked')).toMatchObject({ reason: 'revoked', build: 'revoked/1' });

    const once = await t.token({ subject: 'path:replay' });
    sent.push(once);
    const first = new pg.Client({ host: '127.0.0.1', port: t.pgPort, user: 'ci', database: 'app', password: once, ssl: { rejectUnauthorized: false } });
    await first.connect();
    expect((await pgLogin(once)).message).toMatch(/token already used/);
    await first.end();
    expect(await refusal((x) => x.subject === 'path:replay')).toMatchObject({ reason: 'used', tokenId: claimsOf(once)['jti'] });

    const limited = await t.token({ subject: 'path:limited', claims: { target: 'my' } });
    sent.push(limited);
    expect((await pgLogin(limited)).message).toMatch(/limited to target 'my'/);
    expect(await refusal((x) => x.subject === 'path:limited')).toMatchObject({ reason: 'target_limit', target: 'app', engine: 'postgres' });
  });

  it('unknown target, TLS required, forbidden startup parameter (node-postgres, psql; no token was sent yet)', async () => {
    expect((await pgLogin('unused', { database: 'nope', application_name: 'path-target' })).code).toBe('3D000');
    expect(await refusal((x) => x.clientApplication === 'path-target')).toMatchObject({
      reason: 'unknown_target',
      target: 'nope',
      subject: null,
      issuer: null,
    });

    expect((await pgLogin('unused', { ssl: false, application_name: 'path-tls' })).message).toMatch(/requires TLS/);
    expect(await refusal((x) => x.clientApplication === 'path-tls')).toMatchObject({ reason: 'tls_required', tls: false, target: 'app' });

    const sjis = await run('psql', ['-X', '-c', 'SELECT 1'], {
      PGPASSWORD: 'unused',
      PGSSLMODE: 'require',
      PGHOST: '127.0.0.1',
      PGPORT: String(t.pgPort),
      PGUSER: 'ci',
      PGDATABASE: 'app',
      PGAPPNAME: 'path-enc',
      PGCLIENTENCODING: 'SJIS',
    });
    expect(sjis.stderr).toMatch(/client_encoding="SJIS" is not allowed/);
    expect(await refusal((x) => x.clientApplication === 'path-enc')).toMatchObject({
      reason: 'startup_parameter',
      message: expect.stringMatching(/client_encoding/),
    });
  });

  it('unknown target, TLS required, revoked, limited to other targets (mysql2)', async () => {
    expect((await myLogin('unused', { database: 'nope' })).errno).toBe(1049);
    expect(await refusal((x) => x.engine === 'mysql' && x.target === 'nope')).toMatchObject({ reason: 'unknown_target' });

    expect((await myLogin('unused', { ssl: undefined, database: 'my', user: 'plain-client' })).message).toMatch(/requires TLS/);
    expect(await refusal((x) => x.dbUser === 'plain-client')).toMatchObject({ engine: 'mysql', reason: 'tls_required', tls: false });

    const revoked = await t.token({ subject: 'path:my-revoked', build: 'revoked/1' });
    const limited = await t.token({ subject: 'path:my-limited', claims: { target: 'app' } });
    sent.push(revoked, limited);
    expect((await myLogin(revoked)).message).toMatch(/revoked/);
    expect(await refusal((x) => x.subject === 'path:my-revoked')).toMatchObject({ engine: 'mysql', reason: 'revoked' });
    expect((await myLogin(limited)).errno).toBe(1044);
    expect(await refusal((x) => x.subject === 'path:my-limited')).toMatchObject({ engine: 'mysql', reason: 'target_limit', target: 'my' });
  });

  it('a password that is not a token is recorded without claims, and without the password', async () => {
    sent.push('my-real-db-password-hunter2');
    expect((await pgLogin('my-real-db-password-hunter2', { application_name: 'path-password' })).message).toMatch(/malformed/);
    expect(await refusal((x) => x.clientApplication === 'path-password')).toMatchObject({ reason: 'malformed', subject: null, issuer: null, tokenId: null });
  });
});

describe('what is kept', () => {
  it('each refusal is logged at warn with its reason; no token text is in the store or the logs', async () => {
    const warned = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'login refused');
    expect(warned.every((l) => l['level'] === 40)).toBe(true);
    expect(warned.find((l) => l['subject'] === 'forger:pg-none')).toMatchObject({ reason: 'algorithm', engine: 'postgres', target: 'app' });
    expect(warned.find((l) => l['subject'] === 'forger:my-tampered')).toMatchObject({ reason: 'signature', engine: 'mysql' });
    expect(warned.length).toBe((await t.broker.store.listRefusedLogins()).length);
    expect(sent.length).toBeGreaterThan(10);
    const store = t.storeText();
    const logs = t.logs.join('\n');
    for (const token of sent) {
      expect(store.includes(token)).toBe(false);
      expect(logs.includes(token)).toBe(false);
      // Nor its signature, or its payload as sent.
      for (const part of token.split('.').filter((p) => p.length > 20)) {
        expect(store.includes(part)).toBe(false);
        expect(logs.includes(part)).toBe(false);
      }
    }
  });
});
