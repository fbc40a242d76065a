/* jw_keys.h -- the only place examples-c builds Redis key names.
 * The templates come from spec/keys.json (jw_keys_load); the enum names them. */
#ifndef JW_KEYS_H
#define JW_KEYS_H

/* Names of the key templates of spec/keys.json. */
typedef enum jw_key_name {
    JW_K_QUEUES,
    JW_K_QUEUE,
    JW_K_WORKERS,
    JW_K_WORKER_RECORD,
    JW_K_WORKER_STARTED,
    JW_K_HEARTBEATS,
    JW_K_STAT_PROCESSED,
    JW_K_STAT_FAILED,
    JW_K_STAT_PROCESSED_WORKER,
    JW_K_STAT_FAILED_WORKER,
    JW_K_FAILED,
    JW_K_PAUSE_ALL,
    JW_K_META,
    JW_K_LEASES,
    JW_K_INFLIGHT,
    JW_K_DEATHS,
    JW_K_WORKER_INFO,
    JW_K_CONTROL,
    JW_K_WAKE,
    JW_K_WAKE_NEW_QUEUE,
    JW_K_MINUTES,
    JW_K_CONFORMANCE_ECHO,
    /* protocol 1.1 (section 14) */
    JW_K_DELAYED_SCHEDULE,      /* {ns}:delayed_queue_schedule */
    JW_K_DELAYED_BUCKET,        /* {ns}:delayed:{ts} */
    JW_K_DELAYED_TIMESTAMPS,    /* {ns}:timestamps:{item} */
    JW_K_RETRY_SET,             /* {ns}:jobwire:retry */
    JW_K_SCHEDULES,             /* {ns}:jobwire:schedules */
    JW_K_SCHEDULE,              /* {ns}:jobwire:schedule:{name} */
    JW_K_WAKE_SCHEDULE,         /* {ns}:jobwire:wake-schedule */
    JW_K_ROUTES,                /* {ns}:jobwire:routes (protocol.md 15.2) */
    JW_K__COUNT
} jw_key_name;

#include <stddef.h>

int jw_keys_load(const char *spec_dir, char *err, size_t errlen);
void jw_keys_free(void);
char *jw_key(const char *ns, jw_key_name name, const char *arg);
const char *jw_key_template(jw_key_name name);
const char *jw_key_label(jw_key_name name);
int jw_queue_name_valid(const char *q);
int jw_queues_parse(const char *text, char ***out, char *err, size_t errlen);
int jw_queues_expand(char **configured, int n, char **known, int nknown, char ***out);
void jw_queues_free(char **names, int n);

#endif
