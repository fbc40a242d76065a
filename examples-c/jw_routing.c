/* jw_routing.c -- see jw_routing.h. spec/routing-vectors.json pins jw_route
 * (tests/routing_test.c runs them). */
#define _GNU_SOURCE
#include "jw_routing.h"
#include "jw_keys.h"
#include "jw_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GROUP_MAX 64

/* A group name: 1 to 64 bytes of A-Z a-z 0-9 _ . - (ASCII only). */
int jw_group_valid(const char *group) {
    size_t n = strlen(group);
    if (n == 0 || n > GROUP_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = group[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok) return 0;
    }
    return 1;
}

/* "{" + home without its braces + ":" + group + "}": its own hash tag. */
char *jw_group_namespace(const char *home, const char *group) {
    jw_buf b = {0};
    jw_buf_adds(&b, "{");
    for (const char *p = home; *p; p++)
        if (*p != '{' && *p != '}') jw_buf_add(&b, p, 1);
    jw_buf_adds(&b, ":");
    jw_buf_adds(&b, group);
    jw_buf_adds(&b, "}");
    size_t len;
    return jw_buf_steal(&b, &len);
}

/* The namespace of queue's jobs, given its route `group` (the table's value,
 * NULL when the queue has none). NULL with err set for an invalid group
 * (jobwire.BadRoute: the caller pushes nothing). */
char *jw_route(const char *home, const char *queue, const char *group, char *err, size_t errlen) {
    if (!group || !*group) return jw_strdup(home);
    if (!jw_group_valid(group)) {
        snprintf(err, errlen, "jobwire.BadRoute: the routing table of %s maps queue \"%s\" to \"%s\", which is no "
                 "group name (1-64 of A-Z a-z 0-9 _ . -): nothing was enqueued", home, queue, group);
        return NULL;
    }
    return jw_group_namespace(home, group);
}

/* HGET <home>:jobwire:routes <queue> and route it. NULL with err on a bad
 * route or when Redis cannot be reached. */
char *jw_route_lookup(jw_redis *r, const char *home, const char *queue, char *err, size_t errlen) {
    jw_args a = {0};
    char *key = jw_key(home, JW_K_ROUTES, NULL);
    jw_args_add(&a, "HGET");
    jw_args_take(&a, key, strlen(key));
    jw_args_add(&a, queue);
    redisReply *rep = NULL;
    for (int attempt = 0; attempt < 6 && !rep; attempt++) { /* a one-shot tool: brief retries */
        rep = jw_redis_cmd(r, &a);
        if (!rep) usleep((useconds_t)(jw_redis_wait_hint(r) + 1) * 1000);
    }
    jw_args_free(&a);
    char *ns = NULL;
    if (!rep) snprintf(err, errlen, "cannot read the routing table: Redis unreachable");
    else if (rep->type == REDIS_REPLY_ERROR) snprintf(err, errlen, "reading the routing table: %s", rep->str);
    else ns = jw_route(home, queue, rep->type == REDIS_REPLY_STRING ? rep->str : NULL, err, errlen);
    freeReplyObject(rep);
    return ns;
}

/* qsort order of group names: their bytes (strcmp compares as unsigned char). */
static int by_bytes(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every namespace of a home, as tools show them (protocol.md 15.2): the home
 * first, then the group namespace of each distinct valid value of the routing
 * table (`values`, its n_values values) in byte order; invalid values are left
 * out. Returns a list of *count strings; free it with jw_namespaces_free. */
char **jw_namespaces(const char *home, const char *const *values, size_t n_values, size_t *count) {
    const char **groups = jw_malloc(sizeof(char *) * (n_values ? n_values : 1));
    size_t n = 0;
    for (size_t i = 0; i < n_values; i++)
        if (jw_group_valid(values[i])) groups[n++] = values[i];
    qsort(groups, n, sizeof(char *), by_bytes);
    char **out = jw_malloc(sizeof(char *) * (n + 1));
    size_t k = 0;
    out[k++] = jw_strdup(home);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(groups[i], groups[i - 1]) != 0) out[k++] = jw_group_namespace(home, groups[i]);
    free(groups);
    *count = k;
    return out;
}

void jw_namespaces_free(char **list, size_t count) {
    for (size_t i = 0; i < count; i++) free(list[i]);
    free(list);
}

/* protocol.md 15.2 ("Workers are not routed"): at start-up, a warning for
 * each configured queue (not "*") that the routing table of our namespace
 * sends to another namespace; we still serve what is left in ours. One try,
 * best effort: an unreadable table is no reason to stop. */
void jw_warn_routed(jw_redis *r, const char *ns, char **queues, int nqueues) {
    /* HMGET of the named queues: protocol.md 8.9's user may run it (HGETALL is for tools). */
    jw_args a = {0};
    char *key = jw_key(ns, JW_K_ROUTES, NULL);
    jw_args_add(&a, "HMGET");
    jw_args_take(&a, key, strlen(key));
    int named = 0;
    for (int i = 0; i < nqueues; i++)
        if (strcmp(queues[i], "*") != 0) {
            jw_args_add(&a, queues[i]);
            named++;
        }
    redisReply *rep = named ? jw_redis_cmd(r, &a) : NULL;
    jw_args_free(&a);
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == (size_t)named;
    for (int i = 0, j = 0; ok && i < nqueues; i++) {
        if (strcmp(queues[i], "*") == 0) continue;
        const redisReply *v = rep->element[j++];
        char err[512] = "";
        char *where = jw_route(ns, queues[i], v->type == REDIS_REPLY_STRING ? v->str : NULL, err, sizeof err);
        char *rkey = jw_key(ns, JW_K_ROUTES, NULL);
        if (!where)
            jw_log("queue %s: %s", queues[i], err);
        else if (strcmp(where, ns) != 0)
            jw_log("queue %s is routed to namespace %s by %s: new jobs for it go there, and this worker "
                   "serves %s only (start a worker with --namespace '%s')", queues[i], where, rkey, ns, where);
        free(rkey);
        free(where);
    }
    if (rep) freeReplyObject(rep);
}
