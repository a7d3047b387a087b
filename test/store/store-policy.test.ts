// The store's policy versions (issue 15): numbered from 1 in order, the newest active, read back whole with
// the hash of their canonical JSON; two stores (two brokers) applying at once get distinct versions; every
// recorded statement (direct path and journal) and approval request names the version that decided it.
// Run against both dialects (see dialects.ts).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newApprovalId, openStore, type Store } from '../../broker/store/index.js';
import { canonicalJson, policySha256 } from '../../broker/store/policy-hash.js';
import type { PolicyDocument } from '../../broker/store/types.js';
import { dialects } from './dialects.js';

const v1: PolicyDocument = { rules: [{ id: 'reads', kinds: ['read'], action: 'allow' }], default: 'deny' };
const v2: PolicyDocument = { rules: [{ id: 'no-reads', kinds: ['read'], action: 'deny', message: 'not today' }], default: 'review' };

describe.each(dialects('policy'))('store ($name): policy versions', (d) => {
  let url: string;
  let store: Store;
  const extra: Store[] = [];
  beforeAll(() => d.setup());
  afterAll(() => d.teardown());
  beforeEach(async () => {
    url = await d.fresh();
    store = await openStore(url);
  });
  afterEach(async () => {
    for (const s of extra.splice(0)) await s.close();
    await store.close();
  });

  it('an empty store has no version; versions are numbered from 1, the newest active, read back whole', async () => {
    expect(await store.getPolicyVersion()).toBeNull();
    expect(await store.activePolicyVersion()).toBeNull();
    expect(await store.listPolicyVersions()).toEqual([]);
    const at = new Date(1_800_000_000_123);
    const a = await store.addPolicyVersion({ rules: v1, author: 'config', message: null, appliedAt: at });
    expect(a).toEqual({ version: 1, rules: v1, sha256: policySha256(v1), author: 'config', message: null, appliedAt: at });
    const b = await store.addPolicyVersion({ rules: v2, author: 'cli:alice', message: 'no reads today', appliedAt: new Date(1_800_000_001_000) });
    expect(b.version).toBe(2);
    expect(await store.activePolicyVersion()).toBe(2);
    expect(await store.getPolicyVersion()).toEqual(b);
    expect(await store.getPolicyVersion(1)).toEqual(a);
    expect(await store.getPolicyVersion(3)).toBeNull();
    expect((await store.listPolicyVersions()).map((v) => [v.version, v.author, v.message])).toEqual([
      [1, 'config', null],
      [2, 'cli:alice', 'no reads today'],
    ]);
    // What another process reads: the row as stored, with the hash of the canonical JSON.
    const row = await d.peek<{ sha256: string; author: string }>('SELECT sha256, author FROM policy_versions WHERE version = 2');
    expect(row).toEqual({ sha256: policySha256(v2), author: 'cli:alice' });
  });

  it('the hash is of the canonical JSON: the same rules in another key order hash alike', async () => {
    const reordered: PolicyDocument = { default: 'deny', rules: [{ action: 'allow', kinds: ['read'], id: 'reads' }] };
    expect(canonicalJson(reordered)).toBe(canonicalJson(v1));
    const a = await store.addPolicyVersion({ rules: v1, author: 'x', message: null, appliedAt: new Date() });
    const b = await store.addPolicyVersion({ rules: reordered, author: 'x', message: null, appliedAt: new Date() });
    expect(b.sha256).toBe(a.sha256);
    expect(b.version).toBe(2);
  });

  it('two brokers applying at once get distinct, consecutive versions', async () => {
    const others = await Promise.all([openStore(url), openStore(url), openStore(url)]);
    extra.push(...others);
    const all = [store, ...others];
    const added = await Promise.all(
      all.flatMap((s, i) => [1, 2, 3].map((n) => s.addPolicyVersion({ rules: v1, author: `broker-${i}`, message: `#${n}`, appliedAt: new Date() }))),
    );
    const versions = added.map((v) => v.version).sort((x, y) => x - y);
    expect(versions).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect((await store.listPolicyVersions()).length).toBe(12);
  });

  it('a statement and an approval request name the policy version that decided them', async () => {
    await store.addPolicyVersion({ rules: v1, author: 'config', message: null, appliedAt: new Date() });
    const sessionId = await store.createSession({
      target: 'app',
      engine: 'postgres',
      identity: { subject: 'ci', issuer: 'iss', build: 'b1', claims: {}, actors: [], tokenId: null, expiresAt: new Date(2_000_000_000_000) },
      client: { address: '127.0.0.1', port: 1, application: null, user: null, tls: true },
      startedAt: new Date(),
    });
    const base = { sessionId, protocol: 'simple' as const, ruleId: 'reads', message: null, startedAt: new Date() };
    const id = await store.recordStatement({ ...base, sql: 'SELECT 1', kinds: ['read'], decision: 'allow', policyVersion: 1 });
    await store.recordStatement({ ...base, sql: 'SELECT 2', kinds: ['read'], decision: 'allow' });
    // Through the journal's side of the store: the 'stmt' event carries it.
    const first = await store.reserveStatementIds(10);
    await store.ingest(
      'j1',
      [
        {
          t: 'stmt',
          id: first,
          seq: 3,
          ...base,
          startedAt: Date.now(),
          sql: 'SELECT 3',
          kinds: ['read'],
          decision: 'deny',
          approvalId: null,
          policyVersion: 2,
        },
      ],
      {
        segment: 1,
        offset: 10,
      },
    );
    const rows = await store.listStatements(sessionId);
    expect(rows.map((r) => [r.sql, r.policyVersion])).toEqual([
      ['SELECT 1', 1],
      ['SELECT 2', null],
      ['SELECT 3', 2],
    ]);
    expect(rows[0]!.id).toBe(id);
    const approvalId = newApprovalId();
    await store.createApproval({
      id: approvalId,
      target: 'app',
      sessionId,
      statementId: null,
      subject: 'ci',
      build: 'b1',
      claims: {},
      actors: [],
      sql: 'DROP TABLE t',
      kinds: ['destructive'],
      ruleId: 'hold',
      policyVersion: 7,
      settings: { approvers: [], timeoutSeconds: 300, minApprovals: 1, scope: 'statement' },
      requestedAt: new Date(),
      expiresAt: new Date(Date.now() + 300_000),
      state: 'pending',
      approvals: [],
      decidedBy: null,
      decidedAt: null,
      reason: null,
      message: null,
    });
    expect((await store.getApproval(approvalId))?.policyVersion).toBe(7);
    expect((await store.listApprovals({ sessionId }))[0]?.policyVersion).toBe(7);
  });
});
