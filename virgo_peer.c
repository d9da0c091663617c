// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: peers, their connections, and RPCs over them.
 *
 * Each peer has at most one connection (HELLO, then AUTH when the server
 * asks for it), kept for as long as it works.  Connecting happens in the
 * background, never inside a caller's malloc: a peer is connected when it
 * is added, and reconnected when its connection breaks, with an
 * exponential backoff (100 ms .. 30 s) while that fails.
 * Many requests are in flight on it at once: a sender takes an in-flight
 * slot, files its request under a fresh tag in @pending and writes the
 * frame under @conn_lock; the peer's receive thread reads replies in
 * whatever order they come, finds each request by its tag and completes
 * it, receiving READ data straight into the caller's buffer.
 *
 * A request whose caller stops waiting (timeout) is abandoned, not
 * forgotten: it stays in @pending and the receive thread disposes of the
 * late reply, freeing the chunks of an ALLOC nobody wants any more.
 *
 * A broken connection fails every pending request with -ECONNRESET and
 * marks the peer down; the background connect makes a new one and, when
 * the server granted RESUME (protocol.md 6.1), takes the old session over
 * on it: same handles, same epoch, and the failed requests can be sent
 * again (virgo_peer_wait_session()).  A session that cannot be resumed is
 * gone, and a new session has new handles, so each session has an epoch
 * and handles from an older epoch are dead.  A
 * request that names handles carries the epoch they belong to, and
 * virgo_rpc_send() compares it with the connection's under @conn_lock,
 * where the tag is assigned and the frame written: a request built for
 * one session is never sent into another.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <linux/ctype.h>
#include <linux/inet.h>
#include <linux/kthread.h>
#include <linux/net.h>
#include <linux/random.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/tcp.h>
#include <net/sock.h>

#include <virgo_kvec.h>

#include "virgo_peer.h"
#include "virgo_trace.h"

/* Least time unacknowledged data may wait before TCP gives a peer up. */
#define VP_DEAD_MS		30000U

/* Connects in flight at once, per peer set. */
#define VP_CONNECTS_MAX		16

#define VIRGO_BACKOFF_MIN_MS	100
#define VIRGO_BACKOFF_MAX_MS	30000

static const char *const virgo_peer_state_names[] = {
	[VIRGO_PEER_IDLE] = "idle",
	[VIRGO_PEER_UP] = "up",
	[VIRGO_PEER_DOWN] = "down",
};

/**
 * virgo_peer_state_name() - printable name of a peer state
 * @state: enum virgo_peer_state
 *
 * Return: a static string.
 */
const char *virgo_peer_state_name(int state)
{
	if (state < 0 || state >= ARRAY_SIZE(virgo_peer_state_names))
		return "?";
	return virgo_peer_state_names[state];
}

static void vp_release(struct kref *ref);

/* ---- socket helpers -------------------------------------------------- */

/*
 * Send all of @iov by jiffies @end, with @flags (MSG_MORE: the frame goes
 * on after it): see virgo_sock_sendv().  @started (if not NULL) is set
 * once a byte went out: an error before that left the stream whole.
 */
/*
 * A send found the socket full with a signal pending that is not fatal (a
 * user process's timer, SIGCHLD...): the socket does not wait with it
 * pending (-EINTR), and a frame must not end half-sent for a signal the
 * task handles later.  Wait for room here, uninterruptibly, a little at a
 * time; true when the send should go on.
 */
static bool vp_send_interrupted(int ret)
{
	if ((ret != -EINTR && ret != -ERESTARTSYS) ||
	    fatal_signal_pending(current))
		return false;
	usleep_range(100, 300);
	return true;
}

/* What a failed kernel_sendmsg()/kernel_sendpage() means to a sender. */
static int vp_send_errno(int ret)
{
	if (ret == -EAGAIN)
		return -ETIMEDOUT;	/* the send timeout passed */
	if (ret == -ERESTARTSYS)
		return -EINTR;		/* a fatal signal */
	return ret ? ret : -EPIPE;
}

/* What a send past its round's end has to finish a frame it could start. */
#define VP_LATE_SEND_MS		250

/*
 * Send @len bytes of @iov by jiffies @end.  With @nowait, a socket with
 * no room for the first byte is -ETIMEDOUT at once (nothing sent); once a
 * byte is out, the frame is completed as any other.
 */
static int vp_sendv_until(struct socket *sock, struct kvec *iov, int nr,
			  size_t len, unsigned long end, int flags,
			  bool *started, bool nowait)
{
	unsigned int noreclaim = memalloc_noreclaim_save();
	int ret = 0;

	while (len) {
		struct msghdr msg = { .msg_flags = MSG_NOSIGNAL | flags };
		long left = (long)(end - jiffies);

		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		if (nowait) {
			left = 0;	/* -EAGAIN if the socket is full */
			nowait = false;
		}
		WRITE_ONCE(sock->sk->sk_sndtimeo, left);
		ret = kernel_sendmsg(sock, &msg, iov, nr, len);
		if (ret <= 0) {
			if (vp_send_interrupted(ret))
				continue;
			ret = vp_send_errno(ret);
			break;
		}
		if (started)
			*started = true;
		len -= ret;
		virgo_kvec_advance(&iov, &nr, ret);
		ret = 0;
	}
	memalloc_noreclaim_restore(noreclaim);
	return ret;
}

/**
 * virgo_sock_sendv() - send all of a kvec array within a time limit
 * @sock: a connected stream socket
 * @iov: the bytes (its entries are advanced past what was sent: the
 *	caller's array is not reusable afterwards)
 * @nr: entries in @iov
 * @len: bytes in @iov
 * @timeout: jiffies the whole send may take (> 0)
 *
 * A send that copied part of the bytes before the socket's send timeout
 * returns that part, and the next one would wait a full timeout again: a
 * peer that takes a few KiB every so often, or a dead one whose window
 * was half open, would stretch one send to several timeouts.  So the
 * timeout of each kernel_sendmsg() is what is left of @timeout.
 *
 * Return: 0 when every byte is queued, -ETIMEDOUT when @timeout passed
 * first (part of the bytes may have gone out: the stream is broken), or
 * another negative errno.
 */
int virgo_sock_sendv(struct socket *sock, struct kvec *iov, int nr,
		     size_t len, long timeout)
{
	return vp_sendv_until(sock, iov, nr, len, jiffies + timeout, 0, NULL,
			      false);
}

/* WRITE data of at least this many bytes goes by page reference. */
#define VP_ZEROCOPY_MIN		PAGE_SIZE

/*
 * The page of @p if it may go to the socket by reference: page-backed
 * memory (a vmalloc or vmap area, the direct map) that is not slab
 * (sendpage_ok()); NULL for what must be copied (kmalloc'd buffers:
 * kernel_sendpage() on a slab page is a bug).
 */
static struct page *vp_zerocopy_page(const void *p)
{
	struct page *page;

	if (is_vmalloc_addr(p))
		page = vmalloc_to_page(p);
	else if (virt_addr_valid(p))
		page = virt_to_page(p);
	else
		return NULL;
	return page && sendpage_ok(page) ? page : NULL;
}

/*
 * Send @len bytes of WRITE data from @data, the last part of a frame, by
 * jiffies @end: its page-backed pages by reference (kernel_sendpage(), as
 * nvme-tcp sends bio pages), the rest copied.  The socket holds a
 * reference to every page it may still send, so a caller that frees its
 * buffer early (a killed or timed-out call) frees nothing the stack still
 * reads; the bytes the server stores are then those of the buffer when
 * sent, and the call has failed anyway.  Returns as vp_sendv_until().
 */
