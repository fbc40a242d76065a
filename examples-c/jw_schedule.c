/* jw_schedule.c -- see jw_schedule.h. The delay formula is protocol.md
 * 14.4's, step by step in IEEE-754 doubles (no fast-math), so that it gives
 * the millisecond the shared vectors (retry-delays.json) pin. */
#include "jw_schedule.h"
#include "jw_keys.h"
#include "jw_recurring.h"
#include "jw_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define PROMOTE_LIMIT 100   /* protocol.md 14.8: items per promote.lua call */
#define PROMOTE_ROUNDS 10   /* calls per pass at most: a backlog must not starve jobs */

const jw_policy JW_POLICY_NEVER = {1, 1, 1000, 2, 3600000, 0.5};
static const jw_policy DEFAULTS = {5, 1, 1000, 2, 3600000, 0.5};

/* 32-bit FNV-1a: offset basis 2166136261, prime 16777619, modulo 2^32. */
uint32_t jw_fnv1a32(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Is v a JSON Schema integer (an integral real counts) within lo..hi? */
static int int_in(const json_t *v, double lo, double hi, double *out) {
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v)) d = json_real_value(v);
    else return 0;
    if (d < lo || d > hi) return 0;
    *out = d;
    return 1;
}

/* Is v a number within lo..hi? */
static int num_in(const json_t *v, double lo, double hi, double *out) {
    if (!json_is_number(v)) return 0;
    double d = json_number_value(v);
    if (d < lo || d > hi) return 0;
    *out = d;
    return 1;
}

/* job.schema.json's $defs/retry_policy: false, or an object whose known
 * members have the right types and ranges (unknown members are ignored).
 * Fills out with the defaults for members left out. Returns 0, or -1 with
 * the reason in err when v is not a jobwire policy. */
int jw_policy_parse(const json_t *v, jw_policy *out, char *err, size_t errlen) {
    if (json_is_false(v)) { *out = JW_POLICY_NEVER; return 0; }
    if (!json_is_object(v)) { snprintf(err, errlen, "a retry policy is false or an object"); return -1; }
    jw_policy p = DEFAULTS;
    const json_t *m;
    double d;
    if ((m = json_object_get(v, "max_attempts"))) {
        if (!int_in(m, 1, 1000, &d)) { snprintf(err, errlen, "max_attempts must be an integer 1-1000"); return -1; }
        p.max_attempts = (int)d;
    }
    if ((m = json_object_get(v, "backoff"))) {
        const char *s = json_string_value(m);
        if (!s || (strcmp(s, "exponential") != 0 && strcmp(s, "fixed") != 0)) {
            snprintf(err, errlen, "backoff must be \"exponential\" or \"fixed\"");
            return -1;
        }
        p.exponential = strcmp(s, "exponential") == 0;
    }
    if ((m = json_object_get(v, "delay_ms")) && !int_in(m, 0, 2147483647, &p.delay_ms)) {
        snprintf(err, errlen, "delay_ms must be an integer 0-2147483647");
        return -1;
    }
    if ((m = json_object_get(v, "factor")) && !num_in(m, 1, 100, &p.factor)) {
        snprintf(err, errlen, "factor must be a number 1-100");
        return -1;
    }
    if ((m = json_object_get(v, "max_delay_ms")) && !int_in(m, 0, 2147483647, &p.max_delay_ms)) {
        snprintf(err, errlen, "max_delay_ms must be an integer 0-2147483647");
        return -1;
    }
    if ((m = json_object_get(v, "jitter")) && !num_in(m, 0, 1, &p.jitter)) {
        snprintf(err, errlen, "jitter must be a number 0-1");
        return -1;
    }
    *out = p;
    return 0;
}

