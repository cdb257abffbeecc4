/*
 * Private to core/: logging. Lines look like Redis's:
 *
 *   pid:role dd Mon yyyy hh:mm:ss.mmm <mark> message
 *   12345:W0 22 Nov 2026 01:48:18.123 # link to 127.0.0.1:7001 lost: ...
 *
 * role: M (main), C (control), K (consensus), W<n> (worker n). mark, by
 * level: '.' debug, '-' info, '*' success, '#' warning, '!' error. Levels
 * and their names are redis-cluster-proxy's. On a terminal (and without
 * --disable-colors) the mark and message are coloured as rcp colours them.
 *
 * Where lines go: stdout, or --logfile (opened O_APPEND, kept open, and
 * reopened by log_reopen() on SIGHUP so logrotate can move it away). Once
 * main calls log_start_async(), every thread formats its line and pushes it
 * on one bounded lock-free ring; only the main thread writes to the file
 * (log_drain()). A worker never blocks on the log: when the ring is full its
 * line is dropped and counted (log_dropped()); other threads write the line
 * themselves instead. Before log_start_async() and after log_stop_async()
 * lines are written directly, one write(2) each.
 */
#ifndef RINGSLOT_CORE_LOG_H
#define RINGSLOT_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "../config/config.h"

/* Set once by main before any thread starts. fd is stdout or the log file
 * (then path is its name, for log_reopen). */
void log_setup(enum log_level level, int fd, const char *path, bool colors);
/* Any thread, any time (PROXY CONFIG SET log-level). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Name of the calling thread's role, e.g. "W0"; set by each thread. Roles
 * starting with 'W' are workers: they never write to the file themselves. */
void log_set_role(const char *role);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Write at once, bypassing the ring (a crash is about to happen). */
void log_now(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Main thread. Returns an eventfd that becomes readable when lines wait,
 * or -1 (then lines keep being written directly). */
int log_start_async(void);
/* Main thread: write every waiting line. */
void log_drain(void);
/* Main thread, after the other threads have stopped: drain and go back to
 * direct writes. */
void log_stop_async(void);
/* Main thread (SIGHUP): reopen the log file by name; 0 or -errno. */
int log_reopen(void);
uint64_t log_dropped(void);

#define log_debug(...) \
    do { if (log_get_level() <= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_success(...) log_msg(LOG_SUCCESS, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
