#!/usr/bin/env node
// The `imgcache` command: runs the TypeScript client through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../run-cli.ts');
