// `jit doctor`: check each target of the config before (or beside) a running broker: its password file, whether
// the broker's account logs in, what that account may do, and whether session roles can be created and dropped.
// Exit code 0 without a FAIL, 1 with one (warnings included or not).
import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../config.js';

function timeout(v: string): number {
  const ms = /^\d+$/.test(v) ? Number(v) * 1000 : /^\d+ms$/.test(v) ? Number(v.slice(0, -2)) : /^\d+s$/.test(v) ? Number(v.slice(0, -1)) * 1000 : Number.NaN;
  if (!(ms > 0)) throw new InvalidArgumentError(`'${v}' is not a timeout (e.g. 5s, 500ms)`);
  return ms;
}

export function registerDoctorCommand(program: Command, config: () => Config): void {
  program
    .command('doctor')
    .description("check each target: password file, the broker's account logs in (server version), its privileges, session roles")
    .option('--target <name>', 'only this target')
    .option('--timeout <t>', 'per connection and query: 5s (the default), 500ms', timeout)
    .option('--json', 'machine-readable output')
    .action(async (o: { target?: string; timeout?: number; json?: boolean }) => {
      const c = config();
      if (o.target !== undefined && !Object.hasOwn(c.targets, o.target))
        throw new InvalidArgumentError(`no target '${o.target}' in the config (targets: ${Object.keys(c.targets).join(', ')})`);
      const { doctorJson, failed, renderDoctor, runDoctor } = await import('../doctor/index.js');
      const reports = await runDoctor(c, { only: o.target, timeoutMs: o.timeout ?? 5000 });
      process.stdout.write(o.json ? doctorJson(reports) : renderDoctor(reports));
      process.exitCode = failed(reports) ? 1 : 0;
    });
}
