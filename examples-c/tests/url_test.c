/* url_test.c -- the Redis URL parser (jw_redis_init) against
 * conformance/vectors/v1/redis-urls.json (protocol.md 7.2): each valid case's
 * host, port, db, user, password and cluster flag, and a refusal for the rest.
 * Usage: url-test SPEC_DIR VECTORS_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jw_redis.h"

/* NULL-safe string equality (a JSON null is NULL). */
static int same(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* One case; returns 1 when it fails (and says why). */
static int check(json_t *c, const char *spec_dir) {
    const char *id = json_string_value(json_object_get(c, "id"));
    const char *url = json_string_value(json_object_get(c, "url"));
    int valid = json_is_true(json_object_get(c, "valid"));
    jw_redis r;
    char err[512] = "";
    memset(&r, 0, sizeof r);
    int rc = jw_redis_init(&r, url, spec_dir, err, sizeof err);
    int bad;
    if (!valid) {
        bad = rc == 0;
        if (bad) printf("FAIL %s: %s was accepted\n", id, url);
    } else {
        bad = rc != 0 || !same(r.host, json_string_value(json_object_get(c, "host"))) ||
              r.port != json_integer_value(json_object_get(c, "port")) ||
              r.db != json_integer_value(json_object_get(c, "db")) ||
              !same(r.username, json_string_value(json_object_get(c, "username"))) ||
              !same(r.password, json_string_value(json_object_get(c, "password"))) ||
              r.cluster != json_is_true(json_object_get(c, "cluster"));
        if (bad)
            printf("FAIL %s: %s gives rc %d (%s) host %s port %d db %d user %s password %s cluster %d\n", id, url, rc,
                   err, r.host ? r.host : "-", r.port, r.db, r.username ? r.username : "-",
                   r.password ? r.password : "-", r.cluster);
    }
    jw_redis_close(&r);
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: url-test SPEC_DIR VECTORS_DIR\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/redis-urls.json", argv[2]);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) {
        printf("FAIL cannot read %s: %s\n", path, jerr.text);
        return 1;
    }
    size_t i;
    json_t *c;
    int failures = 0, n = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        failures += check(c, argv[1]);
        n++;
    }
    json_decref(doc);
    printf("redis-url vectors: %d cases, %d failures\n", n, failures);
    return failures ? 1 : 0;
}
