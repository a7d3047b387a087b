// A broker on a PostgreSQL store, end to end: statements sent through it with node-postgres are recorded
// through its journal, whose indexer thread opens the store by the same URL, and are found in the store.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBroker, type TestBroker } from '../support/broker.js';
import { createPgDatabase, dropPgDatabase, withPg } from './dialects.js';

const DB = 'jit_store_pg_broker';
let url: string;
let t: TestBroker;

beforeAll(async () => {
  url = await createPgDatabase(DB);
  t = await startTestBroker(undefined, { store: url });
});
afterAll(async () => {
  await t?.stop();
  await dropPgDatabase(DB);
});

describe('a broker on a PostgreSQL store', () => {
  it('records the statements a client runs through it, with their outcomes, in the store', async () => {
    const client = new pg.Client(t.pgConfig(await t.token({ build: 'build-pg-store' })));
    await client.connect();
    const { rows } = await client.query('SELECT 40 + 2 AS answer');
    expect(rows).toEqual([{ answer: 42 }]);
    await client.query('SELECT generate_series(1, 3)');
    await client.end();

    const [session] = await t.broker.store.listSessions({ build: 'build-pg-store' });
    expect(session).toBeDefined();
    const statements = await t.broker.store.listStatements(session!.id);
    expect(statements.map((s) => [s.seq, s.sql, s.decision, s.rows])).toEqual([
      [1, 'SELECT 40 + 2 AS answer', 'allow', 1],
      [2, 'SELECT generate_series(1, 3)', 'allow', 3],
    ]);
    // In PostgreSQL itself, as another replica would read it.
    const stored = await withPg(
      url,
      async (c) => (await c.query<{ n: string }>('SELECT count(*) AS n FROM statements WHERE session_id = $1', [session!.id])).rows[0]!,
    );
    expect(Number(stored.n)).toBe(2);
  });
});
