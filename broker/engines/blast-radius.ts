// What both engines' estimators (postgres/estimate.ts, mysql/estimate.ts) make of their numbers: a BlastRadius,
// with one line for people (`≈ 12,400 rows of orders`), and which statements of a held text they estimate.
import type { BlastRadius } from '../store/types.js';
import type { ClassifiedStatement } from '../types.js';

/** What one statement of the text touches. */
export interface Touch {
  table: string;
  rows: number | null;
  bytes?: number | null;
}

/** What to estimate for one statement: the planner's rows (DELETE, UPDATE) or a table's statistics (TRUNCATE, DROP TABLE). */
export type Estimate = { how: 'explain'; sql: string } | { how: 'catalog'; tables: string[] };

/** The statements of a held text that have an estimate, by their first words; none for anything else. */
export function estimates(statements: readonly ClassifiedStatement[]): Estimate[] {
  const out: Estimate[] = [];
  for (const st of statements) {
    const words = st.sql
      .replace(/^(?:\s+|--[^\n]*\n?|\/\*[\s\S]*?\*\/)*/, '')
      .slice(0, 40)
      .split(/\s+/, 2)
      .map((w) => w.toUpperCase());
    if (words[0] === 'DELETE' || words[0] === 'UPDATE') out.push({ how: 'explain', sql: st.sql });
    else if ((words[0] === 'TRUNCATE' || (words[0] === 'DROP' && words[1] === 'TABLE')) && st.tables.length) out.push({ how: 'catalog', tables: st.tables });
  }
  return out;
}

/** The estimate of what `touches` add up to (rows summed per table); null when nothing was estimated. */
export function blastRadius(touches: readonly Touch[], source: BlastRadius['source']): BlastRadius | null {
  if (!touches.length) return null;
  const byTable = new Map<string, Touch>();
  for (const t of touches) {
    const seen = byTable.get(t.table);
    if (!seen) byTable.set(t.table, { ...t });
    else {
      seen.rows = seen.rows === null || t.rows === null ? null : seen.rows + t.rows;
      if (t.bytes != null) seen.bytes = Math.max(seen.bytes ?? 0, t.bytes);
    }
  }
  const all = [...byTable.values()];
  const rows = all.some((t) => t.rows === null) ? null : all.reduce((n, t) => n + (t.rows ?? 0), 0);
  const sized = all.filter((t) => t.bytes != null);
  const bytes = sized.length ? sized.reduce((n, t) => n + (t.bytes ?? 0), 0) : null;
  const text = all
    .map((t) => `${t.rows === null ? 'an unknown number of rows' : `≈ ${count(t.rows)}`} of ${t.table}${t.bytes != null ? ` (${size(t.bytes)})` : ''}`)
    .join('; ');
  return { rows, bytes, tables: all.map((t) => t.table), source, text };
}

function count(rows: number): string {
  const n = Math.max(0, Math.round(rows));
  return `${n.toLocaleString('en-US')} row${n === 1 ? '' : 's'}`;
}

/** Bytes for people: `8 kB`, `1.2 MB`. */
export function size(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} bytes` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}
