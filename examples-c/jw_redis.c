/* jw_redis.c -- see jw_redis.h.
 *
 * Every call returns NULL (or -1) when the connection broke; the context is
 * then freed and the next connect attempt scheduled with backoff. Callers
 * never exit because of that: they keep what they hold and try again
 * (protocol.md section 7.7). */
#define _GNU_SOURCE
#include "jw_redis.h"
#include "jobwire.h"
#include "jw_util.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 1000

static int accepted_reply(void *reply);
static void add_node(jw_redis *r, const char *host, int port);

/* ============================ Argument vectors ========================== */

/* Append a string the vector takes ownership of. */
void jw_args_take(jw_args *a, char *s, size_t n) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = jw_realloc(a->v, sizeof(char *) * (size_t)a->cap);
        a->len = jw_realloc(a->len, sizeof(size_t) * (size_t)a->cap);
    }
    a->v[a->n] = s;
    a->len[a->n] = n;
    a->n++;
}

/* Append a copy of n bytes. */
void jw_args_addn(jw_args *a, const char *s, size_t n) { jw_args_take(a, jw_strndup(s, n), n); }

/* Append a copy of a C string. */
void jw_args_add(jw_args *a, const char *s) { jw_args_addn(a, s, strlen(s)); }

/* Append a number in decimal. */
void jw_args_addll(jw_args *a, long long v) {
    char num[32];
    int n = snprintf(num, sizeof num, "%lld", v);
    jw_args_addn(a, num, (size_t)n);
}

/* Free every string and the vector itself; a is reusable afterwards. */
void jw_args_free(jw_args *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    free(a->v);
    free(a->len);
    a->v = NULL;
    a->len = NULL;
    a->n = a->cap = 0;
}

/* ============================ Setup ===================================== */

/* The value of one hex digit, or -1. */
static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A malloc'ed copy of the n bytes at s with %XX escapes decoded (RFC 3986
 * userinfo, as Python's and Node's clients read it), or NULL when an escape
 * is not two hex digits or decodes to a NUL byte. */
