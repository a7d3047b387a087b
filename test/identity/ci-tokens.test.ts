// CI ID tokens as GitHub Actions and GitLab CI issue them (every documented claim, RS256, kid),
// from a local issuer served over HTTP with OIDC discovery: logins, build ids, claims kept, a pipeline's
// delegation chain recorded on sessions and approvals, and JWKS key rotation without hammering.
import { generateKeyPair } from 'jose';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { eventually, startTestBroker, type TestBroker } from '../support/broker.js';
import { githubClaims, gitlabClaims, startOidcIssuers, type OidcIssuer } from '../support/oidc-issuer.js';

const ADMIN = 'ci-tokens-admin-token-0123456789';
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
const JWT = 'urn:ietf:params:oauth:token-type:jwt';
const RULES = `
rules:
  - { id: agents-ddl-review, actors: ["*"], kinds: [ddl], action: review }
  - { id: scratch, tables: ["jit_t_*"], kinds: [read, write, ddl, destructive], action: allow }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
admin_token: "${ADMIN}"
`;

let t: TestBroker;
let oidc: Awaited<ReturnType<typeof startOidcIssuers>>;
let gh: OidcIssuer;
let gl: OidcIssuer;
let rot: OidcIssuer;
let runId = 5000;

beforeAll(async () => {
  oidc = await startOidcIssuers(['github', 'gitlab', 'rotating']);
  [gh, gl, rot] = [oidc.issuers['github']!, oidc.issuers['gitlab']!, oidc.issuers['rotating']!];
  const issuers = [
    `{ issuer: "${gh.url}", audience: jit-broker, claims: { repository_owner: acme }, algorithms: [RS256] }`,
    `{ issuer: "${gl.url}", audience: jit-broker, claims: { namespace_path: "acme*" } }`,
    `{ issuer: "${rot.url}", audience: jit-broker }`,
    // GitHub's real issuer, keys from a jwks_uri (a broker that cannot reach github.com's discovery).
    `{ issuer: "https://token.actions.githubusercontent.com", audience: jit-broker, jwks_uri: "${gh.url}/.well-known/jwks" }`,
  ];
  t = await startTestBroker(RULES, { identity: `issuers: [${issuers.join(', ')}]` });
});
afterAll(async () => {
  await t?.stop();
  await oidc?.close();
});
afterEach(() => {
  vi.useRealTimers();
});

async function login(token: string): Promise<string> {
  const c = new pg.Client(t.pgConfig(token, { application_name: 'ci-tokens-test' }));
  await c.connect();
  try {
    await c.query('SELECT 1');
  } finally {
    await c.end();
  }
  const [s] = await t.broker.store.listSessions({ limit: 1 });
  return s!.id;
}

describe('GitHub Actions and GitLab CI ID tokens, as issued', () => {
  it('a GitHub Actions token logs in; the session records its subject, build (repository/run_id/run_attempt) and claims', async () => {
    const id = await login(await gh.sign(githubClaims({ runId: '4242', runAttempt: '2' })));
    const s = (await t.broker.store.getSession(id))!;
    expect(s).toMatchObject({ subject: 'repo:acme/app:environment:prod', issuer: gh.url, build: 'acme/app/4242/2', actors: [] });
    expect(s.claims).toEqual({
      repository: 'acme/app',
      repository_owner: 'acme',
      run_id: '4242',
      run_attempt: '2',
      workflow: 'nightly',
      ref: 'refs/heads/main',
      sha: 'd6f7c2e1a9b04c3e8f5a2b1c0d9e8f7a6b5c4d3e',
      actor: 'octocat',
      environment: 'prod',
      job_workflow_ref: 'acme/app/.github/workflows/nightly.yml@refs/heads/main',
    });
    expect(s.tokenId).toMatch(/^[0-9a-f-]{36}$/);
    // A branch job without an environment: sub is repo:OWNER/REPO:ref:refs/heads/main.
    const branch = (await t.broker.store.getSession(await login(await gh.sign(githubClaims({ runId: '4243', environment: null })))))!;
    expect(branch).toMatchObject({ subject: 'repo:acme/app:ref:refs/heads/main', build: 'acme/app/4243/1' });
  });

  it('a GitLab CI token logs in; the build is project_path/pipeline_id', async () => {
    const s = (await t.broker.store.getSession(await login(await gl.sign(gitlabClaims({ pipelineId: '9001' })))))!;
    expect(s).toMatchObject({ subject: 'project_path:acme/platform/app:ref_type:branch:ref:main', issuer: gl.url, build: 'acme/platform/app/9001' });
    expect(s.claims).toMatchObject({
      project_path: 'acme/platform/app',
      namespace_path: 'acme/platform',
      pipeline_id: '9001',
      job_id: '302',
      ref: 'main',
      user_login: 'sample-user',
      user_email: 'sample-user@example.com',
    });
  });

  it("the issuer's claim constraints, audience and GitHub's real issuer name", async () => {
    await expect(new pg.Client(t.pgConfig(await gh.sign(githubClaims({ runId: '1', repository: 'evil/app' })))).connect()).rejects.toMatchObject({
      code: '28P01',
      message: expect.stringMatching(/claim 'repository_owner' \('evil'\) does not match 'acme'/),
    });
    await expect(new pg.Client(t.pgConfig(await gl.sign(gitlabClaims({ pipelineId: '1', aud: 'https://vault.example.com' })))).connect()).rejects.toMatchObject(
      { code: '28P01', message: expect.stringMatching(/audience 'https:\/\/vault\.example\.com' is not accepted/) },
    );
    const real = await gh.sign({ ...githubClaims({ runId: '77' }), iss: 'https://token.actions.githubusercontent.com' });
    expect((await t.broker.store.getSession(await login(real)))!).toMatchObject({
      issuer: 'https://token.actions.githubusercontent.com',
      build: 'acme/app/77/1',
    });
  });
});

