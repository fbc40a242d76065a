/* routing_test.c -- jw_route and jw_namespaces against
 * spec/routing-vectors.json (protocol.md 15.2): each case's queue, with the
 * table's value for it, routes to exactly its namespace, or is refused as
 * jobwire.BadRoute; each "namespaces" vector's table lists exactly its
 * namespaces, in order.
 * Usage: routing-test SPEC_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jw_routing.h"

/* One case; returns 1 when it fails (and says why). */
static int check(json_t *c) {
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *home = json_string_value(json_object_get(c, "home"));
    const char *queue = json_string_value(json_object_get(c, "queue"));
    const char *group = json_string_value(json_object_get(json_object_get(c, "routes"), queue));
    const char *want = json_string_value(json_object_get(c, "namespace"));
    char err[512] = "";
    char *got = jw_route(home, queue, group, err, sizeof err);
    int bad = want ? (!got || strcmp(got, want) != 0) : (got != NULL || !strstr(err, "jobwire.BadRoute"));
    if (bad) printf("FAIL %s: got %s (%s), want %s\n", id, got ? got : "error", err, want ? want : "jobwire.BadRoute");
    free(got);
    return bad;
}

/* One "namespaces" vector; returns 1 when it fails (and says why). */
static int check_namespaces(json_t *c) {
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *home = json_string_value(json_object_get(c, "home"));
    json_t *routes = json_object_get(c, "routes");
    json_t *want = json_object_get(c, "namespaces");
    const char **values = malloc(sizeof(char *) * (json_object_size(routes) + 1));
    size_t n = 0;
    const char *field;
    json_t *value;
    json_object_foreach(routes, field, value) values[n++] = json_string_value(value);
    size_t count;
    char **got = jw_namespaces(home, values, n, &count);
    int bad = count != json_array_size(want);
    for (size_t i = 0; !bad && i < count; i++)
        bad = strcmp(got[i], json_string_value(json_array_get(want, i))) != 0;
    if (bad) {
        printf("FAIL %s: got", id);
        for (size_t i = 0; i < count; i++) printf(" %s", got[i]);
        printf("\n");
    }
    jw_namespaces_free(got, count);
    free(values);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: routing-test SPEC_DIR\n"); return 2; }
    char path[4096];
    snprintf(path, sizeof path, "%s/routing-vectors.json", argv[1]);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) { printf("FAIL cannot read %s: %s\n", path, jerr.text); return 1; }
    size_t i;
    json_t *c;
    int failures = 0, n = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) { failures += check(c); n++; }
    int listed = 0;
    json_array_foreach(json_object_get(doc, "namespaces"), i, c) { failures += check_namespaces(c); listed++; }
    json_decref(doc);
    printf("routing vectors: %d cases, %d namespace lists, %d failures\n", n, listed, failures);
    return failures || n < 10 || listed < 4 ? 1 : 0;
}
