/**
 * Milliseconds since the epoch as an ISO 8601 string, the same as `new Date(ms).toISOString()` but several times
 * faster in a usage export, where it runs once per event: the date part is computed once per day, and the time of
 * day is plain arithmetic.
 */

const DAY_MS = 86_400_000;
/** 0001-01-01 and 9999-12-31: outside, years have other than four digits, so leave them to Date. */
const FIRST_DAY = -719_162;
const LAST_DAY = 2_932_896;

let cachedDay = Number.NaN;
let cachedDate = '';

export function isoTime(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  if (!Number.isSafeInteger(ms) || day < FIRST_DAY || day > LAST_DAY) return new Date(ms).toISOString();
  if (day !== cachedDay) {
    cachedDay = day;
    cachedDate = new Date(day * DAY_MS).toISOString().slice(0, 11);
  }
  const time = ms - day * DAY_MS;
  const hours = pad(Math.floor(time / 3_600_000), 2);
  const minutes = pad(Math.floor(time / 60_000) % 60, 2);
  const seconds = pad(Math.floor(time / 1000) % 60, 2);
  return `${cachedDate}${hours}:${minutes}:${seconds}.${pad(time % 1000, 3)}Z`;
}

function pad(value: number, digits: number): string {
  return String(value).padStart(digits, '0');
}
