// Next fire times of recurring schedules (protocol.md section 14.5), pinned by
// conformance/vectors/v1/schedule-next.json. The dialect is small and exactly specified (five
// numeric fields, UTC, Vixie's day rule), and cron libraries differ on exactly those points, so
// it is written here to agree with Python to the minute.

const FIELDS = [['minute', 0, 59], ['hour', 0, 23], ['day of month', 1, 31], ['month', 1, 12], ['day of week', 0, 7]];
const MAX_STEP = 1000; // 1 <= s <= 1000
export const SEARCH_YEARS = 5; // an expression with no fire time within five years is invalid

export class CronError extends Error {}

function number(text, low, high, name) {
  if (!/^[0-9]+$/.test(text)) throw new CronError(`${name}: ${JSON.stringify(text)} is not a number`);
  const v = Number(text);
  if (v < low || v > high) throw new CronError(`${name}: ${v} is outside ${low}-${high}`);
  return v;
}

/** The set of values one field allows. */
function field(text, low, high, name) {
  const values = new Set();
  for (const item of text.split(',')) {
    const slash = item.indexOf('/');
    const body = slash < 0 ? item : item.slice(0, slash);
    const step = slash < 0 ? 1 : number(item.slice(slash + 1), 1, MAX_STEP, name);
    let start;
    let stop;
    if (body === '*') {
      [start, stop] = [low, high];
    } else if (body.includes('-')) {
      const dash = body.indexOf('-');
      start = number(body.slice(0, dash), low, high, name);
      stop = number(body.slice(dash + 1), low, high, name);
      if (start > stop) throw new CronError(`${name}: range ${body} runs backwards`);
    } else {
      start = number(body, low, high, name);
      stop = slash < 0 ? start : high;
    }
    for (let v = start; v <= stop; v += step) values.add(v);
  }
  return values;
}

export class Cron {
  /** Parses a five-field expression; throws CronError when it is not in the dialect. */
  static parse(expression) {
    const parts = String(expression).split(/[ \t]+/).filter((p) => p !== '');
    if (parts.length !== 5) throw new CronError(`a cron expression has five fields, not ${parts.length}: ${JSON.stringify(expression)}`);
    const c = new Cron();
    const sets = parts.map((p, i) => field(p, FIELDS[i][1], FIELDS[i][2], FIELDS[i][0]));
    [c.minutes, c.hours, c.days, c.months] = sets;
    c.weekdays = new Set([...sets[4]].map((d) => (d === 7 ? 0 : d)));
    c.dayStar = parts[2].startsWith('*');
    c.weekdayStar = parts[4].startsWith('*');
    return c;
  }

  /** Vixie cron: both day fields must match, unless neither begins with "*" (then either). */
  dayMatches(d) {
    const inMonth = this.days.has(d.getUTCDate());
    const inWeek = this.weekdays.has(d.getUTCDay());
    if (this.dayStar || this.weekdayStar) return inMonth && inWeek;
    return inMonth || inWeek;
  }

  /** The first whole minute strictly after `afterMs` that matches, in ms; null if none within 5 years. */
  nextAfter(afterMs) {
    const t = new Date((Math.floor(afterMs / 60000) + 1) * 60000);
    const limit = t.getUTCFullYear() + SEARCH_YEARS;
    while (t.getUTCFullYear() <= limit) {
      if (!this.months.has(t.getUTCMonth() + 1)) {
        t.setUTCMonth(t.getUTCMonth() + 1, 1);
        t.setUTCHours(0, 0, 0, 0);
      } else if (!this.dayMatches(t)) {
        t.setUTCDate(t.getUTCDate() + 1);
        t.setUTCHours(0, 0, 0, 0);
      } else if (!this.hours.has(t.getUTCHours())) {
        t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      } else if (!this.minutes.has(t.getUTCMinutes())) {
        t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      } else {
        return t.getTime();
      }
    }
    return null;
  }
}

/** The first fire time of a (valid) schedule definition strictly after `afterMs`; null if none. */
export function nextFireMs(definition, afterMs) {
  if (definition.cron !== undefined) return Cron.parse(definition.cron).nextAfter(afterMs);
  const every = definition.every_ms;
  const start = definition.start_ms ?? 0;
  if (afterMs < start) return start;
  return start + (Math.floor((afterMs - start) / every) + 1) * every;
}
