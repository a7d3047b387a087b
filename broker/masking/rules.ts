// Masking rules → what to mask for one session. Engine-agnostic: engines resolve where a result column
// comes from (a ColumnOrigin) and ask which masker applies; detectors work on any text.
import { claimMatches, globMatch } from '../policy/glob.js';
import type { Identity } from '../types.js';
import { builtinDetector, Detection, regexDetector, type Detector, type DetectorUse } from './detectors.js';
import { loadHashKey, masker, type Masker, type MaskerName } from './maskers.js';

/** Where a result column's values come from: a table's (or view's) column. */
export interface ColumnOrigin {
  schema?: string | null;
  table: string;
  column: string;
}

/** One rule of the `masking:` block (see config.ts for the schema). */
export interface MaskRuleConfig {
  id?: string;
  /** `table.column` or `schema.table.column` globs. */
  columns?: string[];
  /** Detector names: built-in (card, email, ssn) or configured under `detectors`. */
  detect?: string[];
  /** Result columns computed by an expression (no column origin) whose type can carry text. */
  derived?: boolean;
  with: MaskerName;
  keep_last?: number;
  keep_first?: number;
  targets?: string[];
  subjects?: string[];
  builds?: string[];
  claims?: Record<string, string>;
}

export interface MaskingConfig {
  rules: MaskRuleConfig[];
  /** Named regular expressions, usable in `detect` like the built-in detectors. */
  detectors: Record<string, string>;
  /** Key of the `hash` masker; absent: generated once under data_dir (masking.key). */
  hash_key?: string;
}

interface Compiled {
  id: string;
  config: MaskRuleConfig;
  masker: Masker;
  columns: ((o: ColumnOrigin) => boolean)[];
  detect: Detector[];
}

/** `t.c` matches a column of any schema; `s.t.c` also names the schema. Case-insensitive. */
function columnPattern(pattern: string): (o: ColumnOrigin) => boolean {
  const parts = pattern.toLowerCase().split('.');
  if (parts.length === 2) {
    const [t, c] = parts as [string, string];
    return (o) => globMatch(t, o.table.toLowerCase()) && globMatch(c, o.column.toLowerCase());
  }
  const [s, t, c] = parts as [string, string, string];
  return (o) => o.schema != null && globMatch(s, o.schema.toLowerCase()) && globMatch(t, o.table.toLowerCase()) && globMatch(c, o.column.toLowerCase());
}

function applies(r: MaskRuleConfig, identity: Identity, target: string): boolean {
  if (r.targets && !r.targets.some((g) => globMatch(g, target))) return false;
  if (r.subjects && !r.subjects.some((g) => globMatch(g, identity.subject))) return false;
  if (r.builds && !r.builds.some((g) => identity.build !== null && globMatch(g, identity.build))) return false;
  for (const [name, glob] of Object.entries(r.claims ?? {})) {
    const value = name === 'sub' ? identity.subject : name === 'build' ? identity.build : identity.claims[name];
    if (!claimMatches(glob, value)) return false;
  }
  return true;
}

export interface MaskingOptions {
  /** Where the generated hash key is kept. */
  dataDir: string;
}

/** The broker's masking rules; one per broker, shared by its engines. */
export class MaskingPolicy {
  private constructor(private readonly rules: readonly Compiled[]) {}

  /** Null when there are no rules: nothing is ever masked, and engines take no extra step at all. */
  static create(config: MaskingConfig, opts: MaskingOptions): MaskingPolicy | null {
    if (!config.rules.length) return null;
    const key = config.rules.some((r) => r.with === 'hash') ? loadHashKey(opts.dataDir, config.hash_key) : undefined;
    const rules = config.rules.map(
      (r, i): Compiled => ({
        id: r.id ?? `masking[${i}]`,
        config: r,
        masker: masker(r.with, { keepLast: r.keep_last, keepFirst: r.keep_first, hashKey: key }),
        columns: (r.columns ?? []).map(columnPattern),
        detect: (r.detect ?? []).map((name) => {
          const d = builtinDetector(name) ?? (Object.hasOwn(config.detectors, name) ? regexDetector(name, config.detectors[name]!) : undefined);
          if (!d) throw new Error(`masking rule ${i}: unknown detector '${name}'`);
          return d;
        }),
      }),
    );
    return new MaskingPolicy(rules);
  }

  /** What to mask for this identity on this target; null when no rule applies to them. */
  forSession(identity: Identity, target: string): SessionMasking | null {
    const rules = this.rules.filter((r) => applies(r.config, identity, target));
    return rules.length ? new SessionMasking(rules) : null;
  }
}

/**
 * The rules that apply to one session. Whether a statement's result is masked at all is policy's to say: a
 * Decision with `exemptMasking` (a break-glass rule) leaves it unmasked, and the engines then do not ask here.
 */
export class SessionMasking {
  /** Detectors of the `detect` rules (for each detector, the first rule naming it gives the masker). */
  readonly detection: Detection | null;
  /** The masker of the first `derived` rule. */
  readonly derived: Masker | null;
  /** Whether any rule masks by column (or derived column): only detectors could then mask COPY output. */
  readonly hasColumnRules: boolean;
  private readonly columnRules: readonly Compiled[];

  constructor(rules: readonly Compiled[]) {
    const uses = new Map<string, DetectorUse>();
    for (const r of rules) for (const d of r.detect) if (!uses.has(d.name)) uses.set(d.name, { detector: d, masker: r.masker });
    this.detection = uses.size ? new Detection([...uses.values()]) : null;
    this.derived = rules.find((r) => r.config.derived)?.masker ?? null;
    this.columnRules = rules.filter((r) => r.columns.length);
    this.hasColumnRules = this.columnRules.length > 0 || this.derived !== null;
  }

  /** The masker of the first rule naming any of a column's origins (itself, then what it is a view of / inherits). */
  columnMasker(origins: readonly ColumnOrigin[]): Masker | null {
    for (const r of this.columnRules) {
      if (origins.some((o) => r.columns.some((m) => m(o)))) return r.masker;
    }
    return null;
  }
}
