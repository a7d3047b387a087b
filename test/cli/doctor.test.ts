// `jit doctor` as a user runs it (the CLI as a process) against the machine's PostgreSQL and MariaDB: a superuser
// account warns, a least-privileged one is ok, an unreachable target FAILs (exit 1), a password file is checked,
// and with session_roles a temporary login role is created with the group roles and dropped again (FAIL when a
// group role does not exist). --target picks one target, --json is for machines.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mysqlAccountProblems } from '../../broker/engines/upstream-privileges.js';
import { sessionRolesOf } from '../../broker/doctor/types.js';
import { direct, run, UPSTREAM } from '../support/broker.js';
import { directMy, MYSQL_UPSTREAM } from '../support/mysql.js';

const pid = process.pid;
const PG_PLAIN = `jit_doc_${pid}`;
const PG_ADMIN = `jit_docsr_${pid}`;
const PG_GROUP = `jit_docg_${pid}`;
const MY_PLAIN = `jit_doc_${pid}`;
const MY_ADMIN = `jit_docsr_${pid}`;
const MY_GROUP = `jit_docg_${pid}`;
const MY_PASSWORD = `doc-${pid}`;
const withUser = (url: string, user: string, password = '') => {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
};

const dir = mkdtempSync(join(tmpdir(), `jit-doctor-${pid}-`));
let n = 0;
/** `jit doctor` with a config of these targets (YAML lines under `targets:`). */
async function doctor(targets: string, ...args: string[]) {
  const cfg = join(dir, `jit-${++n}.yaml`);
  writeFileSync(cfg, `targets:\n${targets}\n`);
  return run(process.execPath, ['bin/jit.js', '--config', cfg, 'doctor', ...args]);
}
/** The output's line for one target's check: `status  target  check  detail`. */
const line = (stdout: string, target: string, check: string) =>
  stdout.split('\n').find((l) => new RegExp(`^\\S+\\s+${target}\\s+${check}\\s`).test(l)) ?? `(no ${check} line for ${target} in:\n${stdout})`;

beforeAll(async () => {
  await direct(async (c) => {
    for (const r of [PG_PLAIN, PG_ADMIN, PG_GROUP]) await c.query(`DROP ROLE IF EXISTS ${r}`);
    await c.query(`CREATE ROLE ${PG_PLAIN} LOGIN`);
    await c.query(`CREATE ROLE ${PG_ADMIN} LOGIN CREATEROLE`);
    await c.query(`CREATE ROLE ${PG_GROUP} NOLOGIN`);
    for (const r of [PG_PLAIN, PG_ADMIN]) await c.query(`GRANT CONNECT ON DATABASE test TO ${r}`);
  });
  await directMy(async (c) => {
    for (const u of [MY_PLAIN, MY_ADMIN]) await c.query(`DROP USER IF EXISTS '${u}'@'127.0.0.1'`);
    await c.query(`DROP ROLE IF EXISTS ${MY_GROUP}`);
    await c.query(`CREATE USER '${MY_PLAIN}'@'127.0.0.1' IDENTIFIED BY '${MY_PASSWORD}'`);
    await c.query(`GRANT SELECT ON test.* TO '${MY_PLAIN}'@'127.0.0.1'`);
    await c.query(`CREATE USER '${MY_ADMIN}'@'127.0.0.1' IDENTIFIED BY '${MY_PASSWORD}'`);
    await c.query(`GRANT SELECT ON test.* TO '${MY_ADMIN}'@'127.0.0.1'`);
    await c.query(`GRANT CREATE USER ON *.* TO '${MY_ADMIN}'@'127.0.0.1'`);
    await c.query(`CREATE ROLE ${MY_GROUP}`);
    await c.query(`GRANT SELECT ON test.* TO ${MY_GROUP}`);
    await c.query(`GRANT ${MY_GROUP} TO '${MY_ADMIN}'@'127.0.0.1' WITH ADMIN OPTION`);
  });
});
afterAll(async () => {
  await direct(async (c) => {
    for (const r of [PG_PLAIN, PG_ADMIN]) {
      await c.query(`DROP OWNED BY ${r}`);
      await c.query(`DROP ROLE ${r}`);
    }
    await c.query(`DROP ROLE ${PG_GROUP}`);
  });
  await directMy(async (c) => {
    for (const u of [MY_PLAIN, MY_ADMIN]) await c.query(`DROP USER IF EXISTS '${u}'@'127.0.0.1'`);
    await c.query(`DROP ROLE IF EXISTS ${MY_GROUP}`);
  });
  rmSync(dir, { recursive: true, force: true });
});