static int vp_send_data(struct socket *sock, const u8 *data, size_t len,
			unsigned long end)
{
	unsigned int noreclaim = memalloc_noreclaim_save();
	int ret = 0;

	while (len) {
		size_t n = min_t(size_t, len, PAGE_SIZE - offset_in_page(data));
		struct page *page = vp_zerocopy_page(data);
		long left = (long)(end - jiffies);
		int flags = MSG_NOSIGNAL;

		if (left <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		WRITE_ONCE(sock->sk->sk_sndtimeo, left);
		if (page) {
			if (n < len)
				flags |= MSG_MORE | MSG_SENDPAGE_NOTLAST;
			ret = kernel_sendpage(sock, page, offset_in_page(data),
					      n, flags);
		} else {
			struct msghdr msg = { .msg_flags = flags };
			struct kvec iov = { .iov_base = (void *)data };

			/* A run of memory to copy: in one call. */
			while (n < len && !vp_zerocopy_page(data + n))
				n += min_t(size_t, len - n, PAGE_SIZE);
			iov.iov_len = n;
			ret = kernel_sendmsg(sock, &msg, &iov, 1, n);
		}
		if (ret <= 0) {
			if (vp_send_interrupted(ret))
				continue;
			ret = vp_send_errno(ret);
			break;
		}
		data += ret;
		len -= ret;
		ret = 0;
	}
	memalloc_noreclaim_restore(noreclaim);
	return ret;
}

/* Receive exactly @len bytes (@buf NULL: discard them). */
static int __vp_recv(struct socket *sock, void *buf, size_t len)
{
	u8 scratch[256];

	while (len) {
		size_t n = buf ? len : min(len, sizeof(scratch));
		struct kvec iov = { .iov_base = buf ? buf : scratch,
				    .iov_len = n };
		struct msghdr msg = {};
		int ret = kernel_recvmsg(sock, &msg, &iov, 1, n, MSG_WAITALL);

		if (ret == 0)
			return -ECONNRESET;
		if (ret == -EAGAIN)
			return -ETIMEDOUT;
		if (ret < 0)
			return ret;
		if (buf)
			buf += ret;
		len -= ret;
	}
	return 0;
}

/*
 * __vp_recv() as PF_MEMALLOC, as nbd's sock_xmit(): what the receive path
 * allocates may come from the reserves, and never waits for reclaim (a
 * reply may be what a swap write-out is waiting for).
 */
static int vp_recv(struct socket *sock, void *buf, size_t len)
{
	unsigned int noreclaim = memalloc_noreclaim_save();
	int ret = __vp_recv(sock, buf, len);

	memalloc_noreclaim_restore(noreclaim);
	return ret;
}

/* ---- rpcs ------------------------------------------------------------ */

/**
 * virgo_rpc_alloc() - allocate a request
 * @op: VIRGO_OP_*
 * @rbuf: where the reply payload goes, or NULL for the inline buffer
 * @rlen: exact reply payload length expected on success
 * @inline_len: bytes of inline reply buffer to allocate
 * @gfp: allocation flags
 *
 * Return: the request, or NULL.
 */
struct virgo_rpc *virgo_rpc_alloc(u8 op, void *rbuf, u32 rlen,
				  u32 inline_len, gfp_t gfp)
{
	struct virgo_rpc *rpc;

	rpc = kzalloc(struct_size(rpc, data, inline_len), gfp);
	if (!rpc)
		return NULL;
	rpc->op = op;
	rpc->rlen = rlen;
	rpc->rbuf = rbuf ? rbuf : (rlen ? rpc->data : NULL);
	init_completion(&rpc->done);
	return rpc;
}

/**
 * virgo_rpc_free() - free a request its caller still owns
 * @rpc: the request, or NULL
 */
void virgo_rpc_free(struct virgo_rpc *rpc)
{
	if (!rpc)
		return;
	if (rpc->peer)
		virgo_peer_put(rpc->peer);
	kfree(rpc);
}

/* Took @rpc out of @pending: give its in-flight slot back. */
static void vp_slot_put(struct virgo_peer *peer)
{
	atomic_dec(&peer->inflight);
	wake_up(&peer->slot_wq);
}

/* Called with the rpc out of @pending and no lock held. */
static void vp_rpc_finish(struct virgo_rpc *rpc)
{
	struct virgo_peer *peer = rpc->peer;

	if (!rpc->abandoned) {
		complete(&rpc->done);
		return;
	}
	/* Nobody waits: whatever an ALLOC got must go back. */
	if (rpc->op == VIRGO_OP_ALLOC && !rpc->err) {
		u64 *handles = kmalloc_array(rpc->count, sizeof(u64),
					     GFP_KERNEL);
		u32 i;

		if (handles) {
			for (i = 0; i < rpc->count; i++)
				handles[i] = virgo_wire_handle(rpc->data, i);
			virgo_peer_free_handles(peer, rpc->epoch, handles,
						rpc->count);
			kfree(handles);
		}
	}
	virgo_rpc_free(rpc);
}

/*
 * Fail every pending request with @err that went out on connection
 * @queue (0: the peer's own), or on any with @all: the connection is gone.
 */
static void vp_fail_where(struct virgo_peer *peer, int err, bool all,
			  u32 queue)
{
	unsigned long tag = 0;

	for (;;) {
		struct virgo_rpc *rpc;

		xa_lock(&peer->pending);
		rpc = xa_find(&peer->pending, &tag, ULONG_MAX, XA_PRESENT);
		while (rpc && !all && rpc->queue != queue)
			rpc = xa_find_after(&peer->pending, &tag, ULONG_MAX,
					    XA_PRESENT);
		if (!rpc) {
			xa_unlock(&peer->pending);
			break;
		}
		__xa_erase(&peer->pending, tag);
		rpc->err = err;
		if (rpc->abandoned)
			rpc->op = 0;	/* its chunks died with the session */
		else
			rpc->claimed = true;
		xa_unlock(&peer->pending);
		vp_slot_put(peer);
		vp_rpc_finish(rpc);
	}
}

/* Fail every pending request with @err (the peer's connection is gone). */
static void vp_fail_all(struct virgo_peer *peer, int err)
{
	vp_fail_where(peer, err, true, 0);
}

/* Take an in-flight slot if one is free. */
static bool vp_slot_try(struct virgo_peer *peer)
{
	return atomic_add_unless(&peer->inflight, 1,
				 READ_ONCE(peer->max_inflight));
}

#if IS_ENABLED(CONFIG_KUNIT)
void (*virgo_peer_test_pre_send)(struct virgo_peer *peer);
void (*virgo_peer_test_rx)(struct virgo_peer *peer, u8 opcode);
#endif

/* The connection of @peer broke (@err): it is down from now on. */
static void vp_mark_down(struct virgo_peer *peer, int err)
{
	if (cmpxchg(&peer->state, VIRGO_PEER_UP, VIRGO_PEER_DOWN) ==
	    VIRGO_PEER_UP) {
		pr_info("peer %s: connection lost (%d)\n", peer->name, err);
		WRITE_ONCE(peer->down_since, jiffies | 1);
	}
}

/*
 * Why a request built for @epoch cannot go out on @peer now: its session
 * is gone (-EIO: removed, or another epoch), or only its connection is
 * down and a resume may bring it back (-ECONNRESET).
 */
static int vp_down_errno(struct virgo_peer *peer, u32 epoch)
{
	if (READ_ONCE(peer->removed) ||
	    (epoch != VIRGO_EPOCH_ANY && epoch != READ_ONCE(peer->epoch)))
		return -EIO;
	return VIRGO_ERR_CONN_LOST;
}

/* Can a request built for @epoch go out on @peer's connection now? */
static bool vp_sendable(struct virgo_peer *peer, u32 epoch)
{
	lockdep_assert_held(&peer->conn_lock);
	return !peer->removed && peer->state == VIRGO_PEER_UP && peer->sock &&
		(epoch == VIRGO_EPOCH_ANY || epoch == peer->epoch);
}

static struct virgo_queue *vp_queue_pick(struct virgo_peer *peer, u32 epoch);
static void vp_queues_kick(struct virgo_peer *peer, unsigned long delay);

/* May a request of @op go out on an extra queue (see virgo_rpc_send())? */
static bool vp_queue_carries(u8 op)
{
	return op != VIRGO_OP_ALLOC && op != VIRGO_OP_FREE;
}

/**
 * virgo_rpc_send() - send a request to a peer
 * @peer: the peer, connected (virgo_peer_connect())
 * @epoch: the connection epoch the request's handles belong to, or
 *	VIRGO_EPOCH_ANY for a request that names none (ALLOC, PING)
 * @rpc: the request, from virgo_rpc_alloc()
 * @payload: the request payload, @len bytes
 * @len: bytes in @payload
 * @data: bytes sent after @payload (WRITE data), or NULL
 * @data_len: bytes in @data
 *
 * Return: 0 once the request is on the wire (wait for it with
 * virgo_rpc_wait()), or a negative errno: then it was not sent and is
 * still the caller's.  -EIO when the peer's session of @epoch is gone
 * (nothing is sent: the handles died with it), -ECONNRESET when only its
 * connection is down (VIRGO_ERR_CONN_LOST: it may be resumed), -EBUSY when
 * no in-flight slot freed up within rpc_timeout_ms, -EINTR on a fatal
 * signal.
 */
int virgo_rpc_send(struct virgo_peer *peer, u32 epoch, struct virgo_rpc *rpc,
		   const void *payload, u32 len, const void *data,
		   u32 data_len)
{
	struct virgo_peer_set *set = peer->set;
	long slot_wait = msecs_to_jiffies(set->rpc_timeout_ms);
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct virgo_queue *q;
	struct socket *sock;
	/* The send lock of the connection it goes out on. */
	struct mutex *lock;
	struct kvec iov[3];
	bool slot = false, zerocopy, started = false, nowait;
	unsigned long end;
	int nr = 0, ret;

	if (rpc->deadline)
		slot_wait = clamp_t(long, (long)(rpc->deadline - jiffies), 0,
				    slot_wait);
	ret = wait_event_killable_timeout(peer->slot_wq,
					  (slot = vp_slot_try(peer)) ||
					  READ_ONCE(peer->state) !=
					  VIRGO_PEER_UP, slot_wait);
	if (!slot) {
		if (READ_ONCE(peer->state) != VIRGO_PEER_UP)
			return vp_down_errno(peer, epoch);
		return ret < 0 ? -EINTR : -EBUSY;
	}
	/*
	 * Down: do not queue behind a reconnect holding @conn_lock for up to
	 * connect_timeout_ms (checked again under the lock when up).
	 */
	if (READ_ONCE(peer->state) != VIRGO_PEER_UP) {
		vp_slot_put(peer);
		return vp_down_errno(peer, epoch);
	}

#if IS_ENABLED(CONFIG_KUNIT)
	if (virgo_peer_test_pre_send)
		virgo_peer_test_pre_send(peer);
#endif
	/*
	 * One of its extra queues, if it has some up, else its own.  ALLOC
	 * and FREE only go on its own: they are not idempotent, and a reply
	 * lost with an extra queue (the session lives on, nothing resumes)
	 * would leave a chunk lent that nobody knows of, or a free that
	 * happened reported failed.
	 */
	q = vp_queue_carries(rpc->op) ? vp_queue_pick(peer, epoch) : NULL;
	if (q) {
		lock = &q->lock;
		sock = q->sock;
		rpc->epoch = q->epoch;
		rpc->queue = q->index;
	} else {
		lock = &peer->conn_lock;
		mutex_lock(lock);
		if (!vp_sendable(peer, epoch)) {
			ret = vp_down_errno(peer, epoch);
			mutex_unlock(lock);
			vp_slot_put(peer);
			return ret;
		}
		sock = peer->sock;
		rpc->epoch = peer->epoch;
		rpc->queue = 0;
	}
	/*
	 * Never an opcode the connection did not agree on (protocol.md 10);
	 * the queues agreed on DISCARD as the peer's connection did.
	 */
	if (rpc->op == VIRGO_OP_DISCARD && !READ_ONCE(peer->discard)) {
		mutex_unlock(lock);
		vp_slot_put(peer);
		return -EOPNOTSUPP;
	}
	kref_get(&peer->ref);
	rpc->peer = peer;
	rpc->tag = atomic64_inc_return(&peer->next_tag);
	ret = xa_insert(&peer->pending, rpc->tag, rpc, GFP_KERNEL);
	if (ret) {
		mutex_unlock(lock);
		vp_slot_put(peer);
		return ret;
	}
	if (q)
		atomic64_inc(&q->sent);

	virgo_wire_hdr_pack(hdr, rpc->op, 0, len + data_len, 0, rpc->tag);
	iov[nr].iov_base = hdr;
	iov[nr++].iov_len = sizeof(hdr);
	if (len) {
		iov[nr].iov_base = (void *)payload;
		iov[nr++].iov_len = len;
	}
	zerocopy = data_len >= VP_ZEROCOPY_MIN;
	if (data_len && !zerocopy) {
		iov[nr].iov_base = (void *)data;
		iov[nr++].iov_len = data_len;
	}
	rpc->sent_ns = ktime_get_ns();
	/*
	 * A peer that takes no bytes (dead, link cut) blocks the send: for
	 * rpc_timeout_ms in all, however the bytes trickle out, and never
	 * past the caller's round (with several connections to a dead peer,
	 * each one's blocked send would take a whole rpc_timeout_ms).
	 */
	end = jiffies + msecs_to_jiffies(set->rpc_timeout_ms);
	if (rpc->deadline && time_before(rpc->deadline, end))
		end = rpc->deadline;
	/*
	 * A write another replica takes too does not wait for room in the
	 * socket of a peer that already let a reply time out (a dead node's
	 * socket fills and stays full): each such wait would delay the
	 * healthy replicas' sends that follow it in the caller's round.
	 * Nor does a send that comes after its round's end (a blocked send
	 * before it used the round up): it goes if the socket has room now,
	 * with VP_LATE_SEND_MS to finish its frame, so a healthy replica's
	 * copy still leaves while a dead one's fails at once.
	 */
	nowait = rpc->replicated && atomic_read(&peer->suspect);
	if (time_after_eq(jiffies, end)) {
		end = jiffies + msecs_to_jiffies(VP_LATE_SEND_MS);
		nowait = true;
	}
	ret = vp_sendv_until(sock, iov, nr,
			     sizeof(hdr) + len + (zerocopy ? 0 : data_len),
			     end, zerocopy ? MSG_MORE : 0, &started, nowait);
	if (!ret && zerocopy)
		ret = vp_send_data(sock, data, data_len, end);
	if (ret) {
		/*
		 * A partial frame breaks the stream: drop the connection, and
		 * say so now, so that a sender waiting for the session to be
		 * back waits for the reconnect, not for this broken socket.
		 * A queue's: only the queue (its receive work sees it).  A
		 * frame that timed out, or whose sender was killed, before
		 * its first byte broke nothing.
		 */
		if (started || (ret != -ETIMEDOUT && ret != -EINTR)) {
			kernel_sock_shutdown(sock, SHUT_RDWR);
			if (q)
				WRITE_ONCE(q->up, false);
			else
				vp_mark_down(peer, ret);
		}
		mutex_unlock(lock);
		/* Its receive work leaves a queue that is down alone. */
		if (q && !READ_ONCE(q->up))
			vp_queues_kick(peer, 0);
		/*
		 * A send that timed out used the caller's whole round: the
		 * peer took nothing for rpc_timeout_ms; no waiting for a
		 * resume on top (protocol.md 6.1 helps the next call).
		 */
		if (ret != -ETIMEDOUT && ret != -EINTR)
			ret = VIRGO_ERR_CONN_LOST;
		xa_lock(&peer->pending);
		if (!rpc->claimed && __xa_erase(&peer->pending, rpc->tag)) {
			xa_unlock(&peer->pending);
			vp_slot_put(peer);
			return ret;
		}
		xa_unlock(&peer->pending);
		/* The receive thread failed it already. */
		wait_for_completion(&rpc->done);
		return ret;
	}
	mutex_unlock(lock);
	return 0;
}

/**
 * virgo_rpc_wait() - wait for the reply to a sent request
 * @rpc: the request
 * @deadline: jiffies after which the caller gives up
 *
 * Killable: a fatal signal ends the wait as a timeout does.
 *
 * Return: the request's result (0, a negative errno, or the reply's status
 * as an errno); the caller then frees @rpc.  Or -ETIMEDOUT (deadline
 * passed) or -EINTR (fatal signal), see virgo_rpc_gone(): @rpc now belongs
 * to the peer and the caller must not touch it again.
 */
int virgo_rpc_wait(struct virgo_rpc *rpc, unsigned long deadline)
{
	struct virgo_peer *peer = rpc->peer;
	long left = (long)(deadline - jiffies);
	long ret = 0;

	if (left > 0) {
		ret = wait_for_completion_killable_timeout(&rpc->done, left);
		if (ret > 0)
			return rpc->err;
	}

	xa_lock(&peer->pending);
	if (rpc->claimed) {
		/* The reply is being received: it finishes soon. */
		xa_unlock(&peer->pending);
		wait_for_completion(&rpc->done);
		return rpc->err;
	}
	rpc->abandoned = true;
	if (rpc->rbuf != rpc->data)
		rpc->rbuf = NULL;
	xa_unlock(&peer->pending);
	if (ret < 0)
		return -EINTR;
	if (!atomic_xchg(&peer->suspect, 1))
		pr_info("peer %s: no reply within %u ms; no new chunks go there until it answers\n",
			peer->name, peer->set->rpc_timeout_ms);
	return -ETIMEDOUT;
}

/**
 * virgo_rpc_forget() - stop caring about a sent request
 * @rpc: the request
 *
 * Its reply, whenever it comes, is disposed of by the receive path.
 */
void virgo_rpc_forget(struct virgo_rpc *rpc)
{
	if (!virgo_rpc_gone(virgo_rpc_wait(rpc, jiffies)))
		virgo_rpc_free(rpc);
}

/* ---- the receive thread ---------------------------------------------- */

/*
 * A reply's header @hdr came in on connection @queue (@sock): find its
 * request and receive the rest (blocking, for up to rpc_timeout_ms:
 * a reply that has begun is received to its end).  An error ends the
 * connection.
 */
static int vp_rx_reply(struct virgo_peer *peer, struct socket *sock,
		       u32 queue, const u8 *hdr)
{
	unsigned long timeout = msecs_to_jiffies(peer->set->rpc_timeout_ms);
	struct virgo_wire_msg m;
	struct virgo_rpc *rpc;
	void *dest;
	int ret;

	ret = virgo_wire_hdr_unpack(hdr, &m, &peer->lim);
	if (ret || !virgo_wire_is_reply(&m))
		return -EPROTO;
#if IS_ENABLED(CONFIG_KUNIT)
	if (virgo_peer_test_rx)
		virgo_peer_test_rx(peer, m.opcode);
#endif

	xa_lock(&peer->pending);
	rpc = xa_load(&peer->pending, m.tag);
	/* A reply comes on the connection of its request (6.2). */
	if (rpc && rpc->queue != queue)
		rpc = NULL;
	if (rpc) {
		__xa_erase(&peer->pending, m.tag);
		if (!rpc->abandoned)
			rpc->claimed = true;
	}
	xa_unlock(&peer->pending);
	if (!rpc)
		return -EPROTO;
	vp_slot_put(peer);
	if (atomic_read(&peer->suspect) && atomic_xchg(&peer->suspect, 0))
		pr_info("peer %s answers again\n", peer->name);

	WRITE_ONCE(sock->sk->sk_rcvtimeo, timeout);
	if (m.opcode != rpc->op || (!m.status && m.len != rpc->rlen)) {
		rpc->err = -EPROTO;
		vp_rpc_finish(rpc);
		return -EPROTO;
	}
	if (m.status) {
		rpc->err = virgo_status_to_errno(m.status);
		trace_virgo_rpc(peer->id, rpc->op, rpc->tag, 0, rpc->err,
				ktime_get_ns() - rpc->sent_ns);
		vp_rpc_finish(rpc);
		return 0;
	}

	dest = rpc->rbuf;
	ret = vp_recv(sock, dest, m.len);
	if (!ret && dest && m.opcode != VIRGO_OP_READ &&
	    virgo_wire_check_rep(&m, dest, &peer->lim))
		ret = -EPROTO;
	if (!ret && m.opcode == VIRGO_OP_ALLOC &&
	    virgo_wire_batch_count(dest) != rpc->count)
		ret = -EPROTO;
	/* A server cannot free (or discard) more than it was asked to. */
	if (!ret && m.opcode == VIRGO_OP_FREE &&
	    virgo_wire_freed(dest) > rpc->count)
		ret = -EPROTO;
	if (!ret && m.opcode == VIRGO_OP_DISCARD &&
	    virgo_wire_discarded(dest) > rpc->count)
		ret = -EPROTO;
	if (!ret && m.opcode == VIRGO_OP_PING)
		atomic64_set(&peer->rtt_ns, ktime_get_ns() - rpc->sent_ns);
	rpc->err = ret ? -EIO : 0;
	trace_virgo_rpc(peer->id, rpc->op, rpc->tag, m.len, rpc->err,
			ktime_get_ns() - rpc->sent_ns);
	vp_rpc_finish(rpc);
	return ret;
}

/* Receive and dispatch one reply on the peer's own connection. */
static int vp_rx_one(struct virgo_peer *peer, struct socket *sock)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	int ret;

	WRITE_ONCE(sock->sk->sk_rcvtimeo, MAX_SCHEDULE_TIMEOUT);
	ret = vp_recv(sock, hdr, sizeof(hdr));
	if (ret)
		return ret;
	return vp_rx_reply(peer, sock, 0, hdr);
}

