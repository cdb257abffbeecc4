/*
 * Private to core/: logging. Lines look like Redis's:
 *   pid:role dd Mon yyyy hh:mm:ss.mmm <level> message
 * where role is C (control), W<n> (worker n) or M (main). One write(2) per
 * line, so lines from different threads never interleave.
 */
#ifndef RINGSLOT_CORE_LOG_H
#define RINGSLOT_CORE_LOG_H

#include "../config/config.h"

/* Set once by main before any thread starts. */
void log_setup(enum log_level level, int fd);
/* Name of the calling thread's role, e.g. "W0"; set by each thread. */
void log_set_role(const char *role);
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
enum log_level log_get_level(void);

#define log_debug(...) \
    do { if (log_get_level() <= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
