/* keys_test.c -- check jw_keys.c against spec/key-layout.md: every row of
 * "Key templates as data" must be in the table with the same template, and
 * a few keys must expand as in protocol.md section 8's examples. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    printf("%s: %d templates checked, %d failures\n", failures ? "FAIL" : "ok", checked, failures);
    return failures ? 1 : 0;
}