static int vp_rx_thread(void *data)
{
	struct virgo_peer *peer = data;
	struct socket *sock = peer->sock;
	int ret = 0;

	while (!kthread_should_stop()) {
		ret = vp_rx_one(peer, sock);
		if (ret)
			break;
	}

	/* Broken or stopped: fail what waits, then wait to be reaped. */
	vp_mark_down(peer, ret);
	kernel_sock_shutdown(sock, SHUT_RDWR);
	/* The session may come back (RESUME): callers may send again. */
	vp_fail_all(peer, VIRGO_ERR_CONN_LOST);
	/* Connect again in the background (unless being stopped). */
	if (!kthread_should_stop())
		virgo_peer_kick(peer);
	while (!kthread_should_stop()) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (!kthread_should_stop())
			schedule();
		__set_current_state(TASK_RUNNING);
	}
	return 0;
}

/* ---- connecting ------------------------------------------------------ */

/*
 * One synchronous exchange on @sock before anything receives from it: a
 * reply of up to @rep_max bytes lands in @rep, its length in *@rep_len
 * (checked by the codec).
 */
static int vp_exchange(struct virgo_peer *peer, struct socket *sock, u8 op,
		       const void *req, u32 len, void *rep, u32 rep_max,
		       u32 *rep_len)
{
	struct virgo_wire_limits lim;
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct virgo_wire_msg m;
	struct kvec iov[2] = {
		{ .iov_base = hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)req, .iov_len = len },
	};
	int ret;

	virgo_wire_limits_default(&lim);
	virgo_wire_hdr_pack(hdr, op, 0, len, 0, 0);
	ret = virgo_sock_sendv(sock, iov, 2, sizeof(hdr) + len,
			       msecs_to_jiffies(peer->set->connect_timeout_ms));
	if (ret)
		return ret;
	ret = vp_recv(sock, hdr, sizeof(hdr));
	if (ret)
		return ret;
	if (virgo_wire_hdr_unpack(hdr, &m, &lim) || !virgo_wire_is_reply(&m) ||
	    m.opcode != op || m.tag)
		return -EPROTO;
	if (m.status)
		return virgo_status_to_errno(m.status);
	if (m.len > rep_max)
		return -EPROTO;
	ret = vp_recv(sock, rep, m.len);
	if (ret)
		return ret;
	*rep_len = m.len;
	return virgo_wire_check_rep(&m, rep, &lim) ? -EPROTO : 0;
}

static int vp_mac(struct virgo_peer_set *set, enum virgo_wire_auth_role role,
		  const u8 *cn, const u8 *sn, u8 *mac)
{
	u8 input[VIRGO_WIRE_AUTH_INPUT_LEN];

	virgo_wire_auth_input(input, role, cn, sn);
	return crypto_shash_tfm_digest(set->hmac, input, sizeof(input), mac);
}

/*
 * HELLO on @sock offering @caps, and AUTH when the server wants it; the
 * reply in @rep, our nonce in @cn.
 */
static int vp_hello(struct virgo_peer *peer, struct socket *sock, u32 caps,
		    struct virgo_wire_hello_rep *out, u8 *cn)
{
	struct virgo_peer_set *set = peer->set;
	struct virgo_wire_hello_req req = { .ver_min = 1, .ver_max = 1,
					    .caps = caps };
	u8 p[VIRGO_WIRE_HELLO_REP_MAX], mac[VIRGO_WIRE_MAC_LEN];
	struct virgo_wire_hello_rep rep;
	u32 len;
	int ret;

