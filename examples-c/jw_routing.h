/* jw_routing.h -- namespace groups (protocol.md 15.2): the namespace a
 * producer puts a queue's jobs in, from the routing table <home>:jobwire:routes. */
#ifndef JW_ROUTING_H
#define JW_ROUTING_H

#include <stddef.h>

#include "jw_redis.h"

int jw_group_valid(const char *group);
char *jw_group_namespace(const char *home, const char *group);
char *jw_route(const char *home, const char *queue, const char *group, char *err, size_t errlen);
char *jw_route_lookup(jw_redis *r, const char *home, const char *queue, char *err, size_t errlen);
char **jw_namespaces(const char *home, const char *const *values, size_t n_values, size_t *count);
void jw_namespaces_free(char **list, size_t count);
void jw_warn_routed(jw_redis *r, const char *ns, char **queues, int nqueues);

#endif
