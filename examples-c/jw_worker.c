/* jw_worker.c -- the C fork-per-job worker: jw_worker_main() of jobwire.h.
 * The jobwire-worker program (jw_main.c) is this plus the conformance job
 * classes; a user's program is this plus its own handlers.
 *
 * One process is one worker (protocol.md section 7). The master talks to
 * Redis and forks a child per job like Ruby Resque; the child runs the
 * handler and reports its outcome over a pipe (jw_child.c). The master
 * never blocks for long: while a child runs it poll()s the result pipe and
 * the signal self-pipe with a timeout so it can beat and read the control
 * list at least every 1000 ms and enforce --job-timeout-ms.
 *
 * Redis going away is never fatal: every Redis call may fail, the outcome
 * of a finished job is kept in W.out until a work.lua call settles it.
 *
 * Names shared with Python (jobwire/worker.py) and Node (lib/worker.js):
 * worker_run() is the worker's whole life (run), call_work() one work.lua
 * call (settle and/or reserve), work_once() one turn of the loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "jobwire.h"
#include "jw_child.h"
#include "jw_job.h"
#include "jw_keys.h"
#include "jw_redis.h"
#include "jw_routing.h"
#include "jw_schedule.h"
#include "jw_util.h"

#define CONTROL_EVERY_MS 1000   /* protocol.md 7.5: read control at least this often */
#define LEAVE_TRIES_MS 10000    /* how long leaving retries an unreachable Redis */
#define LOCAL_WAIT_MS 150       /* protocol.md 14.3: a due time this close is waited for locally */
#define MAX_EXITING 8           /* children that reported and are still exiting, reaped later */

/* Why the master killed its child, if it did. */
typedef enum { KILL_NONE, KILL_TIMEOUT, KILL_USR1, KILL_OPERATOR, KILL_TERM } kill_cause;

/* The settle op waiting for the next work.lua call. */
typedef struct outcome {
    const char *op;     /* NULL (nothing to settle), "ok", "fail", "crash" or "retry" */
    char *arg;          /* fail, retry: the failure record; crash: the reason */
    char *entry;        /* retry: the attempt entry (protocol.md 14.4) */
    long long delay_ms; /* retry: the delay before the next attempt */
    size_t arg_len;
    char *token;        /* the job's reservation token */
    char *queue;        /* the job's queue (crash requeues there) */
} outcome;

/* ============================ Global state ============================== */

static struct {
    /* Configuration (protocol.md 7.2). */
    char *queues_cfg;           /* --queues as given: "high,low", "*" or "high,*" */
    char **configured;          /* queues_cfg split (jw_queues_parse) */
    int nconfigured;
    int wildcard;               /* one entry is "*" */
    char *redis_url;
    char *ns;
    long long heartbeat_ms, lease_ms, block_ms, job_timeout_ms, max_payload;
    int max_deaths;
    jw_policy default_policy;   /* --default-retry (protocol.md 14.1) */
    int promote;                /* --scheduler promote/all (1) or off (0) */
    int fire;                   /* --scheduler all: also fire recurring schedules */
    long long next_due_ms;      /* monotonic time of the next delayed/retry due time, -1 none */
    long long next_due_redis_ms; /* the same on Redis's clock (-1 none), for the quiet look */
    long long next_promote_ms;  /* while a job runs: monotonic time of the next promotion */

    char host[256];
    char *id;                   /* worker id host:pid:queues */
    char *spec_version;         /* contents of spec/VERSION */
    char spec_major[16];
    long long started_ms;

    jw_redis r;
    char **queues;              /* queues to reserve from, priority order */
    int nqueues;
    int refresh_queues;         /* wildcard: re-read <ns>:queues before the next reserve */

    int started_clean;          /* recover_previous_self() has run */
    int registered;             /* holds a lease (as far as we know) */
    int warned_routes;          /* jw_warn_routed() has run (protocol.md 15.2) */
    long long next_beat_ms;     /* monotonic time of the next beat */
    long long last_beat_ms;     /* monotonic time of the last beat: a job pulls the next one in */
    int timed_out;              /* the last BLPOP popped nothing: a quiet look may do (16.3) */
    long long next_control_ms;  /* monotonic time of the next control check while busy */
    int paused;                 /* SIGUSR2 or "pause" */
    int state_dirty;            /* the info hash's state field must be rewritten */
    int quitting;               /* SIGQUIT or "quit": finish, settle, leave */
    int terminating;            /* SIGTERM/SIGINT: leave now, giving the job back */
    outcome out;                /* outcome awaiting settle */

    /* The job being run, while a child runs. */
    jw_run run;
    jw_standby standby;         /* the next job's child, forked ahead (jw_child.c) */
    const char *run_token;
    kill_cause killed;
    int job_lost;               /* our lease was lost meanwhile: do not settle */

    pid_t exiting[MAX_EXITING]; /* children that reported their outcome, not reaped yet */
    int nexiting;

    int sigpipe[2];             /* self-pipe: signal handlers write, poll() reads */
    int chldpipe[2];            /* SIGCHLD's own self-pipe: it must not cut an idle BLPOP short */
} W;

static volatile sig_atomic_t got_term, got_quit, got_usr1, got_usr2, got_cont;

/* ============================ Process title =============================
 * protocol.md 7.8. The title overwrites the argv area; environ is moved to
 * the heap first so the area can extend over the environment strings, as
 * setproctitle(3) implementations do. */

static char *title_area;
static size_t title_size;
static char **title_env;    /* our heap copy of environ; a root for leak checkers */

/* Record the argv+environ area and move environ out of it. Must run before
 * anything keeps pointers into argv or the environment. */
static void title_init(int argc, char **argv) {
    extern char **environ;
    char *end = argv[0];
    for (int i = 0; i < argc; i++)
        if (argv[i] == end) end = argv[i] + strlen(argv[i]) + 1;
    int n = 0;
    while (environ[n]) n++;
    char **env = jw_malloc(sizeof(char *) * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        if (environ[i] == end) end = environ[i] + strlen(environ[i]) + 1;
        env[i] = jw_strdup(environ[i]);
    }
    env[n] = NULL;
    environ = title_env = env;
    title_area = argv[0];
    title_size = (size_t)(end - argv[0]);
}

/* Free the moved environment at exit; environ is cleared first so nothing
 * can read freed strings through getenv(). */
static void title_free(void) {
    extern char **environ;
    environ = NULL;
    for (char **e = title_env; e && *e; e++) free(*e);
    free(title_env);
    title_env = NULL;
}

/* Set the title to "jobwire-c/resque-1: <state>", truncated to the area. */
static void title_set(const char *state) {
    if (!title_area || title_size < 2) return;
    memset(title_area, 0, title_size);
    snprintf(title_area, title_size - 1, "jobwire-%s/resque-1: %s", JW_IMPL, state);
}

/* printf-style title_set. */
static void title_setf(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    title_set(buf);
}

/* ============================ Signals ===================================
 * Handlers only set a flag and write a byte to the self-pipe, which wakes
 * whichever poll() the master sits in. All real work, Redis I/O included,
 * happens in handle_signals() on the main path. */

/* The one signal handler. */
static void on_signal(int sig) {
    int saved = errno;
    switch (sig) {
    case SIGTERM: case SIGINT: got_term = 1; break;
    case SIGQUIT: got_quit = 1; break;
    case SIGUSR1: got_usr1 = 1; break;
    case SIGUSR2: got_usr2 = 1; got_cont = 0; break;
    case SIGCONT: got_cont = 1; got_usr2 = 0; break;
    }
    /* SIGCHLD only wakes the waits for a child (supervise, reap_exiting): a child that
     * reported exits while the master is elsewhere, say blocked in BLPOP. */
    int fd = sig == SIGCHLD ? W.chldpipe[1] : W.sigpipe[1];
    if (write(fd, "s", 1) < 0) { /* pipe full: a wake-up is pending anyway */ }
    errno = saved;
}

