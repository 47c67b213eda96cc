/**
 * The operator's log: pino, one structured line per event; JSON lines for machines, or a readable single line per
 * event on a terminal (pino-pretty, synchronous so that lines are never lost at exit).
 */
import { type Logger, pino } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export function createLogger(level: string, format: 'pretty' | 'json'): Logger {
  if (format === 'json') return pino({ level, base: undefined });
  const stream = pretty({
    sync: true,
    colorize: Boolean(process.stdout.isTTY),
    ignore: 'pid,hostname',
    singleLine: true,
  });
  return pino({ level, base: undefined }, stream);
}

export const silentLogger: Logger = pino({ level: 'silent' });
