// The `jit` command: one commander program; each command group registers itself from its own module
// (start, token, policy, sessions, approvals, revoke, replay, logins), and those that talk to the
// running broker do so through api.ts. Each loads what its command needs when that command runs: `jit --help`
// and `jit --version` load commander and these registrations only, never the config's schema or a store.
import { Command, InvalidArgumentError } from 'commander';
import type { Config } from '../config.js';
import { ConfigError } from '../config-error.js';
import { versionLine } from '../version.js';
import { registerApprovalCommands } from './approvals.js';
import { registerDemoCommand } from './demo.js';
import { registerDoctorCommand } from './doctor.js';
import { registerLoginsCommand } from './logins.js';
import { registerPolicyCommands } from './policy.js';
import { registerReplayCommand } from './replay.js';
import { registerRevokeCommands } from './revoke.js';
import { registerSessionCommands } from './sessions.js';
import { registerStartCommand } from './start.js';
import { registerTokenCommands } from './token.js';

// A reader that goes away early (`jit … | head`) is not an error: stop writing and exit quietly. Nothing
// more can be said on a closed stderr either, so writes there are dropped (a running broker goes on).
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(process.exitCode ?? 0);
});
process.stderr.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});

// `jit --version` / `jit -V`, first on the command line only: `jit policy show --version 2` is a policy version.
if (process.argv[2] === '--version' || process.argv[2] === '-V') {
  process.stdout.write(`jit-broker ${versionLine()}\n`);
  process.exit(0);
}

const program = new Command('jit')
  .description('jit-broker: just-in-time database access for CI pipelines and the agents they spawn')
  // Not commander's .version(): a program option of that name would take `--version N` from the policy commands.
  .addHelpText('after', '\n`jit --version` (or -V) prints the version and the commit it was built from.')
  .option('-c, --config <file>', 'config file (default: ./jit.yaml when present, else the embedded default)')
  .showHelpAfterError();

// The config's schema (zod, yaml) is imported before an action runs, so config() can stay synchronous.
let loadConfig: typeof import('../config.js').loadConfig | null = null;
program.hook('preAction', async () => {
  ({ loadConfig } = await import('../config.js'));
});

function config(): Config {
  if (!loadConfig) throw new Error('the config is read inside an action only'); // preAction has loaded it by then
  return loadConfig(program.opts<{ config?: string }>().config);
}

registerStartCommand(program, config);
registerTokenCommands(program, config);
registerPolicyCommands(program, config);
registerDemoCommand(program);
registerSessionCommands(program, config);
registerApprovalCommands(program, config);
registerRevokeCommands(program, config);
registerReplayCommand(program, config);
registerLoginsCommand(program, config);
registerDoctorCommand(program, config);

program.parseAsync().catch((e: unknown) => {
  const msg = e instanceof ConfigError || e instanceof InvalidArgumentError ? e.message : e instanceof Error ? `jit: ${e.message}` : String(e);
  process.stderr.write(`${msg}\n`);
  process.exit(e instanceof ConfigError || e instanceof InvalidArgumentError ? 2 : 1);
});