/* Install the handlers and the self-pipe. No SA_RESTART: a signal should
 * cut short whatever the master waits for. */
static void signals_init(void) {
    if (pipe2(W.sigpipe, O_NONBLOCK | O_CLOEXEC) < 0 || pipe2(W.chldpipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        perror("pipe");
        exit(1);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGCONT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void kill_child(kill_cause why);
static void set_paused(int paused);
static int settle_retry(void);
static void standby_ensure(void);
static void reap_exiting(int keep, long long wait_ms);

/* Empty a non-blocking self-pipe: its wake-ups have been seen. */
static void drain(int fd) {
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {}
}

/* Act on the signals that arrived since the last call. Side effects: may
 * kill the running child and change the pause/quit/terminate state. */
static void handle_signals(void) {
    drain(W.sigpipe[0]);
    if (got_term) { got_term = 0; W.terminating = 1; kill_child(KILL_TERM); }
    if (got_quit) { got_quit = 0; W.quitting = 1; }
    if (got_usr1) { got_usr1 = 0; kill_child(KILL_USR1); }
    if (got_usr2) { got_usr2 = 0; set_paused(1); }
    if (got_cont) { got_cont = 0; set_paused(0); }
}

/* Sleep up to ms, returning early when a signal arrives. */
static void nap(long long ms) {
    if (ms <= 0) return;
    struct pollfd pfd = {W.sigpipe[0], POLLIN, 0};
    poll(&pfd, 1, (int)ms);
}

/* ============================ Small Redis helpers ======================= */

/* Append the key built from a template to a. */
static void add_key(jw_args *a, jw_key_name k, const char *arg) {
    char *key = jw_key(W.ns, k, arg);
    jw_args_take(a, key, strlen(key));
}

/* The Redis-facing UTC day for the per-minute counter key. */
static void today(char *out, size_t n) { jw_utc_format(out, n, "%Y-%m-%d", time(NULL)); }

/* Is reply an array whose element i is the string s? */
static int reply_is(const redisReply *rep, size_t i, const char *s) {
    return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > i &&
           rep->element[i]->type == REDIS_REPLY_STRING && strcmp(rep->element[i]->str, s) == 0;
}

/* Log an error reply from a script; returns 1 if rep was one. */
static int script_error(const char *what, redisReply *rep) {
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        jw_log("%s: Redis error: %s", what, rep->str);
        return 1;
    }
    return 0;
}

/* Write the info hash's state field if it changed while Redis was away. */
static void sync_state(void) {
    if (!W.state_dirty || !W.registered || !jw_redis_ready(&W.r)) return;
    jw_args a = {0};
    jw_args_add(&a, "HSET");
    add_key(&a, JW_K_WORKER_INFO, W.id);
    jw_args_add(&a, "state");
    jw_args_add(&a, W.paused ? "paused" : "idle");
    redisReply *rep = jw_redis_cmd(&W.r, &a);
    if (rep) W.state_dirty = 0;
    freeReplyObject(rep);
    jw_args_free(&a);
}

/* Pause or resume (SIGUSR2/SIGCONT, "pause"/"resume"). Side effect: the
 * info hash's state is rewritten at the next opportunity. */
static void set_paused(int paused) {
    if (W.paused == paused) return;
    W.paused = paused;
    W.state_dirty = 1;
    if (!W.run.pid) title_set(paused ? "Paused" : "Starting");
}

/* ============================ Register, beat, recover =================== */

/* unregister.lua for worker `who` in mode self/expired. Reads the held
 * job's queue first and retries while the script answers "retry".
 * Returns the reply's job field ("none", "requeued", ...) as a static
 * string, or NULL when Redis failed. */
static const char *unregister(const char *who, const char *mode) {
    for (int attempt = 0; attempt < 5; attempt++) {
        jw_args a = {0};
        jw_args_add(&a, "HGET");
        add_key(&a, JW_K_INFLIGHT, who);
        jw_args_add(&a, "queue");
        redisReply *q = jw_redis_cmd(&W.r, &a);
        jw_args_free(&a);
        if (!q) return NULL;
        char *queue = jw_strdup(q->type == REDIS_REPLY_STRING ? q->str : "");
        freeReplyObject(q);

        char day[16], failed_at[64];
        today(day, sizeof day);
        jw_utc_format(failed_at, sizeof failed_at, "%Y/%m/%d %H:%M:%S UTC", time(NULL));
        jw_key_name per_worker[] = {JW_K_WORKER_RECORD, JW_K_WORKER_STARTED, JW_K_INFLIGHT,
                                    JW_K_STAT_PROCESSED_WORKER, JW_K_STAT_FAILED_WORKER,
                                    JW_K_WORKER_INFO, JW_K_CONTROL};
        add_key(&a, JW_K_LEASES, NULL);
        add_key(&a, JW_K_WORKERS, NULL);
        add_key(&a, JW_K_HEARTBEATS, NULL);
        for (size_t i = 0; i < sizeof per_worker / sizeof per_worker[0]; i++)
            add_key(&a, per_worker[i], who);
        add_key(&a, JW_K_DEATHS, NULL);
        add_key(&a, JW_K_FAILED, NULL);
        add_key(&a, JW_K_STAT_PROCESSED, NULL);
        add_key(&a, JW_K_STAT_FAILED, NULL);
        add_key(&a, JW_K_MINUTES, day);
        if (*queue) {
            add_key(&a, JW_K_QUEUE, queue);
            add_key(&a, JW_K_WAKE, queue);
        } else {
            add_key(&a, JW_K_INFLIGHT, who);
            add_key(&a, JW_K_INFLIGHT, who);
        }
        jw_args_add(&a, who);
        jw_args_add(&a, mode);
        jw_args_add(&a, queue);
        jw_args_add(&a, failed_at);
        jw_args_addll(&a, W.max_deaths);
        jw_args_add(&a, W.id);
        free(queue);
        redisReply *rep = jw_redis_eval(&W.r, JW_S_UNREGISTER, 17, &a);
        jw_args_free(&a);
        if (!rep) return NULL;
        const char *result = "error";
        if (reply_is(rep, 0, "retry")) result = NULL;
        else if (reply_is(rep, 1, "requeued")) result = "requeued";
        else if (reply_is(rep, 1, "poisoned")) result = "poisoned";
        else if (reply_is(rep, 0, "alive")) result = "alive";
        else if (reply_is(rep, 0, "done")) result = "none";
        else script_error("unregister.lua", rep);
        freeReplyObject(rep);
        if (result) return result;
    }
    return "error";
}

/* Recover the expired peers a heartbeat.lua reply lists from element
 * `from` on (protocol.md 7.6). */
static void recover_peers(const redisReply *rep, size_t from) {
    for (size_t i = from; i < rep->elements; i++) {
        if (rep->element[i]->type != REDIS_REPLY_STRING) continue;
        const char *dead = rep->element[i]->str;
        const char *job = unregister(dead, "expired");
        if (job && strcmp(job, "alive") != 0)
            jw_log("recovered expired worker %s (job: %s)", dead, job);
    }
}

/* heartbeat.lua: the six keys every mode takes, then id, lease, mode. */
static void heartbeat_args(jw_args *a, const char *mode) {
    add_key(a, JW_K_WORKERS, NULL);
    add_key(a, JW_K_HEARTBEATS, NULL);
    add_key(a, JW_K_LEASES, NULL);
    add_key(a, JW_K_WORKER_STARTED, W.id);
    add_key(a, JW_K_WORKER_INFO, W.id);
    add_key(a, JW_K_META, NULL);
    jw_args_add(a, W.id);
    jw_args_addll(a, W.lease_ms);
    jw_args_add(a, mode);
}

/* Register (protocol.md 8.4). Exits the process on JOBWIRE_SPEC_MISMATCH,
 * as 7.3 requires; any other failure leaves W.registered 0 for a retry. */
static void do_register(void) {
    jw_args a = {0};
    char started[64], num[32];
    jw_utc_format(started, sizeof started, "%Y-%m-%d %H:%M:%S +0000", time(NULL));
    heartbeat_args(&a, "register");
    jw_args_add(&a, started);
    jw_args_add(&a, W.spec_major);
    const char *fields[][2] = {{"impl", JW_IMPL}, {"impl_version", JW_IMPL_VERSION},
                               {"spec", W.spec_version}, {"host", W.host},
                               {"queues", W.queues_cfg}, {"mode", "fork"},
                               {"state", W.paused ? "paused" : "idle"}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        jw_args_add(&a, fields[i][0]);
        jw_args_add(&a, fields[i][1]);
    }
    snprintf(num, sizeof num, "%d", (int)getpid());
    jw_args_add(&a, "pid");
    jw_args_add(&a, num);
    jw_args_add(&a, "started_ms");
    jw_args_addll(&a, W.started_ms);
    redisReply *rep = jw_redis_eval(&W.r, JW_S_HEARTBEAT, 6, &a);
    jw_args_free(&a);
    if (rep && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "JOBWIRE_SPEC_MISMATCH", 21) == 0) {
        jw_log("refusing to register: %s", rep->str);
        exit(1);
    }
    if (reply_is(rep, 0, "ok")) {
        W.registered = 1;
        W.state_dirty = 0;
        W.last_beat_ms = jw_mono_ms();
        W.next_beat_ms = W.last_beat_ms + W.heartbeat_ms;
        recover_peers(rep, 1);
    } else {
        script_error("heartbeat.lua register", rep);
    }
    freeReplyObject(rep);
}

/* Milliseconds from a beat to the next (protocol.md 16.2): heartbeat-ms
 * while a job runs; while idle the quiet idle period max(heartbeat,
 * min(2 x heartbeat, lease / 3)), but no later than just after the earliest
 * lease of another worker lapses (`next_lapse`, -1: none seen), so that a
 * dead peer is still recovered when its lease lapses. */
static long long beat_period(long long next_lapse) {
    if (W.run.pid) return W.heartbeat_ms;
    long long period = 2 * W.heartbeat_ms < W.lease_ms / 3 ? 2 * W.heartbeat_ms : W.lease_ms / 3;
    if (period < W.heartbeat_ms) period = W.heartbeat_ms;
    if (next_lapse >= 0 && next_lapse + 10 < period) period = next_lapse + 10;
    return period;
}

/* A job was reserved: the next beat comes heartbeat-ms after the last one
 * at the latest, not at the idle period (protocol.md 16.2). */
static void beats_busy(void) {
    if (W.next_beat_ms > W.last_beat_ms + W.heartbeat_ms) W.next_beat_ms = W.last_beat_ms + W.heartbeat_ms;
}

/* Beat if one is due (protocol.md 7.6), with heartbeat.lua mode renew
 * (16.1): ["ok", next_lapse_ms, u, unknown ids..., expired ids...]. Our id
 * among the unknown means we were recovered as dead: the held job is no
 * longer ours, so its outcome is dropped, and we register afresh. */
static void beat_if_due(void) {
    long long now = jw_mono_ms();
    if (!W.registered || now < W.next_beat_ms) return;
    jw_args a = {0};
    heartbeat_args(&a, "renew");
    jw_args_add(&a, "");
    jw_args_add(&a, W.spec_major);
    redisReply *rep = jw_redis_eval(&W.r, JW_S_HEARTBEAT, 6, &a);
    jw_args_free(&a);
    if (!rep) {
        /* Redis is away: try again when the reconnect backoff allows. */
        W.next_beat_ms = now + (jw_redis_wait_hint(&W.r) > 100 ? jw_redis_wait_hint(&W.r) : 100);
        return;
    }
    W.last_beat_ms = now;
    W.next_beat_ms = now + W.heartbeat_ms;
    if (!reply_is(rep, 0, "ok") || rep->elements < 3 || rep->element[1]->type != REDIS_REPLY_INTEGER ||
        rep->element[2]->type != REDIS_REPLY_INTEGER) {
        script_error("heartbeat.lua renew", rep);
    } else if (rep->element[2]->integer > 0) {
        jw_log("our lease lapsed and we were recovered as dead; registering again");
        W.registered = 0;
        if (W.run.pid) W.job_lost = 1;
        if (W.out.op) W.out.op = NULL;
        do_register();
    } else {
        W.next_beat_ms = now + beat_period(rep->element[1]->integer);
        recover_peers(rep, 3);
    }
    freeReplyObject(rep);
}

/* ============================ Queues and control ======================== */

/* Compare two queue names for qsort: byte order, i.e. alphabetical. */
/* Replace W.queues with the given names. */
static void set_queues(char **names, int n) {
    for (int i = 0; i < W.nqueues; i++) free(W.queues[i]);
    free(W.queues);
    W.queues = names;
    W.nqueues = n;
}

/* Wildcard: SMEMBERS <ns>:queues; "*" becomes the valid names not listed
 * explicitly, sorted (protocol.md 7.2). Returns 0 or -1 when Redis failed
 * (the old list is kept). */
static int refresh_queues(void) {
    jw_args a = {0};
    jw_args_add(&a, "SMEMBERS");
    add_key(&a, JW_K_QUEUES, NULL);
    redisReply *rep = jw_redis_cmd(&W.r, &a);
    jw_args_free(&a);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) { freeReplyObject(rep); return -1; }
    char **known = jw_malloc(sizeof(char *) * (rep->elements + 1));
    int nknown = 0;
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING) known[nknown++] = rep->element[i]->str;
    char **names;
    int n = jw_queues_expand(W.configured, W.nconfigured, known, nknown, &names); /* skips invalid names */
    free(known);
    set_queues(names, n);
    freeReplyObject(rep);
    W.refresh_queues = 0;
    return 0;
}

