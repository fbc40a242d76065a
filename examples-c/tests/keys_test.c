/* keys_test.c -- check jw_keys.c against spec/key-layout.md: every row of
 * "Key templates as data" must be in the table with the same template, and
 * a few keys must expand as in protocol.md section 8's examples. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jw_keys.h"
#include "jw_util.h"

static int failures;

/* Compare one expansion with the expected bytes. */
static void expect(jw_key_name k, const char *arg, const char *want) {
    char *got = jw_key("resque", k, arg);
    if (strcmp(got, want) != 0) {
        printf("FAIL %s: got %s want %s\n", jw_key_label(k), got, want);
        failures++;
    }
    free(got);
}

/* Check every case of conformance/vectors/v1/keys.json, when present.
 * Returns the number of cases checked. */
static int check_vectors(const char *path) {
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) { printf("note: no key vectors at %s (%s)\n", path, jerr.text); return 0; }
    size_t i;
    json_t *c;
    int n = 0;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        const char *tmpl = json_string_value(json_object_get(c, "template"));
        const char *ns = json_string_value(json_object_get(c, "ns"));
        const char *want = json_string_value(json_object_get(c, "key"));
        const char *arg = NULL;
        const char *args[] = {"queue", "worker_id", "day"};
        for (size_t k = 0; k < 3 && !arg; k++) arg = json_string_value(json_object_get(c, args[k]));
        int found = 0;
        for (int k = 0; k < JW_K__COUNT; k++) {
            if (!tmpl || strcmp(jw_key_label(k), tmpl) != 0) continue;
            found = 1;
            char *got = jw_key(ns, k, arg);
            if (!want || strcmp(got, want) != 0) {
                printf("FAIL vector %s: got %s want %s\n",
                       json_string_value(json_object_get(c, "id")), got, want);
                failures++;
            }
            free(got);
        }
        if (!found) { printf("FAIL vector template %s unknown\n", tmpl); failures++; }
        n++;
    }
    json_decref(doc);
    return n;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "../spec/key-layout.md";
    char *doc = jw_read_file(path, NULL);
    if (!doc) { perror(path); return 1; }
    const char *rows = strstr(doc, "## Key templates as data");
    if (!rows) { printf("FAIL no templates table in %s\n", path); return 1; }
    int checked = 0;
    for (int k = 0; k < JW_K__COUNT; k++) {
        char row[256];
        snprintf(row, sizeof row, "| %s | `%s` |", jw_key_label(k), jw_key_template(k));
        if (!strstr(rows, row)) { printf("FAIL row not in key-layout.md: %s\n", row); failures++; }
        checked++;
    }
    /* Every table row must be known to us too. */
    int table_rows = 0;
    for (const char *p = strstr(rows, "| --- |"); p && (p = strstr(p + 1, "\n| ")); ) table_rows++;
    if (table_rows != JW_K__COUNT) {
        printf("FAIL key-layout.md has %d templates, jw_keys.c %d\n", table_rows, JW_K__COUNT);
        failures++;
    }
    const char *id = "web1:4242:high,low";
    expect(JW_K_WORKER_RECORD, id, "resque:worker:web1:4242:high,low");
    expect(JW_K_INFLIGHT, id, "resque:jobwire:inflight:web1:4242:high,low");
    expect(JW_K_STAT_PROCESSED_WORKER, id, "resque:stat:processed:web1:4242:high,low");
    expect(JW_K_WORKER_STARTED, id, "resque:worker:web1:4242:high,low:started");
    expect(JW_K_MINUTES, "2026-11-29", "resque:jobwire:minutes:2026-11-29");
    expect(JW_K_QUEUE, "high", "resque:queue:high");
    expect(JW_K_WAKE, "high", "resque:jobwire:wake:high");
    expect(JW_K_WAKE_NEW_QUEUE, NULL, "resque:jobwire:wake-new-queue");
    expect(JW_K_PAUSE_ALL, NULL, "resque:pause-all-workers");
    free(doc);
    int vectors = check_vectors(argc > 2 ? argv[2] : "../conformance/vectors/v1/keys.json");
    printf("%s: %d templates and %d vectors checked, %d failures\n", failures ? "FAIL" : "ok",
           checked, vectors, failures);
    return failures ? 1 : 0;
}
