// `jit replay` against a live broker and the real PostgreSQL: a session with a SELECT (its result sample),
// a DROP held and approved through the HTTP API, a statement denied by policy, one denied by an approver.
// The SELECT's sample is the one the relay recorded from what the client received.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApprovalRequest } from '../../broker/approvals/types.js';
import type { ReplayEvent } from '../../broker/audit/replay.js';
import { pgTypeName } from '../../broker/engines/postgres/sample.js';
import { ResultSampler } from '../../broker/audit/sampler.js';
import { direct, eventually, run, sleep, startTestBroker, type TestBroker } from '../support/broker.js';

const ADMIN = 'replay-admin-token-0123456789';
const RULES = `
admin_token: "${ADMIN}"
audit: { sample_rows: 2, sample_bytes: 1000 }
masking:
  - { columns: ["jit_rp_t.note"], with: redact }
rules:
  - { id: hold, tables: ["jit_rp_*"], kinds: [ddl, destructive], action: review, timeout: 30s }
  - { id: reads, kinds: [read], action: allow }
default: deny
`;
const GAP = 700;

let t: TestBroker;
let sessionId: string;
let drop: ApprovalRequest;
let truncate: ApprovalRequest;
const jit = (...args: string[]) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, ...args]);

function requested(sql: string): Promise<ApprovalRequest> {
  return new Promise((resolve) => {
    const hit = t.broker.approvals.pending().find((r) => r.sql === sql);
    if (hit) return resolve(hit);
    const off = t.broker.approvals.on((e) => {
      if (e.type === 'requested' && e.request.sql === sql) {
        off();
        resolve(e.request);
      }
    });
  });
}

beforeAll(async () => {
  t = await startTestBroker(RULES);
  await direct((c) =>
    c.query(`DROP TABLE IF EXISTS jit_rp_t, jit_rp_drop; CREATE TABLE jit_rp_t (id int, name text, note text); CREATE TABLE jit_rp_drop (id int);
    INSERT INTO jit_rp_t VALUES (1, 'alice', 'first'), (2, 'bob', NULL), (3, 'carol', 'x');`),
  );
  const c = new pg.Client(
    t.pgConfig(await t.token({ build: 'build-replay', subject: 'ci:replayer', claims: { repository: 'acme/app' } }), { application_name: 'replay-test' }),
  );
  await c.connect();
  // Values as text, exactly as they came over the wire.
  const res = await c.query({ text: 'SELECT id, name, note FROM jit_rp_t ORDER BY id', rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
  await sleep(GAP);
  const dropping = c.query('DROP TABLE jit_rp_drop');
  drop = await requested('DROP TABLE jit_rp_drop');
  const approve = await fetch(`${t.httpUrl}/api/approvals/${drop.id}/approve`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ by: 'alice', reason: 'planned cleanup' }),
  });
  expect(approve.status).toBe(200);
  await dropping;
  await expect(c.query('CREATE ROLE jit_rp_nobody')).rejects.toMatchObject({ code: '42501' });
  const truncating = c.query('TRUNCATE jit_rp_t').catch((e: Error) => e);
  truncate = await requested('TRUNCATE jit_rp_t');
  await t.broker.approvals.decide(truncate.id, { approve: false, by: 'U123', reason: 'not now' });
  expect(await truncating).toMatchObject({ code: '42501' });
  await c.end();
  sessionId = drop.sessionId;
  await eventually(async () => (await t.broker.store.getSession(sessionId))?.endedAt);

  // The relay recorded the SELECT's sample from the bytes the client received: it must equal what the
  // sampler makes of the rows node-postgres decoded.
  const [select] = await t.broker.store.listStatements(sessionId);
  const { sample_rows: rows, sample_bytes: bytes } = t.broker.config.audit;
  const sampler = new ResultSampler({ rows, bytes });
  sampler.columns(res.fields.map((f) => ({ name: f.name, type: pgTypeName(f.dataTypeID) })));
  for (const row of res.rows as (string | null)[][]) sampler.row(row);
  expect(await t.broker.store.getSample(select!.id)).toEqual(sampler.done());
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_rp_t, jit_rp_drop; DROP ROLE IF EXISTS jit_rp_nobody'));
});

