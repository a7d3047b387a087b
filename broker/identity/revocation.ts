// Revocation: a build (every token of it, parents and exchanged children) or one token (by `jti`, and
// the tokens exchanged from it) is refused from then on, and the open sessions it covers are ended.
// Revocations are kept in the store (they survive restarts) and cached here: the per-login check
// (the verifier's isRevoked hook) and the per-statement check (session.ts) are in-memory lookups.
//
// One service, three clients: `jit revoke` and POST /api/revocations (admin token, `trusted`), and the
// Slack bot's `/jit revoke build-123` (a Slack user: must be one of `revokers`, see revoke()).
import { isListedApprover } from '../approvals/approvers.js';
import type { Revocation, RevocationFilter, Store } from '../store/index.js';
import type { Identity } from '../types.js';
import { identityAncestors } from './limits.js';

/** A connection with a live session, as an engine exposes it (see PostgresEngine.connections). */
export interface LiveSession {
  readonly identity: Identity | null;
  readonly sessionId: string | null;
  /** Ends the connection, telling the client `message`; resolves once the session's end is recorded with it. */
  end(message: string): Promise<void>;
}

export interface RevokeInput {
  /** A build id (as recorded on sessions: `jit sessions`), or null/absent. */
  build?: string | null;
  /** A token id, or null/absent. At least one of build and jti. */
  jti?: string | null;
  /** Why: recorded, and shown to the clients whose sessions end. */
  reason: string;
  /** Who: a Slack user id, `cli:<name>`, `api:<name>`. */
  by: string;
  /** The person's e-mail when known (matched against e-mails in `revokers`). */
  email?: string | null;
  /** The user groups of `revokers` the bot verified the person belongs to ("@dba-oncall" / "S…"). */
  groups?: string[];
  /** Authenticated with the admin token (CLI, HTTP API): `revokers` does not apply. */
  trusted?: boolean;
}

export type RevokeResult =
  | { ok: true; revocation: Revocation /** Ids of the sessions ended by it. */; ended: string[] }
  | { ok: false; code: 'invalid' | 'not_revoker'; message: string };

export interface RevocationOptions {
  store: Store;
  /**
   * Who may revoke through the bot: Slack user ids, e-mails, user groups (as a rule's `approvers`).
   * Empty: anyone who may use the bot. The admin token may always revoke.
   */
  revokers: readonly string[];
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** How long the cache trusts itself before catching up with revocations other brokers wrote. Default 5s. */
  refreshMs?: number;
  /**
   * Brokers sharing one store (broker/fleet): a revocation made here is announced, and one announced by
   * another replica is read at once and ends this broker's sessions it covers.
   */
  fleet?: { changed(): void; onChanged(listener: () => void): () => void } | null;
}

const MAX_REASON = 2000;

export class RevocationService {
  readonly #store: Store;
  readonly #log: NonNullable<RevocationOptions['log']>;
  readonly #refreshMs: number;
  readonly #builds = new Map<string, Revocation>();
  readonly #jtis = new Map<string, Revocation>();
  readonly #sources = new Set<() => Iterable<LiveSession>>();
  #lastId = 0;
  #refreshedAt = 0;
  #refreshing: Promise<void> | null = null;
  readonly revokers: readonly string[];

  readonly #fleet: RevocationOptions['fleet'];

