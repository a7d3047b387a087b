// RFC 8693 token exchange against a live broker: POST /oauth/token, the child's claims, every refusal,
// the scope and target limits on the wire (psql, node-postgres), and `jit token exchange`.
import { SignJWT, decodeJwt, generateKeyPair } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVerifier } from '../../broker/identity/index.js';
import { BASE_RULES, UPSTREAM, direct, psqlEnv, run, startTestBroker, type TestBroker } from '../support/broker.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
const ADMIN = 'exchange-admin-token-0123456789';

let t: TestBroker;
const jit = (...args: string[]) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, ...args]);
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  t = await startTestBroker(`${BASE_RULES}\nadmin_token: "${ADMIN}"\n`, {
    identity: 'exchange: { max_ttl: 30m, max_depth: 3 }',
    targets: `  other: { engine: postgres, upstream: "${UPSTREAM}" }`,
  });
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_t_scope; CREATE TABLE jit_t_scope (id int); INSERT INTO jit_t_scope VALUES (1), (2), (3)'));
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_t_scope'));
});

type Params = Record<string, string | string[] | undefined>;
async function exchange(p: Params) {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) for (const x of v === undefined ? [] : Array.isArray(v) ? v : [v]) form.append(k, x);
  const res = await fetch(`${t.httpUrl}/oauth/token`, { method: 'POST', body: form });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}
const subject = (token: string, extra: Params = {}): Params => ({ grant_type: GRANT, subject_token: token, subject_token_type: JWT, ...extra });

async function child(parent: string, extra: Params): Promise<string> {
  const r = await exchange(subject(parent, extra));
  expect(r.body).toHaveProperty('access_token');
  return r.body['access_token'] as string;
}

async function refusedWith(p: Params, error: string, description: RegExp) {
  const r = await exchange(p);
  expect(r.status).toBe(400);
  expect(r.headers.get('cache-control')).toBe('no-store');
  expect(r.body).toEqual({ error, error_description: expect.stringMatching(description) });
}

const pipeline = (o: { build?: string; ttlSeconds?: number } = {}) =>
  t.token({
    subject: 'repo:acme/app:ref:refs/heads/main',
    build: o.build ?? 'acme/app/100/1',
    ttlSeconds: o.ttlSeconds ?? 600,
    claims: { repository: 'acme/app', email: 'dev@acme.com' },
  });

