// Revocation: `jit revoke` / POST /api/revocations end a build's live sessions (parent and exchanged
// children, psql and node-postgres) with the reason recorded, refuse its tokens from then on, survive
// restarts; the RevocationService the Slack bot calls lets only revokers revoke.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RevocationService } from '../../broker/identity/index.js';
import { BrokerSession } from '../../broker/session.js';
import { openStore, type Store } from '../../broker/store/index.js';
import { BASE_RULES, eventually, psqlEnv, run, startTestBroker, type TestBroker } from '../support/broker.js';

const ADMIN = 'revoke-admin-token-0123456789';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';

let t: TestBroker;
const jit = (...args: string[]) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, ...args]);

beforeAll(async () => {
  t = await startTestBroker(`${BASE_RULES}\nadmin_token: "${ADMIN}"\n`);
});
afterAll(async () => t?.stop());

async function exchange(subject: string, extra: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const body = new URLSearchParams({ grant_type: GRANT, subject_token: subject, subject_token_type: JWT, ...extra });
  const res = await fetch(`${t.httpUrl}/oauth/token`, { method: 'POST', body });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
const childOf = async (subject: string, actor: string) => (await exchange(subject, { actor, scope: 'read' })).body['access_token'] as string;

async function api(method: 'GET' | 'POST', path: string, body?: object, token: string | null = ADMIN) {
  const res = await fetch(`${t.httpUrl}${path}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('jit revoke --build', () => {
  it("ends the build's open sessions, parent's and child's, records the reason, and refuses its tokens from then on", async () => {
    const build = 'acme/app/777/1';
    const parent = await t.token({ build, subject: 'repo:acme/app:ref:refs/heads/main' });
    const child = await childOf(parent, 'nightly-agent');

    // The pipeline itself, through node-postgres.
    const c = new pg.Client(t.pgConfig(parent));
    const clientErrors: (Error & { code?: string })[] = [];
    c.on('error', (e: Error) => clientErrors.push(e));
    await c.connect();
    await c.query('SELECT 1');
    // Its agent, through psql reading statements from a pipe (an open session, idle between statements).
    const psql = spawn('psql', ['-X', '-v', 'ON_ERROR_STOP=1'], { env: { ...process.env, ...psqlEnv(t, child) }, stdio: ['pipe', 'pipe', 'pipe'] });
    let psqlErr = '';
    psql.stderr.on('data', (d: Buffer) => (psqlErr += d.toString()));
    const psqlExit = new Promise<number | null>((resolve) => psql.on('close', (code) => resolve(code)));
    psql.stdin.write('SELECT 1;\n');
    const open = await eventually(async () => {
      const s = await t.broker.store.listSessions({ build, open: true });
      return s.length === 2 && s.every((x) => x.statementCount > 0) ? s : null;
    });
    expect(open.map((s) => s.actors).sort()).toEqual([[], ['nightly-agent']]);

    const r = await jit('revoke', '--build', build, '--reason', 'token leaked in a job log', '--by', 'alice');
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^revoked build '${build}' \\(revocation \\d+\\): 2 open session\\(s\\) ended: s_\\w+, s_\\w+\\n$`));

    // Both sessions are over, each recorded with the reason.
    const reason = `jit-broker: revoked: build '${build}' was revoked by cli:alice: token leaked in a job log`;
    const ended = await t.broker.store.listSessions({ build });
    expect(ended.filter((s) => s.endedAt === null)).toEqual([]);
    expect(ended.map((s) => s.endReason)).toEqual([reason, reason]);
    // node-postgres was told why (FATAL 57P01); psql finds out at its next statement and stops.
    await eventually(async () => clientErrors.length > 0);
    expect(clientErrors[0]).toMatchObject({ code: '57P01', message: reason });
    psql.stdin.end('SELECT 2;\n');
    expect(await psqlExit).not.toBe(0);
    expect(psqlErr).toContain('revoked');

    // From now on: no login, no exchange, for the parent, the child, or any new token of the build.
    for (const token of [parent, child, await t.token({ build })]) {
      await expect(new pg.Client(t.pgConfig(token)).connect()).rejects.toMatchObject({
        code: '28P01',
        message: `token refused: revoked: build '${build}' was revoked by cli:alice: token leaked in a job log`,
      });
    }
    expect((await exchange(parent, { actor: 'x' })).body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/revoked/) });
    const listed = await jit('revocations', '--build', build, '--json');
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ build, jti: null, revokedBy: 'cli:alice', reason: 'token leaked in a job log' })]);
  });
});

