/* jw_keys.c -- build key names from the templates of spec/keys.json, their one
 * source (read at start-up by jw_keys_load), and check queue names and the
 * --queues list (key-layout.md "Queue names", protocol.md 7.2).
 *
 * Every key the C worker and enqueue tool touch comes out of jw_key(). */
#include "jw_keys.h"
#include "jw_util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The template names of keys.json, by enum value (names, not templates). */
static const char *const labels[JW_K__COUNT] = {
    [JW_K_QUEUES] = "queues",
    [JW_K_QUEUE] = "queue",
    [JW_K_WORKERS] = "workers",
    [JW_K_WORKER_RECORD] = "worker_record",
    [JW_K_WORKER_STARTED] = "worker_started",
    [JW_K_HEARTBEATS] = "heartbeats",
    [JW_K_STAT_PROCESSED] = "stat_processed",
    [JW_K_STAT_FAILED] = "stat_failed",
    [JW_K_STAT_PROCESSED_WORKER] = "stat_processed_worker",
    [JW_K_STAT_FAILED_WORKER] = "stat_failed_worker",
    [JW_K_FAILED] = "failed",
    [JW_K_PAUSE_ALL] = "pause_all",
    [JW_K_META] = "meta",
    [JW_K_LEASES] = "leases",
    [JW_K_INFLIGHT] = "inflight",
    [JW_K_DEATHS] = "deaths",
    [JW_K_WORKER_INFO] = "worker_info",
    [JW_K_CONTROL] = "control",
    [JW_K_WAKE] = "wake",
    [JW_K_WAKE_NEW_QUEUE] = "wake_new_queue",
    [JW_K_MINUTES] = "minutes",
    [JW_K_CONFORMANCE_ECHO] = "conformance_echo",
    [JW_K_DELAYED_SCHEDULE] = "delayed_schedule",
    [JW_K_DELAYED_BUCKET] = "delayed_bucket",
    [JW_K_DELAYED_TIMESTAMPS] = "delayed_timestamps",
    [JW_K_RETRY_SET] = "retry_set",
    [JW_K_SCHEDULES] = "schedules",
    [JW_K_SCHEDULE] = "schedule",
    [JW_K_WAKE_SCHEDULE] = "wake_schedule",
    [JW_K_ROUTES] = "routes",
};

static char *templates[JW_K__COUNT]; /* filled by jw_keys_load */

/* Read spec_dir/keys.json; every name above must be there. Templates this
 * worker does not know are allowed (a newer minor version may add keys it
 * never touches); the unit test's vectors make the repository keep up.
 * Returns 0, or -1 with the reason in err. */
int jw_keys_load(const char *spec_dir, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/keys.json", spec_dir);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    json_t *t = doc ? json_object_get(doc, "templates") : NULL;
    if (!json_is_object(t)) {
        snprintf(err, errlen, "cannot read key templates from %s: %s", path, doc ? "no \"templates\"" : jerr.text);
        json_decref(doc);
        return -1;
    }
    int rc = 0;
    for (int k = 0; k < JW_K__COUNT && rc == 0; k++) {
        const char *v = json_string_value(json_object_get(t, labels[k]));
        if (!v) { snprintf(err, errlen, "%s lacks template \"%s\"", path, labels[k]); rc = -1; break; }
        free(templates[k]);
        templates[k] = jw_strdup(v);
    }
    json_decref(doc);
    return rc;
}

/* Free the loaded templates (valgrind and LeakSanitizer see a clean exit). */
void jw_keys_free(void) {
    for (int k = 0; k < JW_K__COUNT; k++) { free(templates[k]); templates[k] = NULL; }
}

/* Expand a template: "{ns}" becomes ns, any other "{...}" placeholder (each
 * template has at most one) becomes arg. Returns a malloc'd string the
 * caller frees. */
char *jw_key(const char *ns, jw_key_name name, const char *arg) {
    jw_buf b = {0};
    const char *t = templates[name];
    if (!t) { fprintf(stderr, "jw_key: key templates not loaded (jw_keys_load)\n"); abort(); }
    while (*t) {
        if (*t == '{') {
            const char *end = strchr(t, '}');
            if (end - t == 3 && memcmp(t, "{ns}", 4) == 0) jw_buf_adds(&b, ns);
            else jw_buf_adds(&b, arg ? arg : "");
            t = end + 1;
        } else {
            const char *brace = strchr(t, '{');
            size_t n = brace ? (size_t)(brace - t) : strlen(t);
            jw_buf_add(&b, t, n);
            t += n;
        }
    }
    return jw_buf_steal(&b, NULL);
}

