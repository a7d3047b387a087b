// Startup parameters through the broker (issue 11): every setting a client asks for at connect — its own
// parameters and the -c switches of `options` — is vetted like the SET it stands for, then either reaches the
// server (psql PGOPTIONS, node-postgres options/statement_timeout, postgres.js connection) or is refused at
// connect with a message that names it. None is dropped without a word; application_name is recorded, and upstream
// the broker's own (`jit:<session>:<build>`) comes after it and wins.
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, eventually, psqlEnv, run, startTestBroker, type TestBroker } from '../../support/broker.js';

const SCHEMA = 'jit_t_startup';
let t: TestBroker;

beforeAll(async () => {
  t = await startTestBroker();
  await direct(async (c) => {
    await c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await c.query(`CREATE SCHEMA ${SCHEMA}`);
    await c.query(`CREATE TABLE ${SCHEMA}.jit_t_widgets (id int, name text)`);
    await c.query(`INSERT INTO ${SCHEMA}.jit_t_widgets VALUES (1, 'only in ${SCHEMA}')`);
  });
});
afterAll(async () => {
  await t?.stop();
  await direct((c) => c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`));
});

/** The session recorded for a build, once it has ended. */
async function endedSession(build: string) {
  const [s] = await eventually(async () => {
    const rows = await t.broker.store.listSessions({ build });
    return rows.length && rows[0]!.endedAt ? rows : null;
  });
  return s!;
}

/** Connect with node-postgres; the login error, or null when the login succeeded. */
async function loginError(extra: Partial<pg.ClientConfig>): Promise<{ code?: string; message: string } | null> {
  const c = new pg.Client(t.pgConfig(await t.token(), extra));
  try {
    await c.connect();
    await c.end();
    return null;
  } catch (e) {
    return e as { code?: string; message: string };
  }
}

describe('allowed settings reach the server', () => {
  it('psql PGOPTIONS: -c search_path and -c statement_timeout are in effect, and an unqualified table resolves', async () => {
    const token = await t.token({ build: 'build-startup-psql' });
    const r = await run('psql', ['-X', '-A', '-t', '-c', 'SHOW search_path', '-c', 'SHOW statement_timeout', '-c', 'SELECT name FROM jit_t_widgets'], {
      ...psqlEnv(t, token),
      PGOPTIONS: `-c search_path=${SCHEMA},public -c statement_timeout=1234`,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([`${SCHEMA},public`, '1234ms', `only in ${SCHEMA}`]);
    expect(await endedSession('build-startup-psql')).toMatchObject({ clientApplication: 'psql', statementCount: 3 });
  });

  it('psql PGCLIENTENCODING=LATIN1 is the session encoding upstream (not replaced by UTF8)', async () => {
    const r = await run('psql', ['-X', '-A', '-t', '-c', 'SHOW client_encoding'], { ...psqlEnv(t, await t.token()), PGCLIENTENCODING: 'LATIN1' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('LATIN1');
  });

  it('node-postgres options (escaped space, --name=value) and statement_timeout config; the recorded application is the one set, the server sees the broker’s', async () => {
    const c = new pg.Client(
      t.pgConfig(await t.token({ build: 'build-startup-node' }), {
        options: `-c search_path=${SCHEMA} --lock-timeout=2s -c application_name=nightly\\ report`,
        statement_timeout: 4321,
      }),
    );
    await c.connect();
    try {
      const show = async (name: string) => (await c.query(`SHOW ${name}`)).rows[0][name] as string;
      expect(await show('search_path')).toBe(SCHEMA);
      expect(await show('lock_timeout')).toBe('2s');
      // Upstream, the broker's application_name wins (pg_stat_activity names the session and build); the client's is recorded.
      expect(await show('application_name')).toMatch(/^jit:s_[0-9a-z]{16}:build-startup-node$/);
      expect(await show('statement_timeout')).toBe('4321ms');
      expect((await c.query('SELECT name FROM jit_t_widgets')).rows).toEqual([{ name: `only in ${SCHEMA}` }]);
    } finally {
      await c.end();
    }
    expect(await endedSession('build-startup-node')).toMatchObject({ clientApplication: 'nightly report' });
  });

  it('a parameter of its own wins over the same setting in options, as on the server', async () => {
    const c = new pg.Client(t.pgConfig(await t.token(), { options: '-c statement_timeout=1000', statement_timeout: 2000 }));
    await c.connect();
    try {
      expect((await c.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('2s');
    } finally {
      await c.end();
    }
  });

  it('postgres.js connection: { search_path, application_name }', async () => {
    const sql = postgres({
      host: t.host,
      port: t.port,
      database: 'app',
      username: 'ci',
      password: await t.token({ build: 'build-startup-pgjs' }),
      ssl: { rejectUnauthorized: false },
      max: 1,
      connection: { search_path: SCHEMA, application_name: 'pgjs-startup' },
    });
    try {
      const [row] = await sql`SELECT current_setting('search_path') AS path, current_setting('application_name') AS app`;
      expect(row).toEqual({ path: SCHEMA, app: expect.stringMatching(/^jit:s_[0-9a-z]{16}:build-startup-pgjs$/) });
      expect(await sql`SELECT name FROM jit_t_widgets`).toEqual([{ name: `only in ${SCHEMA}` }]);
    } finally {
      await sql.end();
    }
    expect(await endedSession('build-startup-pgjs')).toMatchObject({ clientApplication: 'pgjs-startup' });
  });
});

describe('forbidden settings are refused at connect, named', () => {
  it('psql PGOPTIONS -c role=postgres', async () => {
    const r = await run('psql', ['-X', '-c', 'SELECT current_user'], { ...psqlEnv(t, await t.token()), PGOPTIONS: '-c role=postgres' });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/the setting role="postgres" \(options: -c role=postgres\) is not allowed through the broker \(as a SET it would be privilege/);
  });

  it.each([
    ['-c session_authorization=postgres', /setting session_authorization="postgres" \(options: -c session_authorization=postgres\) is not allowed/],
    ['--session-authorization=postgres', /setting session_authorization="postgres" \(options: --session-authorization=postgres\) is not allowed/],
    ['-cROLE=postgres', /setting ROLE="postgres" \(options: -cROLE=postgres\) is not allowed/],
    ['-c standard_conforming_strings=off', /setting standard_conforming_strings="off" .* is not allowed .*read quotes or backslashes/],
    ['-c client_encoding=SJIS', /setting client_encoding="SJIS" .* is not allowed/],
    ['-c log_statement=none', /setting log_statement="none" .* is not allowed .*as a SET it would be admin/],
    ['-c search_path=public -c session_replication_role=replica', /setting session_replication_role="replica" .* is not allowed/],
  ])('node-postgres options %s', async (options, message) => {
    const err = await loginError({ options });
    expect(err?.code).toBe('0A000');
    expect(err?.message).toMatch(message);
  });

  it('psql PGCLIENTENCODING=SJIS, and a role as a parameter of its own (postgres.js connection)', async () => {
    const r = await run('psql', ['-X', '-c', 'SELECT 1'], { ...psqlEnv(t, await t.token()), PGCLIENTENCODING: 'SJIS' });
    expect(r.stderr).toMatch(/the startup parameter client_encoding="SJIS" is not allowed through the broker \(as a SET it would be unknown/);
    const sql = postgres({
      host: t.host,
      port: t.port,
      database: 'app',
      username: 'ci',
      password: await t.token(),
      ssl: { rejectUnauthorized: false },
      max: 1,
      connection: { role: 'postgres' },
    });
    try {
      await expect(sql`SELECT current_user`).rejects.toThrow(/the startup parameter role="postgres" is not allowed through the broker/);
    } finally {
      await sql.end();
    }
  });

  it('an options switch that is not a setting, or a protocol parameter smuggled as one', async () => {
    expect(await loginError({ options: '-d 5' })).toMatchObject({ code: '0A000', message: expect.stringMatching(/the server switch "-d" is not relayed/) });
    expect(await loginError({ options: '-c search_path=public -F' })).toMatchObject({ message: expect.stringMatching(/"-F" is not relayed/) });
    expect(await loginError({ options: '-c options=-c\\ role=postgres' })).toMatchObject({
      code: '0A000',
      message: expect.stringMatching(/-c options=-c role=postgres is not a setting/),
    });
    expect(await loginError({ options: '-c user=postgres' })).toMatchObject({ message: expect.stringMatching(/-c user=postgres is not a setting/) });
  });

  it('a malformed options string', async () => {
    expect(await loginError({ options: '-c search_path' })).toMatchObject({ code: '42601', message: expect.stringMatching(/-c search_path has no value/) });
    expect(await loginError({ options: '-c statement_timeout=1 -c' })).toMatchObject({ code: '42601', message: expect.stringMatching(/-c at the end/) });
    expect(await loginError({ options: 'search_path=public' })).toMatchObject({
      code: '42601',
      message: expect.stringMatching(/"search_path=public" is not a switch/),
    });
    expect(await loginError({ options: '-c =x' })).toMatchObject({ code: '42601', message: expect.stringMatching(/-c =x names no setting/) });
  });

  it("a setting the server itself rejects reaches the client with the server's words", async () => {
    expect(await loginError({ options: '-c statement_timeout=soon' })).toMatchObject({
      code: '22023',
      message: expect.stringMatching(/refused a setting this connection asks for: invalid value for parameter "statement_timeout": "soon"/),
    });
    expect(await loginError({ options: '-c no_such_setting=1' })).toMatchObject({
      code: '42704',
      message: expect.stringMatching(/unrecognized configuration parameter "no_such_setting"/),
    });
  });
});