	get_random_bytes(req.nonce, sizeof(req.nonce));
	memcpy(cn, req.nonce, VIRGO_WIRE_NONCE_LEN);
	ret = virgo_wire_put_hello_req(p, sizeof(p), &req);
	if (ret < 0)
		return ret;
	ret = vp_exchange(peer, sock, VIRGO_OP_HELLO, p, ret, p, sizeof(p),
			  &len);
	if (ret)
		return ret;
	virgo_wire_get_hello_rep(p, &rep);
	/* Only what we offered (protocol.md 5.1). */
	if (rep.caps & ~req.caps)
		return -EPROTO;

	if (!!(rep.flags & VIRGO_HELLO_AUTH_REQUIRED) != !!set->hmac) {
		/* No key to give, or a server that would not check ours. */
		pr_warn("peer %s: %s\n", peer->name, set->hmac ?
			"does not ask for the key: refusing it" :
			"wants a key and none is set");
		return -EKEYREJECTED;
	}
	if (set->hmac) {
		ret = vp_mac(set, VIRGO_WIRE_AUTH_CLIENT, cn, rep.nonce, mac);
		if (ret)
			return ret;
		ret = vp_exchange(peer, sock, VIRGO_OP_AUTH, mac, sizeof(mac),
				  p, VIRGO_WIRE_MAC_LEN, &len);
		if (ret)
			return ret == -EKEYREJECTED || ret == -EACCES ?
				-EKEYREJECTED : ret;
		ret = vp_mac(set, VIRGO_WIRE_AUTH_SERVER, cn, rep.nonce, mac);
		if (ret)
			return ret;
		if (crypto_memneq(mac, p, sizeof(mac))) {
			pr_warn("peer %s: server does not know the key\n",
				peer->name);
			return -EKEYREJECTED;
		}
	}
	*out = rep;
	memzero_explicit(rep.token, sizeof(rep.token));
	return 0;
}

/*
 * HELLO on the peer's own connection (offering RESUME and DISCARD, and
 * QUEUES when it is to have more), AUTH when the server wants it; the
 * reply in @out, our nonce in @cn.  Called with @conn_lock.
 */
static int vp_greet(struct virgo_peer *peer, struct virgo_wire_hello_rep *out,
		    u8 *cn)
{
	struct virgo_peer_set *set = peer->set;
	u32 caps = VIRGO_CAP_RESUME | VIRGO_CAP_DISCARD;
	struct virgo_wire_hello_rep rep;
	int ret;

	if (peer->nr_queues)
		caps |= VIRGO_CAP_QUEUES;
	ret = vp_hello(peer, peer->sock, caps, &rep, cn);
	if (ret)
		return ret;
	/* Its limits and ours, field by field: coherent (protocol.md §4). */
	peer->lim.max_payload = min(rep.max_payload, set->own.max_payload);
	peer->lim.max_chunk = min(rep.max_chunk, set->own.max_chunk);
	peer->lim.max_batch = min(rep.max_batch, set->own.max_batch);
	WRITE_ONCE(peer->discard, !!(rep.caps & VIRGO_CAP_DISCARD));
	peer->queues_ok = rep.caps & VIRGO_CAP_QUEUES;
	WRITE_ONCE(peer->max_inflight, min(rep.max_inflight,
					   VIRGO_CLIENT_MAX_INFLIGHT));
	peer->capacity = rep.capacity;
	atomic64_set(&peer->free, rep.free);
	*out = rep;
	memzero_explicit(rep.token, sizeof(rep.token));
	return 0;
}

/* Tries of a RESUME the server answers BUSY (its old connection closes). */
#define VP_RESUME_TRIES		20
#define VP_RESUME_RETRY_MS	50

/*
 * Take the last session over on the new connection (protocol.md 6.1),
 * @rep and @cn from its greeting.  Called with @conn_lock.  Returns 0
 * once resumed, -ENOENT when that session is gone, or another error that
 * ends the connection (tried again later).
 */
static int vp_resume(struct virgo_peer *peer,
		     const struct virgo_wire_hello_rep *rep, const u8 *cn)
{
	struct virgo_peer_set *set = peer->set;
	u8 input[VIRGO_WIRE_RESUME_INPUT_LEN], proof[VIRGO_WIRE_MAC_LEN];
	u8 p[VIRGO_WIRE_RESUME_REQ_LEN], out[VIRGO_WIRE_RESUME_REP_LEN];
	unsigned int tries = 0;
	u64 chunks, bytes;
	u32 len;
	int ret;

	memcpy(proof, peer->resume_token, sizeof(proof));
	if (set->hmac) {
		virgo_wire_resume_input(input, peer->resume_token, cn,
					rep->nonce);
		ret = crypto_shash_tfm_digest(set->hmac, input, sizeof(input),
					      proof);
		memzero_explicit(input, sizeof(input));
		if (ret)
			goto out;
	}
	virgo_wire_put_resume_req(p, sizeof(p), peer->resume_id, proof);
	do {
		/* BUSY: the server is closing the old connection; again. */
		if (tries && msleep_interruptible(VP_RESUME_RETRY_MS))
			break;
		ret = vp_exchange(peer, peer->sock, VIRGO_OP_RESUME, p,
				  sizeof(p), out, sizeof(out), &len);
	} while (ret == -EBUSY && ++tries < VP_RESUME_TRIES);
	if (!ret) {
		virgo_wire_get_resume_rep(out, &chunks, &bytes);
		pr_info("peer %s: session resumed (%llu chunks, %llu bytes)\n",
			peer->name, chunks, bytes);
	}
out:
	memzero_explicit(proof, sizeof(proof));
	memzero_explicit(p, sizeof(p));
	return ret;
}

/* The last session cannot be resumed: a new epoch.  Under @conn_lock. */
static void vp_session_gone(struct virgo_peer *peer)
{
	if (peer->resumable)
		atomic_inc(&peer->sessions_lost);
	peer->resumable = false;
	if (++peer->epoch == VIRGO_EPOCH_ANY)
		peer->epoch++;
}

/*
 * After a greeting: resume the last session if it may hold our chunks,
 * else start a new epoch.  Remembers what resumes this session later.
 * Called with @conn_lock.  Returns 0, or an error that ends the
 * connection.
 */
static int vp_start_session(struct virgo_peer *peer,
			    const struct virgo_wire_hello_rep *rep,
			    const u8 *cn)
{
	bool can = rep->caps & VIRGO_CAP_RESUME;
	int ret = -ENOENT;

	if (can && peer->resumable && peer->epoch != VIRGO_EPOCH_ANY)
		ret = vp_resume(peer, rep, cn);
	if (ret && ret != -ENOENT)
		return ret;
	if (ret) {
		vp_session_gone(peer);
		peer->resume_id = rep->resume_id;
	} else {
		atomic_inc(&peer->resumed);
	}
	/* From now on this connection's token resumes the session. */
	peer->resumable = can;
	memcpy(peer->resume_token, rep->token, sizeof(peer->resume_token));
	return 0;
}

/* ---- swap safety ---------------------------------------------------- */

/*
 * Give @peer's socket SOCK_MEMALLOC, or take it away, as its set wants
 * (virgo_peers_set_memalloc()).  Called with @conn_lock.  The socket never
 * uses the task's page fragment: the task may be in the middle of using
 * it when reclaim makes it write to swap (as nbd and nvme-tcp do).
 */
static void vp_sync_memalloc(struct virgo_peer *peer)
{
	bool want = READ_ONCE(peer->set->memalloc);
	struct sock *sk;

	if (!peer->sock)
		return;
	sk = peer->sock->sk;
	sk->sk_use_task_frag = false;
	if (want == sock_flag(sk, SOCK_MEMALLOC))
		return;
	if (want)
		sk_set_memalloc(sk);
	else
		sk_clear_memalloc(sk);
}

/* Before releasing @sock: balance the reserves' static key. */
static void vp_drop_memalloc(struct socket *sock)
{
	if (sock_flag(sock->sk, SOCK_MEMALLOC))
		sk_clear_memalloc(sock->sk);
}

/* As vp_sync_memalloc(), for @peer's queues.  Called with @conn_lock. */
static void vp_queues_sync_memalloc(struct virgo_peer *peer, bool want)
{
	unsigned int i;

	for (i = 0; i < peer->nr_queues; i++) {
		struct virgo_queue *q = &peer->queues[i];

		mutex_lock(&q->lock);
		if (q->sock && want != sock_flag(q->sock->sk, SOCK_MEMALLOC)) {
			if (want)
				sk_set_memalloc(q->sock->sk);
			else
				sk_clear_memalloc(q->sock->sk);
		}
		mutex_unlock(&q->lock);
	}
}

/**
 * virgo_peers_set_memalloc() - the peers' sockets may use the reserves
 * @set: the set
 * @on: set SOCK_MEMALLOC on every peer socket, now and on each new
 *	connection; false: clear it
 *
 * With SOCK_MEMALLOC a socket's allocations may dip into the emergency
 * reserves (sk_allocation gets __GFP_MEMALLOC) and it accepts packets
 * the driver allocated from them (sk_filter_trim_cap() drops those for
 * other sockets): what swap over the network needs.  May sleep (waits
 * for a connect in progress).
 */
void virgo_peers_set_memalloc(struct virgo_peer_set *set, bool on)
{
	struct virgo_peer *peer;

	mutex_lock(&set->lock);
	WRITE_ONCE(set->memalloc, on);
	list_for_each_entry(peer, &set->list, node) {
		mutex_lock(&peer->conn_lock);
		vp_sync_memalloc(peer);
		vp_queues_sync_memalloc(peer, on);
		mutex_unlock(&peer->conn_lock);
	}
	mutex_unlock(&set->lock);
}

/* A TCP socket for a connection to @peer, not connected yet. */
static int vp_sock_new(struct virgo_peer *peer, struct socket **out)
{
	struct virgo_peer_set *set = peer->set;
	unsigned long timeout = msecs_to_jiffies(set->connect_timeout_ms);
	struct socket *sock;
	int ret;

	ret = sock_create_kern(&init_net, peer->addr.sa.sa_family, SOCK_STREAM,
			       IPPROTO_TCP, &sock);
	if (ret)
		return ret;
	sock->sk->sk_allocation = GFP_NOIO;
	sock->sk->sk_sndtimeo = timeout;
	sock->sk->sk_rcvtimeo = timeout;
	tcp_sock_set_nodelay(sock->sk);
	sock_set_keepalive(sock->sk);
	tcp_sock_set_keepidle(sock->sk, 10);
	tcp_sock_set_keepintvl(sock->sk, 5);
	tcp_sock_set_keepcnt(sock->sk, 3);
	/*
	 * A peer that dies silently while requests are out: placement skips
	 * it from its first timed-out request (->suspect), and TCP aborts the
	 * connection once sent data stays unacknowledged for VP_DEAD_MS (a
	 * slow but alive server still acknowledges); the receive thread
	 * sees the error, the peer goes down and its requests fail.  A
	 * shorter outage keeps the connection, and the session's chunks.
	 */
	tcp_sock_set_user_timeout(sock->sk, max(3 * set->rpc_timeout_ms,
						VP_DEAD_MS));
	*out = sock;
	return 0;
}