/* Act on one control command (protocol.md 7.5); unknown ones are ignored. */
static void handle_command(const char *cmd, size_t len) {
    while (len && (cmd[len - 1] == ' ' || cmd[len - 1] == '\n' || cmd[len - 1] == '\r')) len--;
    while (len && *cmd == ' ') { cmd++; len--; }
    if (len == 5 && memcmp(cmd, "pause", 5) == 0) set_paused(1);
    else if (len == 6 && memcmp(cmd, "resume", 6) == 0) set_paused(0);
    else if (len == 4 && memcmp(cmd, "quit", 4) == 0) W.quitting = 1;
    else if (len == 4 && memcmp(cmd, "kill", 4) == 0) kill_child(KILL_OPERATOR);
    else if (len > 5 && memcmp(cmd, "kill ", 5) == 0) {
        const char *tok = cmd + 5;
        size_t tlen = len - 5;
        while (tlen && *tok == ' ') { tok++; tlen--; }
        if (W.run_token && strlen(W.run_token) == tlen && memcmp(W.run_token, tok, tlen) == 0)
            kill_child(KILL_OPERATOR);
    }
}

/* While a job runs: LPOP the control list every CONTROL_EVERY_MS. */
static void control_if_due(void) {
    long long now = jw_mono_ms();
    if (now < W.next_control_ms || !W.registered) return;
    W.next_control_ms = now + CONTROL_EVERY_MS;
    for (int i = 0; i < 16; i++) {
        jw_args a = {0};
        jw_args_add(&a, "LPOP");
        add_key(&a, JW_K_CONTROL, W.id);
        redisReply *rep = jw_redis_cmd(&W.r, &a);
        jw_args_free(&a);
        int more = rep && rep->type == REDIS_REPLY_STRING;
        if (more) handle_command(rep->str, rep->len);
        freeReplyObject(rep);
        if (!more) break;
    }
}

/* Block while idle (protocol.md 8.3): BLPOP the control list, plus the
 * wake markers unless paused, until the block timeout or the next beat.
 * Returns early on a signal. */
