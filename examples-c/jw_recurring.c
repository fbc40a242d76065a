/* jw_recurring.c -- see jw_recurring.h. The dialect is small and exactly
 * specified (five numeric fields, UTC, Vixie's day rule), and cron libraries
 * differ on exactly those points, so it is written here to agree with the
 * Python and Node workers to the minute. SHA-256 (the fire's job id) comes
 * from libmd, a small library (libcrypto mapped 100 dirty pages into the
 * master, which every job's fork copied and every child's exit unmapped). */
#define _GNU_SOURCE
#include "jw_recurring.h"
#include "jw_job.h"
#include "jw_keys.h"
#include "jw_schedule.h"
#include "jw_util.h"

#include <math.h>
#include <sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_STEP 1000           /* 1 <= s <= 1000 */
#define SEARCH_YEARS 5          /* no fire time within five years: invalid */
#define DEFAULT_GRACE_MS 60000  /* a fire more than this late is missed */
#define MAX_FIRES 1000          /* due fire times looked at per schedule per check */

static const struct { const char *name; int lo, hi; } FIELDS[5] = {
    {"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 7}};

/* Decimal digits s[0..n) within lo..hi; -1 (with err) when not. */
static int number(const char *s, size_t n, int lo, int hi, const char *name, char *err, size_t errlen) {
    long long v = 0;
    if (n == 0 || n > 18) { snprintf(err, errlen, "%s: \"%.*s\" is not a number", name, (int)n, s); return -1; }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') { snprintf(err, errlen, "%s: \"%.*s\" is not a number", name, (int)n, s); return -1; }
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) { snprintf(err, errlen, "%s: %lld is outside %d-%d", name, v, lo, hi); return -1; }
    return (int)v;
}

/* One item (`*`, `n`, `a-b`, each optionally `/s`) into *bits. */
static int item(const char *s, size_t n, int f, uint64_t *bits, char *err, size_t errlen) {
    int lo = FIELDS[f].lo, hi = FIELDS[f].hi, step = 1, start, stop;
    const char *name = FIELDS[f].name;
    const char *slash = memchr(s, '/', n);
    size_t body = slash ? (size_t)(slash - s) : n;
    if (slash && (step = number(slash + 1, n - body - 1, 1, MAX_STEP, name, err, errlen)) < 0) return -1;
    const char *dash = memchr(s, '-', body);
    if (body == 1 && s[0] == '*') {
        start = lo; stop = hi;
    } else if (dash) {
        if ((start = number(s, (size_t)(dash - s), lo, hi, name, err, errlen)) < 0) return -1;
        if ((stop = number(dash + 1, body - (size_t)(dash - s) - 1, lo, hi, name, err, errlen)) < 0) return -1;
        if (start > stop) { snprintf(err, errlen, "%s: range %.*s runs backwards", name, (int)body, s); return -1; }
    } else {
        if ((start = number(s, body, lo, hi, name, err, errlen)) < 0) return -1;
        stop = slash ? hi : start;
    }
    for (int v = start; v <= stop; v += step) *bits |= 1ULL << v;
    return 0;
}

/* One field: comma-separated items. */
static int field(const char *s, size_t n, int f, uint64_t *bits, char *err, size_t errlen) {
    *bits = 0;
    for (;;) {
        const char *comma = memchr(s, ',', n);
        size_t len = comma ? (size_t)(comma - s) : n;
        if (item(s, len, f, bits, err, errlen) < 0) return -1;
        if (!comma) return 0;
        s = comma + 1;
        n -= len + 1;
    }
}

/* Parse a five-field expression (fields separated by spaces or tabs). */
int jw_cron_parse(const char *expr, jw_cron *out, char *err, size_t errlen) {
    uint64_t *sets[5] = {&out->minutes, &out->hours, &out->days, &out->months, &out->weekdays};
    const char *p = expr;
    int nf = 0;
    memset(out, 0, sizeof *out);
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) break;
        size_t len = strcspn(p, " \t");
        if (nf < 5) {
            if (field(p, len, nf, sets[nf], err, errlen) < 0) return -1;
            if (nf == 2) out->day_star = *p == '*';
            if (nf == 4) out->weekday_star = *p == '*';
        }
        nf++;
        p += len;
    }
    if (nf != 5) { snprintf(err, errlen, "a cron expression has five fields, not %d", nf); return -1; }
    if (out->weekdays & (1ULL << 7)) out->weekdays = (out->weekdays & ~(1ULL << 7)) | 1ULL;
    return 0;
}

