/* jw_util.h -- small helpers shared by the worker and the enqueue tool:
 * a growable byte buffer, JSON string quoting, clocks, UTC time formats,
 * logging and allocation that aborts on out-of-memory. */
#ifndef JW_UTIL_H
#define JW_UTIL_H

#include <stddef.h>
#include <time.h>

#define JW_IMPL "c"
/* The release version (the repository's VERSION), compiled into jw_util.c. */
#define JW_IMPL_VERSION (jw_version())
const char *jw_version(void);

/* A growable byte buffer. Always NUL terminated when len > 0 so it can be
 * printed, but it may hold NUL bytes too: use len. */
typedef struct jw_buf {
    char *p;      /* data, malloc'd, NULL until the first append */
    size_t len;   /* bytes used */
    size_t cap;   /* bytes allocated */
} jw_buf;

void *jw_malloc(size_t n);
void *jw_realloc(void *p, size_t n);
char *jw_strdup(const char *s);
char *jw_strndup(const char *s, size_t n);

void jw_buf_add(jw_buf *b, const char *s, size_t n);
void jw_buf_adds(jw_buf *b, const char *s);
void jw_buf_addf(jw_buf *b, const char *fmt, ...);
void jw_buf_quote(jw_buf *b, const char *s, size_t n);
char *jw_buf_steal(jw_buf *b, size_t *len);
void jw_buf_free(jw_buf *b);

long long jw_wall_ms(void);
long long jw_mono_ms(void);
void jw_utc_format(char *out, size_t outlen, const char *fmt, time_t t);

void jw_log(const char *fmt, ...);

char *jw_read_file(const char *path, size_t *len);
char *jw_spec_dir(void);

#endif
