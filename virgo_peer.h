/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client: peers, their connections, and RPCs over them.
 */
#ifndef _VIRGO_PEER_H
#define _VIRGO_PEER_H

#include <linux/completion.h>
#include <linux/in.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <virgo_addr.h>
#include <virgo_wire.h>

/* Expected epoch of a request that belongs to no session (ALLOC, PING). */
#define VIRGO_EPOCH_ANY		0

/* Bytes of a failure-domain label, with its NUL. */
#define VIRGO_PEER_DOMAIN_LEN	16

/* Longest peer spec: "[ipv6]:port@domain", NUL included. */
#define VIRGO_PEER_SPEC_LEN	(VIRGO_ADDR_STRLEN + VIRGO_PEER_DOMAIN_LEN)

/* Bound on a server's max_inflight that the client accepts. */
#define VIRGO_CLIENT_MAX_INFLIGHT	1024U

/* Most connections (queues) a client opens to one peer. */
#define VIRGO_QUEUES_MAX	16U

enum virgo_peer_state {
	VIRGO_PEER_IDLE,	/* never connected, or closed cleanly */
	VIRGO_PEER_UP,		/* connected and greeted */
	VIRGO_PEER_DOWN,	/* connection lost or refused; backing off */
};

struct virgo_peer_set;
struct virgo_peer;

/**
 * struct virgo_queue - one more connection to a peer (capability QUEUES)
 * @peer: its peer (no reference: the peer outlives its queues)
 * @index: 1.. (0 names the peer's own connection, @peer->sock)
 * @lock: serialises sending on @sock, and its setup and teardown;
 *	protects @sock, @epoch and @up.  Taken after the peer's @conn_lock,
 *	never before.
 * @sock: the connection, or NULL
 * @epoch: the peer epoch (server session) the connection joined
 * @up: joined and receiving (READ_ONCE() without @lock, for a hint)
 * @io_work: receives its replies (vp_queue_io()), queued by the socket's
 *	callbacks on the set's @rxwq: no thread per connection
 * @rx_hdr: the reply header being received (only @io_work)
 * @rx_have: bytes of @rx_hdr received so far (only @io_work)
 * @saved_data_ready: the socket's callback before we took it over
 * @saved_state_change: likewise
 * @sent: requests sent on it
 *
 * The peer's own connection (its receive thread, its epoch, RESUME) is
 * the session; a queue JOINs that session (protocol.md 6.2).  A queue
 * that breaks fails only its own requests with VIRGO_ERR_CONN_LOST (they
 * are sent again, on any queue) and is opened again; when the peer's own
 * connection breaks, every queue is closed with it.
 */
struct virgo_queue {
	struct virgo_peer *peer;
	unsigned int index;
	/* Serialises sends, setup and teardown; see above. */
	struct mutex lock;
	struct socket *sock;
	u32 epoch;
	bool up;
	struct work_struct io_work;
	u8 rx_hdr[VIRGO_WIRE_HDR_LEN];
	u32 rx_have;
	void (*saved_data_ready)(struct sock *sk);
	void (*saved_state_change)(struct sock *sk);
	atomic64_t sent;
};

