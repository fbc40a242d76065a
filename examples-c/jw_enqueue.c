/* jw_enqueue.c -- jobwire-enqueue [--at TIME | --in SECONDS] QUEUE CLASS [JSON_ARG ...]
 *
 * With --at/--in the job is stored for later with delay.lua in
 * resque-scheduler's layout (protocol.md section 14.2), unless its time is
 * not later than now: then it is enqueued at once.
 *
 * Builds {"class":...,"args":[...],"id":<32 hex>,"enqueued_at":<ms>} with
 * class first and args second (protocol.md section 5), validates it
 * against job.schema.json, pushes it with enqueue.lua (section 8.1) and
 * prints the job id. Pushes nothing when validation fails. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jw_job.h"
#include "jw_keys.h"
#include "jw_redis.h"
#include "jw_routing.h"
#include "jw_util.h"

/* Print usage and exit with status code. */
static void usage(int code) {
    fprintf(code ? stderr : stdout,
            "usage: jobwire-enqueue [--redis-url URL] [--namespace NS] [--at TIME | --in SECONDS]\n"
            "       [--wait-replicas N [--wait-timeout-ms MS]] QUEUE CLASS [JSON_ARG ...]\n"
            "       jobwire-enqueue --version | --help\n"
            "TIME is Unix seconds or ISO 8601 (YYYY-MM-DDTHH:MM:SS[.fff], UTC unless it ends\n"
            "in +hh:mm / -hh:mm). SECONDS may have a fraction.\n"
            "Each JSON_ARG is one JSON value (e.g. 7, '\"text\"', '{\"a\":1}'). Prints the job id.\n"
            "--wait-replicas N: durable enqueue, succeed only once N replicas have the job\n"
            "(WAIT, protocol.md 15.4; default timeout 1000 ms). The queue's namespace follows\n"
            "the routing table NS:jobwire:routes (protocol.md 15.2).\n");
    exit(code);
}

/* A random UUIDv4 as 32 lowercase hex characters, from /dev/urandom. */
static void random_id(char out[33]) {
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b) {
        perror("jobwire-enqueue: /dev/urandom");
        exit(1);
    }
    close(fd);
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Build the payload text. Each argument is parsed and re-encoded compactly
 * (doubles with 17 digits so they round-trip), or kept as given when it
 * holds an integer past int64. Exits on a bad argument. */
static char *build_payload(const char *klass, int nargs, char **args, const char *id,
                           size_t *len) {
    jw_buf b = {0};
    jw_buf_adds(&b, "{\"class\":");
    jw_buf_quote(&b, klass, strlen(klass));
    jw_buf_adds(&b, ",\"args\":[");
    for (int i = 0; i < nargs; i++) {
        json_error_t jerr;
        json_t *v = json_loads(args[i], JSON_DECODE_ANY, &jerr);
        char *text = NULL;
        if (v) {
            text = json_dumps(v, JW_JSON_FLAGS);
        } else if (strstr(jerr.text, "too big") &&
                   (v = jw_json_load_wide(args[i], strlen(args[i]), JSON_DECODE_ANY, &jerr))) {
            /* JSON with an integer past int64: the argument's own text, so it
             * stays exact (as Python's). A double that overflows (1e400) is
             * still refused, as Python's client refuses infinity. */
            text = jw_strndup(args[i], strlen(args[i]));
        } else {
            fprintf(stderr, "jobwire-enqueue: argument %d is not JSON: %s\n", i + 1, jerr.text);
            exit(2);
        }
        json_decref(v);
        if (i) jw_buf_add(&b, ",", 1);
        jw_buf_adds(&b, text);
        free(text);
    }
    jw_buf_addf(&b, "],\"id\":\"%s\",\"enqueued_at\":%lld}", id, jw_wall_ms());
    return jw_buf_steal(&b, len);
}

/* Run script with a's keys and arguments and return its integer reply, or -1.
 * A one-shot tool: a down Redis is retried briefly with the usual backoff; an
 * error reply is printed to stderr and not retried. */