describe('POST /oauth/token', () => {
  it('exchanges a pipeline token for a read-only child for a nested agent', async () => {
    const parent = await pipeline();
    const r = await exchange(subject(parent, { audience: 'app', scope: 'read', expires_in: '300', actor: 'nightly-agent' }));
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toEqual({ access_token: expect.any(String), issued_token_type: ACCESS, token_type: 'Bearer', expires_in: 300, scope: 'read' });
    const p = decodeJwt(parent);
    const c = decodeJwt(r.body['access_token'] as string);
    expect(c).toMatchObject({
      iss: t.broker.issuer!.issuer,
      aud: 'jit-broker',
      sub: 'repo:acme/app:ref:refs/heads/main',
      build: 'acme/app/100/1',
      scope: 'read',
      target: 'app',
      act: { sub: 'nightly-agent' },
      subject_issuer: t.broker.issuer!.issuer,
      jit_ancestors: [p.jti],
      repository: 'acme/app',
      email: 'dev@acme.com',
    });
    expect(c.exp! - c.iat!).toBe(300);
    expect(c.exp!).toBeLessThanOrEqual(p.exp!);
    const id = await createVerifier({ issuers: [], local: { issuer: t.broker.issuer!, audience: 'jit-broker' } }).verify(r.body['access_token'] as string);
    expect(id).toMatchObject({ subject: 'repo:acme/app:ref:refs/heads/main', build: 'acme/app/100/1', actors: ['nightly-agent'] });
  });

  it("nests: a verified actor token names the next actor, limits are inherited, the chain is outermost first, life never beyond the parent's", async () => {
    const first = await child(await pipeline(), { audience: 'app', scope: 'read', expires_in: '120', actor: 'nightly-agent' });
    const agent = await t.token({ subject: 'sub-agent-7', build: 'agents' });
    const r = await exchange(subject(first, { actor_token: agent, actor_token_type: JWT, requested_token_type: JWT }));
    expect(r.body).toMatchObject({ issued_token_type: JWT, token_type: 'N_A', scope: 'read' });
    expect(r.body['expires_in']).toBeLessThanOrEqual(120); // no expires_in: default_ttl, capped by the parent
    const c = decodeJwt(r.body['access_token'] as string);
    expect(c).toMatchObject({
      scope: 'read',
      target: 'app',
      build: 'acme/app/100/1',
      act: { sub: 'sub-agent-7', iss: t.broker.issuer!.issuer, act: { sub: 'nightly-agent' } },
    });
    expect(c.jit_ancestors).toEqual([decodeJwt(first).jti, ...(decodeJwt(first).jit_ancestors as string[])]);
    expect(c.exp!).toBeLessThanOrEqual(decodeJwt(first).exp!);
    const id = await createVerifier({ issuers: [], local: { issuer: t.broker.issuer!, audience: 'jit-broker' } }).verify(r.body['access_token'] as string);
    expect(id.actors).toEqual(['sub-agent-7', 'nightly-agent']);
  });

  it('announces the token endpoint in the discovery document', async () => {
    const doc = (await (await fetch(`${t.httpUrl}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(doc).toMatchObject({ token_endpoint: `${t.broker.issuer!.issuer}/oauth/token`, grant_types_supported: [GRANT] });
  });
});

describe('refusals: a child never widens', () => {
  it('broader scope', async () => {
    const c = await child(await pipeline(), { scope: 'read', actor: 'a' });
    await refusedWith(subject(c, { scope: 'write', actor: 'b' }), 'invalid_scope', /scope is 'read'; a child cannot get 'write'/);
    await refusedWith(subject(c, { scope: 'read bogus', actor: 'b' }), 'invalid_scope', /'bogus' is not a scope/);
  });

  it('another target, or one the broker does not have', async () => {
    const c = await child(await pipeline(), { audience: 'app', actor: 'a' });
    await refusedWith(subject(c, { audience: 'other', actor: 'b' }), 'invalid_target', /limited to target 'app'; a child cannot get 'other'/);
    await refusedWith(subject(c, { resource: ['app', 'other'], actor: 'b' }), 'invalid_target', /cannot get 'other'/);
    await refusedWith(subject(await pipeline(), { audience: 'nope', actor: 'b' }), 'invalid_target', /'nope' is not a target/);
  });

  it("a longer life than the parent's, or than identity.exchange.max_ttl", async () => {
    await refusedWith(
      subject(await pipeline({ ttlSeconds: 600 }), { expires_in: '900', actor: 'a' }),
      'invalid_request',
      /expires_in 900s would outlive the subject_token, which expires in \d+s/,
    );
    await refusedWith(
      subject(await pipeline({ ttlSeconds: 3600 }), { expires_in: '2000', actor: 'a' }),
      'invalid_request',
      /longer than identity\.exchange\.max_ttl \(1800s\)/,
    );
    await refusedWith(subject(await pipeline(), { expires_in: 'soon', actor: 'a' }), 'invalid_request', /expires_in must be a positive number/);
  });

  it('an expired parent (beyond and within the clock skew)', async () => {
    const issuer = t.broker.issuer!;
    const long = await issuer.sign({ subject: 's', build: 'b', audience: 'jit-broker', ttlSeconds: 60, notAfter: now() - 120 });
    await refusedWith(subject(long, { actor: 'a' }), 'invalid_grant', /subject_token refused: expired 1\d\ds ago/);
    const recent = await issuer.sign({ subject: 's', build: 'b', audience: 'jit-broker', ttlSeconds: 60, notAfter: now() - 5 });
    await refusedWith(subject(recent, { actor: 'a' }), 'invalid_grant', /subject_token refused: expired \ds ago/);
  });

  it('a revoked build', async () => {
    const parent = await pipeline({ build: 'acme/app/revoked/1' });
    const res = await fetch(`${t.httpUrl}/api/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ build: 'acme/app/revoked/1', reason: 'leaked in a log' }),
    });
    expect(res.status).toBe(201);
    await refusedWith(subject(parent, { actor: 'a' }), 'invalid_grant', /revoked: build 'acme\/app\/revoked\/1' was revoked by api:admin: leaked in a log/);
  });

  it('a chain deeper than identity.exchange.max_depth', async () => {
    let token = await pipeline();
    for (const a of ['one', 'two', 'three']) token = await child(token, { actor: a });
    await refusedWith(
      subject(token, { actor: 'four' }),
      'invalid_request',
      /delegation depth exceeded: the subject_token is already 3 deep \(three <- two <- one\), and identity\.exchange\.max_depth is 3/,
    );
  });

  it('a forged actor token, one from an untrusted issuer, or no actor at all', async () => {
    const stranger = (await generateKeyPair('ES256')).privateKey;
    const forged = await new SignJWT({ sub: 'trusted-agent' })
      .setProtectedHeader({ alg: 'ES256', kid: t.broker.issuer!.kid })
      .setIssuer(t.broker.issuer!.issuer)
      .setAudience('jit-broker')
      .setExpirationTime(now() + 300)
      .sign(stranger);
    await refusedWith(
      subject(await pipeline(), { actor_token: forged, actor_token_type: JWT }),
      'invalid_request',
      /actor_token refused: signature does not verify/,
    );
    const foreign = await new SignJWT({ sub: 'x' })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer('https://evil.test')
      .setAudience('jit-broker')
      .setExpirationTime(now() + 300)
      .sign(stranger);
    await refusedWith(
      subject(await pipeline(), { actor_token: foreign, actor_token_type: JWT }),
      'invalid_request',
      /actor_token refused: issuer 'https:\/\/evil\.test' is not trusted/,
    );
    await refusedWith(subject(await pipeline(), { actor_token: await t.token({ subject: 'x' }) }), 'invalid_request', /actor_token_type must be given/);
    await refusedWith(subject(await pipeline(), {}), 'invalid_request', /name who the token is for/);
  });

  it('a forged subject token, a wrong grant type, a repeated parameter', async () => {
    const stranger = (await generateKeyPair('ES256')).privateKey;
    const forged = await new SignJWT({ sub: 'x', build: 'b' })
      .setProtectedHeader({ alg: 'ES256', kid: t.broker.issuer!.kid })
      .setIssuer(t.broker.issuer!.issuer)
      .setAudience('jit-broker')
      .setExpirationTime(now() + 300)
      .sign(stranger);
    await refusedWith(subject(forged, { actor: 'a' }), 'invalid_grant', /subject_token refused: signature does not verify/);
    await refusedWith({ ...subject(await pipeline(), { actor: 'a' }), grant_type: 'client_credentials' }, 'unsupported_grant_type', /grant_type must be/);
    await refusedWith(subject(await pipeline(), { actor: 'a', scope: ['read', 'write'] }), 'invalid_request', /scope is given more than once/);
    await refusedWith({ grant_type: GRANT, subject_token: await pipeline(), actor: 'a' }, 'invalid_request', /subject_token_type must be one of/);
  });
});