/* The raw template, for the key builder's self-test. */
const char *jw_key_template(jw_key_name name) { return templates[name]; }

/* The template's name in key-layout.md, for the key builder's self-test. */
const char *jw_key_label(jw_key_name name) { return labels[name]; }

/* Decode one UTF-8 sequence at p (n bytes left) into *cp; returns its length,
 * or 0 when the bytes are not well-formed UTF-8 (overlong, surrogate, > U+10FFFF). */
static size_t utf8_next(const unsigned char *p, size_t n, unsigned long *cp) {
    static const unsigned long min[] = {0, 0, 0x80, 0x800, 0x10000};
    size_t len = p[0] < 0x80 ? 1 : (p[0] >> 5) == 6 ? 2 : (p[0] >> 4) == 14 ? 3 : (p[0] >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    unsigned long c = len == 1 ? p[0] : (unsigned long)(p[0] & (0x7F >> len));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

/* The code points key-layout.md forbids in a queue name. */
static int forbidden(unsigned long c) {
    return c == ':' || c == '*' || c == ',' || c <= 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000 || c == 0xFEFF;
}

/* key-layout.md: a queue name is 1 to 255 bytes of well-formed UTF-8 without
 * the forbidden code points (':', '*', ',', whitespace, C0, DEL, C1, U+FEFF). */
int jw_queue_name_valid(const char *q) {
    size_t n = strlen(q);
    if (n == 0 || n > 255) return 0;
    const unsigned char *p = (const unsigned char *)q;
    while (n > 0) {
        unsigned long c;
        size_t len = utf8_next(p, n, &c);
        if (len == 0 || forbidden(c)) return 0;
        p += len;
        n -= len;
    }
    return 1;
}

/* Split a --queues value (protocol.md 7.2): names and at most one "*",
 * comma-separated, nothing trimmed, no empty entry, no repeat. Returns the
 * number of entries with a malloc'd array of malloc'd names in *out, or -1
 * with the reason in err. */
int jw_queues_parse(const char *text, char ***out, char *err, size_t errlen) {
    size_t cap = 1;
    for (const char *p = text; *p; p++) cap += *p == ',';
    char **names = jw_malloc(sizeof(char *) * cap);
    int n = 0;
    const char *start = text;
    for (;;) {
        const char *comma = strchr(start, ',');
        size_t len = comma ? (size_t)(comma - start) : strlen(start);
        char *entry = jw_malloc(len + 1);
        memcpy(entry, start, len);
        entry[len] = '\0';
        const char *why = NULL;
        if (strcmp(entry, "*") != 0 && !jw_queue_name_valid(entry)) why = "invalid queue name";
        for (int i = 0; i < n && !why; i++) if (strcmp(names[i], entry) == 0) why = "repeated entry";
        if (why) {
            snprintf(err, errlen, "%s \"%s\" in --queues \"%s\": 1-255 bytes of UTF-8 without ':', '*', ',', "
                     "whitespace or control characters, at most one *", why, entry, text);
            free(entry);
            jw_queues_free(names, n);
            return -1;
        }
        names[n++] = entry;
        if (!comma) break;
        start = comma + 1;
    }
    *out = names;
    return n;
}

/* Free a list from jw_queues_parse or jw_queues_expand. */
void jw_queues_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b); /* byte order = code point order in UTF-8 */
}

/* The queues to reserve from: "*" replaced, at its place, by every valid
 * known name not listed explicitly, in code point order. Returns the count
 * and a malloc'd list in *out. */
int jw_queues_expand(char **configured, int n, char **known, int nknown, char ***out) {
    char **rest = jw_malloc(sizeof(char *) * ((size_t)nknown + 1));
    int nrest = 0;
    for (int i = 0; i < nknown; i++) {
        int listed = 0;
        for (int j = 0; j < n && !listed; j++) listed = strcmp(configured[j], known[i]) == 0;
        if (!listed && jw_queue_name_valid(known[i])) rest[nrest++] = known[i];
    }
    qsort(rest, (size_t)nrest, sizeof(char *), cmp_str);
    char **list = jw_malloc(sizeof(char *) * ((size_t)n + (size_t)nrest + 1));
    int m = 0;
    for (int j = 0; j < n; j++) {
        if (strcmp(configured[j], "*") != 0) { list[m++] = jw_strdup(configured[j]); continue; }
        for (int i = 0; i < nrest; i++) list[m++] = jw_strdup(rest[i]);
    }
    free(rest);
    *out = list;
    return m;
}
