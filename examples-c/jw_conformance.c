/* jw_conformance.c -- the conformance job classes of protocol.md section 10,
 * registered through the public jw_register() like any user's handlers, so
 * that jobwire-conformance can test any worker built on libjobwire. */
#define _GNU_SOURCE
#include "jobwire.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jw_job.h"
#include "jw_keys.h"
#include "jw_util.h"

/* RPUSH value onto key, on a fresh connection each try (jw_command_fresh:
 * on a cluster it follows MOVED and ASK, as the worker's own connection does,
 * so a slot that moved while the job ran does not fail the job). A lost
 * connection (no reply at all) is retried up to twice more, as redis-py
 * (3 retries) and ioredis (resend after reconnect) do for the Python and Node
 * echo: a reply cut on the way back must not fail the job on one language
 * only. An error reply is not retried. Returns 0, or -1 with err filled. */
static int rpush_retrying(const jw_env *env, const char *key, const char *value, jw_error *err) {
    const char *argv[] = {"RPUSH", key, value};
    size_t len[] = {5, strlen(key), strlen(value)};
    for (int attempt = 1; ; attempt++) {
        redisReply *rep = jw_command_fresh(env, 3, argv, len);
        int ok = rep && rep->type == REDIS_REPLY_INTEGER;
        if (!ok && (rep || attempt >= 3))
            jw_fail(err, "RedisError", rep ? "RPUSH failed: %s" : "cannot reach Redis to echo%s",
                    rep && rep->str ? rep->str : "");
        int lost = !rep;
        if (rep) freeReplyObject(rep);
        if (ok) return 0;
        if (!lost || attempt >= 3) return -1;
    }
}

/* RPUSH the conformance echo record, with "attempt" as its last member when
 * attempt > 0 (jobwire.Flaky). Side effect: a Redis connection opened and
 * closed (more than one if the first is lost). */
static int echo_record(const jw_job *job, const jw_env *env, jw_error *err, int attempt) {
    json_t *id = json_object_get(job->doc, "id");
    json_t *args = jw_job_args(job);
    json_t *rec = json_object();
    json_object_set(rec, "id", id ? id : json_null());
    json_object_set_new(rec, "args", args ? json_incref(args) : json_array());
    json_object_set_new(rec, "worker", json_string(env->worker_id));
    json_object_set_new(rec, "queue", json_string(job->queue));
    json_object_set_new(rec, "pid", json_integer(getpid()));
    json_object_set_new(rec, "impl", json_string(JW_IMPL));
    if (attempt > 0) json_object_set_new(rec, "attempt", json_integer(attempt));
    char *text = json_dumps(rec, JW_JSON_FLAGS);
    json_decref(rec);
    if (!text) return jw_fail(err, "EncodeError", "cannot encode the echo record");
    char *key = jw_key(env->ns, JW_K_CONFORMANCE_ECHO, NULL);
    int rc = rpush_retrying(env, key, text, err);
    free(key);
    free(text);
    return rc;
}

/* jobwire.Echo: RPUSH the conformance echo record. */
static int job_echo(const jw_job *job, const jw_env *env, jw_error *err) {
    return echo_record(job, env, err, 0);
}

/* jobwire.Flaky [fail_times] (protocol.md 14.7): echo with the attempt
 * number, then fail while attempt <= fail_times. */
static int job_flaky(const jw_job *job, const jw_env *env, jw_error *err) {
    json_t *a = json_object_get(job->doc, "attempts");
    int attempt = 1 + (json_is_array(a) ? (int)json_array_size(a) : 0);
    json_t *times = json_array_get(jw_job_args(job), 0);
    double fail_times = json_is_number(times) ? json_number_value(times) : 0;
    if (echo_record(job, env, err, attempt) < 0) return -1;
    if (attempt > fail_times) return 0;
    return jw_fail(err, "JobError", "flaky attempt %d", attempt);
}

/* jobwire.Fail [message]: fail with exactly message as the error. */
static int job_fail(const jw_job *job, const jw_env *env, jw_error *err) {
    (void)env;
    json_t *m = json_array_get(jw_job_args(job), 0);
    if (json_is_string(m)) return jw_fail(err, "JobError", "%s", json_string_value(m));
    char *text = m ? json_dumps(m, JW_JSON_FLAGS) : NULL;
    jw_fail(err, "JobError", "%s", text ? text : "jobwire.Fail");
    free(text);
    return -1;
}

/* jobwire.Sleep [ms]: sleep, then echo. */
static int job_sleep(const jw_job *job, const jw_env *env, jw_error *err) {
    json_t *ms = json_array_get(jw_job_args(job), 0);
    if (ms && !json_is_number(ms))
        return jw_fail(err, "ArgumentError", "jobwire.Sleep expects [milliseconds]");
    double v = ms ? json_number_value(ms) : 0;
    if (v > 1e12) v = 1e12; /* ~31 years; keeps the conversions below defined */
    if (v > 0) {
        struct timespec ts = {(time_t)(v / 1000), (long)((v - (double)(long long)(v / 1000) * 1000) * 1e6)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
    }
    return job_echo(job, env, err);
}

/* jobwire.Crash: end the process running the job with SIGKILL at once. */
static int job_crash(const jw_job *job, const jw_env *env, jw_error *err) {
    (void)job; (void)env; (void)err;
    raise(SIGKILL);
    _exit(137); /* not reached */
}

/* jobwire.Noop: return at once. */
static int job_noop(const jw_job *job, const jw_env *env, jw_error *err) {
    (void)job; (void)env; (void)err;
    return 0;
}

/* jobwire.h: register the five classes. */
void jw_register_conformance_jobs(void) {
    jw_register("jobwire.Echo", job_echo);
    jw_register("jobwire.Fail", job_fail);
    jw_register("jobwire.Sleep", job_sleep);
    jw_register("jobwire.Crash", job_crash);
    jw_register("jobwire.Noop", job_noop);
    jw_register("jobwire.Flaky", job_flaky);
}
