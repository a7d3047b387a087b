// The error page and the sign-in page: neither needs a signed-in user (ctx.user may be null).
import type { UiContext } from '../context.js';
import { csrfField, type Html, html } from '../html.js';

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Sign-in needed',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Conflict',
  429: 'Too many requests',
  500: 'Something went wrong',
  503: 'Unavailable',
};

/** An error page body: the status, its message, and a way on. */
export function renderError(ctx: UiContext, status: number, message: string): Html {
  const title = TITLES[status] ?? (status >= 500 ? 'Something went wrong' : 'Error');
  return html`<h1>${title} <span class="muted">(${status})</span></h1>
<p class="error-message">${message}</p>
<p>${ctx.user ? html`<a href="${ctx.base}/reviews">Back to the reviews</a>` : html`<a href="${ctx.base}/login">Sign in</a>`}</p>`;
}

/**
 * The sign-in page body. `oidc`: a link to `<base>/login/oidc?next=…` (the server redirects to the identity
 * provider). `local`: a form that POSTs `_csrf`, `next` and `token` (the broker's admin token) to
 * `<base>/login/local`. `next`: the console path to return to after signing in. `error`: why the last try failed.
 */
export function renderSignIn(ctx: UiContext, data: { oidc: boolean; local: boolean; error?: string; next?: string }): Html {
  const next = data.next ?? `${ctx.base}/`;
  const oidc = data.oidc
    ? html`<section aria-labelledby="oidc-h"><h2 id="oidc-h">With your organisation’s account</h2>
<p><a class="button" href="${ctx.base}/login/oidc?next=${encodeURIComponent(next)}">Sign in with single sign-on</a></p></section>`
    : '';
  const local = data.local
    ? html`<section aria-labelledby="local-h"><h2 id="local-h">With the admin token</h2>
<form method="post" action="${ctx.base}/login/local" class="stack">${csrfField(ctx)}
<input type="hidden" name="next" value="${next}">
<div class="field"><label for="admin-token">Admin token</label>
<input type="password" id="admin-token" name="token" autocomplete="current-password" required aria-describedby="admin-token-hint"${
        data.error ? html` aria-invalid="true"` : ''
      }>
<p class="hint" id="admin-token-hint">The broker’s admin token (<code>.jit/admin.token</code>, or <code>admin_token</code> in its config).</p></div>
<div class="actions"><button type="submit">Sign in</button></div>
</form></section>`
    : '';
  return html`<h1>Sign in to the jit-broker console</h1>
${data.error ? html`<div class="flash error" role="alert">${data.error}</div>` : ''}
${oidc}${local}
${data.oidc || data.local ? '' : html`<p class="empty">No sign-in method is configured for the console.</p>`}`;
}
