// The Policy pages: the stored policy versions (who applied which, when, why; the newest is active), and one
// version's rules in order with what changed from the version before it (broker/policy/versions.ts diffPolicies).
import type { RuleConfig } from '../../config.js';
import { diffPolicies, formatDiff, isEmptyDiff, summarizeRule, type PolicyDiff } from '../../policy/versions.js';
import type { PolicyVersion } from '../../store/types.js';
import type { UiContext } from '../context.js';
import { type Html, html } from '../html.js';
import { empty, time } from './common.js';

const versionLink = (ctx: UiContext, v: number) => html`<a href="${ctx.base}/policy/${v}">version ${v}</a>`;
const activeMark = html`<span class="state state-active"><span aria-hidden="true">★ </span>active</span>`;

/** The active version: the one given, else the newest stored. */
function activeOf(versions: readonly Pick<PolicyVersion, 'version'>[], active: number | null | undefined): number | null {
  if (active !== undefined) return active;
  return versions.length ? Math.max(...versions.map((v) => v.version)) : null;
}

/** The versions page body: newest first. `active`: the active version (absent: the newest). */
export function renderPolicy(ctx: UiContext, data: { versions: readonly PolicyVersion[]; active?: number | null }): Html {
  const active = activeOf(data.versions, data.active);
  const versions = [...data.versions].sort((a, b) => b.version - a.version);
  const list = versions.length
    ? html`<div class="table-wrap" role="region" aria-labelledby="policy-h" tabindex="0">
<table class="list policy">
<thead><tr><th scope="col">Version</th><th scope="col">Author</th><th scope="col">Message</th><th scope="col">Applied</th><th scope="col">Rules</th><th scope="col">Active</th></tr></thead>
<tbody>
${versions.map(
  (v) => html`<tr${v.version === active ? html` class="active"` : ''}>
<th scope="row">${versionLink(ctx, v.version)}</th>
<td>${v.author}</td>
<td>${v.message ?? ''}</td>
<td>${time(v.appliedAt)}</td>
<td class="num">${v.rules.rules.length} <span class="muted">(default ${v.rules.default})</span></td>
<td>${v.version === active ? activeMark : ''}</td>
</tr>`,
)}
</tbody>
</table>
</div>`
    : empty('No policy version is stored yet: a broker stores its config’s rules as version 1 when it starts.');
  return html`<h1 id="policy-h">Policy</h1>
<p>Every <code>jit policy apply</code> (or POST /api/policy) stores a new version; the newest decides the next statement of every session.</p>
<div data-live="policy" id="policy-live">
${list}
</div>`;
}

/** The diff as `formatDiff` words it, one line per change, each marked added, removed or changed. */
function diffList(diff: PolicyDiff, version: PolicyVersion): Html {
  if (isEmptyDiff(diff)) return html`<p class="empty">No change in the rules.</p>`;
  const lines = formatDiff(diff, version.rules).trimEnd().split('\n');
  const kind = (l: string) => (l.startsWith('+') ? 'added' : l.startsWith('-') ? 'removed' : 'changed');
  const label = { added: 'added', removed: 'removed', changed: 'changed' } as const;
  return html`<ul class="diff">${lines.map((l) => {
    const k = kind(l);
    return html`<li class="diff-${k}"><span class="visually-hidden">${label[k]}: </span><code>${l}</code></li>`;
  })}</ul>`;
}

/**
 * One version's page body: its rules in order (first match decides) and the diff against `previous`. `diff`: as
 * the caller computed it; absent, it is computed here with diffPolicies. `active`: the active version (absent: not
 * marked).
 */
export function renderPolicyVersion(
  ctx: UiContext,
  data: { version: PolicyVersion; previous: PolicyVersion | null; diff?: PolicyDiff | null; active?: number | null },
): Html {
  const v = data.version;
  const diff = data.diff ?? (data.previous ? diffPolicies(data.previous.rules, v.rules) : null);
  // Stored rules were validated by the config schema when applied (parsePolicyDocument): they are RuleConfig.
  const rules = v.rules.rules as RuleConfig[];
  const changed = new Set([...(diff?.added ?? []), ...(diff?.changed ?? [])]);
  return html`<p class="crumbs"><a href="${ctx.base}/policy">Policy</a> › version ${v.version}</p>
<h1>Policy version ${v.version} ${v.version === data.active ? activeMark : ''}</h1>
<dl class="facts">
<dt>Applied</dt><dd>${time(v.appliedAt)} by ${v.author}</dd>
${v.message ? html`<dt>Message</dt><dd>${v.message}</dd>` : ''}
<dt>sha256</dt><dd><code>${v.sha256}</code></dd>
<dt>Default</dt><dd><code>${v.rules.default}</code> (when no rule matches)</dd>
</dl>
<section aria-labelledby="diff-h"><h2 id="diff-h">${data.previous ? html`Changes from ${versionLink(ctx, data.previous.version)}` : 'Changes'}</h2>
${diff ? diffList(diff, v) : html`<p class="empty">The first version: nothing to compare with.</p>`}
</section>
<section aria-labelledby="rules-h"><h2 id="rules-h">Rules <span class="count">(${rules.length}, the first that matches decides)</span></h2>
${
  rules.length
    ? html`<ol class="rules">${rules.map(
        (r) => html`<li${changed.has(r.id) ? html` class="rule-changed"` : ''}><strong>${r.id}</strong>${
          changed.has(r.id) ? html` <span class="tag">${diff?.added.includes(r.id) ? 'new' : 'changed'}</span>` : ''
        }: <code>${summarizeRule(r)}</code>${r.message ? html`<br><span class="muted">“${r.message}”</span>` : ''}
<details><summary>Rule as stored</summary><pre><code>${JSON.stringify(r, null, 2)}</code></pre></details></li>`,
      )}</ol>`
    : empty('No rules: the default decides every statement.')
}
</section>`;
}
