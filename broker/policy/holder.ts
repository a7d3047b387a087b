// The live policy: which version of the rules decides the next statement. Every session reads the holder's
// `current` (one field read per statement); a new version is swapped in whole, so a statement is decided by
// one version or the other, never a mix. `watchPolicy` keeps a holder on the newest version in the store:
// it polls the store's newest version number (a cheap query) and, in a fleet, also listens for the notice
// another replica sends when it applies one. No I/O of its own: the store and the channel are handed in.
import type { PolicyConfig } from './decide.js';

/** A policy and the stored version it is (null: rules not from the store, e.g. tests). */
export interface ActivePolicy {
  readonly version: number | null;
  readonly policy: PolicyConfig;
  /** Who applied it and when, for people (`/jit policy`, logs); absent for rules not from the store. */
  readonly author?: string;
  readonly appliedAt?: Date;
}

export type PolicyListener = (next: ActivePolicy, previous: ActivePolicy) => void;

export class PolicyHolder {
  private active: ActivePolicy;
  private readonly listeners = new Set<PolicyListener>();

  constructor(initial: ActivePolicy) {
    this.active = initial;
  }

  /** Rules that never change (tests, `jit policy check`): version null. */
  static fixed(policy: PolicyConfig): PolicyHolder {
    return new PolicyHolder({ version: null, policy });
  }

  /** The policy deciding statements now. */
  get current(): ActivePolicy {
    return this.active;
  }

  /**
   * Switches to `next` when it is a newer version than the current one (an older one arriving late, from a poll
   * that raced a notice, is ignored); returns whether it switched.
   */
  set(next: ActivePolicy): boolean {
    const now = this.active;
    if (next.version !== null && now.version !== null && next.version <= now.version) return false;
    this.active = next;
    for (const l of this.listeners) {
      try {
        l(next, now);
      } catch {
        // a listener's failure is its own
      }
    }
    return true;
  }

  /** Called after each switch; returns the unsubscribe function. */
  onChange(listener: PolicyListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** A stored version as the watcher reads it (Store.getPolicyVersion's shape, without importing the store). */
export interface StoredPolicy {
  version: number;
  rules: { rules: unknown[]; default: string };
  author: string;
  appliedAt: Date;
}

export interface PolicyWatchOptions {
  holder: PolicyHolder;
  store: { activePolicyVersion(): Promise<number | null>; getPolicyVersion(version?: number): Promise<StoredPolicy | null> };
  /** Validates a stored document into rules (the config's own schema); throws when it is not valid. */
  toPolicy: (doc: StoredPolicy['rules']) => PolicyConfig;
  /** How often the store's newest version is read. Default 500 ms. */
  intervalMs?: number;
  /** A fleet's channel: notices of a version applied on another replica (payload: the version number). */
  channel?: { listen(topic: string, listener: (payload: string) => void): () => void } | null;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** The fleet channel's topic for a new policy version (payload: its number). */
export const POLICY_TOPIC = 'jit_policy';

/** An active policy from a stored version, validated. */
export function activeFrom(v: StoredPolicy, toPolicy: PolicyWatchOptions['toPolicy']): ActivePolicy {
  return { version: v.version, policy: toPolicy(v.rules), author: v.author, appliedAt: v.appliedAt };
}

/**
 * Keeps `holder` on the store's newest version: polls every `intervalMs`, and reads at once on a fleet notice.
 * A version that does not validate is logged and skipped (the current one stays: fail closed on what is known).
 * Returns `stop` and `check` (read the store now: after this broker stored a version itself).
 */
export function watchPolicy(o: PolicyWatchOptions): { stop(): void; check(): Promise<void> } {
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  let rejected: number | null = null;
  const read = async (): Promise<void> => {
    const newest = await o.store.activePolicyVersion();
    const at = o.holder.current.version;
    if (newest === null || (at !== null && newest <= at) || newest === rejected) return;
    const v = await o.store.getPolicyVersion(newest);
    if (!v || stopped) return;
    let next: ActivePolicy;
    try {
      next = activeFrom(v, o.toPolicy);
    } catch (e) {
      rejected = v.version;
      o.log?.('policy: a stored version is not valid; the current one stays', { version: v.version, current: at, error: String(e) });
      return;
    }
    o.holder.set(next);
  };
  /** One read at a time; a request while one runs reads once more after it. */
  const check = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = read()
      .catch((e: unknown) => o.log?.('policy: cannot read the newest version from the store', { error: String(e) }))
      .finally(() => {
        running = null;
        if (again && !stopped) {
          again = false;
          void check();
        }
      });
    return running;
  };
  const timer = setInterval(() => void check(), o.intervalMs ?? 500);
  timer.unref();
  const unlisten = o.channel?.listen(POLICY_TOPIC, () => void check()) ?? (() => {});
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      unlisten();
    },
    check,
  };
}