static void idle_wait(int control_only) {
    jw_args keys = {0};
    add_key(&keys, JW_K_CONTROL, W.id);
    if (!control_only) {
        for (int i = 0; i < W.nqueues; i++) add_key(&keys, JW_K_WAKE, W.queues[i]);
        if (W.wildcard) add_key(&keys, JW_K_WAKE_NEW_QUEUE, NULL);
        if (W.promote) {
            char *k = jw_key(W.ns, JW_K_WAKE_SCHEDULE, NULL);
            jw_args_take(&keys, k, strlen(k));
        }
    }
    long long timeout = W.next_beat_ms - jw_mono_ms();
    if (timeout > 2 * W.block_ms) timeout = 2 * W.block_ms; /* protocol.md 16.3: a quiet idle block */
    if (!control_only && W.promote && W.next_due_ms >= 0) {
        /* protocol.md 14.3: wake when the next job falls due. Redis times a
         * blocked client out on its event-loop tick (up to 100 ms late), so
         * the last moments are waited for here. */
        long long due_in = W.next_due_ms - jw_mono_ms();
        if (due_in < 1) due_in = 1;
        if (due_in < LOCAL_WAIT_MS && due_in <= timeout) {
            W.next_due_ms = -1;
            jw_args_free(&keys);
            nap(due_in);
            return;
        }
        if (due_in - LOCAL_WAIT_MS < timeout) timeout = due_in - LOCAL_WAIT_MS;
    }
    reap_exiting(0, 1000); /* the last job's child: no zombie while idle */
    redisReply *rep = NULL;
    int rc = jw_redis_blpop(&W.r, &keys, timeout, W.sigpipe[0], &rep);
    W.timed_out = !control_only && rc == 1 && rep && rep->type == REDIS_REPLY_NIL;
    if (rc == 1 && rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
        strcmp(rep->element[0]->str, keys.v[0]) == 0)
        handle_command(rep->element[1]->str, rep->element[1]->len);
    if (W.wildcard) W.refresh_queues = 1;
    freeReplyObject(rep);
    jw_args_free(&keys);
    if (rc < 0) nap(jw_redis_wait_hint(&W.r));
}

/* ============================ Settle and reserve ======================== */

/* Drop the pending outcome. */
static void outcome_clear(void) {
    free(W.out.arg);
    free(W.out.entry);
    free(W.out.token);
    free(W.out.queue);
    memset(&W.out, 0, sizeof W.out);
}

/* Call work.lua: settle W.out (if any) and, when reserve is set, reserve
 * the next job from W.queues (protocol.md 8.2). Returns the reply, or NULL
 * when Redis failed (W.out is kept for the next try). On any reply the
 * outcome counts as settled (ok, failed, requeued, poisoned or stale). */
static redisReply *call_work(int reserve) {
    if (W.out.op && strcmp(W.out.op, "retry") == 0 && settle_retry() < 0) return NULL;
    char day[16], failed_at[64], run_at[64];
    time_t now = time(NULL);
    today(day, sizeof day);
    jw_utc_format(failed_at, sizeof failed_at, "%Y/%m/%d %H:%M:%S UTC", now);
    jw_utc_format(run_at, sizeof run_at, "%Y-%m-%dT%H:%M:%SZ", now);
    int n = reserve ? W.nqueues : 0;
    jw_args a = {0};
    add_key(&a, JW_K_WORKER_RECORD, W.id);
    add_key(&a, JW_K_INFLIGHT, W.id);
    add_key(&a, JW_K_STAT_PROCESSED, NULL);
    add_key(&a, JW_K_STAT_PROCESSED_WORKER, W.id);
    add_key(&a, JW_K_STAT_FAILED, NULL);
    add_key(&a, JW_K_STAT_FAILED_WORKER, W.id);
    add_key(&a, JW_K_FAILED, NULL);
    add_key(&a, JW_K_DEATHS, NULL);
    add_key(&a, JW_K_MINUTES, day);
    add_key(&a, JW_K_LEASES, NULL);
    add_key(&a, JW_K_PAUSE_ALL, NULL);
    if (W.out.op && W.out.queue) {
        add_key(&a, JW_K_QUEUE, W.out.queue);
        add_key(&a, JW_K_WAKE, W.out.queue);
    } else {
        add_key(&a, JW_K_WORKER_RECORD, W.id);
        add_key(&a, JW_K_WORKER_RECORD, W.id);
    }
    for (int i = 0; i < n; i++) add_key(&a, JW_K_QUEUE, W.queues[i]);
    for (int i = 0; i < n; i++) add_key(&a, JW_K_WAKE, W.queues[i]);
    jw_args_add(&a, W.id);
    jw_args_add(&a, W.out.op ? W.out.op : "none");
    jw_args_add(&a, W.out.token ? W.out.token : "");
    if (W.out.arg) jw_args_addn(&a, W.out.arg, W.out.arg_len);
    else jw_args_add(&a, "");
    jw_args_add(&a, failed_at);
    jw_args_add(&a, run_at);
    jw_args_addll(&a, W.max_deaths);
    jw_args_addll(&a, W.max_payload);
    for (int i = 0; i < n; i++) jw_args_add(&a, W.queues[i]);
    jw_redis_eval_send(&W.r, JW_S_WORK, 13 + 2 * n, &a);
    if (reserve) standby_ensure(); /* while Redis runs the script: the fork is off the job's path */
    redisReply *rep = jw_redis_eval_recv(&W.r, JW_S_WORK, 13 + 2 * n, &a);
    jw_args_free(&a);
    if (!rep) return NULL;
    if (script_error("work.lua", rep) || rep->type != REDIS_REPLY_ARRAY || rep->elements < 2) {
        freeReplyObject(rep);
        nap(1000); /* a script error will not fix itself quickly; do not spin */
        return NULL;
    }
    if (W.out.op && reply_is(rep, 0, "stale"))
        jw_log("settle of job %s was stale (the job was recovered meanwhile)", W.out.token);
    outcome_clear();
    return rep;
}

/* retry.lua for a "retry" outcome (protocol.md 14.4). Afterwards nothing is
 * left to settle; when Redis refuses it (say a retry key of the wrong type)
 * the outcome becomes a plain "fail", so the job lands in the failed list
 * rather than being lost. Returns -1 when Redis failed (W.out is kept: a
 * repeated call after a lost reply answers "stale"). */
static int settle_retry(void) {
    redisReply *rep = jw_retry_settle(&W.r, W.ns, W.id, W.out.token, W.out.delay_ms, W.out.entry,
                                      W.out.queue);
    if (!rep) return -1;
    if (rep->type == REDIS_REPLY_ERROR) {
        jw_log("Redis refused the retry of job %s (%s); failing it instead", W.out.token, rep->str);
        W.out.op = "fail";
    } else {
        if (reply_is(rep, 0, "stale"))
            jw_log("job %s was recovered elsewhere; its retry is dropped", W.out.token);
        outcome_clear();
    }
    freeReplyObject(rep);
    return 0;
}

/* Settle W.out without reserving; used before pausing or leaving. Returns
 * 0 once nothing is left to settle, -1 when Redis failed. */
static int settle_only(void) {
    if (!W.out.op) return 0;
    redisReply *rep = call_work(0);
    if (!rep) return -1;
    if (reply_is(rep, 1, "expired")) W.registered = 0;
    freeReplyObject(rep);
    return 0;
}

/* ============================ Running a job ============================= */

/* Kill the running child (if any) with SIGKILL and remember why. Only the
 * first cause counts. */
static void kill_child(kill_cause why) {
    if (!W.run.pid || W.run.reaped) return;
    if (W.killed == KILL_NONE) W.killed = why;
    kill(W.run.pid, SIGKILL);
}

/* Set the pending outcome. */
static void outcome_set(const char *op, char *arg, size_t arg_len, const char *token,
                        const char *queue) {
    outcome_clear();
    W.out.op = op;
    W.out.arg = arg;
    W.out.arg_len = arg_len;
    W.out.token = jw_strdup(token);
    W.out.queue = jw_strdup(queue);
}

