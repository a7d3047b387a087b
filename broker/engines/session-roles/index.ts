// A database role per session (`targets.<name>.session_roles`, docs/session-roles.md): at login the broker creates,
// through its own upstream account, a login role named after the session with a random password, a member of the
// group roles the identity's first matching grant names (policy/session-grants.ts); the engine then logs in as that
// role; at the session's end its connections are ended and the role dropped. The sweeper (sweeper.ts) drops what a
// crash left behind. Each engine's statements are in postgres.ts and mysql.ts.
import type { SessionRolesConfig } from '../../config.js';
import { sessionGroupRoles } from '../../policy/session-grants.js';
import type { Identity, Target } from '../../types.js';
import type { UpstreamLogin } from '../engine.js';
import { newRolePassword, sessionRoleName } from './names.js';
import { RoleSweeper, type SweepStore } from './sweeper.js';

/** What each engine does with session roles, through the broker's own account. */
export interface SessionRoleEngine {
  /** The longest role name the server takes. */
  readonly nameLimit: number;
  /** Creates the login role, a member of `groups` only (valid until `until` where the server can say so); how to log in as it. */
  create(role: string, password: string, groups: readonly string[], until: Date): Promise<UpstreamLogin>;
  /** Ends the role's connections and drops it (nothing to do when it is gone); `login`: its credentials, when known. */
  drop(role: string, login?: UpstreamLogin): Promise<void>;
  /** The roles (users) on the server whose names start with `prefix`. */
  list(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

/** A session's database role while the session lasts. */
export interface SessionRoleLease {
  login: UpstreamLogin;
  /** Ends its connections and drops it (once; never rejects: a failure is logged, and the sweeper tries again). */
  release(): Promise<void>;
}

/** What the session core asks of a target's session roles (BrokerSession.open). */
export interface SessionRoleProvider {
  /** The group roles of a session of this identity; empty: the login is refused. */
  groups(identity: Identity): string[];
  /** The role a session of this id logs in as. */
  roleName(sessionId: string): string;
  /** Creates the role; rejects with the server's own message when it cannot. */
  create(role: string, groups: readonly string[], identity: Identity): Promise<SessionRoleLease>;
}

type Log = (msg: string, fields?: Record<string, unknown>) => void;

/** One target's session roles. */
export class SessionRoles implements SessionRoleProvider {
  /** Roles of sessions open in this process, from before their creation until they are dropped: never swept. */
  readonly live = new Set<string>();

  constructor(
    readonly target: Target,
    readonly config: SessionRolesConfig,
    readonly engine: SessionRoleEngine,
    private readonly log: Log,
  ) {}

  groups(identity: Identity): string[] {
    return sessionGroupRoles(this.config, identity).roles;
  }

  roleName(sessionId: string): string {
    return sessionRoleName(this.config.prefix, sessionId, this.engine.nameLimit);
  }

  async create(role: string, groups: readonly string[], identity: Identity): Promise<SessionRoleLease> {
    this.live.add(role);
    let login: UpstreamLogin;
    try {
      login = await this.engine.create(role, newRolePassword(), groups, identity.expiresAt);
    } catch (e) {
      this.live.delete(role);
      throw e;
    }
    let released: Promise<void> | null = null;
    return {
      login,
      release: () => {
        released ??= this.engine
          .drop(role, login)
          .catch((e: unknown) =>
            this.log('a session role could not be dropped; the sweeper will try again', { target: this.target.name, role, error: String(e) }),
          )
          .finally(() => this.live.delete(role));
        return released;
      },
    };
  }

  close(): Promise<void> {
    return this.engine.close();
  }
}

/** A target's session roles, with its engine's statements. */
export async function sessionRolesFor(target: Target, config: SessionRolesConfig, log: Log): Promise<SessionRoles> {
  const engine =
    target.engine === 'postgres'
      ? new (await import('./postgres.js')).PostgresSessionRoles(target)
      : new (await import('./mysql.js')).MysqlSessionRoles(target);
  return new SessionRoles(target, config, engine, log);
}

/** The session roles of every target that has `session_roles`, each with its sweeper started; null when none has. */
export async function startSessionRoles(
  targets: Iterable<Target>,
  configOf: (target: string) => SessionRolesConfig | undefined,
  store: SweepStore,
  log: Log,
): Promise<{ provider: (t: Target) => SessionRoles | null; close(): Promise<void> } | null> {
  const started: { roles: SessionRoles; sweeper: RoleSweeper }[] = [];
  for (const t of targets) {
    const config = configOf(t.name);
    if (!config) continue;
    const roles = await sessionRolesFor(t, config, log);
    const sweeper = new RoleSweeper(roles, store, log);
    sweeper.start();
    started.push({ roles, sweeper });
  }
  if (!started.length) return null;
  const byName = new Map(started.map((s) => [s.roles.target.name, s.roles]));
  return {
    provider: (t) => byName.get(t.name) ?? null,
    async close() {
      for (const s of started) {
        await s.sweeper.stop();
        await s.roles.close();
      }
    },
  };
}