describe('a pipeline run, its bot, the agent the bot spawned', () => {
  it('records the chain on the session, its statements and approval requests', async () => {
    const run = String(runId++);
    const pipeline = await gh.sign(githubClaims({ runId: run }));
    const exchange = async (form: Record<string, string>) => {
      const res = await fetch(`${t.httpUrl}/oauth/token`, { method: 'POST', body: new URLSearchParams({ grant_type: GRANT, ...form }) });
      const body = (await res.json()) as Record<string, unknown>;
      expect(body).toHaveProperty('access_token');
      return body['access_token'] as string;
    };
    // The pipeline hands its bot a ddl-scoped token for `app`; the bot hands its agent one, naming it by the agent's own token.
    const bot = await exchange({ subject_token: pipeline, subject_token_type: ID_TOKEN, audience: 'app', scope: 'ddl', actor: 'release-bot' });
    const agentId = await t.token({ subject: 'sql-agent-3', build: 'agents' });
    const agent = await exchange({ subject_token: bot, subject_token_type: JWT, actor_token: agentId, actor_token_type: JWT });

    const c = new pg.Client(t.pgConfig(agent));
    await c.connect();
    await c.query('SELECT 1');
    const [s] = await t.broker.store.listSessions({ build: `acme/app/${run}/1` });
    expect(s).toMatchObject({
      subject: 'repo:acme/app:environment:prod',
      issuer: t.broker.issuer!.issuer,
      build: `acme/app/${run}/1`,
      actors: ['sql-agent-3', 'release-bot'],
      claims: {
        subject_issuer: gh.url,
        repository: 'acme/app',
        run_id: run,
        scope: 'ddl',
        target: 'app',
        act: { sub: 'sql-agent-3', act: { sub: 'release-bot' } },
      },
    });
    // A schema change by an agent is held (rule actors: ["*"]); the request names the chain.
    const held = c.query('CREATE TABLE jit_t_chain (id int)').catch((e: unknown) => e);
    const [req] = await eventually(async () => {
      const p = await t.broker.approvals.list({ state: 'pending', build: `acme/app/${run}/1` });
      return p.length ? p : null;
    });
    expect(req).toMatchObject({
      subject: 'repo:acme/app:environment:prod',
      build: `acme/app/${run}/1`,
      actors: ['sql-agent-3', 'release-bot'],
      ruleId: 'agents-ddl-review',
      sessionId: s!.id,
    });
    await t.broker.approvals.decide(req!.id, { approve: false, by: 'api:test', reason: 'not today', trusted: true });
    expect(await held).toMatchObject({ code: '42501', message: expect.stringMatching(/denied by api:test \(reason: not today\)/) });
    await c.end();
    const st = await t.broker.store.listStatements(s!.id);
    expect(st.map((x) => [x.sql, x.decision])).toEqual([
      ['SELECT 1', 'allow'],
      ['CREATE TABLE jit_t_chain (id int)', 'review'],
    ]);
    expect(st[1]!.approvalId).toBe(req!.id);
  });
});

describe('JWKS key rotation', () => {
  it('fetches a new kid once, and refuses unknown kids without hammering the JWKS endpoint', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const jwks = '/rotating/.well-known/jwks';
    const discovery = '/rotating/.well-known/openid-configuration';
    const first = rot.kid;
    await login(await rot.sign(githubClaims({ runId: String(runId++) })));
    expect([rot.hits[discovery], rot.hits[jwks]]).toEqual([1, 1]);

    const second = await rot.rotate(); // the JWKS now holds only the new key
    vi.setSystemTime(Date.now() + 31_000); // past the JWKS refetch cooldown (30s)
    await login(await rot.sign(githubClaims({ runId: String(runId++) })));
    expect(rot.hits[jwks]).toBe(2);
    await login(await rot.sign(githubClaims({ runId: String(runId++) })));
    expect(rot.hits[jwks]).toBe(2);

    const stranger = (await generateKeyPair('RS256')).privateKey;
    const forged = async (kid: string) => rot.sign(githubClaims({ runId: String(runId++) }), { kid, key: stranger });
    for (let i = 0; i < 10; i++) {
      await expect(new pg.Client(t.pgConfig(await forged(`unknown-${i}`))).connect()).rejects.toMatchObject({
        code: '28P01',
        message: expect.stringMatching(/unknown key/),
      });
    }
    expect(rot.hits[jwks]).toBe(2); // within the cooldown: no fetch at all
    vi.setSystemTime(Date.now() + 31_000);
    for (let i = 0; i < 10; i++) {
      await expect(new pg.Client(t.pgConfig(await forged('unknown-late'))).connect()).rejects.toMatchObject({ code: '28P01' });
    }
    expect(rot.hits[jwks]).toBe(3); // one refetch per cooldown, however many tokens
    // The retired key is gone for good; the forged signature under the new kid does not verify.
    await expect(new pg.Client(t.pgConfig(await rot.sign(githubClaims({ runId: '1' }), { kid: first, key: stranger }))).connect()).rejects.toMatchObject({
      message: expect.stringMatching(/unknown key/),
    });
    await expect(new pg.Client(t.pgConfig(await forged(second))).connect()).rejects.toMatchObject({
      message: expect.stringMatching(/signature does not verify/),
    });
    expect(rot.hits[discovery]).toBe(1);
  });
});
