/* jw_job.c -- see jw_job.h. */
#include "jw_job.h"
#include "jw_util.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Number of Unicode code points in a UTF-8 string (jansson has already
 * checked it is valid UTF-8): JSON Schema's minLength/maxLength count code
 * points, not bytes. */
static size_t utf8_len(const char *s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) count++;
    return count;
}

/* Check a string property: absent is fine unless required, else it must be
 * a string of min..max code points (max 0 = unbounded). Returns 0 or -1
 * with the reason in err. */
static int check_string(json_t *doc, const char *key, int required, size_t min, size_t max,
                        char *err, size_t errlen) {
    json_t *v = json_object_get(doc, key);
    if (!v) {
        if (required) snprintf(err, errlen, "payload has no \"%s\"", key);
        return required ? -1 : 0;
    }
    if (!json_is_string(v)) {
        snprintf(err, errlen, "\"%s\" must be a string", key);
        return -1;
    }
    size_t n = utf8_len(json_string_value(v), json_string_length(v));
    if (n < min || (max && n > max)) {
        snprintf(err, errlen, "\"%s\" must be %zu to %zu characters long, it has %zu", key, min,
                 max, n);
        return -1;
    }
    return 0;
}

/* enqueued_at: a JSON Schema "integer" >= 0. 1.0 is an integer to JSON
 * Schema, so an integral real is accepted too. */
static int check_enqueued_at(json_t *doc, char *err, size_t errlen) {
    json_t *v = json_object_get(doc, "enqueued_at");
    if (!v) return 0;
    int ok = (json_is_integer(v) && json_integer_value(v) >= 0) ||
             (json_is_real(v) && json_real_value(v) >= 0 &&
              floor(json_real_value(v)) == json_real_value(v));
    if (!ok) snprintf(err, errlen, "\"enqueued_at\" must be a non-negative integer");
    return ok ? 0 : -1;
}

/* Is v a JSON Schema integer >= 0 (an integral real counts)? */
static int nonneg_integer(const json_t *v) {
    return (json_is_integer(v) && json_integer_value(v) >= 0) ||
           (json_is_real(v) && json_real_value(v) >= 0 && floor(json_real_value(v)) == json_real_value(v));
}

/* Since 1.1 (protocol.md 14.4, 14.5): "attempts" is an array of attempt
 * entries ($defs/attempt), "schedule" a string, "scheduled_for_ms" an
 * integer >= 0. Returns 0 or -1 with the reason in err. */
static int check_1_1(json_t *doc, char *err, size_t errlen) {
    static const char *strings[] = {"exception", "error", "worker", "queue"};
    json_t *attempts = json_object_get(doc, "attempts");
    if (attempts && !json_is_array(attempts)) {
        snprintf(err, errlen, "\"attempts\" must be an array of attempt entries");
        return -1;
    }
    for (size_t i = 0; attempts && i < json_array_size(attempts); i++) {
        json_t *e = json_array_get(attempts, i);
        json_t *n = json_object_get(e, "attempt");
        int ok = json_is_object(e) && nonneg_integer(n) && json_number_value(n) >= 1 &&
                 nonneg_integer(json_object_get(e, "failed_at_ms")) &&
                 nonneg_integer(json_object_get(e, "delay_ms"));
        for (size_t k = 0; ok && k < sizeof strings / sizeof strings[0]; k++)
            ok = json_is_string(json_object_get(e, strings[k]));
        if (!ok) {
            snprintf(err, errlen, "\"attempts\"[%zu] is not an attempt entry (protocol.md 14.4)", i);
            return -1;
        }
    }
    json_t *sched = json_object_get(doc, "schedule");
    if (sched && !json_is_string(sched)) {
        snprintf(err, errlen, "\"schedule\" must be a string");
        return -1;
    }
    json_t *sf = json_object_get(doc, "scheduled_for_ms");
    if (sf && !nonneg_integer(sf)) {
        snprintf(err, errlen, "\"scheduled_for_ms\" must be a non-negative integer");
        return -1;
    }
    return 0;
}

/* Copy of the JSON text raw with every number jansson cannot hold rewritten
 * so it can: integers outside int64 become doubles ("%.17g"), doubles that
 * overflow become +-DBL_MAX. Only the decoded copy handlers see changes; the
 * raw bytes stored, requeued and recorded stay as they were. Returns a
 * malloc'd buffer. */
static char *widen_numbers(const char *raw, size_t len, size_t *outlen) {
    jw_buf b = {0};
    int in_string = 0;
    for (size_t i = 0; i < len;) {
        char c = raw[i];
        if (in_string) {
            if (c == '\\' && i + 1 < len) { jw_buf_add(&b, raw + i, 2); i += 2; continue; }
            if (c == '"') in_string = 0;
            jw_buf_add(&b, &c, 1);
            i++;
            continue;
        }
        if (c == '"') in_string = 1;
        if (c != '-' && (c < '0' || c > '9')) { jw_buf_add(&b, &c, 1); i++; continue; }
        size_t n = strspn(raw + i, "+-0123456789.eE");
        if (i + n > len) n = len - i;
        char tok[400];
        if (n >= sizeof tok) { jw_buf_add(&b, raw + i, n); i += n; continue; }
        memcpy(tok, raw + i, n);
        tok[n] = '\0';
        int integral = strcspn(tok, ".eE") == n;
        errno = 0;
        if (integral) (void)strtoll(tok, NULL, 10);
        double d = strtod(tok, NULL);
        if (errno == ERANGE && (integral || isinf(d))) {
            if (isinf(d)) d = d > 0 ? DBL_MAX : -DBL_MAX;
            jw_buf_addf(&b, "%.17g", d);
        } else {
            jw_buf_add(&b, tok, n);
        }
        i += n;
    }
    return jw_buf_steal(&b, outlen);
}