/* protocol.md 14.4: the delay after failed attempt `attempt` of job_id. */
long long jw_retry_delay_ms(const jw_policy *p, const char *job_id, int attempt) {
    volatile double raw = p->delay_ms; /* volatile: each step rounded to double, as the spec says */
    if (p->exponential) {
        for (int i = 0; i < attempt - 1; i++) {
            raw = raw * p->factor;
            if (raw >= p->max_delay_ms) break;
        }
    }
    if (raw > p->max_delay_ms) raw = p->max_delay_ms;
    double base = floor(raw);
    char key[128];
    int n = snprintf(key, sizeof key, "%s:%d", job_id, attempt);
    jw_buf big = {0};
    const unsigned char *bytes = (const unsigned char *)key;
    if (n < 0 || (size_t)n >= sizeof key) { /* a long id */
        jw_buf_addf(&big, "%s:%d", job_id, attempt);
        bytes = (const unsigned char *)big.p;
        n = (int)big.len;
    }
    uint32_t h = jw_fnv1a32(bytes, (size_t)n);
    jw_buf_free(&big);
    volatile double t = base * p->jitter;
    t = t * (double)h;
    t = t / 4294967296.0;
    return (long long)(base - floor(t));
}

/* n of protocol.md 14.4: 1 + the length of the payload's "attempts". */
int jw_attempt_of(const json_t *doc) {
    const json_t *a = json_object_get(doc, "attempts");
    return 1 + (json_is_array(a) ? (int)json_array_size(a) : 0);
}

/* The attempt entry ($defs/attempt), compact, members in the spec's order. */
char *jw_attempt_entry(int attempt, long long failed_at_ms, const char *exception,
                       const char *error, const char *worker, const char *queue,
                       long long delay_ms) {
    jw_buf b = {0};
    jw_buf_addf(&b, "{\"attempt\":%d,\"failed_at_ms\":%lld,\"exception\":", attempt, failed_at_ms);
    jw_buf_quote(&b, exception, strlen(exception));
    jw_buf_adds(&b, ",\"error\":");
    jw_buf_quote(&b, error, strlen(error));
    jw_buf_adds(&b, ",\"worker\":");
    jw_buf_quote(&b, worker, strlen(worker));
    jw_buf_adds(&b, ",\"queue\":");
    jw_buf_quote(&b, queue, strlen(queue));
    jw_buf_addf(&b, ",\"delay_ms\":%lld}", delay_ms);
    return jw_buf_steal(&b, NULL);
}

/* Append a key to a. */
static void add_key(jw_args *a, const char *ns, jw_key_name k, const char *arg) {
    char *key = jw_key(ns, k, arg);
    jw_args_take(a, key, strlen(key));
}

/* Integer element i of a promote.lua reply. */
static long long reply_int(const redisReply *rep, size_t i) {
    const redisReply *e = rep->element[i];
    return e->type == REDIS_REPLY_INTEGER ? e->integer : -1;
}

/* One promote.lua call; returns 1 to call again at once (`more`, or it
 * fired schedules), 0 when done, -1 when Redis failed. */
