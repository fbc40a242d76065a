/* jw_child.c -- see jw_child.h.
 *
 * The child runs exactly one job and reports its outcome with one message
 * on a pipe, then _exit()s. Message format, all produced by encode_result():
 *
 *   'O'                                   the handler returned
 *   'E' <8 hex digits n> <n bytes>        the handler failed; the n bytes are
 *                                         type \0 message \0 frame \0 ...
 *
 * A message that is absent or shorter than announced means the child died
 * before reporting: the master settles it as a crash. */
#define _GNU_SOURCE
#include "jw_child.h"
#include "jw_job.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* ============================ Handler helpers =========================== */

/* jobwire.h: fill err with a printf-formatted failure. */
int jw_fail_at(jw_error *err, const char *type, const char *frame, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = jw_malloc(n > 0 ? (size_t)n + 1 : 1);
    msg[0] = '\0';
    if (n > 0) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    jw_error_free(err);
    err->type = jw_strdup(type && *type ? type : "JobError");
    err->message = msg;
    if (frame) err->frames[err->nframes++] = jw_strdup(frame);
    return -1;
}

/* jobwire.h: the job's args array, or NULL when the job has none (jansson's
 * array functions treat NULL as empty). */
json_t *jw_job_args(const jw_job *job) {
    json_t *args = json_object_get(job->doc, "args");
    return json_is_array(args) ? args : NULL;
}

/* Free what a handler put in err. */
void jw_error_free(jw_error *err) {
    free(err->type);
    free(err->message);
    for (size_t i = 0; i < err->nframes; i++) free(err->frames[i]);
    memset(err, 0, sizeof *err);
}

/* ============================ The child ================================= */

/* write() all of buf, retrying on EINTR and short writes. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Serialize a handler's outcome in the pipe format described on top. */
static void encode_result(jw_buf *out, int rc, const jw_error *err) {
    if (rc == 0) { jw_buf_add(out, "O", 1); return; }
    jw_buf body = {0};
    jw_buf_add(&body, err->type ? err->type : "JobError", strlen(err->type ? err->type : "JobError") + 1);
    jw_buf_add(&body, err->message ? err->message : "", strlen(err->message ? err->message : "") + 1);
    for (size_t i = 0; i < err->nframes; i++) jw_buf_add(&body, err->frames[i], strlen(err->frames[i]) + 1);
    jw_buf_addf(out, "E%08zx", body.len);
    jw_buf_add(out, body.p, body.len);
    jw_buf_free(&body);
}

/* First steps of every child: die with the master (PR_SET_PDEATHSIG),
 * default signal dispositions and mask, drop the master's descriptors. */
static void child_prepare(pid_t master, const int *close_fds, int nclose) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != master) _exit(111); /* the master died before prctl took effect */
    const int sigs[] = {SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGCONT, SIGPIPE, SIGCHLD};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int i = 0; i < nclose; i++) if (close_fds[i] >= 0) close(close_fds[i]);
}

/* Run the handler, report on wfd, _exit() without the master's atexit code. */
static void child_run(int wfd, const jw_job *job, const jw_env *env, jw_handler h,
                      void (*title)(const char *)) {
    if (title) {
        char t[512];
        snprintf(t, sizeof t, "Processing %s since %lld [%s]", job->queue, (long long)time(NULL), job->klass);
        title(t);
    }
    jw_error err = {0};
    int rc = h(job, env, &err);
    jw_buf out = {0};
    encode_result(&out, rc, &err);
    int wrc = write_all(wfd, out.p, out.len);
    jw_buf_free(&out);
    jw_error_free(&err);
    _exit(wrc == 0 ? 0 : 3);
}

/* Body of the forked child: never returns. */
static void child_main(pid_t master, int wfd, const jw_job *job, const jw_env *env, jw_handler h,
                       const int *close_fds, int nclose, void (*title)(const char *)) {
    child_prepare(master, close_fds, nclose);
    child_run(wfd, job, env, h, title);
}

/* Fork a child to run h on job. close_fds are the master's descriptors
 * the child must not hold (the signal self-pipe, the master's Redis
 * socket: see child_close_fds in jw_worker.c). title sets the process
 * title. Returns 0 with run filled, or -1 (errno set) when fork or pipe
 * failed. */
int jw_child_start(jw_run *run, const jw_job *job, const jw_env *env, jw_handler h,
                   const int *close_fds, int nclose, void (*title)(const char *)) {
    int p[2];
    memset(run, 0, sizeof *run);
    run->fd = -1;
    if (pipe2(p, O_CLOEXEC) < 0) return -1;
    pid_t master = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        child_main(master, p[1], job, env, h, close_fds, nclose, title);
    }
    close(p[1]);
    run->pid = pid;
    run->fd = p[0];
    return 0;
}

