#!/usr/bin/env node
// The `imgcache-server` command. It runs the JavaScript that `npm install` compiled into dist/ (the `prepare`
// script); a checkout installed without scripts has no dist/ and runs the TypeScript sources through tsx instead.
import { existsSync } from 'node:fs';

const compiled = new URL('../../dist/src/main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../main.ts');
}
