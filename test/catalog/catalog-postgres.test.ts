// Issue 10: a read-only rule must not let user functions, operators and views write. Through the broker, on the
// real PostgreSQL, with the functions and views created in a database of this test's own (a user function named
// `lower` would otherwise disturb every other test's `lower(…)`).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, psqlEnv, run, startTestBroker, UPSTREAM, type TestBroker } from '../support/broker.js';

const DB = `jit_catalog_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
const BLIND = `${DB}_blind`;
const url = (user = 'postgres') => {
  const u = new URL(UPSTREAM);
  u.username = user;
  u.pathname = `/${DB}`;
  return u.toString();
};

const RULES = `
rules:
  - { id: migrator, subjects: ["ci:migrate"], kinds: [read, ddl], action: allow }
  - { id: no-secret, tables: ["jit_secret", "*.jit_secret"], action: deny }
  - { id: ro, kinds: [read], action: allow }
default: deny
`;

const SETUP = `
CREATE TABLE jit_data (id int, note text);
CREATE TABLE jit_secret (id int, card text);
INSERT INTO jit_data VALUES (1, 'a'), (2, 'b'), (3, 'c');
INSERT INTO jit_secret VALUES (1, '4111111111111111');
CREATE FUNCTION f() RETURNS SETOF int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO jit_data VALUES (100, 'f'); RETURN NEXT 1; END $$;
CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $$ DELETE FROM jit_data WHERE id = 1; SELECT 1 $$;
CREATE FUNCTION public.lower(int) RETURNS int LANGUAGE sql AS $$ DELETE FROM jit_data; SELECT 1 $$;
CREATE FUNCTION stable_wrapper() RETURNS int LANGUAGE sql STABLE AS $$ SELECT count(*)::int FROM f() $$;
CREATE FUNCTION writer_eq(int, int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN INSERT INTO jit_data VALUES (200, 'op'); RETURN $1 = $2; END $$;
CREATE OPERATOR === (function = writer_eq, leftarg = int, rightarg = int);
CREATE FUNCTION writer_sfunc(int, int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO jit_data VALUES (300, 'agg'); RETURN coalesce($1, 0) + $2; END $$;
CREATE AGGREGATE writer_sum(int) (sfunc = writer_sfunc, stype = int);
CREATE FUNCTION sneaky(jit_data) RETURNS int LANGUAGE plpgsql AS $$ BEGIN DELETE FROM jit_data; RETURN 1; END $$;
CREATE VIEW v AS SELECT id, (SELECT count(*) FROM f()) AS n FROM jit_data;
CREATE VIEW v2 AS SELECT * FROM v;
CREATE SEQUENCE jit_seq;
CREATE VIEW v_seq AS SELECT nextval('jit_seq') AS n;
CREATE FUNCTION nice(int) RETURNS int LANGUAGE sql STABLE AS $$ SELECT count(*)::int + $1 FROM jit_data $$;
CREATE VIEW v_plain AS SELECT id, note FROM jit_data;
CREATE VIEW v_secret AS SELECT id, card FROM jit_secret;
CREATE VIEW v_secret2 AS SELECT * FROM v_secret;
CREATE FUNCTION to_replace() RETURNS int LANGUAGE sql STABLE AS $$ SELECT 1 $$;
CREATE FUNCTION writer_check(int) RETURNS bool LANGUAGE plpgsql AS $$ BEGIN INSERT INTO jit_data VALUES (400, 'dom'); RETURN true; END $$;
CREATE DOMAIN checked AS int CHECK (writer_check(VALUE));
CREATE DOMAIN checked_too AS checked;
CREATE TYPE pair AS (a int, b int);
CREATE TYPE total AS (n int);
CREATE FUNCTION writer_cast(pair) RETURNS total LANGUAGE plpgsql AS $$ BEGIN INSERT INTO jit_data VALUES (500, 'cast'); RETURN ROW(1); END $$;
CREATE CAST (pair AS total) WITH FUNCTION writer_cast(pair);
CREATE TABLE jit_blind (id int);
GRANT SELECT ON jit_blind TO ${BLIND};
REVOKE SELECT ON pg_catalog.pg_proc FROM PUBLIC;
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

/** The rows of jit_data and the value of jit_seq, as they really are. */
const state = () =>
  onDb(async (c) => {
    const rows = (await c.query<{ id: number }>('SELECT id FROM jit_data ORDER BY id')).rows.map((r) => r.id);
    const seq = (await c.query<{ last_value: string; is_called: boolean }>('SELECT last_value, is_called FROM jit_seq')).rows[0]!;
    return { rows, seq: seq.is_called ? Number(seq.last_value) : 0 };
  });

/** Run `sql` through the broker on `target` as `subject`: the error it answered (code, message), or null. */
async function through(sql: string | string[], opts: { subject?: string; target?: string } = {}): Promise<{ code?: string; message: string } | null> {
  const c = new pg.Client(t.pgConfig(await t.token({ subject: opts.subject ?? 'ci:test' }), { database: opts.target ?? 'cat' }));
  await c.connect();
  try {
    for (const q of Array.isArray(sql) ? sql : [sql]) await c.query(q);
    return null;
  } catch (e) {
    return e as { code?: string; message: string };
  } finally {
    await c.end().catch(() => {});
  }
}

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
  await direct((c) => c.query(`CREATE ROLE ${BLIND} LOGIN`));
  await onDb((c) => c.query(SETUP));
  t = await startTestBroker(RULES, {
    targets: `  cat: { engine: postgres, upstream: "${url()}" }\n  blind: { engine: postgres, upstream: "${url(BLIND)}" }`,
  });
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await direct(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${BLIND}`);
  });
});

describe('a read-only rule refuses user functions, operators and views that write (42501), and nothing changes', () => {
  it.each([
    ['SELECT * FROM f()', 'SELECT * FROM f()'],
    ['SELECT f()', 'SELECT f()'],
    ['VALUES (f())', 'VALUES (f())'],
    ['a scalar subquery', 'SELECT (SELECT f())'],
    ['an SQL function that deletes', 'SELECT g()'],
    ['EXPLAIN ANALYZE', 'EXPLAIN ANALYZE SELECT f()'],
    ['a view that calls f', 'SELECT * FROM v'],
    ['TABLE v', 'TABLE v'],
    ['a view of that view', 'SELECT id FROM v2'],
    ['a view over nextval()', 'SELECT * FROM v_seq'],
    ['lower(int) shadowing the built-in by overload', 'SELECT lower(1)'],
    ['the function named with a Unicode escape', 'SELECT U&"\\0066"()'],
    ['a STABLE function that calls a volatile one', 'SELECT stable_wrapper()'],
    ['a user-defined operator', 'SELECT 1 === 1'],
    ['an aggregate whose transition function writes', 'SELECT writer_sum(id) FROM jit_data'],
    ['attribute notation (t.f is f(t))', 'SELECT d.sneaky FROM jit_data d'],
    ['a function in a DO block', 'DO $$ BEGIN PERFORM g(); END $$'],
    ['a cast to a domain whose CHECK writes', 'SELECT 1::checked'],
    ['a cast to a domain over that domain', 'SELECT CAST(1 AS checked_too)'],
    ['a user-defined cast', 'SELECT ROW(1, 2)::pair::total'],
    ['a user-defined cast written as a call', 'SELECT total(ROW(1, 2)::pair)'],
  ])('%s', async (_, sql) => {
    const before = await state();
    const err = await through(sql);
    expect(err?.code).toBe('42501');
    expect(err?.message).toMatch(/denied by/);
    expect(await state()).toEqual(before);
  });

  it('a cursor over f()', async () => {
    const before = await state();
    const err = await through(['BEGIN', 'DECLARE c CURSOR FOR SELECT f()', 'FETCH ALL FROM c', 'COMMIT']);
    expect(err?.code).toBe('42501');
    expect(await state()).toEqual(before);
  });

  it('says why: which function, and what it is', async () => {
    const err = await through('SELECT f()');
    expect(err?.message).toMatch(/a write statement is denied by rule 'ro'|denied by the default policy/);
    expect(err?.message).toContain('public.f()');
    expect(err?.message).toMatch(/VOLATILE|body is a write/);
  });

  it("with a user's lower(int) around, any unqualified lower() of one argument may be it: refused, saying which", async () => {
    const err = await through("SELECT lower('ABC')");
    expect(err?.code).toBe('42501');
    expect(err?.message).toContain('public.lower()');
  });

  it('psql shows the refusal too, and the rows are still there', async () => {
    const before = await state();
    const r = await run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', 'SELECT lower(1)'], { ...psqlEnv(t, await t.token()), PGDATABASE: 'cat' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/denied/);
    expect(await state()).toEqual(before);
  });
});

describe('what reads still works', () => {
  it('stable functions, built-ins and plain views of plain tables', async () => {
    const c = new pg.Client(t.pgConfig(await t.token(), { database: 'cat' }));
    await c.connect();
    try {
      expect((await c.query('SELECT nice(1) AS n')).rows[0].n).toBe(4);
      // Schema-qualified, lower() is the built-in only (unqualified, see below).
      expect((await c.query("SELECT pg_catalog.lower('ABC') AS l, upper(note) AS u FROM jit_data WHERE id = 2")).rows[0]).toEqual({ l: 'abc', u: 'B' });
      expect((await c.query('SELECT count(*)::int AS n, random() < 2 AS r, now() IS NOT NULL AS t FROM v_plain')).rows[0]).toEqual({ n: 3, r: true, t: true });
      expect((await c.query('TABLE v_plain')).rows).toHaveLength(3);
      expect((await c.query('SELECT id FROM jit_data d WHERE d.note = $1', ['c'])).rows).toEqual([{ id: 3 }]);
      expect((await c.query("SELECT $1::int + '2'::int AS n, 3::text AS s", ['1'])).rows[0]).toEqual({ n: 3, s: '3' });
    } finally {
      await c.end();
    }
  });
});

describe('tables rules see through views', () => {
  it.each([['SELECT * FROM jit_secret'], ['SELECT * FROM v_secret'], ['SELECT card FROM v_secret2'], ['SELECT * FROM public.v_secret']])(
    '%s is refused by no-secret',
    async (sql) => {
      const err = await through(sql);
      expect(err?.code).toBe('42501');
      expect(err?.message).toContain("'no-secret'");
    },
  );
});

describe('the catalog follows DDL that goes through the broker', () => {
  it('a function created through the broker can be called at once', async () => {
    expect(await through("CREATE FUNCTION created_here() RETURNS int LANGUAGE sql STABLE AS 'SELECT 42'", { subject: 'ci:migrate' })).toBeNull();
    expect(await through('SELECT created_here()')).toBeNull();
  });

  it('a function replaced through the broker by one that writes is refused afterwards', async () => {
    expect(await through('SELECT to_replace()')).toBeNull(); // read: the catalog now has it as STABLE
    const replace = "CREATE OR REPLACE FUNCTION to_replace() RETURNS int LANGUAGE sql VOLATILE AS 'DELETE FROM jit_data WHERE id = 2; SELECT 1'";
    expect(await through(replace, { subject: 'ci:migrate' })).toBeNull();
    const before = await state();
    expect((await through('SELECT to_replace()'))?.code).toBe('42501');
    expect(await state()).toEqual(before);
  });

  it('in the same request that replaces it, it is unknown', async () => {
    const before = await state();
    const err = await through(
      "CREATE OR REPLACE FUNCTION nice(int) RETURNS int LANGUAGE sql VOLATILE AS 'DELETE FROM jit_data WHERE id = 2; SELECT 1'; SELECT nice(1)",
      {
        subject: 'ci:migrate',
      },
    );
    expect(err?.code).toBe('42501');
    expect(await state()).toEqual(before);
    expect(await through('SELECT nice(1)')).toBeNull(); // nothing of it ran: nice() is still the stable one
  });

  it('inside the transaction that replaced it, before COMMIT, it is unknown (the catalog cannot see it yet)', async () => {
    const before = await state();
    const err = await through(
      ['BEGIN', "CREATE OR REPLACE FUNCTION nice(int) RETURNS int LANGUAGE sql VOLATILE AS 'DELETE FROM jit_data WHERE id = 2; SELECT 1'", 'SELECT nice(1)'],
      { subject: 'ci:migrate' },
    );
    expect(err?.code).toBe('42501');
    expect(err?.message).toMatch(/unknown statement.*COMMIT first/);
    expect(await state()).toEqual(before); // and the transaction was rolled back: nice() is still the stable one
    expect(await through('SELECT nice(1)')).toBeNull();
  });
});

describe('views created in the open transaction are judged by their new query', () => {
  it('one that calls a writer is refused; a plain one reads', async () => {
    const before = await state();
    const c = new pg.Client(t.pgConfig(await t.token({ subject: 'ci:migrate' }), { database: 'cat' }));
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query('CREATE VIEW v_tx AS SELECT id FROM jit_data');
      expect((await c.query('SELECT count(*)::int AS n FROM v_tx')).rows[0].n).toBe(3);
      await c.query('CREATE OR REPLACE VIEW v_tx AS SELECT id FROM jit_data, f()');
      const err = await c.query('SELECT * FROM v_tx').then(
        () => null,
        (e: { code?: string; message: string }) => e,
      );
      expect(err?.code).toBe('42501');
      expect(err?.message).toContain('v_tx as this session redefined it, which calls public.f()');
      await c.query('ROLLBACK');
    } finally {
      await c.end();
    }
    expect(await state()).toEqual(before);
  });
});

describe('a catalog the broker cannot read', () => {
  it('refuses what it would be needed for (unknown), and says so; SELECT 1 still runs', async () => {
    expect(await through('SELECT 1', { target: 'blind' })).toBeNull();
    const err = await through('SELECT * FROM jit_blind', { target: 'blind' });
    expect(err?.code).toBe('42501');
    expect(err?.message).toMatch(/unknown statement.*catalog of target 'blind' could not be read/);
  });
});

describe('jit policy check --catalog-from', () => {
  const check = (...args: string[]) => run(process.execPath, ['bin/jit.js', '--config', t.configFile, 'policy', 'check', '--target', 'cat', ...args]);

  it('judges functions and views by that target’s catalog, and says why', async () => {
    const r = await check('--catalog-from', 'cat', 'SELECT f(); SELECT * FROM v_secret; SELECT nice(1)');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/deny\s+\(default\)\s+read,write\s+SELECT f\(\)/);
    expect(r.stdout).toMatch(/deny\s+no-secret\s+read\s+SELECT \* FROM v_secret/);
    expect(r.stdout).toMatch(/allow\s+ro\s+read\s+SELECT nice\(1\)/);
    expect(r.stdout).toContain('why: SELECT f(): it calls public.f(), which is VOLATILE');
    expect(r.stdout).toMatch(/catalog: read from target 'cat': \d+ functions/);
    // Without it, by names alone (as before): f() looks like a read.
    expect((await check('--expect', 'allow', 'SELECT f()')).code).toBe(0);
  });

  it('says so when it cannot read the catalog, and decides as the broker would then', async () => {
    const r = await check('--catalog-from', 'blind', '--expect', 'deny', 'SELECT * FROM jit_blind');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/catalog: could not read the catalog of target 'blind' \(permission denied for table pg_proc\)/);
    expect(r.stdout).toMatch(/deny\s+\(default\)\s+read,unknown/);
  });
});
