// A real browser for the console's end-to-end tests: Debian's Chromium, headless, driven by playwright-core (no
// browser download). Requests to anything but this machine are aborted (the identity provider's dev pages import
// a web font), and a page's dialogs (alert, confirm) are recorded: an XSS that ran would show up there.
import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.JIT_TEST_CHROMIUM ?? '/usr/bin/chromium';

export const hasChromium = () => existsSync(CHROMIUM);

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface TestContext {
  context: BrowserContext;
  /** Messages of every dialog any of its pages opened (alert(1) from an XSS would land here). */
  dialogs: string[];
  /** Errors thrown by the pages' scripts. */
  pageErrors: string[];
  newPage(): Promise<Page>;
}

export async function newContext(browser: Browser, opts: { bypassCSP?: boolean; width?: number } = {}): Promise<TestContext> {
  const context = await browser.newContext({ bypassCSP: opts.bypassCSP ?? false, viewport: { width: opts.width ?? 1280, height: 900 } });
  await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/]|localhost[:/])/, (route) => route.abort());
  const dialogs: string[] = [];
  const pageErrors: string[] = [];
  const watch = (page: Page) => {
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (e) => pageErrors.push(String(e)));
  };
  context.on('page', watch);
  return { context, dialogs, pageErrors, newPage: () => context.newPage() };
}
