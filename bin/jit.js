#!/usr/bin/env node
// Entry point of the `jit` command: runs the TypeScript sources through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('../broker/cli/index.ts');
