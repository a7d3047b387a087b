// How long approvals add around a held statement, through a real broker against the real PostgreSQL
// (JIT_TEST_PG, default postgres://postgres@127.0.0.1:5432/test):
//   arrival   client sends the statement → the `requested` event (TLS relay, classify, decide,
//             write-ahead record, approval request recorded, event published)
//   release   decide() called → the statement running in PostgreSQL (its clock_timestamp(), same host
//             clock): approval recorded, event published, statement released, forwarded, parsed, run
// Scenarios: one at a time (in-process decide(), the bot's path; and POST /api/approvals/:id/approve,
// the CLI's), then CONCURRENT held at once across as many sessions, all decided at once.
//
// usage: npx tsx bench/approvals.ts        (N=200 sequential, CONCURRENT=50)
import pg from 'pg';
import type { ApprovalRequest } from '../broker/approvals/index.js';
import { direct, startTestBroker, type TestBroker } from '../test/support/broker.js';

const N = Number(process.env.N ?? 200);
const CONCURRENT = Number(process.env.CONCURRENT ?? 50);
const ADMIN = 'bench-admin-token-0123456789';
const wall = () => performance.timeOrigin + performance.now();

function requested(t: TestBroker, sql: string): Promise<{ r: ApprovalRequest; at: number }> {
  return new Promise((resolve) => {
    const off = t.broker.approvals.on((e) => {
      if (e.type === 'requested' && e.request.sql === sql) {
        off();
        resolve({ r: e.request, at: wall() });
      }
    });
  });
}

function summary(name: string, xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(2);
  return `${name.padEnd(52)} p50 ${q(0.5).padStart(7)} ms   p90 ${q(0.9).padStart(7)} ms   max ${q(1).padStart(7)} ms   (n=${s.length})`;
}

async function ranAt(): Promise<Map<number, number>> {
  const rows = await direct(
    async (c) => (await c.query('SELECT id, extract(epoch FROM at)::float8 * 1000 AS ms FROM jit_apb_t')).rows as { id: number; ms: number }[],
  );
  return new Map(rows.map((r) => [r.id, r.ms]));
}

async function main(): Promise<void> {
  const t = await startTestBroker(`
admin_token: "${ADMIN}"
rules:
  - { id: held, tables: ["jit_apb_*"], kinds: [write], action: review, timeout: 5m }
default: deny
`);
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_apb_t; CREATE TABLE jit_apb_t (id int, at timestamptz)'));
  const sqlOf = (i: number) => `INSERT INTO jit_apb_t SELECT ${i}, clock_timestamp()`;
  try {
    for (const via of ['decide()', 'HTTP approve'] as const) {
      await direct((c) => c.query('TRUNCATE jit_apb_t'));
      const c = new pg.Client(t.pgConfig(await t.token()));
      await c.connect();
      const arrival: number[] = [];
      const decidedAt = new Map<number, number>();
      for (let i = 0; i < N; i++) {
        const ev = requested(t, sqlOf(i));
        const sent = wall();
        const q = c.query(sqlOf(i));
        const { r, at } = await ev;
        arrival.push(at - sent);
        decidedAt.set(i, wall());
        if (via === 'decide()') await t.broker.approvals.decide(r.id, { approve: true, by: 'U1' });
        else await fetch(`${t.httpUrl}/api/approvals/${r.id}/approve`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
        await q;
      }
      await c.end();
      const ran = await ranAt();
      console.log(summary(`sequential, ${via}: arrival → requested`, arrival));
      console.log(
        summary(
          `sequential, ${via}: decide → running upstream`,
          [...decidedAt].map(([i, d]) => ran.get(i)! - d),
        ),
      );
    }

    await direct((c) => c.query('TRUNCATE jit_apb_t'));
    const clients = await Promise.all(
      Array.from({ length: CONCURRENT }, async () => {
        const c = new pg.Client(t.pgConfig(await t.token()));
        await c.connect();
        return c;
      }),
    );
    const events = clients.map((_, i) => requested(t, sqlOf(i)));
    const sent = clients.map(() => 0);
    const queries = clients.map((c, i) => ((sent[i] = wall()), c.query(sqlOf(i))));
    const reqs = await Promise.all(events);
    const started = wall();
    await Promise.all(reqs.map(({ r }) => t.broker.approvals.decide(r.id, { approve: true, by: 'U1' })));
    await Promise.all(queries);
    const ran = await ranAt();
    console.log(
      summary(
        `${CONCURRENT} held at once: arrival → requested`,
        reqs.map((x, i) => x.at - sent[i]!),
      ),
    );
    console.log(
      summary(
        `${CONCURRENT} at once: decide-all start → running`,
        [...ran.values()].map((ms) => ms - started),
      ),
    );
    await Promise.all(clients.map((c) => c.end()));
  } finally {
    await t.stop();
    await direct((c) => c.query('DROP TABLE IF EXISTS jit_apb_t'));
  }
}

await main();