/* json_loadb(raw, len, flags) that also takes numbers jansson alone refuses
 * (integers outside int64, doubles that overflow): decoded as doubles, as a
 * JavaScript worker would, so a job or schedule a peer accepts is not called
 * broken here. The raw bytes themselves are never changed. NULL and jerr as
 * json_loadb on text that is not JSON. */
json_t *jw_json_load_wide(const char *raw, size_t len, size_t flags, json_error_t *jerr) {
    json_t *doc = json_loadb(raw, len, flags, jerr);
    if (!doc && (strstr(jerr->text, "too big") || strstr(jerr->text, "overflow"))) {
        size_t wlen;
        char *wide = widen_numbers(raw, len, &wlen);
        json_error_t jerr2;
        doc = json_loadb(wide, wlen, flags, &jerr2);
        free(wide);
    }
    return doc;
}

/* Parse a raw payload and validate it against job.schema.json. Returns the
 * decoded object (the caller json_decref()s it) or NULL with the reason in
 * err and *not_json set when the bytes are not RFC 8259 JSON at all. Never trusts the input: any bytes at all are fine to pass. jansson
 * refuses integers outside int64 and doubles that overflow; the spec only
 * asks int64 to round-trip and unknown fields to be kept (which the raw
 * bytes are), so such numbers are decoded as doubles instead, as a
 * JavaScript worker would. */
json_t *jw_job_parse(const char *raw, size_t len, int *not_json, char *err, size_t errlen) {
    json_error_t jerr;
    *not_json = 0;
    json_t *doc = jw_json_load_wide(raw, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!doc) {
        /* RFC 8259 says no (lua-cjson in work.lua lets NaN, Infinity and hex
         * numbers through): protocol.md 7.4 makes this jobwire.InvalidJSON. */
        *not_json = 1;
        snprintf(err, errlen, "payload is not valid JSON: %s (at byte %d)", jerr.text,
                 jerr.position);
        return NULL;
    }
    json_t *args = json_object_get(doc, "args");
    if (!json_is_object(doc)) {
        snprintf(err, errlen, "payload is not a JSON object");
    } else if (check_string(doc, "class", 1, 1, 1024, err, errlen) == 0 &&
               check_string(doc, "id", 0, 1, 64, err, errlen) == 0 &&
               check_string(doc, "queue", 0, 0, 0, err, errlen) == 0 &&
               check_enqueued_at(doc, err, errlen) == 0 && check_1_1(doc, err, errlen) == 0) {
        if (!args || json_is_array(args)) return doc;
        snprintf(err, errlen, "\"args\" must be an array");
    }
    json_decref(doc);
    return NULL;
}

/* Build a failure record (protocol.md 6.2) by concatenation around the raw
 * payload, which is embedded byte for byte: re-encoding it could lose big
 * integers, float spellings or unknown fields. quote_payload = 1 embeds it
 * as a JSON string instead, for bytes that are not valid JSON. Keys in the
 * order the spec fixes. Returns a malloc'd buffer and its length. */
char *jw_failure_record(const char *payload, size_t payload_len, int quote_payload,
                        const char *exception,
                        const char *error, const char *const *backtrace, size_t nframes,
                        const char *worker, const char *queue, size_t *outlen) {
    char failed_at[64];
    jw_buf b = {0};
    jw_utc_format(failed_at, sizeof failed_at, "%Y/%m/%d %H:%M:%S UTC", time(NULL));
    jw_buf_adds(&b, "{\"failed_at\":");
    jw_buf_quote(&b, failed_at, strlen(failed_at));
    jw_buf_adds(&b, ",\"payload\":");
    if (quote_payload) jw_buf_quote(&b, payload, payload_len);
    else jw_buf_add(&b, payload, payload_len);
    jw_buf_adds(&b, ",\"exception\":");
    jw_buf_quote(&b, exception, strlen(exception));
    jw_buf_adds(&b, ",\"error\":");
    jw_buf_quote(&b, error, strlen(error));
    jw_buf_adds(&b, ",\"backtrace\":[");
    for (size_t i = 0; i < nframes; i++) {
        if (i) jw_buf_add(&b, ",", 1);
        jw_buf_quote(&b, backtrace[i], strlen(backtrace[i]));
    }
    jw_buf_adds(&b, "],\"worker\":");
    jw_buf_quote(&b, worker, strlen(worker));
    jw_buf_adds(&b, ",\"queue\":");
    jw_buf_quote(&b, queue, strlen(queue));
    jw_buf_adds(&b, "}");
    return jw_buf_steal(&b, outlen);
}