/* ============================ The standby child ========================= *
 * fork() off the critical path (protocol.md 7.4): the master forks the
 * child of its next job while the current one runs. The standby does a
 * child's first steps at once (death signal, signals, descriptors, title),
 * then blocks reading its job
 * from a pipe: 3 lengths (uint32, host order: token, queue, payload) and
 * their bytes. It runs that one job like any child and exits; EOF instead
 * of a job (the master left or dropped it) exits at once. It does not
 * connect to Redis ahead: a connect for every job, used or not, doubled the
 * Redis CPU and the worker's CPU per no-op job in bench/ (jobs/s 0.59x). */

/* read() exactly len bytes; -1 on EOF or error. */
static int read_all(int fd, char *buf, size_t len) {
    while (len) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read one NUL-terminated field of n bytes (malloc'd), or _exit on EOF. */
static char *read_field(int fd, uint32_t n) {
    char *p = jw_malloc((size_t)n + 1);
    if (read_all(fd, p, n) < 0) _exit(0);
    p[n] = '\0';
    return p;
}

/* Body of the standby child: never returns. */
static void standby_main(pid_t master, int jobfd, int wfd, const jw_env *env, const int *close_fds,
                         int nclose, void (*title)(const char *)) {
    child_prepare(master, close_fds, nclose);
    if (title) {
        char t[128];
        snprintf(t, sizeof t, "Ready since %lld", (long long)time(NULL));
        title(t);
    }
    uint32_t len[3];
    if (read_all(jobfd, (char *)len, sizeof len) < 0) _exit(0);
    char *token = read_field(jobfd, len[0]), *queue = read_field(jobfd, len[1]);
    char *payload = read_field(jobfd, len[2]);
    close(jobfd);
    char err[512];
    int not_json;
    jw_job job = {token, queue, payload, len[2], NULL, NULL};
    job.doc = jw_job_parse(payload, len[2], &not_json, err, sizeof err);
    job.klass = job.doc ? json_string_value(json_object_get(job.doc, "class")) : NULL;
    jw_handler h = job.klass ? jw_handler_find(job.klass) : NULL;
    if (!h) _exit(112); /* the master checked both before handing it over: cannot happen */
    child_run(wfd, &job, env, h, title);
}

/* Fork a standby child (see above). Returns 0 with sb filled, or -1. */
int jw_standby_start(jw_standby *sb, const jw_env *env, const int *close_fds, int nclose,
                     void (*title)(const char *)) {
    int jp[2], rp[2];
    memset(sb, 0, sizeof *sb);
    sb->job_fd = sb->result_fd = -1;
    if (pipe2(jp, O_CLOEXEC) < 0) return -1;
    if (pipe2(rp, O_CLOEXEC) < 0) {
        close(jp[0]);
        close(jp[1]);
        return -1;
    }
    pid_t master = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        for (int i = 0; i < 2; i++) { close(jp[i]); close(rp[i]); }
        return -1;
    }
    if (pid == 0) {
        close(jp[1]);
        close(rp[0]);
        standby_main(master, jp[0], rp[1], env, close_fds, nclose, title);
    }
    close(jp[0]);
    close(rp[1]);
    sb->pid = pid;
    sb->job_fd = jp[1];
    sb->result_fd = rp[0];
    return 0;
}

/* Hand job to the standby: it becomes run (the job's child). Returns 0, or
 * -1 when the standby is gone (then it is reaped and sb is empty; the
 * caller forks a child the ordinary way). */
int jw_standby_hand(jw_standby *sb, jw_run *run, const jw_job *job) {
    uint32_t len[3] = {(uint32_t)strlen(job->token), (uint32_t)strlen(job->queue), (uint32_t)job->payload_len};
    jw_buf msg = {0};
    jw_buf_add(&msg, (const char *)len, sizeof len);
    jw_buf_add(&msg, job->token, len[0]);
    jw_buf_add(&msg, job->queue, len[1]);
    jw_buf_add(&msg, job->payload, len[2]);
    int rc = job->payload_len > UINT32_MAX ? -1 : write_all(sb->job_fd, msg.p, msg.len);
    jw_buf_free(&msg);
    if (rc < 0) { /* EPIPE: it died (SIGPIPE is ignored in the master) */
        jw_standby_stop(sb);
        return -1;
    }
    memset(run, 0, sizeof *run);
    run->pid = sb->pid;
    run->fd = sb->result_fd;
    close(sb->job_fd);
    memset(sb, 0, sizeof *sb);
    sb->job_fd = sb->result_fd = -1;
    return 0;
}

/* End and reap an unused standby (the worker leaves, or it died). */
void jw_standby_stop(jw_standby *sb) {
    if (!sb->pid) return;
    kill(sb->pid, SIGKILL);
    while (waitpid(sb->pid, NULL, 0) < 0 && errno == EINTR) {}
    close(sb->job_fd);
    close(sb->result_fd);
    memset(sb, 0, sizeof *sb);
    sb->job_fd = sb->result_fd = -1;
}

/* Read what the child has written so far. Returns 1 once the pipe is at
 * EOF (the child exited or closed it), 0 otherwise. Call when poll() says
 * the descriptor is readable. */
int jw_child_read(jw_run *run) {
    char chunk[65536];
    if (run->fd < 0) return 1;
    ssize_t n = read(run->fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
    if (n <= 0) {
        close(run->fd);
        run->fd = -1;
        return 1;
    }
    jw_buf_add(&run->result, chunk, (size_t)n);
    return 0;
}

/* waitpid() the child; block = 0 only checks. Returns 1 once reaped. */
int jw_child_reap(jw_run *run, int block) {
    if (run->reaped) return 1;
    for (;;) {
        pid_t got = waitpid(run->pid, &run->status, block ? 0 : WNOHANG);
        if (got < 0 && errno == EINTR) continue;
        if (got == run->pid || (got < 0 && errno == ECHILD)) {
            run->reaped = 1;
            return 1;
        }
        return 0;
    }
}

/* Has the child's one message (the format on top) arrived whole? It is
 * self-delimiting, so the outcome is known then and the master need not
 * wait for the pipe's EOF, which comes only once the exiting child has torn
 * down its memory: that teardown overlaps the next settle and reserve
 * instead. A message that cannot be one of ours is never whole: the master
 * then waits for EOF and settles a crash. */
int jw_child_reported(const jw_run *run) {
    const char *p = run->result.p;
    size_t len = run->result.len;
    if (len == 1 && p[0] == 'O') return 1;
    if (len < 9 || p[0] != 'E') return 0;
    char hex[9];
    memcpy(hex, p + 1, 8);
    hex[8] = '\0';
    char *end;
    size_t n = strtoul(hex, &end, 16);
    return *end == '\0' && len == 9 + n;
}

/* Decode the child's message. JW_RESULT_NONE when there is none or it is
 * incomplete; for JW_RESULT_ERROR err is filled (caller frees). */
jw_result_kind jw_child_result(const jw_run *run, jw_error *err) {
    const char *p = run->result.p;
    size_t len = run->result.len;
    memset(err, 0, sizeof *err);
    if (len == 1 && p[0] == 'O') return JW_RESULT_OK;
    if (len < 9 || p[0] != 'E') return JW_RESULT_NONE;
    char hex[9];
    memcpy(hex, p + 1, 8);
    hex[8] = '\0';
    char *end;
    size_t n = strtoul(hex, &end, 16);
    if (*end || n != len - 9 || n == 0 || p[len - 1] != '\0') return JW_RESULT_NONE;
    const char *s = p + 9, *stop = p + len;
    err->type = jw_strdup(s);
    s += strlen(s) + 1;
    err->message = jw_strdup(s < stop ? s : "");
    if (s < stop) s += strlen(s) + 1;
    while (s < stop && err->nframes < JW_MAX_FRAMES) {
        err->frames[err->nframes++] = jw_strdup(s);
        s += strlen(s) + 1;
    }
    return JW_RESULT_ERROR;
}

/* The crash reason for a child that ended without a result, in the words
 * of protocol.md 7.4. */
void jw_child_reason(const jw_run *run, char *out, size_t outlen) {
    if (WIFSIGNALED(run->status)) {
        int sig = WTERMSIG(run->status);
        const char *abbrev = sigabbrev_np(sig);
        snprintf(out, outlen, "child %d killed by signal %d (SIG%s)", (int)run->pid, sig,
                 abbrev ? abbrev : "?");
    } else if (WIFEXITED(run->status)) {
        snprintf(out, outlen, "child %d exited with status %d without a result", (int)run->pid,
                 WEXITSTATUS(run->status));
    } else {
        snprintf(out, outlen, "child %d ended without a result", (int)run->pid);
    }
}

/* Release the pipe and buffer of a finished run. */
void jw_run_free(jw_run *run) {
    if (run->fd >= 0) close(run->fd);
    jw_buf_free(&run->result);
    memset(run, 0, sizeof *run);
    run->fd = -1;
}