static char *percent_decode(const char *s, size_t n) {
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
        int lo = i + 2 < n ? hex_digit(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

/* url for an error message, its password (if any) shown as "***": logs and
 * supervisors keep what a worker prints. Writes into buf (len bytes). */
static const char *url_for_message(const char *url, char *buf, size_t len) {
    const char *auth = strstr(url, "://");
    if (!auth) return url;
    auth += 3;
    const char *at = NULL;
    for (const char *c = auth; *c && *c != '/' && *c != '?'; c++)
        if (*c == '@') at = c;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon) return url;
    snprintf(buf, len, "%.*s***%s", (int)(colon + 1 - url), url, at);
    return buf;
}

/* Parse redis://[[user]:password@]host[:port][/db] into r (a user names a
 * Redis ACL user, protocol.md 8.9; both percent-decoded, the userinfo ending
 * at the authority's last '@'). Returns 0, or -1 with a message in err. */
static int parse_url(jw_redis *r, const char *url, char *err, size_t errlen) {
    char shown[512];
    const char *p = url;
    const char *query = strchr(url, '?');
    if (query) {
        r->cluster = strstr(query, "cluster=1") != NULL || strstr(query, "cluster=true") != NULL;
        char *bare = jw_strndup(url, (size_t)(query - url));
        int rc = parse_url(r, bare, err, errlen);
        free(bare);
        if (rc == 0 && r->cluster && r->db != 0) {
            snprintf(err, errlen, "Redis Cluster has only database 0: %s", url_for_message(url, shown, sizeof shown));
            return -1;
        }
        return rc;
    }
    if (strncmp(p, "rediss://", 9) == 0) {
        snprintf(err, errlen, "this worker speaks no TLS (Debian's hiredis has none): run a TLS terminator "
                 "on this host (examples-c/README.md, \"Redis over TLS\") and give its redis://127.0.0.1 address");
        return -1;
    }
    if (strncmp(p, "redis://", 8) != 0) {
        snprintf(err, errlen, "REDIS_URL must start with redis://: %s", url_for_message(url, shown, sizeof shown));
        return -1;
    }
    p += 8;
    const char *at = NULL;
    for (const char *c = p; *c && *c != '/'; c++)
        if (*c == '@') at = c;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if (at > pw && !(r->password = percent_decode(pw, (size_t)(at - pw)))) {
            snprintf(err, errlen, "bad %%-escape in the password of the Redis URL");
            return -1;
        }
        if (colon && colon > p && !(r->username = percent_decode(p, (size_t)(colon - p)))) {
            snprintf(err, errlen, "bad %%-escape in the user name of the Redis URL");
            return -1;
        }
        p = at + 1;
    }
    size_t hostlen = strcspn(p, ":/");
    if (hostlen == 0) {
        snprintf(err, errlen, "no host in the Redis URL %s", url_for_message(url, shown, sizeof shown));
        return -1;
    }
    r->host = jw_strndup(p, hostlen);
    p += hostlen;
    r->port = 6379;
    r->db = 0;
    if (*p == ':') {
        size_t digits = strspn(p + 1, "0123456789");
        long port = digits && digits <= 5 ? strtol(p + 1, NULL, 10) : 0;
        if (port < 1 || port > 65535 || (p[1 + digits] != '/' && p[1 + digits] != '\0')) {
            snprintf(err, errlen, "bad port in the Redis URL %s (1-65535)", url_for_message(url, shown, sizeof shown));
            return -1;
        }
        r->port = (int)port;
        p += 1 + digits;
    }
    if (*p == '/' && p[1]) {
        size_t digits = strspn(p + 1, "0123456789");
        if (!digits || p[1 + digits] != '\0' || digits > 9) {
            snprintf(err, errlen, "bad database number in the Redis URL %s", url_for_message(url, shown, sizeof shown));
            return -1;
        }
        r->db = (int)strtol(p + 1, NULL, 10);
    }
    return 0;
}

/* The file name of each script per spec/lua/manifest.json; the manifest is
 * read so that a renamed file is a data change, not a code change. */
static int load_scripts(jw_redis *r, const char *spec_dir, char *err, size_t errlen) {
    static const char *names[JW_S__COUNT] = {"enqueue", "work", "heartbeat", "unregister",
                                             "failed_retry", "delay", "promote", "retry", "fire"};
    char path[4096];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/lua/manifest.json", spec_dir);
    json_t *manifest = json_load_file(path, 0, &jerr);
    if (!manifest) {
        snprintf(err, errlen, "cannot read %s: %s", path, jerr.text);
        return -1;
    }
    json_t *scripts = json_object_get(manifest, "scripts");
    for (int i = 0; i < JW_S__COUNT; i++) {
        const char *file = json_string_value(json_object_get(json_object_get(scripts, names[i]), "file"));
        if (!file) {
            snprintf(err, errlen, "%s names no file for script %s", path, names[i]);
            json_decref(manifest);
            return -1;
        }
        snprintf(path, sizeof path, "%s/lua/%s", spec_dir, file);
        r->body[i] = jw_read_file(path, &r->body_len[i]);
        if (!r->body[i]) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            json_decref(manifest);
            return -1;
        }
    }
    json_decref(manifest);
    return 0;
}

/* Fill r from a URL and the spec directory; does not connect yet. */
int jw_redis_init(jw_redis *r, const char *url, const char *spec_dir, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    r->backoff_ms = BACKOFF_MIN_MS;
    r->timeout_ms = 30000;
    if (parse_url(r, url, err, errlen) < 0) return -1;
    if (r->cluster) add_node(r, r->host, r->port);
    return load_scripts(r, spec_dir, err, errlen);
}