static int promote_once(jw_redis *r, const char *ns, const char *worker_id, long long max_payload,
                        int fire, jw_promotion *out) {
    char failed_at[64], prefix[512];
    jw_utc_format(failed_at, sizeof failed_at, "%Y/%m/%d %H:%M:%S UTC", time(NULL));
    snprintf(prefix, sizeof prefix, "%s:", ns);
    jw_args a = {0};
    add_key(&a, ns, JW_K_DELAYED_SCHEDULE, NULL);
    add_key(&a, ns, JW_K_QUEUES, NULL);
    add_key(&a, ns, JW_K_WAKE_NEW_QUEUE, NULL);
    add_key(&a, ns, JW_K_FAILED, NULL);
    add_key(&a, ns, JW_K_RETRY_SET, NULL);
    if (fire) add_key(&a, ns, JW_K_SCHEDULES, NULL);
    else add_key(&a, ns, JW_K_DELAYED_SCHEDULE, NULL); /* no schedules listed: any key */
    jw_args_add(&a, prefix);
    jw_args_addll(&a, PROMOTE_LIMIT);
    jw_args_add(&a, failed_at);
    jw_args_add(&a, worker_id);
    jw_args_addll(&a, max_payload);
    jw_args_add(&a, fire ? "1" : "0");
    redisReply *rep = jw_redis_eval(r, JW_S_PROMOTE, 6, &a);
    jw_args_free(&a);
    if (!rep) return -1;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 5) {
        jw_log("promote.lua: %s", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        freeReplyObject(rep);
        return -1;
    }
    out->moved += reply_int(rep, 0);
    out->malformed += reply_int(rep, 1);
    int more = reply_int(rep, 2) == 1;
    long long now_ms = reply_int(rep, 3), next_due = reply_int(rep, 4);
    out->next_due_in_ms = next_due < 0 ? -1 : (next_due - now_ms > 1 ? next_due - now_ms : 1);
    out->next_due_ms = next_due < 0 ? -1 : next_due;
    int due = 0;
    for (size_t i = 5; i + 1 < rep->elements; i += 2) {
        if (rep->element[i]->type != REDIS_REPLY_STRING || rep->element[i + 1]->type != REDIS_REPLY_STRING) continue;
        due = 1;
        int fired = jw_fire_due(r, ns, rep->element[i]->str, rep->element[i + 1]->str, now_ms);
        if (fired > 0) out->fired += fired;
    }
    freeReplyObject(rep);
    return more || due;
}

/* One promotion pass (protocol.md 14.3): promote.lua until nothing more is
 * due, at most PROMOTE_ROUNDS calls. Returns 0, or -1 when Redis failed (out
 * then holds what the calls before did). */
int jw_promote(jw_redis *r, const char *ns, const char *worker_id, long long max_payload,
               int fire_schedules, jw_promotion *out) {
    memset(out, 0, sizeof *out);
    out->next_due_in_ms = -1;
    out->next_due_ms = -1;
    int rc = 0;
    for (int round = 0; round < PROMOTE_ROUNDS; round++) {
        int more = promote_once(r, ns, worker_id, max_payload, fire_schedules, out);
        if (more < 0) { rc = -1; break; }
        if (!more) break;
    }
    if (out->malformed)
        jw_log("%lld delayed item(s) could not be promoted; they are in the failed list", out->malformed);
    return rc;
}

/* retry.lua (protocol.md 14.4): schedule the held job's next attempt.
 * Returns the reply (the caller frees it), or NULL when Redis failed. */
redisReply *jw_retry_settle(jw_redis *r, const char *ns, const char *worker_id,
                            const char *token, long long delay_ms, const char *entry,
                            const char *queue) {
    char day[16];
    jw_utc_format(day, sizeof day, "%Y-%m-%d", time(NULL));
    jw_args a = {0};
    add_key(&a, ns, JW_K_WORKER_RECORD, worker_id);
    add_key(&a, ns, JW_K_INFLIGHT, worker_id);
    add_key(&a, ns, JW_K_STAT_PROCESSED, NULL);
    add_key(&a, ns, JW_K_STAT_PROCESSED_WORKER, worker_id);
    add_key(&a, ns, JW_K_STAT_FAILED, NULL);
    add_key(&a, ns, JW_K_STAT_FAILED_WORKER, worker_id);
    add_key(&a, ns, JW_K_DEATHS, NULL);
    add_key(&a, ns, JW_K_MINUTES, day);
    add_key(&a, ns, JW_K_RETRY_SET, NULL);
    add_key(&a, ns, JW_K_WAKE_SCHEDULE, NULL);
    jw_args_add(&a, worker_id);
    jw_args_add(&a, token);
    jw_args_addll(&a, delay_ms);
    jw_args_add(&a, entry);
    jw_args_add(&a, queue);
    redisReply *rep = jw_redis_eval(r, JW_S_RETRY, 10, &a);
    jw_args_free(&a);
    return rep;
}
