/* jw_keys.c -- build key names from the templates of spec/key-layout.md.
 *
 * The table below is key-layout.md's "Key templates as data" copied row for
 * row. Every key the C worker and enqueue tool touch comes out of jw_key(),
 * so a change of layout is a change of this table only. */
#include "jw_keys.h"
#include "jw_util.h"

#include <string.h>

static const struct {
    const char *label;    /* the "name" column of key-layout.md */
    const char *tmpl;     /* the "template" column */
} templates[JW_K__COUNT] = {
    [JW_K_QUEUES] = {"queues", "{ns}:queues"},
    [JW_K_QUEUE] = {"queue", "{ns}:queue:{queue}"},
    [JW_K_WORKERS] = {"workers", "{ns}:workers"},
    [JW_K_WORKER_RECORD] = {"worker_record", "{ns}:worker:{worker_id}"},
    [JW_K_WORKER_STARTED] = {"worker_started", "{ns}:worker:{worker_id}:started"},
    [JW_K_HEARTBEATS] = {"heartbeats", "{ns}:workers:heartbeat"},
    [JW_K_STAT_PROCESSED] = {"stat_processed", "{ns}:stat:processed"},
    [JW_K_STAT_FAILED] = {"stat_failed", "{ns}:stat:failed"},
    [JW_K_STAT_PROCESSED_WORKER] = {"stat_processed_worker", "{ns}:stat:processed:{worker_id}"},
    [JW_K_STAT_FAILED_WORKER] = {"stat_failed_worker", "{ns}:stat:failed:{worker_id}"},
    [JW_K_FAILED] = {"failed", "{ns}:failed"},
    [JW_K_PAUSE_ALL] = {"pause_all", "{ns}:pause-all-workers"},
    [JW_K_META] = {"meta", "{ns}:jobwire:meta"},
    [JW_K_LEASES] = {"leases", "{ns}:jobwire:leases"},
    [JW_K_INFLIGHT] = {"inflight", "{ns}:jobwire:inflight:{worker_id}"},
    [JW_K_DEATHS] = {"deaths", "{ns}:jobwire:deaths"},
    [JW_K_WORKER_INFO] = {"worker_info", "{ns}:jobwire:worker:{worker_id}"},
    [JW_K_CONTROL] = {"control", "{ns}:jobwire:control:{worker_id}"},
    [JW_K_WAKE] = {"wake", "{ns}:jobwire:wake:{queue}"},
    [JW_K_WAKE_NEW_QUEUE] = {"wake_new_queue", "{ns}:jobwire:wake-new-queue"},
    [JW_K_MINUTES] = {"minutes", "{ns}:jobwire:minutes:{day}"},
    [JW_K_CONFORMANCE_ECHO] = {"conformance_echo", "{ns}:jobwire:conformance:echo"},
};

static const struct {
    const char *label;
    const char *tmpl;
} templates11[JW_K11__COUNT] = {
    [JW_K11_DELAYED_SCHEDULE] = {"delayed_schedule", "{ns}:delayed_queue_schedule"},
    [JW_K11_DELAYED_BUCKET] = {"delayed_bucket", "{ns}:delayed:{ts}"},
    [JW_K11_DELAYED_TIMESTAMPS] = {"delayed_timestamps", "{ns}:timestamps:{item}"},
    [JW_K11_RETRY_SET] = {"retry_set", "{ns}:jobwire:retry"},
    [JW_K11_SCHEDULES] = {"schedules", "{ns}:jobwire:schedules"},
    [JW_K11_SCHEDULE] = {"schedule", "{ns}:jobwire:schedule:{name}"},
    [JW_K11_WAKE_SCHEDULE] = {"wake_schedule", "{ns}:jobwire:wake-schedule"},
};

/* Expand template t: "{ns}" becomes ns, any other "{...}" placeholder (each
 * template has at most one) becomes arg. */
static char *expand(const char *t, const char *ns, const char *arg) {
    jw_buf b = {0};
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

/* The key of 1.0 template `name`. Returns a malloc'd string the caller frees. */
char *jw_key(const char *ns, jw_key_name name, const char *arg) {
    return expand(templates[name].tmpl, ns, arg);
}

/* The key of 1.1 template `name` (protocol.md section 14), as jw_key(). */
char *jw_key11(const char *ns, jw_key11_name name, const char *arg) {
    return expand(templates11[name].tmpl, ns, arg);
}

/* The 1.1 template's name in key-layout.md, for the self-test. */
const char *jw_key11_label(jw_key11_name name) { return templates11[name].label; }

/* The raw template, for the key builder's self-test. */
const char *jw_key_template(jw_key_name name) { return templates[name].tmpl; }

/* The template's name in key-layout.md, for the key builder's self-test. */
const char *jw_key_label(jw_key_name name) { return templates[name].label; }

/* key-layout.md: a queue name is 1 to 255 bytes of UTF-8 without ':', '*',
 * ',', whitespace or control characters. Bytes >= 0x80 are let through
 * unchecked (UTF-8 validity is Redis's and the operator's business here). */
int jw_queue_name_valid(const char *q) {
    size_t n = strlen(q);
    if (n == 0 || n > 255) return 0;
    for (const unsigned char *p = (const unsigned char *)q; *p; p++) {
        if (*p == ':' || *p == '*' || *p == ',' || *p == ' ' || *p < 0x20 || *p == 0x7F)
            return 0;
    }
    return 1;
}