/**
 * struct virgo_peer - one cloud node
 * @id: id in the peer set, never 0, never reused while the set lives
 * @addr: its address, IPv4 or IPv6
 * @name: "a.b.c.d:port" or "[ipv6]:port" (virgo_addr_format())
 * @domain: failure-domain label ("rack1"), or "" for none: two replicas
 *	of a chunk go to distinct domains when there are enough
 * @ref: references; the set holds one while the peer is listed
 * @set: the set it belongs to
 * @conn_lock: serialises connecting, disconnecting and sending; protects
 *	@sock, @rx, @epoch, @removed, @lim, @max_inflight, @discard and the
 *	resume state (@resumable, @resume_id, @resume_token)
 * @sock: the connection, or NULL
 * @rx: the receive thread of @sock
 * @epoch: incremented by every successful connect that does not resume
 *	the last session, by a refused reconnect (no server, no session),
 *	and by removal; never VIRGO_EPOCH_ANY once
 *	connected; handles are valid only in the epoch (the server session)
 *	that issued them, and a request built for one epoch is sent in that
 *	epoch or not at all (checked under @conn_lock with the tag)
 * @resumable: the server granted RESUME to the current (or last) session
 * @discard: the server granted DISCARD on the current (or last)
 *	connection; READ_ONCE() without @conn_lock, for a hint only:
 *	virgo_rpc_send() checks it under the lock
 * @resume_id: that session's resume id
 * @resume_token: the token of its latest connection
 * @resumed: sessions taken over after a lost connection (RESUME OK)
 * @sessions_lost: lost connections whose session could not be resumed
 * @removed: taken out of its set: it never connects again (written under
 *	both the set's lock and @conn_lock; read under either)
 * @draining: an administrator asked for its chunks to move elsewhere; no
 *	new chunk goes there (WRITE_ONCE/READ_ONCE)
 * @down_since: jiffies its connection was lost or first failed, 0 while
 *	it is up (WRITE_ONCE/READ_ONCE); repair gives its replicas up after
 *	peer_dead_ms
 * @tried: a connection attempt finished (under @conn_lock); placement waits
 *	for a peer's first attempt, never for a later one
 * @connect_work: connects in the background (virgo_peer_kick()); holds a
 *	reference while queued
 * @state: enum virgo_peer_state (READ_ONCE; written under @conn_lock or by
 *	the receive thread when the connection breaks)
 * @suspect: 1 once a request to it timed out, until a reply arrives or a
 *	new connection is made; placement skips a suspect peer, while its
 *	connection (and the chunks of its session) is kept
 * @lim: the server's limits, from HELLO
 * @max_inflight: requests we may have outstanding on @sock
 * @pending: tag -> struct virgo_rpc of requests sent, not yet answered,
 *	on every queue; its xa_lock also protects the claimed/abandoned
 *	flags of its rpcs
 * @next_tag: tag of the last request sent (tags are unique per peer,
 *	so per connection)
 * @inflight: entries in @pending
 * @slot_wq: senders waiting for @inflight to drop below @max_inflight
 * @free: bytes the server said it can still lend, less what we took since
 * @capacity: bytes the server lends in total
 * @placed: bytes of our chunks on this peer
 * @queues: @nr_queues more connections (the set's queues - 1), or NULL
 * @nr_queues: entries in @queues
 * @queues_ok: the server granted QUEUES on the current connection (under
 *	@conn_lock)
 * @queues_work: opens and joins the queues that are not up; holds a
 *	reference while queued
 * @next_queue: round-robin position of the next request
 * @rtt_ns: round trip of the last PING, in ns
 * @next_try: jiffies before which no reconnect is tried
 * @backoff_ms: the current reconnect backoff
 * @node: entry in the set's list
 * @rcu: frees the peer after lockless lookups are done with it
 */
struct virgo_peer {
	u32 id;
	union virgo_addr addr;
	char name[VIRGO_ADDR_STRLEN];
	char domain[VIRGO_PEER_DOMAIN_LEN];
	struct kref ref;
	struct virgo_peer_set *set;

	/* Serialises connect, disconnect and send; see above. */
	struct mutex conn_lock;
	struct socket *sock;
	struct task_struct *rx;
	u32 epoch;
	bool resumable;
	bool discard;
	u64 resume_id;
	u8 resume_token[VIRGO_WIRE_TOKEN_LEN];
	atomic_t resumed;
	atomic_t sessions_lost;
	bool removed;
	bool draining;
	unsigned long down_since;
	bool tried;
	struct delayed_work connect_work;
	int state;
	atomic_t suspect;
	struct virgo_wire_limits lim;
	u32 max_inflight;

	struct xarray pending;
	atomic64_t next_tag;
	atomic_t inflight;
	wait_queue_head_t slot_wq;

	atomic64_t free;
	u64 capacity;
	atomic64_t placed;
	struct virgo_queue *queues;
	unsigned int nr_queues;
	bool queues_ok;
	struct delayed_work queues_work;
	atomic_t next_queue;
	atomic64_t rtt_ns;
	unsigned long next_try;
	unsigned int backoff_ms;

