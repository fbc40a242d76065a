/* c_enqueue.c -- the enqueue rate of jobwire's C client library (libjobwire), for make bench.
 *
 *     c_enqueue REDIS_URL N   ->  {"jobwire-c one by one": rate, "jobwire-c bulk": rate}
 *
 * One by one: one enqueue.lua call per job, awaited, like jobwire-enqueue does once.
 * Bulk: 1000 payloads per enqueue.lua call. Built by bench/run.py against ../examples-c. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jw_keys.h"
#include "jw_redis.h"
#include "jw_util.h"

#define BULK 1000

/* Seconds on the monotonic clock. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Append a jobwire.Noop payload with a unique id (protocol.md section 5) to a. */
static void add_payload(jw_args *a, long long i) {
    char payload[160];
    int len = snprintf(payload, sizeof payload,
                       "{\"class\":\"jobwire.Noop\",\"args\":[],\"id\":\"%032llx\",\"enqueued_at\":%lld}",
                       i, jw_wall_ms());
    jw_args_addn(a, payload, (size_t)len);
}

/* Push `count` payloads in one enqueue.lua call; exit on an error reply. */
static void push(jw_redis *r, long long first, int count) {
    jw_args a = {0};
    char *keys[] = {jw_key("resque", JW_K_QUEUES, NULL), jw_key("resque", JW_K_QUEUE, "cbench"),
                    jw_key("resque", JW_K_WAKE, "cbench"), jw_key("resque", JW_K_WAKE_NEW_QUEUE, NULL)};
    for (int k = 0; k < 4; k++) jw_args_take(&a, keys[k], strlen(keys[k]));
    jw_args_add(&a, "cbench");
    for (int i = 0; i < count; i++) add_payload(&a, first + i);
    redisReply *rep = jw_redis_eval(r, JW_S_ENQUEUE, 4, &a);
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        fprintf(stderr, "c_enqueue: %s\n", rep && rep->type == REDIS_REPLY_ERROR ? rep->str : "no reply");
        exit(1);
    }
    freeReplyObject(rep);
    jw_args_free(&a);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: c_enqueue REDIS_URL N\n"); return 2; }
    long long n = atoll(argv[2]);
    char err[512], *spec_dir = jw_spec_dir();
    jw_redis r;
    memset(&r, 0, sizeof r);
    if (!spec_dir || jw_keys_load(spec_dir, err, sizeof err) < 0 ||
        jw_redis_init(&r, argv[1], spec_dir, err, sizeof err) < 0) {
        fprintf(stderr, "c_enqueue: %s\n", spec_dir ? err : "cannot find spec/");
        return 2;
    }
    free(spec_dir);
    push(&r, 0, 1); /* connect and load the script before the clock starts */
    double t = now_s();
    for (long long i = 0; i < n; i++) push(&r, i + 1, 1);
    double one = (double)n / (now_s() - t);
    t = now_s();
    for (long long i = 0; i < n * 4; i += BULK) push(&r, n + 1 + i, BULK);
    double bulk = (double)(n * 4) / (now_s() - t);
    printf("{\"jobwire-c one by one\": %.1f, \"jobwire-c bulk\": %.1f}\n", one, bulk);
    jw_redis_close(&r);
    jw_keys_free();
    return 0;
}