/* Close the connection and free everything r owns. */
void jw_redis_close(jw_redis *r) {
    if (r->ctx) redisFree(r->ctx);
    r->ctx = NULL;
    free(r->host);
    free(r->password);
    free(r->username);
    for (int i = 0; i < JW_S__COUNT; i++) free(r->body[i]);
    for (int i = 0; i < r->n_nodes; i++) free(r->nodes[i]);
    free(r->nodes);
    memset(r, 0, sizeof *r);
}

/* ============================ Connection ================================ */


/* Forget the connection. failed = 1 schedules the next attempt after the
 * current backoff and doubles it; 0 (we dropped it on purpose) allows an
 * immediate reconnect. */
void jw_redis_drop(jw_redis *r, int failed) {
    if (r->ctx) {
        if (failed && r->was_connected)
            jw_log("lost Redis at %s:%d (%s); reconnecting", r->host, r->port,
                   r->ctx->errstr[0] ? r->ctx->errstr : "error");
        redisFree(r->ctx);
    }
    r->ctx = NULL;
    r->pending = 0;
    if (failed) {
        r->was_connected = 0;
        r->next_attempt_ms = jw_mono_ms() + r->backoff_ms;
        r->backoff_ms *= 2;
        if (r->backoff_ms > BACKOFF_MAX_MS) r->backoff_ms = BACKOFF_MAX_MS;
    } else {
        r->next_attempt_ms = 0;
    }
}

/* ============================ Redis Cluster ============================= *
 * Debian 12's hiredis (0.14) has no cluster support, and a worker needs very
 * little of it: every key of a namespace carries the namespace's hash tag, so
 * all of one worker's keys live in one slot on one master. We talk to one
 * node; an error reply names the right one:
 *   MOVED <slot> <host:port>  the slot lives there now: switch to it, resend;
 *   ASK <slot> <host:port>    the slot is migrating: send ASKING + the command
 *                             there once, stay where we are;
 *   CLUSTERDOWN / TRYAGAIN    the command did not run (a master is being
 *                             replaced, a slot is moving): like a dropped
 *                             connection, the caller retries after backoff.
 * A node that cannot be reached (a dead master) makes the next connect try
 * the next node we know of; any live node answers MOVED to the new master. */

#define MAX_REDIRECTS 8

/* Remember a node's address (no duplicates). */
static void add_node(jw_redis *r, const char *host, int port) {
    char addr[300];
    snprintf(addr, sizeof addr, "%s:%d", host, port);
    for (int i = 0; i < r->n_nodes; i++)
        if (strcmp(r->nodes[i], addr) == 0) return;
    r->nodes = jw_realloc(r->nodes, sizeof(char *) * (size_t)(r->n_nodes + 1));
    r->nodes[r->n_nodes++] = jw_strdup(addr);
}

/* Point r at "host:port" (from a redirect or the node list); -1 if malformed. */
static int set_address(jw_redis *r, const char *addr, size_t n) {
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++) if (addr[i] == ':') colon = addr + i; /* the last one */
    if (!colon || colon == addr) return -1;
    long port = strtol(colon + 1, NULL, 10);
    if (port <= 0 || port > 65535) return -1;
    free(r->host);
    r->host = jw_strndup(addr, (size_t)(colon - addr));
    r->port = (int)port;
    add_node(r, r->host, r->port);
    return 0;
}

/* After a failed connect: the next known node gets the next attempt. */
static void try_next_node(jw_redis *r) {
    if (!r->cluster || r->n_nodes < 2) return;
    r->next_node = (r->next_node + 1) % r->n_nodes;
    const char *addr = r->nodes[r->next_node];
    set_address(r, addr, strlen(addr));
}

/* Learn every node's address from CLUSTER SLOTS on a fresh connection, so
 * that the death of the node we talk to leaves others to ask. Best effort. */
