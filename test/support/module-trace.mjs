// A preload (`node --import ./test/support/module-trace.mjs`) that records every module a process loads, one
// per line, into the file named by $JIT_MODULE_TRACE: ES modules as they are resolved (a hook, so what an
// import() brings in later counts too), CommonJS ones (require() chains inside packages, which ES module
// hooks do not see on Node 20) from the require cache when the process exits. Tests read it to tell which
// dependencies a command or a broker loaded (test/cli/lean-loading.test.ts).
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const out = process.env.JIT_MODULE_TRACE;
if (out) {
  register(new URL('./module-trace-hooks.mjs', import.meta.url), { data: { out } });
  const require = createRequire(import.meta.url);
  process.on('exit', () => {
    for (const file of Object.keys(require.cache)) appendFileSync(out, `${file}\n`);
  });
}
