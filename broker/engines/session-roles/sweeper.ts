// Drops the session roles a crash left behind: at start and every minute, the roles on a target's server named
// prefix + a session id are looked up in the store. Replicas of a fleet share the store, so a role belongs to an
// open session of any of them; what is dropped is a role
//   - whose session the store has ended (a replica that died: its lease's sweep ended its sessions; the only broker
//     on its store: ended at its restart), or
//   - whose session the store does not know, once this sweeper has seen it so for `sweep_grace`: a replica records a
//     session before it creates its role, but the store may take a moment to have that record (the audit journal's
//     indexer), so a login in progress elsewhere is given the grace period.
// Roles of this process's own live sessions are never touched, nor any name that is not prefix + a session id.
import type { SessionFilter, SessionSummary } from '../../store/types.js';
import { sessionOfRole } from './names.js';
import type { SessionRoles } from './index.js';

/** What the sweeper reads of the store. */
export interface SweepStore {
  listSessions(filter: SessionFilter): Promise<Pick<SessionSummary, 'id'>[]>;
  getSession(id: string): Promise<Pick<SessionSummary, 'id' | 'endedAt'> | null>;
}

export const SWEEP_EVERY_MS = 60_000;

type Log = (msg: string, fields?: Record<string, unknown>) => void;

export class RoleSweeper {
  /** Roles whose session the store did not know, and when this sweeper first saw them so. */
  private readonly unknownSince = new Map<string, number>();
  private running: Promise<string[]> | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly roles: SessionRoles,
    private readonly store: SweepStore,
    private readonly log: Log,
  ) {}

  /** Sweep now, then every minute. */
  start(everyMs = SWEEP_EVERY_MS): void {
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One sweep (a sweep still running is waited for instead); the roles it dropped. Never rejects. */
  sweep(now = Date.now()): Promise<string[]> {
    this.running ??= this.once(now)
      .catch((e: unknown) => {
        this.log('session role sweep failed', { target: this.roles.target.name, error: String(e) });
        return [];
      })
      .finally(() => (this.running = null));
    return this.running;
  }

  private async once(now: number): Promise<string[]> {
    const { prefix, sweep_grace: grace } = this.roles.config;
    const candidates = new Map<string, string>(); // role → session id
    for (const role of await this.roles.engine.list(prefix)) {
      const session = sessionOfRole(prefix, role);
      if (session && !this.roles.live.has(role)) candidates.set(role, session);
    }
    for (const role of this.unknownSince.keys()) if (!candidates.has(role)) this.unknownSince.delete(role);
    if (!candidates.size) return [];
    const open = new Set((await this.store.listSessions({ open: true })).map((s) => s.id));
    const dropped: string[] = [];
    for (const [role, id] of candidates) {
      if (open.has(id)) {
        this.unknownSince.delete(role);
        continue;
      }
      const s = await this.store.getSession(id);
      if (s && !s.endedAt) continue; // opened since the listing
      if (!s) {
        const since = this.unknownSince.get(role) ?? now;
        this.unknownSince.set(role, since);
        if (now - since < grace * 1000) continue;
      }
      if (this.roles.live.has(role)) continue; // a session of this process began meanwhile (its id cannot be reused, but be sure)
      try {
        await this.roles.engine.drop(role);
        this.unknownSince.delete(role);
        dropped.push(role);
      } catch (e) {
        this.log('the sweeper could not drop a session role', { target: this.roles.target.name, role, error: String(e) });
      }
    }
    if (dropped.length) this.log('dropped session roles left behind', { target: this.roles.target.name, roles: dropped });
    return dropped;
  }
}