/* Vixie cron: both day fields must match unless neither begins with "*". */
static int day_matches(const jw_cron *c, const struct tm *t) {
    int in_month = (c->days >> t->tm_mday) & 1, in_week = (c->weekdays >> t->tm_wday) & 1;
    if (c->day_star || c->weekday_star) return in_month && in_week;
    return in_month || in_week;
}

/* The first whole minute strictly after after_ms that matches, in ms; -1
 * when none within SEARCH_YEARS. */
long long jw_cron_next(const jw_cron *c, long long after_ms) {
    time_t t = (time_t)((after_ms >= 0 ? after_ms / 60000 : (after_ms - 59999) / 60000) + 1) * 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    int limit = tm.tm_year + SEARCH_YEARS;
    while (tm.tm_year <= limit) {
        if (!((c->months >> (tm.tm_mon + 1)) & 1)) {
            tm.tm_mon += 1; tm.tm_mday = 1; tm.tm_hour = 0; tm.tm_min = 0;
        } else if (!day_matches(c, &tm)) {
            tm.tm_mday += 1; tm.tm_hour = 0; tm.tm_min = 0;
        } else if (!((c->hours >> tm.tm_hour) & 1)) {
            tm.tm_hour += 1; tm.tm_min = 0;
        } else if (!((c->minutes >> tm.tm_min) & 1)) {
            tm.tm_min += 1;
        } else {
            return (long long)timegm(&tm) * 1000;
        }
        tm.tm_sec = 0;
        t = timegm(&tm); /* normalises the fields that ran over */
        gmtime_r(&t, &tm);
    }
    return -1;
}

/* Is v a JSON Schema integer (an integral real counts) within lo..hi? */
static int integer_in(const json_t *v, double lo, double hi) {
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v)) d = json_real_value(v);
    else return 0;
    return d >= lo && d <= hi;
}

