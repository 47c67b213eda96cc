#!/usr/bin/env node
// The `imgcache` command. It runs the JavaScript that `npm install` compiled into dist/ (the `prepare` script), so it
// starts without compiling anything; a checkout installed without scripts has no dist/ and runs the TypeScript
// sources through tsx instead, a few hundred milliseconds slower to start.
import { existsSync } from 'node:fs';

const compiled = new URL('../../dist/client/run-cli.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../run-cli.ts');
}
