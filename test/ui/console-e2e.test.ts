// The web console end to end, in a real browser (Debian's Chromium through playwright-core): people sign in at a
// real OpenID Connect provider (oidc-provider, PKCE required), a psql client's DROP TABLE is held by a review rule,
// shows up in the inbox without a reload, is approved from its page with the keyboard (the client finishes, the
// inbox moves it to settled, live); another is denied with a reason; a non-approver gets no buttons and a forged
// POST is refused, as is a POST without the CSRF token; the session page's player steps; statements and samples
// that carry markup stay text; the CSP header is there; axe-core finds no serious or critical violation.
// Screenshots of the main pages go to test-artifacts/ui/ (git-ignored).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchBrowser, newContext, type TestContext } from '../support/browser.js';
import { direct, eventually, psqlEnv, run, startTestBroker, type RunResult, type TestBroker } from '../support/broker.js';
import { CLIENT_ID, CLIENT_SECRET, startIdp, type TestIdp } from '../support/oidc-provider.js';

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'ui');
const TABLES = ['ui_e2e_approved', 'ui_e2e_denied', 'ui_e2e_forged'];
const XSS_SQL = '<script>alert(1)</script>';
const XSS_VALUE = '"><img src=x onerror=alert(1)>';

let idp: TestIdp;
let t: TestBroker;
let browser: Browser;
let alice: TestContext;
let inbox: Page;

const rules = () => `
rules:
  - { id: ui-drops, tables: ["ui_e2e_*"], kinds: [destructive], action: review, approvers: ["@dba"], timeout: 3m }
  - { id: day-to-day, kinds: [read, write], action: allow }
default: deny
ui:
  oidc: { issuer: "${idp.issuer}", client_id: ${CLIENT_ID}, client_secret: ${CLIENT_SECRET}, scopes: [openid, email, profile, groups] }
  viewers: { email: "*@acme.test" }
`;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  idp = await startIdp();
  t = await startTestBroker(rules());
  idp.start(`${t.httpUrl}/ui/callback`);
  browser = await launchBrowser();
  await direct(async (c) => {
    for (const name of TABLES) await c.query(`DROP TABLE IF EXISTS ${name}; CREATE TABLE ${name} (id int)`);
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
  await idp?.close();
  await direct(async (c) => {
    for (const name of TABLES) await c.query(`DROP TABLE IF EXISTS ${name}`);
  }).catch(() => {});
});

const url = (path: string) => `${t.httpUrl}${path}`;

/** Signs `login` in through the identity provider's pages; returns the page, on the inbox. */
async function signIn(tc: TestContext, login: string, start = '/ui/'): Promise<Page> {
  const page = await tc.newPage();
  await page.goto(url(start));
  await page.waitForURL(/\/ui\/login\?next=/);
  await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
  await page.waitForURL((u) => u.href.startsWith(idp.issuer));
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'any password');
  await page.click('button[type=submit]');
  // The provider asks for consent the first time (a "Continue" button), then sends the browser back.
  await page.waitForURL((u) => u.href.startsWith(t.httpUrl) || /\/interaction\//.test(u.pathname));
  if (page.url().startsWith(idp.issuer)) await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.href.startsWith(t.httpUrl) && !u.pathname.startsWith('/ui/callback'));
  return page;
}

/** Opens `path` and waits for its live-update stream to be connected. */
async function openLive(tc: TestContext, path: string): Promise<Page> {
  const page = await tc.newPage();
  const stream = page.waitForResponse((r) => r.url().endsWith('/ui/events'));
  await page.goto(url(path));
  expect((await stream).status()).toBe(200);
  // A reload would drop this attribute: it tells live updates from reloads.
  await page.evaluate(() => document.body.setAttribute('data-e2e-mark', 'never reloaded'));
  return page;
}

const token = (build: string) => t.token({ subject: 'repo:acme/app:ref:refs/heads/main', build, claims: { email: 'dev@acme.test' } });

