/* jw_recurring.h -- recurring schedules in the C worker (protocol.md 14.5):
 * the cron dialect and next fire times, definitions, the firing rule, and
 * firing due schedules with fire.lua. schedule-next.json pins all of it. */
#ifndef JW_RECURRING_H
#define JW_RECURRING_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "jw_redis.h"

/* A parsed cron expression: one bit per allowed value. */
typedef struct jw_cron {
    uint64_t minutes, hours, days, months, weekdays; /* weekdays: 0 = Sunday (7 folded in) */
    int day_star, weekday_star;                      /* the day field begins with "*" */
} jw_cron;

int jw_cron_parse(const char *expr, jw_cron *out, char *err, size_t errlen);
long long jw_cron_next(const jw_cron *c, long long after_ms);
int jw_definition_check(const json_t *def, char *err, size_t errlen);
long long jw_next_fire_ms(const json_t *def, long long after_ms);

/* What a check does with a due schedule (protocol.md 14.5 step 2). */
typedef struct jw_decision {
    long long fire_ms;          /* -1: nothing fires */
    long long missed;
    long long last_missed_ms;   /* -1: none missed */
    long long next_ms;          /* -1: never fires again */
} jw_decision;

jw_decision jw_decide(const json_t *def, long long next_ms, long long now_ms);
void jw_fire_job_id(const char *name, long long fire_ms, char out[33]);
int jw_fire_due(jw_redis *r, const char *ns, const char *name, const char *score, long long now_ms);

#endif
