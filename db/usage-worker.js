// The worker thread that builds usage documents (db/usage-worker.ts). A worker does not inherit a TypeScript loader
// registered through the API, so it registers its own; under `tsx` it is already there and this is harmless.
import { register } from 'tsx/esm/api';

register();
await import('./usage-worker.ts');
