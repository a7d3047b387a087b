// Policy over delegated tokens, without a database: the scope ceiling checked before any rule, rules
// matching the actor chain (`actors`, `min_depth`/`max_depth`) and the scope (`scopes`), and the config keys.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../broker/config.js';
import { parseScope } from '../../broker/identity/limits.js';
import { classify, decide, loadPostgresParser, type PolicyConfig } from '../../broker/policy/index.js';
import type { Identity } from '../../broker/types.js';

beforeAll(() => loadPostgresParser());

const who = (o: { actors?: string[]; scope?: string; target?: string } = {}): Identity => ({
  subject: 'repo:acme/app:ref:refs/heads/main',
  issuer: 'https://broker.test',
  build: 'acme/app/1/1',
  claims: { ...(o.scope !== undefined ? { scope: o.scope } : {}), ...(o.target ? { target: o.target } : {}) },
  actors: o.actors ?? [],
  tokenId: 'j1',
  expiresAt: new Date(Date.now() + 60_000),
});
const run = (p: PolicyConfig, id: Identity, sql: string) => decide(p, id, 'app', classify('postgres', sql));

describe('scope', () => {
  const allowAll: PolicyConfig = { rules: [{ id: 'everything', action: 'allow' }], default: 'deny' };

  it('is a ceiling on statement kinds, checked before any rule', () => {
    expect(run(allowAll, who({ scope: 'read' }), 'SELECT 1')).toMatchObject({ action: 'allow', ruleId: 'everything' });
    expect(run(allowAll, who({ scope: 'read' }), 'DELETE FROM t WHERE id = 1')).toEqual({
      action: 'deny',
      ruleId: null,
      message: "token scope 'read' does not allow a write statement",
      kinds: ['write'],
    });
    expect(run(allowAll, who({ scope: 'write' }), 'INSERT INTO t SELECT * FROM u')).toMatchObject({ action: 'allow' });
    expect(run(allowAll, who({ scope: 'write' }), 'CREATE TABLE x (id int)').message).toBe("token scope 'write' does not allow a ddl statement");
    expect(run(allowAll, who({ scope: 'read' }), 'SELECT 1; TRUNCATE t')).toMatchObject({
      action: 'deny',
      message: "token scope 'read' does not allow a destructive statement — statement 2 of 2: TRUNCATE t",
    });
    expect(run(allowAll, who({ scope: 'unknown' }), 'DO $$ BEGIN END $$')).toMatchObject({ action: 'allow' });
    expect(run(allowAll, who(), 'DROP TABLE t')).toMatchObject({ action: 'allow' }); // no scope claim: rules alone
  });

  it('a scope claim that is not understood refuses everything', () => {
    expect(run(allowAll, who({ scope: 'openid profile' }), 'SELECT 1')).toMatchObject({
      action: 'deny',
      message: expect.stringMatching(/token scope 'openid profile' is not understood/),
    });
  });

  it('parses a list to its most severe kind', () => {
    expect(parseScope('read write')).toEqual({ ceiling: 'write' });
    expect(parseScope('ddl read')).toEqual({ ceiling: 'ddl' });
    expect(parseScope('')).toHaveProperty('error');
  });
});

describe('rules over the chain and the scope', () => {
  const policy: PolicyConfig = {
    rules: [
      { id: 'no-rogue', actors: ['rogue-*'], action: 'deny' },
      { id: 'deep-agents-read-only', min_depth: 2, kinds: ['write'], action: 'deny' },
      { id: 'known-agents-write', actors: ['nightly-agent', 'sub-agent-*'], kinds: ['write'], action: 'allow' },
      { id: 'pipeline-writes', max_depth: 0, kinds: ['write'], action: 'allow' },
      { id: 'scoped-ddl-review', scopes: ['ddl'], kinds: ['ddl'], action: 'review' },
      { id: 'reads', kinds: ['read'], action: 'allow' },
    ],
    default: 'deny',
  };
  const write = 'UPDATE t SET a = 1 WHERE id = 1';

  it('a deny rule catches a chain if ANY actor matches; an allow rule needs EVERY actor to match', () => {
    expect(run(policy, who({ actors: ['sub-agent-1', 'rogue-bot'] }), 'SELECT 1').ruleId).toBe('no-rogue');
    expect(run(policy, who({ actors: ['nightly-agent'] }), write).ruleId).toBe('known-agents-write');
    // An unknown agent under a known one is not covered by the allow rule: default deny.
    expect(run(policy, who({ actors: ['stranger'] }), write)).toMatchObject({ action: 'deny', ruleId: null });
  });

  it('depth bounds: 0 is the pipeline itself; an actors rule never matches a token used directly', () => {
    expect(run(policy, who(), write).ruleId).toBe('pipeline-writes');
    expect(run(policy, who({ actors: ['sub-agent-2', 'nightly-agent'] }), write).ruleId).toBe('deep-agents-read-only');
    expect(run({ rules: [{ id: 'any-agent', actors: ['*'], action: 'deny' }], default: 'allow' }, who(), 'SELECT 1').action).toBe('allow');
  });

  it('scopes match the ceiling of a scoped token, never an unscoped one', () => {
    expect(run(policy, who({ scope: 'ddl' }), 'CREATE TABLE x (id int)')).toMatchObject({ action: 'review', ruleId: 'scoped-ddl-review' });
    expect(run(policy, who(), 'CREATE TABLE x (id int)')).toMatchObject({ action: 'deny', ruleId: null });
  });
});

