/*
 * Private to core/: pub/sub through the proxy (pubsub.c).
 *
 *   - the commands: (P)SUBSCRIBE, SSUBSCRIBE, (P)UNSUBSCRIBE, SUNSUBSCRIBE
 *     and PUBLISH (sent to the pub/sub home node, where every subscription
 *     made through the proxy lives, so its count is Redis's);
 *   - the client's pub/sub state (enum client_pubsub): which commands it
 *     may run (RESP2 only: Redis 7 lets RESP3 clients run any), and which
 *     must wait until the confirmations in flight settle it;
 *   - the reply accounting of subscriber links (link.c): a command there is
 *     answered by one confirmation per channel, messages come in between.
 */
#ifndef RINGSLOT_CORE_PUBSUB_H
#define RINGSLOT_CORE_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>

struct client;
struct cluster_topology;
struct link;
struct request;
struct resp_buf;
struct worker;
struct sub_counts;

/* Commands (commands.c's table). */
void pubsub_cmd_subscribe(struct client *c, size_t argc);   /* and PSUBSCRIBE */
void pubsub_cmd_ssubscribe(struct client *c, size_t argc);
void pubsub_cmd_unsubscribe(struct client *c, size_t argc); /* and PUNSUBSCRIBE */
void pubsub_cmd_sunsubscribe(struct client *c, size_t argc);
void pubsub_cmd_publish(struct client *c, size_t argc);

/* Is w->args a (P|S)SUBSCRIBE or (P|S)UNSUBSCRIBE? */
bool pubsub_is_subscribe_command(const struct worker *w);
/* What c is subscribed to (CLIENT LIST's sub=, psub=, ssub=). */
struct sub_counts pubsub_client_counts(const struct client *c);

/* What dispatch does with the command in w->args, given c's state. */
enum pubsub_gate {
    PUBSUB_GO,     /* run it */
    PUBSUB_WAIT,   /* the state is changing: parse it again once settled */
    PUBSUB_REFUSE, /* RESP2 and subscribed: answered with Redis's error */
};
enum pubsub_gate pubsub_gate(struct client *c);
/* The refusal, naming the command as Redis does (lower case,
 * "container|subcommand"). */
void pubsub_refuse(struct client *c, const char *name);

/* Subscriber links (link.c). A published message ("message", "pmessage",
 * "smessage") rather than an answer to the link's FIFO head? */
bool pubsub_is_message(const char *data, size_t len);
/* The reply `data` answers r, the head of subscriber link l (its counts
 * are updated): true if it is r's last. */
bool pubsub_reply_is_last(struct link *l, struct request *r, const char *data, size_t len,
                          char first);
/* A shard confirmation carries its node's count; the client is told its
 * total (Redis's count, 0 only once it has no shard channel left, which
 * clients rely on): true if `data` was rewritten so into `out`. Call it
 * after pubsub_reply_is_last, which counted this confirmation of r. */
bool pubsub_client_count(const struct link *l, const struct request *r, const char *data,
                         size_t len, struct resp_buf *out);
/* The worker loaded a new topology: subscribers whose links are no longer
 * where their subscriptions belong are closed, to start over. */
void pubsub_topology_changed(struct worker *w);
/* The slot whose master is the pub/sub home (PUBLISH and SUBSCRIBE go
 * there). */
int pubsub_home_slot(const struct cluster_topology *t);
/* A subscriber link of c has nothing in flight any more: once none has,
 * links left without subscriptions go back and c's state settles. */
void pubsub_settle(struct client *c);

#endif