static long long eval_integer(jw_redis *r, jw_script script, int nkeys, jw_args *a) {
    long long result = -1;
    for (int attempt = 0; attempt < 6 && result < 0; attempt++) {
        redisReply *rep = jw_redis_eval(r, script, nkeys, a);
        if (rep && rep->type == REDIS_REPLY_INTEGER) result = rep->integer;
        else if (rep) {
            fprintf(stderr, "jobwire-enqueue: %s\n", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
            freeReplyObject(rep);
            break;
        }
        freeReplyObject(rep);
        if (result < 0) usleep((useconds_t)(jw_redis_wait_hint(r) + 1) * 1000);
    }
    return result;
}

/* Push payload to queue with enqueue.lua. Returns the queue length or -1. */
static long long push(jw_redis *r, const char *ns, const char *queue, const char *payload,
                      size_t len) {
    jw_args a = {0};
    char *keys[] = {jw_key(ns, JW_K_QUEUES, NULL), jw_key(ns, JW_K_QUEUE, queue),
                    jw_key(ns, JW_K_WAKE, queue), jw_key(ns, JW_K_WAKE_NEW_QUEUE, NULL)};
    for (int i = 0; i < 4; i++) jw_args_take(&a, keys[i], strlen(keys[i]));
    jw_args_add(&a, queue);
    jw_args_addn(&a, payload, len);
    long long result = eval_integer(r, JW_S_ENQUEUE, 4, &a);
    jw_args_free(&a);
    return result;
}

/* --at TIME as ms since the epoch; -1 when it is not a time. */
static long long parse_at(const char *s) {
    char *end;
    errno = 0;
    double secs = strtod(s, &end);
    if (end != s && !*end && !errno && secs >= 0 && secs < 1e11 && strchr(s, '-') == NULL)
        return (long long)ceil(secs * 1000);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int used = 0;
    if (sscanf(s, "%4d-%2d-%2d%*[T ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return -1;
    const char *p = s + used;
    long long ms = 0;
    if (*p == '.') {
        long long scale = 100;
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) ms += (*p - '0') * scale;
    }
    long long offset_s = 0;
    if (*p == 'Z' || *p == 'z') p++;
    else if (*p == '+' || *p == '-') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 && sscanf(p + 1, "%2d%2d", &oh, &om) != 2) return -1;
        offset_s = (*p == '-' ? -1 : 1) * (oh * 3600LL + om * 60);
        p += strlen(p);
    }
    if (*p) return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    return ((long long)t - offset_s) * 1000 + ms;
}

/* The delayed item: the payload with "queue" as its third member (after
 * class and args) and "scheduled_for_ms" last (protocol.md 14.2). The
 * payload is build_payload()'s, so "id" follows "args". */
static char *delayed_item(const char *payload, const char *queue, long long at_ms, size_t *len) {
    const char *id = strstr(payload, "],\"id\":\"");
    jw_buf b = {0};
    jw_buf_add(&b, payload, (size_t)(id + 1 - payload));
    jw_buf_adds(&b, ",\"queue\":");
    jw_buf_quote(&b, queue, strlen(queue));
    jw_buf_add(&b, id + 1, strlen(id + 1) - 1);
    jw_buf_addf(&b, ",\"scheduled_for_ms\":%lld}", at_ms);
    return jw_buf_steal(&b, len);
}

/* Store the job for at_ms with delay.lua. Returns 1, or -1 on failure. */
static long long delay(jw_redis *r, const char *ns, const char *queue, const char *payload,
                       long long at_ms) {
    size_t len;
    char *item = delayed_item(payload, queue, at_ms, &len);
    char ts[32];
    snprintf(ts, sizeof ts, "%lld", (at_ms + 999) / 1000); /* ceil: never before its time */
    jw_args a = {0};
    char *keys[] = {jw_key(ns, JW_K_DELAYED_SCHEDULE, NULL), jw_key(ns, JW_K_DELAYED_BUCKET, ts),
                    jw_key(ns, JW_K_DELAYED_TIMESTAMPS, item), jw_key(ns, JW_K_WAKE_SCHEDULE, NULL)};
    for (int i = 0; i < 4; i++) jw_args_take(&a, keys[i], strlen(keys[i]));
    jw_args_add(&a, ts);
    jw_args_addn(&a, item, len);
    free(item);
    long long result = eval_integer(r, JW_S_DELAY, 4, &a);
    jw_args_free(&a);
    return result;
}

/* Route the queue to its namespace (protocol.md 15.2), push or delay the job
 * there and, when durable, WAIT for replicas (15.4). Returns the exit status:
 * 0 done, 1 Redis unreachable, refused, or not replicated in time. */
static int enqueue(jw_redis *r, const char *url, const char *home, const char *queue, const char *payload,
                   size_t len, long long at_ms, int wait_replicas, long long wait_timeout_ms) {
    char err[512];
    char *ns = jw_route_lookup(r, home, queue, err, sizeof err);
    if (!ns) {
        fprintf(stderr, "jobwire-enqueue: %s\n", err);
        return 1;
    }
    long long n = at_ms > jw_wall_ms() ? delay(r, ns, queue, payload, at_ms) : push(r, ns, queue, payload, len);
    free(ns);
    if (n < 0) {
        fprintf(stderr, "jobwire-enqueue: could not reach Redis at %s\n", url);
        return 1;
    }
    if (wait_replicas > 0) {
        long long acked = jw_redis_wait(r, wait_replicas, wait_timeout_ms);
        if (acked < wait_replicas) {
            fprintf(stderr, "jobwire-enqueue: jobwire.NotReplicated: the job is on the master, but %lld of %d "
                    "replica(s) acknowledged it within %lld ms (WAIT): a failover may lose it\n",
                    acked < 0 ? 0 : acked, wait_replicas, wait_timeout_ms);
            return 1;
        }
    }
    return 0;
}

/* Parse flags, build and validate the payload, push it, print its id.
 * Exit status: 0 pushed, 1 Redis unreachable or refused, 2 bad input. */
