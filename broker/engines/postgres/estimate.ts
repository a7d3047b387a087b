// The blast radius of a statement held for approval, on the session's own upstream connection while the statement
// waits unforwarded (so the session's search_path, temporary tables and open transaction are what is planned
// against): `EXPLAIN (FORMAT JSON)` — without ANALYZE: planned, never executed, no function of its WHERE called —
// for DELETE and UPDATE, and pg_class.reltuples with pg_total_relation_size (its partitions summed) for TRUNCATE and
// DROP TABLE. The statement goes through Parse, so it is one statement only ("…; COMMIT" fails to parse, nothing runs).
//
// The session's transaction state is left as it was. Everything runs in a transaction of its own that is rolled
// back (outside a block: BEGIN … ROLLBACK; inside one: SAVEPOINT … ROLLBACK TO SAVEPOINT, RELEASE), so an EXPLAIN
// that fails, and the locks planning takes, go with it; lock_timeout and statement_timeout bound it, so a held
// statement is never stuck behind its own estimate. No estimate in an aborted block, inside a REPEATABLE READ or
// SERIALIZABLE block (an EXPLAIN would take the block's snapshot before the statement does), or when anything of
// the client's is in flight (an extended-protocol Execute held in its batch).
import type { BlastRadius } from '../../store/types.js';
import { blastRadius, estimates, type Touch } from '../blast-radius.js';
import type { EstimateRequest, Estimator } from '../engine.js';
import { PROBE_NAME, type ProbeAnswer, type ProbeStep } from './probe.js';

/** What the estimator needs of the relay. */
export interface ProbeHost {
  readonly txStatus: string;
  run(steps: readonly ProbeStep[]): Promise<ProbeAnswer[] | null> | null;
}

const LIMITS = "SET LOCAL lock_timeout = '1s'; SET LOCAL statement_timeout = '1500ms'";

/**
 * A table's row estimate and size, a partitioned table's partitions summed (`$1`: its name as written): one row,
 * of nulls when there is no such table.
 */
const TABLE_STATS = `WITH r AS (SELECT to_regclass($1) AS oid),
  parts AS (SELECT oid AS relid FROM r UNION SELECT p.relid FROM r, pg_partition_tree(r.oid) p WHERE p.isleaf)
SELECT (SELECT oid::text FROM r), sum(greatest(c.reltuples, 0))::float8, bool_or(c.reltuples < 0),
  sum(pg_total_relation_size(c.oid))::float8
FROM parts JOIN pg_class c ON c.oid = parts.relid AND c.relkind <> 'p'`;

export function postgresEstimator(relay: ProbeHost): Estimator {
  return (req) => estimate(relay, req).catch(() => null);
}

async function estimate(relay: ProbeHost, req: EstimateRequest): Promise<BlastRadius | null> {
  const wanted = estimates(req.statements);
  if (!wanted.length || relay.txStatus === 'E') return null;
  if (relay.txStatus === 'T') {
    const iso = await relay.run([{ query: 'SHOW transaction_isolation' }]);
    if (iso?.[0]?.rows[0]?.[0] !== 'read committed') return null;
  }
  const inBlock = relay.txStatus === 'T';
  if (relay.txStatus === 'E') return null;
  const steps: ProbeStep[] = [{ query: `${inBlock ? `SAVEPOINT ${PROBE_NAME}` : 'BEGIN'}; ${LIMITS}` }];
  for (const e of wanted) {
    if (e.how === 'explain') steps.push({ statement: `EXPLAIN (FORMAT JSON) ${e.sql}` });
    else for (const table of e.tables) steps.push({ statement: TABLE_STATS, params: [table] });
  }
  steps.push({ query: inBlock ? `ROLLBACK TO SAVEPOINT ${PROBE_NAME}; RELEASE SAVEPOINT ${PROBE_NAME}` : 'ROLLBACK' }, { close: true });
  const answers = await relay.run(steps);
  if (!answers || answers[0]?.error) return null;
  const touches: Touch[] = [];
  let i = 1;
  for (const e of wanted) {
    if (e.how === 'explain') {
      const t = planned(answers[i++]);
      if (!t) return null;
      touches.push(t);
    } else {
      for (const _ of e.tables) {
        const row = answers[i++]?.rows[0];
        // A table that is not there (DROP TABLE IF EXISTS) touches nothing; never analyzed: rows unknown.
        if (row?.[0]) touches.push({ table: row[0], rows: row[2] === 't' ? null : Number(row[1]), bytes: Number(row[3]) });
      }
    }
  }
  return blastRadius(touches, wanted.some((e) => e.how === 'explain') ? 'explain' : 'catalog');
}

interface PlanNode {
  'Node Type'?: string;
  'Relation Name'?: string;
  'Plan Rows'?: number;
  Plans?: PlanNode[];
}

/** The rows the planner expects a DELETE or UPDATE to change: what feeds its ModifyTable node. */
function planned(answer: ProbeAnswer | undefined): Touch | null {
  const json = answer && !answer.error ? answer.rows[0]?.[0] : null;
  if (!json) return null;
  const root = (JSON.parse(json) as { Plan?: PlanNode }[])[0]?.Plan;
  const modify = root && find(root);
  if (!modify?.['Relation Name']) return null;
  const rows = modify.Plans?.[0]?.['Plan Rows'] ?? modify['Plan Rows'] ?? null;
  return { table: modify['Relation Name'], rows };
}

function find(n: PlanNode): PlanNode | null {
  if (n['Node Type'] === 'ModifyTable') return n;
  for (const c of n.Plans ?? []) {
    const m = find(c);
    if (m) return m;
  }
  return null;
}
