/* jw_child.h -- fork-per-job: the child process, the result it reports to
 * the master over a pipe, and the handler-side error helpers of jobwire.h. */
#ifndef JW_CHILD_H
#define JW_CHILD_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "jobwire.h"
#include "jw_redis.h"
#include "jw_util.h"

void jw_error_free(jw_error *err);

/* A running child as the master tracks it. */
typedef struct jw_run {
    pid_t pid;              /* the child, 0 when none */
    int fd;                 /* read end of the result pipe, -1 after EOF */
    jw_buf result;          /* bytes read from the pipe so far */
    int reaped;             /* waitpid() has collected it */
    int status;             /* its wait status once reaped */
} jw_run;

/* A child forked ahead of its job (jw_child.c, "The standby child"). */
typedef struct jw_standby {
    pid_t pid;              /* the standby, 0 when none */
    int job_fd;             /* write end of its job pipe */
    int result_fd;          /* read end of its result pipe (becomes the run's fd) */
} jw_standby;

/* Decoded result of a child. */
typedef enum { JW_RESULT_NONE, JW_RESULT_OK, JW_RESULT_ERROR } jw_result_kind;

int jw_child_start(jw_run *run, const jw_job *job, const jw_env *env, jw_handler h,
                   const int *close_fds, int nclose, void (*title)(const char *));
int jw_child_read(jw_run *run);
int jw_child_reap(jw_run *run, int block);
int jw_child_reported(const jw_run *run);
jw_result_kind jw_child_result(const jw_run *run, jw_error *err);
void jw_child_reason(const jw_run *run, char *out, size_t outlen);
void jw_run_free(jw_run *run);
int jw_standby_start(jw_standby *sb, const jw_env *env, const int *close_fds, int nclose,
                     void (*title)(const char *));
int jw_standby_hand(jw_standby *sb, jw_run *run, const jw_job *job);
void jw_standby_stop(jw_standby *sb);

#endif
