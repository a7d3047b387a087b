// The engine-agnostic core: statement → classify → decide → record (write-ahead) → hold → answer the engine.
import type { ApprovalRequest, Approvals } from './approvals/index.js';
import { ResultSampler } from './audit/sampler.js';
import type { ResultRecorder, ResultSample, SampleLimits } from './audit/types.js';
import type { CatalogProvider } from './catalog/index.js';
import { SessionCatalog, type Refinement } from './catalog/session.js';
import { MysqlSessionState } from './session-mysql.js';
import { PostgresSessionState } from './session-postgres.js';
import { reviewSettings } from './policy/decide.js';
import type { Dialect, PolicyConfig } from './policy/index.js';
import { classify, decide } from './policy/index.js';
import { PolicyHolder } from './policy/holder.js';
import { identityTargets } from './identity/limits.js';
import type { Store } from './store/index.js';
import { newSessionId } from './store/ids.js';
import type { Estimator, SessionPort, UpstreamLogin } from './engines/engine.js';
import type { SessionRoleLease, SessionRoleProvider } from './engines/session-roles/index.js';
import type { RefusalReason, SessionMetrics } from './metrics/index.js';
import {
  SessionRefusedError,
  type Admission,
  type Classification,
  type ClientInfo,
  type Decision,
  type Identity,
  type StatementOutcome,
  type StatementRequest,
  type Target,
} from './types.js';

export { SessionRefusedError };

export interface SessionDeps {
  store: Store;
  /** This broker's `replica_id`, recorded on the session (a fleet). */
  replicaId?: string | null;
  /** The rules: a live holder (the store's newest version, switched without a restart) or fixed rules (version null). */
  policy: PolicyHolder | PolicyConfig;
  /**
   * Holds `review` statements until people decide them. Absent (tests, or nobody could ever decide:
   * no admin_token and no Slack): a `review` is refused, saying approvals are unavailable.
   */
  approvals?: Approvals | null;
  /** Bounds of the result sample kept per statement (`audit.sample_rows/sample_bytes`); null or absent: none kept. */
  sampling?: SampleLimits | null;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /**
   * Why this identity's token is revoked (`revoked: …`), or null: checked before every statement, so a
   * session its engine could not end at once (a revocation racing its login) runs nothing more.
   */
  revoked?: (identity: Identity) => string | null;
  /**
   * The targets' catalogs: calls, operators and views are judged by what the target says they are
   * (broker/catalog). Absent (unit tests): by name only, as the classifier sees them.
   */
  catalog?: CatalogProvider | null;
  /** Counts statements, refusals, logins and open sessions (GET /metrics); absent: nothing is counted. */
  metrics?: SessionMetrics | null;
  /** A target's session roles (`targets.<name>.session_roles`), or null: its sessions log in as the broker's own account. */
  sessionRoles?: ((target: Target) => SessionRoleProvider | null) | null;
}

/** One client session: what its engine may call is SessionPort (broker/engines/engine.ts). */
export class BrokerSession implements SessionPort {
  private closed = false;
  /** Aborted at close(): cancels the approval requests of this session still being made. */
  private readonly abort = new AbortController();
  /** `scope: session` approvals: statement text → the approval that lets it run again here. */
  private readonly approvedTexts = new Map<string, string>();
  private held = 0;
  /** The live policy: read once per statement decided. */
  private readonly policy: PolicyHolder;
  /** The policy version live when the session began (a refusal under a later one names it). */
  private readonly openedUnder: number | null;
  /** The engine's blast-radius estimator (each engine's estimate.ts), once its upstream connection is up. */
  private estimator: Estimator | null = null;
  private readonly catalog: SessionCatalog | null;
  /** MySQL: the server's version, settings, user variables and prepared statements, as the classifier needs them. */
  readonly mysql: MysqlSessionState | null;
  /** PostgreSQL: the prepared statements, so that `EXECUTE name` is judged by what it runs. */
  private readonly pg: PostgresSessionState | null;

  private constructor(
    private readonly deps: SessionDeps,
    readonly id: string,
    readonly identity: Identity,
    readonly target: Target,
    readonly client: ClientInfo,
    readonly upstream: UpstreamLogin,
    /** The session's database role, dropped at close(); null: the broker's own account. */
    private readonly role: SessionRoleLease | null,
  ) {
    this.policy = deps.policy instanceof PolicyHolder ? deps.policy : PolicyHolder.fixed(deps.policy);
    this.openedUnder = this.policy.current.version;
    this.catalog = deps.catalog ? new SessionCatalog(deps.catalog, target) : null;
    this.mysql = target.engine === 'mysql' ? new MysqlSessionState() : null;
    this.pg = target.engine === 'postgres' ? new PostgresSessionState() : null;
  }

