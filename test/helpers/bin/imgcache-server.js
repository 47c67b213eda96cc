// The `imgcache-server` command run from its TypeScript sources, so that tests see the code as it is, not the last
// build.
import { register } from 'tsx/esm/api';

register();
await import('../../../src/main.ts');