  private constructor(opts: RevocationOptions) {
    this.#store = opts.store;
    this.revokers = [...opts.revokers];
    this.#log = opts.log ?? (() => {});
    this.#refreshMs = opts.refreshMs ?? 5000;
    this.#fleet = opts.fleet ?? null;
    this.#fleet?.onChanged(() => {
      this.#remote().catch((e: unknown) => this.#log('could not apply a revocation made on another broker', { error: String(e) }));
    });
  }

  /** Another replica revoked: read what is new, and end this broker's sessions it covers. */
  async #remote(): Promise<void> {
    const before = this.#lastId;
    await this.#refresh();
    const fresh = [...new Set([...this.#builds.values(), ...this.#jtis.values()])].filter((r) => r.id > before);
    for (const r of fresh) await this.#endSessions(r);
  }

  /** Loads every recorded revocation into the cache. */
  static async open(opts: RevocationOptions): Promise<RevocationService> {
    const s = new RevocationService(opts);
    await s.#refresh();
    return s;
  }

  /** Adds an engine's live sessions to those a revocation ends; returns a function that removes them. */
  track(source: () => Iterable<LiveSession>): () => void {
    this.#sources.add(source);
    return () => void this.#sources.delete(source);
  }

  /**
   * The verifier's isRevoked hook: a description of the revocation covering the token, or false.
   * Catches up with the store at most every refreshMs (revocations written by another broker).
   */
  async isRevoked(id: { jti: string | null; build: string | null; ancestors?: readonly string[] }): Promise<string | false> {
    if (Date.now() - this.#refreshedAt >= this.#refreshMs) await this.#refresh();
    const r = this.#find(id.build, [id.jti, ...(id.ancestors ?? [])]);
    return r ? describe(r) : false;
  }

  /** The revocation covering a verified identity (cache only: cheap enough for every statement), or null. */
  revocationOf(identity: Identity): Revocation | null {
    return this.#find(identity.build, [identity.tokenId, ...identityAncestors(identity)]);
  }

  /** Why a session of this identity must stop (`revoked: …`), or null: the per-statement check. */
  revokedReason(identity: Identity): string | null {
    const r = this.revocationOf(identity);
    return r ? `revoked: ${describe(r)}` : null;
  }

  /**
   * Revokes a build and/or a token: recorded in the store (refused when that fails), cached, and every
   * open session it covers is ended with `revoked: …` (recorded as the session's end reason).
   * Refused (ok: false) when neither build nor jti is given, the reason is empty, or — unless `trusted` —
   * `by` is not one of `revokers`.
   */
  async revoke(input: RevokeInput): Promise<RevokeResult> {
    const build = input.build?.trim() || null;
    const jti = input.jti?.trim() || null;
    const reason = input.reason.trim();
    if (!build && !jti) return { ok: false, code: 'invalid', message: 'name a build or a token id (jti) to revoke' };
    if (!reason) return { ok: false, code: 'invalid', message: 'give a reason: it is recorded and shown to the sessions it ends' };
    if (reason.length > MAX_REASON) return { ok: false, code: 'invalid', message: `the reason is longer than ${MAX_REASON} characters` };
    if (!input.trusted && !isListedApprover(this.revokers, { by: input.by, email: input.email ?? null, groups: input.groups })) {
      return { ok: false, code: 'not_revoker', message: `you are not allowed to revoke (revokers: ${this.revokers.join(', ')}); nothing was revoked` };
    }
    const revocation = await this.#store.addRevocation({ build, jti, reason, revokedBy: input.by, revokedAt: new Date() });
    this.#add(revocation);
    this.#fleet?.changed();
    this.#log('revoked', { build, jti, by: input.by, reason });
    const ended = await this.#endSessions(revocation);
    return { ok: true, revocation, ended };
  }

  /** Recorded revocations (from the store, not the cache). */
  list(filter?: RevocationFilter): Promise<Revocation[]> {
    return this.#store.listRevocations(filter);
  }

  async #endSessions(r: Revocation): Promise<string[]> {
    const message = `jit-broker: revoked: ${describe(r)}`;
    const ending: Promise<string | null>[] = [];
    for (const source of this.#sources) {
      for (const live of source()) {
        const who = live.identity;
        if (!who || !covers(r, who.build, [who.tokenId, ...identityAncestors(who)])) continue;
        const id = live.sessionId;
        ending.push(
          live.end(message).then(
            () => id,
            (e: unknown) => {
              this.#log('could not end a revoked session', { error: String(e) });
              return null;
            },
          ),
        );
      }
    }
    return (await Promise.all(ending)).filter((x): x is string => x !== null);
  }

  #find(build: string | null, jtis: readonly (string | null)[]): Revocation | null {
    if (build) {
      const r = this.#builds.get(build);
      if (r) return r;
    }
    for (const j of jtis) {
      if (!j) continue;
      const r = this.#jtis.get(j);
      if (r) return r;
    }
    return null;
  }

  #add(r: Revocation): void {
    if (r.build && !this.#builds.has(r.build)) this.#builds.set(r.build, r);
    if (r.jti && !this.#jtis.has(r.jti)) this.#jtis.set(r.jti, r);
    if (r.id > this.#lastId) this.#lastId = r.id;
  }

  /** Reads revocations recorded since the last read; concurrent callers share one read. */
  #refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const started = Date.now();
        for (const r of await this.#store.listRevocations({ afterId: this.#lastId })) this.#add(r);
        this.#refreshedAt = started;
      } finally {
        this.#refreshing = null;
      }
    })();
    return this.#refreshing;
  }
}

function covers(r: Revocation, build: string | null, jtis: readonly (string | null)[]): boolean {
  return (r.build !== null && build === r.build) || (r.jti !== null && jtis.includes(r.jti));
}

/** `build 'acme/app/42/1' was revoked by cli:alice: leaked token` */
function describe(r: Revocation): string {
  const what = r.build && r.jti ? `build '${r.build}' and token ${r.jti}` : r.build ? `build '${r.build}'` : `token ${r.jti}`;
  return `${what} ${r.build && r.jti ? 'were' : 'was'} revoked by ${r.revokedBy}: ${r.reason}`;
}
