/*
 * config_file.c — reading configuration files (config_load_file in
 * config.h). Two formats, told apart by the first line that is neither
 * blank nor a comment:
 *
 *   redis-cluster-proxy's          INI (inih)
 *   ---------------------          ----------
 *   # comment                      ; comment, # comment
 *   port 7777                      [proxy]
 *   bind 127.0.0.1 ::1             port = 7777
 *   auth "pa ss\x21"               [backend]
 *   cluster 10.0.0.1:7000          entry-point = 10.0.0.1:7000
 *   include other.conf             include = other.conf
 *   daemonize yes                  daemonize = yes
 *
 * Words are split as Redis's sdssplitargs splits them (double quotes with
 * \n \t \xHH escapes, single quotes with \'), in both formats; a '#' outside
 * quotes starts a comment, as redis-cluster-proxy cut its lines at '#'.
 * Each directive goes to config_apply; an error becomes "FILE:LINE: ...".
 *
 *   path ─ open_source ─ read_all ─┬─ parse_rcp ─ split_line ─┐
 *                                  └─ parse_ini ─ inih ───────┤
 *                     include ◄── (depth ≤ 16, no cycles) ◄───┴─ config_apply
 *
 * A whole file is read into memory first (at most MAX_FILE bytes) so the
 * format can be detected and NUL bytes refused before anything is applied
 * from it. Only regular files are read (stdin for "-" at the top), so an
 * include can never block on a pipe or a device.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ini.h>

#include "config.h"
#include "../cluster/cluster.h"

#define MAX_FILE (4u << 20)   /* bytes in one configuration file */
#define MAX_WORDS 64          /* words on one line */
#define INI_LINE_MAX 4096     /* inih's line buffer, with "\r\n\0" */

/* What stays the same across a file and the files it includes. */
struct load {
    struct config *c;
    char *err;
    size_t errlen;
    int depth;                                /* files open, top = 1 */
    struct { dev_t dev; ino_t ino; } open[CONFIG_MAX_INCLUDE_DEPTH];
};

/* One file being read. */
struct source {
    struct load *ld;
    const char *path;  /* as it appears in messages */
    char *text;        /* the whole file, NUL-terminated */
    size_t len;
    char *words;       /* room for one line's words (2 * len + 2) */
    size_t pos;        /* next byte for inih */
    int line;          /* line being parsed, 1-based */
    bool failed;       /* an error is in ld->err */
    int failed_line;   /* the line it names */
};

static int load_path(struct load *ld, const char *path, struct source *from);

/* "FILE:LINE: message" into the caller's buffer; remembers the failure. */
static int source_error(struct source *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int source_error(struct source *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->ld->err != NULL && s->ld->errlen > 0)
        snprintf(s->ld->err, s->ld->errlen, "%s:%d: %s", s->path, s->line, msg);
    s->failed = true;
    s->failed_line = s->line;
    return -1;
}

/* ---- words ---------------------------------------------------------------- */

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' ||
           ch == '\v' || ch == '\f';
}

static int hex_value(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : tolower((unsigned char)ch) - 'a' + 10;
}

/* Inside "...": an escape at *p (a backslash) into *out; returns the
 * bytes consumed. \xHH, \n \r \t \b \a, and \<any> for the character. */
static size_t unescape(const char *p, char *out)
{
    static const char from[] = "nrtba", to[] = "\n\r\t\b\a";

    if (p[1] == 'x' && isxdigit((unsigned char)p[2]) &&
        isxdigit((unsigned char)p[3])) {
        *out = (char)(hex_value(p[2]) * 16 + hex_value(p[3]));
        return 4;
    }
    const char *e = strchr(from, p[1]);
    *out = e != NULL ? to[e - from] : p[1];
    return 2;
}

/*
 * One word starting at *pp into *out (NUL-terminated), as sdssplitargs
 * reads it; advances both. Returns 0, or -1 with *why.
 */
static int split_word(const char **pp, char **out, const char **why)
{
    const char *p = *pp;
    char *o = *out, quote = 0;

    for (;;) {
        if (quote == 0) {
            if (*p == '\0' || *p == '#' || is_space(*p))
                break;
            if (*p == '"' || *p == '\'')
                quote = *p;
            else
                *o++ = *p;
            p++;
        } else if (*p == '\0') {
            *why = "unbalanced quotes";
            return -1;
        } else if (*p == quote) {
            /* as sdssplitargs: a closing quote ends the word */
            if (p[1] != '\0' && p[1] != '#' && !is_space(p[1])) {
                *why = "closing quote must be followed by a space";
                return -1;
            }
            p++;
            break;
        } else if (*p == '\\' && p[1] != '\0' && quote == '"') {
            p += unescape(p, o++);
        } else if (*p == '\\' && p[1] == '\'' && quote == '\'') {
            *o++ = '\'';
            p += 2;
        } else {
            *o++ = *p++;
        }
    }
    *o++ = '\0';
    *pp = p;
    *out = o;
    return 0;
}