describe('POST /api/revocations', () => {
  it('revoking a token by jti refuses the tokens exchanged from it, not the rest of its build', async () => {
    const build = 'acme/app/778/1';
    const parent = await t.token({ build });
    const child = await childOf(parent, 'agent');
    const grandchild = await childOf(child, 'sub-agent');
    const sibling = await t.token({ build });
    const jti = JSON.parse(Buffer.from(parent.split('.')[1]!, 'base64url').toString()).jti as string;
    const r = await api('POST', '/api/revocations', { jti, reason: 'this one token leaked', by: 'ops' });
    expect(r).toMatchObject({ status: 201, body: { revocation: { jti, build: null, revokedBy: 'api:ops' }, ended: [] } });
    for (const token of [parent, child, grandchild]) {
      await expect(new pg.Client(t.pgConfig(token)).connect()).rejects.toMatchObject({
        code: '28P01',
        message: expect.stringMatching(/revoked: token .* was revoked by api:ops: this one token leaked/),
      });
    }
    const ok = new pg.Client(t.pgConfig(sibling));
    await ok.connect();
    await ok.end();
  });

  it('needs the admin token, a build or a jti, and a reason', async () => {
    expect((await api('POST', '/api/revocations', { build: 'b', reason: 'r' }, null)).status).toBe(401);
    expect((await api('POST', '/api/revocations', { build: 'b', reason: 'r' }, 'wrong-token-0123456789')).status).toBe(401);
    expect(await api('POST', '/api/revocations', { reason: 'r' })).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/name a build or a token id/) },
    });
    expect((await api('POST', '/api/revocations', { build: 'b' })).status).toBe(400);
    const list = await api('GET', '/api/revocations?limit=1');
    expect(list.body['revocations']).toHaveLength(1);
  });
});