describe('limits on the wire', () => {
  const rows = () => direct(async (c) => (await c.query('SELECT count(*)::int AS n FROM jit_t_scope')).rows[0].n as number);

  it('a read-scoped child is refused a write whatever the rules allow (psql, node-postgres); its parent is not', async () => {
    const parent = await pipeline({ build: 'acme/app/scope/1' });
    const reader = await child(parent, { scope: 'read', actor: 'nightly-agent' });
    const env = psqlEnv(t, reader);
    const ok = await run('psql', ['-X', '-A', '-t', '-c', 'SELECT count(*) FROM jit_t_scope'], env);
    expect(ok.stdout.trim()).toBe('3');
    const denied = await run('psql', ['-X', '-v', 'VERBOSITY=verbose', '-c', 'DELETE FROM jit_t_scope WHERE id = 1'], env);
    expect(denied.stderr).toContain("ERROR:  42501: jit-broker: token scope 'read' does not allow a write statement");
    const c = new pg.Client(t.pgConfig(reader));
    await c.connect();
    try {
      await expect(c.query('UPDATE jit_t_scope SET id = 9 WHERE id = 2')).rejects.toMatchObject({
        code: '42501',
        message: "jit-broker: token scope 'read' does not allow a write statement",
      });
      await expect(c.query('DROP TABLE jit_t_scope')).rejects.toMatchObject({
        code: '42501',
        message: expect.stringMatching(/token scope 'read' does not allow a (ddl|destructive) statement/),
      });
    } finally {
      await c.end();
    }
    expect(await rows()).toBe(3);
    // The refusal is recorded as a deny on the child's session, with the chain.
    const sessions = await t.broker.store.listSessions({ build: 'acme/app/scope/1' });
    const psqlSession = sessions.find((s) => s.denied > 0 && s.clientApplication === 'psql')!;
    expect(psqlSession.actors).toEqual(['nightly-agent']);
    const st = await t.broker.store.listStatements(psqlSession.id);
    expect(st.find((x) => x.decision === 'deny')).toMatchObject({
      ruleId: null,
      message: "token scope 'read' does not allow a write statement",
      kinds: ['write'],
    });
    // The parent (no scope) is governed by the rules alone, which allow it.
    const w = await run('psql', ['-X', '-c', 'DELETE FROM jit_t_scope WHERE id = 1'], psqlEnv(t, parent));
    expect(w.stderr).toBe('');
    expect(await rows()).toBe(2);
  });

  it('a child limited to a target refuses logins to another target (42501); its parent may log in there', async () => {
    const parent = await pipeline();
    const limited = await child(parent, { audience: 'app', actor: 'agent' });
    await expect(new pg.Client(t.pgConfig(limited, { database: 'other' })).connect()).rejects.toMatchObject({
      code: '42501',
      message: "jit-broker: the token is limited to target 'app'; it cannot log in to 'other'",
    });
    const c = new pg.Client(t.pgConfig(parent, { database: 'other' }));
    await c.connect();
    await c.end();
  });
});

