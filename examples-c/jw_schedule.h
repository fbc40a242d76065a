/* jw_schedule.h -- protocol 1.1 in the C worker (protocol.md section 14):
 * retry policies and the retry delay (14.4), promotion of due delayed jobs
 * and retries (14.3), and retry.lua's settle. Due recurring schedules are
 * fired by jw_recurring.c (14.5). */
#ifndef JW_SCHEDULE_H
#define JW_SCHEDULE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jw_redis.h"

/* A retry policy with every member filled in (protocol.md 14.4). */
typedef struct jw_policy {
    int max_attempts;           /* attempts in all; 1 = never retry */
    int exponential;            /* backoff "exponential" (1) or "fixed" (0) */
    double delay_ms, factor, max_delay_ms, jitter;
} jw_policy;

extern const jw_policy JW_POLICY_NEVER;

uint32_t jw_fnv1a32(const unsigned char *p, size_t n);
int jw_policy_parse(const json_t *v, jw_policy *out, char *err, size_t errlen);
long long jw_retry_delay_ms(const jw_policy *p, const char *job_id, int attempt);
int jw_attempt_of(const json_t *doc);
char *jw_attempt_entry(int attempt, long long failed_at_ms, const char *exception,
                       const char *error, const char *worker, const char *queue,
                       long long delay_ms);

/* What one promotion pass did. */
typedef struct jw_promotion {
    long long moved, malformed, fired;
    long long next_due_in_ms;   /* -1: nothing waits */
    long long next_due_ms;      /* the same on Redis's clock, as promote.lua gave it; -1 none */
} jw_promotion;

int jw_promote(jw_redis *r, const char *ns, const char *worker_id, long long max_payload,
               int fire_schedules, jw_promotion *out);
redisReply *jw_retry_settle(jw_redis *r, const char *ns, const char *worker_id,
                            const char *token, long long delay_ms, const char *entry,
                            const char *queue);

#endif