/* Set a "fail" outcome with a jobwire.* (or handler) error. */
static void outcome_fail(const jw_job *job, const char *type, const char *msg,
                         const char *const *frames, size_t nframes) {
    size_t len;
    int quote = strcmp(type, "jobwire.InvalidJSON") == 0; /* not JSON: embed as a string */
    char *rec = jw_failure_record(job->payload, job->payload_len, quote, type, msg, frames,
                                  nframes, W.id, job->queue, &len);
    outcome_set("fail", rec, len, job->token, job->queue);
}

/* A job error or timeout (protocol.md 14.4): another attempt under the job's
 * policy (its "retry" member when that is a policy, else --default-retry),
 * else a plain fail. */
static void outcome_retry_or_fail(const jw_job *job, const char *type, const char *msg,
                                  const char *const *frames, size_t nframes) {
    char err[128];
    jw_policy policy = W.default_policy;
    json_t *member = json_object_get(job->doc, "retry");
    if (member && jw_policy_parse(member, &policy, err, sizeof err) < 0) policy = W.default_policy;
    int attempt = jw_attempt_of(job->doc);
    outcome_fail(job, type, msg, frames, nframes); /* the record, kept in case Redis refuses the retry */
    if (attempt >= policy.max_attempts) return;
    const char *id = json_string_value(json_object_get(job->doc, "id"));
    W.out.delay_ms = jw_retry_delay_ms(&policy, id ? id : "", attempt);
    W.out.entry = jw_attempt_entry(attempt, jw_wall_ms(), type, msg, W.id, job->queue, W.out.delay_ms);
    W.out.op = "retry";
    jw_log("job %s attempt %d failed (%s); retrying in %lld ms", id ? id : job->klass, attempt, type,
           W.out.delay_ms);
}

/* One promotion pass (protocol.md 14.3, 14.5); returns the jobs moved or fired.
 * Remembers when the next one falls due, for idle_wait(). */
static long long promote_due(void) {
    if (!W.promote || !W.registered) return 0;
    jw_promotion p;
    if (jw_promote(&W.r, W.ns, W.id, W.max_payload, W.fire, &p) < 0) return 0;
    W.next_due_ms = p.next_due_in_ms < 0 ? -1 : jw_mono_ms() + p.next_due_in_ms;
    W.next_due_redis_ms = p.next_due_ms;
    return p.moved + p.fired;
}

/* While a job runs: promote at least every heartbeat (protocol.md 14.3 (2)). */
static void promote_if_due(void) {
    long long now = jw_mono_ms();
    if (!W.promote || now < W.next_promote_ms) return;
    W.next_promote_ms = now + W.heartbeat_ms;
    promote_due();
}

/* Collect the children that reported and are exiting (exiting_add),
 * waiting up to wait_ms (0: only those gone already) until at most keep
 * are left. SIGCHLD's self-pipe wakes the wait. */
static void reap_exiting(int keep, long long wait_ms) {
    long long until = jw_mono_ms() + wait_ms;
    for (;;) {
        for (int i = 0; i < W.nexiting;) {
            pid_t got = waitpid(W.exiting[i], NULL, WNOHANG);
            if (got == W.exiting[i] || (got < 0 && errno == ECHILD)) W.exiting[i] = W.exiting[--W.nexiting];
            else i++;
        }
        long long left = until - jw_mono_ms();
        if (W.nexiting <= keep || left <= 0) return;
        struct pollfd pfd = {W.chldpipe[0], POLLIN, 0};
        if (poll(&pfd, 1, (int)left) > 0) drain(W.chldpipe[0]);
    }
}

/* Remember a child that reported its outcome and is only exiting now: it is
 * reaped later, so that the teardown of its memory overlaps the master's
 * next settle and reserve instead of delaying them (the Python worker does
 * the same). A full list waits for its oldest; one still there after
 * LEAVE_TRIES_MS (stopped, say) is SIGKILLed: it has reported already. */
static void exiting_add(pid_t pid) {
    if (W.nexiting == MAX_EXITING) reap_exiting(MAX_EXITING - 1, LEAVE_TRIES_MS);
    if (W.nexiting == MAX_EXITING) {
        kill(W.exiting[0], SIGKILL);
        while (waitpid(W.exiting[0], NULL, 0) < 0 && errno == EINTR) {}
        W.exiting[0] = W.exiting[--W.nexiting];
    }
    W.exiting[W.nexiting++] = pid;
}

/* Wait for the child's outcome, doing the master's periodic duties
 * meanwhile: beat, read control commands, handle signals, enforce the job
 * timeout. Returns once the child's message is whole (the child is then
 * left to exit and reaped later: exiting_add) or, for a child that ended
 * without one, once it has exited and its pipe is drained. */
static void supervise(void) {
    long long deadline = W.job_timeout_ms > 0 ? jw_mono_ms() + W.job_timeout_ms : 0;
    int eof = 0;
    while (!(eof && W.run.reaped)) {
        long long now = jw_mono_ms();
        long long wait = CONTROL_EVERY_MS;
        if (W.next_beat_ms - now < wait) wait = W.next_beat_ms - now;
        if (W.next_control_ms - now < wait) wait = W.next_control_ms - now;
        if (W.promote && W.next_promote_ms - now < wait) wait = W.next_promote_ms - now;
        if (deadline && deadline - now < wait) wait = deadline - now;
        if (wait < 0) wait = 0;
        struct pollfd pfd[3] = {{W.sigpipe[0], POLLIN, 0}, {W.chldpipe[0], POLLIN, 0},
                                {eof ? -1 : W.run.fd, POLLIN, 0}};
        int n = poll(pfd, 3, (int)wait);
        if (n > 0 && !eof && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR))) {
            eof = jw_child_read(&W.run);
            if (!eof && jw_child_reported(&W.run)) break;
        }
        if (n > 0 && (pfd[1].revents & POLLIN)) {
            drain(W.chldpipe[0]);
            reap_exiting(0, 0); /* an earlier job's child, most likely */
        }
        if (eof) jw_child_reap(&W.run, 0);
        handle_signals();
        if (deadline && jw_mono_ms() >= deadline && !eof) kill_child(KILL_TIMEOUT);
        sync_state();
        beat_if_due();
        control_if_due();
        promote_if_due();
        if (!eof && jw_child_reap(&W.run, 0)) {
            /* Exited with the pipe still open: only if it leaked the fd
             * somewhere. Drain what is there and stop waiting for EOF. */
            while (!jw_child_read(&W.run)) {}
            eof = 1;
        }
    }
    if (!W.run.reaped) exiting_add(W.run.pid);
}

/* Turn the finished child into the pending outcome (protocol.md 7.4). */
static void child_outcome(const jw_job *job) {
    char msg[512];
    jw_error err = {0};
    jw_result_kind kind = jw_child_result(&W.run, &err);
    if (W.job_lost) {
        /* Not ours to settle any more: we were recovered as dead meanwhile. */
    } else if (kind == JW_RESULT_OK) {
        /* A complete result wins over a kill that came too late (protocol.md
         * 7.5: a job that finished before a stop signal is settled). */
        outcome_set("ok", NULL, 0, job->token, job->queue);
    } else if (kind == JW_RESULT_ERROR) {
        outcome_retry_or_fail(job, err.type, err.message, (const char *const *)err.frames, err.nframes);
    } else if (W.killed == KILL_TERM) {
        /* Killed to leave: leave() gives the job back to its queue. */
    } else if (W.killed == KILL_TIMEOUT) {
        snprintf(msg, sizeof msg, "job ran longer than %lld ms; child %d killed with SIGKILL",
                 W.job_timeout_ms, (int)W.run.pid);
        outcome_retry_or_fail(job, "jobwire.Timeout", msg, NULL, 0);
    } else if (W.killed == KILL_USR1) {
        snprintf(msg, sizeof msg, "killed by SIGUSR1 to worker %s (child %d sent SIGKILL)", W.id,
                 (int)W.run.pid);
        outcome_fail(job, "jobwire.Killed", msg, NULL, 0);
    } else if (W.killed == KILL_OPERATOR) {
        snprintf(msg, sizeof msg, "killed by the operator's kill command to worker %s (child %d sent SIGKILL)",
                 W.id, (int)W.run.pid);
        outcome_fail(job, "jobwire.Killed", msg, NULL, 0);
    } else {
        jw_child_reason(&W.run, msg, sizeof msg);
        outcome_set("crash", jw_strdup(msg), strlen(msg), job->token, job->queue);
    }
    jw_error_free(&err);
}

