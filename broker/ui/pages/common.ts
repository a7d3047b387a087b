// Pieces the console's pages share: times, identities, statements, states, filter forms, decide forms,
// result samples. Everything returns Html built by the `html` template, so every value is escaped.
import type { ApprovalRequest } from '../../approvals/types.js';
import type { BlastRadius } from '../../store/types.js';
import type { ResultSample } from '../../types.js';
import type { UiContext } from '../context.js';
import { csrfField, type Html, html } from '../html.js';

/** `2025-06-02 06:48:29Z` in a <time> element carrying the ISO instant. Empty for none. */
export function time(d: Date | null | undefined): Html | '' {
  if (!d) return '';
  const iso = d.toISOString();
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d{3}Z$/, 'Z')}</time>`;
}

/** A duration for people: `850ms`, `42s`, `9m55s`, `3h05m`, `2d04h`. */
export function span(ms: number): string {
  const a = Math.abs(ms);
  if (a < 1000) return `${Math.round(a)}ms`;
  const s = Math.floor(a / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** `in 9m55s` or `3m02s ago`, against the page's render time. */
export function relative(ctx: UiContext, d: Date): string {
  const ms = d.getTime() - ctx.now.getTime();
  return ms >= 0 ? `in ${span(ms)}` : `${span(ms)} ago`;
}

/** A statement's offset from its session's start, as `jit replay` shows it: `+1.234s`. */
export function offset(ms: number): string {
  return `+${(ms / 1000).toFixed(3)}s`;
}

/** A statement's duration: `0.42 ms`, `12.3 ms`, `1.20 s`. */
export function duration(ms: number | null): string {
  if (ms === null) return '';
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(1)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** The requester's e-mail from the token's claims (`email`, or GitLab's `user_email`), when there is one. */
export function requesterEmail(claims: Record<string, unknown>): string | null {
  for (const k of ['email', 'user_email']) {
    const v = claims[k];
    if (typeof v === 'string' && v !== '') return v;
  }
  return null;
}

/** Subject, with the e-mail under it when the claims carry one. */
export function requester(subject: string, claims: Record<string, unknown>): Html {
  const email = requesterEmail(claims);
  return html`<span class="subject">${subject}</span>${email && email !== subject ? html`<br><span class="email">${email}</span>` : ''}`;
}

/** The delegation chain, outermost actor first, ending with the subject; a token used directly says so. */
export function actorsChain(actors: readonly string[], subject: string): Html {
  if (!actors.length) return html`<span class="muted">none: the token was used directly</span>`;
  return html`<ol class="chain">${actors.map((a) => html`<li>${a}</li>`)}<li>${subject}</li></ol>`;
}

/** A claim's value as text. */
export function claimText(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
}

/** The claims as a definition list. */
export function claimsList(claims: Record<string, unknown>): Html {
  const entries = Object.entries(claims);
  if (!entries.length) return html`<span class="muted">none</span>`;
  return html`<dl class="claims">${entries.map(([k, v]) => html`<dt>${k}</dt><dd>${claimText(v)}</dd>`)}</dl>`;
}

/** A definition list of label → value rows (rows whose value is null are left out). */
export function facts(rows: readonly (readonly [string, Html | string | number | null])[]): Html {
  return html`<dl class="facts">${rows.filter(([, v]) => v !== null && v !== '').map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

const SQL_PREVIEW = 120;

/** SQL as text: its first line(s) up to 120 characters; longer statements keep the full text in a <details>. */
export function sqlCell(sql: string, max = SQL_PREVIEW): Html {
  const flat = sql.replace(/\s+/g, ' ').trim();
  if (flat.length <= max && !sql.trim().includes('\n')) return html`<code class="sql">${flat}</code>`;
  const chars = [...flat];
  const preview = chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : flat;
  return html`<details class="sql"><summary><code>${preview}</code></summary><pre><code>${sql.trim()}</code></pre></details>`;
}

/** SQL in full, as a block. */
export function sqlBlock(sql: string): Html {
  return html`<pre class="sql"><code>${sql.trim()}</code></pre>`;
}

/** The blast radius: its one line, and how it was estimated. */
export function estimateText(e: BlastRadius | null | undefined): Html | '' {
  if (!e) return '';
  return html`<span class="estimate">${e.text} <span class="muted">(${e.source === 'explain' ? 'planner estimate' : 'catalog'})</span></span>`;
}

const STATE_MARK: Record<string, string> = {
  pending: '○',
  approved: '✔',
  denied: '✘',
  expired: '–',
  cancelled: '⊘',
  allow: '✔',
  deny: '✘',
  review: '◇',
  open: '●',
  ended: '■',
  refused: '✘',
  accepted: '✔',
};

/** A state as a badge: a symbol and the word (never the colour alone), class `state state-<word>`. */
export function badge(state: string): Html {
  const mark = STATE_MARK[state];
  return html`<span class="state state-${state}">${mark ? html`<span aria-hidden="true">${mark} </span>` : ''}${state}</span>`;
}

/** `1/2` approvals so far of those needed. */
export function approvalCount(r: ApprovalRequest): string {
  return `${r.approvals.length}/${r.settings.minApprovals}`;
}

/** Link to one approval request. */
export function reviewLink(ctx: UiContext, id: string): Html {
  return html`<a href="${ctx.base}/reviews/${encodeURIComponent(id)}">${id}</a>`;
}

/** Link to one session. */
export function sessionLink(ctx: UiContext, id: string): Html {
  return html`<a href="${ctx.base}/sessions/${encodeURIComponent(id)}">${id}</a>`;
}

export interface FilterField {
  name: string;
  label: string;
  value: string | undefined;
  /** `text` (default), `checkbox` (checked when value is 'true' or 'on'), `datetime` (text with a hint). */
  type?: 'text' | 'checkbox';
  placeholder?: string;
}

/** A GET form of labelled filters for `action`, with Filter and Clear. */
export function filterForm(ctx: UiContext, action: string, id: string, fields: readonly FilterField[]): Html {
  const field = (f: FilterField) => {
    const fid = `${id}-${f.name}`;
    if (f.type === 'checkbox')
      return html`<div class="field check"><input type="checkbox" id="${fid}" name="${f.name}" value="true"${f.value === 'true' || f.value === 'on' ? html` checked` : ''}><label for="${fid}">${f.label}</label></div>`;
    return html`<div class="field"><label for="${fid}">${f.label}</label><input type="text" id="${fid}" name="${f.name}" value="${f.value ?? ''}"${f.placeholder ? html` placeholder="${f.placeholder}"` : ''}></div>`;
  };
  return html`<form method="get" action="${ctx.base}${action}" class="filters" role="search" aria-label="Filter">
${fields.map(field)}
<div class="actions"><button type="submit">Filter</button> <a href="${ctx.base}${action}">Clear</a></div>
</form>`;
}

/**
 * Approve and Deny forms for one pending request: plain POST forms (they work without JavaScript) to
 * `<base>/reviews/:id/approve` (field `_csrf`) and `<base>/reviews/:id/deny` (fields `_csrf`, `reason`: required, what the requester is told).
 */
export function decideForms(ctx: UiContext, r: ApprovalRequest): Html {
  const action = `${ctx.base}/reviews/${encodeURIComponent(r.id)}`;
  const reasonId = `deny-reason-${r.id}`;
  return html`<div class="decide">
<form method="post" action="${action}/approve" class="inline">${csrfField(ctx)}<button type="submit" class="approve">Approve <span class="visually-hidden">${r.id}</span></button></form>
<form method="post" action="${action}/deny" class="inline deny">${csrfField(ctx)}<label for="${reasonId}">Reason <span class="visually-hidden">for denying ${r.id}</span></label> <input type="text" id="${reasonId}" name="reason" maxlength="2000" required> <button type="submit" class="deny">Deny <span class="visually-hidden">${r.id}</span></button></form>
</div>`;
}

/**
 * A result sample as a small table: its columns (with their types as a title), its rows as the store kept them
 * (NULL shown as such), and a note when rows or values were left out.
 */
export function sampleTable(sample: ResultSample, totalRows: number | null, caption?: string): Html {
  const more = totalRows !== null ? totalRows - sample.rows.length : 0;
  const note =
    more > 0
      ? html`<p class="muted">… ${more} more row${more === 1 ? '' : 's'} not kept</p>`
      : sample.truncated
        ? html`<p class="muted">… cut at the sample bounds</p>`
        : '';
  return html`<div class="sample"><table class="sample">${caption ? html`<caption>${caption}</caption>` : ''}
<thead><tr>${sample.columns.map((c) => html`<th scope="col" title="${c.type}">${c.name}</th>`)}</tr></thead>
<tbody>${sample.rows.map((row) => html`<tr>${row.map((v) => (v === null ? html`<td class="null">NULL</td>` : html`<td>${v}</td>`))}</tr>`)}</tbody>
</table>${note}</div>`;
}

/** An empty-list message in place of a table. */
export function empty(text: string): Html {
  return html`<p class="empty">${text}</p>`;
}