static void learn_nodes(jw_redis *r) {
    redisReply *rep = redisCommand(r->ctx, "CLUSTER SLOTS");
    if (!rep) return; /* the caller's next command sees the broken connection */
    for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
        redisReply *range = rep->element[i];
        for (size_t j = 2; range->type == REDIS_REPLY_ARRAY && j < range->elements; j++) {
            redisReply *node = range->element[j];
            if (node->type == REDIS_REPLY_ARRAY && node->elements >= 2 && node->element[0]->type == REDIS_REPLY_STRING &&
                node->element[1]->type == REDIS_REPLY_INTEGER && node->element[0]->len > 0)
                add_node(r, node->element[0]->str, (int)node->element[1]->integer);
        }
    }
    freeReplyObject(rep);
}

/* Is rep an error reply starting with word (followed by a space or the end)? */
static int is_error(const redisReply *rep, const char *word) {
    size_t n = strlen(word);
    return rep && rep->type == REDIS_REPLY_ERROR && rep->len >= n && strncmp(rep->str, word, n) == 0 &&
           (rep->len == n || rep->str[n] == ' ');
}

/* The "host:port" of a MOVED/ASK reply ("MOVED 1234 127.0.0.1:7001"). */
static const char *redirect_target(const redisReply *rep, size_t *n) {
    const char *sp = memchr(rep->str, ' ', rep->len);
    const char *sp2 = sp ? memchr(sp + 1, ' ', rep->len - (size_t)(sp + 1 - rep->str)) : NULL;
    if (!sp2) return NULL;
    *n = rep->len - (size_t)(sp2 + 1 - rep->str);
    return sp2 + 1;
}

/* ASK: run the command once on the named node, after ASKING, on a short-lived
 * connection (the slot still officially belongs to our node). */
static redisReply *ask_once(jw_redis *r, const char *addr, size_t n, int argc, const char **argv, const size_t *len) {
    char host[256];
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++) if (addr[i] == ':') colon = addr + i;
    if (!colon || (size_t)(colon - addr) >= sizeof host) return NULL;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    redisReply *rep = NULL;
    if (c && !c->err && (!r->password || accepted_reply(jw_redis_auth(c, r)))) {
        redisReply *asking = redisCommand(c, "ASKING");
        if (asking) rep = redisCommandArgv(c, argc, argv, len);
        if (asking) freeReplyObject(asking);
    }
    if (c) redisFree(c);
    return rep;
}

/* A cluster error reply to one command: follow it. Returns the reply to give
 * the caller (rep itself when it is no redirect), NULL after dropping the
 * connection (CLUSTERDOWN/TRYAGAIN, an unreachable node), or CMD_RESEND when
 * r now points at the slot's master and the command must be sent again. */
static redisReply resend_marker; /* its address only: "send again" */
#define CMD_RESEND (&resend_marker)
static redisReply *follow(jw_redis *r, redisReply *rep, int argc, const char **argv, const size_t *len) {
    size_t n = 0;
    const char *addr;
    if (is_error(rep, "MOVED") && (addr = redirect_target(rep, &n)) && set_address(r, addr, n) == 0) {
        freeReplyObject(rep);
        jw_redis_drop(r, 0); /* reconnect at once, to the new address */
        return CMD_RESEND;
    }
    if (is_error(rep, "ASK") && (addr = redirect_target(rep, &n))) {
        redisReply *answer = ask_once(r, addr, n, argc, argv, len);
        freeReplyObject(rep);
        if (!answer) jw_redis_drop(r, 1);
        return answer;
    }
    if (is_error(rep, "CLUSTERDOWN") || is_error(rep, "TRYAGAIN")) {
        jw_log("Redis Cluster: %s; retrying", rep->str);
        freeReplyObject(rep);
        jw_redis_drop(r, 1);
        return NULL;
    }
    return rep;
}

/* Run one command on the raw context; NULL and a dropped connection on I/O
 * error. On a cluster, MOVED and ASK are followed here, so callers never see
 * them. */
