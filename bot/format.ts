// mrkdwn helpers shared by the approval messages and the /jit replies: escaping, dates, code blocks,
// links to the CI run, durations.

/** Slack wants exactly these three escaped in every text object. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** At most `max` characters, with an ellipsis when cut. */
export function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, Math.max(0, max - 1))}…` : s;
}

/** Inline code: escaped, clipped, backticks made harmless. */
export function code(s: string, max = 120): string {
  return `\`${esc(clip(s.replace(/`/g, "'").replace(/\s+/g, ' '), max))}\``;
}

/** Slack renders this in the reader's own time zone; the fallback is UTC. */
export function slackDate(d: Date, format = '{date_short_pretty} at {time}'): string {
  const unix = Math.floor(d.getTime() / 1000);
  const fallback = d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `<!date^${unix}^${format}|${fallback}>`;
}

/**
 * A fenced code block for a section (text limit 3000): the statement escaped, "```" broken up,
 * cut at `max` characters of SQL. `truncated` tells the caller to say so.
 */
export function codeBlock(sql: string, max = 2500): { text: string; truncated: boolean; shown: number } {
  let shown = Math.min(sql.length, max);
  for (;;) {
    const body = esc(sql.slice(0, shown)).replace(/```/g, '`\u200b``');
    const text = `\`\`\`\n${body}${shown < sql.length ? '\n…' : ''}\n\`\`\``;
    // Escaping can grow the text: shrink until it fits the section's 3000 characters.
    if (text.length <= 2950 || shown === 0) return { text, truncated: shown < sql.length, shown };
    shown = Math.floor(shown * 0.8);
  }
}

/** A decider as Slack shows it: a user mention for Slack ids, the name otherwise (`cli:alice`). */
export function who(by: string): string {
  return /^[UW][A-Z0-9]{2,}$/.test(by) ? `<@${by}>` : esc(by);
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function count(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

function scalar(v: unknown): string | null {
  if (typeof v === 'string') return v === '' ? null : v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

/** A base URL from a claim, only http(s), without a trailing slash. */
function baseUrl(v: unknown): string | null {
  const s = scalar(v);
  if (!s) return null;
  try {
    const u = new URL(s);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
    return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return null;
  }
}

const GITHUB_REPO = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const GITLAB_PROJECT = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)+$/;
const DIGITS = /^\d+$/;

/**
 * The CI run behind a token: GitHub Actions `repository` + `run_id` (+ `run_attempt`) link to github.com;
 * GitLab `project_path` + `pipeline_id` link to the instance named by `ci_server_url` (or `iss`) when the
 * claims give it, else no link. Null when the claims name no run.
 */
export function ciRun(claims: Record<string, unknown>): { label: string; url: string | null } | null {
  const repo = scalar(claims['repository']);
  const runId = scalar(claims['run_id']);
  const attempt = scalar(claims['run_attempt']);
  const workflow = scalar(claims['workflow']);
  if (repo && runId && GITHUB_REPO.test(repo) && DIGITS.test(runId)) {
    const hasAttempt = attempt !== null && DIGITS.test(attempt);
    const url = `https://github.com/${repo}/actions/runs/${runId}${hasAttempt ? `/attempts/${attempt}` : ''}`;
    const label = [repo, workflow, `run ${runId}${hasAttempt ? ` (attempt ${attempt})` : ''}`].filter(Boolean).join(' · ');
    return { label, url };
  }
  const project = scalar(claims['project_path']);
  const pipeline = scalar(claims['pipeline_id']);
  if (project && pipeline && GITLAB_PROJECT.test(project) && DIGITS.test(pipeline)) {
    const host = baseUrl(claims['ci_server_url']) ?? baseUrl(claims['iss']);
    return { label: `${project} · pipeline ${pipeline}`, url: host ? `${host}/${project}/-/pipelines/${pipeline}` : null };
  }
  return null;
}

/** `<url|label>` or just the label, escaped. */
export function link(label: string, url: string | null): string {
  const text = esc(label).replace(/\|/g, '¦');
  return url ? `<${url}|${text}>` : text;
}

/** Current actor first, back to the subject: `agent-b` ← `bot-a` ← `repo:org/app`. */
export function actorChain(subject: string, actors: string[]): string | null {
  if (actors.length === 0) return null;
  return [...actors, subject].map((a) => code(a, 60)).join(' ← ');
}
