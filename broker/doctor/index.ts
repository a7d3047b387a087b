// `jit doctor`: checks each target of the config as the broker would use it — its password file, whether the
// broker's own account logs in (and the server's version), what that account may do beyond the target's needs,
// and with session_roles whether a session role can be created, granted its group roles and dropped.
import type { Config } from '../config.js';
import { upstreamOf } from '../engines/upstream-secret.js';
import { type Finding, sessionRolesOf, type Status } from './types.js';

export type { Finding, Status } from './types.js';

export interface TargetReport {
  target: string;
  engine: 'postgres' | 'mysql';
  findings: Finding[];
}

/** Every check of one target, in order; a target whose password file cannot be read goes no further. */
async function checkTarget(name: string, t: Config['targets'][string], timeoutMs: number): Promise<TargetReport> {
  const report: TargetReport = { target: name, engine: t.engine, findings: [] };
  if (t.upstream === 'demo') {
    report.findings.push({ check: 'reachable', status: 'ok', detail: 'the built-in demo database: it runs inside the broker, nothing to check' });
    return report;
  }
  let url: string;
  try {
    url = upstreamOf(t);
    if (t.upstream_password_file) report.findings.push({ check: 'password file', status: 'ok', detail: `${t.upstream_password_file} is readable` });
  } catch (e) {
    report.findings.push({ check: 'password file', status: 'FAIL', detail: (e as Error).message });
    return report;
  }
  const roles = sessionRolesOf(t);
  const run =
    t.engine === 'postgres'
      ? (await import('./postgres.js')).doctorPostgres(url, roles, timeoutMs)
      : (await import('./mysql.js')).doctorMysql(url, roles, timeoutMs);
  report.findings.push(...(await run));
  return report;
}

/** Checks the config's targets (or only `only`), all at once; reports in the config's order. */
export async function runDoctor(config: Config, opts: { only?: string; timeoutMs: number }): Promise<TargetReport[]> {
  const names = Object.keys(config.targets).filter((n) => opts.only === undefined || n === opts.only);
  return Promise.all(names.map((n) => checkTarget(n, config.targets[n]!, opts.timeoutMs)));
}

export const failed = (reports: readonly TargetReport[]): boolean => reports.some((r) => r.findings.some((f) => f.status === 'FAIL'));

/** One line per check: status, target, check, reason; then a count. */
export function renderDoctor(reports: readonly TargetReport[]): string {
  const rows = reports.flatMap((r) => r.findings.map((f) => [f.status, r.target, f.check, f.detail] as const));
  const width = (i: 0 | 1 | 2) => Math.max(...rows.map((row) => row[i].length));
  const lines = rows.map((row) => `${row[0].padEnd(width(0))}  ${row[1].padEnd(width(1))}  ${row[2].padEnd(width(2))}  ${row[3]}`);
  const count = (s: Status) => rows.filter((row) => row[0] === s).length;
  lines.push(`${reports.length} target${reports.length === 1 ? '' : 's'}: ${count('ok')} ok, ${count('warn')} warn, ${count('FAIL')} FAIL`);
  return `${lines.join('\n')}\n`;
}

/** `--json`: `{ ok, targets: [{ target, engine, findings: [{ check, status, detail, version? }] }] }`. */
export function doctorJson(reports: readonly TargetReport[]): string {
  return `${JSON.stringify({ ok: !failed(reports), targets: reports }, null, 2)}\n`;
}
