// A `tables:` deny on partitions and inheritance children is not escaped through their parent: reading or writing
// the parent without ONLY touches every table below it. Through the broker, on the real PostgreSQL, in a database
// of this test's own.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, psqlEnv, run, startTestBroker, UPSTREAM, type TestBroker } from '../support/broker.js';

const DB = `jit_parts_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const url = () => {
  const u = new URL(UPSTREAM);
  u.pathname = `/${DB}`;
  return u.toString();
};

const RULES = `
rules:
  - { id: migrator, subjects: ["ci:migrate"], kinds: [ddl], action: allow }
  - { id: no-secret-parts, tables: ["secret_part*"], action: deny }
  - { id: rw, kinds: [read, write], action: allow }
default: deny
`;

// measures ⊃ part_open, part_nested ⊃ secret_part_deep (a partition of a partition);
// people ⊃ secret_part_staff, people_guests (inheritance); events ⊃ events_open (secret_part_events attached later);
// late ⊃ late_open (secret_part_late attached in a transaction, and rolled back).
const SETUP = `
CREATE TABLE measures (id int, region text, v int) PARTITION BY LIST (region);
CREATE TABLE part_open PARTITION OF measures FOR VALUES IN ('open');
CREATE TABLE part_nested PARTITION OF measures FOR VALUES IN ('eu') PARTITION BY RANGE (id);
CREATE TABLE secret_part_deep PARTITION OF part_nested FOR VALUES FROM (0) TO (1000);
INSERT INTO measures VALUES (1, 'open', 10), (2, 'eu', 20);
CREATE TABLE people (id int, name text);
CREATE TABLE secret_part_staff () INHERITS (people);
CREATE TABLE people_guests () INHERITS (people);
INSERT INTO people VALUES (1, 'parent');
INSERT INTO secret_part_staff VALUES (2, 'staff');
INSERT INTO people_guests VALUES (3, 'guest');
CREATE TABLE events (id int, kind text) PARTITION BY LIST (kind);
CREATE TABLE events_open PARTITION OF events FOR VALUES IN ('open');
INSERT INTO events VALUES (1, 'open');
CREATE TABLE secret_part_events (id int, kind text);
INSERT INTO secret_part_events VALUES (9, 'secret');
CREATE TABLE late (id int, kind text) PARTITION BY LIST (kind);
CREATE TABLE late_open PARTITION OF late FOR VALUES IN ('open');
INSERT INTO late VALUES (1, 'open');
CREATE TABLE secret_part_late (id int, kind text);
INSERT INTO secret_part_late VALUES (9, 'late');
`;

let t: TestBroker;

async function onDb<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url() });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Every row of every table, as it really is. */
const state = () =>
  onDb(async (c) => {
    const rows = async (sql: string) => (await c.query(sql)).rows.map((r: Record<string, unknown>) => Object.values(r).join(':'));
    return {
      measures: await rows('SELECT tableoid::regclass, * FROM measures ORDER BY id'),
      people: await rows('SELECT tableoid::regclass, * FROM people ORDER BY id'),
      events: await rows('SELECT * FROM secret_part_events ORDER BY id'),
    };
  });

/** Run `sql` through the broker as `subject`: the error it answered, or the rows of the last statement. */
async function through(sql: string | string[], subject = 'ci:test'): Promise<{ error: { code?: string; message: string } | null; rows: unknown[] }> {
  const c = new pg.Client(t.pgConfig(await t.token({ subject }), { database: 'parts' }));
  await c.connect();
  try {
    let rows: unknown[] = [];
    for (const q of Array.isArray(sql) ? sql : [sql]) rows = (await c.query(q)).rows;
    return { error: null, rows };
  } catch (e) {
    return { error: e as { code?: string; message: string }, rows: [] };
  } finally {
    await c.end().catch(() => {});
  }
}

const psql = async (sql: string) => run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], { ...psqlEnv(t, await t.token()), PGDATABASE: 'parts' });

beforeAll(async () => {
  // CREATE DATABASE fails while another session is using template1 (another test creating its own): try again.
  for (let attempt = 1; ; attempt++) {
    try {
      await direct((c) => c.query(`CREATE DATABASE ${DB}`));
      break;
    } catch (e) {
      if (attempt >= 20 || !/being accessed by other users/.test(String(e))) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  await onDb((c) => c.query(SETUP));
  t = await startTestBroker(RULES, { targets: `  parts: { engine: postgres, upstream: "${url()}" }` });
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`));
});