describe('jit replay', () => {
  it('prints who connected and each statement with its decision, approval, timing and result', async () => {
    const r = await jit('replay', sessionId.slice(0, 8));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(new RegExp(`^session ${sessionId}  target app \\(postgres\\)  started \\S+ \\S+Z\\n`));
    expect(out).toContain('  subject  ci:replayer\n');
    expect(out).toContain(`  issuer   ${t.broker.issuer!.issuer}\n`);
    expect(out).toContain('  build    build-replay\n');
    expect(out).toMatch(/ {2}claims {3}.*repository=acme\/app/);
    expect(out).toContain('  actors   (none: the token was used directly)\n');
    expect(out).toMatch(/ {2}client {3}127\.0\.0\.1:\d+ {2}application replay-test {2}user ci {2}TLS\n/);

    expect(out).toMatch(
      /\n#1 {2}\+\d+\.\d{3}s {2}allow {2}rule reads {2}read\n {4}SELECT id, name, note FROM jit_rp_t ORDER BY id\n {2}→ SELECT 3 {2}3 rows {2}\S+ ms\n/,
    );
    // The masked column is shown as the client saw it: redacted (NULL stays NULL).
    expect(out).toContain(
      ['    id | name  | note', '    ---+-------+-----', '    1  | alice | ****', '    2  | bob   | NULL', '    … 1 more row\n'].join('\n'),
    );
    expect(out).not.toMatch(/\| first/);

    expect(out).toMatch(/\n#2 {2}\+\d+\.\d{3}s {2}review {2}rule hold {2}destructive\n {4}DROP TABLE jit_rp_drop\n/);
    expect(out).toMatch(
      new RegExp(
        `  approval ${drop.id} \\(rule hold\\): approved by api:alice at \\S+ \\S+ \\[\\+\\d+\\.\\d{3}s\\], \\d+\\.\\ds after the request \\(reason: planned cleanup\\)\\n  → DROP TABLE  \\S+ ms\\n`,
      ),
    );

    expect(out).toMatch(
      /\n#3 {2}\+\d+\.\d{3}s {2}deny {2}default policy {2}privilege\n {4}CREATE ROLE jit_rp_nobody\n {2}refused: a privilege statement is denied by the default policy/,
    );

    expect(out).toMatch(/\n#4 {2}\+\d+\.\d{3}s {2}review {2}rule hold {2}destructive\n {4}TRUNCATE jit_rp_t\n/);
    expect(out).toContain(`  approval ${truncate.id} (rule hold): denied by U123 at `);
    expect(out).toContain('(reason: not now)\n\nsession ended');
    expect(out).toMatch(/session ended \S+ \S+ \[\+\d+\.\d{3}s\]: client terminated; 4 statements \(1 allowed, 2 reviewed, 1 denied\)\n$/);

    // The statements' offsets keep the gap the client left between the first two.
    const offsets = [...out.matchAll(/\n#\d+ {2}\+(\d+\.\d{3})s/g)].map((m) => Number(m[1]) * 1000);
    expect(offsets[1]! - offsets[0]!).toBeGreaterThanOrEqual(GAP - 5);
  });

  it('--json: one event per line, the same as GET /api/sessions/:id/events; --url reads them through the API', async () => {
    const r = await jit('replay', sessionId, '--json');
    expect(r.code).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ReplayEvent);
    expect(events.map((e) => e.type)).toEqual([
      'session-start',
      'statement',
      'result',
      'statement',
      'approval',
      'result',
      'statement',
      'statement',
      'approval',
      'session-end',
    ]);
    expect(events[0]).toMatchObject({
      type: 'session-start',
      session: sessionId,
      identity: { subject: 'ci:replayer', build: 'build-replay', actors: [] },
      client: { application: 'replay-test', tls: true, user: 'ci' },
    });
    expect(events[2]).toMatchObject({
      type: 'result',
      tag: 'SELECT 3',
      rows: 3,
      error: null,
      sample: {
        columns: [
          { name: 'id', type: 'int4' },
          { name: 'name', type: 'text' },
          { name: 'note', type: 'text' },
        ],
        rows: [
          ['1', 'alice', '****'],
          ['2', 'bob', null],
        ],
        truncated: true,
      },
    });
    expect(events[4]).toMatchObject({
      type: 'approval',
      approvalId: drop.id,
      state: 'approved',
      decidedBy: 'api:alice',
      reason: 'planned cleanup',
      reused: false,
    });
    expect(events[6]).toMatchObject({ type: 'statement', decision: 'deny', ruleId: null });
    expect(events[8]).toMatchObject({ type: 'approval', approvalId: truncate.id, state: 'denied', decidedBy: 'U123', reason: 'not now' });
    const api = await fetch(`${t.httpUrl}/api/sessions/${sessionId}/events`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(await api.json()).toEqual(events);
    const viaUrl = await jit('replay', sessionId, '--json', '--url', t.httpUrl);
    expect(viaUrl.stdout).toBe(r.stdout);
  });

  it('--speed N waits the original gaps between statements divided by N', async () => {
    // When each event line arrives, against its statement's offset in the session (process start-up excluded).
    const timed = (...args: string[]) =>
      new Promise<{ e: ReplayEvent; at: number }[]>((resolve, reject) => {
        const child = spawn(process.execPath, ['bin/jit.js', '--config', t.configFile, 'replay', sessionId, '--json', ...args]);
        const lines: { e: ReplayEvent; at: number }[] = [];
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          const at = performance.now();
          buf += d.toString('utf8');
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            lines.push({ e: JSON.parse(buf.slice(0, i)) as ReplayEvent, at });
            buf = buf.slice(i + 1);
          }
        });
        child.on('error', reject).on('close', (code) => (code === 0 ? resolve(lines) : reject(new Error(`jit replay exited ${code}`))));
      });
    const statements = (xs: { e: ReplayEvent; at: number }[]) => xs.flatMap((x) => (x.e.type === 'statement' ? [{ offset: x.e.offsetMs, at: x.at }] : []));
    const slow = await timed('--speed', '0.5'); // gaps doubled
    const st = statements(slow);
    expect(st).toHaveLength(4);
    expect(st[0]!.at - slow[0]!.at).toBeGreaterThanOrEqual(2 * st[0]!.offset - 15);
    for (let i = 1; i < st.length; i++)
      expect(st[i]!.at - st[i - 1]!.at, `gap before statement ${i + 1}`).toBeGreaterThanOrEqual(2 * (st[i]!.offset - st[i - 1]!.offset) - 15);
    const span = st[st.length - 1]!.at - slow[0]!.at;
    expect(span).toBeGreaterThanOrEqual(2 * st[st.length - 1]!.offset - 15);
    expect(span).toBeLessThan(2 * st[st.length - 1]!.offset + 1500);
    const plain = await timed();
    expect(plain[plain.length - 1]!.at - plain[0]!.at).toBeLessThan(250);
  });

  it('refuses an unknown session (exit code 2) and a negative speed (a usage error)', async () => {
    const none = await jit('replay', 's_zzzzzzzz');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("no session 's_zzzzzzzz'");
    const bad = await jit('replay', sessionId, '--speed', '-1');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("--speed takes a number ≥ 0, got '-1'");
  });
});