static redisReply *raw_cmd(jw_redis *r, int argc, const char **argv, const size_t *len) {
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
        redisReply *reply = redisCommandArgv(r->ctx, argc, argv, len);
        if (!reply) { jw_redis_drop(r, 1); return NULL; }
        if (!r->cluster || reply->type != REDIS_REPLY_ERROR) return reply;
        reply = follow(r, reply, argc, argv, len);
        if (reply != CMD_RESEND) return reply;
        if (!jw_redis_ready(r)) return NULL;
    }
    jw_log("Redis Cluster: more than %d redirects; retrying later", MAX_REDIRECTS);
    jw_redis_drop(r, 1);
    return NULL;
}

/* AUTH [user] password on connection c (the worker's, or a child's); the
 * reply, or NULL on I/O error. Call only when r->password is set. */
redisReply *jw_redis_auth(redisContext *c, const jw_redis *r) {
    const char *argv[] = {"AUTH", r->username ? r->username : r->password, r->password};
    size_t len[] = {4, strlen(argv[1]), strlen(r->password)};
    return redisCommandArgv(c, r->username ? 3 : 2, argv, len);
}

/* AUTH and SELECT on a fresh connection. Returns 0 or -1. */
static int handshake(jw_redis *r) {
    char db[16];
    if (r->password) {
        redisReply *rep = jw_redis_auth(r->ctx, r);
        if (!rep) { jw_redis_drop(r, 1); return -1; }
        int bad = rep->type == REDIS_REPLY_ERROR;
        if (bad) jw_log("AUTH failed: %s", rep->str);
        freeReplyObject(rep);
        if (bad) { jw_redis_drop(r, 1); return -1; }
    }
    if (r->db) {
        snprintf(db, sizeof db, "%d", r->db);
        const char *argv[] = {"SELECT", db};
        size_t len[] = {6, strlen(db)};
        redisReply *rep = raw_cmd(r, 2, argv, len);
        if (!rep) return -1;
        int bad = rep->type == REDIS_REPLY_ERROR;
        if (bad) jw_log("SELECT %s failed: %s", db, rep->str);
        freeReplyObject(rep);
        if (bad) { jw_redis_drop(r, 1); return -1; }
    }
    return 0;
}

/* Make sure there is a connection, trying once if the backoff allows it.
 * Returns 1 when connected, 0 when not (yet). Never sleeps longer than one
 * connect timeout. */
int jw_redis_ready(jw_redis *r) {
    if (r->ctx) return 1;
    if (jw_mono_ms() < r->next_attempt_ms) return 0;
    struct timeval tv = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
    r->ctx = redisConnectWithTimeout(r->host, r->port, tv);
    if (!r->ctx || r->ctx->err) {
        if (r->ctx) { redisFree(r->ctx); r->ctx = NULL; }
        jw_redis_drop(r, 1);
        try_next_node(r);
        return 0;
    }
    struct timeval ctv = {r->timeout_ms / 1000, (r->timeout_ms % 1000) * 1000};
    redisSetTimeout(r->ctx, ctv);
    redisEnableKeepAlive(r->ctx);
    if (handshake(r) < 0) return 0;
    if (r->cluster) learn_nodes(r);
    if (r->backoff_ms > BACKOFF_MIN_MS) jw_log("connected to Redis at %s:%d", r->host, r->port);
    r->backoff_ms = BACKOFF_MIN_MS;
    r->was_connected = 1;
    return 1;
}

/* How long until the next connect attempt is allowed (0 when connected or
 * due now): callers sleep at most this long before trying again. */
long long jw_redis_wait_hint(jw_redis *r) {
    if (r->ctx) return 0;
    long long left = r->next_attempt_ms - jw_mono_ms();
    return left > 0 ? left : 0;
}

/* Run the command in a. NULL when not connected or the connection broke. */
redisReply *jw_redis_cmd(jw_redis *r, jw_args *a) {
    if (!jw_redis_ready(r)) return NULL;
    return raw_cmd(r, a->n, (const char **)a->v, a->len);
}

/* SCRIPT LOAD a script, remembering its SHA1. Returns 0, or -1 when the
 * connection broke or Redis refused the script (then logged). */