describe('config', () => {
  const cfg = (extra: string) => parseConfig(`targets: { app: { engine: postgres, upstream: demo } }\n${extra}`, { file: null, baseDir: '/tmp', env: {} });

  it('identity.exchange, single_use and revokers, with their defaults', () => {
    const d = cfg('');
    expect(d.identity).toMatchObject({ single_use: false, exchange: { enabled: true, max_depth: 3 } });
    expect(d.identity.exchange.max_ttl).toBeUndefined(); // identity.max_ttl applies
    expect(d.identity.revokers).toBeUndefined();
    const c = cfg('identity: { single_use: true, revokers: ["@oncall", U123], exchange: { max_ttl: 10m, max_depth: 2 } }');
    expect(c.identity).toMatchObject({ single_use: true, revokers: ['@oncall', 'U123'], exchange: { enabled: true, max_ttl: 600, max_depth: 2 } });
    expect(() => cfg('identity: { exchange: { max_depth: 0 } }')).toThrow(/identity\.exchange\.max_depth/);
  });

  it('rule fields actors, min_depth, max_depth, scopes', () => {
    const c = cfg('rules: [{ id: a, actors: ["agent-*"], min_depth: 1, max_depth: 2, scopes: [read], action: allow }]');
    expect(c.rules[0]).toMatchObject({ actors: ['agent-*'], min_depth: 1, max_depth: 2, scopes: ['read'] });
    expect(() => cfg('rules: [{ id: a, min_depth: 3, max_depth: 1, action: allow }]')).toThrow(/rules\[0\]\.min_depth: min_depth \(3\) is more than max_depth/);
    expect(() => cfg('rules: [{ id: a, scopes: [everything], action: allow }]')).toThrow(/rules\[0\]\.scopes\[0\]/);
  });
});

describe('examples/jit.yaml', () => {
  it('its agent rule and exchange settings do what their comments say', async () => {
    const { loadConfig } = await import('../../broker/config.js');
    const c = loadConfig(new URL('../../examples/jit.yaml', import.meta.url).pathname, {
      APP_DB_PASSWORD: 'p',
      ANALYTICS_DB_PASSWORD: 'p',
      JIT_ADMIN_TOKEN: 'a'.repeat(32),
    });
    expect(c.identity).toMatchObject({
      single_use: false,
      revokers: ['@dba-oncall', 'alice@acme.com'],
      exchange: { enabled: true, max_ttl: 1800, max_depth: 3 },
    });
    const p = { rules: c.rules, default: c.default };
    const deployer: Identity = {
      ...who(),
      issuer: 'https://token.actions.githubusercontent.com',
      claims: { repository_owner: 'acme', job_workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main' },
    };
    expect(run(p, deployer, 'ALTER TABLE users ADD COLUMN x int')).toMatchObject({ action: 'review', ruleId: 'migrations' });
    // The same pipeline's agent: refused, though it carries the deploy workflow's claims.
    expect(run(p, { ...deployer, actors: ['release-bot'] }, 'ALTER TABLE users ADD COLUMN x int')).toMatchObject({ action: 'deny', ruleId: 'agents-no-ddl' });
    expect(run(p, { ...deployer, actors: ['release-bot'] }, 'SELECT * FROM users')).toMatchObject({ action: 'allow', ruleId: 'ci-reads' });
  });
});
