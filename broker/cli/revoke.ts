// `jit revoke` and `jit revocations`: revoke a build (every token of it, parents and exchanged
// children) or one token, ending its open sessions, through the running broker's admin API
// (POST/GET /api/revocations; listen.http + admin_token of the config, or --url / JIT_ADMIN_TOKEN).
import { userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../config.js';
import type { RevocationJson } from '../http/api-revocations.js';
import { ApiError, call, target } from './api.js';
import { formatTable } from './format.js';

export function registerRevokeCommands(program: Command, config: () => Config): void {
  program
    .command('revoke')
    .description('revoke a build or a token on the running broker: refused from now on, its open sessions ended')
    .option('--build <id>', 'build id, as `jit sessions` shows it (every token of the build, exchanged ones too)')
    .option('--jti <id>', 'one token by its jti (and the tokens exchanged from it)')
    .option('--reason <text>', 'why: recorded, and shown to the sessions it ends', 'revoked with jit revoke')
    .option('--by <name>', 'who revokes, recorded as cli:<name> (default: your user name)')
    .option('--url <url>', 'the broker HTTP API (default: listen.http of the config)')
    .option('--json', 'machine-readable output')
    .action(async (o: { build?: string; jti?: string; reason: string; by?: string; url?: string; json?: boolean }) => {
      if (!o.build && !o.jti) throw new InvalidArgumentError('name what to revoke: --build ID and/or --jti ID');
      const body = { ...(o.build ? { build: o.build } : {}), ...(o.jti ? { jti: o.jti } : {}), reason: o.reason, by: `cli:${o.by ?? userInfo().username}` };
      const { status, data } = await call<{ revocation?: RevocationJson; ended?: string[]; error?: string }>(
        target(config(), o.url),
        'POST',
        '/api/revocations',
        body,
      );
      if (status !== 201 || !data.revocation) throw new ApiError(`revoke: ${data.error ?? `HTTP ${status}`}`);
      if (o.json) return void process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      const r = data.revocation;
      const what = [r.build ? `build '${r.build}'` : '', r.jti ? `token ${r.jti}` : ''].filter(Boolean).join(' and ');
      const ended = data.ended ?? [];
      process.stdout.write(
        `revoked ${what} (revocation ${r.id}): ${ended.length ? `${ended.length} open session(s) ended: ${ended.join(', ')}` : 'no open session'}\n`,
      );
    });

  program
    .command('revocations')
    .description('list the revoked builds and tokens of the running broker')
    .option('--build <id>', 'only this build')
    .option('--url <url>', 'the broker HTTP API (default: listen.http of the config)')
    .option('--json', 'machine-readable output')
    .action(async (o: { build?: string; url?: string; json?: boolean }) => {
      const q = o.build ? `?build=${encodeURIComponent(o.build)}` : '';
      const { status, data } = await call<{ revocations?: RevocationJson[]; error?: string }>(target(config(), o.url), 'GET', `/api/revocations${q}`);
      if (!data.revocations) throw new ApiError(`revocations: ${data.error ?? `HTTP ${status}`}`);
      if (o.json) return void process.stdout.write(`${JSON.stringify(data.revocations, null, 2)}\n`);
      if (!data.revocations.length) return void process.stdout.write('no revocations\n');
      process.stdout.write(
        formatTable(
          ['ID', 'BUILD', 'JTI', 'BY', 'AT', 'REASON'],
          data.revocations.map((r) => [String(r.id), r.build ?? '', r.jti ?? '', r.revokedBy, r.revokedAt, r.reason.replace(/\s+/g, ' ').slice(0, 80)]),
        ),
      );
    });
}
