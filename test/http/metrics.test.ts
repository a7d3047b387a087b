// GET /metrics: Prometheus text format, behind the admin token unless `metrics.public: true`. A real broker
// runs statements from node-postgres (allowed, denied, held and approved, held and denied), a login with a
// bad token and one to a target whose database is down; the scrape is parsed with a Prometheus text parser
// and the counts are what a user of the broker would expect.
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, eventually, startTestBroker, type TestBroker } from '../support/broker.js';

const ADMIN = 'metrics-admin-token-0123456789';
const REPLICA = 'metrics-replica-1';
const RULES = `
replica_id: ${REPLICA}
admin_token: "${ADMIN}"
rules:
  - { id: hold, tables: ["jit_mt_*"], kinds: [destructive], action: review, timeout: 60s }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
`;
// A target whose database nothing listens for: every login to it fails upstream.
const DOWN = '  down: { engine: postgres, upstream: "postgres://postgres@127.0.0.1:1/test" }';

type Labels = Record<string, string>;

/** One scrape, parsed: `value(name, labels)` sums the samples of `name` whose labels include `labels`. */
async function scrape(t: TestBroker, token: string | null = ADMIN) {
  const res = await fetch(`${t.httpUrl}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(await res.text());
  const family = (name: string) => families.find((f) => f.name === name);
  const matching = (name: string, labels: Labels) => (family(name)?.metrics ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return {
    families,
    family,
    value: (name: string, labels: Labels = {}) => matching(name, labels).reduce((n, m) => n + Number('value' in m ? m.value : m.count), 0),
    /** A histogram's observation count. */
    count: (name: string, labels: Labels = {}) => matching(name, labels).reduce((n, m) => n + ('count' in m ? Number(m.count) : 0), 0),
  };
}

let t: TestBroker;

beforeAll(async () => {
  t = await startTestBroker(RULES, { targets: DOWN });
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_mt_t; CREATE TABLE jit_mt_t (id int); INSERT INTO jit_mt_t VALUES (1), (2), (3)'));
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_mt_t'));
});

const connect = async (subject = 'ci:metrics', extra: Partial<pg.ClientConfig> = {}) => {
  const c = new pg.Client(t.pgConfig(await t.token({ subject, build: 'build-metrics-42' }), extra));
  await c.connect();
  return c;
};

/** Runs `sql` and holds its promise; resolves once its approval request is pending. */
async function hold(c: pg.Client, sql: string) {
  const result = c.query(sql).then(
    (r) => r,
    (e: unknown) => e as Error,
  );
  const request = await eventually(async () => t.broker.approvals.pending().find((r) => r.sql === sql));
  return { result, id: request.id };
}

const decide = (id: string, verb: 'approve' | 'deny', body: Record<string, string>) =>
  fetch(`${t.httpUrl}/api/approvals/${id}/${verb}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('GET /metrics', () => {
  it('needs the admin token: 401 without it or with another', async () => {
    const missing = await fetch(`${t.httpUrl}/metrics`);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: 'missing admin token: send Authorization: Bearer <admin_token>' });
    expect((await fetch(`${t.httpUrl}/metrics`, { headers: { authorization: 'Bearer not-the-admin-token' } })).status).toBe(401);
    const s = await scrape(t);
    // Described and typed, with prom-client's process metrics beside the broker's own.
    expect(s.family('jit_statements_total')).toMatchObject({ type: 'COUNTER', help: expect.stringContaining('once per kind') });
    expect(s.family('jit_approval_wait_seconds')?.type).toBe('HISTOGRAM');
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds'])
      expect(s.family(name)).toBeDefined();
    // Each target has its open-sessions series from the start, labelled with this broker's replica_id.
    expect(s.family('jit_sessions_open')?.metrics).toEqual(
      expect.arrayContaining([
        { value: '0', labels: { target: 'app', replica: REPLICA } },
        { value: '0', labels: { target: 'down', replica: REPLICA } },
      ]),
    );
  });

  it('counts statements by decision, kind and rule, refusals by reason, and open sessions', async () => {
    const before = await scrape(t);
    const c = await connect();
    for (let i = 0; i < 3; i++) await c.query('SELECT 1');
    for (let i = 0; i < 2; i++) await expect(c.query('CREATE TABLE jit_mt_denied (id int)')).rejects.toMatchObject({ code: '42501' });
    // A statement of two kinds (read and write) counts once under each.
    await c.query('WITH d AS (UPDATE jit_mt_t SET id = id WHERE false RETURNING id) SELECT * FROM jit_mt_t');
    const during = await scrape(t);
    const delta = (name: string, labels: Labels) => during.value(name, labels) - before.value(name, labels);
    expect(delta('jit_statements_total', { target: 'app', decision: 'allow', kind: 'read', rule: 'day-to-day' })).toBe(4);
    expect(delta('jit_statements_total', { target: 'app', decision: 'allow', kind: 'write', rule: 'day-to-day' })).toBe(1);
    expect(delta('jit_statements_total', { target: 'app', decision: 'deny', kind: 'ddl', rule: 'default' })).toBe(2);
    expect(delta('jit_statements_total', { decision: 'deny' })).toBe(2);
    expect(delta('jit_refusals_total', { target: 'app', reason: 'policy' })).toBe(2);
    expect(delta('jit_refusals_total', {})).toBe(2);
    expect(delta('jit_logins_total', { engine: 'postgres', result: 'accepted' })).toBe(1);
    expect(during.value('jit_sessions_open', { target: 'app', replica: REPLICA })).toBe(1);
    await c.end();
    await eventually(async () => (await scrape(t)).value('jit_sessions_open', { target: 'app' }) === 0);
    // Nothing that identifies a person, a session or a statement is a label.
    const text = await (await fetch(`${t.httpUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    for (const secret of ['ci:metrics', 'build-metrics-42', 'jit_mt_denied', 'SELECT 1']) expect(text).not.toContain(secret);
  });

  it('shows a held statement as pending until it is decided, then its outcome and wait', async () => {
    const before = await scrape(t);
    expect(before.value('jit_approvals_pending')).toBe(0);
    const c = await connect();
    const held = await hold(c, 'DELETE FROM jit_mt_t');
    const waiting = await scrape(t);
    expect(waiting.value('jit_approvals_pending')).toBe(1);
    expect(
      waiting.value('jit_statements_total', { decision: 'review', kind: 'destructive', rule: 'hold' }) -
        before.value('jit_statements_total', { decision: 'review' }),
    ).toBe(1);
    expect((await decide(held.id, 'approve', { by: 'lead' })).status).toBe(200);
    expect(await held.result).toMatchObject({ command: 'DELETE', rowCount: 3 });
    const approved = await scrape(t);
    expect(approved.value('jit_approvals_pending')).toBe(0);
    expect(approved.value('jit_approvals_total', { outcome: 'approved' }) - before.value('jit_approvals_total', { outcome: 'approved' })).toBe(1);
    expect(approved.count('jit_approval_wait_seconds') - before.count('jit_approval_wait_seconds')).toBe(1);
    expect(approved.value('jit_refusals_total') - before.value('jit_refusals_total')).toBe(0);

    const denied = await hold(c, 'TRUNCATE jit_mt_t');
    expect((await scrape(t)).value('jit_approvals_pending')).toBe(1);
    expect((await decide(denied.id, 'deny', { by: 'lead', reason: 'not now' })).status).toBe(200);
    expect(await denied.result).toMatchObject({ code: '42501', message: expect.stringContaining('denied by api:lead') });
    const after = await scrape(t);
    expect(after.value('jit_approvals_pending')).toBe(0);
    expect(after.value('jit_approvals_total', { outcome: 'denied' }) - before.value('jit_approvals_total', { outcome: 'denied' })).toBe(1);
    expect(
      after.value('jit_refusals_total', { target: 'app', reason: 'approval_denied' }) - before.value('jit_refusals_total', { reason: 'approval_denied' }),
    ).toBe(1);
    expect(after.count('jit_approval_wait_seconds') - before.count('jit_approval_wait_seconds')).toBe(2);
    await c.end();
  });

  it('counts refused logins by reason, and logins whose target database cannot be reached', async () => {
    const before = await scrape(t);
    const bad = new pg.Client({ ...t.pgConfig('not-a-token') });
    await expect(bad.connect()).rejects.toMatchObject({ code: '28P01' });
    const wrongAudience = new pg.Client(t.pgConfig(await t.token({ audience: 'someone-else' })));
    await expect(wrongAudience.connect()).rejects.toMatchObject({ code: '28P01' });
    const down = new pg.Client(t.pgConfig(await t.token(), { database: 'down' }));
    await expect(down.connect()).rejects.toMatchObject({ code: '08006' });
    const after = await scrape(t);
    const delta = (name: string, labels: Labels) => after.value(name, labels) - before.value(name, labels);
    expect(delta('jit_logins_total', { engine: 'postgres', result: 'refused', reason: 'malformed' })).toBe(1);
    expect(delta('jit_logins_total', { engine: 'postgres', result: 'refused', reason: 'audience' })).toBe(1);
    expect(delta('jit_logins_total', { result: 'refused' })).toBe(2);
    // The token was good: the login was accepted, then the database could not be reached.
    expect(delta('jit_logins_total', { result: 'accepted' })).toBe(1);
    expect(delta('jit_upstream_connect_errors_total', { target: 'down', engine: 'postgres' })).toBe(1);
    expect(delta('jit_upstream_connect_errors_total', { target: 'app' })).toBe(0);
    await eventually(async () => (await scrape(t)).value('jit_sessions_open', { target: 'down' }) === 0);
  });

  it('reports the journal the broker wrote, and the indexer catching up with it', async () => {
    const before = await scrape(t);
    const c = await connect();
    await c.query(`SELECT '${'x'.repeat(10_000)}' AS filler`);
    await c.end();
    const after = await scrape(t);
    // The statement's record (its text alone is 10 kB) went through the journal.
    expect(after.value('jit_journal_written_bytes_total') - before.value('jit_journal_written_bytes_total')).toBeGreaterThan(10_000);
    expect(after.value('jit_journal_write_failures_total')).toBe(0);
    // Reading the store through the broker waits for the indexer: it has then reached all that was written.
    await t.broker.store.listSessions({ limit: 1 });
    await eventually(async () => (await scrape(t)).value('jit_journal_lag_bytes') === 0);
  });
});

describe('metrics.public', () => {
  it('serves /metrics without the admin token when metrics.public is true', async () => {
    const open = await startTestBroker(`metrics: { public: true }\n${RULES}`);
    try {
      const s = await scrape(open, null);
      expect(s.value('jit_approvals_pending')).toBe(0);
      expect((await fetch(`${open.httpUrl}/api/approvals`)).status).toBe(401); // the admin API is still guarded
    } finally {
      await open.stop();
    }
  });

  it('answers 503 when neither an admin token nor metrics.public is configured', async () => {
    const closed = await startTestBroker('default: deny');
    try {
      const res = await fetch(`${closed.httpUrl}/metrics`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ error: 'the admin API is disabled: set admin_token (16+ characters) in the broker config' });
    } finally {
      await closed.stop();
    }
  });
});