/* The default of option `name` from spec/options.json (its one source), copied
 * into buf; NULL when the file cannot be read. */
static const char *option_default(const char *name, char *buf, size_t size) {
    char *spec_dir = jw_spec_dir(), path[4096];
    if (!spec_dir) return NULL;
    snprintf(path, sizeof path, "%s/options.json", spec_dir);
    free(spec_dir);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    const char *out = NULL;
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(doc, "options"), i, o) {
        const char *n = json_string_value(json_object_get(o, "name"));
        const char *d = json_string_value(json_object_get(o, "default"));
        if (n && d && strcmp(n, name) == 0) { snprintf(buf, size, "%s", d); out = buf; }
    }
    json_decref(doc);
    return out;
}

int main(int argc, char **argv) {
    const char *url = getenv("REDIS_URL"), *ns = getenv("JOBWIRE_NAMESPACE");
    long long at_ms = -1, wait_timeout_ms = 1000;
    int i = 1, wait_replicas = 0;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--") == 0) { i++; break; }
        if (strcmp(argv[i], "--help") == 0) usage(0);
        if (strcmp(argv[i], "--version") == 0) { printf("jobwire-enqueue %s\n", jw_version()); return 0; }
        if (i + 1 >= argc) usage(2);
        if (strcmp(argv[i], "--redis-url") == 0) url = argv[++i];
        else if (strcmp(argv[i], "--namespace") == 0) ns = argv[++i];
        else if (strcmp(argv[i], "--wait-replicas") == 0 || strcmp(argv[i], "--wait-timeout-ms") == 0) {
            const char *flag = argv[i], *v = argv[++i];
            char *end;
            long long n = strtoll(v, &end, 10);
            if (end == v || *end || n < 0 || n > 1000000000) {
                fprintf(stderr, "jobwire-enqueue: %s needs an integer >= 0, got \"%s\"\n", flag, v);
                return 2;
            }
            if (strcmp(flag, "--wait-replicas") == 0) wait_replicas = (int)n;
            else wait_timeout_ms = n;
        }
        else if (strcmp(argv[i], "--at") == 0 || strcmp(argv[i], "--in") == 0) {
            if (at_ms >= 0) { fprintf(stderr, "jobwire-enqueue: give --at or --in once\n"); return 2; }
            const char *flag = argv[i], *v = argv[++i];
            if (strcmp(flag, "--at") == 0) {
                at_ms = parse_at(v);
            } else {
                char *end;
                double secs = strtod(v, &end);
                at_ms = (end == v || *end || !(secs >= 0) || secs > 1e10) ? -1 : jw_wall_ms() + (long long)ceil(secs * 1000);
            }
            if (at_ms < 0) { fprintf(stderr, "jobwire-enqueue: bad %s value \"%s\"\n", flag, v); return 2; }
        }
        else usage(2);
    }
    static char url_default[1024], ns_default[256];
    if (!url || !*url) url = option_default("redis_url", url_default, sizeof url_default);
    if (!ns || !*ns) ns = option_default("namespace", ns_default, sizeof ns_default);
    if (!url || !ns) {
        fprintf(stderr, "jobwire-enqueue: cannot read the defaults from spec/options.json; set JOBWIRE_SPEC_DIR\n");
        return 2;
    }
    if (argc - i < 2) usage(2);
    const char *queue = argv[i], *klass = argv[i + 1];
    if (!jw_queue_name_valid(queue)) {
        fprintf(stderr, "jobwire-enqueue: invalid queue name \"%s\"\n", queue);
        return 2;
    }
    char id[33], err[512];
    size_t len;
    random_id(id);
    char *payload = build_payload(klass, argc - i - 2, argv + i + 2, id, &len);
    int not_json;
    json_t *doc = jw_job_parse(payload, len, &not_json, err, sizeof err);
    if (!doc) {
        fprintf(stderr, "jobwire-enqueue: invalid job: %s\n", err);
        free(payload);
        return 2;
    }
    json_decref(doc);
    char *spec_dir = jw_spec_dir();
    jw_redis r;
    memset(&r, 0, sizeof r); /* safe to close whichever step failed */
    if (!spec_dir || jw_keys_load(spec_dir, err, sizeof err) < 0 || jw_redis_init(&r, url, spec_dir, err, sizeof err) < 0) {
        fprintf(stderr, "jobwire-enqueue: %s\n", spec_dir ? err : "cannot find spec/; set JOBWIRE_SPEC_DIR");
        if (spec_dir) jw_redis_close(&r); /* init zeroed r first, so this is safe */
        free(spec_dir);
        free(payload);
        jw_keys_free();
        return 2;
    }
    free(spec_dir);
    int status = enqueue(&r, url, ns, queue, payload, len, at_ms, wait_replicas, wait_timeout_ms);
    jw_redis_close(&r);
    jw_keys_free();
    free(payload);
    if (status == 0) printf("%s\n", id);
    return status;
}