/* Length of UTF-8 text in code points (as JSON Schema counts). */
static size_t code_points(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* schedules.schema.json and the cron dialect; 0, or -1 with the reason. */
int jw_definition_check(const json_t *def, char *err, size_t errlen) {
    if (!json_is_object(def)) { snprintf(err, errlen, "a schedule definition is a JSON object"); return -1; }
    const json_t *cls = json_object_get(def, "class"), *q = json_object_get(def, "queue");
    const json_t *cron = json_object_get(def, "cron"), *every = json_object_get(def, "every_ms");
    const json_t *v;
    const char *bad = NULL;
    if (!json_is_string(cls) || code_points(json_string_value(cls)) < 1 || code_points(json_string_value(cls)) > 1024)
        bad = "class must be a string of 1-1024 characters";
    else if (!json_is_string(q) || !jw_queue_name_valid(json_string_value(q)))
        bad = "queue must be a valid queue name";
    else if (!cron == !every)
        bad = "a schedule has exactly one of cron and every_ms";
    else if (cron && (!json_is_string(cron) || code_points(json_string_value(cron)) < 9 ||
                      code_points(json_string_value(cron)) > 256))
        bad = "cron must be a string of 9-256 characters";
    else if (every && !integer_in(every, 1000, 31622400000.0))
        bad = "every_ms must be an integer 1000-31622400000";
    else if ((v = json_object_get(def, "start_ms")) && !integer_in(v, 0, 9.2e18))
        bad = "start_ms must be an integer >= 0";
    else if ((v = json_object_get(def, "timezone")) && !(json_is_string(v) && strcmp(json_string_value(v), "UTC") == 0))
        bad = "timezone must be \"UTC\"";
    else if ((v = json_object_get(def, "args")) && !json_is_array(v))
        bad = "args must be an array";
    else if ((v = json_object_get(def, "misfire_grace_ms")) && !integer_in(v, 0, 9.2e18))
        bad = "misfire_grace_ms must be an integer >= 0";
    if (bad) { snprintf(err, errlen, "invalid schedule: %s", bad); return -1; }
    char why[200];
    jw_policy p;
    if ((v = json_object_get(def, "retry")) && jw_policy_parse(v, &p, why, sizeof why) < 0) {
        snprintf(err, errlen, "invalid schedule: retry: %s", why);
        return -1;
    }
    if (cron) {
        jw_cron c;
        if (jw_cron_parse(json_string_value(cron), &c, why, sizeof why) < 0) {
            snprintf(err, errlen, "invalid schedule: cron: %s", why);
            return -1;
        }
        if (jw_cron_next(&c, 0) < 0) {
            snprintf(err, errlen, "invalid schedule: cron: \"%s\" never fires", json_string_value(cron));
            return -1;
        }
    }
    return 0;
}

/* A JSON integer member as long long (def), for checked definitions. */
static long long member_ll(const json_t *def, const char *name, long long dflt) {
    const json_t *v = json_object_get(def, name);
    return v ? (long long)json_number_value(v) : dflt;
}

/* The first fire time of a checked definition strictly after after_ms; -1: none. */
long long jw_next_fire_ms(const json_t *def, long long after_ms) {
    const json_t *cron = json_object_get(def, "cron");
    if (cron) {
        jw_cron c;
        char err[200];
        if (jw_cron_parse(json_string_value(cron), &c, err, sizeof err) < 0) return -1;
        return jw_cron_next(&c, after_ms);
    }
    long long every = member_ll(def, "every_ms", 0), start = member_ll(def, "start_ms", 0);
    if (after_ms < start) return start;
    long long k = after_ms - start;
    k = k >= 0 ? k / every : -((-k + every - 1) / every);
    return start + (k + 1) * every;
}

/* protocol.md 14.5 step 2: of the due fire times, the latest fires when it
 * is at most misfire_grace_ms late; every other one is missed. */
jw_decision jw_decide(const json_t *def, long long next_ms, long long now_ms) {
    long long grace = member_ll(def, "misfire_grace_ms", DEFAULT_GRACE_MS);
    long long f = next_ms, latest = -1, before = -1, k = 0;
    while (f >= 0 && f <= now_ms && k < MAX_FIRES) {
        before = latest;
        latest = f;
        k++;
        f = jw_next_fire_ms(def, f);
    }
    jw_decision d = {-1, 0, -1, next_ms};
    if (k == 0) return d;
    d.next_ms = f;
    if (now_ms - latest <= grace) {
        d.fire_ms = latest;
        d.missed = k - 1;
        d.last_missed_ms = k > 1 ? before : -1;
    } else {
        d.missed = k;
        d.last_missed_ms = latest;
    }
    return d;
}

/* The fire's job id: the first 32 hex digits of SHA-256 of
 * "jobwire-schedule" NUL name NUL decimal(fire_ms). */
void jw_fire_job_id(const char *name, long long fire_ms, char out[33]) {
    jw_buf b = {0};
    jw_buf_adds(&b, "jobwire-schedule");
    jw_buf_add(&b, "", 1);
    jw_buf_adds(&b, name);
    jw_buf_add(&b, "", 1);
    jw_buf_addf(&b, "%lld", fire_ms);
    char hex[SHA256_DIGEST_STRING_LENGTH];
    SHA256Data((const unsigned char *)b.p, b.len, hex);
    jw_buf_free(&b);
    memcpy(out, hex, 32);
    out[32] = '\0';
}

/* The payload of a fire: class, args, id, enqueued_at, schedule,
 * scheduled_for_ms, then retry when the definition has one. */
static char *fire_payload(const json_t *def, const char *name, long long fire_ms, const char *id) {
    jw_buf b = {0};
    const char *cls = json_string_value(json_object_get(def, "class"));
    const json_t *args = json_object_get(def, "args"), *retry = json_object_get(def, "retry");
    char *args_text = args ? json_dumps(args, JW_JSON_FLAGS) : NULL;
    jw_buf_adds(&b, "{\"class\":");
    jw_buf_quote(&b, cls, strlen(cls));
    jw_buf_adds(&b, ",\"args\":");
    jw_buf_adds(&b, args_text ? args_text : "[]");
    jw_buf_addf(&b, ",\"id\":\"%s\",\"enqueued_at\":%lld,\"schedule\":", id, jw_wall_ms());
    jw_buf_quote(&b, name, strlen(name));
    jw_buf_addf(&b, ",\"scheduled_for_ms\":%lld", fire_ms);
    if (retry) {
        char *t = json_dumps(retry, JW_JSON_FLAGS);
        jw_buf_adds(&b, ",\"retry\":");
        jw_buf_adds(&b, t);
        free(t);
    }
    jw_buf_adds(&b, "}");
    free(args_text);
    return jw_buf_steal(&b, NULL);
}

/* Append a key to a. */
static void add(jw_args *a, char *key) { jw_args_take(a, key, strlen(key)); }

/* fire.lua in `mode` for schedule `name`; the reply's integer, -1 on failure. */
static long long call_fire(jw_redis *r, const char *ns, const char *name, const char *score,
                           const char *raw, size_t raw_len, const char *mode, long long new_next,
                           long long fire_ms, long long missed, long long last_missed,
                           const char *payload_or_error, const char *queue, const char *id) {
    jw_args a = {0};
    int firing = strcmp(mode, "fire") == 0;
    add(&a, jw_key(ns, JW_K_SCHEDULES, NULL));
    add(&a, jw_key(ns, JW_K_SCHEDULE, name));
    add(&a, firing ? jw_key(ns, JW_K_QUEUES, NULL) : jw_key(ns, JW_K_SCHEDULES, NULL));
    add(&a, firing ? jw_key(ns, JW_K_QUEUE, queue) : jw_key(ns, JW_K_SCHEDULES, NULL));
    add(&a, firing ? jw_key(ns, JW_K_WAKE, queue) : jw_key(ns, JW_K_SCHEDULES, NULL));
    add(&a, firing ? jw_key(ns, JW_K_WAKE_NEW_QUEUE, NULL) : jw_key(ns, JW_K_SCHEDULES, NULL));
    jw_args_add(&a, name);
    jw_args_add(&a, score);
    jw_args_addn(&a, raw, raw_len);
    jw_args_add(&a, mode);
    if (new_next >= 0) jw_args_addll(&a, new_next); else jw_args_add(&a, "");
    if (fire_ms >= 0) jw_args_addll(&a, fire_ms); else jw_args_add(&a, "");
    jw_args_addll(&a, missed);
    if (last_missed >= 0) jw_args_addll(&a, last_missed); else jw_args_add(&a, "");
    jw_args_add(&a, payload_or_error);
    jw_args_add(&a, queue ? queue : "");
    jw_args_add(&a, id ? id : "");
    redisReply *rep = jw_redis_eval(r, JW_S_FIRE, 6, &a);
    jw_args_free(&a);
    long long out = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep && rep->type == REDIS_REPLY_ERROR) jw_log("fire.lua: %s", rep->str);
    freeReplyObject(rep);
    return out;
}

