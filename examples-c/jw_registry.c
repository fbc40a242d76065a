/* jw_registry.c -- which handler runs for which job class (jobwire.h).
 *
 * A growable array filled by jw_register() before the worker starts; the
 * forked children inherit it. Class names map only to this table, never to
 * a symbol lookup (protocol.md 7.4). A linear search is fine: a worker has
 * a handful of classes and the lookup is nothing next to a fork. */
#include "jobwire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jw_util.h"

static struct {
    char **klass;       /* registered class names, owned */
    jw_handler *fn;     /* fn[i] runs klass[i] */
    size_t n, cap;
} R;

/* Index of klass in the table, or -1. */
static long find(const char *klass) {
    for (size_t i = 0; i < R.n; i++)
        if (strcmp(R.klass[i], klass) == 0) return (long)i;
    return -1;
}

/* jobwire.h: register or replace a handler. */
int jw_register(const char *klass, jw_handler fn) {
    if (!klass || !*klass || !fn) { errno = EINVAL; return -1; }
    long i = find(klass);
    if (i >= 0) { R.fn[i] = fn; return 0; }
    if (R.n == R.cap) {
        R.cap = R.cap ? 2 * R.cap : 16;
        R.klass = jw_realloc(R.klass, R.cap * sizeof *R.klass);
        R.fn = jw_realloc(R.fn, R.cap * sizeof *R.fn);
    }
    R.klass[R.n] = jw_strdup(klass);
    R.fn[R.n++] = fn;
    return 0;
}

/* jobwire.h: the handler for klass, or NULL. */
jw_handler jw_handler_find(const char *klass) {
    long i = klass ? find(klass) : -1;
    return i >= 0 ? R.fn[i] : NULL;
}

/* jobwire.h: forget every registration and free the table. */
void jw_registry_clear(void) {
    for (size_t i = 0; i < R.n; i++) free(R.klass[i]);
    free(R.klass);
    free(R.fn);
    memset(&R, 0, sizeof R);
}
