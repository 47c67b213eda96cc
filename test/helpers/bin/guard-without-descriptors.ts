/**
 * Run with a low open-file limit (`ulimit -n`): locks and guards a history in the folder given, then takes every
 * file descriptor left and prints, as JSON, what the guard says then ({"lost": null} or its message), and what it
 * says once they are given back.
 */
import { closeSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { guardHistory } from '../../../db/history-guard.ts';
import { lockHistory } from '../../../db/instance-lock.ts';

const history = path.join(process.argv[2] ?? '.', 'history.sqlite');
writeFileSync(history, '');
const lock = lockHistory(history);
const guard = guardHistory(history, lock.file);
const taken: number[] = [];
let exhausted = false;
try {
  for (let count = 0; count < 100_000; count++) taken.push(openSync('/dev/null', 'r'));
} catch (error) {
  exhausted = (error as NodeJS.ErrnoException).code === 'EMFILE';
}
const whileExhausted = guard.check()?.message ?? null;
for (const fd of taken) closeSync(fd);
const afterwards = guard.check()?.message ?? null;
lock.release();
console.log(JSON.stringify({ exhausted, whileExhausted, afterwards }));