describe('RevocationService', () => {
  let dir: string;
  const stores: Store[] = [];
  const storeAt = async (file: string) => {
    const s = await openStore(`sqlite:${join(dir, file)}`);
    stores.push(s);
    return s;
  };
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'jit-revoke-'));
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('for the Slack bot: only revokers (user id, e-mail, verified group) may revoke; the admin token always may', async () => {
    const s = await RevocationService.open({ store: await storeAt('bot.db'), revokers: ['U0ONCALL', 'lead@acme.com', '@dba-oncall'] });
    expect(await s.revoke({ build: 'b1', reason: 'r', by: 'U0OTHER' })).toMatchObject({ ok: false, code: 'not_revoker' });
    expect(await s.revoke({ build: 'b1', reason: 'r', by: 'U0OTHER', groups: ['@someone-else'] })).toMatchObject({ ok: false, code: 'not_revoker' });
    expect(await s.isRevoked({ jti: null, build: 'b1' })).toBe(false);
    expect(await s.revoke({ build: 'b1', reason: 'incident 42', by: 'U0ONCALL' })).toMatchObject({
      ok: true,
      revocation: { build: 'b1', revokedBy: 'U0ONCALL' },
      ended: [],
    });
    expect(await s.revoke({ build: 'b2', reason: 'r', by: 'U0LEAD', email: 'Lead@acme.com' })).toMatchObject({ ok: true });
    expect(await s.revoke({ build: 'b3', reason: 'r', by: 'U0DBA', groups: ['@dba-oncall'] })).toMatchObject({ ok: true });
    expect(await s.revoke({ build: 'b4', reason: 'r', by: 'cli:root', trusted: true })).toMatchObject({ ok: true });
    expect(await s.revoke({ reason: 'r', by: 'U0ONCALL' })).toMatchObject({ ok: false, code: 'invalid' });
    expect(await s.revoke({ build: 'b5', reason: '  ', by: 'U0ONCALL' })).toMatchObject({ ok: false, code: 'invalid' });
    expect(await s.isRevoked({ jti: null, build: 'b1' })).toBe("build 'b1' was revoked by U0ONCALL: incident 42");
  });

  it('a revokers group written with spaces around it is a group, as in approvals', async () => {
    const s = await RevocationService.open({ store: await storeAt('spaced.db'), revokers: [' @dba-oncall'] });
    expect(await s.revoke({ build: 'b1', reason: 'r', by: 'U0DBA', groups: ['@dba-oncall'] })).toMatchObject({ ok: true });
  });

  it('revocations survive a restart, are answered from memory, and another broker on the store catches up', async () => {
    const first = await storeAt('restart.db');
    const a = await RevocationService.open({ store: first, revokers: [] });
    await a.revoke({ build: 'acme/app/9/1', reason: 'r', by: 'U1' });
    await a.revoke({ jti: 'jti-1', reason: 'r', by: 'U1' });
    await first.close();

    const second = await storeAt('restart.db');
    let reads = 0;
    const counting = new Proxy(second, {
      get: (target, p, recv) =>
        p === 'listRevocations' ? (...args: Parameters<Store['listRevocations']>) => (reads++, target.listRevocations(...args)) : Reflect.get(target, p, recv),
    });
    const b = await RevocationService.open({ store: counting, revokers: [], refreshMs: 60_000 });
    expect(reads).toBe(1);
    expect(await b.isRevoked({ jti: null, build: 'acme/app/9/1' })).toBe("build 'acme/app/9/1' was revoked by U1: r");
    expect(await b.isRevoked({ jti: 'other', build: 'x', ancestors: ['jti-1'] })).toBe('token jti-1 was revoked by U1: r'); // exchanged from a revoked token
    for (let i = 0; i < 100; i++) await b.isRevoked({ jti: `j${i}`, build: `b${i}` });
    expect(reads).toBe(1); // cached: checked per login without touching the store

    const c = await RevocationService.open({ store: second, revokers: [], refreshMs: 0 });
    await b.revoke({ build: 'later', reason: 'r', by: 'U1' });
    expect(await c.isRevoked({ jti: null, build: 'later' })).toBe("build 'later' was revoked by U1: r");
  });

  it('a session its engine could not end at once runs nothing more', async () => {
    const store = await storeAt('race.db');
    const svc = await RevocationService.open({ store, revokers: [] });
    const identity = { subject: 's', issuer: 'i', build: 'race/1', claims: {}, actors: ['agent'], tokenId: 'j', expiresAt: new Date(Date.now() + 60_000) };
    const session = await BrokerSession.open(
      { store, policy: { rules: [], default: 'allow' }, revoked: (i) => svc.revokedReason(i) },
      identity,
      { name: 'app', engine: 'postgres', upstream: 'postgres://x' },
      { address: '127.0.0.1', port: 1, application: null, user: null, tls: true },
    );
    expect((await session.admit({ sql: 'SELECT 1', protocol: 'simple' })).ok).toBe(true);
    await svc.revoke({ build: 'race/1', reason: 'stop', by: 'U1' });
    expect(await session.admit({ sql: 'SELECT 1', protocol: 'simple' })).toMatchObject({
      ok: false,
      message: "jit-broker: revoked: build 'race/1' was revoked by U1: stop",
    });
    const st = await store.listStatements(session.id);
    expect(st.map((x) => x.decision)).toEqual(['allow', 'deny']);
    await expect(
      BrokerSession.open(
        { store, policy: { rules: [], default: 'allow' }, revoked: (i) => svc.revokedReason(i) },
        identity,
        { name: 'app', engine: 'postgres', upstream: 'postgres://x' },
        { address: '127.0.0.1', port: 1, application: null, user: null, tls: true },
      ),
    ).rejects.toMatchObject({ code: '28P01', message: expect.stringMatching(/revoked/) });
    await session.close('done');
  });
});