/* The master's descriptors a child closes at once: the signal self-pipes
 * and the master's Redis socket. A child holding a copy of that socket
 * keeps the connection open in Redis after the master drops it (a signal
 * cutting a BLPOP short, jw_redis_blpop), and the BLPOP still blocked
 * there pops what is pushed next (a "pause" on the control list, a wake
 * marker) into a socket nobody reads. A standby child lives across such a
 * drop, so without this it loses commands. */
enum { CHILD_CLOSE_FDS = 5 };
static void child_close_fds(int fds[CHILD_CLOSE_FDS]) {
    fds[0] = W.sigpipe[0];
    fds[1] = W.sigpipe[1];
    fds[2] = W.chldpipe[0];
    fds[3] = W.chldpipe[1];
    fds[4] = W.r.ctx ? W.r.ctx->fd : -1;
}

/* Fork the next job's child ahead, unless one is waiting already, so that
 * no fork() lies between a reserve and the job's start (protocol.md 7.4).
 * call_work() calls it while Redis runs work.lua, so the fork does not
 * delay the reply either. A failed fork is no error: the job then forks
 * its child itself. */
static void standby_ensure(void) {
    if (W.standby.pid) return;
    jw_env env = {W.ns, W.id, &W.r};
    int close_fds[CHILD_CLOSE_FDS];
    child_close_fds(close_fds);
    jw_standby_start(&W.standby, &env, close_fds, CHILD_CLOSE_FDS, title_set);
}

/* Start job's child: hand it to the standby, or fork one when there is
 * none (or it died). 0, or -1 with errno when fork failed three times. */
static int start_child(jw_job *job, jw_env *env, jw_handler h) {
    if (W.standby.pid && jw_standby_hand(&W.standby, &W.run, job) == 0) return 0;
    int close_fds[CHILD_CLOSE_FDS];
    child_close_fds(close_fds);
    int rc = -1;
    for (int attempt = 0; attempt < 3 && rc < 0; attempt++) {
        if (attempt) nap(200); /* fork fails on transient resource limits (EAGAIN, ENOMEM) */
        rc = jw_child_start(&W.run, job, env, h, close_fds, CHILD_CLOSE_FDS, title_set);
    }
    return rc;
}

/* Run one reserved job: validate it, find its handler, start its child
 * and wait for its outcome, which it leaves in W.out. No fork here when a
 * standby waits: the next standby is forked during the next work.lua call,
 * not beside this job. */
static void run_job(const char *token, const char *queue, const char *payload, size_t len) {
    char err[512];
    jw_job job = {token, queue, payload, len, NULL, NULL};
    int not_json;
    job.doc = jw_job_parse(payload, len, &not_json, err, sizeof err);
    if (!job.doc) {
        outcome_fail(&job, not_json ? "jobwire.InvalidJSON" : "jobwire.InvalidPayload", err, NULL, 0);
        return;
    }
    job.klass = json_string_value(json_object_get(job.doc, "class"));
    jw_handler h = jw_handler_find(job.klass);
    if (!h) {
        jw_buf m = {0};
        /* protocol.md 7.4: the class as a JSON string (escaped as 6.2 says) */
        jw_buf_adds(&m, "no handler registered for class ");
        jw_buf_quote(&m, job.klass, json_string_length(json_object_get(job.doc, "class")));
        outcome_fail(&job, "jobwire.UnknownClass", m.p, NULL, 0);
        jw_buf_free(&m);
        json_decref(job.doc);
        return;
    }
    jw_env env = {W.ns, W.id, &W.r};
    W.killed = KILL_NONE;
    W.job_lost = 0;
    W.next_promote_ms = jw_mono_ms() + W.heartbeat_ms;
    beats_busy();
    W.run_token = token;
    int rc = start_child(&job, &env, h);
    if (rc < 0) {
        /* No settle op gives a job back without counting a death; crash is the closest. */
        snprintf(err, sizeof err, "fork failed: %s", strerror(errno));
        outcome_set("crash", jw_strdup(err), strlen(err), token, queue);
    } else {
        title_setf("Forked %d at %lld", (int)W.run.pid, (long long)time(NULL));
        supervise();
        child_outcome(&job);
    }
    jw_run_free(&W.run);
    W.run_token = NULL;
    json_decref(job.doc);
}

/* ============================ Main loop ================================= */

/* Set the "Waiting for" title. */
static void title_waiting(void) {
    if (W.paused) title_set("Paused");
    else title_setf("Waiting for %s", W.queues_cfg);
}

/* The quiet look after a BLPOP that timed out (protocol.md 16.3): 1 when no
 * queue of ours holds a job (one EXISTS) and nothing is due for promotion:
 * no due time has come and no delayed bucket earlier than the known next
 * due time was stored without a marker (one ZRANGE). Then work.lua and
 * promote.lua would find nothing. 0 otherwise, or when Redis failed. */
static int nothing_new(void) {
    jw_args a = {0};
    if (W.nqueues > 0) {
        jw_args_add(&a, "EXISTS");
        for (int i = 0; i < W.nqueues; i++) add_key(&a, JW_K_QUEUE, W.queues[i]);
        redisReply *rep = jw_redis_cmd(&W.r, &a);
        jw_args_free(&a);
        int some = !rep || rep->type != REDIS_REPLY_INTEGER || rep->integer > 0;
        freeReplyObject(rep);
        if (some) return 0;
    }
    if (!W.promote) return 1;
    if (W.next_due_ms >= 0 && jw_mono_ms() >= W.next_due_ms - LOCAL_WAIT_MS) return 0;
    jw_args_add(&a, "ZRANGE");
    add_key(&a, JW_K_DELAYED_SCHEDULE, NULL);
    jw_args_add(&a, "0");
    jw_args_add(&a, "0");
    jw_args_add(&a, "WITHSCORES");
    redisReply *rep = jw_redis_cmd(&W.r, &a);
    jw_args_free(&a);
    int quiet = rep && rep->type == REDIS_REPLY_ARRAY &&
                (rep->elements < 2 || (rep->element[1]->type == REDIS_REPLY_STRING && W.next_due_redis_ms >= 0 &&
                                       W.next_due_redis_ms <= (long long)(strtod(rep->element[1]->str, NULL) * 1000)));
    freeReplyObject(rep);
    return quiet;
}

/* One turn of the loop of protocol.md 7.3: settle + reserve, then run the
 * job or block; after a block that timed out, the quiet look first. */
static void work_once(void) {
    if (W.wildcard && W.refresh_queues && refresh_queues() < 0) return;
    if (W.timed_out && !W.out.op) {
        W.timed_out = 0;
        if (nothing_new()) {
            title_waiting();
            idle_wait(0);
            return;
        }
    }
    redisReply *rep = call_work(1);
    if (!rep) return;
    if (reply_is(rep, 1, "job") && rep->elements >= 5) {
        redisReply **e = rep->element;
        run_job(e[2]->str, e[3]->str, e[4]->str, e[4]->len);
    } else if (reply_is(rep, 1, "expired")) {
        W.registered = 0;
    } else if (!reply_is(rep, 1, "retry")) {
        /* empty, paused (pause-all-workers), or settled (no queues yet) */
        freeReplyObject(rep);
        if (promote_due() > 0) return; /* due jobs were moved: reserve again before blocking */
        title_waiting();
        idle_wait(0);
        return;
    }
    freeReplyObject(rep);
}

