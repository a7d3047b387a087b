// With ui.public_url set, the approval message links to the request's page in the web console (pending and
// ended alike); without it, no link.
import { afterEach, describe, expect, it } from 'vitest';
import type { types } from '@slack/bolt';
import { approvalBlocks, consoleLink } from '../../bot/messages.js';
import { makeRequest, startHarness, type Harness } from '../support/bot-harness.js';

type Block = types.KnownBlock & { block_id?: string };

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const idsText = (blocks: Block[]) => JSON.stringify(blocks.find((b) => b.block_id === 'ids'));

describe('the approval message links to the console', () => {
  it('posts and updates the message with <public_url>/ui/reviews/<id>', async () => {
    h = await startHarness({ consoleUrl: 'https://jit.acme.test' });
    const req = h.approvals.request();
    const post = await h.slack.waitFor('chat.postMessage');
    const url = `https://jit.acme.test/ui/reviews/${req.id}`;
    expect(idsText(post.args['blocks'] as Block[])).toContain(`<${url}|Open in the console>`);
    h.approvals.end(req.id, 'expired');
    const update = await h.slack.waitFor('chat.update');
    expect(idsText(update.args['blocks'] as Block[])).toContain(`<${url}|Open in the console>`);
  });

  it('has no link without a public URL', async () => {
    h = await startHarness();
    h.approvals.request();
    const post = await h.slack.waitFor('chat.postMessage');
    expect(idsText(post.args['blocks'] as Block[])).not.toContain('/ui/reviews/');
  });

  it('builds the link from a URL with or without a trailing slash, the id encoded', () => {
    const r = makeRequest({ id: 'a_0123456789abcdef' });
    expect(consoleLink(r, 'https://jit.acme.test/')).toBe('https://jit.acme.test/ui/reviews/a_0123456789abcdef');
    expect(consoleLink(r, undefined)).toBeNull();
    expect(idsText(approvalBlocks(r))).not.toContain('console');
  });
});