/* ---- more queues (capability QUEUES, protocol.md 6.2) ---------------- */

/*
 * Bytes came in: receive.  The socket's own callback runs too: it wakes
 * the receive work when it waits in recvmsg() for the rest of a reply
 * that has begun (without it, only the receive timeout would).
 */
static void vp_queue_data_ready(struct sock *sk)
{
	struct virgo_queue *q;

	read_lock_bh(&sk->sk_callback_lock);
	q = sk->sk_user_data;
	if (q) {
		queue_work(q->peer->set->rxwq, &q->io_work);
		q->saved_data_ready(sk);
	}
	read_unlock_bh(&sk->sk_callback_lock);
}

/* The connection changed state (closed, reset): likewise. */
static void vp_queue_state_change(struct sock *sk)
{
	struct virgo_queue *q;

	read_lock_bh(&sk->sk_callback_lock);
	q = sk->sk_user_data;
	if (q) {
		queue_work(q->peer->set->rxwq, &q->io_work);
		q->saved_state_change(sk);
	}
	read_unlock_bh(&sk->sk_callback_lock);
}

/* Route @sock's callbacks to @q (@on), or give them back. */
static void vp_queue_hook(struct virgo_queue *q, struct socket *sock,
			  bool on)
{
	struct sock *sk = sock->sk;

	write_lock_bh(&sk->sk_callback_lock);
	if (on) {
		sk->sk_user_data = q;
		q->saved_data_ready = sk->sk_data_ready;
		q->saved_state_change = sk->sk_state_change;
		sk->sk_data_ready = vp_queue_data_ready;
		sk->sk_state_change = vp_queue_state_change;
	} else if (sk->sk_user_data == q) {
		sk->sk_user_data = NULL;
		sk->sk_data_ready = q->saved_data_ready;
		sk->sk_state_change = q->saved_state_change;
	}
	write_unlock_bh(&sk->sk_callback_lock);
}

/*
 * Receive what there is of a reply header on @q, without waiting.
 * Returns 1 once it is whole, 0 when the socket has no more now, or a
 * negative errno (-ECONNRESET on EOF).
 */
static int vp_queue_rx_hdr(struct virgo_queue *q, struct socket *sock)
{
	while (q->rx_have < sizeof(q->rx_hdr)) {
		struct kvec iov = { .iov_base = q->rx_hdr + q->rx_have,
				    .iov_len = sizeof(q->rx_hdr) - q->rx_have };
		struct msghdr msg = {};
		int ret = kernel_recvmsg(sock, &msg, &iov, 1, iov.iov_len,
					 MSG_DONTWAIT);

		if (ret == -EAGAIN)
			return 0;
		if (ret <= 0)
			return ret ? ret : -ECONNRESET;
		q->rx_have += ret;
	}
	q->rx_have = 0;
	return 1;
}

/* Replies handled per run of a queue's receive work before it yields. */
#define VP_QUEUE_BUDGET		64

/*
 * A queue's receive work (as nvme-tcp's io_work): never waits for a reply
 * to begin; receives each reply that has begun to its end, and completes
 * its request.  A broken connection fails the queue's requests and has
 * the queue opened again; the peer and its session stay up.
 */
static void vp_queue_io(struct work_struct *work)
{
	struct virgo_queue *q = container_of(work, struct virgo_queue,
					     io_work);
	struct virgo_peer *peer = q->peer;
	struct socket *sock = READ_ONCE(q->sock);
	int budget = VP_QUEUE_BUDGET, ret = 0;
	unsigned int noreclaim;

	if (!sock || !READ_ONCE(q->up))
		return;
	noreclaim = memalloc_noreclaim_save();
	while (budget--) {
		ret = vp_queue_rx_hdr(q, sock);
		if (ret <= 0)
			break;
		ret = vp_rx_reply(peer, sock, q->index, q->rx_hdr);
		if (ret)
			break;
	}
	memalloc_noreclaim_restore(noreclaim);
	if (ret < 0) {
		pr_info("peer %s: queue %u lost (%d)\n", peer->name, q->index,
			ret);
		/* Senders skip it; it is closed before it is opened again. */
		WRITE_ONCE(q->up, false);
		kernel_sock_shutdown(sock, SHUT_RDWR);
		vp_fail_where(peer, VIRGO_ERR_CONN_LOST, false, q->index);
		vp_queues_kick(peer, 0);
		return;
	}
	if (budget < 0)
		queue_work(peer->set->rxwq, &q->io_work);
}

/*
 * Close @q's connection, if any, and fail what is still pending on it
 * with @err.  Never called from its receive work.
 */
static void vp_queue_close(struct virgo_queue *q, int err)
{
	struct socket *sock;

	mutex_lock(&q->lock);
	sock = q->sock;
	WRITE_ONCE(q->up, false);
	if (sock) {
		vp_queue_hook(q, sock, false);
		kernel_sock_shutdown(sock, SHUT_RDWR);
	}
	mutex_unlock(&q->lock);
	if (!sock)
		return;
	cancel_work_sync(&q->io_work);
	vp_fail_where(q->peer, err, false, q->index);
	mutex_lock(&q->lock);
	q->sock = NULL;
	mutex_unlock(&q->lock);
	vp_drop_memalloc(sock);
	sock_release(sock);
}

/*
 * Open a connection for @q and JOIN it to the session @id of @epoch,
 * whose token is @token (protocol.md 6.2); it becomes the queue's if the
 * peer is still up in that epoch.  Returns 0 or a negative errno.
 */
static int vp_queue_open(struct virgo_queue *q, u32 epoch, u64 id,
			 const u8 *token)
{
	struct virgo_peer *peer = q->peer;
	struct virgo_peer_set *set = peer->set;
	u8 input[VIRGO_WIRE_JOIN_INPUT_LEN], proof[VIRGO_WIRE_MAC_LEN];
	u8 p[VIRGO_WIRE_JOIN_REQ_LEN], out[VIRGO_WIRE_JOIN_REP_LEN];
	u32 caps = VIRGO_CAP_RESUME | VIRGO_CAP_DISCARD | VIRGO_CAP_QUEUES;
	struct virgo_wire_hello_rep rep;
	u8 cn[VIRGO_WIRE_NONCE_LEN];
	struct socket *sock;
	u32 len;
	int ret;

	ret = vp_sock_new(peer, &sock);
	if (ret)
		return ret;
	ret = kernel_connect(sock, &peer->addr.sa,
			     virgo_addr_len(&peer->addr), 0);
	if (ret)
		goto release;
	ret = vp_hello(peer, sock, caps, &rep, cn);
	memzero_explicit(rep.token, sizeof(rep.token));
	if (ret)
		goto release;
	/* The server as the session's connection found it. */
	ret = -EPROTO;
	if (!(rep.caps & VIRGO_CAP_QUEUES) ||
	    !!(rep.caps & VIRGO_CAP_DISCARD) != READ_ONCE(peer->discard))
		goto release;
	memcpy(proof, token, sizeof(proof));
	if (set->hmac) {
		virgo_wire_join_input(input, token, cn, rep.nonce);
		ret = crypto_shash_tfm_digest(set->hmac, input, sizeof(input),
					      proof);
		memzero_explicit(input, sizeof(input));
		if (ret)
			goto release;
	}
	virgo_wire_put_join_req(p, sizeof(p), id, proof);
	memzero_explicit(proof, sizeof(proof));
	ret = vp_exchange(peer, sock, VIRGO_OP_JOIN, p, sizeof(p), out,
			  sizeof(out), &len);
	memzero_explicit(p, sizeof(p));
	if (ret)
		goto release;

	/* Still the session it joined: the queue is up. */
	mutex_lock(&peer->conn_lock);
	ret = -ECONNRESET;
	if (peer->removed || peer->state != VIRGO_PEER_UP ||
	    peer->epoch != epoch) {
		mutex_unlock(&peer->conn_lock);
		goto release;
	}
	mutex_lock(&q->lock);
	sock->sk->sk_use_task_frag = false;
	if (READ_ONCE(set->memalloc))
		sk_set_memalloc(sock->sk);
	q->sock = sock;
	q->epoch = epoch;
	q->rx_have = 0;
	vp_queue_hook(q, sock, true);
	WRITE_ONCE(q->up, true);
	mutex_unlock(&q->lock);
	mutex_unlock(&peer->conn_lock);
	/* Bytes may have come before the callbacks were ours. */
	queue_work(set->rxwq, &q->io_work);
	return 0;

release:
	sock_release(sock);
	return ret;
}

/* Retry of queues that could not be opened. */
#define VP_QUEUES_RETRY_MS	1000

/* Open and join the queues of @peer that are not up. */
static void vp_queues_work(struct work_struct *work)
{
	struct virgo_peer *peer = container_of(to_delayed_work(work),
					       struct virgo_peer,
					       queues_work);
	u8 token[VIRGO_WIRE_TOKEN_LEN];
	unsigned int i, failed = 0;
	u32 epoch;
	u64 id;
	bool ok;
	int ret;

	mutex_lock(&peer->conn_lock);
	ok = peer->queues_ok && !peer->removed &&
	     peer->state == VIRGO_PEER_UP;
	epoch = peer->epoch;
	id = peer->resume_id;
	memcpy(token, peer->resume_token, sizeof(token));
	mutex_unlock(&peer->conn_lock);
	for (i = 0; ok && i < peer->nr_queues; i++) {
		struct virgo_queue *q = &peer->queues[i];

		if (READ_ONCE(q->up))
			continue;
		vp_queue_close(q, VIRGO_ERR_CONN_LOST);
		ret = vp_queue_open(q, epoch, id, token);
		if (ret) {
			pr_info_ratelimited("peer %s: queue %u not joined (%d)\n",
					    peer->name, q->index, ret);
			failed++;
		}
	}
	memzero_explicit(token, sizeof(token));
	if (failed)
		vp_queues_kick(peer, msecs_to_jiffies(VP_QUEUES_RETRY_MS));
	virgo_peer_put(peer);
}

/* Open @peer's queues in the background, after @delay jiffies. */
static void vp_queues_kick(struct virgo_peer *peer, unsigned long delay)
{
	if (!peer->nr_queues || READ_ONCE(peer->removed))
		return;
	/* The queued work's reference; never the last one here. */
	kref_get(&peer->ref);
	if (!queue_delayed_work(peer->set->connecting, &peer->queues_work,
				delay))
		kref_put(&peer->ref, vp_release);
}

