// The worker thread that commits history rows (db/commit-thread.ts). A worker does not inherit a TypeScript loader
// registered through the API, so it registers its own; under `tsx` it is already there and this is harmless.
import { register } from 'tsx/esm/api';

register();
await import('./commit-thread.ts');
