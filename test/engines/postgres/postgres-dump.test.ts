// pg_dump, pg_restore and psql through the broker, unchanged (issue 11): a read-only token takes a dump (schema only,
// and a table's data, plain and custom format), which restores through the broker into a fresh database under a rule
// that allows ddl and write, rows intact; psql's PREPARE / EXECUTE and a pool's DISCARD ALL work under read-only.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, psqlEnv, run, startTestBroker, UPSTREAM, type TestBroker } from '../../support/broker.js';

const ROLE = 'jit_t_dumper';
const SCHEMA = 'jit_t_dump_src';
const PLAIN = 'jit_t_dump_plain';
const CUSTOM = 'jit_t_dump_custom';
/** An upstream URL for the same server as another role, or another database. */
const as = (role: string) => UPSTREAM.replace(/\/\/[^@/]+@/, `//${role}@`);
const on = (db: string) => UPSTREAM.replace(/\/[^/?]*(\?|$)/, `/${db}$1`);

// The broker's login for `src` is not a superuser (least privilege): pg_dump then only counts subscriptions.
// `restore_*` log in as the server's superuser to fresh databases; `app` as the superuser too.
const RULES = `
rules:
  - { id: restore, targets: ["restore_*"], kinds: [read, write, ddl], action: allow }
  - { id: read-only, targets: [src, app], kinds: [read], action: allow }
default: deny
`;
const TARGETS = [
  `  src: { engine: postgres, upstream: "${as(ROLE)}" }`,
  `  restore_plain: { engine: postgres, upstream: "${on(PLAIN)}" }`,
  `  restore_custom: { engine: postgres, upstream: "${on(CUSTOM)}" }`,
].join('\n');

const ROWS = [
  [1, 'alice', 'first'],
  [2, 'bob', 'tab\there, newline\nthere'],
  [3, 'čarli ✓', null],
  [4, 'back\\slash', 'quote \' and " both'],
];

let t: TestBroker;
let dir: string;

