/* keys_test.c -- the C worker against the shared vectors that need no Redis:
 * spec/keys.json loads and conformance/vectors/v1/keys.json expands exactly;
 * queue-names.json (the name rule, the --queues grammar, the expansion of *);
 * schemas/job.json (every job-schema verdict, through jw_job_parse).
 * Usage: keys-test SPEC_DIR VECTORS_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jw_job.h"
#include "jw_keys.h"
#include "jw_util.h"

static int failures;

/* Report one failed case. */
static void fail(const char *id, const char *what) {
    printf("FAIL %s: %s\n", id, what);
    failures++;
}

static json_t *load(const char *dir, const char *name) {
    char path[4096];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_t *doc = json_load_file(path, JSON_ALLOW_NUL, &jerr);
    if (!doc) { printf("FAIL cannot read %s: %s\n", path, jerr.text); exit(1); }
    return doc;
}

/* keys.json: each case's template, filled, gives exactly its key. */
static int check_keys(const char *vectors) {
    json_t *doc = load(vectors, "keys.json");
    size_t i;
    json_t *c;
    int n = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *tmpl = json_string_value(json_object_get(c, "template"));
        const char *want = json_string_value(json_object_get(c, "key"));
        const char *arg = NULL;
        const char *args[] = {"queue", "worker_id", "day"};
        for (size_t k = 0; k < 3 && !arg; k++) arg = json_string_value(json_object_get(c, args[k]));
        int found = 0;
        for (int k = 0; k < JW_K__COUNT; k++) {
            if (!tmpl || strcmp(jw_key_label(k), tmpl) != 0) continue;
            found = 1;
            char *got = jw_key(json_string_value(json_object_get(c, "ns")), k, arg);
            if (!want || strcmp(got, want) != 0) fail(id, got);
            free(got);
        }
        if (!found) fail(id, "template unknown to jw_keys.c");
        n++;
    }
    json_decref(doc);
    return n;
}

/* Copy a JSON array of strings into a malloc'd char* array (the strings stay in doc). */
static int strings(json_t *arr, char ***out) {
    size_t i;
    json_t *v;
    *out = jw_malloc(sizeof(char *) * (json_array_size(arr) + 1));
    json_array_foreach(arr, i, v) (*out)[i] = (char *)json_string_value(v);
    return (int)json_array_size(arr);
}

/* One --queues case: parse, compare, expand against "known". */
static void check_queues_case(const char *id, json_t *c) {
    char err[512], **parsed = NULL;
    json_t *want = json_object_get(c, "parsed");
    int n = jw_queues_parse(json_string_value(json_object_get(c, "queues")), &parsed, err, sizeof err);
    if (json_is_null(want)) {
        if (n >= 0) { fail(id, "accepted a --queues value the grammar rejects"); jw_queues_free(parsed, n); }
        return;
    }
    if (n < 0) { fail(id, err); return; }
    int ok = (size_t)n == json_array_size(want);
    for (int i = 0; ok && i < n; i++) ok = strcmp(parsed[i], json_string_value(json_array_get(want, (size_t)i))) == 0;
    if (!ok) fail(id, "parsed list differs");
    json_t *known = json_object_get(c, "known");
    if (ok && known) {
        char **k, **out;
        int nk = strings(known, &k);
        int m = jw_queues_expand(parsed, n, k, nk, &out);
        json_t *exp = json_object_get(c, "expanded");
        int same = (size_t)m == json_array_size(exp);
        for (int i = 0; same && i < m; i++) same = strcmp(out[i], json_string_value(json_array_get(exp, (size_t)i))) == 0;
        if (!same) fail(id, "expansion of * differs");
        jw_queues_free(out, m);
        free(k);
    }
    jw_queues_free(parsed, n);
}

/* queue-names.json: names alone, and --queues values. */
static int check_queue_names(const char *vectors) {
    json_t *doc = load(vectors, "queue-names.json");
    size_t i;
    json_t *c;
    int n = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        json_t *name = json_object_get(c, "name");
        if (name) {
            /* names with NUL cannot reach a C string check; the worker never sees them either */
            if (json_string_length(name) != strlen(json_string_value(name))) { n++; continue; }
            if (jw_queue_name_valid(json_string_value(name)) != json_is_true(json_object_get(c, "valid")))
                fail(id, "queue-name verdict differs");
        } else {
            check_queues_case(id, c);
        }
        n++;
    }
    json_decref(doc);
    return n;
}

/* schemas/job.json: jw_job_parse agrees with each verdict. */
static int check_job_schema(const char *vectors) {
    json_t *doc = load(vectors, "schemas/job.json");
    size_t i, j;
    json_t *group, *t;
    int n = 0;
    json_array_foreach(doc, i, group) {
        json_array_foreach(json_object_get(group, "tests"), j, t) {
            char *raw = json_dumps(json_object_get(t, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
            char err[512];
            int not_json;
            json_t *job = jw_job_parse(raw, strlen(raw), &not_json, err, sizeof err);
            if ((job != NULL) != json_is_true(json_object_get(t, "valid")))
                fail(json_string_value(json_object_get(t, "description")), job ? "accepted" : err);
            json_decref(job);
            free(raw);
            n++;
        }
    }
    json_decref(doc);
    return n;
}

int main(int argc, char **argv) {
    const char *spec = argc > 1 ? argv[1] : "../spec";
    const char *vectors = argc > 2 ? argv[2] : "../conformance/vectors/v1";
    char err[512];
    if (jw_keys_load(spec, err, sizeof err) < 0) { printf("FAIL %s\n", err); return 1; }
    int keys = check_keys(vectors);
    int names = check_queue_names(vectors);
    int schema = check_job_schema(vectors);
    jw_keys_free();
    printf("%s: %d key, %d queue-name and %d job-schema vectors checked, %d failures\n",
           failures ? "FAIL" : "ok", keys, names, schema, failures);
    return failures ? 1 : 0;
}
