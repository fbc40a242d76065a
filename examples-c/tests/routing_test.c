/* routing_test.c -- jw_route against spec/routing-vectors.json (protocol.md
 * 15.2): each case's queue, with the table's value for it, routes to exactly
 * its namespace, or is refused as jobwire.BadRoute.
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
    json_decref(doc);
    printf("routing vectors: %d cases, %d failures\n", n, failures);
    return failures || n < 10 ? 1 : 0;
}
