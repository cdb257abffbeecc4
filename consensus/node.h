/*
 * Private to consensus/: the consensus thread's objects.
 *
 *   struct rconn     a non-blocking outgoing RESP connection (lease store,
 *                    follower → leader, leader → member probes): commands
 *                    are queued with a tag, replies come back in order to
 *                    one callback; a reply late past its deadline closes the
 *                    connection and fails everything pending (v == NULL).
 *   struct sconn     an accepted cport connection (server side).
 *   struct consensus the whole state, owned by the consensus thread except
 *                    the atomics that consensus_leave/stop use.
 */
#ifndef RINGSLOT_CONSENSUS_NODE_H
#define RINGSLOT_CONSENSUS_NODE_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "consensus.h"

#define RCONN_MAX_PENDING 32
#define RCONN_MAX_IN (64u << 20) /* a reply larger than this is an error */

enum rconn_state { RCONN_CLOSED, RCONN_CONNECTING, RCONN_READY };

struct rconn;
/* v is NULL when the command failed (connect error, timeout, closed). */
typedef void (*rconn_reply_fn)(struct consensus *c, struct rconn *rc, int tag,
                               const struct resp_value *v);

struct rconn {
    int fd;
    unsigned gen;             /* bumped by every close */
    enum rconn_state state;
    char host[256];
    int port;
    const char *user, *pass;  /* AUTH sent first when pass is non-empty */
    void *owner;              /* for the callback (a member slot) */
    rconn_reply_fn on_reply;
    int timeout_ms;
    struct resp_buf out;
    size_t out_off;
    char *in;
    size_t in_len, in_cap;
    int tags[RCONN_MAX_PENDING];
    unsigned npend;
    int64_t deadline;         /* of the oldest pending reply */
    int poll_index;           /* in this iteration's pollfd array, or -1 */
};

void rconn_init(struct rconn *rc, rconn_reply_fn fn, void *owner, int timeout_ms);
void rconn_target(struct rconn *rc, const char *host, int port);
/* Queue a command (connects if needed). false when it could not even be
 * queued (connect failed at once, too many pending): the callback was not
 * called. */
bool rconn_send(struct consensus *c, struct rconn *rc, int tag, int argc, const char **argv);
void rconn_close(struct consensus *c, struct rconn *rc);
short rconn_events(const struct rconn *rc);
void rconn_handle(struct consensus *c, struct rconn *rc, short revents, int64_t now);
void rconn_check_timeout(struct consensus *c, struct rconn *rc, int64_t now);
bool rconn_idle(const struct rconn *rc);

int64_t consensus_clock_ms(void);

#endif