/* Leave (protocol.md 7.3 step 3): unregister.lua mode self, which gives a
 * held job back. Retries an unreachable Redis for LEAVE_TRIES_MS (or until
 * a second SIGTERM/SIGINT); after that our lease lapses and a peer
 * recovers us, counting a death for a job we held. */
static void leave(void) {
    title_set("Shutting down");
    long long give_up = jw_mono_ms() + LEAVE_TRIES_MS;
    got_term = 0;
    while (jw_mono_ms() < give_up && !got_term) { /* a second TERM/INT: stop trying */
        const char *job = unregister(W.id, "self");
        if (job) {
            if (strcmp(job, "requeued") == 0) jw_log("gave the held job back to its queue");
            return;
        }
        nap(jw_redis_wait_hint(&W.r) + 10);
    }
    jw_log("could not unregister: Redis unreachable; our lease will lapse");
}

/* Before the first registration: if an in-flight hash already exists under
 * our id, a previous process with the same host, pid and queues (pid reuse,
 * e.g. a restarted container) died holding a job. Registering would make
 * its lease look alive and the next reserve would overwrite the hash, losing
 * that job, so recover it first as a dead worker (a death is counted).
 * Returns 0 when done, -1 when Redis failed. */
static int recover_previous_self(void) {
    jw_args a = {0};
    jw_args_add(&a, "EXISTS");
    add_key(&a, JW_K_INFLIGHT, W.id);
    redisReply *rep = jw_redis_cmd(&W.r, &a);
    jw_args_free(&a);
    if (!rep) return -1;
    int held = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    if (!held) return 0;
    const char *job = unregister(W.id, "dead");
    if (!job) return -1;
    jw_log("a previous worker with our id held a job; recovered it (job: %s)", job);
    return 0;
}

/* The worker's life. Returns the exit status. */
static int worker_run(void) {
    title_set("Starting");
    W.refresh_queues = 1;
    for (;;) {
        handle_signals();
        if (W.terminating) {
            /* A finished job is settled, not given back (protocol.md 7.5);
             * one try only: leaving must not wait for an absent Redis. */
            if (W.out.op && W.registered) settle_only();
            break;
        }
        if (!jw_redis_ready(&W.r)) { nap(jw_redis_wait_hint(&W.r) + 1); continue; }
        if (!W.started_clean) {
            if (recover_previous_self() < 0) continue;
            W.started_clean = 1;
        }
        if (!W.registered) {
            do_register();
            if (!W.registered) { nap(jw_redis_wait_hint(&W.r) + 100); continue; }
            if (!W.warned_routes) jw_warn_routed(&W.r, W.ns, W.configured, W.nconfigured);
            W.warned_routes = 1; /* once, after the first registration */
        }
        sync_state();
        beat_if_due();
        if (W.quitting) {
            if (settle_only() == 0) break;
            continue;
        }
        if (W.paused) {
            if (settle_only() < 0) continue;
            title_set("Paused");
            idle_wait(1);
            continue;
        }
        work_once();
    }
    jw_standby_stop(&W.standby);
    reap_exiting(0, LEAVE_TRIES_MS); /* no child outlives us: the death signal would cut its exit short */
    leave();
    return 0;
}

/* ============================ Configuration ============================= */

/* spec/options.json, the one source of flags, variables and defaults. */
static json_t *options_doc;

/* Its two lists: protocol.md 7.2's options, and 14.1's that a 1.1 worker takes too. */
static const char *const OPTION_LISTS[] = {"options", "options_1_1"};
#define N_OPTION_LISTS (sizeof OPTION_LISTS / sizeof OPTION_LISTS[0])

static const char *flag_value(int argc, char **argv, const char *flag, const char *env);

/* Bad usage (protocol.md 7.2): one line on stderr, then exit status 2. The
 * usage text is for --help; printed here it would bury the one line. */
static void bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void bad_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("jobwire-worker: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see jobwire-worker --help)\n", stderr);
    exit(2);
}

/* --help: print usage (generated from options.json) on stdout and exit 0. */
static void usage(void) {
    FILE *f = stdout;
    fprintf(f, "usage: jobwire-worker --queues a,b [options]\n"
               "       jobwire-worker --version | --help\n");
    for (size_t l = 0; l < N_OPTION_LISTS; l++) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(options_doc, OPTION_LISTS[l]), i, o) {
            json_t *d = json_object_get(o, "default");
            char dflt[64] = "required";
            if (json_is_string(d)) snprintf(dflt, sizeof dflt, "default %s", json_string_value(d));
            else if (json_is_integer(d)) snprintf(dflt, sizeof dflt, "default %lld", (long long)json_integer_value(d));
            fprintf(f, "  %-22s %s; %s (%s)\n", json_string_value(json_object_get(o, "flag")),
                    json_string_value(json_object_get(o, "help")), dflt, json_string_value(json_object_get(o, "env")));
        }
    }
    exit(0);
}

/* The options.json entry named name, in either list (exits when missing: a
 * spec/worker mismatch). */
static json_t *option_spec(const char *name) {
    for (size_t l = 0; l < N_OPTION_LISTS; l++) {
        size_t i;
        json_t *o;
        json_array_foreach(json_object_get(options_doc, OPTION_LISTS[l]), i, o)
            if (strcmp(json_string_value(json_object_get(o, "name")), name) == 0) return o;
    }
    fprintf(stderr, "jobwire-worker: spec/options.json has no option \"%s\"\n", name);
    exit(2);
}

/* 1 when value is one of the "values" of the enum option o. */
static int option_allows(json_t *o, const char *value) {
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(o, "values"), i, v)
        if (strcmp(json_string_value(v), value) == 0) return 1;
    return 0;
}

/* The value of option `name` from its flag (also --flag=value), else its
 * variable when set and not empty, else its default (NULL if none). Returns
 * a malloc'd copy (argv is about to be overwritten by the title). */
static char *option(int argc, char **argv, const char *name) {
    json_t *o = option_spec(name);
    const char *v = flag_value(argc, argv, json_string_value(json_object_get(o, "flag")),
                               json_string_value(json_object_get(o, "env")));
    if (v) return jw_strdup(v);
    json_t *d = json_object_get(o, "default");
    char num[32];
    if (json_is_integer(d)) { snprintf(num, sizeof num, "%lld", (long long)json_integer_value(d)); return jw_strdup(num); }
    return json_is_string(d) ? jw_strdup(json_string_value(d)) : NULL;
}

/* The value of `flag` (also --flag=value), else $env when set and not
 * empty, else NULL. */
static const char *flag_value(int argc, char **argv, const char *flag, const char *env) {
    size_t fl = strlen(flag);
    const char *v = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], flag) == 0) {
            if (i + 1 >= argc) { fprintf(stderr, "jobwire-worker: %s needs a value\n", flag); exit(2); }
            v = argv[++i];
        } else if (strncmp(argv[i], flag, fl) == 0 && argv[i][fl] == '=') {
            v = argv[i] + fl + 1;
        }
    }
    if (!v && env && getenv(env) && *getenv(env)) v = getenv(env); /* an empty variable is unset */
    return v;
}

/* An integer option: ASCII digits only, at least its options.json minimum. */
static long long num_option(int argc, char **argv, const char *name) {
    json_t *o = option_spec(name);
    char *v = option(argc, argv, name);
    long long min = json_integer_value(json_object_get(o, "minimum"));
    int digits = v && *v && strspn(v, "0123456789") == strlen(v) && strlen(v) < 16;
    long long n = digits ? strtoll(v, NULL, 10) : -1;
    if (n < min) {
        fprintf(stderr, "jobwire-worker: %s must be an integer >= %lld of ASCII digits, got \"%s\"\n",
                json_string_value(json_object_get(o, "flag")), min, v ? v : "");
        free(v);
        exit(2);
    }
    free(v);
    return n;
}