  /** Record the session's start; throws (and the engine refuses the login) if the store cannot. */
  static async open(deps: SessionDeps, identity: Identity, target: Target, client: ClientInfo): Promise<BrokerSession> {
    // A token minted by an exchange for some targets logs in to those only.
    const limit = identityTargets(identity);
    if (limit && !limit.includes(target.name)) {
      const which = limit.length
        ? `limited to target${limit.length > 1 ? 's' : ''} ${limit.map((t) => `'${t}'`).join(', ')}`
        : 'limited by a malformed target claim';
      throw new SessionRefusedError('42501', `jit-broker: the token is ${which}; it cannot log in to '${target.name}'`, 'target_limit');
    }
    const revoked = deps.revoked?.(identity);
    if (revoked) throw new SessionRefusedError('28P01', `jit-broker: token refused: ${revoked}`, 'revoked');
    const roles = deps.sessionRoles?.(target) ?? null;
    const groups = roles?.groups(identity) ?? [];
    if (roles && !groups.length)
      throw new SessionRefusedError(
        '28000',
        `jit-broker: no session_roles grant of target "${target.name}" matches this token, and its default roles are none: the login is refused`,
        'session_role',
      );
    // With a session role, the id is chosen here: the role is named after it, and recorded with the session.
    const chosen = roles ? newSessionId() : undefined;
    const dbRole = roles && chosen ? roles.roleName(chosen) : null;
    const id = await deps.store.createSession({
      target: target.name,
      engine: target.engine,
      identity,
      client,
      startedAt: new Date(),
      replicaId: deps.replicaId ?? null,
      id: chosen,
      dbRole,
    });
    let role: SessionRoleLease | null = null;
    if (roles && dbRole) {
      try {
        role = await roles.create(dbRole, groups, identity);
      } catch (e) {
        // Never downgraded to the broker's own account: no role, no session.
        const message = `jit-broker could not create the session's database role on target "${target.name}": ${(e as Error).message}`;
        deps.log?.('session role could not be created', { session: id, target: target.name, role: dbRole, error: String(e) });
        await deps.store.endSession(id, `refused: ${message}`, new Date()).catch(() => {});
        throw new SessionRefusedError('28000', message, 'session_role');
      }
    }
    deps.metrics?.loginAccepted(target.engine);
    deps.metrics?.sessionOpened(target.name);
    const upstream: UpstreamLogin = role?.login ?? { url: target.upstream, role: null, noDatabase: false, setup: [] };
    return new BrokerSession(deps, id, identity, target, client, upstream, role);
  }

  private get dialect(): Dialect {
    return this.target.engine;
  }

  /**
   * Decide a statement and record it before the engine forwards it.
   * `prior` is the decision taken when the statement was prepared: an `execute` reuses it.
   */
  async admit(req: StatementRequest, prior?: Decision): Promise<Admission> {
    const revoked = this.deps.revoked?.(this.identity);
    // A prepared statement's decision is taken again when the catalog changed since. Not awaited unless it must
    // be (a catalog load): a pipeline's statements are decided within one turn, as they always were.
    const decided: Decision | Promise<Decision> = revoked
      ? {
          action: 'deny',
          ruleId: null,
          message: revoked,
          kinds: prior?.kinds ?? [...new Set(classify(this.dialect, req.sql).statements.flatMap((s) => s.kinds))],
        }
      : prior && !this.catalog?.outdated(prior) && !this.pg?.stale(prior) && !this.outdatedPolicy(prior)
        ? prior
        : this.decide(req);
    const decision = decided instanceof Promise ? await decided : decided;
    const approvals = decision.action === 'review' ? this.deps.approvals : null;
    // A statement under review is held at each execution, not at its preparation: that is when it runs.
    if (approvals && req.protocol === 'parse') {
      this.pg?.admitted(decision, req, null);
      return { ok: true, statementId: null, decision };
    }
    // Approved earlier in this session under a `scope: session` rule: runs without asking again.
    const covered = approvals && decision.review?.scope === 'session' ? this.approvedTexts.get(req.sql) : undefined;
    // A statement prepared and allowed is recorded at each execution, not at preparation: that is when it runs.
    const record = decision.action !== 'allow' || req.protocol !== 'parse';
    let statementId: number | null = null;
    if (record) {
      // Counted as recorded: an allowed statement at its executions, not at its preparation.
      this.deps.metrics?.statement(this.target.name, decision, decision.ruleId ?? (revoked ? 'broker:revoked' : 'default'));
      try {
        statementId = await this.deps.store.recordStatement({
          sessionId: this.id,
          sql: req.sql,
          protocol: req.protocol,
          kinds: decision.kinds,
          decision: decision.action,
          ruleId: decision.ruleId,
          message: decision.action === 'allow' ? null : covered ? `approved for this session (approval ${covered})` : decision.message,
          startedAt: new Date(),
          approvalId: covered ?? null,
          policyVersion: decision.policyVersion ?? null,
        });
      } catch (e) {
        this.deps.log?.('audit write failed', { session: this.id, error: String(e) });
        this.deps.metrics?.refused(this.target.name, 'audit');
        return {
          ok: false,
          statementId: null,
          decision,
          reason: 'audit',
          message: 'jit-broker could not record the statement in its audit log, so it was not run; try again, and tell the broker operator if it persists',
        };
      }
    }
    if (decision.action === 'allow' || covered) {
      this.catalog?.admitted(req.sql, decision.kinds);
      this.mysql?.admitted(decision, req, statementId);
      this.pg?.admitted(decision, req, statementId);
      return { ok: true, statementId, decision };
    }
    if (approvals) return this.hold(approvals, req, decision, statementId);
    // Always say which rule refused: a rule's own message may not name it. And which policy version, when it is not
    // the one the session began under: what was allowed a moment ago is refused because the policy changed.
    const named = [
      ...(decision.ruleId && !decision.message.includes(`'${decision.ruleId}'`) ? [`rule '${decision.ruleId}'`] : []),
      ...(typeof decision.policyVersion === 'number' && decision.policyVersion !== this.openedUnder
        ? [`policy version ${decision.policyVersion}, applied after this session began`]
        : []),
    ];
    const why = named.length ? `${decision.message} (${named.join('; ')})` : decision.message;
    this.deps.metrics?.refused(this.target.name, revoked ? 'revoked' : decision.action === 'review' ? 'no_approvers' : 'policy');
    const message =
      decision.action === 'review'
        ? `${why}; approvals are not available on this broker (it has neither admin_token nor slack configured), so it is refused`
        : why;
    return { ok: false, statementId, decision, reason: 'policy', message: `jit-broker: ${message}` };
  }

