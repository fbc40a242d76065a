/* schedule_test.c -- check jw_schedule.c and the 1.1 key templates against
 * the shared vectors: conformance/vectors/v1/retry-delays.json (FNV-1a-32,
 * outcome and delay of every case) and keys-1.1.json (every 1.1 key).
 * Usage: schedule-test RETRY_DELAYS_JSON KEYS_1_1_JSON */
#include "jw_keys.h"
#include "jw_recurring.h"
#include "jw_schedule.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static int failures;

/* Every case of retry-delays.json. */
static int check_delays(const char *path) {
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) { printf("FAIL cannot read %s: %s\n", path, jerr.text); return -1; }
    json_t *cases = json_object_get(doc, "cases");
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *id = json_string_value(json_object_get(c, "id"));
        const char *job = json_string_value(json_object_get(c, "job_id"));
        int attempt = (int)json_integer_value(json_object_get(c, "attempt"));
        char err[128], key[256];
        jw_policy p;
        if (jw_policy_parse(json_object_get(c, "policy"), &p, err, sizeof err) < 0) p = JW_POLICY_NEVER;
        snprintf(key, sizeof key, "%s:%d", job, attempt);
        long long h = jw_fnv1a32((const unsigned char *)key, strlen(key));
        if (h != json_integer_value(json_object_get(c, "fnv1a32"))) {
            printf("FAIL %s: fnv1a32 %lld\n", id, h);
            failures++;
        }
        const char *want = json_string_value(json_object_get(c, "outcome"));
        const char *got = attempt < p.max_attempts ? "retry" : "fail";
        if (strcmp(want, got) != 0) {
            printf("FAIL %s: outcome %s, want %s\n", id, got, want);
            failures++;
        } else if (strcmp(got, "retry") == 0) {
            long long d = jw_retry_delay_ms(&p, job, attempt);
            if (d != json_integer_value(json_object_get(c, "delay_ms"))) {
                printf("FAIL %s: delay %lld, want %lld\n", id, d,
                       (long long)json_integer_value(json_object_get(c, "delay_ms")));
                failures++;
            }
        }
    }
    printf("retry-delays.json: %zu cases\n", json_array_size(cases));
    json_decref(doc);
    return 0;
}

/* Every case of keys-1.1.json, by template name. */
static int check_keys(const char *path) {
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) { printf("FAIL cannot read %s: %s\n", path, jerr.text); return -1; }
    size_t i, checked = 0;
    json_t *c;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        const char *tmpl = json_string_value(json_object_get(c, "template"));
        const char *arg = NULL;
        const char *params[] = {"ts", "item", "name"};
        for (size_t p = 0; p < 3 && !arg; p++) arg = json_string_value(json_object_get(c, params[p]));
        for (int k = 0; k < JW_K__COUNT; k++) {
            if (strcmp(jw_key_label(k), tmpl) != 0) continue;
            char *got = jw_key(json_string_value(json_object_get(c, "ns")), k, arg);
            if (strcmp(got, json_string_value(json_object_get(c, "key"))) != 0) {
                printf("FAIL %s: %s\n", json_string_value(json_object_get(c, "id")), got);
                failures++;
            }
            free(got);
            checked++;
        }
    }
    if (checked != json_array_size(json_object_get(doc, "cases"))) {
        printf("FAIL keys-1.1.json: %zu of %zu cases have a template here\n", checked,
               json_array_size(json_object_get(doc, "cases")));
        failures++;
    }
    printf("keys-1.1.json: %zu cases\n", checked);
    json_decref(doc);
    return 0;
}

/* A vector's integer member, -1 for null. */
static long long num(const json_t *c, const char *k) {
    const json_t *v = json_object_get(c, k);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* One case of schedule-next.json; 0 when it agrees. */
static int schedule_case(const json_t *c) {
    const char *type = json_string_value(json_object_get(c, "type"));
    const json_t *def = json_object_get(c, "definition");
    char err[300];
    int valid = jw_definition_check(def, err, sizeof err) == 0;
    if (strcmp(type, "invalid") == 0) return valid ? -1 : 0;
    if (!valid) { printf("  %s\n", err); return -1; }
    if (strcmp(type, "next") == 0) return jw_next_fire_ms(def, num(c, "after_ms")) == num(c, "next_ms") ? 0 : -1;
    jw_decision d = jw_decide(def, num(c, "next_ms"), num(c, "now_ms"));
    return d.fire_ms == num(c, "fire_ms") && d.missed == num(c, "missed") &&
           d.last_missed_ms == num(c, "last_missed_ms") && d.next_ms == num(c, "new_next_ms") ? 0 : -1;
}

/* Every case of schedule-next.json, and its fire_job_id example. */
static int check_schedules(const char *path) {
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    if (!doc) { printf("FAIL cannot read %s: %s\n", path, jerr.text); return -1; }
    const json_t *fid = json_object_get(doc, "fire_job_id");
    char id[33];
    jw_fire_job_id(json_string_value(json_object_get(fid, "name")), num(fid, "fire_ms"), id);
    if (strcmp(id, json_string_value(json_object_get(fid, "id"))) != 0) {
        printf("FAIL fire_job_id: %s\n", id);
        failures++;
    }
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        if (schedule_case(c) < 0) {
            printf("FAIL %s\n", json_string_value(json_object_get(c, "id")));
            failures++;
        }
    }
    printf("schedule-next.json: %zu cases\n", json_array_size(json_object_get(doc, "cases")));
    json_decref(doc);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: schedule-test SPEC_DIR VECTORS_DIR\n");
        return 2;
    }
    char err[512], a[4096], b[4096], c[4096];
    if (jw_keys_load(argv[1], err, sizeof err) < 0) { printf("FAIL %s\n", err); return 1; }
    snprintf(a, sizeof a, "%s/retry-delays.json", argv[2]);
    snprintf(b, sizeof b, "%s/keys-1.1.json", argv[2]);
    snprintf(c, sizeof c, "%s/schedule-next.json", argv[2]);
    int bad = check_delays(a) < 0 || check_keys(b) < 0 || check_schedules(c) < 0;
    jw_keys_free();
    if (bad) return 1;
    printf(failures ? "%d FAILED\n" : "all passed\n", failures);
    return failures ? 1 : 0;
}
