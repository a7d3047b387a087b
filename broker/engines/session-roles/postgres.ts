// Session roles on PostgreSQL. The broker's account needs CREATEROLE (not superuser): it creates a LOGIN role per
// session (INHERIT, a SCRAM secret of a random password, VALID UNTIL the token's expiry), a member of the matched
// group roles only, in one implicit transaction (a grant that fails leaves no role behind). At the session's end it
// makes itself a member of the role (so that it may signal its backends and take over what it owns), terminates
// the role's backends, reassigns what the role owns in this database to itself, drops what is left (privileges
// granted to it), and drops the role.
import type { Target } from '../../types.js';
import type { UpstreamLogin } from '../engine.js';
import { NAME_LIMIT, scramSecret, withLogin } from './names.js';
import { PgAdmin } from './pg-admin.js';
import type { SessionRoleEngine } from './index.js';

/** A name as a quoted identifier. */
export const pgIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
/** A string constant (standard_conforming_strings, on by default since 9.1: backslashes are literal). */
export const pgLiteral = (text: string): string => `'${text.replace(/'/g, "''")}'`;

export function createRoleSql(role: string, secret: string, groups: readonly string[], until: Date): string {
  return [
    `CREATE ROLE ${pgIdent(role)} LOGIN INHERIT PASSWORD ${pgLiteral(secret)} VALID UNTIL ${pgLiteral(until.toISOString())}`,
    `GRANT ${groups.map(pgIdent).join(', ')} TO ${pgIdent(role)}`,
  ].join(';\n');
}

/** Run once the role is known to exist; `waitMs`: how long to wait for each backend to exit. */
export function dropRoleSql(role: string, waitMs = 5000): string {
  const r = pgIdent(role);
  return [
    `GRANT ${r} TO CURRENT_USER`,
    `SELECT pg_terminate_backend(pid, ${waitMs}) FROM pg_stat_activity WHERE usename = ${pgLiteral(role)} AND pid <> pg_backend_pid()`,
    `REASSIGN OWNED BY ${r} TO CURRENT_USER`,
    `DROP OWNED BY ${r}`,
    `DROP ROLE ${r}`,
  ].join(';\n');
}

export class PostgresSessionRoles implements SessionRoleEngine {
  readonly nameLimit = NAME_LIMIT.postgres;
  private readonly admin: PgAdmin;

  constructor(private readonly target: Target) {
    this.admin = new PgAdmin(() => target.upstream);
  }

  async create(role: string, password: string, groups: readonly string[], until: Date): Promise<UpstreamLogin> {
    await this.admin.query(createRoleSql(role, await scramSecret(password), groups, until));
    return { url: withLogin(this.target.upstream, role, password), role, noDatabase: false, setup: [] };
  }

  async drop(role: string): Promise<void> {
    const [exists] = await this.admin.query(`SELECT 1 FROM pg_roles WHERE rolname = ${pgLiteral(role)}`);
    if (exists?.length) await this.admin.query(dropRoleSql(role));
  }

  async list(prefix: string): Promise<string[]> {
    const [rows] = await this.admin.query(`SELECT rolname FROM pg_roles WHERE starts_with(rolname, ${pgLiteral(prefix)}) ORDER BY rolname`);
    return (rows ?? []).map((r) => r[0] ?? '').filter(Boolean);
  }

  close(): Promise<void> {
    return this.admin.close();
  }
}
