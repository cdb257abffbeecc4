/*
 * Logging: formats a line in a stack buffer and writes it with one write(2).
 * The level and fd are set once by main before threads start and never
 * change afterwards, so reading them needs no synchronisation.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static int log_fd = 1;
static _Thread_local char role[8] = "M";

void log_setup(enum log_level level, int fd)
{
    min_level = level;
    log_fd = fd;
}

void log_set_role(const char *r)
{
    snprintf(role, sizeof role, "%s", r);
}

enum log_level log_get_level(void)
{
    return min_level;
}

static const char level_mark[] = {'.', '-', '+', '#', '!'};

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    char line[1024];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%d:%s ", (int)getpid(), role);
    n += (int)strftime(line + n, sizeof line - (size_t)n, "%d %b %Y %H:%M:%S", &tm);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03d %c ",
                  (int)(tv.tv_usec / 1000), level_mark[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = (m < 0) ? n : n + m;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, (size_t)n);
    (void)w;
}
