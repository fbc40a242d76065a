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

char *jw_key(const char *ns, jw_key_name name, const char *arg);
const char *jw_key_template(jw_key_name name);
const char *jw_key_label(jw_key_name name);
int jw_queue_name_valid(const char *q);

#endif
