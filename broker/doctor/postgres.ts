// `jit doctor` on a PostgreSQL target: connect with the broker's own account (the target URL's TLS mode, as the
// catalog does), read the server's version and the role's attributes and memberships, and with session_roles
// create, grant and drop a temporary login role.
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { pgRoleProblems, SERVER_ROLES } from '../engines/upstream-privileges.js';
import { type Finding, probeRoleName, SEE_LEAST_PRIVILEGE, type SessionRolesProbe } from './types.js';

interface RoleRow {
  rolname: string;
  rolsuper: boolean;
  rolcreaterole: boolean;
  rolcreatedb: boolean;
  rolreplication: boolean;
  rolbypassrls: boolean;
  member_of: string[];
}

const ROLE = `
SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
       coalesce((SELECT array_agg(b.rolname::text ORDER BY b.rolname) FROM pg_roles b
                  WHERE b.oid <> r.oid AND b.rolname <> 'pg_database_owner' AND pg_has_role(r.oid, b.oid, 'MEMBER')), '{}') AS member_of
  FROM pg_roles r WHERE r.rolname = current_user`;

/** Why the role is more than the target (and its session roles) needs; empty: it is not. */
export function pgDoctorProblems(r: RoleRow, sessionRoles: boolean): string[] {
  const problems = pgRoleProblems({
    name: r.rolname,
    superuser: r.rolsuper,
    // Creating a role per session needs CREATEROLE: then it is what session_roles needs, not more.
    createrole: r.rolcreaterole && !sessionRoles,
    bypassrls: r.rolbypassrls,
    replication: r.rolreplication,
    serverRoles: r.member_of.filter((m) => SERVER_ROLES.includes(m)),
  });
  if (r.rolsuper) return problems;
  if (r.rolcreatedb) problems.push('has CREATEDB');
  const predefined = r.member_of.filter((m) => m.startsWith('pg_') && !SERVER_ROLES.includes(m));
  if (predefined.length) problems.push(`is a member of ${predefined.join(', ')} (predefined roles reach beyond the target's tables)`);
  return problems;
}

function describe(r: RoleRow): string {
  const held = [
    r.rolsuper && 'SUPERUSER',
    r.rolcreaterole && 'CREATEROLE',
    r.rolcreatedb && 'CREATEDB',
    r.rolreplication && 'REPLICATION',
    r.rolbypassrls && 'BYPASSRLS',
  ].filter(Boolean);
  return `role "${r.rolname}": ${held.length ? held.join(', ') : 'no SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS'}; member of ${r.member_of.length ? r.member_of.join(', ') : 'no role'}`;
}

export async function doctorPostgres(url: string, sessionRoles: SessionRolesProbe | null, timeoutMs: number): Promise<Finding[]> {
  const { default: pgDriver } = await import('pg');
  const { clientConfig } = await import('../catalog/postgres.js');
  const config = { ...clientConfig(url, timeoutMs), application_name: 'jit doctor' };
  const c = new pgDriver.Client(config);
  c.on('error', () => {}); // a connection lost after the checks has nothing to tell anyone
  const started = Date.now();
  try {
    await c.connect();
  } catch (e) {
    return [{ check: 'reachable', status: 'FAIL', detail: `cannot log in to ${config.host}:${config.port} as ${config.user}: ${(e as Error).message}` }];
  }
  const out: Finding[] = [];
  try {
    const ms = Date.now() - started;
    const version = (await c.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?';
    out.push({
      check: 'reachable',
      status: 'ok',
      detail: `PostgreSQL ${version} at ${config.host}:${config.port}, database ${config.database}, as ${config.user} (${ms} ms)`,
      version,
    });
    const role = (await c.query<RoleRow>(ROLE)).rows[0];
    if (!role) out.push({ check: 'privileges', status: 'FAIL', detail: 'current_user is not in pg_roles' });
    else {
      const problems = pgDoctorProblems(role, sessionRoles !== null);
      out.push(
        problems.length
          ? { check: 'privileges', status: 'warn', detail: `the role "${role.rolname}" ${problems.join('; ')}: ${SEE_LEAST_PRIVILEGE} (${describe(role)})` }
          : { check: 'privileges', status: 'ok', detail: describe(role) },
      );
    }
    if (sessionRoles) out.push(await probe(c, sessionRoles));
  } catch (e) {
    out.push({ check: out.length ? 'privileges' : 'reachable', status: 'FAIL', detail: (e as Error).message });
  } finally {
    await c.end().catch(() => {});
  }
  return out;
}

/** Create a login role as the broker would for a session (valid one minute), grant it every group role, drop it. */
async function probe(c: pg.Client, s: SessionRolesProbe): Promise<Finding> {
  const name = probeRoleName(s.prefix, randomBytes(4).toString('hex'));
  const role = c.escapeIdentifier(name);
  const until = new Date(Date.now() + 60_000).toISOString();
  let created = false;
  let step = `create the login role ${name}`;
  try {
    await c.query(`CREATE ROLE ${role} LOGIN PASSWORD ${c.escapeLiteral(randomBytes(18).toString('base64url'))} VALID UNTIL ${c.escapeLiteral(until)}`);
    created = true;
    for (const g of s.roles) {
      step = `grant the role "${g}" to ${name}`;
      await c.query(`GRANT ${c.escapeIdentifier(g)} TO ${role}`);
    }
    step = `drop the role ${name}`;
    await c.query(`DROP ROLE ${role}`);
    created = false;
    return { check: 'session roles', status: 'ok', detail: `created ${name}${s.roles.length ? `, granted ${s.roles.join(', ')}` : ''} and dropped it` };
  } catch (e) {
    return { check: 'session roles', status: 'FAIL', detail: `cannot ${step}: ${(e as Error).message}${await dropLeft(c, created, role, name)}` };
  }
}

/** After a failed step: drop the role if it was created (what to do by hand if that fails too). */
async function dropLeft(c: pg.Client, created: boolean, role: string, name: string): Promise<string> {
  if (!created) return '';
  try {
    await c.query(`DROP ROLE ${role}`);
    return '';
  } catch (e) {
    return `; and ${name} could not be dropped (${(e as Error).message}): drop it by hand`;
  }
}
