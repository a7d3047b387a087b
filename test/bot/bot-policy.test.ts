// Slack and policy versions (issue 15, point 6): `/jit policy` shows the active version, who applied it and when,
// and its rules, read from a real store; the approval message names the rule and the version that held it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../broker/store/index.js';
import { commandBody } from '../support/fake-slack.js';
import { startHarness, type Harness } from '../support/bot-harness.js';

let h: Harness | undefined;
let store: Store | undefined;
let dir = '';
afterEach(async () => {
  await h?.close();
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  h = undefined;
  store = undefined;
});

/** The harness, with the store's policy versions coming from a real SQLite store. */
async function withStore(): Promise<{ h: Harness; store: Store }> {
  dir = mkdtempSync(join(tmpdir(), 'jit-bot-policy-'));
  store = await openStore(`sqlite:${join(dir, 'jit.db')}`);
  h = await startHarness();
  const s = store;
  Object.assign(h.store, { getPolicyVersion: (v?: number) => s.getPolicyVersion(v) });
  return { h, store: s };
}

async function jit(text: string, name: string): Promise<string> {
  const res = await h!.send(commandBody({ user: 'U04EVE', text, responseUrl: h!.slack.responseUrl(name) }));
  expect(res.statusCode).toBe(200);
  const reply = await h!.slack.waitForResponse(name);
  return `${String(reply['text'])}\n${JSON.stringify(reply['blocks'] ?? [])}`;
}

describe('/jit policy', () => {
  it('shows the active version, who applied it and when, and a summary of its rules', async () => {
    const { store } = await withStore();
    expect(await jit('policy', 'none')).toContain('No policy version is stored yet');
    await store.addPolicyVersion({
      rules: { rules: [{ id: 'reads', kinds: ['read'], action: 'allow' }], default: 'deny' },
      author: 'config',
      message: null,
      appliedAt: new Date(),
    });
    await store.addPolicyVersion({
      rules: {
        rules: [
          { id: 'no-prod-writes', kinds: ['write', 'destructive'], targets: ['prod'], builds: ['ci-*'], action: 'deny' },
          { id: 'drops', kinds: ['destructive'], action: 'review', approvers: ['@dba-oncall'] },
        ],
        default: 'review',
      },
      author: 'cli:alice',
      message: 'freeze prod writes',
      appliedAt: new Date(Date.UTC(2025, 0, 31, 9, 30)),
    });
    const reply = await jit('policy', 'active');
    expect(reply).toContain('Policy version 2 (active) · applied by cli:alice');
    expect(reply).toMatch(/<!date\^\d+\^\{date_short\} \{time\}\|2025-01-31T09:30:00Z>/);
    expect(reply).toContain('freeze prod writes');
    expect(reply).toContain('• `no-prod-writes`: *deny* write, destructive · on prod · builds ci-*');
    expect(reply).toContain('• `drops`: *review* destructive · approvers @dba-oncall');
    expect(reply).toContain('Otherwise (no rule matches): *review*');
    expect(reply).not.toContain('reads'); // version 1 is not the active one
    expect(reply).not.toMatch(/https?:\/\//);
    expect(await jit('help', 'help')).toContain('policy* — the active policy version');
  });
});

describe('approval message', () => {
  it('names the rule and the policy version that held the statement', async () => {
    h = await startHarness();
    h.approvals.request({ id: 'apr_v', ruleId: 'drops', policyVersion: 7 });
    const post = await h.slack.waitFor('chat.postMessage');
    expect(JSON.stringify(post.args['blocks'])).toContain('*Rule*\\n`drops` · policy v7');
  });
});