  /** Ask for approval and wait; other sessions (and this one's engine) are not blocked meanwhile. */
  private async hold(approvals: Approvals, req: StatementRequest, decision: Decision, statementId: number | null): Promise<Admission> {
    const refuse = (message: string, counted: RefusalReason, reason: 'policy' | 'audit' = 'policy'): Admission => {
      this.deps.metrics?.refused(this.target.name, counted);
      return { ok: false, statementId, decision, reason, message: `jit-broker: ${message}` };
    };
    if (this.closed) return refuse('the session ended before the statement could be submitted for approval', 'session_ended');
    let r: ApprovalRequest;
    this.held++;
    try {
      r = await approvals.request(
        {
          target: this.target.name,
          sessionId: this.id,
          statementId,
          identity: this.identity,
          sql: req.sql,
          kinds: decision.kinds,
          ruleId: decision.ruleId,
          policyVersion: decision.policyVersion ?? null,
          settings: decision.review ?? reviewSettings(undefined),
          // Asked now, while the statement waits unforwarded; added to the request when it comes (approvals/estimate.ts).
          estimate: this.estimator?.({ sql: req.sql, statements: classify(this.dialect, req.sql).statements }) ?? null,
        },
        { signal: this.abort.signal },
      );
    } catch (e) {
      this.deps.log?.('approval request could not be made', { session: this.id, statement: statementId, error: String(e) });
      return refuse(
        'could not record the approval request in its audit log, so the statement was not run; try again, and tell the broker operator if it persists',
        'audit',
        'audit',
      );
    } finally {
      this.held--;
    }
    const under = `approval request ${r.id}${decision.ruleId ? ` under rule '${decision.ruleId}'` : ''}`;
    switch (r.state) {
      case 'approved':
        // Approved after the client left: nobody is there to run it for.
        if (this.closed) return refuse(`the session ended while ${under} was pending`, 'session_ended');
        if (r.settings.scope === 'session') this.approvedTexts.set(req.sql, r.id);
        this.catalog?.admitted(req.sql, decision.kinds);
        this.mysql?.admitted(decision, req, statementId);
        this.pg?.admitted(decision, req, statementId);
        return { ok: true, statementId, decision };
      case 'denied':
        return refuse(`denied by ${r.decidedBy ?? 'an approver'}${r.reason ? ` (reason: ${r.reason})` : ''}; ${under}`, 'approval_denied');
      case 'expired':
        return refuse(`${r.reason ?? 'no decision in time'}; ${under} expired: run the statement again to ask again`, 'approval_expired');
      default:
        return refuse(`${under} was cancelled: ${r.reason ?? 'no reason given'}`, 'approval_cancelled');
    }
  }

  useEstimator(estimate: Estimator): void {
    this.estimator = estimate;
  }

