// The engine-agnostic core: statement → classify → decide → record (write-ahead) → answer the engine.
import type { Dialect, PolicyConfig } from './policy/index.js';
import { classify, decide } from './policy/index.js';
import type { Store } from './store/index.js';
import type { Admission, ClientInfo, Decision, Identity, StatementOutcome, StatementRequest, Target } from './types.js';

export interface SessionDeps {
  store: Store;
  policy: PolicyConfig;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class BrokerSession {
  private closed = false;

  private constructor(
    private readonly deps: SessionDeps,
    readonly id: string,
    readonly identity: Identity,
    readonly target: Target,
    readonly client: ClientInfo,
  ) {}

  /** Record the session's start; throws (and the engine refuses the login) if the store cannot. */
  static async open(deps: SessionDeps, identity: Identity, target: Target, client: ClientInfo): Promise<BrokerSession> {
    const id = await deps.store.createSession({ target: target.name, engine: target.engine, identity, client, startedAt: new Date() });
    return new BrokerSession(deps, id, identity, target, client);
  }

  private get dialect(): Dialect {
    return this.target.engine;
  }

  /**
   * Decide a statement and record it before the engine forwards it.
   * `prior` is the decision taken when the statement was prepared: an `execute` reuses it.
   */
  async admit(req: StatementRequest, prior?: Decision): Promise<Admission> {
    const decision = prior ?? decide(this.deps.policy, this.identity, this.target.name, classify(this.dialect, req.sql));
    // A statement prepared and allowed is recorded at each execution, not at preparation: that is when it runs.
    const record = decision.action !== 'allow' || req.protocol !== 'parse';
    let statementId: number | null = null;
    if (record) {
      try {
        statementId = await this.deps.store.recordStatement({
          sessionId: this.id,
          sql: req.sql,
          protocol: req.protocol,
          kinds: decision.kinds,
          decision: decision.action,
          ruleId: decision.ruleId,
          message: decision.action === 'allow' ? null : decision.message,
          startedAt: new Date(),
        });
      } catch (e) {
        this.deps.log?.('audit write failed', { session: this.id, error: String(e) });
        return {
          ok: false,
          statementId: null,
          decision,
          reason: 'audit',
          message: 'jit-broker could not record the statement in its audit log, so it was not run; try again, and tell the broker operator if it persists',
        };
      }
    }
    if (decision.action === 'allow') return { ok: true, statementId, decision };
    // Always say which rule refused: a rule's own message may not name it.
    const why = decision.ruleId && !decision.message.includes(`'${decision.ruleId}'`) ? `${decision.message} (rule '${decision.ruleId}')` : decision.message;
    const message = decision.action === 'review' ? `${why}; approvals are not available on this broker, so it is refused` : why;
    return { ok: false, statementId, decision, reason: 'policy', message: `jit-broker: ${message}` };
  }

  /** Record what happened upstream. A failure here is logged: the statement has already run. */
  complete(statementId: number, outcome: StatementOutcome): void {
    this.deps.store.completeStatement(statementId, outcome).catch((e: unknown) => {
      this.deps.log?.('audit outcome write failed', { session: this.id, statement: statementId, error: String(e) });
    });
  }

  async close(reason: string): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.deps.store.endSession(this.id, reason, new Date());
    } catch (e) {
      this.deps.log?.('session end write failed', { session: this.id, error: String(e) });
    }
  }
}