/* Close every queue of @peer.  Called with @conn_lock. */
static void vp_queues_close(struct virgo_peer *peer, int err)
{
	unsigned int i;

	lockdep_assert_held(&peer->conn_lock);
	peer->queues_ok = false;
	for (i = 0; i < peer->nr_queues; i++)
		vp_queue_close(&peer->queues[i], err);
}

/*
 * The queue the next request to @peer goes out on, locked, when it is one
 * of its extra queues and up in @epoch; NULL for the peer's own
 * connection.  Round robin: one caller's fan-out uses every queue.
 */
static struct virgo_queue *vp_queue_pick(struct virgo_peer *peer, u32 epoch)
{
	unsigned int n = peer->nr_queues + 1, at;
	struct virgo_queue *q;

	if (n == 1)
		return NULL;
	at = (unsigned int)atomic_inc_return(&peer->next_queue) % n;
	if (!at)
		return NULL;
	q = &peer->queues[at - 1];
	if (!READ_ONCE(q->up))
		return NULL;
	mutex_lock(&q->lock);
	if (q->up && !READ_ONCE(peer->removed) &&
	    q->epoch == READ_ONCE(peer->epoch) &&
	    (epoch == VIRGO_EPOCH_ANY || epoch == q->epoch))
		return q;
	mutex_unlock(&q->lock);
	return NULL;
}

/* Drop the connection, if any.  Called with @conn_lock. */
static void vp_disconnect(struct virgo_peer *peer, int state)
{
	WRITE_ONCE(peer->state, state);
	vp_queues_close(peer, state == VIRGO_PEER_IDLE ? -EIO :
						     VIRGO_ERR_CONN_LOST);
	if (peer->sock)
		kernel_sock_shutdown(peer->sock, SHUT_RDWR);
	if (peer->rx) {
		kthread_stop(peer->rx);
		peer->rx = NULL;
		/* The receive thread's reference (virgo_peer_connect()). */
		kref_put(&peer->ref, vp_release);
	}
	vp_fail_all(peer, state == VIRGO_PEER_IDLE ? -EIO :
						 VIRGO_ERR_CONN_LOST);
	if (peer->sock) {
		vp_drop_memalloc(peer->sock);
		sock_release(peer->sock);
		peer->sock = NULL;
	}
}

/**
 * virgo_peer_connect() - make sure a peer is connected and greeted
 * @peer: the peer
 *
 * Connects (and authenticates) if needed.  A peer that failed recently is
 * not retried before its backoff expires.
 *
 * Return: 0 when the peer is up; -EAGAIN while backing off; -ENODEV once
 * it was removed from its set; or why the connection failed.
 */
int virgo_peer_connect(struct virgo_peer *peer)
{
	struct virgo_wire_hello_rep rep;
	u8 cn[VIRGO_WIRE_NONCE_LEN];
	struct socket *sock;
	int ret;

	if (READ_ONCE(peer->state) == VIRGO_PEER_UP)
		return 0;

	mutex_lock(&peer->conn_lock);
	if (peer->removed) {
		ret = -ENODEV;
		goto unlock;
	}
	if (peer->state == VIRGO_PEER_UP) {
		ret = 0;
		goto unlock;
	}
	if (peer->state == VIRGO_PEER_DOWN &&
	    time_before(jiffies, peer->next_try)) {
		ret = -EAGAIN;
		goto unlock;
	}
	vp_disconnect(peer, VIRGO_PEER_DOWN);

	ret = vp_sock_new(peer, &sock);
	if (ret)
		goto fail;
	peer->sock = sock;
	vp_sync_memalloc(peer);

	ret = kernel_connect(sock, &peer->addr.sa,
			     virgo_addr_len(&peer->addr), 0);
	if (ret)
		goto fail;
	ret = vp_greet(peer, &rep, cn);
	if (ret)
		goto fail;
	ret = vp_start_session(peer, &rep, cn);
	memzero_explicit(rep.token, sizeof(rep.token));
	if (ret)
		goto fail;

	atomic_set(&peer->suspect, 0);
	/*
	 * What "up" implies is in place before the state says so: a reader
	 * that sees VIRGO_PEER_UP (lock-free) sees no backoff left over.
	 */
	WRITE_ONCE(peer->backoff_ms, 0);
	WRITE_ONCE(peer->tried, true);
	WRITE_ONCE(peer->down_since, 0);
	/* Orders the stores above before the state for lock-free readers. */
	smp_store_release(&peer->state, VIRGO_PEER_UP);
	/* The receive thread holds a reference until it is reaped. */
	kref_get(&peer->ref);
	peer->rx = kthread_run(vp_rx_thread, peer, "virgo_rx/%u", peer->id);
	if (IS_ERR(peer->rx)) {
		ret = PTR_ERR(peer->rx);
		peer->rx = NULL;
		kref_put(&peer->ref, vp_release);
		goto fail;
	}
	if (peer->queues_ok)
		vp_queues_kick(peer, 0);
	mutex_unlock(&peer->conn_lock);
	return 0;

fail:
	/*
	 * Refused: nothing listens there, so no server holds the session
	 * either (a server's orphans live as long as it does).  Its chunks
	 * are lost now, not after a wait for a resume that cannot come.
	 */
	if (ret == -ECONNREFUSED && peer->resumable)
		vp_session_gone(peer);
	if (!READ_ONCE(peer->down_since))
		WRITE_ONCE(peer->down_since, jiffies | 1);
	vp_disconnect(peer, VIRGO_PEER_DOWN);
	WRITE_ONCE(peer->backoff_ms,
		   clamp(peer->backoff_ms * 2, VIRGO_BACKOFF_MIN_MS,
			 VIRGO_BACKOFF_MAX_MS));
	WRITE_ONCE(peer->next_try,
		   jiffies + msecs_to_jiffies(peer->backoff_ms));
	WRITE_ONCE(peer->tried, true);
unlock:
	mutex_unlock(&peer->conn_lock);
	return ret;
}

static void vp_connect_work(struct work_struct *work)
{
	struct virgo_peer *peer = container_of(to_delayed_work(work),
					       struct virgo_peer, connect_work);
	int ret = virgo_peer_connect(peer);

	wake_up_all(&peer->set->connect_wq);
	/* Failed: again once the backoff ends. */
	if (ret && ret != -ENODEV)
		virgo_peer_kick(peer);
	virgo_peer_put(peer);
}

/**
 * virgo_peer_kick() - connect a peer in the background unless it is up
 * @peer: the peer (the caller holds a reference)
 *
 * The attempt waits for the peer's backoff to end.  Does nothing for a
 * removed peer, or when an attempt is already queued.
 */
void virgo_peer_kick(struct virgo_peer *peer)
{
	unsigned long delay = 0, next = READ_ONCE(peer->next_try);
	int state = READ_ONCE(peer->state);

	if (READ_ONCE(peer->removed) || state == VIRGO_PEER_UP)
		return;
	if (state == VIRGO_PEER_DOWN && time_before(jiffies, next))
		delay = next - jiffies;
	/* The queued work's reference; never the last one here. */
	kref_get(&peer->ref);
	if (!queue_delayed_work(peer->set->connecting, &peer->connect_work,
				delay))
		kref_put(&peer->ref, vp_release);
}

/* Is @peer's session of @epoch back, or gone for good? */
static bool vp_session_settled(struct virgo_peer *peer, u32 epoch)
{
	return READ_ONCE(peer->removed) ||
	       READ_ONCE(peer->epoch) != epoch ||
	       READ_ONCE(peer->state) == VIRGO_PEER_UP;
}

/**
 * virgo_peer_wait_session() - wait for a lost connection's session
 * @peer: the peer (the caller holds a reference)
 * @epoch: the epoch of the session the caller's handles belong to
 * @deadline: jiffies after which the caller gives up
 *
 * After -ECONNRESET (VIRGO_ERR_CONN_LOST): the peer reconnects in the
 * background and, if the server still has the session, resumes it in the
 * same epoch.  Killable.
 *
 * Return: 0 when @peer is connected in @epoch again (send again); -EIO
 * when that session is gone (a new epoch, or the peer was removed);
 * -ETIMEDOUT at @deadline; -EINTR on a fatal signal.
 */
int virgo_peer_wait_session(struct virgo_peer *peer, u32 epoch,
			    unsigned long deadline)
{
	long left = (long)(deadline - jiffies);
	long ret;

	virgo_peer_kick(peer);
	if (left > 0 && !vp_session_settled(peer, epoch)) {
		ret = wait_event_killable_timeout(peer->set->connect_wq,
						  vp_session_settled(peer,
								     epoch),
						  left);
		if (ret < 0)
			return -EINTR;
	}
	if (READ_ONCE(peer->removed) || READ_ONCE(peer->epoch) != epoch)
		return -EIO;
	return READ_ONCE(peer->state) == VIRGO_PEER_UP ? 0 : -ETIMEDOUT;
}

static bool vp_all_tried(struct virgo_peer **peers, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		struct virgo_peer *peer = peers[i];

		if (!READ_ONCE(peer->tried) && !READ_ONCE(peer->removed))
			return false;
	}
	return true;
}

/**
 * virgo_peers_wait_tried() - wait for the first connection attempts
 * @set: the peer set
 * @peers: peers of @set (references held)
 * @nr: how many
 *
 * A peer is connected in the background from the moment it is added; a
 * caller about to place chunks waits until every peer's first attempt
 * has finished (bounded by connect_timeout_ms, killable), and never for
 * later attempts: a peer that is down costs nothing.
 *
 * Return: 0, or -EINTR on a fatal signal.
 */
int virgo_peers_wait_tried(struct virgo_peer_set *set,
			   struct virgo_peer **peers, unsigned int nr)
{
	long wait = msecs_to_jiffies(set->connect_timeout_ms);
	long ret;

	if (vp_all_tried(peers, nr))
		return 0;
	ret = wait_event_killable_timeout(set->connect_wq,
					  vp_all_tried(peers, nr), wait);
	return ret < 0 ? -EINTR : 0;
}

/**
 * virgo_peer_usable() - is a peer worth placing chunks on
 * @peer: the peer
 *
 * Return: true when it is connected and not suspect (a request to it
 * timed out since it last answered); never once it was removed.
 */
bool virgo_peer_usable(struct virgo_peer *peer)
{
	return !READ_ONCE(peer->removed) && !READ_ONCE(peer->draining) &&
		READ_ONCE(peer->state) == VIRGO_PEER_UP &&
		!atomic_read(&peer->suspect);
}

/**
 * virgo_peer_ping() - measure one round trip to a connected peer
 * @peer: the peer
 *
 * Return: 0 (the RTT is in @peer->rtt_ns) or a negative errno.
 */
