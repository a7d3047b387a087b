// Masking for one Postgres session: result columns resolved to their origins through the target's catalog,
// each column's masker or detectors decided once per described result, rows rewritten by datarow.ts.
// Policy (which rule, which masker) is in broker/masking; this file knows RowDescriptions and COPY.
import { parseSync } from '../../policy/pg-parser.js';
import type { Detection, Masker, SessionMasking } from '../../masking/index.js';
import type { PgCatalog } from './catalog.js';
import type { RowPlan } from './datarow.js';
import { carriesText, type ValueKind } from './pg-values.js';
import type { RowDescription } from './row-description.js';

/** A column's masking, whatever format its values come in. */
export interface ResolvedColumn {
  masker: Masker | null;
  detect: boolean;
  kind: ValueKind;
}

/** A result's columns (a RowDescription) and, once resolved, what masking does to each. */
export interface Described {
  desc: RowDescription;
  resolved: ResolvedColumn[] | null;
  /** When it was resolved, and in which catalog epoch (see PgMasking.stale). */
  at?: number;
  epoch?: number;
  /** Plans by format codes (a prepared statement runs with the same formats again and again). */
  plans?: Map<string, RowPlan | null>;
}

const NULL_MASKER: Masker = () => null;

/** The parts of libpg-query's CopyStmt this file reads. */
interface CopyStmt {
  is_from?: boolean;
  is_program?: boolean;
  filename?: string;
  options?: { DefElem?: { defname?: string; arg?: { String?: { sval?: string } } } }[];
}

export class PgMasking {
  /**
   * DDL ran in this session's open transaction: the catalog connection cannot see what it changed (a view
   * redefined, a column renamed), so until the transaction ends no column origin is trusted — with column
   * rules, columns with a table origin are sent as NULL.
   */
  private distrust = false;
  private ddl = false;

  constructor(
    readonly rules: SessionMasking,
    private readonly catalog: PgCatalog,
    private readonly log: (msg: string, fields?: Record<string, unknown>) => void,
  ) {}

  /**
   * Why the broker refuses the statement itself, or undefined. COPY … TO STDOUT carries no column origins:
   * with column (or derived) rules it is refused; with detectors only, its text/CSV rows go through the
   * detectors, and binary COPY (which they cannot read) is refused.
   */
  refusal(sql: string): string | undefined {
    if (!/copy/i.test(sql)) return undefined;
    let stmts: { stmt?: { CopyStmt?: CopyStmt } }[];
    try {
      // libpg-query's own types are generated for every node; this reads three fields of one.
      stmts = (parseSync(sql) as unknown as { stmts?: { stmt?: { CopyStmt?: CopyStmt } }[] }).stmts ?? [];
    } catch {
      return undefined; // not SQL the server would run either
    }
    for (const s of stmts) {
      const c = s.stmt?.CopyStmt;
      if (!c || c.is_from || c.is_program || c.filename) continue; // only COPY … TO STDOUT answers the client
      if (this.rules.hasColumnRules)
        return 'COPY … TO STDOUT is refused: masking rules apply to this session, and COPY output says nothing about which column a value comes from; use SELECT, whose result is masked';
      const binary = c.options?.some((o) => o.DefElem?.defname === 'format' && o.DefElem.arg?.String?.sval?.toLowerCase() === 'binary');
      if (binary && this.rules.detection)
        return 'binary COPY … TO STDOUT is refused: masking detectors apply to this session and cannot read binary COPY data; use FORMAT text or csv';
    }
    return undefined;
  }

  /** Detectors for COPY … TO STDOUT rows, or null when COPY output cannot be masked (it was refused). */
  copyDetection(binary: boolean): Detection | null | 'refuse' {
    if (this.rules.hasColumnRules || (binary && this.rules.detection)) return 'refuse';
    return this.rules.detection;
  }

  /** A statement of these kinds was admitted: DDL makes the catalog's answers doubtful (see `distrust`). */
  admitted(kinds: readonly string[]): void {
    if (!kinds.includes('ddl')) return;
    this.ddl = this.distrust = true;
    this.catalog.invalidate();
  }

  /**
   * Whether a kept description (a prepared statement's) may no longer say where its columns come from: DDL
   * went through the broker since (a view redefined under the same OID), or it is older than the catalog
   * cache. The relay then Describes the portal again before executing it.
   */
  stale(d: Described): boolean {
    if (d.resolved === null || d.desc.length === 0) return false;
    return d.epoch !== this.catalog.epoch || Date.now() - (d.at ?? 0) > this.catalog.maxAgeMs;
  }

  /** ReadyForQuery: once no transaction is open, DDL this session ran is committed (or gone): forget the cache. */
  ready(status: string): void {
    if (status !== 'I' || !this.ddl) return;
    this.catalog.invalidate();
    this.ddl = this.distrust = false;
  }

  /** Resolve a result's columns: null when done at once (cached), else a promise (one catalog round-trip). */
  resolve(d: Described): Promise<void> | null {
    if (d.resolved) return null;
    if (this.distrust || this.catalog.covers(d.desc)) {
      this.settle(d, this.distrust);
      return null;
    }
    return this.catalog.resolve(d.desc).then(
      () => this.settle(d, false),
      (e: unknown) => {
        this.log('masking: the catalog lookup failed; columns with a table origin are sent as NULL', { error: String(e) });
        this.settle(d, true);
      },
    );
  }

  private settle(d: Described, failed: boolean): void {
    d.resolved = this.columns(d.desc, failed);
    d.at = Date.now();
    d.epoch = this.catalog.epoch;
  }

  private columns(desc: RowDescription, failed: boolean): ResolvedColumn[] {
    const r = this.rules;
    return desc.map((c) => {
      const kind = this.catalog.kind(c.typeOid);
      let masker: Masker | null = null;
      let lost = c.tableOid === 0;
      if (!lost) {
        const t = failed ? undefined : this.catalog.table(c.tableOid);
        if (!t) {
          // Lookup failed: fail closed. Not found: a table only the session sees (uncommitted), origin lost.
          if (failed && r.hasColumnRules) masker = NULL_MASKER;
          else lost = true;
        } else if (c.attnum === 0) {
          // A whole-row value (`SELECT c FROM customers c`): NULL when any of the table's columns is masked.
          for (const attnum of t.columns.keys()) {
            if (r.columnMasker(this.catalog.origins(c.tableOid, attnum) ?? [])) masker = NULL_MASKER;
          }
        } else if (c.attnum > 0) {
          masker = r.columnMasker(this.catalog.origins(c.tableOid, c.attnum) ?? []);
        }
      }
      if (!masker && lost && r.derived && carriesText(kind)) masker = r.derived;
      return { masker, detect: !masker && r.detection !== null && carriesText(kind), kind };
    });
  }

  /** What to do with the rows of a resolved result, in the formats of `desc`; null: nothing to mask. */
  plan(d: Described, desc: RowDescription): RowPlan | null {
    const resolved = d.resolved;
    if (!resolved) throw new Error('masking: a result was used before its columns were resolved');
    const key = desc.map((c) => c.format).join('');
    const cached = d.plans?.get(key);
    if (cached !== undefined) return cached;
    let any = false;
    const columns = resolved.map((rc, i) => {
      if (!rc.masker && !rc.detect) return null;
      any = true;
      return { masker: rc.masker, detect: rc.detect, kind: rc.kind, binary: desc[i]?.format === 1 };
    });
    const plan = any ? { columns, detection: this.rules.detection, kinds: this.catalog.kind } : null;
    (d.plans ??= new Map()).set(key, plan);
    return plan;
  }
}