	struct list_head node;
	struct rcu_head rcu;
};

/**
 * struct virgo_peer_set - the peers of one client
 * @lock: protects @list, @nr and @next_id, and the peers' listing
 * @list: the peers, in the order added
 * @nr: entries in @list
 * @ids: id -> peer, for lookups without @lock (RCU)
 * @next_id: id of the next peer added
 * @psk: the pre-shared key, @psk_len bytes (none when 0)
 * @psk_len: bytes in @psk
 * @hmac: hmac(sha256) keyed with @psk, or NULL
 * @own: the limits this client receives with; a peer's limits are the
 *	field-by-field minimum of these and the server's
 * @connect_timeout_ms: bound on connect + HELLO + AUTH
 * @rpc_timeout_ms: bound on one request's round trip
 * @wq: runs orphan FREEs
 * @connecting: runs background connects, a bounded number at once
 * @connect_wq: woken after every connection attempt
 * @memalloc: the peers' sockets have SOCK_MEMALLOC (a swap device writes
 *	through them); written under @lock, read under a peer's @conn_lock
 * @queues: connections opened to each peer added from now on (1: one,
 *	as without capability QUEUES), 1..VIRGO_QUEUES_MAX
 * @rxwq: runs the queues' receive work (memory reclaim may wait on it)
 */
struct virgo_peer_set {
	/* Protects list, nr and next_id. */
	struct mutex lock;
	struct list_head list;
	unsigned int nr;
	struct xarray ids;
	u32 next_id;
	u8 psk[64];
	size_t psk_len;
	struct crypto_shash *hmac;
	struct virgo_wire_limits own;
	unsigned int connect_timeout_ms;
	unsigned int rpc_timeout_ms;
	struct workqueue_struct *wq;
	struct workqueue_struct *connecting;
	wait_queue_head_t connect_wq;
	bool memalloc;
	unsigned int queues;
	struct workqueue_struct *rxwq;
};

/**
 * struct virgo_rpc - one request and, once answered, its reply
 * @peer: where it went (a reference is held)
 * @op: VIRGO_OP_*
 * @tag: its tag on @peer
 * @epoch: the peer epoch it was sent in
 * @rbuf: where the reply payload goes (NULL: no payload expected)
 * @rlen: exact reply payload length expected on success
 * @queue: the connection it went out on: 0 the peer's own, else the
 *	index of one of its queues
 * @count: batch count of an ALLOC/FREE/DISCARD (a FREE or DISCARD reply
 *	counts at most this)
 * @err: the result: 0, a negative errno, or the reply's status mapped
 * @claimed: the receive thread took it; only it completes it now
 * @abandoned: its sender stopped waiting; the receive path frees it
 * @replicated: a WRITE that another replica of its chunk takes too: to a
 *	suspect peer it is sent only if the socket has room for its start
 * @deadline: jiffies by which the caller wants it sent, or 0: bounds the
 *	wait for an in-flight slot below rpc_timeout_ms
 * @sent_ns: when it was sent (for RTT)
 * @done: completed when @err is final
 * @data: inline reply buffer (ALLOC handles, FREE count, PING echo)
 */
struct virgo_rpc {
	struct virgo_peer *peer;
	u8 op;
	u64 tag;
	u32 epoch;
	void *rbuf;
	u32 rlen;
	u32 queue;
	u32 count;
	int err;
	bool claimed;
	bool abandoned;
	bool replicated;
	unsigned long deadline;
	u64 sent_ns;
	struct completion done;
	u8 data[] __aligned(8);
};

int virgo_peers_init(struct virgo_peer_set *set, const u8 *psk, size_t psk_len,
		     u32 max_chunk, unsigned int connect_timeout_ms,
		     unsigned int rpc_timeout_ms);
