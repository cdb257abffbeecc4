/*
 * resp — the RESP protocol, pure code (no I/O, no globals, no threads).
 *
 * Three things live here:
 *
 *   1. The request parser: cuts one client command at a time out of a byte
 *      range, incrementally (any byte split works: feed it more bytes and it
 *      resumes where it stopped), multibulk and inline, with Redis's own
 *      protocol error texts. Arguments are (offset, length) slices relative
 *      to the first byte of the command, so the caller may move the bytes of
 *      an incomplete command (e.g. from a kernel ring buffer into a
 *      per-client buffer) between calls, as long as they stay contiguous
 *      and in the same order.
 *
 *   2. The reply parser: finds where one backend reply ends, for every RESP2
 *      and RESP3 type at any nesting depth, without recursion (it keeps a
 *      single count of elements still owed, so a 10^6-deep reply costs no
 *      stack). It is incremental too.
 *
 *   3. A small tree reader (resp_value) for the control thread and the
 *      tests, which need to look inside replies such as CLUSTER SLOTS and
 *      COMMAND; and writers for the replies the proxy builds itself.
 *
 * Every incremental function returns one of enum resp_result: ok, need more
 * bytes, or error. Never one code for two meanings.
 */
#ifndef RINGSLOT_RESP_H
#define RINGSLOT_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum resp_result {
    RESP_OK = 0,    /* one complete item was cut */
    RESP_NEED_MORE, /* the bytes so far are a valid prefix; call again with more */
    RESP_ERROR,     /* protocol error; the text is in the parser's `error` */
};

/* Redis's defaults (proto-max-bulk-len, client-query-buffer-limit). */
#define RESP_DEFAULT_MAX_BULK (512ll * 1024 * 1024)
#define RESP_DEFAULT_MAX_QUERY (1024ll * 1024 * 1024)
/* Redis's PROTO_INLINE_MAX_SIZE: longest inline command and longest
 * "*<count>\r\n" / "$<len>\r\n" line. */
#define RESP_INLINE_MAX 65536

/* ------------------------------------------------------------------------ */
/* Request parser                                                           */

struct resp_slice {
    uint32_t off; /* from the first byte of the command */
    uint32_t len;
};

enum resp_req_state {
    RESP_REQ_START,      /* nothing of this command seen yet */
    RESP_REQ_INLINE,     /* scanning an inline command for '\n' */
    RESP_REQ_COUNT,      /* inside "*<count>\r\n" */
    RESP_REQ_BULK_HEAD,  /* expecting "$<len>\r\n" of the next argument */
    RESP_REQ_BULK_DATA,  /* inside an argument's bytes (+ "\r\n") */
};

struct resp_req_parser {
    /* limits, set by resp_req_init (callers may change them between commands) */
    long long max_bulk;   /* proto-max-bulk-len */
    long long max_query;  /* client-query-buffer-limit: longest command */

    enum resp_req_state state;
    size_t pos;           /* bytes of the current command already examined */
    long long remaining;  /* arguments still to come (multibulk) */
    long long bulk_len;   /* length of the argument being read */
    size_t line_start;    /* COUNT / BULK_HEAD: where the "*<count>" or
                             "$<len>" line begins (pos is where the scan
                             for its '\r' resumes) */

    /* The result, valid after RESP_OK until resp_req_next(). */
    bool is_inline;       /* argv slices index the decoded buffer below */
    size_t len;           /* bytes the command occupies in the input */
    size_t argc;
    struct resp_slice *argv; /* owned; grows as arguments arrive, never from
                                an untrusted count before the bytes exist */
    size_t argv_cap;
    char *inline_buf;     /* owned; inline commands are decoded (quotes,
                             escapes) into this buffer, argv indexes it */
    size_t inline_cap;

    const char *error;    /* static Redis error text after RESP_ERROR,
                             without the leading '-' and trailing CRLF,
                             e.g. "ERR Protocol error: invalid bulk length" */
    char error_buf[48];   /* backing for texts that carry a character */
};

void resp_req_init(struct resp_req_parser *p);
/* After RESP_NEED_MORE: how many bytes, from its start, the command needs
 * at least as far as the parser has read it — through the end of the
 * argument whose bytes it is reading — so that a caller gathering a large
 * command can size its buffer once instead of growing it. */
size_t resp_req_need(const struct resp_req_parser *p);
void resp_req_free(struct resp_req_parser *p);

/*
 * Parse the command that starts at buf[0]; len is every byte available from
 * there. On RESP_OK the command occupies p->len bytes and p->argc/p->argv
 * describe it (an empty command such as "\r\n" or "*0\r\n" is consumed and
 * gives argc == 0: the caller skips it, as Redis does). On RESP_NEED_MORE call
 * again later with the same start and more bytes. After RESP_OK or before
 * parsing an unrelated command, call resp_req_next().
 */
enum resp_result resp_parse_request(struct resp_req_parser *p,
                                    const char *buf, size_t len);
/* Forget the last command; keeps the argv/inline allocations for reuse. */
void resp_req_next(struct resp_req_parser *p);

