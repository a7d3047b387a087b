// The blast radius in Slack and in `jit approvals`: the request is posted at once, without the estimate, and the
// message is updated with it when it comes; the CLI (as a process) lists it. Real broker and PostgreSQL, fake Slack.
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ACTION_APPROVE } from '../../bot/messages.js';
import { direct, run, startTestBroker, type TestBroker } from '../support/broker.js';
import { FakeSlack } from '../support/fake-slack.js';

const ADMIN = 'blast-admin-token-0123456789';
let slack: FakeSlack;
let t: TestBroker;

beforeAll(async () => {
  slack = await FakeSlack.start();
  t = await startTestBroker(`
slack: { bot_token: xoxb-blast, signing_secret: blast-signing-secret, channel: C0APPROVALS, api_url: "${slack.apiUrl}" }
admin_token: ${ADMIN}
rules:
  - { id: big-deletes, tables: ["jit_brs_*"], kinds: [write, destructive], action: review, timeout: 60s }
  - { id: day-to-day, kinds: [read], action: allow }
default: deny
`);
  await direct((c) =>
    c.query(`DROP TABLE IF EXISTS jit_brs_orders; CREATE TABLE jit_brs_orders (id int PRIMARY KEY, note text);
      INSERT INTO jit_brs_orders SELECT g, 'n' FROM generate_series(1, 10000) g; ANALYZE jit_brs_orders;`),
  );
});
afterAll(async () => {
  await t?.stop();
  await slack?.close();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_brs_orders'));
});

it('posted at once without the estimate, then updated with it; `jit approvals` shows it', async () => {
  const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-blast-slack' })));
  c.on('error', () => {});
  await c.connect();
  try {
    const result = c.query('DELETE FROM jit_brs_orders WHERE id <= 4000').then(
      (r) => ({ ok: true as const, rows: r.rowCount }),
      (e: Error) => ({ ok: false as const, e }),
    );
    const posted = await slack.waitFor('chat.postMessage', (m) => JSON.stringify(m.args['blocks'] ?? '').includes('jit_brs_orders'));
    expect(JSON.stringify(posted.args['blocks'])).not.toContain('Blast radius');
    const updated = await slack.waitFor('chat.update', (u) => JSON.stringify(u.args['blocks'] ?? '').includes('Blast radius'));
    // The same message, updated after it was posted, buttons still there (nobody has decided).
    expect(slack.calls.indexOf(updated)).toBeGreaterThan(slack.calls.indexOf(posted));
    expect(updated.args['ts']).toBe((posted.result as { ts: string }).ts);
    const blocks = JSON.stringify(updated.args['blocks']);
    expect(blocks).toContain(ACTION_APPROVE);
    const line = /\*Blast radius:\* ≈ ([\d,]+) rows of jit_brs_orders \(planner estimate\)/.exec(blocks);
    expect(line).not.toBeNull();
    const rows = Number(line![1]!.replace(/,/g, ''));
    expect(rows).toBeGreaterThanOrEqual(4000 * 0.8);
    expect(rows).toBeLessThanOrEqual(4000 * 1.2);

    // `jit approvals`, the CLI as a process, through the broker's HTTP API.
    const cli = await run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'approvals'], { JIT_ADMIN_TOKEN: ADMIN });
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('BLAST RADIUS');
    expect(cli.stdout).toContain(`≈ ${line![1]} rows of jit_brs_orders`);
    const json = await run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'approvals', '--json'], { JIT_ADMIN_TOKEN: ADMIN });
    const [listed] = JSON.parse(json.stdout) as { id: string; estimate: { rows: number; source: string; tables: string[] } }[];
    expect(listed!.estimate).toMatchObject({ rows, source: 'explain', tables: ['jit_brs_orders'] });

    expect(await direct(async (d) => (await d.query('SELECT count(*)::int AS n FROM jit_brs_orders')).rows[0].n)).toBe(10000);
    await t.broker.approvals.decide(listed!.id, { approve: true, by: 'U1' });
    expect(await result).toEqual({ ok: true, rows: 4000 });
  } finally {
    await c.end();
  }
});
