#!/usr/bin/env node
// The `imgcache-server` command: runs the TypeScript server through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../main.ts');
