/* jw_keys.h -- the only place examples-c builds Redis key names.
 * Mirrors spec/key-layout.md, "Key templates as data", one entry per row. */
#ifndef JW_KEYS_H
#define JW_KEYS_H

/* Names of the key templates, in key-layout.md's order. */
typedef enum jw_key_name {
    JW_K_QUEUES,                /* {ns}:queues */
    JW_K_QUEUE,                 /* {ns}:queue:{queue} */
    JW_K_WORKERS,               /* {ns}:workers */
    JW_K_WORKER_RECORD,         /* {ns}:worker:{worker_id} */
    JW_K_WORKER_STARTED,        /* {ns}:worker:{worker_id}:started */
    JW_K_HEARTBEATS,            /* {ns}:workers:heartbeat */
    JW_K_STAT_PROCESSED,        /* {ns}:stat:processed */
    JW_K_STAT_FAILED,           /* {ns}:stat:failed */
    JW_K_STAT_PROCESSED_WORKER, /* {ns}:stat:processed:{worker_id} */
    JW_K_STAT_FAILED_WORKER,    /* {ns}:stat:failed:{worker_id} */
    JW_K_FAILED,                /* {ns}:failed */
    JW_K_PAUSE_ALL,             /* {ns}:pause-all-workers */
    JW_K_META,                  /* {ns}:jobwire:meta */
    JW_K_LEASES,                /* {ns}:jobwire:leases */
    JW_K_INFLIGHT,              /* {ns}:jobwire:inflight:{worker_id} */
    JW_K_DEATHS,                /* {ns}:jobwire:deaths */
    JW_K_WORKER_INFO,           /* {ns}:jobwire:worker:{worker_id} */
    JW_K_CONTROL,               /* {ns}:jobwire:control:{worker_id} */
    JW_K_WAKE,                  /* {ns}:jobwire:wake:{queue} */
    JW_K_WAKE_NEW_QUEUE,        /* {ns}:jobwire:wake-new-queue */
    JW_K_MINUTES,               /* {ns}:jobwire:minutes:{day} */
    JW_K_CONFORMANCE_ECHO,      /* {ns}:jobwire:conformance:echo */
    JW_K__COUNT
} jw_key_name;

/* The 1.1 templates of key-layout.md ("Protocol 1.1 key templates"), kept
 * apart as there so that the 1.0 table above still matches row for row. */
typedef enum jw_key11_name {
    JW_K11_DELAYED_SCHEDULE,    /* {ns}:delayed_queue_schedule */
    JW_K11_DELAYED_BUCKET,      /* {ns}:delayed:{ts} */
    JW_K11_DELAYED_TIMESTAMPS,  /* {ns}:timestamps:{item} */
    JW_K11_RETRY_SET,           /* {ns}:jobwire:retry */
    JW_K11_SCHEDULES,           /* {ns}:jobwire:schedules */
    JW_K11_SCHEDULE,            /* {ns}:jobwire:schedule:{name} */
    JW_K11_WAKE_SCHEDULE,       /* {ns}:jobwire:wake-schedule */
    JW_K11__COUNT
} jw_key11_name;

char *jw_key(const char *ns, jw_key_name name, const char *arg);
char *jw_key11(const char *ns, jw_key11_name name, const char *arg);
const char *jw_key11_label(jw_key11_name name);
const char *jw_key_template(jw_key_name name);
const char *jw_key_label(jw_key_name name);
int jw_queue_name_valid(const char *q);

#endif