describe('the parent of a denied partition or inheritance child is refused naming the rule, and nothing changes', () => {
  it.each([
    ['SELECT from a partitioned table', 'SELECT * FROM measures'],
    ['SELECT from a partition whose own partition is denied', 'SELECT count(*) FROM part_nested'],
    ['UPDATE of a partitioned table', 'UPDATE measures SET v = v + 1 WHERE id > 0'],
    ['DELETE from a partitioned table', 'DELETE FROM measures WHERE id = 2'],
    ['SELECT from an inheritance parent', 'SELECT name FROM people'],
    ['UPDATE of an inheritance parent', "UPDATE people SET name = 'x' WHERE id > 0"],
    ['DELETE from an inheritance parent', 'DELETE FROM public.people WHERE id = 2'],
    ['a join that names the parent twice, once with ONLY', 'SELECT * FROM ONLY people p JOIN people q USING (id)'],
  ])('%s', async (_, sql) => {
    const before = await state();
    const { error } = await through(sql);
    expect(error?.code).toBe('42501');
    expect(error?.message).toContain("denied by rule 'no-secret-parts'");
    expect(error?.message).toMatch(/reaches its partitions and inheritance children too \(.*secret_part_/);
    expect(await state()).toEqual(before);
  });

  it.each([['COPY (SELECT * FROM measures) TO STDOUT'], ['COPY (SELECT * FROM people) TO STDOUT']])('psql: %s', async (sql) => {
    const r = await psql(sql);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("denied by rule 'no-secret-parts'");
    expect(r.stdout).toBe('');
  });
});

describe('what does not reach a denied table still runs', () => {
  it('ONLY the parent, and a sibling partition or child directly', async () => {
    expect(await through('SELECT * FROM ONLY people')).toEqual({ error: null, rows: [{ id: 1, name: 'parent' }] });
    expect(await through('SELECT count(*)::int AS n FROM ONLY measures')).toEqual({ error: null, rows: [{ n: 0 }] }); // a partitioned table holds no rows itself
    expect(await through('SELECT id, v FROM part_open')).toEqual({ error: null, rows: [{ id: 1, v: 10 }] });
    expect(await through('SELECT name FROM people_guests')).toEqual({ error: null, rows: [{ name: 'guest' }] });
    const r = await psql("UPDATE ONLY people SET name = 'parent' WHERE id = 1");
    expect(r).toMatchObject({ code: 0, stdout: 'UPDATE 1\n' });
  });

  it('the denied table directly is refused as before', async () => {
    expect((await through('SELECT * FROM secret_part_staff')).error?.message).toContain("denied by rule 'no-secret-parts'");
  });
});

describe('the catalog follows a partition attached through the broker', () => {
  it('a parent allowed before is refused once a denied table is attached to it', async () => {
    expect(await through('SELECT id FROM events')).toEqual({ error: null, rows: [{ id: 1 }] });
    const attach = "ALTER TABLE events ATTACH PARTITION secret_part_events FOR VALUES IN ('secret')";
    expect((await through(attach, 'ci:migrate')).error).toBeNull();
    const { error } = await through('SELECT id FROM events');
    expect(error?.code).toBe('42501');
    expect(error?.message).toContain("denied by rule 'no-secret-parts'");
    expect((await through('SELECT id FROM ONLY events')).error).toBeNull();
  });

  it('inside the transaction that attached it, before COMMIT, too', async () => {
    const c = new pg.Client(t.pgConfig(await t.token({ subject: 'ci:migrate' }), { database: 'parts' }));
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query("ALTER TABLE late ATTACH PARTITION secret_part_late FOR VALUES IN ('late')");
      const err = await c.query('SELECT * FROM late').then(
        () => null,
        (e: { code?: string; message: string }) => e,
      );
      expect(err?.code).toBe('42501');
      expect(err?.message).toContain("denied by rule 'no-secret-parts'");
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
    expect(await through('SELECT id FROM late')).toEqual({ error: null, rows: [{ id: 1 }] }); // rolled back: attached to nothing
  });
});

describe('jit policy check --catalog-from', () => {
  it('decides the parent as the broker does and says why', async () => {
    const args = ['bin/jit.js', '--config', t.configFile, 'policy', 'check', '--target', 'parts', '--catalog-from', 'parts'];
    const r = await run(process.execPath, [...args, 'SELECT * FROM people; SELECT * FROM ONLY people']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/deny\s+no-secret-parts\s+read\s+SELECT \* FROM people/);
    expect(r.stdout).toMatch(/allow\s+rw\s+read\s+SELECT \* FROM ONLY people/);
    expect(r.stdout).toContain('why: SELECT * FROM people: public.people reaches its partitions and inheritance children too (');
    expect(r.stdout).toMatch(/catalog: read from target 'parts': .*, [1-9]\d* partitioned or inheritance parent tables/);
  });
});
