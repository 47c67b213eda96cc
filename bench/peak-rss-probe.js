/**
 * Preloaded (`node --import`) into a process whose peak memory the bench measures: at exit, writes the process's
 * peak resident set size in bytes (getrusage's maxrss) to the file named by BENCH_PEAK_RSS_FILE.
 */
import { writeFileSync } from 'node:fs';

const target = process.env.BENCH_PEAK_RSS_FILE;
if (target) {
  process.on('exit', () => writeFileSync(target, String(process.resourceUsage().maxRSS * 1024)));
}
