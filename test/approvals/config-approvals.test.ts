// The config keys of approvals: a review rule's approvers/timeout/min_approvals/scope, the slack
// block, and the review settings a Decision carries.
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type Config } from '../../broker/config.js';
import { classify, decide, loadPostgresParser } from '../../broker/policy/index.js';
import type { Identity } from '../../broker/types.js';

const MIN = 'targets: { app: { engine: postgres, upstream: demo } }\n';
const parse = (text: string): Config => parseConfig(`${MIN}${text}`, { file: '/srv/jit/jit.yaml', baseDir: '/srv/jit', env: {} });

function problems(text: string): string[] {
  try {
    parse(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

const who: Identity = { subject: 'ci', issuer: 'x', build: null, claims: {}, actors: [], tokenId: null, expiresAt: new Date(Date.now() + 60_000) };

beforeAll(() => loadPostgresParser());

describe('review rules', () => {
  it('take approvers, timeout (a duration), min_approvals and scope; the decision carries them', () => {
    const c = parse(`
rules:
  - id: migrations
    kinds: [ddl]
    action: review
    approvers: [U0123ABC, dba@acme.com, "@dba-oncall"]
    timeout: 15m
    min_approvals: 2
    scope: session
  - { id: drops, kinds: [destructive], action: review }
`);
    expect(c.rules[0]).toMatchObject({ approvers: ['U0123ABC', 'dba@acme.com', '@dba-oncall'], timeout: 900, min_approvals: 2, scope: 'session' });
    const policy = { rules: c.rules, default: c.default };
    expect(decide(policy, who, 'app', classify('postgres', 'CREATE TABLE t (a int)')).review).toEqual({
      approvers: ['U0123ABC', 'dba@acme.com', '@dba-oncall'],
      timeoutSeconds: 900,
      minApprovals: 2,
      scope: 'session',
    });
    // Defaults: anyone, 5 minutes, one approval, this execution only.
    expect(decide(policy, who, 'app', classify('postgres', 'DROP TABLE t')).review).toEqual({
      approvers: [],
      timeoutSeconds: 300,
      minApprovals: 1,
      scope: 'statement',
    });
    // Only a review carries them.
    expect(decide(policy, who, 'app', classify('postgres', 'SELECT 1')).review).toBeUndefined();
    expect(decide({ rules: [], default: 'review' }, who, 'app', classify('postgres', 'SELECT 1')).review).toMatchObject({ timeoutSeconds: 300 });
  });

  it('refuses review settings on other actions, impossible quorums, zero timeouts and unknown scopes', () => {
    expect(problems('rules: [{ id: r, action: allow, approvers: [U1], timeout: 5m }]')).toEqual([
      'rules[0].approvers: approvers applies only to a rule with action: review',
      'rules[0].timeout: timeout applies only to a rule with action: review',
    ]);
    expect(problems('rules: [{ id: r, action: review, approvers: [U1], min_approvals: 2 }]')).toEqual([
      'rules[0].min_approvals: min_approvals is 2 but only 1 approver(s) are listed: no request could ever be approved',
    ]);
    parse('rules: [{ id: r, action: review, approvers: ["@dba"], min_approvals: 3 }]'); // a group may hold enough people
    expect(problems('rules: [{ id: r, action: review, timeout: 0s }]')[0]).toMatch(/^rules\[0\]\.timeout: timeout must be longer than 0s/);
    expect(problems('rules: [{ id: r, action: review, timeout: soon }]')[0]).toMatch(/^rules\[0\]\.timeout: 'soon' is not a duration/);
    expect(problems('rules: [{ id: r, action: review, min_approvals: 0 }]')[0]).toMatch(/^rules\[0\]\.min_approvals:/);
    expect(problems('rules: [{ id: r, action: review, scope: build }]')[0]).toMatch(/^rules\[0\]\.scope:.*"statement"\|"session"/);
  });

  it('counts a group written with spaces around it as a group, as the bot and approvals do', () => {
    // It was one person here (so min_approvals: 3 was refused as impossible) and a group to the bot.
    expect(parse('rules: [{ id: r, action: review, approvers: [" @dba", U1], min_approvals: 3 }]').rules[0]?.approvers).toEqual([' @dba', 'U1']);
  });
});

describe('slack', () => {
  it('is optional; when present it needs bot_token, signing_secret and channel', () => {
    expect(parse('').slack).toBeUndefined();
    const c = parse(
      'slack: { bot_token: xoxb-1-2, signing_secret: s3cret, channel: "#db-approvals", app_token: xapp-1-x, api_url: "http://127.0.0.1:9/api/" }',
    );
    expect(c.slack).toEqual({
      bot_token: 'xoxb-1-2',
      signing_secret: 's3cret',
      channel: '#db-approvals',
      app_token: 'xapp-1-x',
      api_url: 'http://127.0.0.1:9/api/',
    });
    expect(problems('slack: { bot_token: xoxb-1 }').sort()).toEqual([
      'slack.channel: Invalid input: expected string, received undefined',
      'slack.signing_secret: Invalid input: expected string, received undefined',
    ]);
  });

  it('catches swapped tokens and a bad api_url', () => {
    const p = problems('slack: { bot_token: xapp-1, signing_secret: s, channel: C1, app_token: xoxb-1, api_url: "not a url" }');
    expect(p).toContain('slack.bot_token: a Slack bot token starts with xoxb-');
    expect(p).toContain('slack.app_token: a Slack app-level token starts with xapp-');
    expect(p.some((x) => x.startsWith('slack.api_url:'))).toBe(true);
  });
});
