import type { UiContext } from './context.js';

/**
 * Markup that is already safe to put in a page: built by the `html` template (which escapes what it
 * interpolates) or by `raw` (trusted constant markup only). Anything else interpolated into `html` is
 * text and is escaped.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** A value `html` accepts: text (escaped), Html (kept), nothing (dropped), or a list of those. */
export type HtmlValue = Html | string | number | bigint | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for both HTML text and a quoted attribute value. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function interpolate(v: HtmlValue): string {
  if (v instanceof Html) return v.value;
  if (v === null || v === undefined || v === false) return '';
  if (Array.isArray(v)) return v.map(interpolate).join('');
  return escapeHtml(String(v));
}

/** Tagged template: the literal parts are markup, every interpolated value is escaped unless it is Html. */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += interpolate(values[i]) + strings[i + 1]!;
  return new Html(out);
}

/** Trusted constant markup, not escaped. Never pass it anything that came from a request or the store. */
export function raw(s: string): Html {
  return new Html(s);
}

/** The hidden CSRF field every POST form carries. */
export function csrfField(ctx: UiContext): Html {
  return html`<input type="hidden" name="_csrf" value="${ctx.csrf}">`;
}

const NAV: readonly { key: string; label: string; path: string }[] = [
  { key: 'reviews', label: 'Reviews', path: '/reviews' },
  { key: 'sessions', label: 'Sessions', path: '/sessions' },
  { key: 'logins', label: 'Logins', path: '/logins' },
  { key: 'policy', label: 'Policy', path: '/policy' },
];

/**
 * The full document around a page body. `active` marks the current section in the navigation
 * (aria-current="page"); without it the section is guessed from the title's first word. No inline
 * script or style anywhere: the console's CSP is `script-src 'self'; style-src 'self'`.
 */
export function renderPage(opts: { title: string; ctx: UiContext; body: Html; active?: 'reviews' | 'sessions' | 'logins' | 'policy' }): string {
  const { title, ctx, body } = opts;
  const active = opts.active ?? NAV.find((n) => title.toLowerCase().startsWith(n.key.slice(0, -1)))?.key;
  const nav = html`<nav aria-label="Main"><ul>${NAV.map(
    (n) => html`<li><a href="${ctx.base}${n.path}"${n.key === active ? raw(' aria-current="page"') : ''}>${n.label}</a></li>`,
  )}</ul></nav>`;
  const who = ctx.user
    ? html`<div class="who"><span class="user">${ctx.user.name}</span>
<form method="post" action="${ctx.base}/logout" class="inline">${csrfField(ctx)}<button type="submit">Sign out</button></form></div>`
    : '';
  const doc = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · jit-broker</title>
<link rel="stylesheet" href="${ctx.base}/assets/app.css">
<script src="${ctx.base}/assets/app.js" defer></script>
</head>
<body data-base="${ctx.base}">
<a class="skip" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="${ctx.base}/">jit-broker</a>${nav}${who}</header>
<main id="main" tabindex="-1">
${body}
</main>
</body>
</html>
`;
  return doc.value;
}