  /** A recorder for one statement's result sample, within `audit.sample_rows/sample_bytes` (null: none kept). */
  recorder(): ResultRecorder | null {
    return this.deps.sampling ? new ResultSampler(this.deps.sampling) : null;
  }

  /** A decision taken under an older policy version than the live one (a prepared statement's): taken again. */
  private outdatedPolicy(prior: Decision): boolean {
    return prior.policyVersion !== undefined && prior.policyVersion !== this.policy.current.version;
  }

  /** Policy's decision under the live version, which it names. */
  private decidePolicy(c: Classification): Decision {
    const { policy, version } = this.policy.current;
    const d = decide(policy, this.identity, this.target.name, c);
    d.policyVersion = version;
    return d;
  }

  /**
   * Classify, refine against the target's catalog, and decide; the engine's `confine` check, given the
   * classified statements and policy's decision, turns a statement it must not run into a deny.
   */
  private decide(req: StatementRequest): Decision | Promise<Decision> {
    // MySQL: read against what the session has set (server version, sql_mode, variables, prepared statements).
    const my = this.mysql?.classify(req.sql);
    const raw = my ? my.classification : classify(this.dialect, req.sql);
    // PostgreSQL: an EXECUTE is what the session saw prepared under its name.
    const pg = this.pg?.substitute(raw);
    const c = pg ? pg.classification : raw;
    // The engine's own refusal overrides policy's decision (which it may read: a masking exemption).
    const confined = (d: Decision): Decision | null => {
      const outside = req.confine?.(c.statements, d);
      return outside ? { action: 'deny', ruleId: 'broker:confine', message: outside, kinds: [...new Set(c.statements.flatMap((s) => s.kinds))] } : null;
    };
    const catalog = this.catalog;
    if (!catalog) {
      const d = this.decidePolicy(c);
      const refused = confined(d);
      if (refused) return refused;
      this.mysql?.decided(d, my?.changes ?? null, false);
      this.pg?.decided(d, pg);
      return d;
    }
    const decideWith = ({ classification, snap }: Refinement): Decision => {
      const d = this.decidePolicy(classification);
      const refused = confined(d);
      if (refused) return refused;
      catalog.decided(d, snap);
      this.pg?.decided(d, pg);
      // A statement the catalog had something to say about reads a view or calls a function: it may set any variable.
      this.mysql?.decided(
        d,
        my?.changes ?? null,
        classification.statements.some((st, i) => st !== c.statements[i]),
      );
      return d;
    };
    // Synchronous when the catalog is at hand, as deciding was before it (see SessionCatalog.refine).
    const r = catalog.refine(c);
    return r instanceof Promise ? r.then(decideWith) : decideWith(r);
  }

  /**
   * PostgreSQL: the prepared-statement names an admitted decision's statements may define or forget (`null`: every
   * name) — SQL `PREPARE`, `DEALLOCATE`, `DISCARD ALL`; empty for anything else, and for other engines.
   */
  preparedNames(d: Decision): (string | null)[] {
    return this.pg?.touches(d) ?? [];
  }

  /** The engine saw the upstream ready for a query (PostgreSQL ReadyForQuery, with its transaction status). */
  ready(status: string): void {
    this.catalog?.ready(status);
  }

  /** Whether a statement of this session is waiting for approval. */
  get holding(): boolean {
    return this.held > 0;
  }

  /** Withdraws the approval requests this session waits on (a client's cancel): they end cancelled with `reason`. */
  async withdraw(reason: string): Promise<number> {
    return (await this.deps.approvals?.cancelSession(this.id, reason)) ?? 0;
  }

  /**
   * Record what happened upstream, with the sample of the result as the client saw it (after masking),
   * if one was taken. Never waits: written by the store's next group commit. A failure here is logged:
   * the statement has already run.
   */
  complete(statementId: number, outcome: StatementOutcome, sample?: ResultSample | null): void {
    this.catalog?.completed();
    this.mysql?.completed(statementId, outcome.error === null);
    this.pg?.completed(statementId, outcome.error === null);
    this.deps.store.completeStatement(statementId, outcome, sample ?? null).catch((e: unknown) => {
      this.deps.log?.('audit outcome write failed', { session: this.id, statement: statementId, error: String(e) });
    });
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.metrics?.sessionClosed(this.target.name);
    // A statement still waiting for approval is never run now: its request ends cancelled, with this reason.
    await this.deps.approvals?.cancelSession(this.id, reason).catch((e: unknown) => {
      this.deps.log?.('approval cancel failed', { session: this.id, error: String(e) });
    });
    this.abort.abort(reason); // and those still being recorded: request() cancels them once made
    try {
      await this.deps.store.endSession(this.id, reason, new Date());
    } catch (e) {
      this.deps.log?.('session end write failed', { session: this.id, error: String(e) });
    }
    await this.role?.release(); // its connections ended, and the role dropped
  }
}
