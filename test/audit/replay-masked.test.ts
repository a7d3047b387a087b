// The recorded sample is what the client saw: masked values, never the raw ones — and `jit replay` shows it.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, eventually, run, startTestBroker, type TestBroker } from '../support/broker.js';

let t: TestBroker;
beforeAll(async () => {
  await direct((c) =>
    c.query(`DROP TABLE IF EXISTS jit_t_rm; CREATE TABLE jit_t_rm (id int, email text);
             INSERT INTO jit_t_rm SELECT i, 'person' || i || '@example.com' FROM generate_series(1, 1000) i`),
  );
  t = await startTestBroker(`
audit: { sample_rows: 3, sample_bytes: 65536 }
masking:
  - { columns: ["*.email"], with: redact }
rules:
  - { id: reads, kinds: [read], action: allow }
default: deny
`);
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query('DROP TABLE IF EXISTS jit_t_rm'));
});

describe('masked samples', () => {
  it('stores the first rows as masked on the wire, marks the rest truncated, and replay prints them', async () => {
    const c = new pg.Client(t.pgConfig(await t.token({ build: 'build-rm' })));
    await c.connect();
    const res = await c.query('SELECT id, email AS contact FROM jit_t_rm ORDER BY id');
    expect(res.rows).toHaveLength(1000);
    expect(res.rows[0]).toEqual({ id: 1, contact: '****' });
    await c.end();
    const [s] = await eventually(async () => {
      const rows = await t.broker.store.listSessions({ build: 'build-rm' });
      return rows[0]?.endedAt ? rows : null;
    });
    const [st] = await t.broker.store.listStatements(s!.id);
    const sample = await t.broker.store.getSample(st!.id);
    expect(sample).toMatchObject({
      columns: [{ name: 'id' }, { name: 'contact' }],
      rows: [
        ['1', '****'],
        ['2', '****'],
        ['3', '****'],
      ],
      truncated: true,
    });
    const r = await run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'replay', s!.id]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('****');
    expect(r.stdout).not.toContain('@example.com');
  });
});