int virgo_peer_ping(struct virgo_peer *peer)
{
	struct virgo_rpc *rpc;
	u64 stamp = ktime_get_ns();
	int ret;

	rpc = virgo_rpc_alloc(VIRGO_OP_PING, NULL, sizeof(stamp),
			      sizeof(stamp), GFP_KERNEL);
	if (!rpc)
		return -ENOMEM;
	ret = virgo_rpc_send(peer, VIRGO_EPOCH_ANY, rpc, &stamp, sizeof(stamp),
			     NULL, 0);
	if (ret) {
		virgo_rpc_free(rpc);
		return ret;
	}
	ret = virgo_rpc_wait(rpc, jiffies +
			     msecs_to_jiffies(peer->set->rpc_timeout_ms));
	if (virgo_rpc_gone(ret))
		return ret;
	if (!ret && memcmp(rpc->data, &stamp, sizeof(stamp)))
		ret = -EIO;
	virgo_rpc_free(rpc);
	return ret;
}

/**
 * virgo_rpc_call() - one request, sent and waited for
 * @peer: the peer
 * @epoch: as for virgo_rpc_send()
 * @op: VIRGO_OP_*
 * @payload: the request payload, @len bytes
 * @len: bytes in @payload
 * @data: WRITE data, or NULL
 * @data_len: bytes in @data
 * @rbuf: where the reply payload goes (exactly @rlen bytes on success)
 * @rlen: bytes expected in the reply payload
 * @out_epoch: set to the epoch it was sent in, or NULL
 *
 * Return: 0 or a negative errno (as virgo_rpc_send() and virgo_rpc_wait()).
 */
int virgo_rpc_call(struct virgo_peer *peer, u32 epoch, u8 op,
		   const void *payload, u32 len, const void *data, u32 data_len,
		   void *rbuf, u32 rlen, u32 *out_epoch)
{
	struct virgo_rpc *rpc;
	int ret;

	rpc = virgo_rpc_alloc(op, rbuf, rlen, 0, GFP_KERNEL);
	if (!rpc)
		return -ENOMEM;
	if (op == VIRGO_OP_ALLOC || op == VIRGO_OP_FREE ||
	    op == VIRGO_OP_DISCARD)
		rpc->count = virgo_wire_batch_count(payload);
	ret = virgo_rpc_send(peer, epoch, rpc, payload, len, data, data_len);
	if (ret) {
		virgo_rpc_free(rpc);
		return ret;
	}
	if (out_epoch)
		*out_epoch = rpc->epoch;
	ret = virgo_rpc_wait(rpc, jiffies +
			     msecs_to_jiffies(peer->set->rpc_timeout_ms));
	if (!virgo_rpc_gone(ret))
		virgo_rpc_free(rpc);
	return ret;
}

struct vp_orphans {
	struct work_struct work;
	struct virgo_peer *peer;
	u32 epoch;
	u32 count;
	u64 handles[];
};

/* Tries of one batch of orphan FREEs while no in-flight slot frees up. */
#define VP_ORPHAN_TRIES	3

/* Send one FREE of @n handles in @epoch; its reply is not waited for. */
static int vp_free_batch(struct virgo_peer *peer, u32 epoch,
			 const u64 *handles, u32 n)
{
	u32 len = VIRGO_WIRE_BATCH_HDR_LEN + n * VIRGO_WIRE_HANDLE_LEN;
	struct virgo_rpc *rpc;
	void *p;
	int ret = -ENOMEM;

	p = kmalloc(len, GFP_KERNEL);
	rpc = virgo_rpc_alloc(VIRGO_OP_FREE, NULL, VIRGO_WIRE_FREE_REP_LEN,
			      VIRGO_WIRE_FREE_REP_LEN, GFP_KERNEL);
	if (p && rpc && virgo_wire_put_free_req(p, len, handles, n) >= 0) {
		rpc->count = n;
		ret = virgo_rpc_send(peer, epoch, rpc, p, len, NULL, 0);
	}
	kfree(p);
	if (ret) {
		virgo_rpc_free(rpc);
		return ret;
	}
	virgo_rpc_forget(rpc);
	return 0;
}

/* Wait up to a connect timeout for @peer's session of @epoch. */
static int vp_orphans_wait(struct virgo_peer *peer, u32 epoch)
{
	unsigned int ms = peer->set->connect_timeout_ms;

	return virgo_peer_wait_session(peer, epoch,
				       jiffies + msecs_to_jiffies(ms));
}

static void vp_orphans_work(struct work_struct *work)
{
	struct vp_orphans *o = container_of(work, struct vp_orphans, work);
	struct virgo_peer *peer = o->peer;
	unsigned int tries = 0;
	u32 done = 0;

	/*
	 * -EIO: the session (and its chunks) is gone, or the peer was
	 * removed; nothing left to free.  -EBUSY: the connection is up but
	 * full; -ECONNRESET: it is down, the session may be resumed; try
	 * again, a bounded number of times.
	 */
	while (done < o->count) {
		u32 n = min(o->count - done, READ_ONCE(peer->lim.max_batch));
		int ret = vp_free_batch(peer, o->epoch, o->handles + done, n);

		if (ret == VIRGO_ERR_CONN_LOST && tries < VP_ORPHAN_TRIES) {
			ret = vp_orphans_wait(peer, o->epoch);
			if (!ret)
				ret = -EBUSY;	/* back: send it again */
		}
		if (ret == -EBUSY && ++tries < VP_ORPHAN_TRIES)
			continue;
		if (ret) {
			if (ret != -EIO)
				pr_warn_ratelimited("peer %s: %u chunks could not be freed (%d); they stay until the session ends\n",
						    peer->name, o->count - done,
						    ret);
			break;
		}
		done += n;
		tries = 0;
	}
	virgo_peer_put(peer);
	kvfree(o);
}

/**
 * virgo_peer_free_handles() - free chunks nobody waits for, in the background
 * @peer: the peer holding them
 * @epoch: the connection epoch the handles belong to
 * @handles: the handles
 * @count: how many
 *
 * Handles of an older epoch died with their session and are ignored (the
 * epoch is checked again when each FREE is sent).
 */
void virgo_peer_free_handles(struct virgo_peer *peer, u32 epoch,
			     const u64 *handles, u32 count)
{
	struct vp_orphans *o;

	if (!count || READ_ONCE(peer->epoch) != epoch)
		return;
	o = kvmalloc(struct_size(o, handles, count), GFP_KERNEL);
	if (!o)
		return;
	INIT_WORK(&o->work, vp_orphans_work);
	kref_get(&peer->ref);
	o->peer = peer;
	o->epoch = epoch;
	o->count = count;
	memcpy(o->handles, handles, count * sizeof(u64));
	queue_work(peer->set->wq, &o->work);
}

/* ---- the peer set ---------------------------------------------------- */

/* @nr - 1 more queues for @peer besides its own connection. */
static int vp_queues_alloc(struct virgo_peer *peer, unsigned int nr)
{
	unsigned int i;

	if (nr <= 1)
		return 0;
	peer->queues = kcalloc(nr - 1, sizeof(*peer->queues), GFP_KERNEL);
	if (!peer->queues)
		return -ENOMEM;
	peer->nr_queues = nr - 1;
	for (i = 0; i < peer->nr_queues; i++) {
		struct virgo_queue *q = &peer->queues[i];

		q->peer = peer;
		q->index = i + 1;
		mutex_init(&q->lock);
		INIT_WORK(&q->io_work, vp_queue_io);
	}
	return 0;
}

static void vp_queues_free(struct virgo_peer *peer)
{
	unsigned int i;

	for (i = 0; i < peer->nr_queues; i++) {
		WARN_ON(peer->queues[i].sock);
		mutex_destroy(&peer->queues[i].lock);
	}
	kfree(peer->queues);
}

static void vp_release(struct kref *ref)
{
	struct virgo_peer *peer = container_of(ref, struct virgo_peer, ref);

	WARN_ON(peer->sock || peer->rx);
	xa_destroy(&peer->pending);
	mutex_destroy(&peer->conn_lock);
	vp_queues_free(peer);
	kfree_rcu(peer, rcu);
}

/**
 * virgo_peer_put() - drop a reference to a peer
 * @peer: the peer
 */
void virgo_peer_put(struct virgo_peer *peer)
{
	kref_put(&peer->ref, vp_release);
}

/**
 * virgo_peer_get() - find a listed peer by id
 * @set: the peer set
 * @id: the peer's id
 *
 * Return: the peer with a reference, or NULL.
 */
struct virgo_peer *virgo_peer_get(struct virgo_peer_set *set, u32 id)
{
	struct virgo_peer *peer;

	rcu_read_lock();
	peer = xa_load(&set->ids, id);
	if (peer && !kref_get_unless_zero(&peer->ref))
		peer = NULL;
	rcu_read_unlock();
	return peer;
}

/*
 * Parse "ADDR:PORT" or "ADDR:PORT@domain", ADDR a.b.c.d or [ipv6]
 * (virgo_addr.h), @domain may be NULL: the label is then ignored.  A
 * label is 1..15 of [A-Za-z0-9_.-].
 */
static int vp_parse(const char *spec, size_t len, union virgo_addr *addr,
		    char *domain)
{
	const char *at = memchr(spec, '@', len);
	size_t i;

	if (domain)
		domain[0] = '\0';
	if (at) {
		size_t dlen = spec + len - at - 1;

		if (!dlen || dlen >= VIRGO_PEER_DOMAIN_LEN)
			return -EINVAL;
		for (i = 1; i <= dlen; i++)
			if (!isalnum(at[i]) && !strchr("_.-", at[i]))
				return -EINVAL;
		if (domain) {
			memcpy(domain, at + 1, dlen);
			domain[dlen] = '\0';
		}
		len = at - spec;
	}
	return virgo_addr_parse(spec, len, addr);
}

static struct virgo_peer *vp_find(struct virgo_peer_set *set,
				  const union virgo_addr *addr)
{
	struct virgo_peer *peer;

	list_for_each_entry(peer, &set->list, node)
		if (virgo_addr_equal(&peer->addr, addr))
			return peer;
	return NULL;
}

/*
 * The one word @spec holds, white space around it allowed: *@spec is
 * moved to it, *@len is its length.  -EINVAL when anything follows it.
 */
static int vp_spec_word(const char **spec, size_t *len)
{
	*spec = skip_spaces(*spec);
	*len = strcspn(*spec, " \t\n");
	return *skip_spaces(*spec + *len) ? -EINVAL : 0;
}

/**
 * virgo_peer_add() - add a peer; it is connected in the background
 * @set: the peer set
 * @spec: "ADDR:PORT" or "ADDR:PORT@domain" (a failure-domain label),
 *	ADDR a.b.c.d or [ipv6] (virgo_addr.h), optionally surrounded by
 *	white space
 *
 * Return: 0, -EINVAL for a malformed @spec, -EEXIST, or -ENOMEM.
 */
