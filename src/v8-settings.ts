/**
 * The V8 settings the server process gives itself when it starts serving.
 *
 * Allocation-site pretenuring is turned off. V8 counts, per allocation site (an object or array literal in the code),
 * how many of its objects survive a young-generation collection; once most do, it allocates that site's objects
 * straight into the old generation from then on. A server that many clients reach at once allocates objects that all
 * live a while at first (their sessions are opening together), and `node --trace-pretenuring` shows V8 deciding to
 * pretenure such a site; but what the server allocates most, from then on, is per request and short-lived. Pretenured,
 * that garbage fills the old generation, which only a mark-compact empties, and the old generation stays large.
 * Measured with 64 clients of 4 KiB images (`npm run bench`'s load generator, a 6 s run each): 6 mark-compacts instead
 * of 2-3, 23 against 19 µs of user CPU per request (31 against 26 with the kernel's), 34-35k against 38-40k requests/s,
 * a peak of 145-147 MiB against 121-122 MiB. With 3 clients no site is pretenured: no change.
 *
 * Set in the running process, the flag has the same effect as on node's command line (measured: the same requests/s
 * and peak). An operator who names it on node's command line keeps their own choice (Node does not take it in
 * NODE_OPTIONS): `node --allocation-site-pretenuring src/bin/imgcache-server.js` runs with V8's default.
 */
import v8 from 'node:v8';

/** The flag either way, as V8 takes it: `-` or `_` between the words, `--no-` to unset it. */
const PRETENURING_FLAG = /^--(no[-_])?allocation[-_]site[-_]pretenuring$/;

/** The flags to set, given node's own arguments (process.execArgv): none that the operator already chose. */
export function serverV8Flags(execArgv: readonly string[]): string[] {
  const operatorChose = execArgv.some((argument) => PRETENURING_FLAG.test(argument));
  return operatorChose ? [] : ['--no-allocation-site-pretenuring'];
}

/** Applies serverV8Flags to this process; returns the flags it set. */
export function applyServerV8Settings(): string[] {
  const flags = serverV8Flags(process.execArgv);
  for (const flag of flags) v8.setFlagsFromString(flag);
  return flags;
}
