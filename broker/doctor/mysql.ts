// `jit doctor` on a MySQL/MariaDB target: connect with the broker's own account (mysql2, the target URL's TLS mode as
// the catalog reads it), read the server's version and SHOW GRANTS, and with session_roles create a user, grant it
// every group role and drop it.
import { randomBytes } from 'node:crypto';
import type mysql from 'mysql2/promise';
import { mysqlAccountProblems } from '../engines/upstream-privileges.js';
import { parseMysqlUrl, type MysqlTargetUrl } from '../engines/mysql/upstream.js';
import { type Finding, probeRoleName, SEE_LEAST_PRIVILEGE, type SessionRolesProbe } from './types.js';

/** The first column of every row. */
async function column(c: mysql.Connection, sql: string, timeoutMs: number): Promise<string[]> {
  const [rows] = await c.query({ sql, timeout: timeoutMs, rowsAsArray: true });
  return (rows as unknown[][]).map((r) => String(r[0] ?? ''));
}

export async function doctorMysql(url: string, sessionRoles: SessionRolesProbe | null, timeoutMs: number): Promise<Finding[]> {
  let u: MysqlTargetUrl;
  try {
    u = parseMysqlUrl(url);
  } catch (e) {
    return [{ check: 'reachable', status: 'FAIL', detail: (e as Error).message }];
  }
  const started = Date.now();
  let c: mysql.Connection;
  try {
    c = await (await import('../catalog/mysql.js')).connectMysql(u, timeoutMs);
  } catch (e) {
    return [{ check: 'reachable', status: 'FAIL', detail: `cannot log in to ${u.host}:${u.port} as ${u.user}: ${(e as Error).message}` }];
  }
  c.on('error', () => {}); // a connection lost after the checks has nothing to tell anyone
  const out: Finding[] = [];
  try {
    const ms = Date.now() - started;
    const [version = '?'] = await column(c, 'SELECT VERSION()', timeoutMs);
    const server = /mariadb/i.test(version) ? 'MariaDB' : 'MySQL';
    out.push({
      check: 'reachable',
      status: 'ok',
      detail: `${server} ${version} at ${u.host}:${u.port}, database ${u.database}, as ${u.user} (${ms} ms)`,
      version,
    });
    const [user = '?'] = await column(c, 'SELECT CURRENT_USER()', timeoutMs);
    const grants = await column(c, 'SHOW GRANTS FOR CURRENT_USER', timeoutMs);
    const problems = mysqlAccountProblems(grants, sessionRoles !== null);
    const held = grants.map((g) => g.replace(/\s+IDENTIFIED BY .*$/i, '')).join('; ');
    out.push(
      problems.length
        ? { check: 'privileges', status: 'warn', detail: `the account ${user} ${problems.join('; ')}: ${SEE_LEAST_PRIVILEGE} (${held})` }
        : { check: 'privileges', status: 'ok', detail: `the account ${user}: ${held}` },
    );
    if (sessionRoles) out.push(await probe(c, sessionRoles, timeoutMs));
  } catch (e) {
    out.push({ check: out.length ? 'privileges' : 'reachable', status: 'FAIL', detail: (e as Error).message });
  } finally {
    await c.end().catch(() => c.destroy());
  }
  return out;
}

/** Create a user as the broker would for a session, grant it every group role, drop it. */
async function probe(c: mysql.Connection, s: SessionRolesProbe, timeoutMs: number): Promise<Finding> {
  const name = probeRoleName(s.prefix, randomBytes(4).toString('hex'));
  const user = `${c.escape(name)}@'%'`;
  const run = (sql: string) => c.query({ sql, timeout: timeoutMs });
  let created = false;
  let step = `create the user ${name}`;
  try {
    await run(`CREATE USER ${user} IDENTIFIED BY ${c.escape(randomBytes(18).toString('base64url'))}`);
    created = true;
    for (const g of s.roles) {
      step = `grant the role ${g} to ${name}`;
      await run(`GRANT ${c.escapeId(g)} TO ${user}`);
    }
    step = `drop the user ${name}`;
    await run(`DROP USER ${user}`);
    created = false;
    return { check: 'session roles', status: 'ok', detail: `created ${name}${s.roles.length ? `, granted ${s.roles.join(', ')}` : ''} and dropped it` };
  } catch (e) {
    let left = '';
    if (created) await run(`DROP USER ${user}`).catch((d: unknown) => (left = `; and ${name} could not be dropped (${(d as Error).message}): drop it by hand`));
    return { check: 'session roles', status: 'FAIL', detail: `cannot ${step}: ${(e as Error).message}${left}` };
  }
}
