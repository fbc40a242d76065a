/* jw_job.h -- job payloads: validation against spec/schemas/job.schema.json
 * and failure records (protocol.md sections 5 and 6.2). */
#ifndef JW_JOB_H
#define JW_JOB_H

#include <jansson.h>
#include <stddef.h>

/* How jobwire-c encodes JSON it produces itself: compact, and doubles with
 * 17 significant digits so they round-trip to the same IEEE-754 value. */
#define JW_JSON_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))

json_t *jw_json_load_wide(const char *raw, size_t len, size_t flags, json_error_t *jerr);
json_t *jw_job_parse(const char *raw, size_t len, int *not_json, char *err, size_t errlen);
char *jw_failure_record(const char *payload, size_t payload_len, int quote_payload,
                        const char *exception,
                        const char *error, const char *const *backtrace, size_t nframes,
                        const char *worker, const char *queue, size_t *outlen);

#endif