void virgo_peers_destroy(struct virgo_peer_set *set);
int virgo_peer_add(struct virgo_peer_set *set, const char *spec);
int virgo_peer_del(struct virgo_peer_set *set, const char *spec);
int virgo_peers_add_list(struct virgo_peer_set *set, const char *list);
struct virgo_peer *virgo_peer_get(struct virgo_peer_set *set, u32 id);
void virgo_peer_put(struct virgo_peer *peer);
struct virgo_peer **virgo_peers_snapshot(struct virgo_peer_set *set,
					 unsigned int *nr);
void virgo_peers_snapshot_put(struct virgo_peer **peers, unsigned int nr);
int virgo_peer_connect(struct virgo_peer *peer);
void virgo_peer_kick(struct virgo_peer *peer);
bool virgo_peer_usable(struct virgo_peer *peer);
int virgo_peer_wait_session(struct virgo_peer *peer, u32 epoch,
			    unsigned long deadline);
int virgo_peers_wait_tried(struct virgo_peer_set *set,
			   struct virgo_peer **peers, unsigned int nr);
const char *virgo_peer_state_name(int state);
void virgo_peers_set_memalloc(struct virgo_peer_set *set, bool on);

struct virgo_rpc *virgo_rpc_alloc(u8 op, void *rbuf, u32 rlen,
				  u32 inline_len, gfp_t gfp);
void virgo_rpc_free(struct virgo_rpc *rpc);
int virgo_rpc_send(struct virgo_peer *peer, u32 epoch, struct virgo_rpc *rpc,
		   const void *payload, u32 len, const void *data,
		   u32 data_len);
int virgo_rpc_wait(struct virgo_rpc *rpc, unsigned long deadline);

/**
 * virgo_rpc_gone() - did virgo_rpc_wait() give the request to the peer
 * @err: what virgo_rpc_wait() returned
 *
 * Return: true when the caller stopped waiting (timeout, fatal signal):
 * the request belongs to the peer now and must not be touched or freed.
 */
static inline bool virgo_rpc_gone(int err)
{
	return err == -ETIMEDOUT || err == -EINTR;
}

/*
 * -ECONNRESET from virgo_rpc_send() or virgo_rpc_wait(): the connection
 * broke (or was down) in the request's epoch.  The session may still be
 * resumed: virgo_peer_wait_session() tells, then the request can be sent
 * again.  Callers map it to -EIO for their own callers.
 */
#define VIRGO_ERR_CONN_LOST	(-ECONNRESET)

void virgo_rpc_forget(struct virgo_rpc *rpc);
int virgo_peer_ping(struct virgo_peer *peer);
int virgo_sock_sendv(struct socket *sock, struct kvec *iov, int nr,
		     size_t len, long timeout);
int virgo_rpc_call(struct virgo_peer *peer, u32 epoch, u8 op,
		   const void *payload, u32 len, const void *data, u32 data_len,
		   void *rbuf, u32 rlen, u32 *out_epoch);
int virgo_peer_drain(struct virgo_peer_set *set, const char *spec);
/**
 * virgo_peer_credit() - chunks of ours on a peer were freed
 * @peer: the peer
 * @epoch: the epoch (server session) they belonged to
 * @bytes: their bytes
 *
 * They are no longer placed there; they are lendable again only if they
 * were in the current session: an older session's chunks were already
 * gone when the new connection's HELLO reported the server's free bytes.
 */
static inline void virgo_peer_credit(struct virgo_peer *peer, u32 epoch,
				     u64 bytes)
{
	atomic64_sub(bytes, &peer->placed);
	if (epoch == READ_ONCE(peer->epoch))
		atomic64_add(bytes, &peer->free);
}

void virgo_peer_free_handles(struct virgo_peer *peer, u32 epoch,
			     const u64 *handles, u32 count);

#if IS_ENABLED(CONFIG_KUNIT)
/*
 * Tests only: called by virgo_rpc_send() before it takes @conn_lock, and
 * by the receive thread for each reply header before it finds the request.
 */
extern void (*virgo_peer_test_pre_send)(struct virgo_peer *peer);
extern void (*virgo_peer_test_rx)(struct virgo_peer *peer, u8 opcode);
#endif

#endif /* _VIRGO_PEER_H */
