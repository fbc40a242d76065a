/* jw_redis.h -- one Redis connection that survives Redis going away:
 * URL parsing, reconnect with backoff, and the spec's Lua scripts called by
 * EVALSHA with a SCRIPT LOAD retry on NOSCRIPT. */
#ifndef JW_REDIS_H
#define JW_REDIS_H

#include <hiredis.h>
#include <stddef.h>

/* The scripts of spec/lua/manifest.json. */
typedef enum jw_script {
    JW_S_ENQUEUE, JW_S_WORK, JW_S_HEARTBEAT, JW_S_UNREGISTER, JW_S_FAILED_RETRY,
    JW_S_DELAY, JW_S_PROMOTE, JW_S_RETRY, JW_S_FIRE, /* protocol 1.1 (section 14) */
    JW_S__COUNT
} jw_script;

typedef struct jw_redis {
    redisContext *ctx;          /* NULL while disconnected */
    char *host;                 /* from the URL */
    int port;
    int db;                     /* SELECTed after every connect */
    char *password;             /* AUTH after every connect, or NULL */
    char *username;             /* the ACL user of AUTH, or NULL (the default user) */
    long long timeout_ms;       /* socket timeout for ordinary commands */
    long long backoff_ms;       /* wait before the next connect attempt: 100 doubling to 5000 */
    long long next_attempt_ms;  /* monotonic time of the next connect attempt */
    int was_connected;          /* for "connection lost/restored" log lines */
    char *body[JW_S__COUNT];    /* script sources read from spec/lua */
    size_t body_len[JW_S__COUNT];
    char sha[JW_S__COUNT][41];  /* SHA1 from SCRIPT LOAD, "" until loaded */
    /* Redis Cluster (?cluster=1 in the URL, protocol.md 15): host:port above is the node we
     * talk to; MOVED replies move it to the slot's master, and when it cannot be reached the
     * next known node is tried (a promoted replica answers MOVED after a failover). */
    int cluster;
    char **nodes;               /* "host:port" of every node seen (URL seed, CLUSTER SLOTS) */
    int n_nodes;
    int next_node;              /* the node tried after a failed connect */
    int pending;                /* jw_redis_eval_send wrote a command whose reply is unread */
} jw_redis;

/* An argument vector under construction; owns its strings. */
typedef struct jw_args {
    int n, cap;
    char **v;
    size_t *len;
} jw_args;

void jw_args_add(jw_args *a, const char *s);
void jw_args_addn(jw_args *a, const char *s, size_t n);
void jw_args_take(jw_args *a, char *s, size_t n);
void jw_args_addll(jw_args *a, long long v);
void jw_args_free(jw_args *a);

int jw_redis_init(jw_redis *r, const char *url, const char *spec_dir, char *err, size_t errlen);
void jw_redis_close(jw_redis *r);
int jw_redis_ready(jw_redis *r);
void jw_redis_drop(jw_redis *r, int failed);
long long jw_redis_wait_hint(jw_redis *r);
redisReply *jw_redis_cmd(jw_redis *r, jw_args *a);
redisReply *jw_redis_eval(jw_redis *r, jw_script s, int nkeys, jw_args *a);
int jw_redis_eval_send(jw_redis *r, jw_script s, int nkeys, jw_args *a);
redisReply *jw_redis_eval_recv(jw_redis *r, jw_script s, int nkeys, jw_args *a);
redisReply *jw_redis_auth(redisContext *c, const jw_redis *r);
long long jw_redis_wait(jw_redis *r, int replicas, long long timeout_ms);
int jw_redis_blpop(jw_redis *r, jw_args *keys, long long timeout_ms, int intr_fd, redisReply **out);

#endif
