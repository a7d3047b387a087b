// The console's server side without a browser: security headers on every /ui response, the sign-in required
// where it is, the local admin-token sign-in (loopback only), CSRF and same-origin checks on every POST, safe
// `next` paths, the assets, sign-out, and a decision through the console going through Approvals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { safeNext, sameOrigin } from '../../broker/ui/security.js';
import { parseCookies, serializeCookie } from '../../broker/ui/auth/cookies.js';
import { isViewer, canDecide, deciderOf } from '../../broker/ui/auth/access.js';
import type { FastifyRequest } from 'fastify';
import type { ApprovalRequest } from '../../broker/approvals/types.js';
import { BASE_RULES, startTestBroker, type TestBroker } from '../support/broker.js';

const ADMIN = 'console-test-admin-token-0123456789';
let t: TestBroker;

beforeAll(async () => {
  t = await startTestBroker(`${BASE_RULES}\nadmin_token: ${ADMIN}\n`);
});
afterAll(async () => {
  await t?.stop();
});

/** A browser's cookie jar for one origin, enough for these tests. */
class Client {
  readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}
  async fetch(path: string, init: RequestInit & { form?: Record<string, string> } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.jar.size) headers.set('cookie', [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '));
    let body = init.body;
    if (init.form) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(`${this.base}${path}`, { ...init, headers, body, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const v = pair!.slice(i + 1);
      if (/Max-Age=0/.test(c)) this.jar.delete(pair!.slice(0, i));
      else this.jar.set(pair!.slice(0, i), v);
    }
    return res;
  }
  /** The CSRF token of a page's forms. */
  async csrf(path: string): Promise<string> {
    const html = await (await this.fetch(path)).text();
    const m = /name="_csrf" value="([^"]+)"/.exec(html);
    if (!m) throw new Error(`no CSRF field on ${path}`);
    return m[1]!;
  }
  async signIn(): Promise<void> {
    const csrf = await this.csrf('/ui/login');
    const res = await this.fetch('/ui/login/local', { method: 'POST', headers: { origin: this.base }, form: { _csrf: csrf, token: ADMIN } });
    expect(res.status).toBe(303);
  }
}