/** psql in a child process, as a CI job would run it. */
async function psql(build: string, ...sql: string[]): Promise<RunResult> {
  return run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', ...sql.flatMap((s) => ['-c', s])], psqlEnv(t, await token(build)));
}

const heldFor = (table: string) => eventually(async () => t.broker.approvals.pending().find((r) => r.sql.includes(table)), 15_000);

const section = (page: Page, which: 'pending' | 'settled') => page.locator(`section[aria-labelledby="${which}"]`);

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

// Without Chromium (a developer machine without it) the file is skipped; CI installs it (.ci/run) and never skips.
describe.skipIf(!hasChromium() && !process.env.CI)('the web console in a browser', () => {
  it('refuses someone ui.viewers does not name, and signs an approver in through OpenID Connect', { timeout: 60_000 }, async () => {
    const stranger = await newContext(browser);
    const page = await signIn(stranger, 'mallory');
    expect(page.url()).toContain('/ui/login?error=viewer');
    await expect.poll(() => page.locator('[role=alert]').textContent()).toContain('not open to you');
    await stranger.context.close();

    alice = await newContext(browser, { width: 1600 });
    const signedIn = await signIn(alice, 'alice', '/ui/reviews?target=app');
    expect(new URL(signedIn.url()).pathname + new URL(signedIn.url()).search).toBe('/ui/reviews?target=app');
    expect(await signedIn.locator('header .user').textContent()).toBe('Alice DBA');
    const res = await signedIn.goto(url('/ui/reviews'));
    expect(res!.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(res!.headers()['x-content-type-options']).toBe('nosniff');
    await shot(signedIn, 'sign-in-done');
    await signedIn.close();
  });

  it('a held DROP TABLE shows up live, is approved from its page with the keyboard, and the inbox settles it live', { timeout: 90_000 }, async () => {
    inbox = await openLive(alice, '/ui/reviews');
    const client = psql('ui-e2e-1', 'DROP TABLE ui_e2e_approved');
    const req = await heldFor('ui_e2e_approved');
    const link = section(inbox, 'pending').locator(`a[href="/ui/reviews/${req.id}"]`);
    await link.waitFor({ timeout: 10_000 });

    const review = await alice.newPage();
    await review.goto(url(`/ui/reviews/${req.id}`));
    await shot(review, 'review');
    // Keyboard only: Tab until the Approve button has focus, then Enter.
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await review.keyboard.press('Tab');
      reached = await review.evaluate(() => {
        const a = document.activeElement;
        return a instanceof HTMLButtonElement && a.classList.contains('approve');
      });
    }
    expect(reached, 'Tab reaches the Approve button').toBe(true);
    await review.keyboard.press('Enter');
    await review.waitForURL((u) => u.search === '?done=approved');
    expect(await review.locator('.flash').textContent()).toContain('You approved');

    const done = await client;
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain('DROP TABLE');
    expect(await direct((c) => c.query("SELECT to_regclass('ui_e2e_approved') AS t"))).toMatchObject({ rows: [{ t: null }] });

    await section(inbox, 'settled').locator(`a[href="/ui/reviews/${req.id}"]`).waitFor({ timeout: 10_000 });
    expect(await section(inbox, 'pending').locator(`a[href="/ui/reviews/${req.id}"]`).count()).toBe(0);
    expect(await inbox.evaluate(() => document.body.getAttribute('data-e2e-mark'))).toBe('never reloaded');
    await review.close();
  });

  it('denies another from the inbox with a reason; the client is told it; markup in the statement stays text', { timeout: 60_000 }, async () => {
    const client = psql('ui-e2e-2', `DROP TABLE ui_e2e_denied /* ${XSS_SQL} */`);
    const req = await heldFor('ui_e2e_denied');
    const row = section(inbox, 'pending').locator('tr', { has: inbox.locator(`a[href="/ui/reviews/${req.id}"]`) });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.locator('code').first().textContent()).toContain(XSS_SQL);
    await row.getByLabel(`Reason for denying ${req.id}`).fill('not the orders table today');
    await row.getByRole('button', { name: `Deny ${req.id}` }).click();
    await inbox.waitForURL((u) => u.pathname === '/ui/reviews');
    const done = await client;
    expect(done.code).not.toBe(0);
    expect(done.stderr).toContain('not the orders table today');
    expect(done.stderr).toContain('denied by ui:alice@acme.test');
    const settled = section(inbox, 'settled').locator('tr', { has: inbox.locator(`a[href="/ui/reviews/${req.id}"]`) });
    expect(await settled.textContent()).toContain('not the orders table today');
    expect(await inbox.locator('script:not([src])').count()).toBe(0);
    expect(alice.dialogs).toEqual([]);
  });

  it('a non-approver sees no Approve button, and a forged POST is refused; a POST without the CSRF token is refused', { timeout: 90_000 }, async () => {
    const client = psql('ui-e2e-3', 'DROP TABLE ui_e2e_forged');
    const req = await heldFor('ui_e2e_forged');
    const bob = await newContext(browser);
    const bobs = await signIn(bob, 'bob');
    expect(await bobs.locator('button.approve').count()).toBe(0); // the inbox: nothing Bob may decide
    await bobs.goto(url(`/ui/reviews/${req.id}`));
    expect(await bobs.locator('button.approve').count()).toBe(0);
    expect(await bobs.locator('#why-not').textContent()).toContain('not among the approvers');
    // Bob forges the form Alice has: his own session, his own CSRF token, the right origin.
    const csrf = await bobs.locator('input[name=_csrf]').first().inputValue();
    const forged = await bob.context.request.post(url(`/ui/reviews/${req.id}/approve`), {
      form: { _csrf: csrf },
      headers: { origin: t.httpUrl },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect(await forged.text()).toContain('is not among the approvers of this request');
    // Alice's session without the CSRF field, and with it from another origin.
    const noToken = await alice.context.request.post(url(`/ui/reviews/${req.id}/approve`), {
      form: { reason: 'x' },
      headers: { origin: t.httpUrl },
      maxRedirects: 0,
    });
    expect(noToken.status()).toBe(403);
    const aliceCsrf = await inbox.locator('input[name=_csrf]').first().inputValue();
    const elsewhere = await alice.context.request.post(url(`/ui/reviews/${req.id}/approve`), {
      form: { _csrf: aliceCsrf },
      headers: { origin: 'http://evil.example' },
      maxRedirects: 0,
    });
    expect(elsewhere.status()).toBe(403);
    expect((await t.broker.approvals.get(req.id))?.state).toBe('pending');
    // The inbox meanwhile: this one pending (it came in live), the two before it settled.
    await section(inbox, 'pending').locator(`a[href="/ui/reviews/${req.id}"]`).waitFor({ timeout: 10_000 });
    await shot(inbox, 'reviews');
    // Signing out closes Bob's live stream and ends his session.
    await bobs.getByRole('button', { name: 'Sign out' }).click();
    await bobs.waitForURL((u) => u.pathname === '/ui/login');
    expect((await bob.context.request.get(url('/ui/reviews'), { maxRedirects: 0 })).status()).toBe(303);
    await bob.context.close();
    // Alice approves it for real: the client goes on.
    const ok = await alice.context.request.post(url(`/ui/reviews/${req.id}/approve`), {
      form: { _csrf: aliceCsrf },
      headers: { origin: t.httpUrl },
      maxRedirects: 0,
    });
    expect(ok.status()).toBe(303);
    expect((await client).code).toBe(0);
  });

  it('the session page shows statements and samples as text, and its player steps', { timeout: 60_000 }, async () => {
    const r = await psql('ui-e2e-xss', 'SELECT 1 AS one', `SELECT '${XSS_SQL}' AS x`, `SELECT '${XSS_VALUE.replace(/'/g, "''")}' AS v`);
    expect(r.code, r.stderr).toBe(0);
    const [s] = await eventually(async () => {
      const list = await t.broker.store.listSessions({ build: 'ui-e2e-xss' });
      return list[0]?.endedAt && list[0].statementCount === 3 ? list : null;
    }, 10_000);
    const page = await alice.newPage();
    await page.goto(url(`/ui/sessions/${s!.id}`));
    const body = (await page.locator('main').textContent()) ?? '';
    expect(body).toContain(XSS_SQL);
    expect(body).toContain(XSS_VALUE);
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(await page.locator('script:not([src])').count()).toBe(0);
    const player = page.locator('[data-player]');
    await player.getByRole('button', { name: 'Step' }).click();
    await expect.poll(() => player.locator('li[aria-current="step"]').getAttribute('data-seq')).toBe('1');
    await player.getByRole('button', { name: 'Step' }).click();
    await expect.poll(() => player.locator('li[aria-current="step"]').getAttribute('data-seq')).toBe('2');
    await shot(page, 'session');
    await page.goto(url('/ui/sessions'));
    await shot(page, 'sessions');
    await page.goto(url('/ui/logins'));
    await shot(page, 'logins');
    await page.goto(url('/ui/policy'));
    await shot(page, 'policy');
    expect(alice.dialogs).toEqual([]);
    expect(alice.pageErrors).toEqual([]);
    await page.close();
  });

  it('every page has labelled fields and no serious or critical axe-core violation', { timeout: 90_000 }, async () => {
    // Injecting axe needs the page's CSP out of the way: this context only.
    const audit = await newContext(browser, { bypassCSP: true });
    const page = await signIn(audit, 'alice');
    const session = (await t.broker.store.listSessions({ build: 'ui-e2e-xss' }))[0]!;
    const request = (await t.broker.approvals.list({ state: 'denied' }))[0]!;
    const paths = ['/ui/reviews', `/ui/reviews/${request.id}`, '/ui/sessions', `/ui/sessions/${session.id}`, '/ui/logins', '/ui/policy', '/ui/policy/1'];
    const axePath = join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js');
    for (const path of paths) {
      await page.goto(url(path));
      const unlabelled = await page.evaluate(() =>
        Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
          .filter((el) => !(el as HTMLInputElement).labels?.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
          .map((el) => el.outerHTML),
      );
      expect(unlabelled, path).toEqual([]);
      // No secret in a page, and the session cookie out of scripts' reach (HttpOnly).
      const content = await page.content();
      expect(content).not.toContain(CLIENT_SECRET);
      expect(await page.evaluate(() => document.cookie)).toBe('');
      await page.addScriptTag({ path: axePath });
      const violations = await page.evaluate(async () => {
        const axe = (window as unknown as { axe: { run(ctx: Document): Promise<{ violations: { id: string; impact: string | null; nodes: unknown[] }[] }> } })
          .axe;
        const result = await axe.run(document);
        return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}, ${v.nodes.length})`);
      });
      expect(violations, path).toEqual([]);
    }
    // The sign-in page too (signed out).
    const anon = await newContext(browser, { bypassCSP: true });
    const signin = await anon.newPage();
    await signin.goto(url('/ui/login'));
    await shot(signin, 'sign-in');
    await signin.addScriptTag({ path: axePath });
    const v = await signin.evaluate(async () => {
      const axe = (window as unknown as { axe: { run(ctx: Document): Promise<{ violations: { id: string; impact: string | null }[] }> } }).axe;
      return (await axe.run(document)).violations.filter((x) => x.impact === 'serious' || x.impact === 'critical').map((x) => x.id);
    });
    expect(v).toEqual([]);
    await anon.context.close();
    await audit.context.close();
  });
});