describe('jit token exchange', () => {
  it('prints the child token, or the whole response with --json', async () => {
    const parent = await pipeline();
    const r = await jit('token', 'exchange', '--subject-token', parent, '--target', 'app', '--scope', 'read', '--ttl', '5m', '--actor', 'nightly-agent');
    expect(r.stderr).toBe('');
    const c = decodeJwt(r.stdout.trim());
    expect(c).toMatchObject({ scope: 'read', target: 'app', act: { sub: 'nightly-agent' }, sub: 'repo:acme/app:ref:refs/heads/main' });
    expect(c.exp! - c.iat!).toBe(300);
    const agent = await t.token({ subject: 'sub-agent' });
    const j = await jit('token', 'exchange', '--subject-token', r.stdout.trim(), '--actor-token', agent, '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({ token_type: 'Bearer', scope: 'read', expires_in: expect.any(Number) });
    const psql = await run('psql', ['-X', '-A', '-t', '-c', 'SELECT 1'], psqlEnv(t, JSON.parse(j.stdout).access_token as string));
    expect(psql.stdout.trim()).toBe('1');
  });

  it('reports a refusal with its error code and reason (exit 1)', async () => {
    const reader = await child(await pipeline(), { scope: 'read', actor: 'a' });
    const r = await run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'token', 'exchange', '--scope', 'admin', '--actor', 'b'], {
      JIT_SUBJECT_TOKEN: reader,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/token exchange refused: invalid_scope: the subject_token's scope is 'read'; a child cannot get 'admin'/);
    expect(r.stdout).toBe('');
  });
});