/* Print "jobwire-worker <release> (protocol <spec version>)" and exit 0,
 * as `jobwire version` does for Python. */
static void print_version(void) {
    char *dir = jw_spec_dir();
    jw_buf path = {0};
    jw_buf_addf(&path, "%s/VERSION", dir ? dir : ".");
    char *spec = dir ? jw_read_file(path.p, NULL) : NULL;
    if (spec) spec[strcspn(spec, " \t\r\n")] = '\0';
    printf("jobwire-worker %s (protocol %s)\n", jw_version(), spec ? spec : "unknown: spec/ not found");
    free(spec);
    free(dir);
    jw_buf_free(&path);
    exit(0);
}

/* Reject unknown flags so a typo is not silently ignored. */
static void check_flags(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) usage();
        if (strcmp(argv[i], "--version") == 0) print_version();
        int ok = 0;
        for (size_t l = 0; !ok && l < N_OPTION_LISTS; l++) {
            size_t k;
            json_t *o;
            json_array_foreach(json_object_get(options_doc, OPTION_LISTS[l]), k, o) {
                const char *flag = json_string_value(json_object_get(o, "flag"));
                size_t kl = strlen(flag);
                if (strcmp(argv[i], flag) == 0) { ok = 1; i++; break; }
                if (strncmp(argv[i], flag, kl) == 0 && argv[i][kl] == '=') { ok = 1; break; }
            }
        }
        if (!ok) bad_usage("unknown argument %s", argv[i]);
    }
}

/* Split and validate --queues (jw_queues_parse); "*" makes a wildcard worker. */
static void parse_queues(void) {
    char err[512];
    W.nconfigured = jw_queues_parse(W.queues_cfg, &W.configured, err, sizeof err);
    if (W.nconfigured < 0) { fprintf(stderr, "jobwire-worker: %s\n", err); exit(2); }
    for (int i = 0; i < W.nconfigured; i++) W.wildcard |= strcmp(W.configured[i], "*") == 0;
    if (W.wildcard) { W.refresh_queues = 1; return; }
    char **names = jw_malloc(sizeof(char *) * (size_t)W.nconfigured);
    for (int i = 0; i < W.nconfigured; i++) names[i] = jw_strdup(W.configured[i]);
    set_queues(names, W.nconfigured);
}

/* Read spec/VERSION and derive the major version. */
static void read_spec_version(const char *spec_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/VERSION", spec_dir);
    W.spec_version = jw_read_file(path, NULL);
    if (!W.spec_version) { fprintf(stderr, "jobwire-worker: cannot read %s\n", path); exit(2); }
    W.spec_version[strcspn(W.spec_version, " \t\r\n")] = '\0';
    snprintf(W.spec_major, sizeof W.spec_major, "%.*s", (int)strcspn(W.spec_version, "."),
             W.spec_version);
}

/* --default-retry and --scheduler (protocol.md 14.1). */
static void configure_1_1(int argc, char **argv) {
    char *policy = option(argc, argv, "default_retry");
    json_error_t jerr;
    char err[128];
    json_t *v = json_loads(policy, JSON_DECODE_ANY, &jerr);
    if (!v || jw_policy_parse(v, &W.default_policy, err, sizeof err) < 0) {
        fprintf(stderr, "jobwire-worker: --default-retry is not a retry policy (false or an object, "
                        "protocol.md 14.4): %s: %s\n", policy, v ? err : jerr.text);
        exit(2);
    }
    json_decref(v);
    free(policy);
    char *mode = option(argc, argv, "scheduler");
    if (!option_allows(option_spec("scheduler"), mode)) {
        fprintf(stderr, "jobwire-worker: --scheduler is all, promote or off, not \"%s\"\n", mode);
        exit(2);
    }
    W.promote = strcmp(mode, "off") != 0;
    W.fire = strcmp(mode, "all") == 0;
    W.next_due_ms = -1;
    W.next_due_redis_ms = -1;
    free(mode);
}

/* Fill W from flags and environment (protocol.md 7.2). Exits with status 2
 * on bad configuration. */
static void configure(int argc, char **argv, const char *spec_dir) {
    char path[4096];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/options.json", spec_dir);
    options_doc = json_load_file(path, 0, &jerr);
    if (!options_doc) { fprintf(stderr, "jobwire-worker: cannot read %s: %s\n", path, jerr.text); exit(2); }
    check_flags(argc, argv);
    W.queues_cfg = option(argc, argv, "queues");
    if (!W.queues_cfg) bad_usage("--queues is required");
    W.redis_url = option(argc, argv, "redis_url");
    W.ns = option(argc, argv, "namespace");
    long long conc = num_option(argc, argv, "concurrency");
    W.heartbeat_ms = num_option(argc, argv, "heartbeat_ms");
    W.lease_ms = num_option(argc, argv, "lease_ms");
    W.block_ms = num_option(argc, argv, "block_timeout_ms");
    W.max_deaths = (int)num_option(argc, argv, "max_deaths");
    W.job_timeout_ms = num_option(argc, argv, "job_timeout_ms");
    W.max_payload = num_option(argc, argv, "max_payload_bytes");
    if (conc != 1) {
        fprintf(stderr, "jobwire-worker: --concurrency %lld is not supported: the C worker runs one "
                        "worker per process; start %lld processes instead\n", conc, conc);
        exit(2);
    }
    if (W.lease_ms <= 2 * W.heartbeat_ms) {
        fprintf(stderr, "jobwire-worker: --lease-ms (%lld) must exceed 2 x --heartbeat-ms (%lld)\n",
                W.lease_ms, W.heartbeat_ms);
        exit(2);
    }
    parse_queues();
    configure_1_1(argc, argv);
    json_decref(options_doc);
    options_doc = NULL;
}

/* Free everything W owns, so that valgrind and LeakSanitizer see a clean
 * exit. */
static void cleanup(void) {
    outcome_clear();
    set_queues(NULL, 0);
    jw_queues_free(W.configured, W.nconfigured);
    jw_keys_free();
    jw_redis_close(&W.r);
    free(W.queues_cfg);
    free(W.redis_url);
    free(W.ns);
    free(W.id);
    free(W.spec_version);
    close(W.sigpipe[0]);
    close(W.sigpipe[1]);
    close(W.chldpipe[0]);
    close(W.chldpipe[1]);
    jw_registry_clear();
    title_free();
}

/* jobwire.h: configure, register and work until told to stop. Exit
 * status: 0 after a normal leave, 1 on JOBWIRE_SPEC_MISMATCH, 2 on bad
 * configuration. */
int jw_worker_main(int argc, char **argv) {
    char err[512];
    title_init(argc, argv);
    char *spec_dir = jw_spec_dir();
    if (!spec_dir) {
        fprintf(stderr, "jobwire-worker: cannot find spec/; set JOBWIRE_SPEC_DIR\n");
        return 2;
    }
    configure(argc, argv, spec_dir);
    if (jw_keys_load(spec_dir, err, sizeof err) < 0) {
        fprintf(stderr, "jobwire-worker: %s\n", err);
        return 2;
    }
    read_spec_version(spec_dir);
    if (jw_redis_init(&W.r, W.redis_url, spec_dir, err, sizeof err) < 0) {
        fprintf(stderr, "jobwire-worker: %s\n", err);
        return 2;
    }
    free(spec_dir);
    /* Socket timeout for ordinary commands: a Redis that hangs must not stall
     * the master's duties (beats, job timeout) for long. BLPOP has its own
     * deadline (jw_redis_blpop). */
    W.r.timeout_ms = 10000;
    if (gethostname(W.host, sizeof W.host - 1) < 0) strcpy(W.host, "localhost");
    jw_buf id = {0};
    jw_buf_addf(&id, "%s:%d:%s", W.host, (int)getpid(), W.queues_cfg);
    W.id = jw_buf_steal(&id, NULL);
    W.started_ms = jw_wall_ms();
    signals_init();
    int rc = worker_run();
    cleanup();
    return rc;
}
