// Replay events from a session recorded through the store API: their shapes (a stable interface), the
// text rendering of `jit replay`, and the pacing of --speed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReplayRenderer, sampleTable } from '../../broker/audit/render.js';
import { loadReplay, playEvents, replayEvents, type ReplayEvent } from '../../broker/audit/replay.js';
import { openStore, type Store } from '../../broker/store/index.js';
import { recordFixture, SAMPLE, T0, type Fixture } from '../support/replay-fixture.js';

let dir: string;
let store: Store;
let fx: Fixture;
let events: ReplayEvent[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jit-replay-'));
  store = await openStore(`sqlite:${join(dir, 'broker.db')}`);
  fx = await recordFixture(store);
  events = replayEvents((await loadReplay(store, fx.sessionId.slice(0, 6)))!);
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const iso = (ms: number) => new Date(T0 + ms).toISOString();

describe('replay events', () => {
  it('in order: session-start, per statement its statement/approval/result, session-end', () => {
    expect(events.map((e) => `${e.type}${'seq' in e ? ` ${e.seq}` : ''}`)).toEqual([
      'session-start',
      'statement 1',
      'result 1',
      'statement 2',
      'approval 2',
      'result 2',
      'statement 3',
      'statement 4',
      'approval 4',
      'statement 5',
      'approval 5',
      'result 5',
      'statement 6',
      'approval 6',
      'result 6',
      'statement 7',
      'session-end',
    ]);
  });

  it('have the documented shapes', () => {
    const s = fx.sessionId;
    expect(events[0]).toEqual({
      type: 'session-start',
      session: s,
      at: iso(0),
      target: 'app',
      engine: 'postgres',
      identity: {
        subject: 'repo:acme/api',
        issuer: 'https://token.actions.githubusercontent.com',
        build: 'acme/api/77/1',
        claims: { repository: 'acme/api', run_id: 77 },
        actors: ['agent:fixer', 'tool:psql'],
        tokenId: 'jti-77',
      },
      client: { address: '10.0.0.7', port: 50432, application: 'psql', user: 'ci', tls: true },
      dbRole: null,
    });
    expect(events[1]).toEqual({
      type: 'statement',
      session: s,
      seq: 1,
      statementId: fx.ids[0],
      at: iso(100),
      offsetMs: 100,
      sql: 'SELECT id, email, note\nFROM customers ORDER BY id',
      protocol: 'simple',
      kinds: ['read'],
      decision: 'allow',
      ruleId: 'ci-reads',
      message: null,
    });
    expect(events[2]).toEqual({
      type: 'result',
      session: s,
      seq: 1,
      statementId: fx.ids[0],
      durationMs: 1.25,
      tag: 'SELECT 5',
      rows: 5,
      error: null,
      sample: SAMPLE,
    });
    expect(events[4]).toEqual({
      type: 'approval',
      session: s,
      seq: 2,
      statementId: fx.ids[1],
      approvalId: fx.approvals.drop.id,
      state: 'approved',
      ruleId: 'hold',
      requestedAt: iso(1500),
      decidedAt: iso(4000),
      offsetMs: 4000,
      decidedBy: 'api:alice',
      reason: 'planned',
      approvals: [{ by: 'api:alice', at: iso(4000) }],
      minApprovals: 1,
      scope: 'statement',
      reused: false,
    });
    expect(events[5]).toMatchObject({ type: 'result', seq: 2, tag: 'DROP TABLE', rows: null, sample: null });
    expect(events[6]).toMatchObject({
      type: 'statement',
      seq: 3,
      decision: 'deny',
      ruleId: 'no-ddl',
      message: 'schema changes go through the deploy workflow',
    });
    expect(events[8]).toMatchObject({ type: 'approval', seq: 4, state: 'denied', decidedBy: 'U123', reason: 'not during business hours', reused: false });
    expect(events[10]).toMatchObject({ type: 'approval', seq: 5, approvalId: fx.approvals.session.id, scope: 'session', minApprovals: 2, reused: false });
    expect(events[13]).toMatchObject({ type: 'approval', seq: 6, approvalId: fx.approvals.session.id, reused: true });
    expect(events[14]).toMatchObject({ type: 'result', seq: 6, error: 'deadlock detected', tag: null });
    expect(events[16]).toEqual({
      type: 'session-end',
      session: s,
      at: iso(9000),
      offsetMs: 9000,
      reason: 'client vanished',
      statements: 7,
      allowed: 2,
      denied: 1,
      reviewed: 4,
    });
  });

  it('an open session has no session-end yet', async () => {
    const open = await store.createSession({
      target: 'app',
      engine: 'postgres',
      identity: { subject: 's', issuer: 'i', build: null, claims: {}, actors: [], tokenId: null, expiresAt: new Date(T0) },
      client: { address: '::1', port: 5, application: null, user: null, tls: false },
      startedAt: new Date(T0),
    });
    expect(replayEvents((await loadReplay(store, open))!).map((e) => e.type)).toEqual(['session-start']);
    expect(await loadReplay(store, 's_nothinglikethis')).toBeNull();
  });
});

describe('jit replay text', () => {
  it('tells who connected, each statement with its decision, approval, timing and result', () => {
    const r = new ReplayRenderer();
    const text = events.map((e) => r.render(e)).join('') + r.end();
    expect(text).toContain(`session ${fx.sessionId}  target app (postgres)  started ${iso(0).replace('T', ' ')}`);
    expect(text).toMatch(/ {2}subject {2}repo:acme\/api\n {2}issuer {3}https:\/\/token\.actions\.githubusercontent\.com\n {2}build {4}acme\/api\/77\/1\n/);
    expect(text).toContain('  claims   repository=acme/api  run_id=77\n');
    expect(text).toContain('  actors   agent:fixer → tool:psql (outermost first)\n');
    expect(text).toContain('  token id jti-77\n');
    expect(text).toContain('  client   10.0.0.7:50432  application psql  user ci  TLS\n');
    expect(text).toContain(
      '#1  +0.100s  allow  rule ci-reads  read\n    SELECT id, email, note\n    FROM customers ORDER BY id\n  → SELECT 5  5 rows  1.25 ms\n',
    );
    expect(text).toContain(
      [
        '    id | email         | note',
        '    ---+---------------+------',
        '    1  | a***@acme.com | first',
        '    2  | b***@acme.com | NULL',
        '    … 3 more rows',
      ].join('\n'),
    );
    expect(text).toContain(
      `#2  +1.500s  review  rule hold  destructive\n    DROP TABLE old_orders\n  approval ${fx.approvals.drop.id} (rule hold): approved by api:alice at ${iso(4000).replace('T', ' ')} [+4.000s], 2.5s after the request (reason: planned)\n  → DROP TABLE  4.50 ms\n`,
    );
    expect(text).toContain('#3  +5.000s  deny  rule no-ddl  destructive\n    TRUNCATE audit_log\n  refused: schema changes go through the deploy workflow\n');
    expect(text).toContain('(rule hold): denied by U123 at ');
    expect(text).toContain('0.5s after the request (reason: not during business hours)\n\n#5');
    expect(text).toContain('(rule fixes): approved by U1, U2 at ');
    expect(text).toContain('(rule fixes): approved earlier in this session (scope: session) by U1, U2 at ');
    expect(text).toContain('  → error: deadlock detected  0.70 ms\n');
    expect(text).toContain(
      '#7  +8.000s  allow  rule ci-reads  read\n    SELECT pg_sleep(60)\n  (no outcome recorded: it did not finish, or the client left first)\n',
    );
    expect(text).toMatch(/session ended \S+ \S+ \[\+9\.000s\]: client vanished; 7 statements \(2 allowed, 4 reviewed, 1 denied\)\n$/);
  });

  it('sample tables: wide cells cut, control characters escaped, cut samples say so', () => {
    const t = sampleTable(
      { columns: [{ name: 'v', type: 'text' }], rows: [['x'.repeat(50)], ['a\nb\tc'], ['😀'.repeat(12)]], truncated: true, bytes: 100 },
      3,
      { maxCell: 10 },
      '',
    );
    expect(t).toBe(['v', '----------', `${'x'.repeat(9)}…`, 'a\\nb\\tc', `${'😀'.repeat(9)}…`, '… (cut at the sample bounds)', ''].join('\n'));
    expect(sampleTable({ columns: [{ name: 'n', type: 'int4' }], rows: [['1']], truncated: true, bytes: 1 }, 2, {}, '')).toContain('… 1 more row\n');
  });
});

describe('--speed', () => {
  it('waits the gaps between statements divided by the speed; 0 does not wait', async () => {
    const waits: number[] = [];
    const seen: string[] = [];
    await playEvents(
      events,
      2,
      (e) => seen.push(e.type),
      async (ms) => void waits.push(ms),
    );
    expect(waits).toEqual([50, 700, 1750, 500, 500, 250, 250]);
    expect(seen).toHaveLength(events.length);
    const none: number[] = [];
    await playEvents(
      events,
      0,
      () => {},
      async (ms) => void none.push(ms),
    );
    expect(none).toEqual([]);
  });
});