describe('every /ui response', () => {
  it('carries the CSP and the other security headers; pages are not cached', async () => {
    const c = new Client(t.httpUrl);
    for (const path of ['/ui/login', '/ui/reviews', '/ui/nope', '/ui/assets/app.css']) {
      const res = await c.fetch(path);
      expect(res.headers.get('content-security-policy'), path).toBe(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
      );
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('same-origin');
    }
    expect((await c.fetch('/ui/login')).headers.get('cache-control')).toBe('no-store');
  });

  it('redirects to the sign-in page with the page asked for, and the session cookie is HttpOnly, SameSite=Strict, Path=/ui', async () => {
    const c = new Client(t.httpUrl);
    const res = await c.fetch('/ui/sessions?open=true');
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/ui/login?next=${encodeURIComponent('/ui/sessions?open=true')}`);
    const cookie = res.headers.getSetCookie().find((s) => s.startsWith('jit_ui='))!;
    expect(cookie).toMatch(/; Path=\/ui; HttpOnly; SameSite=Strict; Max-Age=\d+/);
    expect(cookie).not.toContain('Secure'); // loopback over plain http
    expect((await c.fetch('/ui/')).status).toBe(303);
    expect((await c.fetch('/ui/events')).status).toBe(401);
  });
});

describe('the local sign-in (admin token, loopback)', () => {
  it('signs in with the admin token and returns to the page asked for; a wrong token is refused', async () => {
    const c = new Client(t.httpUrl);
    await c.fetch('/ui/login?next=%2Fui%2Fpolicy');
    const csrf = await c.csrf('/ui/login');
    const wrong = await c.fetch('/ui/login/local', { method: 'POST', headers: { origin: t.httpUrl }, form: { _csrf: csrf, token: 'nope' } });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('That is not the admin token.');
    const before = c.jar.get('jit_ui');
    const ok = await c.fetch('/ui/login/local', { method: 'POST', headers: { origin: t.httpUrl }, form: { _csrf: csrf, token: ADMIN } });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/ui/policy');
    expect(c.jar.get('jit_ui')).not.toBe(before); // a new session (and CSRF token) at sign-in
    const page = await c.fetch('/ui/policy');
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain('admin (local)');
    expect(text).not.toContain(ADMIN); // never rendered
  });

  it("refuses a POST without the CSRF token, with another session's, or from another origin (403)", async () => {
    const c = new Client(t.httpUrl);
    await c.signIn();
    const other = new Client(t.httpUrl);
    const othersToken = await other.csrf('/ui/login');
    const mine = await c.csrf('/ui/reviews');
    for (const [form, origin] of [
      [{ reason: 'x' }, t.httpUrl],
      [{ _csrf: othersToken, reason: 'x' }, t.httpUrl],
      [{ _csrf: mine, reason: 'x' }, 'https://evil.example'],
      [{ _csrf: mine, reason: 'x' }, undefined],
    ] as const) {
      const res = await c.fetch('/ui/reviews/a_nope/deny', { method: 'POST', headers: origin ? { origin } : {}, form });
      expect(res.status).toBe(403);
    }
    const ok = await c.fetch('/ui/reviews/a_nope/deny', { method: 'POST', headers: { origin: t.httpUrl }, form: { _csrf: mine, reason: 'x' } });
    expect(ok.status).toBe(404); // past the checks: no such request
  });

  it('signs out: the session is forgotten and its CSRF token with it', async () => {
    const c = new Client(t.httpUrl);
    await c.signIn();
    const old = c.jar.get('jit_ui')!;
    const csrf = await c.csrf('/ui/reviews');
    const out = await c.fetch('/ui/logout', { method: 'POST', headers: { origin: t.httpUrl }, form: { _csrf: csrf } });
    expect(out.status).toBe(303);
    expect((await c.fetch('/ui/reviews')).status).toBe(303);
    // The old cookie, replayed, is refused on this broker.
    const replay = await fetch(`${t.httpUrl}/ui/reviews`, { headers: { cookie: `jit_ui=${old}` }, redirect: 'manual' });
    expect(replay.status).toBe(303);
  });

  it("serves only the assets folder's files, with their types", async () => {
    const c = new Client(t.httpUrl);
    const css = await c.fetch('/ui/assets/app.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(css.headers.get('cache-control')).toMatch(/max-age=\d+/);
    expect((await c.fetch('/ui/assets/app.js')).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    for (const p of ['/ui/assets/..%2Findex.ts', '/ui/assets/../index.ts', '/ui/assets/nope.css', '/ui/assets/%2e%2e%2fhtml.ts'])
      expect((await c.fetch(p)).status, p).toBe(404);
    const etag = css.headers.get('etag')!;
    expect((await c.fetch('/ui/assets/app.css', { headers: { 'if-none-match': etag } })).status).toBe(304);
  });
});

describe('pieces', () => {
  it('safeNext keeps console paths only', () => {
    expect(safeNext('/ui/sessions?open=true')).toBe('/ui/sessions?open=true');
    for (const bad of [
      '//evil.example/ui/',
      '/\\evil.example',
      'https://evil.example/ui/',
      '/api/approvals',
      '/ui/../api/x',
      '/uix',
      'javascript:alert(1)',
      undefined,
      3,
    ])
      expect(safeNext(bad), String(bad)).toBe('/ui/reviews');
  });

  it('sameOrigin: Origin, else Referer, must name the host asked; the public URL counts', () => {
    const req = (headers: Record<string, string>) => ({ headers: { host: '127.0.0.1:8080', ...headers } }) as unknown as FastifyRequest;
    expect(sameOrigin(req({ origin: 'http://127.0.0.1:8080' }), undefined)).toBe(true);
    expect(sameOrigin(req({ referer: 'http://127.0.0.1:8080/ui/reviews' }), undefined)).toBe(true);
    expect(sameOrigin(req({ origin: 'http://127.0.0.1:8081' }), undefined)).toBe(false);
    expect(sameOrigin(req({ origin: 'null' }), undefined)).toBe(false);
    expect(sameOrigin(req({}), undefined)).toBe(false);
    expect(sameOrigin(req({ origin: 'https://jit.acme.test' }), 'https://jit.acme.test')).toBe(true);
  });

  it('cookies parse and serialize', () => {
    expect(parseCookies('a=1; jit_ui=x.y-z; a=2')).toEqual(
      new Map([
        ['a', '1'],
        ['jit_ui', 'x.y-z'],
      ]),
    );
    expect(serializeCookie('n', 'v', { path: '/ui', maxAge: 60, secure: true, sameSite: 'Strict' })).toBe(
      'n=v; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=60; Secure',
    );
    expect(() => serializeCookie('n', 'a;b', { path: '/ui', secure: false, sameSite: 'Lax' })).toThrow();
  });

  it('viewers and deciders: claims globs; groups matched against the approvers list; the local admin is trusted', () => {
    expect(isViewer(undefined, {})).toBe(true);
    expect(isViewer({ email: '*@acme.test' }, { email: 'ana@acme.test' })).toBe(true);
    expect(isViewer({ email: '*@acme.test', groups: 'dba' }, { email: 'ana@acme.test', groups: ['dev'] })).toBe(false);
    const r = {
      state: 'pending',
      approvals: [],
      subject: 'ci',
      claims: { email: 'dev@acme.test' },
      settings: { approvers: ['@dba', 'boss@acme.test'], minApprovals: 1 },
    } as unknown as ApprovalRequest;
    const ana = { via: 'oidc', sub: 'ana', name: 'Ana', email: 'ana@acme.test', groups: ['DBA', 'dev'] } as const;
    expect(deciderOf({ ...ana, groups: [...ana.groups] }, r)).toEqual({ by: 'ui:ana@acme.test', email: 'ana@acme.test', groups: ['@dba'] });
    expect(canDecide({ ...ana, groups: [...ana.groups] }, r)).toEqual({ ok: true });
    expect(canDecide({ ...ana, groups: ['dev'] }, r)).toMatchObject({ ok: false });
    expect(canDecide({ ...ana, email: 'dev@acme.test', groups: ['dba'] }, r)).toMatchObject({ ok: false, why: expect.stringContaining('own request') });
    expect(deciderOf({ via: 'local', sub: 'admin', name: 'admin', email: null, groups: [] }, r)).toEqual({ by: 'ui:admin', trusted: true });
  });
});