static int script_load(jw_redis *r, jw_script s) {
    const char *argv[] = {"SCRIPT", "LOAD", r->body[s]};
    size_t len[] = {6, 4, r->body_len[s]};
    redisReply *rep = raw_cmd(r, 3, argv, len);
    if (!rep) return -1;
    int ok = rep->type == REDIS_REPLY_STRING && rep->len == 40;
    if (ok) memcpy(r->sha[s], rep->str, 41);
    else jw_log("SCRIPT LOAD failed: %s", rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
    freeReplyObject(rep);
    return ok ? 0 : -1;
}

/* The EVALSHA argument vector of script s: "EVALSHA", its SHA1 (filled in by
 * the caller once the script is loaded), nkeys in decimal (written to nk),
 * then a. The caller frees *argv and *len. Returns the argument count. */
static int eval_argv(const jw_args *a, int nkeys, char nk[16], const char ***argv, size_t **len) {
    snprintf(nk, 16, "%d", nkeys);
    *argv = jw_malloc(sizeof(char *) * (size_t)(a->n + 3));
    *len = jw_malloc(sizeof(size_t) * (size_t)(a->n + 3));
    (*argv)[0] = "EVALSHA"; (*len)[0] = 7;
    (*argv)[1] = ""; (*len)[1] = 0;
    (*argv)[2] = nk; (*len)[2] = strlen(nk);
    for (int i = 0; i < a->n; i++) { (*argv)[i + 3] = a->v[i]; (*len)[i + 3] = a->len[i]; }
    return a->n + 3;
}

/* EVALSHA script s with nkeys keys followed by the rest of a as arguments.
 * The first call and any NOSCRIPT reply (a restarted or flushed Redis)
 * load the script and retry once. Returns the reply (error replies
 * included) or NULL when the connection broke. */
redisReply *jw_redis_eval(jw_redis *r, jw_script s, int nkeys, jw_args *a) {
    char nk[16];
    const char **argv;
    size_t *len;
    int argc = eval_argv(a, nkeys, nk, &argv, &len);
    redisReply *rep = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!jw_redis_ready(r)) break;
        if (!r->sha[s][0] && script_load(r, s) < 0) break;
        argv[1] = r->sha[s]; len[1] = 40;
        rep = raw_cmd(r, argc, argv, len);
        if (!rep) break;
        if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOSCRIPT", 8) == 0 && attempt == 0) {
            freeReplyObject(rep);
            rep = NULL;
            r->sha[s][0] = '\0';
            continue;
        }
        break;
    }
    free(argv);
    free(len);
    return rep;
}

/* jw_redis_eval in two halves, so that the caller works while Redis runs the
 * script (the worker forks its next standby child meanwhile): this half
 * writes the EVALSHA and returns without reading; jw_redis_eval_recv() with
 * the same s, nkeys and a reads its reply. Nothing else may use r in
 * between. Returns 0 once written, -1 when not connected, the script could
 * not be loaded or the write failed (then jw_redis_eval_recv() falls back to
 * jw_redis_eval, which retries as usual). */
int jw_redis_eval_send(jw_redis *r, jw_script s, int nkeys, jw_args *a) {
    r->pending = 0;
    if (!jw_redis_ready(r)) return -1;
    if (!r->sha[s][0] && script_load(r, s) < 0) return -1;
    char nk[16];
    const char **argv;
    size_t *len;
    int argc = eval_argv(a, nkeys, nk, &argv, &len);
    argv[1] = r->sha[s]; len[1] = 40;
    int rc = redisAppendCommandArgv(r->ctx, argc, argv, len), done = 0;
    free(argv);
    free(len);
    while (rc == REDIS_OK && !done) rc = redisBufferWrite(r->ctx, &done);
    if (rc != REDIS_OK) { jw_redis_drop(r, 1); return -1; }
    r->pending = 1;
    return 0;
}

/* Did Redis refuse rep's command without running it, in a way that sending it
 * again through jw_redis_eval mends (NOSCRIPT: it loads the script; on a
 * cluster MOVED, ASK, CLUSTERDOWN, TRYAGAIN: raw_cmd follows them)? */
