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
    bool lease;               /* the lease store (backend TLS), not a proxy */
    void *tls;                /* the stream hook's handle, or NULL */
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

/* Read what fd has into the growing buffer (*buf, *len, *cap), which may
 * not grow past max. Returns recv's result: > 0 bytes read, 0 closed (or
 * the buffer would pass max), < 0 with errno. */
ssize_t consensus_recv_more(struct consensus *c, void *tls, int fd, char **buf, size_t *len,
                            size_t *cap, size_t max);
/* send(2) through the stream hook when tls is set. */
ssize_t consensus_send(struct consensus *c, void *tls, int fd, const void *buf, size_t len);
/* The poll events for `want` on a connection (the stream hook's say). */
short consensus_events(struct consensus *c, void *tls, short want);

/* ------------------------------------------------------------------------ */

#define SCONN_MAX 256
#define SCONN_MAX_IN (4u << 20)
/* Connections that have not authenticated yet: members send AUTH in their
 * first packet, so only strangers stay in this state. They get their own
 * small share of conns[] (the rest stays free for members), a deadline
 * (cport.c: auth_window_ms), and little input. */
#define SCONN_UNAUTH_MAX 32
#define SCONN_UNAUTH_IN 16384 /* one first buffer (consensus_recv_more) */
#define MEMBER_TOMBSTONES 16

/* A member as the leader tracks it (itself excluded). */
struct member_state {
    bool used;
    struct proxy_member info;
    int64_t last_seen;        /* last heartbeat or probe reply */
    uint64_t acked_term, acked_version; /* the map it reported */
    struct rconn probe;
};

struct sconn {
    int fd;
    bool authed;              /* may run commands (AUTH ok, or no password) */
    bool closing;             /* close once the output is written */
    int64_t auth_deadline;    /* until a command ran authenticated: close
                                 then (ms); 0 once it has */
    char *in;
    size_t in_len, in_cap;
    struct resp_buf out;
    size_t out_off;
    struct resp_req_parser parser;
    int poll_index;
    void *tls;                /* the stream hook's handle, or NULL */
};

enum role { ROLE_FOLLOWER, ROLE_LEADER };

struct consensus {
    const struct config *cfg;
    struct consensus_hooks hooks;
    struct proxy_member me;
    char key_leader[128], key_term[128], key_map[128];
    int lease_ms, hb_ms, node_timeout_ms;

    int wake_fd, listen_fd;
    pthread_t thread;
    bool thread_started;
    _Atomic bool stop_req, leave_req, left;

    struct proxy_map *map;          /* the accepted map (own copy) */
    uint64_t max_term_seen, max_version_seen;

    /* lease store */
    struct rconn lease;
    size_t entry_index;             /* next entry point to try */
    bool lease_busy;                /* a lease operation is in flight */
    int64_t next_lease_ms;
    enum role role;
    bool leader_ready;              /* leader: stored map read, leading */
    uint64_t term;                  /* as leader */
    char lease_value[256];          /* as leader: what the key holds */
    int64_t renew_ok_sent_ms;       /* send time of the last good renewal */
    int64_t renew_sent_ms;
    bool leader_known;
    char leader_value[256];         /* last value read */
    char leader_id[PROXY_ID_LEN + 1];
    char prev_leader_id[PROXY_ID_LEN + 1]; /* the leader before our term */
    char leader_host[PROXY_IP_MAX];
    int leader_cport;
    bool released;                  /* leaving leader: lease released */
    bool map_stored_dirty;          /* leader: store the map again */

    /* follower */
    struct rconn to_leader;
    int64_t last_leader_contact_ms;
    bool auth_rejected;             /* the leader refused our password */
    int64_t next_hb_ms;
    bool hb_inflight, getmap_inflight;
    /* --cluster-seeds: asked who leads and for their map while we have no
     * map yet or the lease store does not answer us */
    struct rconn to_seed;
    size_t seed_index;              /* the seed asked next */
    bool seed_inflight;
    int64_t lease_ok_ms;            /* last usable reply from the lease store */

    /* leader */
    struct member_state members[PROXY_MAP_MAX_MEMBERS];
    bool leaving;                   /* graceful leave in progress */
    int64_t leave_started_ms;
    struct { char id[PROXY_ID_LEN + 1]; int64_t until; } tombs[MEMBER_TOMBSTONES];

    struct sconn *conns[SCONN_MAX];
};

/* cport.c: the server side */
int cport_listen(struct consensus *c, char *err, size_t errlen);
void cport_accept(struct consensus *c);
void cport_handle(struct consensus *c, struct sconn *s, short revents);
short cport_events(struct consensus *c, const struct sconn *s);
void cport_close_all(struct consensus *c);
/* Close the connections whose authentication deadline passed. */
void cport_check_deadlines(struct consensus *c, int64_t now);

/* node.c: what cport commands call */
void node_on_heartbeat(struct consensus *c, const struct proxy_member *m, bool leaving,
                       struct resp_buf *out);
void node_accept_map(struct consensus *c, const struct proxy_map *m);
void node_write_members(struct consensus *c, struct resp_buf *out);

#endif
