// The store as the broker sees it once the journal is in front: a session's start and end and every
// statement's record and outcome are appended to the journal (one write per turn, no transaction, no
// UPDATE) and reach the store through the indexer; everything else goes to the store as before. A read
// first waits for the indexer to reach what this broker has written, so a caller never sees a stale view
// of its own writes (`jit session ID` of a session that just ended shows all of it).
import type { ApprovalFilter, ApprovalRequest } from '../../approvals/types.js';
import type { ResultSample, StatementOutcome } from '../../types.js';
import { newSessionId } from '../../store/ids.js';
import { sessionValues } from '../../store/session-rows.js';
import type {
  ApprovalExpectation,
  ReplicaBeat,
  NewRefusedLogin,
  NewRevocation,
  NewSession,
  NewStatement,
  NewPolicyVersion,
  RefusedLoginFilter,
  RevocationFilter,
  SessionFilter,
  Store,
  TokenUse,
} from '../../store/types.js';
import type { JournalEvent, JournalPosition } from './format.js';
import type { IndexerHandle } from './thread.js';
import type { JournalWriter } from './writer.js';

/** Statement ids reserved from the store at a time. */
const ID_BLOCK = 4096;

/** Statement ids in blocks reserved from the store (Store.reserveStatementIds): numbered before they reach it. */
class StatementIds {
  /** The block in use first, then the one fetched ahead. */
  private blocks: { next: number; end: number }[] = [];
  private refill: Promise<unknown> | null = null;
  private error: unknown = null;

  constructor(private readonly store: Store) {}

  async init(): Promise<void> {
    await this.fetch();
    if (this.error) throw this.error;
  }

  /** An id, at once while the blocks last; the next block is fetched when a quarter of one is left. */
  take(): number | Promise<number> {
    while (this.blocks.length && this.blocks[0]!.next >= this.blocks[0]!.end) this.blocks.shift();
    const left = this.blocks.reduce((n, b) => n + b.end - b.next, 0);
    if (left < ID_BLOCK / 4 && !this.refill) this.refill = this.fetch().finally(() => (this.refill = null));
    const b = this.blocks[0];
    if (b) return b.next++;
    return this.refill!.then(() => {
      if (!this.blocks.length) throw new Error(`audit journal: could not reserve statement ids: ${String(this.error)}`);
      return this.take();
    });
  }

  /** Never rejects: a failure is kept in `error` (a statement that finds no id is then refused). */
  private async fetch(): Promise<void> {
    try {
      const first = await this.store.reserveStatementIds(ID_BLOCK);
      this.blocks.push({ next: first, end: first + ID_BLOCK });
      this.error = null;
    } catch (e) {
      this.error = e;
    }
  }
}

