// /jit: ack at once, then an ephemeral answer through the response_url, bounded for big builds.
import { afterEach, describe, expect, it } from 'vitest';
import { commandBody } from '../support/fake-slack.js';
import { makeSession, startHarness, type Harness } from '../support/bot-harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function jit(text: string, name = 'r'): Promise<Record<string, unknown>> {
  const started = Date.now();
  const res = await h!.send(commandBody({ user: 'U04EVE', text, responseUrl: h!.slack.responseUrl(name) }));
  expect(res.statusCode).toBe(200);
  expect(res.body).toBe(''); // acked empty; the answer goes to the response_url
  expect(Date.now() - started).toBeLessThan(3000);
  return h!.slack.waitForResponse(name);
}

const allText = (reply: Record<string, unknown>) => `${String(reply['text'])}\n${JSON.stringify(reply['blocks'] ?? [])}`;

describe('/jit', () => {
  it('sessions <build>: a bounded list with "and N more" for a build with 150 sessions', async () => {
    h = await startHarness();
    h.store.sessions = Array.from({ length: 150 }, (_, i) => makeSession(150 - i));
    h.store.sessions.push(makeSession(999, { build: 'other-build' }));
    const reply = await jit('sessions build-123');
    expect(reply['response_type']).toBe('ephemeral');
    expect(reply['text']).toBe('150 sessions for build build-123:');
    const blocks = reply['blocks'] as { type: string; text?: { text: string }; elements?: { text: string }[] }[];
    expect(blocks.length).toBeLessThanOrEqual(50);
    for (const b of blocks) expect((b.text?.text ?? '').length).toBeLessThanOrEqual(3000);
    const lines = blocks.flatMap((b) => (b.type === 'section' ? (b.text?.text ?? '').split('\n') : [])).filter((l) => l.startsWith('• '));
    expect(lines).toHaveLength(20);
    expect(lines[0]).toContain('`s_0000000000000150`');
    expect(lines[0]).toContain('`prod`');
    expect(lines[0]).toContain('`agent-b` under `bot-a` for `repo:acme/shop:ref:refs/heads/main`');
    expect(lines[0]).toMatch(/<!date\^\d+\^\{date_short\} \{time_secs\}\|2025-01-01T12:02:30Z>/);
    expect(lines[0]).toContain('12 s · 5 statements (3 allowed / 1 denied / 1 reviewed)');
    const context = blocks.at(-1);
    expect(context?.type).toBe('context');
    expect(context?.elements?.[0]?.text).toContain('…and 130 more');
    expect(allText(reply)).not.toContain('other-build');
  });

  it('sessions <build>: says when there are none, and asks for the build when missing', async () => {
    h = await startHarness();
    expect((await jit('sessions nope', 'a'))['text']).toBe('No sessions for build `nope`.');
    expect((await jit('sessions', 'b'))['text']).toContain('Which build?');
  });

  it("session <id>: one session's statements with their decisions", async () => {
    h = await startHarness();
    const s = makeSession(1, { endedAt: null, statementCount: 3 });
    h.store.sessions = [s, makeSession(2)];
    const base = { sessionId: s.id, protocol: 'simple' as const, message: null, startedAt: s.startedAt, tag: null, approvalId: null };
    h.approvals.request({ id: 'apr_held', settings: { approvers: [], timeoutSeconds: 60, minApprovals: 1, scope: 'statement' } });
    await h.approvals.decide('apr_held', { approve: true, by: 'U01ALICE', email: 'alice@acme.test' });
    h.store.statements.set(s.id, [
      { ...base, id: 1, seq: 1, sql: 'SELECT * FROM orders', kinds: ['read'], decision: 'allow', ruleId: 'reads', durationMs: 4, rows: 3, error: null },
      {
        ...base,
        id: 2,
        seq: 2,
        sql: 'DROP TABLE orders',
        kinds: ['ddl', 'destructive'],
        decision: 'deny',
        ruleId: 'no-drops',
        durationMs: null,
        rows: null,
        error: null,
      },
      {
        ...base,
        id: 3,
        seq: 3,
        sql: 'DELETE FROM orders WHERE id < 10',
        kinds: ['write'],
        decision: 'review',
        ruleId: null,
        durationMs: 1500,
        rows: 9,
        error: null,
        approvalId: 'apr_held',
      },
    ]);
    const reply = await jit('session 0000000000000001');
    const text = allText(reply);
    expect(text).toContain('still open');
    expect(text).toContain('1. :large_green_circle: *allow* read (rule `reads`) · `SELECT * FROM orders` · 4 ms, 3 rows');
    expect(text).toContain('2. :red_circle: *deny* ddl, destructive (rule `no-drops`) · `DROP TABLE orders` · did not finish');
    expect(text).toContain('3. :large_yellow_circle: *review* write · approved by <@U01ALICE> · `DELETE FROM orders WHERE id &lt; 10` · 2 s, 9 rows');
    expect((await jit('session 00000000', 'amb'))['text']).toContain('ambiguous');
    expect((await jit('session zzz', 'none'))['text']).toBe('No session `zzz`.');
  });

  it('pending: the requests waiting for approval', async () => {
    h = await startHarness();
    expect((await jit('pending', 'empty'))['text']).toBe('No statements are waiting for approval.');
    h.approvals.request({ id: 'apr_a' });
    h.approvals.request({ id: 'apr_b', settings: { approvers: [], timeoutSeconds: 60, minApprovals: 2, scope: 'session' }, sql: 'TRUNCATE audit_log' });
    const reply = await jit('pending', 'two');
    expect(reply['text']).toBe('2 statements waiting for approval:');
    const text = allText(reply);
    expect(text).toContain('`apr_a` write, destructive on `prod` for `repo:acme/shop:ref:refs/heads/main`');
    expect(text).toContain('`TRUNCATE audit_log` · expires <!date^');
    expect(text).toContain('0/2 approvals');
  });

  it('help, and unknown subcommands answer with the usage', async () => {
    h = await startHarness();
    const help = await jit('help', 'h');
    expect(help['response_type']).toBe('ephemeral');
    for (const sub of ['/jit sessions <build>', '/jit session <id>', '/jit pending', '/jit help']) expect(String(help['text'])).toContain(sub);
    expect(String((await jit('', 'empty'))['text'])).toContain('/jit pending');
    expect(String((await jit('frobnicate', 'u'))['text'])).toMatch(/^Unknown subcommand `frobnicate`/);
  });

  it('says so when the store fails, instead of going silent', async () => {
    h = await startHarness();
    h.store.listSessions = async () => {
      throw new Error('database is locked');
    };
    expect((await jit('sessions build-123'))['text']).toBe('Sorry, that failed: database is locked');
  });
});