/*
 * Split `line` into words stored in `buf` (at least 2 * strlen(line) + 2
 * bytes), pointed to by w[]. Stops at a '#' outside quotes. Returns the
 * number of words, or -1 with *why.
 */
static int split_line(const char *line, char *buf, char **w, const char **why)
{
    int n = 0;

    for (;;) {
        while (is_space(*line))
            line++;
        if (*line == '\0' || *line == '#')
            return n;
        if (n == MAX_WORDS) {
            *why = "too many words on one line";
            return -1;
        }
        w[n++] = buf;
        if (split_word(&line, &buf, why) != 0)
            return -1;
    }
}

/* ---- include -------------------------------------------------------------- */

/* `name` relative to the directory of the file naming it. */
static int resolve(const char *from, const char *name, char *out, size_t len)
{
    const char *slash = strrchr(from, '/');
    int n;

    if (name[0] == '/' || slash == NULL || strcmp(from, "-") == 0)
        n = snprintf(out, len, "%s", name);
    else
        n = snprintf(out, len, "%.*s/%s", (int)(slash - from), from, name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int include(struct source *s, const char *const *args, size_t n)
{
    char path[CONFIG_PATH_MAX];

    if (n != 1 || args[0][0] == '\0')
        return source_error(s, "'include' needs one file name");
    if (resolve(s->path, args[0], path, sizeof(path)) != 0)
        return source_error(s, "include path too long");
    if (s->ld->depth >= CONFIG_MAX_INCLUDE_DEPTH)
        return source_error(s, "include nesting deeper than %d",
                            CONFIG_MAX_INCLUDE_DEPTH);
    if (load_path(s->ld, path, s) != 0) {
        s->failed = true; /* the message names the included file's line */
        s->failed_line = s->line;
        return -1;
    }
    return 0;
}

/* One directive: `include`, or an option for config_apply. */
static int directive(struct source *s, const char *section, char *name,
                     const char *const *args, size_t n)
{
    char msg[512];

    size_t len = strlen(name);

    cluster_lower(name, len + 1, name, len); /* as rcp: names in any case */
    if (strcmp(name, "include") == 0)
        return include(s, args, n);
    if (section == NULL && strcmp(name, "help") == 0)
        return 0; /* redis-cluster-proxy skips it too */
    if (config_apply(s->ld->c, section, name, args, n, msg, sizeof(msg)) != 0)
        return source_error(s, "%s", msg);
    return 0;
}

/* ---- redis-cluster-proxy's format ------------------------------------------ */

static int parse_rcp(struct source *s)
{
    char *w[MAX_WORDS], *line = s->text, *next;
    const char *why;
    int n;

    for (s->line = 1; line != NULL; s->line++, line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        n = split_line(line, s->words, w, &why);
        if (n < 0)
            return source_error(s, "%s", why);
        if (n > 0 &&
            directive(s, NULL, w[0], (const char *const *)w + 1,
                      (size_t)n - 1) != 0)
            return -1;
    }
    return 0;
}

/* ---- INI ------------------------------------------------------------------ */

/* inih's line source: the next line of the file, or NULL at its end, after
 * an error, or when the line does not fit inih's buffer (inih would cut it
 * silently and read the rest as another line). */
static char *ini_next_line(char *str, int num, void *stream)
{
    struct source *s = stream;
    const char *start = s->text + s->pos, *nl;
    size_t n;

    if (s->failed || s->pos >= s->len)
        return NULL;
    nl = memchr(start, '\n', s->len - s->pos);
    n = nl != NULL ? (size_t)(nl - start) + 1 : s->len - s->pos;
    s->line++;
    if (num < 3 || n > (size_t)num - 3) {
        source_error(s, "line too long for the INI format (max %d bytes)",
                     num - 3);
        return NULL;
    }
    memcpy(str, start, n);
    str[n] = '\0';
    s->pos += n;
    return str;
}

static int ini_entry(void *user, const char *section, const char *name,
                     const char *value)
{
    struct source *s = user;
    char *w[MAX_WORDS], key[128];
    const char *why;
    int n;

    if (s->failed)
        return 0;
    if (snprintf(key, sizeof(key), "%s", name) >= (int)sizeof(key))
        return source_error(s, "unknown directive '%s'", name), 0;
    n = split_line(value, s->words, w, &why);
    if (n < 0)
        return source_error(s, "%s", why), 0;
    if (n == 0) { /* "name =": an empty value */
        s->words[0] = '\0';
        w[n++] = s->words;
    }
    return directive(s, section, key, (const char *const *)w, (size_t)n) == 0;
}

static int parse_ini(struct source *s)
{
    int rc;

    /* Debian's libinih takes its line limit from these globals (default:
     * 200 bytes on the stack, too short for a 1023-byte path). Setting the
     * same values each time is harmless: config files are read before any
     * thread starts, and nothing else in ringslot uses inih. */
    ini_use_stack = false;
    ini_max_line = INI_LINE_MAX;
    ini_initial_alloc = INI_LINE_MAX;
    ini_allow_realloc = false;
    s->line = 0;
    rc = ini_parse_stream(ini_next_line, s, ini_entry, s);
    if (rc == -2)
        return source_error(s, "out of memory");
    /* inih goes on after a line it cannot read; report the first error. */
    if (rc > 0 && (!s->failed || rc < s->failed_line)) {
        s->line = rc;
        return source_error(s, "syntax error (expected [section] or "
                            "name = value)");
    }
    return s->failed ? -1 : 0;
}

/* ---- files ---------------------------------------------------------------- */

/* The whole stream into *text (NUL-terminated). -1 on a read error, -2 if
 * larger than MAX_FILE. */
static int read_all(FILE *f, char **text, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap), *bigger;

    while (buf != NULL) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n > MAX_FILE) {
            free(buf);
            return -2;
        }
        if (n < cap - 1)
            break;
        bigger = realloc(buf, cap * 2);
        if (bigger == NULL)
            free(buf);
        buf = bigger;
        cap *= 2;
    }
    if (buf == NULL || ferror(f)) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* Skip a UTF-8 byte order mark, which some editors write. */