int virgo_peer_add(struct virgo_peer_set *set, const char *spec)
{
	char domain[VIRGO_PEER_DOMAIN_LEN];
	struct virgo_peer *peer;
	union virgo_addr addr;
	size_t len;
	u32 id;
	int ret;

	ret = vp_spec_word(&spec, &len);
	if (!ret)
		ret = vp_parse(spec, len, &addr, domain);
	if (ret)
		return ret;

	peer = kzalloc(sizeof(*peer), GFP_KERNEL);
	if (!peer)
		return -ENOMEM;
	peer->addr = addr;
	strscpy(peer->domain, domain, sizeof(peer->domain));
	virgo_addr_format(&addr, peer->name, sizeof(peer->name));
	kref_init(&peer->ref);
	peer->set = set;
	mutex_init(&peer->conn_lock);
	xa_init(&peer->pending);
	init_waitqueue_head(&peer->slot_wq);
	INIT_DELAYED_WORK(&peer->connect_work, vp_connect_work);
	INIT_DELAYED_WORK(&peer->queues_work, vp_queues_work);
	peer->max_inflight = 1;
	virgo_wire_limits_default(&peer->lim);
	ret = vp_queues_alloc(peer, clamp(set->queues, 1U, VIRGO_QUEUES_MAX));
	if (ret) {
		kfree(peer);
		return ret;
	}

	mutex_lock(&set->lock);
	if (vp_find(set, &addr)) {
		ret = -EEXIST;
		goto unlock;
	}
	id = ++set->next_id;
	peer->id = id;
	ret = xa_insert(&set->ids, id, peer, GFP_KERNEL);
	if (ret)
		goto unlock;
	list_add_tail(&peer->node, &set->list);
	set->nr++;
	virgo_peer_kick(peer);
	mutex_unlock(&set->lock);
	return 0;

unlock:
	mutex_unlock(&set->lock);
	mutex_destroy(&peer->conn_lock);
	vp_queues_free(peer);
	kfree(peer);
	return ret;
}

/* Take a peer out of the set and close it.  Called with set->lock. */
static void vp_remove(struct virgo_peer_set *set, struct virgo_peer *peer)
{
	list_del(&peer->node);
	set->nr--;
	xa_erase(&set->ids, peer->id);
	mutex_lock(&peer->conn_lock);
	/* Users holding a reference can no longer connect it, or send. */
	WRITE_ONCE(peer->removed, true);
	mutex_unlock(&peer->conn_lock);
	if (cancel_delayed_work_sync(&peer->connect_work))
		virgo_peer_put(peer);
	if (cancel_delayed_work_sync(&peer->queues_work))
		virgo_peer_put(peer);
	mutex_lock(&peer->conn_lock);
	vp_disconnect(peer, VIRGO_PEER_IDLE);
	mutex_unlock(&peer->conn_lock);
	/* Also ends virgo_peer_wait_session() on it: -EIO. */
	wake_up_all(&set->connect_wq);
	virgo_peer_put(peer);
}

/*
 * The listed peer "ADDR:PORT" names, with the set's lock held (also
 * when NULL is returned, with *@ret -EINVAL or -ENOENT; else *@ret is 0).
 */
static struct virgo_peer *vp_find_spec_locked(struct virgo_peer_set *set,
					      const char *spec, int *ret)
{
	struct virgo_peer *peer = NULL;
	union virgo_addr addr;
	size_t len;

	*ret = vp_spec_word(&spec, &len);
	if (!*ret)
		*ret = vp_parse(spec, len, &addr, NULL);
	mutex_lock(&set->lock);
	if (!*ret) {
		peer = vp_find(set, &addr);
		*ret = peer ? 0 : -ENOENT;
	}
	return peer;
}

/**
 * virgo_peer_del() - remove a peer that holds none of our chunks
 * @set: the peer set
 * @spec: "ADDR:PORT" as for virgo_peer_add() (a "@domain" suffix is
 *	ignored)
 *
 * Return: 0, -EINVAL, -ENOENT, or -EBUSY while chunks live there.
 */
int virgo_peer_del(struct virgo_peer_set *set, const char *spec)
{
	struct virgo_peer *peer;
	int ret;

	peer = vp_find_spec_locked(set, spec, &ret);
	if (peer && atomic64_read(&peer->placed))
		ret = -EBUSY;
	else if (peer)
		vp_remove(set, peer);
	mutex_unlock(&set->lock);
	return ret;
}

/**
 * virgo_peer_drain() - move every chunk off a peer, take nothing new there
 * @set: the peer set
 * @spec: "ADDR:PORT" as for virgo_peer_del()
 *
 * The client's repair moves its replicas elsewhere; once it holds none,
 * virgo_peer_del() can remove it.
 *
 * Return: 0, -EINVAL, or -ENOENT.
 */
int virgo_peer_drain(struct virgo_peer_set *set, const char *spec)
{
	struct virgo_peer *peer;
	int ret;

	peer = vp_find_spec_locked(set, spec, &ret);
	if (peer)
		WRITE_ONCE(peer->draining, true);
	mutex_unlock(&set->lock);
	return ret;
}

/**
 * virgo_peers_add_list() - add a comma-separated list of peers
 * @set: the peer set
 * @list: "ADDR:PORT[@domain],..." (ADDR a.b.c.d or [ipv6]), or
 *	NULL/empty for none
 *
 * Return: 0, or the first error (the peers before it stay added).
 */
int virgo_peers_add_list(struct virgo_peer_set *set, const char *list)
{
	while (list && *list) {
		size_t len = strcspn(list, ",");
		char spec[VIRGO_PEER_SPEC_LEN];
		int ret;

		if (len >= sizeof(spec))
			return -EINVAL;
		memcpy(spec, list, len);
		spec[len] = '\0';
		ret = virgo_peer_add(set, spec);
		if (ret)
			return ret;
		list += len;
		if (*list == ',')
			list++;
	}
	return 0;
}

/**
 * virgo_peers_snapshot() - references to every listed peer
 * @set: the peer set
 * @nr: set to the number of peers returned
 *
 * Return: an array to release with virgo_peers_snapshot_put(), or NULL
 * when there is no peer or no memory.
 */
struct virgo_peer **virgo_peers_snapshot(struct virgo_peer_set *set,
					 unsigned int *nr)
{
	struct virgo_peer **peers = NULL, *peer;
	unsigned int n = 0;

	mutex_lock(&set->lock);
	if (set->nr)
		peers = kvmalloc_array(set->nr, sizeof(*peers), GFP_KERNEL);
	if (peers) {
		list_for_each_entry(peer, &set->list, node) {
			kref_get(&peer->ref);
			peers[n++] = peer;
		}
	}
	mutex_unlock(&set->lock);
	*nr = n;
	return peers;
}

/**
 * virgo_peers_snapshot_put() - release a snapshot
 * @peers: from virgo_peers_snapshot(), or NULL
 * @nr: its size
 */
void virgo_peers_snapshot_put(struct virgo_peer **peers, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++)
		virgo_peer_put(peers[i]);
	kvfree(peers);
}

/**
 * virgo_peers_init() - initialise an empty peer set
 * @set: the set
 * @psk: pre-shared key, or NULL
 * @psk_len: bytes in @psk (at most 64)
 * @max_chunk: the largest chunk the client asks for
 * @connect_timeout_ms: bound on connect + HELLO + AUTH
 * @rpc_timeout_ms: bound on one request
 *
 * Return: 0 or a negative errno.
 */
int virgo_peers_init(struct virgo_peer_set *set, const u8 *psk, size_t psk_len,
		     u32 max_chunk, unsigned int connect_timeout_ms,
		     unsigned int rpc_timeout_ms)
{
	int ret;

	memset(set, 0, sizeof(*set));
	if (psk_len > sizeof(set->psk) || !connect_timeout_ms ||
	    !rpc_timeout_ms)
		return -EINVAL;
	/* What we receive with: replies to requests we make, no bigger. */
	set->own.max_chunk = max_chunk;
	set->own.max_batch = VIRGO_WIRE_DEF_MAX_BATCH;
	set->own.max_payload = max3(max_chunk + VIRGO_WIRE_RW_REQ_LEN,
				    VIRGO_WIRE_BATCH_HDR_LEN +
				    VIRGO_WIRE_HANDLE_LEN *
				    VIRGO_WIRE_DEF_MAX_BATCH,
				    (u32)VIRGO_WIRE_MIN_PAYLOAD);
	if (virgo_wire_limits_check(&set->own))
		return -EINVAL;
	mutex_init(&set->lock);
	INIT_LIST_HEAD(&set->list);
	xa_init(&set->ids);
	init_waitqueue_head(&set->connect_wq);
	set->connect_timeout_ms = connect_timeout_ms;
	set->rpc_timeout_ms = rpc_timeout_ms;
	set->queues = 1;
	set->wq = alloc_workqueue("virgo_peers", WQ_UNBOUND, 0);
	if (!set->wq)
		return -ENOMEM;
	/* As nvme-tcp's: replies a swap write-out waits for come through. */
	set->rxwq = alloc_workqueue("virgo_rx", WQ_MEM_RECLAIM | WQ_HIGHPRI,
				    0);
	if (!set->rxwq) {
		destroy_workqueue(set->wq);
		return -ENOMEM;
	}
	/*
	 * A bounded number of connects at once: a thousand peers added
	 * together must not overflow their servers' listen backlogs.
	 */
	set->connecting = alloc_workqueue("virgo_connect", WQ_UNBOUND,
					  VP_CONNECTS_MAX);
	if (!set->connecting) {
		destroy_workqueue(set->rxwq);
		destroy_workqueue(set->wq);
		return -ENOMEM;
	}
	if (psk_len) {
		memcpy(set->psk, psk, psk_len);
		set->psk_len = psk_len;
		set->hmac = crypto_alloc_shash("hmac(sha256)", 0, 0);
		if (IS_ERR(set->hmac)) {
			ret = PTR_ERR(set->hmac);
			set->hmac = NULL;
			goto fail;
		}
		ret = crypto_shash_setkey(set->hmac, set->psk, psk_len);
		if (ret)
			goto fail;
	}
	return 0;

fail:
	crypto_free_shash(set->hmac);
	destroy_workqueue(set->connecting);
	destroy_workqueue(set->rxwq);
	destroy_workqueue(set->wq);
	memzero_explicit(set->psk, sizeof(set->psk));
	return ret;
}

/**
 * virgo_peers_destroy() - close and drop every peer
 * @set: the set
 */
void virgo_peers_destroy(struct virgo_peer_set *set)
{
	struct virgo_peer *peer, *tmp;

	/* Orphan FREEs still queued go out first. */
	flush_workqueue(set->wq);
	mutex_lock(&set->lock);
	list_for_each_entry_safe(peer, tmp, &set->list, node)
		vp_remove(set, peer);
	mutex_unlock(&set->lock);
	destroy_workqueue(set->connecting);
	destroy_workqueue(set->rxwq);
	destroy_workqueue(set->wq);
	xa_destroy(&set->ids);
	crypto_free_shash(set->hmac);
	memzero_explicit(set->psk, sizeof(set->psk));
	mutex_destroy(&set->lock);
}