/* Pointer to argument i: into buf (the same buf passed to the parser) for
 * multibulk, into p->inline_buf for inline commands. */
static inline const char *resp_req_arg(const struct resp_req_parser *p,
                                       const char *buf, size_t i)
{
    return (p->is_inline ? p->inline_buf : buf) + p->argv[i].off;
}

/* ------------------------------------------------------------------------ */
/* Reply parser (boundaries only)                                           */

enum resp_reply_state {
    RESP_REPLY_TYPE,     /* expecting a type byte */
    RESP_REPLY_LINE,     /* inside a CRLF-terminated header or simple line */
    RESP_REPLY_BLOB,     /* inside a bulk/verbatim/blob-error payload (+CRLF) */
};

struct resp_reply_parser {
    enum resp_reply_state state;
    size_t pos;          /* bytes of the current reply examined */
    char type;           /* type byte of the line being read */
    long long blob_left; /* payload bytes + 2 (CRLF) still to skip */
    uint64_t owed;       /* elements still owed before the reply is complete */
    size_t line_start;   /* LINE: offset of the line's type byte (pos is
                            where the scan for its CRLF resumes) */

    /* The result, valid after RESP_OK: */
    size_t len;          /* bytes of the whole reply (attributes included) */
    char first;          /* type byte of the top-level reply proper, after any
                            attribute: '+', '-', ':', '$', '*', '%', '~',
                            '>', '_', '#', ',', '(', '!', '=' */
    size_t first_off;    /* offset of that byte (0 unless an attribute came
                            first) */
    const char *error;   /* after RESP_ERROR: what was wrong (static text) */
};

void resp_reply_init(struct resp_reply_parser *p);
/* Find the end of the reply that starts at buf[0]. Same contract as the
 * request parser: RESP_NEED_MORE → call again with the same start and more
 * bytes. Streamed types ("$?", "*?") are not sent by Redis and are an error. */
enum resp_result resp_parse_reply(struct resp_reply_parser *p,
                                  const char *buf, size_t len);
void resp_reply_next(struct resp_reply_parser *p);

/* ------------------------------------------------------------------------ */
/* Numbers                                                                  */

/* Redis's string2ll(): true iff s[0..len) is exactly a decimal long long
 * ("0", or an optional '-' then 1-9 then digits; no '+', no leading zeros,
 * no "-0", no spaces, at most 20 characters). */
bool resp_string2ll(const char *s, size_t len, long long *out);

/* ------------------------------------------------------------------------ */
/* Tree reader: for the control thread and tests, not the request path      */

enum resp_type {
    RESP_T_SIMPLE = '+', RESP_T_ERROR = '-', RESP_T_INTEGER = ':',
    RESP_T_BULK = '$', RESP_T_ARRAY = '*', RESP_T_NULL = '_',
    RESP_T_BOOL = '#', RESP_T_DOUBLE = ',', RESP_T_BIGNUM = '(',
    RESP_T_BLOB_ERROR = '!', RESP_T_VERBATIM = '=', RESP_T_MAP = '%',
    RESP_T_SET = '~', RESP_T_PUSH = '>', RESP_T_ATTRIBUTE = '|',
};

struct resp_value {
    enum resp_type type;
    bool is_null;        /* "$-1" / "*-1" in RESP2, or '_' */
    long long integer;   /* ':' value, '#' as 0/1 */
    const char *str;     /* points into the input buffer (not owned) */
    size_t len;          /* string length */
    size_t count;        /* elements (a map's is 2 × pairs) */
    struct resp_value *elems; /* owned array of count values */
};

/*
 * Read one complete reply from buf into *out (attributes are skipped). The
 * strings point into buf, which must outlive *out. Returns RESP_OK with
 * *used set, RESP_NEED_MORE, or RESP_ERROR. No recursion.
 */
enum resp_result resp_read_value(const char *buf, size_t len,
                                 struct resp_value *out, size_t *used);
void resp_value_free(struct resp_value *v);

/* ------------------------------------------------------------------------ */
/* Writers: append to a caller-owned growable buffer                        */

struct resp_buf {
    char *data;
    size_t len;
    size_t cap;
};

void resp_buf_free(struct resp_buf *b);
void resp_buf_append(struct resp_buf *b, const void *data, size_t len);
void resp_write_simple(struct resp_buf *b, const char *s);       /* +s\r\n */
void resp_write_error(struct resp_buf *b, const char *s);        /* -s\r\n */
void resp_write_integer(struct resp_buf *b, long long v);        /* :v\r\n */
void resp_write_bulk(struct resp_buf *b, const void *s, size_t len);
void resp_write_null(struct resp_buf *b, int proto);     /* $-1 or _ */
void resp_write_array_head(struct resp_buf *b, long long n); /* *n\r\n */
void resp_write_push_head(struct resp_buf *b, int proto, long long n); /* >n or *n */
void resp_write_map_head(struct resp_buf *b, int proto, long long pairs);
/* A whole command as a multibulk array. */
void resp_write_command(struct resp_buf *b, int argc, const char *const *argv,
                        const size_t *lens);

#endif