/* Handle one due schedule (protocol.md 14.5); returns 1 when a job was
 * enqueued, 0 when not, -1 when Redis failed. `score` is the next fire time
 * exactly as Redis wrote it: fire.lua compares it byte for byte. */
int jw_fire_due(jw_redis *r, const char *ns, const char *name, const char *score, long long now_ms) {
    jw_args a = {0};
    jw_args_add(&a, "HGET");
    add(&a, jw_key(ns, JW_K_SCHEDULE, name));
    jw_args_add(&a, "definition");
    redisReply *rep = jw_redis_cmd(r, &a);
    jw_args_free(&a);
    if (!rep) return -1;
    const char *raw = rep->type == REDIS_REPLY_STRING ? rep->str : "";
    size_t raw_len = rep->type == REDIS_REPLY_STRING ? rep->len : 0;
    char err[300] = "";
    char *end;
    double next = strtod(score, &end);
    json_t *def = NULL;
    json_error_t jerr;
    if (*end || !isfinite(next) || floor(next) != next || next < 0) {
        snprintf(err, sizeof err, "schedule %s: next fire time %s is not a whole number of ms", name, score);
    } else if (raw_len == 0) {
        snprintf(err, sizeof err, "schedule %s has no definition", name);
    } else if (!(def = jw_json_load_wide(raw, raw_len, 0, &jerr))) {
        snprintf(err, sizeof err, "schedule %s: definition is not JSON: %s", name, jerr.text);
    } else if (jw_definition_check(def, err, sizeof err) == 0) {
        err[0] = '\0';
    }
    jw_decision d = {-1, 0, -1, -1};
    if (!err[0]) {
        d = jw_decide(def, (long long)next, now_ms);
        if (d.next_ms < 0) snprintf(err, sizeof err, "schedule %s: %s never fires again", name,
                                    json_string_value(json_object_get(def, "cron")));
    }
    int result = 0;
    if (err[0]) {
        jw_log("schedule %s is broken: %s", name, err);
        result = call_fire(r, ns, name, score, raw, raw_len, "error", -1, -1, 0, -1, err, NULL, NULL) < 0 ? -1 : 0;
    } else if (d.fire_ms < 0) {
        result = call_fire(r, ns, name, score, raw, raw_len, "miss", d.next_ms, -1, d.missed,
                           d.last_missed_ms, "", NULL, NULL) < 0 ? -1 : 0;
    } else {
        char id[33];
        jw_fire_job_id(name, d.fire_ms, id);
        char *payload = fire_payload(def, name, d.fire_ms, id);
        long long acted = call_fire(r, ns, name, score, raw, raw_len, "fire", d.next_ms, d.fire_ms,
                                    d.missed, d.last_missed_ms, payload,
                                    json_string_value(json_object_get(def, "queue")), id);
        free(payload);
        result = acted < 0 ? -1 : (int)acted;
    }
    if (d.missed > 0)
        jw_log("schedule %s missed %lld fire time(s), the latest at %lld ms", name, d.missed, d.last_missed_ms);
    json_decref(def);
    freeReplyObject(rep);
    return result;
}