async function reset(db: string): Promise<void> {
  await direct(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${db}`);
  });
}

async function rowsIn(db: string | null): Promise<unknown[][]> {
  const c = new pg.Client({ connectionString: db ? on(db) : UPSTREAM });
  await c.connect();
  try {
    const r = await c.query({ text: `SELECT id, name, note FROM ${SCHEMA}.items ORDER BY id`, rowMode: 'array' });
    return r.rows as unknown[][];
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'jit-dump-'));
  await direct(async (c) => {
    await c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await c.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${ROLE}') THEN CREATE ROLE ${ROLE} LOGIN; END IF; END $$`);
    await c.query(`CREATE SCHEMA ${SCHEMA}`);
    await c.query(`CREATE TABLE ${SCHEMA}.items (id serial PRIMARY KEY, name text NOT NULL, note text)`);
    await c.query(`COMMENT ON TABLE ${SCHEMA}.items IS 'dumped through the broker'`);
    await c.query(`CREATE VIEW ${SCHEMA}.names AS SELECT id, upper(name) AS name FROM ${SCHEMA}.items`);
    for (const [id, name, note] of ROWS)
      await c.query(`INSERT INTO ${SCHEMA}.items (name, note) VALUES ($1, $2) RETURNING id`, [name, note]).then((r) => expect(r.rows[0].id).toBe(id));
    await c.query(`GRANT USAGE ON SCHEMA ${SCHEMA} TO ${ROLE}`);
    await c.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${SCHEMA} TO ${ROLE}`);
    await c.query(`GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${SCHEMA} TO ${ROLE}`);
  });
  await reset(PLAIN);
  await reset(CUSTOM);
  t = await startTestBroker(RULES, { targets: TARGETS });
});

afterAll(async () => {
  await t?.stop();
  await direct(async (c) => {
    await c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await c.query(`DROP DATABASE IF EXISTS ${PLAIN} WITH (FORCE)`);
    await c.query(`DROP DATABASE IF EXISTS ${CUSTOM} WITH (FORCE)`);
    await c.query(`DROP ROLE IF EXISTS ${ROLE}`);
  });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Run a client through the broker to `database` (a target), with a fresh token for `build`. */
async function client(cmd: string, args: string[], database: string, build: string) {
  const token = await t.token({ build });
  return run(cmd, args, { ...psqlEnv(t, token), PGDATABASE: database });
}

/** What the broker recorded for the sessions of `build`: each statement's text, decision and kinds. */
async function recorded(build: string) {
  const out: { sql: string; decision: string; kinds: string[]; message: string | null }[] = [];
  for (const s of await t.broker.store.listSessions({ build })) out.push(...(await t.broker.store.listStatements(s.id)));
  return out;
}

describe('pg_dump under a read-only rule, restored through the broker under a ddl + write rule', () => {
  it('plain format: --schema-only, then --data-only -t of a table, restored with psql -f; the rows match', async () => {
    const schema = join(dir, 'schema.sql');
    const data = join(dir, 'data.sql');
    // -O -x: no ALTER … OWNER TO and GRANT, which are privilege statements the restore rule does not allow.
    const s = await client('pg_dump', ['--schema-only', '-O', '-x', '-n', SCHEMA, '-f', schema], 'src', 'dump-plain');
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    expect(readFileSync(schema, 'utf8')).toContain(`CREATE TABLE ${SCHEMA}.items`);
    const d = await client('pg_dump', ['--data-only', '-t', `${SCHEMA}.items`, '-f', data], 'src', 'dump-plain');
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    const text = readFileSync(data, 'utf8');
    expect(text).toContain("SELECT pg_catalog.set_config('search_path', '', false);");
    expect(text).toContain(`COPY ${SCHEMA}.items (id, name, note) FROM stdin;`);

    // Everything pg_dump asked was a read, and was allowed — its set_config from pg_settings and its locks among them.
    const dumped = await recorded('dump-plain');
    expect(dumped.filter((x) => x.decision !== 'allow')).toEqual([]);
    expect(dumped.every((x) => x.kinds.join() === 'read')).toBe(true);
    expect(dumped.some((x) => x.sql === `LOCK TABLE ${SCHEMA}.items IN ACCESS SHARE MODE`)).toBe(true);
    expect(dumped.some((x) => /^COPY jit_t_dump_src\.items \(id, name, note\) TO stdout;?$/.test(x.sql))).toBe(true);

    const r = await client('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', schema, '-f', data], 'restore_plain', 'restore-plain');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await rowsIn(PLAIN)).toEqual(ROWS);
    expect(await rowsIn(PLAIN)).toEqual(await rowsIn(null));
    // The sequence goes on where the source's is, and the view and comment came along.
    const [seq, view, comment] = await (async () => {
      const c = new pg.Client({ connectionString: on(PLAIN) });
      await c.connect();
      try {
        return [
          (await c.query(`SELECT nextval('${SCHEMA}.items_id_seq')::int AS n`)).rows[0].n,
          (await c.query(`SELECT name FROM ${SCHEMA}.names WHERE id = 1`)).rows[0].name,
          (await c.query(`SELECT obj_description('${SCHEMA}.items'::regclass) AS d`)).rows[0].d,
        ];
      } finally {
        await c.end();
      }
    })();
    expect([seq, view, comment]).toEqual([5, 'ALICE', 'dumped through the broker']);
    // The restore's SET / set_config / COPY FROM stdin passed the restore rule, every one allowed.
    const restored = await recorded('restore-plain');
    expect(restored.filter((x) => x.decision !== 'allow')).toEqual([]);
    expect(restored.map((x) => x.sql)).toContain("SELECT pg_catalog.set_config('search_path', '', false);");
  });

  it('custom format (-Fc): --schema-only and --data-only -t, restored with pg_restore; the rows match', async () => {
    const schema = join(dir, 'schema.dump');
    const data = join(dir, 'data.dump');
    for (const [args, file] of [
      [['--schema-only', '-n', SCHEMA], schema],
      [['--data-only', '-t', `${SCHEMA}.items`], data],
    ] as const) {
      const r = await client('pg_dump', ['-Fc', ...args, '-f', file], 'src', 'dump-custom');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    expect((await recorded('dump-custom')).filter((x) => x.decision !== 'allow')).toEqual([]);
    for (const file of [schema, data]) {
      // pg_restore -O -x: the archive has owners and grants, privilege statements the restore rule does not allow.
      const r = await client('pg_restore', ['-O', '-x', '--exit-on-error', '-d', 'restore_custom', file], 'restore_custom', 'restore-custom');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    expect(await rowsIn(CUSTOM)).toEqual(ROWS);
    expect((await recorded('restore-custom')).filter((x) => x.decision !== 'allow')).toEqual([]);
  });

  it('with owners and grants in the archive, pg_restore is refused at the first privilege statement, saying so', async () => {
    const file = join(dir, 'owned.dump');
    expect((await client('pg_dump', ['-Fc', '--schema-only', '-n', SCHEMA, '-f', file], 'src', 'dump-owned')).code).toBe(0);
    await reset(CUSTOM);
    const r = await client('pg_restore', ['--exit-on-error', '-d', 'restore_custom', file], 'restore_custom', 'restore-owned');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/jit-broker: a privilege statement is denied by the default policy/);
    expect(r.stderr).toMatch(/OWNER TO/);
  });

  it('a superuser login makes pg_dump read pg_subscription.subconninfo: admin, refused saying why; --no-subscriptions dumps', async () => {
    const refused = await client('pg_dump', ['--schema-only', '-n', SCHEMA], 'app', 'dump-superuser');
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(
      'jit-broker: an admin statement is denied by the default policy (no rule matched): it may read pg_subscription.subconninfo',
    );
    expect(refused.stderr).toContain('--no-subscriptions leaves it out');
    const ok = await client('pg_dump', ['--schema-only', '--no-subscriptions', '-n', SCHEMA], 'app', 'dump-superuser');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`CREATE TABLE ${SCHEMA}.items`);
  });
});

describe('psql: SQL-level prepared statements and session resets under a read-only rule', () => {
  it('PREPARE q(int) AS SELECT $1; EXECUTE q(2) runs, in one string and as separate statements', async () => {
    const one = await client('psql', ['-X', '-A', '-t', '-c', 'PREPARE q(int) AS SELECT $1 + 40; EXECUTE q(2);'], 'app', 'psql-prepare');
    expect(one.stderr).toBe('');
    expect(one.stdout.trim().split('\n')).toEqual(['PREPARE', '42']);
    const apart = await client(
      'psql',
      ['-X', '-A', '-t', '-c', 'PREPARE q(int) AS SELECT $1 * 2', '-c', 'EXECUTE q(21)', '-c', 'EXECUTE q(4)'],
      'app',
      'psql-prepare',
    );
    expect(apart.stderr).toBe('');
    expect(apart.stdout.trim().split('\n')).toEqual(['PREPARE', '42', '8']);
    const st = await recorded('psql-prepare');
    expect(st.filter((x) => x.sql.startsWith('EXECUTE')).map((x) => [x.sql, x.decision, x.kinds])).toEqual([
      ['EXECUTE q(21)', 'allow', ['read']],
      ['EXECUTE q(4)', 'allow', ['read']],
    ]);
  });

  it('PREPARE d AS DELETE …; EXECUTE d is refused, and nothing is deleted', async () => {
    const r = await client('psql', ['-X', '-c', `PREPARE d AS DELETE FROM ${SCHEMA}.items; EXECUTE d;`], 'app', 'psql-delete');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/jit-broker: a destructive statement is denied by the default policy \(no rule matched\)/);
    const apart = await client('psql', ['-X', '-c', `PREPARE d AS DELETE FROM ${SCHEMA}.items`, '-c', 'EXECUTE d'], 'app', 'psql-delete');
    expect(apart.stderr).toMatch(/jit-broker: a destructive statement is denied/);
    expect(apart.stderr).toMatch(
      /jit-broker: an unknown statement is denied by the default policy \(no rule matched\): EXECUTE d: no statement d was prepared in this session through the broker/,
    );
    expect(await rowsIn(null)).toEqual(ROWS);
  });

  it('a statement a driver prepared by name (extended protocol) runs by SQL EXECUTE as what it is', async () => {
    const c = new pg.Client(t.pgConfig(await t.token({ build: 'node-execute' })));
    await c.connect();
    try {
      expect((await c.query({ name: 'answer', text: 'SELECT 42 AS n' })).rows).toEqual([{ n: 42 }]);
      expect((await c.query('EXECUTE answer')).rows).toEqual([{ n: 42 }]);
      await expect(c.query({ name: 'wipe', text: `DELETE FROM ${SCHEMA}.items` })).rejects.toThrow(/a destructive statement is denied/);
      await expect(c.query('EXECUTE wipe')).rejects.toThrow(/EXECUTE wipe: no statement wipe was prepared in this session through the broker/);
    } finally {
      await c.end();
    }
    expect(await rowsIn(null)).toEqual(ROWS);
  });

  it('DISCARD ALL is allowed, and an EXECUTE after it is refused, since nothing is prepared any more', async () => {
    const r = await client(
      'psql',
      ['-X', '-A', '-t', '-c', 'PREPARE q AS SELECT 1', '-c', 'DISCARD ALL', '-c', 'SELECT current_user', '-c', 'EXECUTE q'],
      'app',
      'psql-discard',
    );
    expect(r.stdout.trim().split('\n')).toEqual(['PREPARE', 'DISCARD ALL', 'postgres']);
    expect(r.stderr).toMatch(/EXECUTE q: no statement q was prepared in this session through the broker/);
    const st = await recorded('psql-discard');
    expect(st.find((x) => x.sql === 'DISCARD ALL')).toMatchObject({ decision: 'allow', kinds: ['read'] });
  });
});