static size_t bom_length(const char *text)
{
    return strncmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

/* INI if the first line that is not blank or a comment opens a section. */
static bool looks_like_ini(const char *p)
{
    for (;;) {
        while (is_space(*p))
            p++;
        if (*p != '#' && *p != ';')
            return *p == '[';
        p = strchr(p, '\n');
        if (p == NULL)
            return false;
    }
}

static int parse_text(struct source *s)
{
    const char *nul = memchr(s->text, '\0', s->len);
    int rc;

    if (nul != NULL) {
        s->line = 1;
        for (const char *p = s->text; p < nul; p++)
            s->line += *p == '\n';
        return source_error(s, "NUL byte (not a text file?)");
    }
    s->words = malloc(2 * s->len + 2);
    if (s->words == NULL)
        return source_error(s, "out of memory");
    if (looks_like_ini(s->text + bom_length(s->text)))
        rc = parse_ini(s);
    else {
        memset(s->text, ' ', bom_length(s->text));
        rc = parse_rcp(s);
    }
    free(s->words);
    return rc;
}

/* "cannot open ...": at the including line, or on its own at the top. */
static int open_error(struct load *ld, struct source *from, const char *path,
                      const char *why)
{
    if (from != NULL)
        return source_error(from, "cannot read included file '%s': %s",
                            path, why);
    if (ld->err != NULL && ld->errlen > 0)
        snprintf(ld->err, ld->errlen, "Failed to open config file '%s': %s",
                 path, why);
    return -1;
}

/* Record the open file; refuse one that is already being read. */
static int push_file(struct load *ld, FILE *f, const char *path,
                     struct source *from)
{
    struct stat st;

    if (fstat(fileno(f), &st) != 0)
        return open_error(ld, from, path, strerror(errno));
    if (f != stdin && !S_ISREG(st.st_mode))
        return open_error(ld, from, path, "not a regular file");
    for (int i = 0; i < ld->depth; i++)
        if (ld->open[i].dev == st.st_dev && ld->open[i].ino == st.st_ino)
            return source_error(from, "include cycle: '%s' is already "
                                "being read", path);
    ld->open[ld->depth].dev = st.st_dev;
    ld->open[ld->depth].ino = st.st_ino;
    ld->depth++;
    return 0;
}

static int load_path(struct load *ld, const char *path, struct source *from)
{
    bool is_stdin = from == NULL && strcmp(path, "-") == 0;
    struct source s = { .ld = ld, .path = is_stdin ? "stdin" : path };
    FILE *f = is_stdin ? stdin : fopen(path, "re");
    int rc;

    if (f == NULL)
        return open_error(ld, from, path, strerror(errno));
    if (push_file(ld, f, path, from) != 0) {
        if (!is_stdin)
            fclose(f);
        return -1;
    }
    rc = read_all(f, &s.text, &s.len);
    if (!is_stdin)
        fclose(f);
    if (rc != 0)
        rc = open_error(ld, from, path, rc == -2 ? "larger than 4 MB"
                                                 : "read error");
    else
        rc = parse_text(&s);
    free(s.text);
    ld->depth--;
    return rc;
}

int config_load_file(struct config *c, const char *path,
                     char *err, size_t errlen)
{
    struct load ld = { .c = c, .err = err, .errlen = errlen };

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    return load_path(&ld, path, NULL);
}