export interface JournaledStoreOptions {
  /** Longest a read waits for the indexer before answering from what the store has. Default 5 s. */
  readWaitMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class JournaledStore implements Store {
  /** Next seq per open session of this broker (sessions are only ever recorded by the process holding them). */
  private readonly seqs = new Map<string, number>();
  private readonly ids: StatementIds;

  constructor(
    readonly inner: Store,
    readonly writer: JournalWriter,
    private readonly indexer: IndexerHandle,
    private readonly opts: JournaledStoreOptions = {},
  ) {
    this.ids = new StatementIds(inner);
  }

  async init(): Promise<void> {
    await this.ids.init();
  }

  /** Where the indexer last reported the store has reached (null before its first report): with writer.position, its lag. */
  get indexed(): JournalPosition | null {
    return this.indexer.position;
  }

  /** Waits until the store has everything this broker wrote so far (bounded: then answers with what it has). */
  async synced(): Promise<void> {
    await this.writer.flush();
    const pos: JournalPosition = this.writer.position;
    const reached = await this.indexer.reach(pos, this.opts.readWaitMs ?? 5000);
    if (!reached) this.opts.log?.('audit journal: the indexer is behind; answering from what the store has', { position: pos });
  }

  private append(e: JournalEvent, urgent = true): Promise<void> {
    this.indexer.written?.();
    return this.writer.append(e, urgent);
  }

  async createSession(s: NewSession): Promise<string> {
    const id = s.id ?? newSessionId();
    await this.append({ t: 'open', ...sessionValues(id, s), startedAt: s.startedAt.getTime() });
    this.seqs.set(id, 0);
    return id;
  }

  async endSession(id: string, reason: string, at: Date = new Date()): Promise<void> {
    if (!this.seqs.delete(id)) return this.inner.endSession(id, reason, at); // not one of this broker's open sessions
    await this.append({ t: 'end', id, reason, at: at.getTime() });
  }

  async endOpenSessions(reason: string, replicaId?: string): Promise<number> {
    await this.synced();
    return this.inner.endOpenSessions(reason, replicaId);
  }

  /** Resolves once the record is in the journal: the statement may then run. A gap in seq is a record that failed. */
  recordStatement(s: NewStatement): Promise<number> {
    const seq = this.seqs.get(s.sessionId);
    if (seq === undefined) return Promise.reject(new Error(`audit journal: cannot record a statement for session ${s.sessionId}, which is not open here`));
    this.seqs.set(s.sessionId, seq + 1);
    const id = this.ids.take();
    const write = (id: number) =>
      this.append({
        t: 'stmt',
        id,
        sessionId: s.sessionId,
        seq: seq + 1,
        sql: s.sql,
        protocol: s.protocol,
        kinds: s.kinds,
        decision: s.decision,
        ruleId: s.ruleId,
        message: s.message,
        startedAt: s.startedAt.getTime(),
        approvalId: s.approvalId ?? null,
        policyVersion: s.policyVersion ?? null,
      }).then(() => id);
    return typeof id === 'number' ? write(id) : id.then(write);
  }

  completeStatement(id: number, o: StatementOutcome, sample?: ResultSample | null): Promise<void> {
    // Not write-ahead (the statement has run): it shares the next statement record's write.
    return this.append({ t: 'done', id, durationMs: o.durationMs, tag: o.tag, rows: o.rows, error: o.error, sample: sample ?? null }, false);
  }

  // Reads, and writes that refer to recorded sessions and statements: once the store has them.
  async listSessions(f: SessionFilter) {
    await this.synced();
    return this.inner.listSessions(f);
  }
  async getSession(id: string) {
    await this.synced();
    return this.inner.getSession(id);
  }
  async listStatements(sessionId: string) {
    await this.synced();
    return this.inner.listStatements(sessionId);
  }
  async recordSample(statementId: number, sample: ResultSample) {
    await this.synced();
    return this.inner.recordSample(statementId, sample);
  }
  async getSample(statementId: number) {
    await this.synced();
    return this.inner.getSample(statementId);
  }
  async listSamples(sessionId: string) {
    await this.synced();
    return this.inner.listSamples(sessionId);
  }
  async createApproval(r: ApprovalRequest) {
    await this.synced();
    return this.inner.createApproval(r);
  }
  async setTokenUseSession(jti: string, sessionId: string) {
    await this.synced();
    return this.inner.setTokenUseSession(jti, sessionId);
  }

  // The rest is the store's own.
  updateApproval = (r: ApprovalRequest, expect?: ApprovalExpectation) => this.inner.updateApproval(r, expect);
  getApproval = (id: string) => this.inner.getApproval(id);
  listApprovals = (f: ApprovalFilter) => this.inner.listApprovals(f);
  cancelPendingApprovals = (reason: string, except?: readonly string[], replicaId?: string) => this.inner.cancelPendingApprovals(reason, except, replicaId);
  heartbeat = (r: ReplicaBeat) => this.inner.heartbeat(r);
  listReplicas = () => this.inner.listReplicas();
  removeReplica = (id: string) => this.inner.removeReplica(id);
  addRevocation = (r: NewRevocation) => this.inner.addRevocation(r);
  listRevocations = (f?: RevocationFilter) => this.inner.listRevocations(f);
  claimTokenUse = (u: TokenUse) => this.inner.claimTokenUse(u);
  pruneTokenUses = (before: Date) => this.inner.pruneTokenUses(before);
  recordRefusedLogin = (r: NewRefusedLogin) => this.inner.recordRefusedLogin(r);
  listRefusedLogins = (f?: RefusedLoginFilter) => this.inner.listRefusedLogins(f);
  pruneRefusedLogins = (before: Date) => this.inner.pruneRefusedLogins(before);
  ingest = (journal: string, events: readonly JournalEvent[], position: JournalPosition) => this.inner.ingest(journal, events, position);
  journalPosition = (journal: string) => this.inner.journalPosition(journal);
  reserveStatementIds = (count: number) => this.inner.reserveStatementIds(count);
  addPolicyVersion = (v: NewPolicyVersion) => this.inner.addPolicyVersion(v);
  getPolicyVersion = (version?: number) => this.inner.getPolicyVersion(version);
  listPolicyVersions = () => this.inner.listPolicyVersions();
  activePolicyVersion = () => this.inner.activePolicyVersion();
  ping = () => this.inner.ping();

  /** Writes what is queued, lets the indexer apply all of it, then closes the store. */
  async close(): Promise<void> {
    await this.writer.close().catch((e: unknown) => this.opts.log?.('audit journal: close failed', { error: String(e) }));
    await this.indexer.close();
    await this.inner.close();
  }
}
