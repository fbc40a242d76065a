/* jobwire.h -- the public API of libjobwire, the C jobwire worker library.
 *
 * A program registers a handler per job class, then hands its argv to the
 * worker, which runs until told to stop (signals, control commands):
 *
 *     #include <jobwire.h>
 *
 *     static int send_mail(const jw_job *job, const jw_env *env, jw_error *err) {
 *         const char *to = json_string_value(json_array_get(jw_job_args(job), 0));
 *         if (!to) return jw_fail(err, "ArgumentError", "Mail expects [address]");
 *         ...
 *         return 0;
 *     }
 *
 *     int main(int argc, char **argv) {
 *         jw_register("Mail", send_mail);
 *         return jw_worker_main(argc, argv);   // --queues a,b --redis-url ... --version
 *     }
 *
 * Build: cc my_worker.c $(pkg-config --cflags --libs jobwire)
 *
 * A class name read from Redis maps only to a registered handler, never to
 * a symbol lookup (protocol.md 7.4). Each job runs in a forked child
 * process: a handler may crash or leak without harming the worker, and it
 * must not keep state between jobs in memory (the child exits after one).
 * Every symbol of the library starts with jw_ (or JW_); keep your own
 * names out of that prefix. */
#ifndef JOBWIRE_H
#define JOBWIRE_H

#include <hiredis.h>
#include <jansson.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct jw_redis;

/* What a handler sees of the job it runs. */
typedef struct jw_job {
    const char *token;      /* reservation token from work.lua */
    const char *queue;      /* queue the job came from */
    const char *payload;    /* raw payload bytes, as reserved */
    size_t payload_len;
    json_t *doc;            /* the validated, decoded payload (borrowed: do not decref) */
    const char *klass;      /* doc's "class" */
} jw_job;

/* What a handler sees of the worker running it. */
typedef struct jw_env {
    const char *ns;                 /* key namespace */
    const char *worker_id;          /* host:pid:queues */
    const struct jw_redis *redis;   /* the master's connection settings; see jw_connect() */
} jw_env;

#define JW_MAX_FRAMES 16

/* A job error as a handler reports it: the failure record's fields. Fill
 * it with jw_fail(); the worker frees it. */
typedef struct jw_error {
    char *type;                         /* "exception" of the record */
    char *message;                      /* "error" */
    char *frames[JW_MAX_FRAMES];        /* "backtrace", innermost first (malloc'd) */
    size_t nframes;
} jw_error;

/* A handler returns 0 on success, or -1 after filling err (jw_fail). */
typedef int (*jw_handler)(const jw_job *job, const jw_env *env, jw_error *err);

/* Register fn as the handler of job class klass (copied). Registering a
 * class again replaces its handler. Call before jw_worker_main(). Returns
 * 0, or -1 (errno EINVAL) when klass is NULL or empty or fn is NULL. */
int jw_register(const char *klass, jw_handler fn);

/* The handler registered for klass, or NULL. */
jw_handler jw_handler_find(const char *klass);

/* Drop every registration (jw_worker_main does this before it returns). */
void jw_registry_clear(void);

/* Register the conformance job classes of protocol.md section 10
 * (jobwire.Echo, .Fail, .Sleep, .Crash, .Noop) through jw_register, so
 * that jobwire-conformance can test a worker built on this library. */
void jw_register_conformance_jobs(void);

/* Run the worker with the standard flags of protocol.md 7.2 (see
 * jobwire-worker --help) until it leaves. argv must be main's own argv:
 * the process title overwrites it. Returns the exit status: 0 after a
 * normal leave, 1 on JOBWIRE_SPEC_MISMATCH, 2 on bad configuration; may
 * exit() itself for --help, --version and configuration errors. */
int jw_worker_main(int argc, char **argv);

/* Fill err with a failure of the given type and printf-formatted message
 * and frame as the one backtrace frame (NULL for none). Returns -1. The
 * jw_fail() macro passes the calling function's name as the frame:
 * `return jw_fail(err, "JobError", "no such user %s", name);`. */
int jw_fail_at(jw_error *err, const char *type, const char *frame, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define jw_fail(err, type, ...) jw_fail_at((err), (type), __func__, __VA_ARGS__)

/* The job's "args" array (borrowed), or NULL when the job has none:
 * jansson's json_array_size/json_array_get treat NULL as empty. */
json_t *jw_job_args(const jw_job *job);

/* A new Redis connection to the worker's Redis (same host, port, password
 * and db), for a handler that needs Redis; the handler redisFree()s it.
 * Never use the master's connection from a child. NULL on failure. */
redisContext *jw_connect(const jw_env *env);

/* One command (argv/len as redisCommandArgv) on a fresh connection made by
 * jw_connect(), following Redis Cluster's MOVED and ASK (protocol.md 15.1) to
 * the node they name: the slot may have moved since the worker reserved the
 * job. NULL when no reply came (the connection broke or was refused). */
redisReply *jw_command_fresh(const jw_env *env, int argc, const char **argv, const size_t *len);

/* The library's release version, e.g. "1.0.0" (the repository's VERSION). */
const char *jw_version(void);

#ifdef __cplusplus
}
#endif

#endif
