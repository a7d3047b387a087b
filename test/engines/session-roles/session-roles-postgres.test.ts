// A database role per session on the real PostgreSQL: the broker's own account has CREATEROLE and nothing more;
// each session logs in as a role of its own, a member of the group roles its token is granted, gone when the
// session ends. A read-only session cannot write even where the broker allows the statement (the database
// refuses, and its error reaches psql and the record unchanged). A role that cannot be created refuses the login.
// pg_stat_activity names the session and build of every broker connection (application_name), with or without
// session roles.
import { resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_RULES, direct, eventually, psqlEnv, run, startTestBroker, type TestBroker } from '../../support/broker.js';

const P = process.pid;
const BROKER = `jit_broker_t${P}`;
const READ = `jit_read_t${P}`;
const WRITE = `jit_write_t${P}`;
const TABLE = `jit_t_roles_${P}`;
const FN = `jit_t_roles_f_${P}`;
const PREFIX = `jit_p${P}_`;
const ADMIN = 'session-roles-test-admin-token-0123456789';
const BIN = resolve('bin/jit.js');
const url = `postgres://${BROKER}:broker-pw@127.0.0.1:5432/test`;

let t: TestBroker;

const roleExists = async (name: string) => (await direct((c) => c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]))).rowCount === 1;
const sessionRoles = async () =>
  (await direct((c) => c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)', [PREFIX]))).rows.map((r) => r.rolname);

beforeAll(async () => {
  await direct((c) =>
    c.query(`
      DROP TABLE IF EXISTS ${TABLE};
      DROP FUNCTION IF EXISTS ${FN}();
      DROP ROLE IF EXISTS ${READ}; DROP ROLE IF EXISTS ${WRITE}; DROP ROLE IF EXISTS ${BROKER};
      CREATE ROLE ${BROKER} LOGIN CREATEROLE PASSWORD 'broker-pw';
      CREATE ROLE ${READ}; CREATE ROLE ${WRITE};
      CREATE TABLE ${TABLE} (id serial PRIMARY KEY, v text);
      GRANT SELECT ON ${TABLE} TO ${READ};
      GRANT SELECT, INSERT, UPDATE, DELETE ON ${TABLE} TO ${WRITE};
      GRANT USAGE ON SEQUENCE ${TABLE}_id_seq TO ${WRITE};
      CREATE FUNCTION ${FN}() RETURNS int LANGUAGE plpgsql AS $$ BEGIN INSERT INTO ${TABLE} (v) VALUES ('from f'); RETURN 1; END $$;
    `),
  );
  t = await startTestBroker(`${BASE_RULES}\nadmin_token: ${ADMIN}\n`, {
    plaintext: true,
    targets: [
      `  roles: { engine: postgres, upstream: "${url}", session_roles: { prefix: ${PREFIX}, grants: [{ claims: { repository: "acme/*" }, roles: [${READ}, ${WRITE}] }], default: [${READ}] } }`,
      `  strict: { engine: postgres, upstream: "${url}", session_roles: { prefix: ${PREFIX}, grants: [{ claims: { repository: "acme/*" }, roles: [${READ}] }] } }`,
      `  broken: { engine: postgres, upstream: "${url}", session_roles: { prefix: ${PREFIX}, default: [${READ}, jit_no_such_role_${P}] } }`,
    ].join('\n'),
  });
});

afterAll(async () => {
  await t?.stop();
  await direct(async (c) => {
    for (const r of await sessionRoles()) await c.query(`DROP OWNED BY "${r}"; DROP ROLE "${r}"`);
    await c.query(`
      DROP TABLE IF EXISTS ${TABLE};
      DROP FUNCTION IF EXISTS ${FN}();
      DROP ROLE IF EXISTS ${READ}; DROP ROLE IF EXISTS ${WRITE};
      DROP OWNED BY ${BROKER}; DROP ROLE IF EXISTS ${BROKER};
    `);
  });
});

/** A pg client through the broker, to target `db`. */
async function session(db: string, claims?: Record<string, unknown>, build = 'build-roles'): Promise<pg.Client> {
  const c = new pg.Client(t.pgConfig(await t.token({ build, claims }), { database: db, ssl: false, application_name: 'roles-test' }));
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** The session the broker holds for the newest connection to `db`. */
async function newest(db: string) {
  const [s] = await t.broker.store.listSessions({ target: db, limit: 1 });
  return s!;
}

describe('a role per session (PostgreSQL)', () => {
  it('logs the session in as its own role, a member of the granted group roles only, valid until the token expires; dropped at the end', async () => {
    const c = await session('roles');
    const s = await newest('roles');
    expect(s.dbRole).toBe(`${PREFIX}${s.id}`);
    const role = s.dbRole!;
    const facts = await direct((d) =>
      d.query<{ rolcanlogin: boolean; rolinherit: boolean; rolsuper: boolean; rolcreaterole: boolean; until: string; groups: string[] }>(
        `SELECT r.rolcanlogin, r.rolinherit, r.rolsuper, r.rolcreaterole, r.rolvaliduntil::text AS until,
                array(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid ORDER BY 1) AS groups
           FROM pg_roles r WHERE r.rolname = $1`,
        [role],
      ),
    );
    expect(facts.rows[0]).toMatchObject({ rolcanlogin: true, rolinherit: true, rolsuper: false, rolcreaterole: false, groups: [READ] });
    // The token's expiry (5 minutes from now, to the second).
    const until = new Date(facts.rows[0]!.until).getTime();
    expect(Math.abs(until - (Date.now() + 300_000))).toBeLessThan(10_000);
    // The upstream connection is the role's, named after the session and build.
    const { rows } = await c.query('SELECT current_user AS who, session_user AS login');
    expect(rows[0]).toEqual({ who: role, login: role });
    const activity = await direct((d) => d.query('SELECT usename, application_name FROM pg_stat_activity WHERE usename = $1', [role]));
    expect(activity.rows).toEqual([{ usename: role, application_name: `jit:${s.id}:build-roles` }]);
    // The client's own application name is what the session records.
    expect(s.clientApplication).toBe('roles-test');
    await c.end();
    await eventually(async () => !(await roleExists(role)), 10_000);
    expect((await t.broker.store.getSession(s.id))?.endedAt).not.toBeNull();
  });

  it("grants by the token's claims: the first matching grant decides", async () => {
    const c = await session('roles', { repository: 'acme/shop' });
    const s = await newest('roles');
    const groups = await direct((d) =>
      d.query<{ rolname: string }>(
        'SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $1 ORDER BY 1',
        [s.dbRole],
      ),
    );
    expect(groups.rows.map((r) => r.rolname)).toEqual([READ, WRITE]);
    await c.query(`INSERT INTO ${TABLE} (v) VALUES ('by acme')`);
    await c.end();
    await eventually(async () => !(await roleExists(s.dbRole!)), 10_000);
  });

  it('a read-only session cannot write, even through a function the broker allows: the database refuses, psql sees it, the record has it', async () => {
    const token = await t.token({ build: 'build-ro' });
    const r = await run(
      'psql',
      ['-X', '-v', 'ON_ERROR_STOP=0', '-c', `SELECT count(*) FROM ${TABLE}`, '-c', `INSERT INTO ${TABLE} (v) VALUES ('nope')`, '-c', `SELECT ${FN}()`],
      { ...psqlEnv(t, token), PGDATABASE: 'roles', PGSSLMODE: 'disable' },
    );
    expect(r.stdout).toMatch(/count/);
    // Both writes were allowed by the broker's rules (day-to-day allows writes; the function is judged a write) and refused upstream.
    expect(r.stderr.match(new RegExp(`ERROR:  permission denied for table ${TABLE}`, 'g'))).toHaveLength(2);
    const s = await newest('roles');
    const statements = await t.broker.store.listStatements(s.id);
    const writes = statements.filter((x) => /INSERT|jit_t_roles_f/.test(x.sql));
    expect(writes.map((x) => [x.decision, x.kinds.includes('write'), x.error])).toEqual([
      ['allow', true, `permission denied for table ${TABLE}`],
      ['allow', true, `permission denied for table ${TABLE}`],
    ]);
    expect((await direct((d) => d.query(`SELECT count(*)::int AS n FROM ${TABLE} WHERE v IN ('nope', 'from f')`))).rows[0].n).toBe(0);
  });

  it('shows the role in `jit session ID`, its JSON, the sessions API and `jit replay`', async () => {
    const c = await session('roles', undefined, 'build-shown');
    const s = await newest('roles');
    await c.end();
    await eventually(async () => !(await roleExists(s.dbRole!)), 10_000);
    const text = await run(process.execPath, [BIN, 'session', s.id, '--config', t.configFile]);
    expect(text.stdout).toContain(`role=${s.dbRole}`);
    const json = JSON.parse((await run(process.execPath, [BIN, 'session', s.id, '--json', '--config', t.configFile])).stdout);
    expect(json.session.dbRole).toBe(s.dbRole);
    const list = JSON.parse((await run(process.execPath, [BIN, 'sessions', '--build', 'build-shown', '--json', '--config', t.configFile])).stdout);
    expect(list.map((x: { dbRole: string }) => x.dbRole)).toEqual([s.dbRole]);
    const api = await fetch(`${t.httpUrl}/api/sessions/${s.id}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(((await api.json()) as { session: { dbRole: string } }).session.dbRole).toBe(s.dbRole);
    // jit replay names it in the session's header and its session-start event.
    const replay = await run(process.execPath, [BIN, 'replay', s.id, '--config', t.configFile]);
    expect(replay.stdout).toMatch(new RegExp(`^  db role  ${s.dbRole}$`, 'm'));
    const start = JSON.parse((await run(process.execPath, [BIN, 'replay', s.id, '--json', '--config', t.configFile])).stdout.split('\n')[0]!);
    expect(start).toMatchObject({ type: 'session-start', dbRole: s.dbRole });
  });

  it('refuses a login whose role cannot be created, saying why; nothing connects as the broker’s own account', async () => {
    const token = await t.token({ build: 'build-broken' });
    const r = await run('psql', ['-X', '-c', 'SELECT current_user'], { ...psqlEnv(t, token), PGDATABASE: 'broken', PGSSLMODE: 'disable' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`jit-broker could not create the session's database role on target "broken": role "jit_no_such_role_${P}" does not exist`);
    const s = await newest('broken');
    expect(s.endReason).toMatch(/^refused: jit-broker could not create the session's database role/);
    expect(s.statementCount).toBe(0);
    // Nothing of the session upstream: no role left (the grant failed in the same transaction), no backend named after it.
    expect(await roleExists(s.dbRole!)).toBe(false);
    const backends = await direct((d) => d.query("SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'jit:' || $1 || '%'", [s.id]));
    expect(backends.rowCount).toBe(0);
    const [refused] = await t.broker.store.listRefusedLogins({ limit: 1 });
    expect(refused).toMatchObject({ target: 'broken', reason: 'session_role' });
  });

  it('refuses a token no grant matches when the default is empty', async () => {
    const token = await t.token({ build: 'build-strict' });
    const r = await run('psql', ['-X', '-c', 'SELECT 1'], { ...psqlEnv(t, token), PGDATABASE: 'strict', PGSSLMODE: 'disable' });
    expect(r.stderr).toContain('no session_roles grant of target "strict" matches this token');
    const c = await session('strict', { repository: 'acme/api' });
    expect((await c.query('SELECT current_user AS u')).rows[0].u).toMatch(new RegExp(`^${PREFIX}s_`));
    await c.end();
  });

  it('names the session and build in pg_stat_activity without session roles too; the client’s application name is recorded', async () => {
    const c = await session('app', undefined, 'build-plain');
    const s = await newest('app');
    expect(s.dbRole).toBeNull();
    const { rows } = await c.query('SELECT current_setting($1) AS name', ['application_name']);
    expect(rows[0].name).toBe(`jit:${s.id}:build-plain`);
    const activity = await direct((d) => d.query('SELECT usename FROM pg_stat_activity WHERE application_name = $1', [`jit:${s.id}:build-plain`]));
    expect(activity.rows).toEqual([{ usename: 'postgres' }]);
    expect(s.clientApplication).toBe('roles-test');
    await c.end();
  });
});