describe('jit doctor', () => {
  it('PostgreSQL: the superuser warns, a least-privileged role is ok, an unreachable target FAILs with exit 1', async () => {
    const r = await doctor(
      [
        `  su: { engine: postgres, upstream: "${UPSTREAM}" }`,
        `  lp: { engine: postgres, upstream: "${withUser(UPSTREAM, PG_PLAIN)}" }`,
        '  down: { engine: postgres, upstream: "postgres://nobody@127.0.0.1:1/test" }',
      ].join('\n'),
    );
    expect(r.code).toBe(1);
    expect(line(r.stdout, 'su', 'reachable')).toMatch(
      /^ok\s+su\s+reachable\s+PostgreSQL \d+\.\d+.* at 127\.0\.0\.1:5432, database test, as postgres \(\d+ ms\)$/,
    );
    expect(line(r.stdout, 'su', 'privileges')).toMatch(/^warn\s+su\s+privileges\s+the role "postgres" is a superuser: see docs\/operations\.md/);
    expect(line(r.stdout, 'lp', 'reachable')).toMatch(/^ok\s+lp\s+reachable\s+PostgreSQL /);
    expect(line(r.stdout, 'lp', 'privileges')).toMatch(
      new RegExp(`^ok\\s+lp\\s+privileges\\s+role "${PG_PLAIN}": no SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS; member of no role$`),
    );
    expect(line(r.stdout, 'down', 'reachable')).toMatch(/^FAIL\s+down\s+reachable\s+cannot log in to 127\.0\.0\.1:1 as nobody: .*ECONNREFUSED/);
    expect(r.stdout).not.toMatch(/down\s+privileges/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('3 targets: 3 ok, 1 warn, 1 FAIL');
  });

  it('--target checks one target: exit 0 when nothing FAILs (warnings included); an unknown name is an error', async () => {
    const targets = [
      `  su: { engine: postgres, upstream: "${UPSTREAM}" }`,
      '  down: { engine: postgres, upstream: "postgres://nobody@127.0.0.1:1/test" }',
    ].join('\n');
    const r = await doctor(targets, '--target', 'su');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('down');
    const bad = await doctor(targets, '--target', 'nope');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("no target 'nope' in the config (targets: su, down)");
  });

  it('MariaDB: root warns of its global privileges; a user granted on one database is ok; --json', async () => {
    const r = await doctor(
      [
        `  root: { engine: mysql, upstream: "${MYSQL_UPSTREAM}" }`,
        `  lp: { engine: mysql, upstream: "${withUser(MYSQL_UPSTREAM, MY_PLAIN, MY_PASSWORD)}" }`,
      ].join('\n'),
      '--json',
    );
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      ok: boolean;
      targets: { target: string; engine: string; findings: { check: string; status: string; detail: string; version?: string }[] }[];
    };
    expect(out.ok).toBe(true);
    const [root, lp] = out.targets;
    expect(root).toMatchObject({ target: 'root', engine: 'mysql' });
    expect(root!.findings[0]).toMatchObject({ check: 'reachable', status: 'ok', version: expect.stringMatching(/MariaDB/) });
    expect(root!.findings[1]).toMatchObject({
      check: 'privileges',
      status: 'warn',
      detail: expect.stringContaining('holds global privileges (ALL PRIVILEGES ON *.*)'),
    });
    expect(lp!.findings[1]).toMatchObject({
      check: 'privileges',
      status: 'ok',
      detail: expect.stringContaining(`GRANT SELECT ON \`test\`.* TO \`${MY_PLAIN}\``),
    });
    expect(lp!.findings[1]!.detail).not.toMatch(/IDENTIFIED BY|PASSWORD/);
  });

  it('a password file: readable is ok and used to log in; missing FAILs and goes no further', async () => {
    const file = join(dir, 'my-password');
    writeFileSync(file, `${MY_PASSWORD}\n`);
    const lp = withUser(MYSQL_UPSTREAM, MY_PLAIN);
    const r = await doctor(
      [
        `  good: { engine: mysql, upstream: "${lp}", upstream_password_file: ${JSON.stringify(file)} }`,
        `  gone: { engine: mysql, upstream: "${lp}", upstream_password_file: ${JSON.stringify(join(dir, 'absent'))} }`,
      ].join('\n'),
    );
    expect(r.code).toBe(1);
    expect(line(r.stdout, 'good', 'password file')).toMatch(/^ok\s+good\s+password file\s+\S+my-password is readable$/);
    expect(line(r.stdout, 'good', 'reachable')).toMatch(/^ok\s+good\s+reachable\s+MariaDB/);
    expect(line(r.stdout, 'gone', 'password file')).toMatch(/^FAIL\s+gone\s+password file\s+cannot read the password file \S+absent: no such file$/);
    expect(r.stdout).not.toMatch(/gone\s+reachable/);
  });

  const pgRolesLeft = () => direct(async (c) => (await c.query(`SELECT rolname FROM pg_roles WHERE rolname LIKE 'jit\\_doctor\\_%'`)).rows);

  it('PostgreSQL session_roles: a role with CREATEROLE creates, grants and drops a session role (CREATEROLE is then no warning)', async () => {
    const before = await pgRolesLeft();
    const r = await doctor(`  app: { engine: postgres, upstream: "${withUser(UPSTREAM, PG_ADMIN)}", session_roles: { default: [${PG_GROUP}] } }`);
    expect(r.code).toBe(0);
    expect(line(r.stdout, 'app', 'privileges')).toMatch(new RegExp(`^ok\\s+app\\s+privileges\\s+role "${PG_ADMIN}": CREATEROLE; member of no role$`));
    expect(line(r.stdout, 'app', 'session roles')).toMatch(
      new RegExp(`^ok\\s+app\\s+session roles\\s+created jit_doctor_[0-9a-f]{8}, granted ${PG_GROUP} and dropped it$`),
    );
    expect(await pgRolesLeft()).toEqual(before);
    // Without session_roles, the same CREATEROLE is more than the target needs.
    const plain = await doctor(`  app: { engine: postgres, upstream: "${withUser(UPSTREAM, PG_ADMIN)}" }`);
    expect(line(plain.stdout, 'app', 'privileges')).toMatch(new RegExp(`^warn\\s+app\\s+privileges\\s+the role "${PG_ADMIN}" has CREATEROLE: `));
  });

  it('PostgreSQL session_roles: a group role that does not exist FAILs (exit 1), and the probe role is dropped', async () => {
    const before = await pgRolesLeft();
    const r = await doctor(
      `  app: { engine: postgres, upstream: "${withUser(UPSTREAM, PG_ADMIN)}", session_roles: { prefix: jit_, default: [${PG_GROUP}], grants: [{ scopes: [read], roles: [jit_missing_${pid}] }] } }`,
    );
    expect(r.code).toBe(1);
    expect(line(r.stdout, 'app', 'session roles')).toMatch(
      new RegExp(
        `^FAIL\\s+app\\s+session roles\\s+cannot grant the role "jit_missing_${pid}" to jit_doctor_[0-9a-f]{8}: role "jit_missing_${pid}" does not exist$`,
      ),
    );
    expect(await pgRolesLeft()).toEqual(before);
  });

  it('MariaDB session_roles: CREATE USER and the group role WITH ADMIN OPTION create, grant and drop a user; a missing role FAILs', async () => {
    const up = withUser(MYSQL_UPSTREAM, MY_ADMIN, MY_PASSWORD);
    const r = await doctor(`  shop: { engine: mysql, upstream: "${up}", session_roles: { default: [${MY_GROUP}] } }`);
    expect(r.code).toBe(0);
    expect(line(r.stdout, 'shop', 'privileges')).toMatch(/^ok\s+shop\s+privileges\s+/);
    expect(line(r.stdout, 'shop', 'session roles')).toMatch(
      new RegExp(`^ok\\s+shop\\s+session roles\\s+created jit_doctor_[0-9a-f]{8}, granted ${MY_GROUP} and dropped it$`),
    );
    const bad = await doctor(`  shop: { engine: mysql, upstream: "${up}", session_roles: { default: [${MY_GROUP}, jit_missing_${pid}] } }`);
    expect(bad.code).toBe(1);
    expect(line(bad.stdout, 'shop', 'session roles')).toMatch(
      new RegExp(`^FAIL\\s+shop\\s+session roles\\s+cannot grant the role jit_missing_${pid} to jit_doctor_[0-9a-f]{8}: `),
    );
    const left = await directMy(async (c) => (await c.query("SELECT User FROM mysql.user WHERE User LIKE 'jit\\_doctor\\_%'"))[0] as unknown[]);
    expect(left).toEqual([]);
  });
});