static int eval_not_run(const jw_redis *r, const redisReply *rep) {
    if (rep->type != REDIS_REPLY_ERROR) return 0;
    if (is_error(rep, "NOSCRIPT")) return 1;
    return r->cluster && (is_error(rep, "MOVED") || is_error(rep, "ASK") || is_error(rep, "CLUSTERDOWN") ||
                          is_error(rep, "TRYAGAIN"));
}

/* The reply to jw_redis_eval_send(r, s, nkeys, a), as jw_redis_eval returns
 * it: a refusal that did not run the script is sent again the synchronous
 * way (one more round trip, rare), a failed send is retried that way too.
 * NULL when the connection broke. */
redisReply *jw_redis_eval_recv(jw_redis *r, jw_script s, int nkeys, jw_args *a) {
    if (!r->pending || !r->ctx) return jw_redis_eval(r, s, nkeys, a);
    r->pending = 0;
    void *reply = NULL;
    if (redisGetReply(r->ctx, &reply) != REDIS_OK || !reply) {
        if (reply) freeReplyObject(reply);
        jw_redis_drop(r, 1);
        return NULL;
    }
    if (!eval_not_run(r, reply)) return reply;
    if (is_error(reply, "NOSCRIPT")) r->sha[s][0] = '\0';
    freeReplyObject(reply);
    return jw_redis_eval(r, s, nkeys, a);
}

/* Durable enqueue (protocol.md 15.4): WAIT replicas timeout_ms on the
 * connection that ran the last write (WAIT counts what replicas have of this
 * connection's writes; a reconnect since then answers 0, which is honest).
 * Returns the number of replicas that acknowledged, or -1 (broken, refused). */
long long jw_redis_wait(jw_redis *r, int replicas, long long timeout_ms) {
    if (!r->ctx) return -1;
    char nrep[16], tmo[32];
    snprintf(nrep, sizeof nrep, "%d", replicas);
    snprintf(tmo, sizeof tmo, "%lld", timeout_ms);
    const char *argv[] = {"WAIT", nrep, tmo};
    size_t len[] = {4, strlen(nrep), strlen(tmo)};
    redisReply *rep = raw_cmd(r, 3, argv, len);
    long long acked = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
    if (rep && rep->type == REDIS_REPLY_ERROR) jw_log("WAIT failed: %s", rep->str);
    if (rep) freeReplyObject(rep);
    return acked;
}

/* ============================ Blocking pop ============================== */

/* BLPOP keys for at most timeout_ms, but give up early when intr_fd becomes
 * readable (a signal arrived): a BLPOP cannot be cancelled, so the
 * connection is dropped and will be reopened at once. A reply that is
 * already on its way is still read, so a popped command is not lost unless
 * it was in flight at that very moment.
 * Returns 1 with *out set (nil on timeout), 0 when interrupted, -1 when the
 * connection broke or is down. */
