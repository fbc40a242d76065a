/* jw_child.h -- fork-per-job: the handler registry, the child process and
 * the result it reports to the master over a pipe. */
#ifndef JW_CHILD_H
#define JW_CHILD_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "jw_redis.h"
#include "jw_util.h"

/* What a handler sees of the job it runs. */
typedef struct jw_job {
    const char *token;      /* reservation token from work.lua */
    const char *queue;      /* queue the job came from */
    const char *payload;    /* raw payload bytes, as reserved */
    size_t payload_len;
    json_t *doc;            /* the validated, decoded payload */
    const char *klass;      /* doc's "class" */
} jw_job;

/* What a handler sees of the worker running it. */
typedef struct jw_env {
    const char *ns;         /* key namespace */
    const char *worker_id;  /* host:pid:queues */
    const jw_redis *redis;  /* the master's connection settings (a child connects itself) */
} jw_env;

#define JW_MAX_FRAMES 16

/* A job error as a handler reports it: failure record fields. */
typedef struct jw_error {
    char *type;                         /* "exception" of the record */
    char *message;                      /* "error" */
    char *frames[JW_MAX_FRAMES];        /* "backtrace", innermost first */
    size_t nframes;
} jw_error;

/* A handler returns 0 on success, -1 after filling err. */
typedef int (*jw_handler)(const jw_job *job, const jw_env *env, jw_error *err);

jw_handler jw_handler_find(const char *klass);
void jw_error_free(jw_error *err);

/* A running child as the master tracks it. */
typedef struct jw_run {
    pid_t pid;              /* the child, 0 when none */
    int fd;                 /* read end of the result pipe, -1 after EOF */
    jw_buf result;          /* bytes read from the pipe so far */
    int reaped;             /* waitpid() has collected it */
    int status;             /* its wait status once reaped */
} jw_run;

/* Decoded result of a child. */
typedef enum { JW_RESULT_NONE, JW_RESULT_OK, JW_RESULT_ERROR } jw_result_kind;

int jw_child_start(jw_run *run, const jw_job *job, const jw_env *env, jw_handler h,
                   const int *close_fds, int nclose, void (*title)(const char *));
int jw_child_read(jw_run *run);
int jw_child_reap(jw_run *run, int block);
jw_result_kind jw_child_result(const jw_run *run, jw_error *err);
void jw_child_reason(const jw_run *run, char *out, size_t outlen);
void jw_run_free(jw_run *run);

#endif
