/*
 * Logging (log.h): format a line in a stack buffer, then either write it
 * (one write(2), so lines of different threads never interleave) or push it
 * on the ring the main thread drains.
 *
 *   any thread ── log_msg ─► format ─► ring (Vyukov bounded MPMC cells)
 *                                │ full: worker drops (counted), others write
 *                                ▼
 *   main thread ── log_drain ◄── eventfd (written once per burst) ─► fd
 *
 * The ring is the same scheme as core/mq.c, over cells that hold a whole
 * line: a cell's seq says whose turn it is (producer at pos, consumer at
 * pos + 1). The fd number never changes after log_setup: log_reopen dup2()s
 * the new file over it, so a thread writing directly never sees a closed fd.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 1024
#define LOG_RING_CELLS 1024 /* 1 MB of lines waiting at most */

struct log_cell {
    _Atomic size_t seq;
    size_t len;
    char line[LOG_LINE_MAX];
};

static _Atomic int min_level = LOG_INFO;
static int log_fd = 1;
static char log_path[CONFIG_PATH_MAX];
static bool use_colors;
static _Thread_local char role[8] = "M";

static struct log_cell *ring;        /* NULL: direct writes */
static _Atomic bool ring_on;
static _Atomic size_t ring_head;     /* producers */
static size_t ring_tail;             /* the main thread */
static int wake_fd = -1;
static _Atomic bool wake_pending;
static _Atomic uint64_t dropped;

void log_setup(enum log_level level, int fd, const char *path, bool colors)
{
    atomic_store(&min_level, (int)level);
    log_fd = fd;
    snprintf(log_path, sizeof log_path, "%s", path ? path : "");
    use_colors = colors && isatty(fd);
}

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&min_level, memory_order_relaxed);
}

void log_set_role(const char *r)
{
    snprintf(role, sizeof role, "%s", r);
}

uint64_t log_dropped(void)
{
    return atomic_load_explicit(&dropped, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Formatting                                                                */

static const char level_mark[] = {'.', '-', '*', '#', '!'};
/* rcp's colours: gray, default, green, yellow, red */
static const int level_color[] = {90, 39, 32, 33, 31};

static size_t format_line(char *line, size_t cap, enum log_level level,
                          const char *fmt, va_list ap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    size_t room = cap - 8; /* keep space for the colour reset and '\n' */
    int n = snprintf(line, room, "%d:%s ", (int)getpid(), role);
    n += (int)strftime(line + n, room - (size_t)n, "%d %b %Y %H:%M:%S", &tm);
    n += snprintf(line + n, room - (size_t)n, ".%03d ", (int)(tv.tv_usec / 1000));
    if (use_colors)
        n += snprintf(line + n, room - (size_t)n, "\033[%dm", level_color[level]);
    n += snprintf(line + n, room - (size_t)n, "%c ", level_mark[level]);
    int m = vsnprintf(line + n, room - (size_t)n, fmt, ap);
    n = (m < 0) ? n : n + m;
    if (n > (int)room - 1)
        n = (int)room - 1;
    if (use_colors)
        n += snprintf(line + n, cap - (size_t)n, "\033[0m");
    line[n++] = '\n';
    return (size_t)n;
}

static void write_line(const char *line, size_t len)
{
    ssize_t w = write(log_fd, line, len);
    (void)w;
}

/* ------------------------------------------------------------------------ */
/* The ring                                                                  */

static bool ring_push(const char *line, size_t len)
{
    size_t pos = atomic_load_explicit(&ring_head, memory_order_relaxed);
    for (;;) {
        struct log_cell *c = &ring[pos % LOG_RING_CELLS];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&ring_head, &pos, pos + 1,
                    memory_order_relaxed, memory_order_relaxed)) {
                memcpy(c->line, line, len);
                c->len = len;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return true;
            }
        } else if (diff < 0) {
            return false; /* full */
        } else {
            pos = atomic_load_explicit(&ring_head, memory_order_relaxed);
        }
    }
}

/* One eventfd write per burst: the flag is cleared by the drainer. */
static void wake_main(void)
{
    if (atomic_exchange(&wake_pending, true))
        return;
    uint64_t one = 1;
    ssize_t n = write(wake_fd, &one, sizeof one);
    (void)n;
}

static void emit(const char *line, size_t len)
{
    if (!atomic_load_explicit(&ring_on, memory_order_acquire)) {
        write_line(line, len);
        return;
    }
    if (ring_push(line, len)) {
        wake_main();
        return;
    }
    if (role[0] == 'W') /* a worker never waits for the disk */
        atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
    else
        write_line(line, len);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;
    char line[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(line, sizeof line, level, fmt, ap);
    va_end(ap);
    emit(line, n);
}

void log_now(enum log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    size_t n = format_line(line, sizeof line, level, fmt, ap);
    va_end(ap);
    write_line(line, n);
}

int log_start_async(void)
{
    ring = calloc(LOG_RING_CELLS, sizeof *ring);
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!ring || wake_fd < 0) {
        free(ring);
        ring = NULL;
        if (wake_fd >= 0)
            close(wake_fd);
        wake_fd = -1;
        return -1;
    }
    for (size_t i = 0; i < LOG_RING_CELLS; i++)
        atomic_init(&ring[i].seq, i);
    atomic_store_explicit(&ring_on, true, memory_order_release);
    return wake_fd;
}

void log_drain(void)
{
    if (!ring)
        return;
    uint64_t v;
    ssize_t r = read(wake_fd, &v, sizeof v);
    (void)r;
    atomic_store(&wake_pending, false);
    for (;;) {
        struct log_cell *c = &ring[ring_tail % LOG_RING_CELLS];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        if (seq != ring_tail + 1)
            return; /* empty */
        write_line(c->line, c->len);
        atomic_store_explicit(&c->seq, ring_tail + LOG_RING_CELLS, memory_order_release);
        ring_tail++;
    }
}

void log_stop_async(void)
{
    if (!ring)
        return;
    atomic_store_explicit(&ring_on, false, memory_order_release);
    log_drain();
    free(ring);
    ring = NULL;
    close(wake_fd);
    wake_fd = -1;
}

int log_reopen(void)
{
    if (!log_path[0])
        return 0;
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int ret = dup3(fd, log_fd, O_CLOEXEC) < 0 ? -errno : 0;
    close(fd);
    return ret;
}