int jw_redis_blpop(jw_redis *r, jw_args *keys, long long timeout_ms, int intr_fd, redisReply **out) {
    *out = NULL;
    if (!jw_redis_ready(r)) return -1;
    if (timeout_ms < 10) timeout_ms = 10;
    char secs[32];
    snprintf(secs, sizeof secs, "%lld.%03lld", timeout_ms / 1000, timeout_ms % 1000);
    const char **argv = jw_malloc(sizeof(char *) * (size_t)(keys->n + 2));
    size_t *len = jw_malloc(sizeof(size_t) * (size_t)(keys->n + 2));
    argv[0] = "BLPOP"; len[0] = 5;
    for (int i = 0; i < keys->n; i++) { argv[i + 1] = keys->v[i]; len[i + 1] = keys->len[i]; }
    argv[keys->n + 1] = secs; len[keys->n + 1] = strlen(secs);
    int rc = redisAppendCommandArgv(r->ctx, keys->n + 2, argv, len);
    free(argv);
    free(len);
    int done = 0;
    while (rc == REDIS_OK && !done) rc = redisBufferWrite(r->ctx, &done);
    if (rc != REDIS_OK) { jw_redis_drop(r, 1); return -1; }
    long long deadline = jw_mono_ms() + timeout_ms + 5000;
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(r->ctx, &reply) != REDIS_OK) { jw_redis_drop(r, 1); return -1; }
        if (reply && r->cluster && ((redisReply *)reply)->type == REDIS_REPLY_ERROR) {
            /* MOVED: switch node, the caller blocks again there at once; ASK (a migrating
             * slot), CLUSTERDOWN, TRYAGAIN: retry after backoff. Nothing was popped. */
            size_t n = 0;
            const char *addr;
            redisReply *rep = reply;
            int moved = is_error(rep, "MOVED") && (addr = redirect_target(rep, &n)) && set_address(r, addr, n) == 0;
            if (!moved) jw_log("Redis Cluster: %s; retrying", rep->str);
            freeReplyObject(rep);
            jw_redis_drop(r, !moved);
            return -1;
        }
        if (reply) { *out = reply; return 1; }
        long long left = deadline - jw_mono_ms();
        if (left <= 0) { jw_redis_drop(r, 1); return -1; }
        struct pollfd pfd[2] = {{r->ctx->fd, POLLIN, 0}, {intr_fd, POLLIN, 0}};
        int n = poll(pfd, 2, (int)left);
        if (n < 0 && errno != EINTR) { jw_redis_drop(r, 1); return -1; }
        if (n > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            if (redisBufferRead(r->ctx) != REDIS_OK) { jw_redis_drop(r, 1); return -1; }
            continue;
        }
        if (n > 0 && (pfd[1].revents & POLLIN)) { jw_redis_drop(r, 0); return 0; }
    }
}

/* Did Redis accept a setup command (AUTH, SELECT)? Frees the reply. */
static int accepted_reply(void *reply) {
    redisReply *rep = reply;
    int ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (rep) freeReplyObject(rep);
    return ok;
}

/* A fresh connection to host:port with the master's AUTH and database. */
static redisContext *connect_to(const jw_redis *r, const char *host, int port) {
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK ||
        (r->password && !accepted_reply(jw_redis_auth(c, r))) ||
        (r->db && !accepted_reply(redisCommand(c, "SELECT %d", r->db)))) {
        if (c) redisFree(c);
        return NULL;
    }
    return c;
}

/* jobwire.h: a fresh connection with the master's settings. A forked child
 * must not use the master's socket, whose protocol state belongs to the
 * master. */
redisContext *jw_connect(const jw_env *env) {
    return connect_to(env->redis, env->redis->host, env->redis->port);
}

/* jobwire.h. A redirect names "host:port" (the last colon splits it). */
redisReply *jw_command_fresh(const jw_env *env, int argc, const char **argv, const size_t *len) {
    const jw_redis *r = env->redis;
    char host[256];
    snprintf(host, sizeof host, "%s", r->host);
    int port = r->port, asking = 0;
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
        redisContext *c = connect_to(r, host, port);
        if (!c) return NULL;
        redisReply *rep = NULL;
        if (asking) {
            redisReply *ok = redisCommand(c, "ASKING");
            if (ok) freeReplyObject(ok);
        }
        rep = redisCommandArgv(c, argc, argv, len);
        redisFree(c);
        size_t n = 0;
        const char *addr = NULL;
        int moved = r->cluster && is_error(rep, "MOVED"), ask = r->cluster && is_error(rep, "ASK");
        if (!(moved || ask) || !(addr = redirect_target(rep, &n))) return rep;
        const char *colon = NULL;
        for (size_t i = 0; i < n; i++) if (addr[i] == ':') colon = addr + i;
        if (!colon || (size_t)(colon - addr) >= sizeof host) return rep;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = atoi(colon + 1);
        asking = ask;
        freeReplyObject(rep);
    }
    return NULL;
}
