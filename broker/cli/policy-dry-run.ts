// `jit policy apply FILE --dry-run`: decide the statements recorded in a window again under the rules in FILE and
// print which decisions would change (broker/policy/dry-run.ts), without storing anything. `--json` for CI;
// `--fail-on-change` exits 1 when any decision would change.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { parseDocument } from 'yaml';
import { parseSince } from '../audit/logins.js';
import { ConfigError, parseConfig, type Config } from '../config.js';
import type { DryRunReport, RecordedSession } from '../policy/dry-run.js';
import type { PolicyConfig } from '../policy/index.js';
import type { Store } from '../store/types.js';
import type { Classification, Target } from '../types.js';
import { formatTable, when } from './format.js';

export interface DryRunOptions {
  since: string;
  target?: string;
  json?: boolean;
  examples: number;
  catalog?: boolean;
  failOnChange?: boolean;
}

/**
 * The rules of FILE — a YAML document with `rules:` and optionally `default:`, or a whole jit.yaml (only its
 * `rules` and `default` are taken) — validated by the config's own schema, as if they were in this config: rule
 * ids, review settings, targets named (this config's targets, and the file's own when it has `targets:`).
 */
export function readPolicyFile(file: string, config: Config): PolicyConfig {
  const path = resolve(file);
  const refuse = (problems: string[]) => new InvalidArgumentError(`invalid policy ${path}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw refuse([`cannot read the file: ${(e as Error).message}`]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) throw refuse(doc.errors.map((e) => e.message));
  const raw: unknown = doc.toJS();
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw refuse(['expected a map with rules: (and default:), or a whole jit.yaml']);
  const top = raw as Record<string, unknown>;
  if (!('rules' in top)) throw refuse(['no rules: in the file']);
  const whole = 'targets' in top;
  if (!whole) {
    const extra = Object.keys(top).filter((k) => k !== 'rules' && k !== 'default');
    if (extra.length) throw refuse(extra.map((k) => `${k}: unknown key (a policy file has rules: and default:, or is a whole jit.yaml)`));
  }
  // The config's schema and checks, on a config made of this one's targets and the file's rules.
  const targets: Record<string, unknown> = {};
  for (const [name, t] of Object.entries(config.targets)) targets[name] = { engine: t.engine, upstream: t.upstream };
  if (whole && top.targets && typeof top.targets === 'object')
    for (const name of Object.keys(top.targets)) targets[name] ??= { engine: 'postgres', upstream: 'demo' };
  const wrapped = JSON.stringify({ targets, rules: top.rules, ...('default' in top ? { default: top.default } : {}) });
  try {
    const c = parseConfig(wrapped, { file: path, baseDir: process.cwd() });
    return { rules: c.rules, default: c.default };
  } catch (e) {
    if (e instanceof ConfigError) throw refuse(e.problems);
    throw e;
  }
}

/**
 * The recorded sessions of the window (on `target` when given): those started since then, and those still open
 * that started before (their earlier statements are read for the session's state, not counted).
 */
export async function readHistory(store: Store, since: Date, target?: string): Promise<RecordedSession[]> {
  const started = await store.listSessions({ since, ...(target ? { target } : {}) });
  const open = await store.listSessions({ open: true, ...(target ? { target } : {}) });
  const seen = new Set(started.map((s) => s.id));
  const sessions = [...started, ...open.filter((s) => !seen.has(s.id))].sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime());
  const out: RecordedSession[] = [];
  for (const session of sessions) out.push({ session, statements: await store.listStatements(session.id), from: since });
  return out;
}

export interface DryRunOutput extends DryRunReport {
  file: string;
  since: string;
  target: string | null;
  /** How functions, views and partitioned tables were judged: by name alone, or each target's catalog as read now. */
  catalog: { used: boolean; note: string; unreadable?: Record<string, string> };
}

export async function policyDryRun(file: string, o: DryRunOptions, config: Config): Promise<void> {
  const since = parseSince(o.since);
  if (!since) throw new InvalidArgumentError(`--since '${o.since}' is neither a duration (90s, 15m, 1h, 7d) nor a date (2025-01-31T12:00:00Z)`);
  if (o.target !== undefined && !config.targets[o.target])
    throw new InvalidArgumentError(`no target '${o.target}' in the config (targets: ${Object.keys(config.targets).join(', ')})`);
  if (!Number.isInteger(o.examples) || o.examples < 0) throw new InvalidArgumentError('--examples takes a whole number');
  const policy = readPolicyFile(file, config);
  const { openStore } = await import('../store/index.js');
  const { dryRun } = await import('../policy/dry-run.js');
  const { loadPostgresParser } = await import('../policy/index.js');
  await loadPostgresParser();
  const store = await openStore(config.store);
  let history: RecordedSession[];
  try {
    history = await readHistory(store, since, o.target);
  } finally {
    await store.close();
  }
  const catalog = o.catalog ? await readCatalogs(config, history) : null;
  const report = dryRun(policy, history, { examples: o.examples, ...(catalog ? { refine: catalog.refine } : {}) });
  const out: DryRunOutput = {
    file: resolve(file),
    since: since.toISOString(),
    target: o.target ?? null,
    ...report,
    catalog: catalog
      ? {
          used: true,
          note: "functions, views and partitioned tables were judged by each target's catalog as it is now, not as it was when the statement ran",
          ...(Object.keys(catalog.unreadable).length ? { unreadable: catalog.unreadable } : {}),
        }
      : {
          used: false,
          note: "functions, views and partitioned tables were judged by their names alone (--catalog reads each target's catalog): decisions that depend on the catalog are approximate",
        },
  };
  if (o.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  else process.stdout.write(render(out));
  if (o.failOnChange && report.changed > 0) process.exitCode = 1;
}

/** Each target's catalog of the window, read now over its upstream URL (as `jit policy check --catalog-from` does). */
async function readCatalogs(
  config: Config,
  history: readonly RecordedSession[],
): Promise<{ refine: (target: string, engine: 'postgres' | 'mysql', c: Classification) => Classification; unreadable: Record<string, string> }> {
  const { Catalogs } = await import('../catalog/index.js');
  const demo = { postgres: () => Promise.reject(new Error('the demo database runs only inside the broker')) };
  const provider = new Catalogs();
  const demoProvider = new Catalogs({ loaders: demo });
  const snaps = new Map<string, { target: Target; provider: typeof provider; snap: Awaited<ReturnType<typeof provider.get>> }>();
  const unreadable: Record<string, string> = {};
  for (const name of new Set(history.map((h) => h.session.target))) {
    const t = config.targets[name];
    if (!t) {
      unreadable[name] = 'no longer in the config';
      continue;
    }
    const target: Target = { name, engine: t.engine, upstream: t.upstream };
    const p = t.upstream === 'demo' ? demoProvider : provider;
    const snap = await p.get(target);
    if (!snap) unreadable[name] = p.problem(name) ?? 'unknown error';
    snaps.set(name, { target, provider: p, snap });
  }
  return {
    unreadable,
    refine: (name, engine, c) => {
      const s = snaps.get(name);
      if (!s) return c;
      return s.provider.refine({ ...s.target, engine }, c, s.snap).classification;
    },
  };
}

function render(o: DryRunOutput): string {
  const lines: string[] = [];
  const where = o.target ? ` on target ${o.target}` : '';
  lines.push(`dry run of ${o.file} against the statements recorded since ${when(new Date(o.since))}${where}: nothing is stored`);
  lines.push(`${o.considered} statements decided again: ${o.unchanged} unchanged, ${o.changed} changed`);
  const skipped = Object.entries(o.skipped);
  if (skipped.length) lines.push(`not decided again (decided outside the rules): ${skipped.map(([rule, n]) => `${n} by ${rule}`).join(', ')}`);
  if (o.changes.length) {
    lines.push('');
    const label = (d: { action: string; ruleId: string | null }) => `${d.action}(${d.ruleId ?? 'default'})`;
    lines.push(
      formatTable(
        ['FROM', '', 'TO', 'COUNT', 'BUILDS'],
        o.changes.map((c) => [
          label(c.from),
          '→',
          label(c.to),
          String(c.count),
          Object.entries(c.builds)
            .map(([b, k]) => `${b}: ${Object.values(k).reduce((a, n) => a + n, 0)}`)
            .join(', '),
        ]),
      ).trimEnd(),
    );
    for (const c of o.changes) {
      if (!c.examples.length) continue;
      lines.push('');
      lines.push(`${label(c.from)} → ${label(c.to)}, ${c.examples.length < c.count ? `${c.examples.length} of ${c.count}` : `all ${c.count}`}:`);
      lines.push(
        formatTable(
          ['SESSION', 'BUILD', 'AT', 'TARGET', 'KINDS', 'STATEMENT'],
          c.examples.map((e) => [e.sessionId, e.build ?? '', when(new Date(e.at)), e.target, e.kinds.join(','), e.sql.slice(0, 100)]),
        )
          .trimEnd()
          .replace(/^/gm, '  '),
      );
    }
  }
  lines.push('');
  lines.push(`note: ${o.catalog.note}`);
  for (const [t, why] of Object.entries(o.catalog.unreadable ?? {}))
    lines.push(`note: the catalog of target '${t}' could not be read (${why}): what needs it is decided as unknown`);
  return `${lines.join('\n')}\n`;
}
