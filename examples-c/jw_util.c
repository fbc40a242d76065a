/* jw_util.c -- see jw_util.h. Nothing here touches Redis. */
#define _GNU_SOURCE
#include "jw_util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* From the Makefile, which reads the repository's VERSION file. The
 * Makefile also defines JW_SHARE_DIR ($(PREFIX)/share/jobwire) for the
 * objects `make install` builds, and only for those. */
#ifndef JW_VERSION_STRING
#error "build with -DJW_VERSION_STRING='\"x.y.z\"' (the Makefile reads ../VERSION)"
#endif

/* jw_util.h: the release version. */
const char *jw_version(void) { return JW_VERSION_STRING; }

/* ============================ Allocation ================================
 * A sample worker has nothing sensible to do when malloc fails, so these
 * wrappers abort instead of making every caller check. */

/* malloc that never returns NULL. */
void *jw_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) { fputs("jobwire-c: out of memory\n", stderr); abort(); }
    return p;
}

/* realloc that never returns NULL. */
void *jw_realloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) { fputs("jobwire-c: out of memory\n", stderr); abort(); }
    return p;
}

/* strdup that never returns NULL. */
char *jw_strdup(const char *s) { return jw_strndup(s, strlen(s)); }

/* Copy n bytes of s into a new NUL terminated string. */
char *jw_strndup(const char *s, size_t n) {
    char *p = jw_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* ============================ Byte buffer =============================== */

/* Make room for n more bytes plus a NUL. Grows geometrically so building a
 * 20 MiB failure record costs a handful of reallocs. */
static void buf_reserve(jw_buf *b, size_t n) {
    if (b->len + n + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    b->p = jw_realloc(b->p, cap);
    b->cap = cap;
}

/* Append n raw bytes. */
void jw_buf_add(jw_buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Append a C string. */
void jw_buf_adds(jw_buf *b, const char *s) { jw_buf_add(b, s, strlen(s)); }

/* Append printf-style output. */
void jw_buf_addf(jw_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence starting at s (at most n bytes), or 0
 * when the bytes there are not valid UTF-8 (overlongs and surrogates
 * included). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; min = 0x10000; }
    else return 0;
    if (len > n) return 0;
    unsigned cp = c & (0xFF >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* Append s as a JSON string literal, escaped the way JSON.stringify does
 * (no "\/", short escapes where JSON has them, \u00xx otherwise) so tools
 * that find records by re-encoding them, like node-resque, match our bytes.
 * Bytes that are not valid UTF-8 become U+FFFD so the record we write is
 * always valid JSON, whatever a job's error message contained. */
void jw_buf_quote(jw_buf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    jw_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            jw_buf_add(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': jw_buf_add(b, "\\n", 2); break;
            case '\r': jw_buf_add(b, "\\r", 2); break;
            case '\t': jw_buf_add(b, "\\t", 2); break;
            case '\b': jw_buf_add(b, "\\b", 2); break;
            case '\f': jw_buf_add(b, "\\f", 2); break;
            default: jw_buf_addf(b, "\\u%04x", c);
            }
            i++;
        } else {
            size_t len = utf8_seq(u + i, n - i);
            if (len == 0) { jw_buf_adds(b, "\xEF\xBF\xBD"); i++; }
            else { jw_buf_add(b, s + i, len); i += len; }
        }
    }
    jw_buf_add(b, "\"", 1);
}

/* Hand the buffer's memory to the caller (who frees it) and reset b. */
char *jw_buf_steal(jw_buf *b, size_t *len) {
    char *p = b->p ? b->p : jw_strdup("");
    if (len) *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

/* Free the buffer's memory and reset it. */
void jw_buf_free(jw_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ============================ Time ====================================== */

/* Wall clock in ms since the epoch: for the timestamps the spec asks for. */
long long jw_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic ms: for every deadline and period, so clock jumps do not
 * shorten a job timeout or skip a beat. */
long long jw_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* strftime of t in UTC. */
void jw_utc_format(char *out, size_t outlen, const char *fmt, time_t t) {
    struct tm tm;
    gmtime_r(&t, &tm);
    if (strftime(out, outlen, fmt, &tm) == 0 && outlen) out[0] = '\0';
}

/* One line to stderr, prefixed so the interleaved logs of several workers
 * in a test can be told apart. */
void jw_log(const char *fmt, ...) {
    char ts[32], line[1024];
    va_list ap;
    jw_utc_format(ts, sizeof ts, "%H:%M:%S", time(NULL));
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s jobwire-c[%d]: %s\n", ts, (int)getpid(), line);
}

/* ============================ Files ===================================== */

/* Read a whole file into a NUL terminated buffer, or NULL (errno set). */
char *jw_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    jw_buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) jw_buf_add(&b, chunk, n);
    int err = ferror(f);
    fclose(f);
    if (err) { jw_buf_free(&b); errno = EIO; return NULL; }
    return jw_buf_steal(&b, len);
}

/* Is dir/VERSION a readable file? */
static int has_version(const char *dir) {
    char path[PATH_MAX + 16];
    struct stat st;
    snprintf(path, sizeof path, "%s/VERSION", dir);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

#ifndef JW_SHARE_DIR
/* In-tree builds: ../spec (or two more levels up) from the executable's
 * directory, through /proc/self/exe. */
static char *spec_near_exe(void) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = '\0';
    jw_buf b = {0};
    const char *ups[] = {"/../spec", "/../../spec", "/../../../spec"};
    for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++) {
        b.len = 0;
        jw_buf_adds(&b, exe);
        jw_buf_adds(&b, ups[i]);
        if (has_version(b.p)) {
            char *real = realpath(b.p, NULL);
            jw_buf_free(&b);
            return real;
        }
    }
    jw_buf_free(&b);
    return NULL;
}
#endif

/* Where spec/ is: $JOBWIRE_SPEC_DIR, else, for an installed build, the
 * directory `make install` copied the spec files to (JW_SHARE_DIR, e.g.
 * /usr/local/share/jobwire), else, for an in-tree build, ../spec next to
 * the executable (examples-c/jobwire-worker -> spec/), walking up two more
 * levels so the sanitizer builds in examples-c/build/<kind>/ find it too.
 * An installed program never searches near its executable: a user's
 * worker must not pick up some unrelated spec/ next to it. Returns a
 * malloc'd path, or NULL when nothing was found. */
char *jw_spec_dir(void) {
    const char *env = getenv("JOBWIRE_SPEC_DIR");
    if (env && *env) return jw_strdup(env);
#ifdef JW_SHARE_DIR
    return has_version(JW_SHARE_DIR) ? jw_strdup(JW_SHARE_DIR) : NULL;
#else
    return spec_near_exe();
#endif
}