describe('what the doctor reads', () => {
  it("session_roles, tolerantly: default and every grant's roles, once each; the prefix defaults to jit_", () => {
    expect(sessionRolesOf({ engine: 'postgres' })).toBeNull();
    expect(sessionRolesOf({ session_roles: { default: ['r'], grants: [{ scopes: ['read'], roles: ['a', 'r'] }, { roles: 'x' }, null] } })).toEqual({
      prefix: 'jit_',
      roles: ['r', 'a'],
    });
    expect(sessionRolesOf({ session_roles: { prefix: 'ci_' } })).toEqual({ prefix: 'ci_', roles: [] });
  });

  it('MySQL grants: CREATE USER and ROLE_ADMIN on *.* are what session_roles needs, anything more still warns', () => {
    const grants = ['GRANT CREATE USER ON *.* TO `b`@`%`', 'GRANT SELECT ON `app`.* TO `b`@`%`', 'GRANT `g` TO `b`@`%` WITH ADMIN OPTION'];
    expect(mysqlAccountProblems(grants, false)).toEqual(['holds global privileges (CREATE USER ON *.*)']);
    expect(mysqlAccountProblems(grants, true)).toEqual([]);
    expect(mysqlAccountProblems(['GRANT CREATE USER, SUPER ON *.* TO `b`@`%` WITH GRANT OPTION'], true)).toEqual([
      'holds global privileges (SUPER ON *.*)',
      'may grant its privileges to others (WITH GRANT OPTION)',
    ]);
  });
});
