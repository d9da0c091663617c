// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_clouddrec: lends this node's kernel memory to virgo clients.
 *
 * One listening kernel socket and an accept kthread.  Each client
 * connection is driven by its socket callbacks, as nvmet-tcp does: data
 * arriving, or room to send, queues the session's I/O work, which never
 * waits: it sends what its send queue holds as far as the socket takes
 * it, reads what is there, and for every complete frame checks it with
 * the shared codec (include/virgo_wire.h), executes it and queues the
 * reply, one request at a time per connection.  A connection whose send
 * queue is full reads no new request until its client drains it.  With
 * capability QUEUES a client attaches further connections to its session
 * (JOIN, protocol.md 6.2): each has its own socket, receive and send
 * state and I/O work; they share the session's chunk table, whose mutex
 * a connection's I/O work holds while it runs (it never waits).  No thread
 * waits on a client, so thousands of sessions, idle or deaf, cost no
 * threads; a reaper closes sessions that stay idle, leave a frame half
 * sent, do not read their replies, or do not finish the handshake, for
 * too long.
 *
 * Chunks are zeroed pages (a kmalloc object below a page), the first
 * WRITE's taken from a pool of pre-zeroed pages; READ replies go to the
 * socket by page reference.  Chunks are named on the wire by opaque handles,
 * never by address: a session's 32-bit id in the upper half (a
 * server-wide counter from a random start, so sessions never share one),
 * the index in the session's xarray in the lower half (a counter that
 * never repeats within a session).  A handle of another session, or of a
 * session that ended, is therefore only ever NOENT.  Everything a session
 * allocated is freed when it ends, however it ends.  A chunk gets its
 * memory at its first WRITE; DISCARD (capability DISCARD) gives it back
 * and leaves the chunk as ALLOC did: reserved, reading as zeroes.
 *
 * This is the trust boundary of virgo: every length, count, handle and
 * offset from the wire is checked before it is used; nothing is allocated
 * for a peer before it has finished the handshake but its session (frames
 * before that are at most HELLO-sized and land in the session itself);
 * every chunk is charged to the lending budget with what it really costs.
 *
 * Unload (clouddrec_server_stop()): stop accepting and reaping, shut
 * every session's socket down (which queues its I/O work, which closes
 * it), drain the workqueue, release the listener.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <crypto/algapi.h>
#include <crypto/hash.h>
#include <linux/debugfs.h>
#include <linux/inet.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/random.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/tcp.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <net/sock.h>

#include <virgo_kvec.h>
#include <virgo_wire.h>

#include "virgo_clouddrec.h"

static const char *const clouddrec_stat_names[CD_STAT_NR] = {
	[CD_STAT_SESSIONS_ACCEPTED]	= "sessions_accepted",
	[CD_STAT_SESSIONS_REFUSED]	= "sessions_refused",
	[CD_STAT_SESSIONS_CLOSED]	= "sessions_closed",
	[CD_STAT_REQUESTS]		= "requests",
	[CD_STAT_CHUNKS_ALLOCATED]	= "chunks_allocated",
	[CD_STAT_CHUNKS_FREED]		= "chunks_freed",
	[CD_STAT_BYTES_WRITTEN]		= "bytes_written",
	[CD_STAT_BYTES_READ]		= "bytes_read",
	[CD_STAT_ERR_HEADER]		= "err_header",
	[CD_STAT_ERR_PAYLOAD]		= "err_payload",
	[CD_STAT_ERR_SEQUENCE]		= "err_sequence",
	[CD_STAT_ERR_PERM]		= "err_perm",
	[CD_STAT_ERR_AUTH]		= "err_auth",
	[CD_STAT_ERR_HANDLE]		= "err_handle",
	[CD_STAT_ERR_RANGE]		= "err_range",
	[CD_STAT_ERR_NOMEM]		= "err_nomem",
	[CD_STAT_ERR_TIMEOUT]		= "err_timeout",
	[CD_STAT_SESSIONS_ORPHANED]	= "sessions_orphaned",
	[CD_STAT_SESSIONS_RESUMED]	= "sessions_resumed",
	[CD_STAT_ORPHANS_EXPIRED]	= "orphans_expired",
	[CD_STAT_ERR_RESUME]		= "err_resume",
	[CD_STAT_CHUNKS_DISCARDED]	= "chunks_discarded",
	[CD_STAT_QUEUES_JOINED]		= "queues_joined",
};

/**
 * struct cd_pool - zeroed pages kept for the chunks' first WRITEs
 * @lock: protects @pages and @nr
 * @pages: a stack of @nr pages, room for @max
 * @nr: pages in @pages
 * @max: pages the pool holds at most (cfg.pool_bytes)
 * @refill: tops the pool up (cd_pool_refill()), in the server's workqueue
 *
 * A first WRITE takes its chunk's pages from here and allocates only what
 * the pool lacks; the refill work allocates and zeroes the pages in the
 * background, away from the request's path.  It fills only while a
 * session is past its handshake and the node is above min_free; the pages
 * go back to the page allocator when the last such session ends and when
 * the server stops.  Pool pages are not lent: they are counted apart from
 * the lending budget (clouddrec_server_pooled_bytes()).
 */
struct cd_pool {
	/* Protects pages[] and nr. */
	spinlock_t lock;
	struct page **pages;
	u32 nr;
	u32 max;
	struct work_struct refill;
};

/**
 * struct clouddrec_server - one listening server
 * @cfg: its configuration (@cfg.psk points into @psk)
 * @psk: copy of the pre-shared key
 * @lim: wire limits derived from @cfg
 * @listener: the listening socket
 * @acceptor: the accept kthread
 * @wq: runs the session workers
 * @hmac: hmac(sha256) keyed with @psk, or NULL without a key
 * @lock: protects @sessions, @nr_sessions, @orphans, @nr_orphans, the
 *	sessions' @tab pointers and @stopping
 * @sessions: live sessions
 * @nr_sessions: number of entries in @sessions
 * @orphans: chunk tables of sessions whose connection ended, oldest first
 * @nr_orphans: entries in @orphans
 * @stopping: set once by clouddrec_server_stop(); no session starts after
 * @lent_bytes: bytes in chunks currently lent (their sizes), all sessions
 * @lent_chunks: chunks currently lent, all sessions
 * @charged: the lending budget in use, <= cfg.max_memory: what every chunk
 *	alive costs (cd_charge()), including chunks freed by their client
 *	whose memory a queued READ reply still sends from (a discarded
 *	chunk is charged once, to its value entry, whatever still sends
 *	from its old memory)
 * @materialised: bytes of chunk memory allocated (written chunks, and
 *	freed or discarded ones a queued READ reply still sends from)
 * @materialised_chunks: chunks whose memory @materialised counts
 * @next_sid: last session id handed out (starts at a random value)
 * @rx_buffered: bytes of session receive buffers allocated, all sessions
 * @tx_queued: replies queued for clients (not yet taken by their sockets),
 *	all sessions
 * @stats: event counters, indexed by enum clouddrec_stat
 * @pool: pre-zeroed pages for the chunks' first WRITEs (cd_pool_take())
 * @ready_sessions: sessions past HELLO (and AUTH): the pool is kept
 *	filled while there is one
 * @reaper: closes sessions past their idle, frame, send or handshake
 *	timeout, frees orphans past orphan_timeout
 * @reap_period: jiffies between two reaper runs
 * @dir: debugfs directory, or NULL
 */
struct clouddrec_server {
	struct clouddrec_config cfg;
	u8 psk[64];
	struct virgo_wire_limits lim;
	struct socket *listener;
	struct task_struct *acceptor;
	struct workqueue_struct *wq;
	struct crypto_shash *hmac;
	/* Protects sessions, orphans, their counts, s->tab and stopping. */
	struct mutex lock;
	struct list_head sessions;
	unsigned int nr_sessions;
	struct list_head orphans;
	unsigned int nr_orphans;
	bool stopping;
	atomic64_t lent_bytes;
	atomic64_t lent_chunks;
	atomic64_t charged;
	atomic64_t materialised;
	atomic64_t materialised_chunks;
	atomic_t next_sid;
	atomic64_t rx_buffered;
	atomic64_t tx_queued;
	atomic64_t stats[CD_STAT_NR];
	struct cd_pool pool;
	atomic_t ready_sessions;
	struct delayed_work reaper;
	unsigned long reap_period;
	struct dentry *dir;
};

/**
 * struct clouddrec_chunk - one lent chunk, once written
 * @size: bytes of the chunk
 * @refs: 1 while the chunk is in its session's xarray, plus 1 per queued
 *	READ reply that sends from it, plus 1 while a WRITE's data is
 *	received into it; the last put frees it
 * @sending: queued READ replies that send from it (a WRITE waits for 0)
 * @waiter: a WRITE on some connection of the session waits for
 *	@sending to drop to 0: the last reply wakes the session's I/O works
 * @discarded: DISCARD put a value entry in its place, which holds its
 *	charge now: the last put frees the memory without uncharging
 * @nr_pages: pages in @pages; 0 for a chunk below CD_PAGED_MIN, whose
 *	bytes are at @data
 * @data: a small chunk's memory (one kmalloc object), else NULL
 * @pages: a paged chunk's memory, PAGE_SIZE bytes each, in order: pages
 *	of its own (never slab), so that READ replies go to the socket by
 *	page reference (cd_tx_send_page()) and the network stack holds its
 *	own reference to every page it may still send
 *
 * ALLOC only reserves the budget and records a chunk as an xarray value
 * entry holding its size: no allocation per chunk.  The first WRITE
 * replaces that entry by this structure (cd_chunk_mem_new(): memory
 * zeroed, most of it taken from the server's pool of pre-zeroed pages);
 * a READ before it returns zeroes.  Only the I/O work of a connection of
 * the session (and a connection's release) touches @refs, @sending,
 * @waiter, @pages and frees a chunk, always under the table's lock
 * (struct cd_table).
 */
struct clouddrec_chunk {
	u32 size;
	u32 refs;
	u32 sending;
	bool waiter;
	u32 nr_pages;
	bool discarded;
	u8 *data;
	struct page *pages[];
};

/*
 * What one chunk is charged to the lending budget beyond its data and its
 * page array: its xarray slot and a share of the xarray node (576 bytes
 * for 64 slots), struct clouddrec_chunk once written, slab rounding.
 */
#define CD_CHUNK_OVERHEAD	64

/* A chunk of at least this many bytes gets pages of its own. */
#define CD_PAGED_MIN		PAGE_SIZE

/*
 * What a chunk of @size bytes costs the lender: below CD_PAGED_MIN one
 * kmalloc object (its slab size) and the metadata; from there whole pages,
 * their array and the metadata.  A 1-byte chunk costs 72 bytes, a 1 MiB
 * chunk 1 MiB + 4 KiB (the array of 256 page pointers) + 64.
 */
static u64 cd_charge(u32 size)
{
	u32 nr = DIV_ROUND_UP(size, PAGE_SIZE);

	if (size < CD_PAGED_MIN)
		return kmalloc_size_roundup(size) + CD_CHUNK_OVERHEAD;
	return (u64)nr * PAGE_SIZE + CD_CHUNK_OVERHEAD +
	       kmalloc_size_roundup(struct_size((struct clouddrec_chunk *)NULL,
						pages, nr));
}

/**
 * clouddrec_chunk_cost() - what a chunk costs the lending budget
 * @size: the chunk's size in bytes
 *
 * Return: the bytes of max_memory a chunk of @size holds (its memory and
 * metadata), as clouddrec_server_charged_bytes() counts them.
 */
u64 clouddrec_chunk_cost(u32 size)
{
	return cd_charge(size);
}

/* Bytes of a chunk entry of a session's xarray, written or not. */
static u32 cd_entry_size(const void *entry)
{
	if (xa_is_value(entry))
		return xa_to_value(entry);
	return ((const struct clouddrec_chunk *)entry)->size;
}

/* Where the receive side of a session is. */
enum cd_rx_stage {
	CD_RX_HDR,	/* reading a header; rx_have bytes of it so far */
	CD_RX_PAYLOAD,	/* reading rx_want bytes of rx_msg's payload */
	CD_RX_WAIT,	/* a WRITE waits for queued READs of rx_chunk */
	CD_RX_DIRECT,	/* reading a WRITE's data straight into the chunk */
	CD_RX_DISCARD,	/* dropping a refused frame's data; reply rx_err */
};

/**
 * struct cd_tx - one reply in a session's send queue
 * @node: entry in the session's @tx_queue
 * @len: bytes of the reply: header and payload
 * @sent: bytes of it sent so far
 * @data: the payload after the header; NULL for @len - header zeroes, or
 *	for bytes of @chunk
 * @chunk: the chunk the payload is sent from (a reference held), or NULL
 * @chunk_off: where in @chunk the payload starts
 * @owned: a buffer @data points into, freed with the reply, or NULL
 * @hdr: the header
 * @small: payloads of up to VIRGO_WIRE_HELLO_REP_MAX bytes (all but
 *	ALLOC and READ replies) are copied here
 */
struct cd_tx {
	struct list_head node;
	u32 len;
	u32 sent;
	const u8 *data;
	struct clouddrec_chunk *chunk;
	u32 chunk_off;
	void *owned;
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	u8 small[VIRGO_WIRE_HELLO_REP_MAX];
};

/* Request payloads up to this size are received into the session. */
#define CD_RX_SMALL	64

/* A receive buffer bigger than this is freed once its frame is served. */
#define CD_RX_KEEP	(16 * 1024)

/*
 * Largest frame accepted before the handshake is done: HELLO's 40 bytes
 * (AUTH's are 32).  A longer one closes the connection: a peer that has
 * not proven anything gets no buffer.
 */
#define CD_PREAUTH_MAX_LEN	VIRGO_WIRE_HELLO_REQ_LEN

/**
 * struct cd_table - the chunks of one session
 * @lock: held by the I/O work of a connection of the session for a whole
 *	run, and by a connection's release while it gives back what its
 *	queues hold; protects @chunks' entries and the chunks in them,
 *	@next_index, and the writes of @bytes and @nr_chunks.  Taken before
 *	srv->lock, never under it.
 * @conns: connections attached (the first one and those that joined);
 *	under srv->lock
 * @chunks: index -> size as a value entry, or struct clouddrec_chunk
 * @sid: the session id: upper half of every handle, and its resume id
 * @next_index: last xarray index handed out (lower half of a handle)
 * @bytes: bytes in @chunks
 * @nr_chunks: entries in @chunks
 * @resumable: the session's connection agreed on RESUME: the table
 *	outlives it as an orphan
 * @token: the resume token of that connection's HELLO reply
 * @orphaned: jiffies the table became an orphan
 * @orphan_node: entry in the server's orphans list while an orphan
 *
 * Owned by the connections attached to it (their I/O works, one at a time
 * under @lock, are its only writers) or, once the last one ended, by the
 * server's orphans list (under its lock); RESUME moves an orphan to a new
 * connection (protocol.md 6.1), JOIN attaches one more (6.2).
 */
struct cd_table {
	/* Serialises the works of the session's connections; see above. */
	struct mutex lock;
	u32 conns;
	struct xarray chunks;
	u32 sid;
	u32 next_index;
	u64 bytes;
	u64 nr_chunks;
	bool resumable;
	u8 token[VIRGO_WIRE_TOKEN_LEN];
	unsigned long orphaned;
	struct list_head orphan_node;
};

/**
 * struct clouddrec_session - one client connection
 * @srv: the server
 * @sock: the connection
 * @io_work: sends, reads and serves (clouddrec_session_io())
 * @release_work: frees the session once it is closed
 * @node: entry in @srv->sessions
 * @peer: the client's address (per-address cap, debugfs)
 * @closing: set once; no I/O work runs after it, the release work frees
 * @timed_out: the reaper closed it
 * @ready: HELLO done and, with a key, AUTH too
 * @accepted: jiffies the connection was accepted (handshake deadline)
 * @last_rx: jiffies of the last byte received
 * @frame_start: jiffies the current frame began
 * @tx_since: jiffies of the last send progress, or of the first queued
 *	reply when the queue was empty
 * @tx_bytes: bytes in @tx_queue not sent yet
 * @tx_nr: replies in @tx_queue
 * @saved_data_ready: the socket's callback before we took it over
 * @saved_state_change: likewise
 * @saved_write_space: likewise
 * @tx_queue: replies not completely sent, oldest first
 * @rx_stage: enum cd_rx_stage
 * @rx_have: bytes of the current stage received
 * @rx_want: bytes the current stage needs
 * @rx_hdr: the header being received
 * @rx_msg: the decoded header, after CD_RX_HDR
 * @rx_payload: where the current payload is received (@rx_small or @buf)
 * @rx_direct_off: where in @rx_chunk CD_RX_DIRECT puts the data
 * @rx_chunk: the chunk of a WRITE in CD_RX_WAIT or CD_RX_DIRECT (a
 *	reference held)
 * @rx_err: the error a CD_RX_DISCARD frame is answered with
 * @rx_overlong: the payload is longer than any valid one of its opcode:
 *	only its head (up to 16 bytes) is received, to find the status
 * @rx_small: payloads of up to CD_RX_SMALL bytes
 * @tab: the session's chunks, shared with the connections that joined it
 *	(replaced by a RESUME or a JOIN, under srv->lock)
 * @retired: the table a RESUME or JOIN replaced, freed once the I/O work
 *	has let go of its lock
 * @resumed: a RESUME succeeded on this connection
 * @joined: a JOIN succeeded on this connection
 * @queues: the connection's HELLO agreed on QUEUES
 * @discard: the connection's HELLO agreed on DISCARD
 * @hello_done: HELLO was answered
 * @authed: AUTH succeeded, or the server has no key
 * @client_nonce: from the client's HELLO
 * @server_nonce: from our HELLO reply
 * @buf: receive buffer for payloads over CD_RX_SMALL (ALLOC, FREE)
 * @buf_size: bytes allocated at @buf
 *
 * Only the connection's I/O work touches the fields after @tx_queue, and
 * the work never runs twice at once (one work item, one queue), then the
 * release work after it; chunks they point to are @tab's, under its lock.
 * debugfs reads @tab's @bytes and @nr_chunks and @ready racily, for
 * display, under srv->lock; the reaper reads @ready, @last_rx,
 * @frame_start, @tx_*, @tab's @nr_chunks and @rx_stage/@rx_have racily
 * (READ_ONCE), under srv->lock.
 */
struct clouddrec_session {
	struct clouddrec_server *srv;
	struct socket *sock;
	struct work_struct io_work;
	struct work_struct release_work;
	struct list_head node;
	union virgo_addr peer;
	bool closing;
	bool timed_out;
	bool ready;
	unsigned long accepted;
	unsigned long last_rx;
	unsigned long frame_start;
	unsigned long tx_since;
	u64 tx_bytes;
	u32 tx_nr;
	void (*saved_data_ready)(struct sock *sk);
	void (*saved_state_change)(struct sock *sk);
	void (*saved_write_space)(struct sock *sk);
	struct list_head tx_queue;
	int rx_stage;
	u32 rx_have;
	u32 rx_want;
	u8 rx_hdr[VIRGO_WIRE_HDR_LEN];
	struct virgo_wire_msg rx_msg;
	u8 *rx_payload;
	u32 rx_direct_off;
	struct clouddrec_chunk *rx_chunk;
	int rx_err;
	bool rx_overlong;
	u8 rx_small[CD_RX_SMALL];
	struct cd_table *tab;
	struct cd_table *retired;
	bool resumed;
	bool joined;
	bool queues;
	bool discard;
	bool hello_done;
	bool authed;
	u8 client_nonce[VIRGO_WIRE_NONCE_LEN];
	u8 server_nonce[VIRGO_WIRE_NONCE_LEN];
	void *buf;
	size_t buf_size;
};

/* TCP keepalive of a session: first probe, interval, probes. */
#define CD_KEEPIDLE_S	30
#define CD_KEEPINTVL_S	10
#define CD_KEEPCNT	6

/*
 * Unsent reply bytes a session's socket takes (TCP_NOTSENT_LOWAT); the
 * rest waits in the session's queue, where a READ reply is a reference
 * to its chunk, not a copy.  A client that stops reading pins this much
 * socket memory plus its receive window, not the socket's whole
 * (autotuned, up to tcp_wmem[2]) send buffer.
 */
#define CD_NOTSENT_LOWAT	(128 * 1024)

/*
 * Default size of the pool of zeroed pages (cfg.pool_bytes): none.  In
 * the cluster benchmark (TCG guests, CPU-bound) a 16 MiB pool did not
 * measurably change cold writes (docs/performance.md): its refill zeroes
 * on the same CPUs the transfer needs.
 */
#define CD_POOL_DEFAULT	0ULL

/* Upper bound of max_sessions: sessions cost memory, not threads. */
#define CD_MAX_SESSIONS	65536

/* Default and upper bound of max_queues (connections of one session). */
#define CD_QUEUES_DEFAULT	16
#define CD_MAX_QUEUES		256

/*
 * Chunks freed (or discarded) between two cond_resched(): a chunk is up
 * to max_chunk / PAGE_SIZE pages to free (256 for 1 MiB).
 */
#define CD_FREE_BATCH	64

static void cd_count(struct clouddrec_server *srv, enum clouddrec_stat stat)
{
	atomic64_inc(&srv->stats[stat]);
}

/**
 * clouddrec_config_default() - fill a configuration with the defaults
 * @cfg: the configuration
 *
 * Listens on any address, an ephemeral port, no key; lends up to a
 * quarter of RAM and keeps 1/32 of RAM available to the node itself; no
 * pool of zeroed pages.
 */
void clouddrec_config_default(struct clouddrec_config *cfg)
{
	u64 ram = (u64)totalram_pages() << PAGE_SHIFT;

	memset(cfg, 0, sizeof(*cfg));
	cfg->max_memory = ram / 4;
	cfg->max_chunk = VIRGO_WIRE_DEF_MAX_CHUNK;
	cfg->max_batch = VIRGO_WIRE_DEF_MAX_BATCH;
	cfg->max_sessions = 1024;
	cfg->max_inflight = VIRGO_WIRE_DEF_MAX_INFLIGHT;
	cfg->idle_timeout_ms = 300 * MSEC_PER_SEC;
	cfg->io_timeout_ms = 30 * MSEC_PER_SEC;
	cfg->handshake_timeout_ms = 5 * MSEC_PER_SEC;
	cfg->max_sessions_per_addr = 64;
	cfg->max_session_chunks = 1U << 20;
	cfg->orphan_timeout_ms = 120 * MSEC_PER_SEC;
	cfg->min_free = ram / 32;
	cfg->discard = true;
	cfg->max_queues = CD_QUEUES_DEFAULT;
	cfg->pool_bytes = CD_POOL_DEFAULT;
}

/* ---- sending: the per-session queue ---------------------------------- */

/* Never written: what a READ of a chunk not written yet sends. */
static const u8 cd_zeros[PAGE_SIZE];

static void cd_chunk_put(struct clouddrec_server *srv,
			 struct clouddrec_chunk *c);

/*
 * Queue the I/O work of every connection attached to @tab: a WRITE on one
 * of them waited for the READ replies of another to leave its chunk.
 * Rare (a READ and a WRITE of one chunk on two queues at once), so the
 * server's list of sessions is walked, under its lock (taken after
 * @tab->lock, which the caller holds).
 */
static void cd_table_kick(struct clouddrec_server *srv, struct cd_table *tab)
{
	struct clouddrec_session *s;

	mutex_lock(&srv->lock);
	list_for_each_entry(s, &srv->sessions, node)
		if (s->tab == tab && !READ_ONCE(s->closing))
			queue_work(srv->wq, &s->io_work);
	mutex_unlock(&srv->lock);
}

/*
 * Whether the payload of @tx goes to the socket by page reference: a
 * paged chunk's bytes, or zeroes (the zero page), as nvme-tcp sends data.
 */
static bool cd_tx_by_page(const struct cd_tx *tx)
{
	if (tx->chunk)
		return tx->chunk->nr_pages;
	return !tx->data && sendpage_ok(ZERO_PAGE(0));
}

/*
 * Send what is left of @tx's header, and of its payload unless that goes
 * by page reference, copying it (kernel_sendmsg()).  Returns the bytes
 * sent, 0 when the socket has no room, or a negative errno.
 */
static int cd_tx_send_copy(struct clouddrec_session *s, struct cd_tx *tx)
{
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	struct kvec iov[17];
	u32 off = tx->sent, left = tx->len - tx->sent;
	size_t bytes = 0;
	int nr = 0, ret;

	if (off < VIRGO_WIRE_HDR_LEN) {
		iov[nr].iov_base = tx->hdr + off;
		iov[nr++].iov_len = VIRGO_WIRE_HDR_LEN - off;
		bytes = VIRGO_WIRE_HDR_LEN - off;
		off = 0;
	} else {
		off -= VIRGO_WIRE_HDR_LEN;
	}
	if (cd_tx_by_page(tx)) {
		/* The payload follows at once: no segment for the header. */
		if (bytes < left)
			msg.msg_flags |= MSG_MORE;
	} else if (tx->data) {
		if (bytes < left) {
			iov[nr].iov_base = (void *)(tx->data + off);
			iov[nr++].iov_len = left - bytes;
			bytes = left;
		}
	} else {
		while (bytes < left && nr < ARRAY_SIZE(iov)) {
			size_t n = min_t(size_t, left - bytes,
					 sizeof(cd_zeros) - off % PAGE_SIZE);

			iov[nr].iov_base = (void *)(cd_zeros + off % PAGE_SIZE);
			iov[nr++].iov_len = n;
			bytes += n;
			off += n;
		}
	}
	ret = kernel_sendmsg(s->sock, &msg, iov, nr, bytes);
	if (ret == -EAGAIN)
		return 0;
	return ret ? ret : -ECONNRESET;
}

/*
 * Send the payload of @tx from @off (past the header) by page reference,
 * up to the end of that page.  The socket takes a reference to the page
 * for as long as it may send (or resend) it: a chunk freed meanwhile
 * leaves the page to the network stack (cd_chunk_mem_free() only drops
 * its own reference), and a WRITE to the chunk does not write into a page
 * the stack still holds (cd_chunk_unshare()).  Returns the bytes sent, 0
 * when the socket has no room, or a negative errno.
 */
static int cd_tx_send_page(struct clouddrec_session *s, struct cd_tx *tx,
			   u32 off)
{
	int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
	u32 left = tx->len - tx->sent, pg_off;
	struct page *page;
	size_t n;
	int ret;

	if (tx->chunk) {
		u32 at = tx->chunk_off + off;

		page = tx->chunk->pages[at >> PAGE_SHIFT];
		pg_off = offset_in_page(at);
	} else {
		page = ZERO_PAGE(0);
		pg_off = 0;
	}
	n = min_t(size_t, left, PAGE_SIZE - pg_off);
	if (n < left)
		flags |= MSG_MORE | MSG_SENDPAGE_NOTLAST;
	if (sendpage_ok(page)) {
		ret = kernel_sendpage(s->sock, page, pg_off, n, flags);
	} else {
		struct msghdr msg = { .msg_flags = flags };
		struct kvec iov = { .iov_base = page_address(page) + pg_off,
				    .iov_len = n };

		ret = kernel_sendmsg(s->sock, &msg, &iov, 1, n);
	}
	if (ret == -EAGAIN)
		return 0;
	return ret ? ret : -ECONNRESET;
}

/*
 * Send one piece of @tx from where it stands, without waiting.  Returns
 * the bytes sent, 0 when the socket has no room (its write_space callback
 * queues the I/O work once it has), or a negative errno.
 */
static int cd_tx_send(struct clouddrec_session *s, struct cd_tx *tx)
{
	if (tx->sent < VIRGO_WIRE_HDR_LEN || !cd_tx_by_page(tx))
		return cd_tx_send_copy(s, tx);
	return cd_tx_send_page(s, tx, tx->sent - VIRGO_WIRE_HDR_LEN);
}

static void cd_tx_done(struct clouddrec_session *s, struct cd_tx *tx)
{
	list_del(&tx->node);
	s->tx_nr--;
	atomic64_dec(&s->srv->tx_queued);
	WRITE_ONCE(s->tx_bytes, s->tx_bytes - (tx->len - tx->sent));
	if (tx->chunk) {
		if (!--tx->chunk->sending && tx->chunk->waiter) {
			tx->chunk->waiter = false;
			cd_table_kick(s->srv, s->tab);
		}
		cd_chunk_put(s->srv, tx->chunk);
	}
	kvfree(tx->owned);
	kfree(tx);
}

/*
 * Send what the queue holds as far as the socket takes it.  Returns 0
 * (everything sent, or the socket is full), or a negative errno that ends
 * the session.
 */
static int cd_tx_push(struct clouddrec_session *s)
{
	struct cd_tx *tx;
	int ret;

	while ((tx = list_first_entry_or_null(&s->tx_queue, struct cd_tx,
					      node))) {
		ret = cd_tx_send(s, tx);
		if (ret <= 0)
			return ret;
		tx->sent += ret;
		WRITE_ONCE(s->tx_bytes, s->tx_bytes - ret);
		WRITE_ONCE(s->tx_since, jiffies);
		if (tx->sent == tx->len)
			cd_tx_done(s, tx);
	}
	return 0;
}

/*
 * A new reply to @m with @status and @len payload bytes (none if @status
 * is not 0); its payload goes to ->small unless the caller points ->data
 * elsewhere.  NULL when out of memory.
 */
static struct cd_tx *cd_tx_new(const struct virgo_wire_msg *m, u32 status,
			       u32 len)
{
	struct cd_tx *tx = kmalloc(sizeof(*tx), GFP_KERNEL);

	if (!tx)
		return NULL;
	if (status)
		len = 0;
	virgo_wire_hdr_pack(tx->hdr, m->opcode, VIRGO_WF_REPLY, len, status,
			    m->tag);
	tx->len = VIRGO_WIRE_HDR_LEN + len;
	tx->sent = 0;
	tx->data = tx->small;
	tx->chunk = NULL;
	tx->chunk_off = 0;
	tx->owned = NULL;
	return tx;
}

/* Queue @tx (never NULL) and send what can be sent now. */
static int cd_tx_queue(struct clouddrec_session *s, struct cd_tx *tx)
{
	if (list_empty(&s->tx_queue))
		WRITE_ONCE(s->tx_since, jiffies);
	list_add_tail(&tx->node, &s->tx_queue);
	s->tx_nr++;
	atomic64_inc(&s->srv->tx_queued);
	WRITE_ONCE(s->tx_bytes, s->tx_bytes + tx->len);
	return cd_tx_push(s);
}

/*
 * Replies queued for a connection before its handshake is done: HELLO's,
 * then AUTH's or a refusal.  Nothing more is kept on the word of a peer
 * not known yet.
 */
#define CD_TX_PREAUTH	2

/* True while the session must not read new requests: replies pile up. */
static bool cd_tx_full(struct clouddrec_session *s)
{
	u32 max = READ_ONCE(s->ready) ? s->srv->cfg.max_inflight :
					CD_TX_PREAUTH;

	return s->tx_nr >= max || s->tx_bytes >= s->srv->lim.max_payload;
}

/*
 * Reply to @m with @status and the payload in @data (@len bytes, at most
 * VIRGO_WIRE_HELLO_REP_MAX), which may be NULL.  A non-zero status always
 * goes out with no payload.
 */
static int cd_reply(struct clouddrec_session *s, const struct virgo_wire_msg *m,
		    u32 status, const void *data, u32 len)
{
	struct cd_tx *tx;

	if (WARN_ON_ONCE(!status && len > sizeof(tx->small)))
		return -EINVAL;
	tx = cd_tx_new(m, status, len);
	if (!tx)
		return -ENOMEM;
	if (!status && len)
		memcpy(tx->small, data, len);
	return cd_tx_queue(s, tx);
}

static int cd_reply_err(struct clouddrec_session *s,
			const struct virgo_wire_msg *m, int err)
{
	return cd_reply(s, m, virgo_errno_to_status(err), NULL, 0);
}

/* True when the node itself is short of memory: lend nothing new. */
static bool cd_node_low(struct clouddrec_server *srv)
{
	return srv->cfg.min_free &&
	       ((u64)si_mem_available() << PAGE_SHIFT) < srv->cfg.min_free;
}

/* ---- chunk memory: pages, and the pool of pre-zeroed ones ----------- */

/* Pages the refill work allocates per round (one bulk allocation). */
#define CD_POOL_BATCH	32

/* The allocation flags of chunk memory: fail rather than OOM the lender. */
#define CD_CHUNK_GFP	(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN)

/*
 * Take up to @n pages from the pool into @pages (NULL slots); returns how
 * many.  The refill work tops the pool up again.
 */
static u32 cd_pool_take(struct clouddrec_server *srv, struct page **pages,
			u32 n)
{
	struct cd_pool *pool = &srv->pool;
	u32 got;

	if (!pool->max)
		return 0;
	spin_lock(&pool->lock);
	got = min(n, pool->nr);
	pool->nr -= got;
	memcpy(pages, pool->pages + pool->nr, got * sizeof(*pages));
	spin_unlock(&pool->lock);
	if (!READ_ONCE(srv->stopping))
		queue_work(srv->wq, &pool->refill);
	return got;
}

/* Whether the pool may grow: a session needs it, the node can spare it. */
static bool cd_pool_wanted(struct clouddrec_server *srv)
{
	return atomic_read(&srv->ready_sessions) &&
	       !READ_ONCE(srv->stopping) && !cd_node_low(srv);
}

/* Put @n zeroed pages into the pool, as many as fit; free the rest. */
static void cd_pool_put(struct clouddrec_server *srv, struct page **pages,
			u32 n)
{
	struct cd_pool *pool = &srv->pool;
	u32 put = 0;

	spin_lock(&pool->lock);
	/* Checked under the lock, against cd_pool_drain(). */
	if (cd_pool_wanted(srv)) {
		put = min(n, pool->max - pool->nr);
		memcpy(pool->pages + pool->nr, pages, put * sizeof(*pages));
		pool->nr += put;
	}
	spin_unlock(&pool->lock);
	while (put < n)
		__free_page(pages[put++]);
}

/*
 * The refill work: allocate zeroed pages in batches until the pool is
 * full, no ready session is left, the node runs low on memory
 * (min_free), or the page allocator has none to spare.
 */
static void cd_pool_refill(struct work_struct *work)
{
	struct clouddrec_server *srv =
		container_of(work, struct clouddrec_server, pool.refill);
	struct cd_pool *pool = &srv->pool;
	struct page *batch[CD_POOL_BATCH];
	u32 want, got;

	while (cd_pool_wanted(srv)) {
		spin_lock(&pool->lock);
		want = min_t(u32, pool->max - pool->nr, ARRAY_SIZE(batch));
		spin_unlock(&pool->lock);
		if (!want)
			break;
		memset(batch, 0, sizeof(batch));
		got = alloc_pages_bulk_array(CD_CHUNK_GFP | __GFP_ZERO, want,
					     batch);
		if (!got)
			break;
		cd_pool_put(srv, batch, got);
		cond_resched();
	}
}

/* Give every pooled page back to the page allocator. */
static void cd_pool_drain(struct clouddrec_server *srv)
{
	struct cd_pool *pool = &srv->pool;
	struct page *batch[CD_POOL_BATCH];
	u32 n;

	do {
		spin_lock(&pool->lock);
		n = min_t(u32, pool->nr, ARRAY_SIZE(batch));
		pool->nr -= n;
		memcpy(batch, pool->pages + pool->nr, n * sizeof(*batch));
		spin_unlock(&pool->lock);
		while (n)
			__free_page(batch[--n]);
	} while (READ_ONCE(pool->nr));
}

/* A session finished its handshake: the pool serves it. */
static void cd_pool_session_ready(struct clouddrec_server *srv)
{
	if (atomic_inc_return(&srv->ready_sessions) == 1 && srv->pool.max)
		queue_work(srv->wq, &srv->pool.refill);
}

/* A ready session ended: the last one gives the pool back. */
static void cd_pool_session_gone(struct clouddrec_server *srv)
{
	if (atomic_dec_and_test(&srv->ready_sessions))
		cd_pool_drain(srv);
}

/*
 * Memory for a chunk of @size bytes, zeroed: a kmalloc object below
 * CD_PAGED_MIN, else pages, from the pool first.  NULL when out of
 * memory.  Always zeroed, even under a WRITE that covers the chunk: a
 * WRITE whose data does not all arrive leaves the rest as it was, and
 * with RESUME the chunk outlives its connection (protocol.md 5.5).
 */
static struct clouddrec_chunk *cd_chunk_mem_new(struct clouddrec_server *srv,
						u32 size)
{
	u32 nr = size < CD_PAGED_MIN ? 0 : DIV_ROUND_UP(size, PAGE_SIZE);
	struct clouddrec_chunk *c;
	u32 got;

	c = kvzalloc(struct_size(c, pages, nr), CD_CHUNK_GFP);
	if (!c)
		return NULL;
	c->size = size;
	c->refs = 1;
	if (!nr) {
		c->data = kzalloc(size, CD_CHUNK_GFP);
		if (!c->data)
			goto free;
		return c;
	}
	c->nr_pages = nr;
	got = cd_pool_take(srv, c->pages, nr);
	while (got < nr) {
		u32 now = alloc_pages_bulk_array(CD_CHUNK_GFP | __GFP_ZERO, nr,
						 c->pages);

		if (now == got)
			goto free_pages;
		got = now;
	}
	return c;

free_pages:
	c->nr_pages = got;
	while (got)
		__free_page(c->pages[--got]);
free:
	kvfree(c);
	return NULL;
}

/*
 * Free a chunk's memory.  A page a READ reply still has in the socket
 * keeps the network stack's reference and is freed when the stack is
 * done with it, not before.
 */
static void cd_chunk_mem_free(struct clouddrec_chunk *c)
{
	u32 i;

	kfree(c->data);
	for (i = 0; i < c->nr_pages; i++)
		put_page(c->pages[i]);
	kvfree(c);
}

/*
 * A WRITE of [@off, @off + @len) is about to land in @c: every page of
 * that range the network stack may still send from (a READ reply handed
 * to the socket by page reference, not yet acknowledged) is replaced by a
 * copy first, so the reply sends the bytes of when it was served.
 * Returns 0, or -ENOMEM (nothing written).
 */
static int cd_chunk_unshare(struct clouddrec_server *srv,
			    struct clouddrec_chunk *c, u32 off, u32 len)
{
	u32 first = off >> PAGE_SHIFT, i;

	if (!c->nr_pages || !len)
		return 0;
	for (i = first; i <= (off + len - 1) >> PAGE_SHIFT; i++) {
		struct page *old = c->pages[i], *copy = NULL;

		/* Ours alone (a spurious extra reference only costs a copy). */
		if (page_count(old) == 1)
			continue;
		if (!cd_pool_take(srv, &copy, 1)) {
			copy = alloc_page(CD_CHUNK_GFP);
			if (!copy)
				return -ENOMEM;
		}
		copy_highpage(copy, old);
		c->pages[i] = copy;
		put_page(old);
	}
	return 0;
}

/* ---- chunks ---------------------------------------------------------- */

/* The budget and memory of a chunk are given back. */
static void cd_uncharge(struct clouddrec_server *srv, u32 size)
{
	atomic64_sub(cd_charge(size), &srv->charged);
}

static void cd_chunk_put(struct clouddrec_server *srv,
			 struct clouddrec_chunk *c)
{
	if (--c->refs)
		return;
	if (!c->discarded)
		cd_uncharge(srv, c->size);
	atomic64_sub(c->size, &srv->materialised);
	atomic64_dec(&srv->materialised_chunks);
	cd_chunk_mem_free(c);
}

/* An entry has left @tab's xarray: it is no longer lent. */
static void cd_chunk_free(struct clouddrec_server *srv, struct cd_table *tab,
			  void *entry)
{
	u32 size = cd_entry_size(entry);

	WRITE_ONCE(tab->bytes, tab->bytes - size);
	WRITE_ONCE(tab->nr_chunks, tab->nr_chunks - 1);
	atomic64_sub(size, &srv->lent_bytes);
	atomic64_dec(&srv->lent_chunks);
	cd_count(srv, CD_STAT_CHUNKS_FREED);
	if (xa_is_value(entry))
		cd_uncharge(srv, size);
	else
		cd_chunk_put(srv, entry);
}

/* Free @tab (may be NULL) and every chunk in it. */
static void cd_table_free(struct clouddrec_server *srv, struct cd_table *tab)
{
	unsigned long index;
	void *entry;
	u32 n = 0;

	if (!tab)
		return;
	/* A huge session must not hold the CPU (or other sessions) long. */
	xa_for_each(&tab->chunks, index, entry) {
		cd_chunk_free(srv, tab, entry);
		if (!(++n % CD_FREE_BATCH))
			cond_resched();
	}
	xa_destroy(&tab->chunks);
	mutex_destroy(&tab->lock);
	kfree_sensitive(tab);
}

/* Free the tables on @list (taken off the orphans list). */
static void cd_tables_free(struct clouddrec_server *srv,
			   struct list_head *list)
{
	struct cd_table *tab, *next;

	list_for_each_entry_safe(tab, next, list, orphan_node) {
		list_del(&tab->orphan_node);
		cd_table_free(srv, tab);
	}
}

/* Reserve @bytes of the server's lending budget. */
static bool cd_reserve(struct clouddrec_server *srv, u64 bytes)
{
	if (atomic64_add_return(bytes, &srv->charged) > srv->cfg.max_memory) {
		atomic64_sub(bytes, &srv->charged);
		return false;
	}
	return true;
}

/* The budget left, as HELLO and STAT report it. */
static u64 cd_free_budget(struct clouddrec_server *srv)
{
	u64 charged = atomic64_read(&srv->charged);

	return charged < srv->cfg.max_memory ?
	       srv->cfg.max_memory - charged : 0;
}

/* ---- handles --------------------------------------------------------- */

/* The handle of index @index of @s. */
static u64 cd_handle(const struct clouddrec_session *s, u32 index)
{
	return (u64)s->tab->sid << 32 | index;
}

/*
 * The xarray index @handle names in @s, or 0 (never an index) when it
 * is not one of this session's handles.
 */
static u32 cd_handle_index(const struct clouddrec_session *s, u64 handle)
{
	if (handle >> 32 != s->tab->sid)
		return 0;
	return lower_32_bits(handle);
}

static void *cd_chunk_get(struct clouddrec_session *s, u64 handle)
{
	u32 index = cd_handle_index(s, handle);
	void *entry = index ? xa_load(&s->tab->chunks, index) : NULL;

	if (!entry)
		cd_count(s->srv, CD_STAT_ERR_HANDLE);
	return entry;
}

/* ---- requests -------------------------------------------------------- */

/* The DISCARD bit of a HELLO reply to a client offering @caps. */
static u32 cd_discard_caps(struct clouddrec_server *srv, u32 caps)
{
	return srv->cfg.discard ? caps & VIRGO_CAP_DISCARD : 0;
}

static void cd_set_ready(struct clouddrec_session *s)
{
	if (s->ready || !s->hello_done || !s->authed)
		return;
	WRITE_ONCE(s->ready, true);
	cd_pool_session_ready(s->srv);
}

static int cd_do_hello(struct clouddrec_session *s,
		       const struct virgo_wire_msg *m, const void *p)
{
	struct clouddrec_server *srv = s->srv;
	struct virgo_wire_hello_rep rep = {};
	struct virgo_wire_hello_req req;
	u8 out[VIRGO_WIRE_HELLO_REP_MAX];
	int len;

	if (s->hello_done) {
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EINVAL);
	}
	virgo_wire_get_hello_req(p, &req);
	/* Refused: not the connection's HELLO, another one may follow. */
	if (req.ver_min > VIRGO_WIRE_VERSION ||
	    req.ver_max < VIRGO_WIRE_VERSION) {
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EPROTONOSUPPORT);
	}
	memcpy(s->client_nonce, req.nonce, sizeof(s->client_nonce));
	get_random_bytes(s->server_nonce, sizeof(s->server_nonce));

	rep.version = VIRGO_WIRE_VERSION;
	rep.flags = srv->hmac ? VIRGO_HELLO_AUTH_REQUIRED : 0;
	/* RESUME when asked for, unless orphans are off (timeout 0). */
	if (srv->cfg.orphan_timeout_ms)
		rep.caps = req.caps & VIRGO_CAP_RESUME;
	rep.caps |= cd_discard_caps(srv, req.caps);
	s->discard = rep.caps & VIRGO_CAP_DISCARD;
	/* QUEUES rides on RESUME: its id and token name the session. */
	if ((rep.caps & VIRGO_CAP_RESUME) && srv->cfg.max_queues > 1)
		rep.caps |= req.caps & VIRGO_CAP_QUEUES;
	s->queues = rep.caps & VIRGO_CAP_QUEUES;
	rep.max_payload = srv->lim.max_payload;
	rep.max_chunk = srv->lim.max_chunk;
	rep.max_batch = srv->lim.max_batch;
	rep.max_inflight = srv->cfg.max_inflight;
	rep.capacity = srv->cfg.max_memory;
	rep.free = cd_free_budget(srv);
	memcpy(rep.nonce, s->server_nonce, sizeof(rep.nonce));
	if (rep.caps & VIRGO_CAP_RESUME) {
		/* Under the lock: a RESUME elsewhere may be reading them. */
		mutex_lock(&srv->lock);
		s->tab->resumable = true;
		get_random_bytes(s->tab->token, sizeof(s->tab->token));
		mutex_unlock(&srv->lock);
		rep.resume_id = s->tab->sid;
		memcpy(rep.token, s->tab->token, sizeof(rep.token));
	}
	len = virgo_wire_put_hello_rep(out, sizeof(out), &rep);
	memzero_explicit(rep.token, sizeof(rep.token));
	if (WARN_ON_ONCE(len < 0))
		return len;
	s->hello_done = true;
	cd_set_ready(s);
	return cd_reply(s, m, 0, out, len);
}

static int cd_mac(struct clouddrec_session *s, enum virgo_wire_auth_role role,
		  u8 *mac)
{
	u8 input[VIRGO_WIRE_AUTH_INPUT_LEN];

	virgo_wire_auth_input(input, role, s->client_nonce, s->server_nonce);
	return crypto_shash_tfm_digest(s->srv->hmac, input, sizeof(input), mac);
}

static int cd_do_auth(struct clouddrec_session *s,
		      const struct virgo_wire_msg *m, const void *p)
{
	struct clouddrec_server *srv = s->srv;
	u8 mac[VIRGO_WIRE_MAC_LEN];
	int ret;

	if (!srv->hmac || s->authed) {
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EINVAL);
	}
	ret = cd_mac(s, VIRGO_WIRE_AUTH_CLIENT, mac);
	if (ret)
		return ret;
	if (crypto_memneq(mac, p, sizeof(mac))) {
		cd_count(srv, CD_STAT_ERR_AUTH);
		/* Goes out before the close (cd_session_close()). */
		cd_reply(s, m, VIRGO_ST_AUTH, NULL, 0);
		/* No second try on this connection. */
		return -EKEYREJECTED;
	}
	s->authed = true;
	cd_set_ready(s);
	ret = cd_mac(s, VIRGO_WIRE_AUTH_SERVER, mac);
	if (ret)
		return ret;
	return cd_reply(s, m, 0, mac, sizeof(mac));
}

/*
 * Whether @proof proves @tab for the RESUME (or, with @join, the JOIN) of
 * @s: its token without a key, HMAC(key, "virgo-v1-resume" (or
 * "virgo-v1-queues") || token || nonces of @s) with one.
 */
static bool cd_token_proven(struct clouddrec_session *s,
			    const struct cd_table *tab, const u8 *proof,
			    bool join)
{
	u8 input[VIRGO_WIRE_RESUME_INPUT_LEN], mac[VIRGO_WIRE_MAC_LEN];
	bool ok;

	if (!tab->resumable)
		return false;
	if (!s->srv->hmac)
		return !crypto_memneq(tab->token, proof, VIRGO_WIRE_TOKEN_LEN);
	if (join)
		virgo_wire_join_input(input, tab->token, s->client_nonce,
				      s->server_nonce);
	else
		virgo_wire_resume_input(input, tab->token, s->client_nonce,
					s->server_nonce);
	ok = !crypto_shash_tfm_digest(s->srv->hmac, input, sizeof(input),
				      mac) &&
	     !crypto_memneq(mac, proof, sizeof(mac));
	memzero_explicit(input, sizeof(input));
	memzero_explicit(mac, sizeof(mac));
	return ok;
}

/*
 * The table RESUME @id names, if @proof proves it: an orphan, or (in
 * *@live) the table of a session still connected.  Under srv->lock.
 */
static struct cd_table *cd_resume_find(struct clouddrec_session *s, u64 id,
				       const u8 *proof,
				       struct clouddrec_session **live)
{
	struct clouddrec_server *srv = s->srv;
	struct clouddrec_session *other;
	struct cd_table *tab;

	lockdep_assert_held(&srv->lock);
	*live = NULL;
	list_for_each_entry(tab, &srv->orphans, orphan_node)
		if (tab->sid == id)
			return cd_token_proven(s, tab, proof, false) ? tab :
								       NULL;
	list_for_each_entry(other, &srv->sessions, node) {
		if (other == s || other->tab->sid != id)
			continue;
		if (!cd_token_proven(s, other->tab, proof, false))
			return NULL;
		*live = other;
		return other->tab;
	}
	return NULL;
}

/* Shut down every connection attached to @tab; under srv->lock. */
static void cd_table_shutdown(struct clouddrec_server *srv,
			      struct cd_table *tab)
{
	struct clouddrec_session *other;

	lockdep_assert_held(&srv->lock);
	list_for_each_entry(other, &srv->sessions, node)
		if (other->tab == tab)
			kernel_sock_shutdown(other->sock, SHUT_RDWR);
}

/*
 * RESUME (protocol.md 6.1): this connection takes over an orphan's
 * chunks and handles; a session still connected is closed first (BUSY:
 * the client asks again once it is an orphan).
 */
static int cd_do_resume(struct clouddrec_session *s,
			const struct virgo_wire_msg *m, const void *p)
{
	struct clouddrec_server *srv = s->srv;
	struct clouddrec_session *live;
	u8 proof[VIRGO_WIRE_MAC_LEN], out[VIRGO_WIRE_RESUME_REP_LEN];
	struct cd_table *tab, *fresh;
	u64 id;
	int len;

	if (!s->tab->resumable) {
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EPROTONOSUPPORT);
	}
	id = virgo_wire_get_resume_req(p, proof);
	mutex_lock(&srv->lock);
	/* Only a fresh session of one connection takes another's place. */
	if (s->tab->next_index || s->resumed || s->joined ||
	    s->tab->conns > 1) {
		mutex_unlock(&srv->lock);
		memzero_explicit(proof, sizeof(proof));
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EINVAL);
	}
	tab = cd_resume_find(s, id, proof, &live);
	memzero_explicit(proof, sizeof(proof));
	if (!tab || live) {
		/*
		 * Their I/O works close them; the last one's release makes
		 * the orphan.
		 */
		if (live)
			cd_table_shutdown(srv, tab);
		mutex_unlock(&srv->lock);
		cd_count(srv, CD_STAT_ERR_RESUME);
		return cd_reply_err(s, m, tab ? -EBUSY : -ENOENT);
	}
	list_del(&tab->orphan_node);
	srv->nr_orphans--;
	/* From now on only this connection's token resumes it. */
	memcpy(tab->token, s->tab->token, sizeof(tab->token));
	fresh = s->tab;
	s->tab = tab;
	tab->conns = 1;
	s->resumed = true;
	mutex_unlock(&srv->lock);
	/* The I/O work holds its lock: freed after the run. */
	s->retired = fresh;
	cd_count(srv, CD_STAT_SESSIONS_RESUMED);
	len = virgo_wire_put_resume_rep(out, sizeof(out), tab->nr_chunks,
					tab->bytes);
	if (WARN_ON_ONCE(len < 0))
		return len;
	return cd_reply(s, m, 0, out, len);
}

/*
 * The live table JOIN @id names, if @proof proves it (an orphan is not
 * live: it is NOENT).  Under srv->lock.
 */
static struct cd_table *cd_join_find(struct clouddrec_session *s, u64 id,
				     const u8 *proof)
{
	struct clouddrec_server *srv = s->srv;
	struct clouddrec_session *other;

	lockdep_assert_held(&srv->lock);
	list_for_each_entry(other, &srv->sessions, node) {
		if (other->tab == s->tab || other->tab->sid != id)
			continue;
		return cd_token_proven(s, other->tab, proof, true) ?
		       other->tab : NULL;
	}
	return NULL;
}

/*
 * JOIN (protocol.md 6.2): this connection becomes one more queue of a
 * live session: it serves that session's table from now on.  Its own
 * (fresh, empty) table is retired.
 */
static int cd_do_join(struct clouddrec_session *s,
		      const struct virgo_wire_msg *m, const void *p)
{
	struct clouddrec_server *srv = s->srv;
	u8 proof[VIRGO_WIRE_MAC_LEN], out[VIRGO_WIRE_JOIN_REP_LEN];
	struct cd_table *tab, *fresh;
	u32 conns;
	u64 id;
	int len, err;

	if (!s->queues) {
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EPROTONOSUPPORT);
	}
	id = virgo_wire_get_join_req(p, proof);
	mutex_lock(&srv->lock);
	if (s->tab->next_index || s->resumed || s->joined ||
	    s->tab->conns > 1) {
		err = -EINVAL;
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		goto refuse;
	}
	tab = cd_join_find(s, id, proof);
	if (!tab || tab->conns >= srv->cfg.max_queues) {
		err = tab ? -EBUSY : -ENOENT;
		cd_count(srv, CD_STAT_ERR_RESUME);
		goto refuse;
	}
	fresh = s->tab;
	fresh->conns = 0;
	s->tab = tab;
	conns = ++tab->conns;
	s->joined = true;
	mutex_unlock(&srv->lock);
	memzero_explicit(proof, sizeof(proof));
	/* The I/O work holds its lock: freed after the run. */
	s->retired = fresh;
	cd_count(srv, CD_STAT_QUEUES_JOINED);
	len = virgo_wire_put_join_rep(out, sizeof(out), conns);
	if (WARN_ON_ONCE(len < 0))
		return len;
	return cd_reply(s, m, 0, out, len);

refuse:
	mutex_unlock(&srv->lock);
	memzero_explicit(proof, sizeof(proof));
	return cd_reply_err(s, m, err);
}

/*
 * Whether @s may have @count more chunks costing @charge: the session's
 * chunk cap, the node's own needs (min_free), then the lending budget,
 * which is reserved on success.
 */
static bool cd_alloc_allowed(struct clouddrec_session *s, u32 count,
			     u64 charge)
{
	struct clouddrec_server *srv = s->srv;

	if (s->tab->nr_chunks + count > srv->cfg.max_session_chunks ||
	    cd_node_low(srv))
		return false;
	return cd_reserve(srv, charge);
}

static int cd_do_alloc(struct clouddrec_session *s,
		       const struct virgo_wire_msg *m, const void *p)
{
	struct clouddrec_server *srv = s->srv;
	u32 count = virgo_wire_batch_count(p), i, done = 0;
	struct cd_tx *tx;
	u64 charge = 0;
	int len, ret = -ENOMEM;

	for (i = 0; i < count; i++)
		charge += cd_charge(virgo_wire_alloc_size(p, i));
	if (!cd_alloc_allowed(s, count, charge)) {
		cd_count(srv, CD_STAT_ERR_NOMEM);
		return cd_reply_err(s, m, -ENOMEM);
	}

	len = VIRGO_WIRE_BATCH_HDR_LEN + VIRGO_WIRE_HANDLE_LEN * count;
	tx = cd_tx_new(m, 0, len);
	if (!tx)
		goto nomem;
	tx->owned = kvmalloc(len, GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN);
	if (!tx->owned)
		goto free_tx;
	tx->data = tx->owned;
	ret = virgo_wire_put_batch_hdr(tx->owned, len, count,
				       VIRGO_WIRE_HANDLE_LEN);
	if (WARN_ON_ONCE(ret != len)) {
		ret = -ENOMEM;
		goto free_tx;
	}
	/* One lock round for the batch (__xa_insert() drops it to allocate). */
	xa_lock(&s->tab->chunks);
	for (i = 0; i < count; i++) {
		u32 size = virgo_wire_alloc_size(p, i);

		/* 2^32 - 1 handles per session, never one twice. */
		if (s->tab->next_index == U32_MAX) {
			ret = -ENOMEM;
			break;
		}
		ret = __xa_insert(&s->tab->chunks, s->tab->next_index + 1,
				  xa_mk_value(size),
				  GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN);
		if (ret)
			break;
		s->tab->next_index++;
		WRITE_ONCE(s->tab->bytes, s->tab->bytes + size);
		WRITE_ONCE(s->tab->nr_chunks, s->tab->nr_chunks + 1);
		atomic64_add(size, &srv->lent_bytes);
		virgo_wire_set_handle(tx->owned, i,
				      cd_handle(s, s->tab->next_index));
		done++;
	}
	xa_unlock(&s->tab->chunks);
	atomic64_add(done, &srv->lent_chunks);
	atomic64_add(done, &srv->stats[CD_STAT_CHUNKS_ALLOCATED]);
	if (ret)
		goto unwind;
	return cd_tx_queue(s, tx);

unwind:
	/* All or nothing: give back what this request got. */
	for (i = 0; i < done; i++) {
		u64 handle = virgo_wire_handle(tx->owned, i);

		cd_chunk_free(srv, s->tab,
			      xa_erase(&s->tab->chunks,
				       cd_handle_index(s, handle)));
		/* cd_chunk_free() gave back the charge of this one. */
		charge -= cd_charge(virgo_wire_alloc_size(p, i));
	}
free_tx:
	kvfree(tx->owned);
	kfree(tx);
nomem:
	atomic64_sub(charge, &srv->charged);
	cd_count(srv, CD_STAT_ERR_NOMEM);
	return cd_reply_err(s, m, -ENOMEM);
}

/*
 * FREE: the payload was checked whole before (count, length, no handle 0),
 * so a malformed FREE frees nothing; then each handle in order: the
 * session's are freed, the others (unknown, another session's, or freed
 * earlier in the batch) skipped and counted in err_handle.
 */
static int cd_do_free(struct clouddrec_session *s,
		      const struct virgo_wire_msg *m, const void *p)
{
	u32 count = virgo_wire_batch_count(p), i, freed = 0;
	u8 out[VIRGO_WIRE_FREE_REP_LEN];
	int len;

	for (i = 0; i < count; i++) {
		u32 index = cd_handle_index(s, virgo_wire_handle(p, i));
		void *entry = index ? xa_erase(&s->tab->chunks, index) : NULL;

		if (!entry) {
			cd_count(s->srv, CD_STAT_ERR_HANDLE);
			continue;
		}
		cd_chunk_free(s->srv, s->tab, entry);
		freed++;
		if (!(freed % CD_FREE_BATCH))
			cond_resched();
	}
	len = virgo_wire_put_free_rep(out, sizeof(out), freed);
	if (WARN_ON_ONCE(len < 0))
		return len;
	return cd_reply(s, m, 0, out, len);
}

/* ---- DISCARD (protocol.md 5.9) ----------------------------------------- */

/*
 * Give a written chunk's memory back: a value entry holding its size
 * takes its place in the xarray, as ALLOC left it, and takes over its
 * charge (the budget stays reserved for the chunk).  The memory goes with
 * the last reference: now, or when the last READ reply queued from it has
 * been sent (those send the bytes as they were when served), or when a
 * WRITE another queue of the session is receiving into it ends (its bytes
 * go with the old memory: a WRITE concurrent with a DISCARD leaves its
 * bytes or zeroes).  While anything holds it, the old memory keeps its own
 * charge and the value entry needs a charge of its own: without one the
 * chunk is not discarded (false), so discarding and rewriting behind
 * replies a client does not read cannot hold memory beyond max_memory.
 * The next WRITE allocates afresh (cd_chunk_fill()), a READ before it
 * sends zeroes.  Under the table's lock.
 */
static bool cd_chunk_discard(struct clouddrec_session *s, u32 index,
			     struct clouddrec_chunk *c)
{
	bool held = c->refs > 1;
	void *old;

	if (held && !cd_reserve(s->srv, cd_charge(c->size))) {
		cd_count(s->srv, CD_STAT_ERR_NOMEM);
		return false;
	}
	/* Replaces an entry in place: no allocation, cannot fail. */
	old = xa_store(&s->tab->chunks, index, xa_mk_value(c->size),
		       GFP_KERNEL);
	if (WARN_ON_ONCE(old != c)) {
		if (held)
			cd_uncharge(s->srv, c->size);
		return false;
	}
	c->discarded = !held;
	cd_chunk_put(s->srv, c);
	return true;
}

/*
 * DISCARD: PROTO unless agreed; the payload was checked whole before
 * (count, length, no handle 0).  Then each handle in order: the session's
 * are discarded (written or not: a never-written chunk already is) and
 * counted, the others skipped and counted in err_handle.
 */
static int cd_do_discard(struct clouddrec_session *s,
			 const struct virgo_wire_msg *m, const void *p)
{
	u32 count = virgo_wire_batch_count(p), i, done = 0;
	u8 out[VIRGO_WIRE_DISCARD_REP_LEN];
	int len;

	if (!s->discard) {
		cd_count(s->srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EPROTONOSUPPORT);
	}
	for (i = 0; i < count; i++) {
		u32 index = cd_handle_index(s, virgo_wire_handle(p, i));
		void *entry = index ? xa_load(&s->tab->chunks, index) : NULL;

		if (!entry) {
			cd_count(s->srv, CD_STAT_ERR_HANDLE);
			continue;
		}
		if (!xa_is_value(entry) && !cd_chunk_discard(s, index, entry))
			continue;
		cd_count(s->srv, CD_STAT_CHUNKS_DISCARDED);
		if (!(++done % CD_FREE_BATCH))
			cond_resched();
	}
	len = virgo_wire_put_discard_rep(out, sizeof(out), done);
	if (WARN_ON_ONCE(len < 0))
		return len;
	return cd_reply(s, m, 0, out, len);
}

/* HELLO first, then AUTH (if the server has a key), then the rest. */
static int cd_check_perm(struct clouddrec_session *s,
			 const struct virgo_wire_msg *m)
{
	if ((m->opcode != VIRGO_OP_HELLO && !s->hello_done) ||
	    (m->opcode != VIRGO_OP_HELLO && m->opcode != VIRGO_OP_AUTH &&
	     !s->authed)) {
		cd_count(s->srv, CD_STAT_ERR_PERM);
		return -EACCES;
	}
	return 0;
}

/* Look up the chunk of a WRITE/READ and check the range against it. */
static void *cd_rw_chunk(struct clouddrec_session *s,
			 const struct virgo_wire_rw *rw, int *err)
{
	void *entry = cd_chunk_get(s, rw->handle);

	if (!entry) {
		*err = -ENOENT;
		return NULL;
	}
	if ((u64)rw->offset + rw->length > cd_entry_size(entry)) {
		cd_count(s->srv, CD_STAT_ERR_RANGE);
		*err = -ERANGE;
		return NULL;
	}
	return entry;
}

/*
 * The first WRITE to a chunk: give it memory (cd_chunk_mem_new()) in
 * place of its value entry.  The budget was reserved at ALLOC; the node's
 * own needs (min_free) come first, and the allocation fails rather than
 * wake the OOM killer on the lender.
 */
static struct clouddrec_chunk *cd_chunk_fill(struct clouddrec_session *s,
					     u32 index, u32 size)
{
	struct clouddrec_chunk *c;
	void *old;

	if (cd_node_low(s->srv))
		goto nomem;
	c = cd_chunk_mem_new(s->srv, size);
	if (!c)
		goto nomem;
	/* Replaces an entry in place: no allocation, cannot fail. */
	old = xa_store(&s->tab->chunks, index, c, GFP_KERNEL);
	if (WARN_ON_ONCE(xa_is_err(old))) {
		cd_chunk_mem_free(c);
		goto nomem;
	}
	atomic64_add(size, &s->srv->materialised);
	atomic64_inc(&s->srv->materialised_chunks);
	return c;

nomem:
	cd_count(s->srv, CD_STAT_ERR_NOMEM);
	return NULL;
}

/*
 * A WRITE's head (handle, offset, length) has arrived, its data has not:
 * check it and return the chunk the data goes to (at ->rx_direct_off), so
 * that it is received there directly (no copy through a buffer).  On
 * error the data is received and dropped, then the error is the reply.
 */
static struct clouddrec_chunk *cd_write_begin(struct clouddrec_session *s,
					      const struct virgo_wire_msg *m,
					      const void *head, int *err)
{
	struct clouddrec_chunk *c;
	struct virgo_wire_rw rw;
	void *entry;

	*err = cd_check_perm(s, m);
	if (*err)
		return NULL;
	*err = virgo_wire_check_req(m, head, &s->srv->lim);
	if (*err) {
		cd_count(s->srv, CD_STAT_ERR_PAYLOAD);
		return NULL;
	}
	virgo_wire_get_rw(head, &rw);
	entry = cd_rw_chunk(s, &rw, err);
	if (!entry)
		return NULL;
	c = entry;
	if (xa_is_value(entry)) {
		/*
		 * First write: zeroed memory, whatever the WRITE covers.
		 * Should its data not all arrive, the session ends, but with
		 * RESUME its chunks wait as an orphan: the bytes not received
		 * read as they were before, zeroes, never earlier contents.
		 */
		u32 size = cd_entry_size(entry);

		c = cd_chunk_fill(s, cd_handle_index(s, rw.handle), size);
		if (!c) {
			*err = -ENOMEM;
			return NULL;
		}
	}
	s->rx_direct_off = rw.offset;
	/* Another queue may FREE or DISCARD it while its data arrives. */
	c->refs++;
	return c;
}

static int cd_do_read(struct clouddrec_session *s,
		      const struct virgo_wire_msg *m, const void *p)
{
	struct clouddrec_chunk *c;
	struct virgo_wire_rw rw;
	struct cd_tx *tx;
	void *entry;
	int err;

	virgo_wire_get_rw(p, &rw);
	entry = cd_rw_chunk(s, &rw, &err);
	if (!entry)
		return cd_reply_err(s, m, err);
	tx = cd_tx_new(m, 0, rw.length);
	if (!tx)
		return -ENOMEM;
	atomic64_add(rw.length, &s->srv->stats[CD_STAT_BYTES_READ]);
	if (xa_is_value(entry)) {
		tx->data = NULL;	/* never written: zeroes */
	} else {
		/*
		 * Sent from the chunk, which the reply holds: a FREE before it
		 * is sent leaves the memory to the reply, a WRITE to the chunk
		 * waits for it (CD_RX_WAIT), so the bytes sent are the chunk's
		 * when the READ was served.
		 */
		c = entry;
		c->refs++;
		c->sending++;
		tx->chunk = c;
		tx->chunk_off = rw.offset;
		tx->data = c->data ? c->data + rw.offset : NULL;
	}
	return cd_tx_queue(s, tx);
}

static int cd_do_stat(struct clouddrec_session *s,
		      const struct virgo_wire_msg *m)
{
	struct clouddrec_server *srv = s->srv;
	struct virgo_wire_stat st = {};
	u8 out[VIRGO_WIRE_STAT_REP_LEN];
	int len;

	st.capacity = srv->cfg.max_memory;
	st.free = cd_free_budget(srv);
	st.lent_bytes = atomic64_read(&srv->lent_bytes);
	st.lent_chunks = atomic64_read(&srv->lent_chunks);
	st.sessions = clouddrec_server_sessions(srv);
	st.session_bytes = s->tab->bytes;
	st.session_chunks = s->tab->nr_chunks;
	st.requests = atomic64_read(&srv->stats[CD_STAT_REQUESTS]);
	len = virgo_wire_put_stat_rep(out, sizeof(out), &st);
	if (WARN_ON_ONCE(len < 0))
		return len;
	return cd_reply(s, m, 0, out, len);
}

static int cd_dispatch(struct clouddrec_session *s,
		       const struct virgo_wire_msg *m, const void *p)
{
	switch (m->opcode) {
	case VIRGO_OP_HELLO:
		return cd_do_hello(s, m, p);
	case VIRGO_OP_AUTH:
		return cd_do_auth(s, m, p);
	case VIRGO_OP_ALLOC:
		return cd_do_alloc(s, m, p);
	case VIRGO_OP_FREE:
		return cd_do_free(s, m, p);
	case VIRGO_OP_WRITE:
		/*
		 * Served by cd_rx_step() as its data arrives; a WRITE too short
		 * to have data fails virgo_wire_check_req() before dispatch.
		 */
		return cd_reply_err(s, m, -EINVAL);
	case VIRGO_OP_READ:
		return cd_do_read(s, m, p);
	case VIRGO_OP_STAT:
		return cd_do_stat(s, m);
	case VIRGO_OP_PING:
		return cd_reply(s, m, 0, p, m->len);
	case VIRGO_OP_RESUME:
		return cd_do_resume(s, m, p);
	case VIRGO_OP_DISCARD:
		return cd_do_discard(s, m, p);
	case VIRGO_OP_JOIN:
		return cd_do_join(s, m, p);
	}
	/* hdr_unpack() refuses unknown opcodes. */
	return -EPROTO;
}

/* ---- receiving ------------------------------------------------------- */

/*
 * Receive up to @len bytes without waiting (into @buf, or dropped when
 * @buf is NULL).  Returns the bytes received, 0 when nothing is there
 * yet, -ECONNRESET on EOF, or a negative errno.
 */
static int cd_recv_some(struct clouddrec_session *s, void *buf, size_t len)
{
	struct kvec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	int ret;

	/* TCP drops the bytes without copying them (MSG_TRUNC, tcp(7)). */
	if (!buf)
		msg.msg_flags |= MSG_TRUNC;
	ret = kernel_recvmsg(s->sock, &msg, &iov, 1, len, msg.msg_flags);
	if (ret == -EAGAIN)
		return 0;
	if (ret == 0)
		return -ECONNRESET;
	if (ret > 0)
		WRITE_ONCE(s->last_rx, jiffies);
	return ret;
}

/*
 * The longest payload a valid request with opcode @op can have, beyond
 * which it cannot be valid (a WRITE's head only: its data goes to the
 * chunk).  Nothing longer is ever buffered.
 */
static u32 cd_req_max(struct clouddrec_server *srv, u8 op)
{
	switch (op) {
	case VIRGO_OP_HELLO:
		return VIRGO_WIRE_HELLO_REQ_LEN;
	case VIRGO_OP_AUTH:
		return VIRGO_WIRE_AUTH_LEN;
	case VIRGO_OP_ALLOC:
		return VIRGO_WIRE_BATCH_HDR_LEN +
		       VIRGO_WIRE_SIZE_LEN * srv->lim.max_batch;
	case VIRGO_OP_FREE:
	case VIRGO_OP_DISCARD:
		return VIRGO_WIRE_BATCH_HDR_LEN +
		       VIRGO_WIRE_HANDLE_LEN * srv->lim.max_batch;
	case VIRGO_OP_WRITE:
	case VIRGO_OP_READ:
		return VIRGO_WIRE_RW_REQ_LEN;
	case VIRGO_OP_PING:
		return VIRGO_WIRE_PING_MAX;
	case VIRGO_OP_RESUME:
		return VIRGO_WIRE_RESUME_REQ_LEN;
	case VIRGO_OP_JOIN:
		return VIRGO_WIRE_JOIN_REQ_LEN;
	}
	return 0;	/* STAT */
}

/* Point the payload stage at room for @len bytes (<= cd_req_max()). */
static int cd_rx_buffer(struct clouddrec_session *s, u32 len)
{
	void *buf;

	if (len <= sizeof(s->rx_small)) {
		s->rx_payload = s->rx_small;
		return 0;
	}
	if (len > s->buf_size) {
		buf = kvmalloc(len, GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN);
		if (!buf)
			return -ENOMEM;
		atomic64_add(len - s->buf_size, &s->srv->rx_buffered);
		kvfree(s->buf);
		s->buf = buf;
		s->buf_size = len;
	}
	s->rx_payload = s->buf;
	return 0;
}

/* A frame is served: a big receive buffer is not kept for the next. */
static void cd_rx_shrink(struct clouddrec_session *s)
{
	if (s->buf_size > CD_RX_KEEP) {
		atomic64_sub(s->buf_size, &s->srv->rx_buffered);
		kvfree(s->buf);
		s->buf = NULL;
		s->buf_size = 0;
	}
}

/* Read the rest of the current stage into @dst; 1 once it is complete. */
static int cd_rx_fill(struct clouddrec_session *s, u8 *dst)
{
	int ret;

	if (s->rx_have < s->rx_want) {
		ret = cd_recv_some(s, dst + s->rx_have,
				   s->rx_want - s->rx_have);
		if (ret <= 0)
			return ret;
		s->rx_have += ret;
	}
	return s->rx_have == s->rx_want;
}

/* Most pieces (pages) one receive into a chunk takes. */
#define CD_RX_PIECES	32

/*
 * Point @iov (up to CD_RX_PIECES entries) at @len bytes of @c from @at;
 * returns the entries used and sets *@bytes to the bytes they cover.
 */
static int cd_chunk_kvec(struct clouddrec_chunk *c, u32 at, u32 len,
			 struct kvec *iov, size_t *bytes)
{
	int nr = 0;

	*bytes = 0;
	if (!c->nr_pages) {
		iov[0].iov_base = c->data + at;
		iov[0].iov_len = len;
		*bytes = len;
		return 1;
	}
	while (nr < CD_RX_PIECES && *bytes < len) {
		u32 n = min_t(u32, len - *bytes,
			      PAGE_SIZE - offset_in_page(at));

		/* GFP_KERNEL pages: never highmem, always mapped. */
		iov[nr].iov_base = page_address(c->pages[at >> PAGE_SHIFT]) +
				   offset_in_page(at);
		iov[nr++].iov_len = n;
		*bytes += n;
		at += n;
	}
	return nr;
}

/*
 * Read the rest of a WRITE's data into its chunk, as long as the socket
 * has some; 1 once it is all in.
 */
static int cd_rx_fill_chunk(struct clouddrec_session *s)
{
	struct kvec iov[CD_RX_PIECES];
	size_t bytes;
	int nr, ret;

	while (s->rx_have < s->rx_want) {
		struct msghdr msg = {};

		nr = cd_chunk_kvec(s->rx_chunk, s->rx_direct_off + s->rx_have,
				   s->rx_want - s->rx_have, iov, &bytes);
		ret = kernel_recvmsg(s->sock, &msg, iov, nr, bytes,
				     MSG_DONTWAIT | MSG_NOSIGNAL);
		if (ret == -EAGAIN)
			return 0;
		if (ret == 0)
			return -ECONNRESET;
		if (ret < 0)
			return ret;
		WRITE_ONCE(s->last_rx, jiffies);
		s->rx_have += ret;
	}
	return 1;
}

static void cd_rx_stage(struct clouddrec_session *s, int stage, u32 want)
{
	s->rx_have = 0;
	s->rx_want = want;
	WRITE_ONCE(s->rx_stage, stage);
}

/* Drop the @len payload bytes of the current frame, then reply @err. */
static void cd_rx_discard(struct clouddrec_session *s, u32 len, int err)
{
	s->rx_err = err;
	cd_rx_stage(s, CD_RX_DISCARD, len);
}

/*
 * The header is in: decide how its payload is received.  Returns 0 or a
 * negative errno that closes the connection.
 */
static int cd_rx_header(struct clouddrec_session *s)
{
	struct clouddrec_server *srv = s->srv;
	struct virgo_wire_msg *m = &s->rx_msg;
	u32 want;
	int ret;

	ret = virgo_wire_hdr_unpack(s->rx_hdr, m, &srv->lim);
	if (ret) {
		/* Framing is lost: no reply, drop the connection. */
		cd_count(srv, CD_STAT_ERR_HEADER);
		return ret;
	}
	if (!s->ready && m->len > CD_PREAUTH_MAX_LEN) {
		/* Nothing this big is needed before the handshake. */
		cd_count(srv, CD_STAT_ERR_PERM);
		return -EACCES;
	}
	cd_count(srv, CD_STAT_REQUESTS);
	/* A WRITE's head first; its data goes straight to the chunk. */
	want = m->len;
	if (m->opcode == VIRGO_OP_WRITE && m->len > VIRGO_WIRE_RW_REQ_LEN)
		want = VIRGO_WIRE_RW_REQ_LEN;
	s->rx_overlong = want > cd_req_max(srv, m->opcode);
	if (s->rx_overlong) {
		/*
		 * Cannot be valid: never buffered.  Before the handshake it is
		 * PERM unparsed; after, its head is enough for the checker's
		 * status (cd_rx_overlong()).
		 */
		ret = cd_check_perm(s, m);
		if (ret) {
			cd_rx_discard(s, m->len, ret);
			return 0;
		}
		want = min_t(u32, m->len, VIRGO_WIRE_RW_REQ_LEN);
	}
	ret = cd_rx_buffer(s, want);
	if (ret)
		return ret;
	cd_rx_stage(s, CD_RX_PAYLOAD, want);
	return 0;
}

/*
 * The head of an over-long request is in: its status is what the checker
 * says.  For a payload longer than any valid one, every check refuses it
 * at its length rule or earlier, reading at most the 16 bytes of a
 * READ/WRITE head (8 of an ALLOC/FREE batch head) first, so the checker
 * is given the head in ->rx_small (zeroed beyond it) with the real len.
 */
static void cd_rx_overlong(struct clouddrec_session *s)
{
	struct virgo_wire_msg *m = &s->rx_msg;
	int err;

	memset(s->rx_small + s->rx_want, 0,
	       sizeof(s->rx_small) - s->rx_want);
	err = virgo_wire_check_req(m, s->rx_small, &s->srv->lim);
	if (WARN_ON_ONCE(!err))
		err = -EINVAL;
	cd_count(s->srv, CD_STAT_ERR_PAYLOAD);
	cd_rx_discard(s, m->len - s->rx_want, err);
}

/* A whole request frame is in s->rx_payload: check it, serve it. */
static int cd_rx_request(struct clouddrec_session *s)
{
	struct clouddrec_server *srv = s->srv;
	struct virgo_wire_msg *m = &s->rx_msg;
	const void *p = m->len ? s->rx_payload : NULL;
	int ret;

	/* The next frame starts afresh. */
	cd_rx_stage(s, CD_RX_HDR, sizeof(s->rx_hdr));
	/* Before the handshake, nothing but HELLO/AUTH is even parsed. */
	ret = cd_check_perm(s, m);
	if (!ret) {
		ret = virgo_wire_check_req(m, p, &srv->lim);
		if (ret)
			cd_count(srv, CD_STAT_ERR_PAYLOAD);
	}
	if (ret)
		ret = cd_reply_err(s, m, ret);
	else
		ret = cd_dispatch(s, m, p);
	cd_rx_shrink(s);
	return ret;
}

/* The WRITE that received into ->rx_chunk is done with it. */
static void cd_rx_chunk_put(struct clouddrec_session *s)
{
	cd_chunk_put(s->srv, s->rx_chunk);
	s->rx_chunk = NULL;
}

/*
 * Make progress on the receive side: read what is there, serve a frame
 * once it is complete.  Returns 1 after serving a frame (or a WRITE's
 * head), 0 when it has to wait (for bytes, or for queued READ replies of
 * the chunk a WRITE goes to), or a negative errno that ends the session.
 */
static int cd_rx_step(struct clouddrec_session *s)
{
	struct clouddrec_server *srv = s->srv;
	struct virgo_wire_msg *m = &s->rx_msg;
	int ret;

	switch (s->rx_stage) {
	case CD_RX_HDR:
		if (!s->rx_have)
			WRITE_ONCE(s->frame_start, jiffies);
		s->rx_want = sizeof(s->rx_hdr);
		ret = cd_rx_fill(s, s->rx_hdr);
		if (ret <= 0)
			return ret;
		ret = cd_rx_header(s);
		if (ret)
			return ret;
		if (s->rx_stage == CD_RX_DISCARD)
			return 1;
		fallthrough;
	case CD_RX_PAYLOAD:
		ret = cd_rx_fill(s, s->rx_payload);
		if (ret <= 0)
			return ret;
		if (s->rx_overlong) {
			cd_rx_overlong(s);
			return 1;
		}
		if (s->rx_want == m->len)
			return cd_rx_request(s) ?: 1;
		/* A WRITE's head: the data follows. */
		s->rx_chunk = cd_write_begin(s, m, s->rx_payload, &s->rx_err);
		if (!s->rx_chunk) {
			cd_rx_discard(s, m->len - s->rx_want, s->rx_err);
			return 1;
		}
		cd_rx_stage(s, CD_RX_WAIT, m->len - s->rx_want);
		fallthrough;
	case CD_RX_WAIT:
		/*
		 * Replies still to send from this chunk go out first; those of
		 * another queue of the session wake this one when they have.
		 */
		if (s->rx_chunk->sending) {
			s->rx_chunk->waiter = true;
			return 0;
		}
		/* Pages the socket may still send from are not written. */
		if (cd_chunk_unshare(srv, s->rx_chunk, s->rx_direct_off,
				     s->rx_want)) {
			cd_count(srv, CD_STAT_ERR_NOMEM);
			cd_rx_chunk_put(s);
			cd_rx_discard(s, s->rx_want, -ENOMEM);
			return 1;
		}
		WRITE_ONCE(s->rx_stage, CD_RX_DIRECT);
		fallthrough;
	case CD_RX_DIRECT:
		ret = cd_rx_fill_chunk(s);
		if (ret <= 0)
			return ret;
		atomic64_add(s->rx_want, &srv->stats[CD_STAT_BYTES_WRITTEN]);
		cd_rx_chunk_put(s);
		cd_rx_stage(s, CD_RX_HDR, sizeof(s->rx_hdr));
		return cd_reply(s, m, 0, NULL, 0) ?: 1;
	case CD_RX_DISCARD:
		while (s->rx_have < s->rx_want) {
			ret = cd_recv_some(s, NULL, s->rx_want - s->rx_have);
			if (ret <= 0)
				return ret;
			s->rx_have += ret;
		}
		cd_rx_stage(s, CD_RX_HDR, sizeof(s->rx_hdr));
		return cd_reply_err(s, m, s->rx_err) ?: 1;
	}
	return -EPROTO;
}

/* ---- sessions -------------------------------------------------------- */

/*
 * @s has ended: keep its chunks as an orphan (RESUME agreed, chunks
 * left, server not stopping; the oldest orphan goes to @expired when
 * there are max_sessions).  Under srv->lock.
 */
static void cd_session_orphan(struct clouddrec_session *s,
			      struct list_head *expired)
{
	struct clouddrec_server *srv = s->srv;
	struct cd_table *tab = s->tab;

	lockdep_assert_held(&srv->lock);
	if (srv->stopping || !tab->resumable || !tab->nr_chunks)
		return;
	if (srv->nr_orphans >= srv->cfg.max_sessions) {
		list_move_tail(&list_first_entry(&srv->orphans,
						 struct cd_table,
						 orphan_node)->orphan_node,
			       expired);
		srv->nr_orphans--;
		cd_count(srv, CD_STAT_ORPHANS_EXPIRED);
	}
	tab->orphaned = jiffies;
	list_add_tail(&tab->orphan_node, &srv->orphans);
	srv->nr_orphans++;
	s->tab = NULL;
	cd_count(srv, CD_STAT_SESSIONS_ORPHANED);
}

/*
 * Give back the chunk references @s holds: its queued replies, a WRITE
 * half received.  Under @s->tab's lock (or with @s never started).
 */
static void cd_session_drop_refs(struct clouddrec_session *s)
{
	struct cd_tx *tx, *next;

	list_for_each_entry_safe(tx, next, &s->tx_queue, node)
		cd_tx_done(s, tx);
	if (s->rx_chunk)
		cd_rx_chunk_put(s);
}

static void cd_session_free(struct clouddrec_session *s)
{
	cd_session_drop_refs(s);
	cd_table_free(s->srv, s->retired);
	cd_table_free(s->srv, s->tab);
	if (s->sock)
		sock_release(s->sock);
	atomic64_sub(s->buf_size, &s->srv->rx_buffered);
	kvfree(s->buf);
	kfree(s);
}

static void cd_data_ready(struct sock *sk)
{
	struct clouddrec_session *s;

	read_lock_bh(&sk->sk_callback_lock);
	s = sk->sk_user_data;
	if (s && !READ_ONCE(s->closing))
		queue_work(s->srv->wq, &s->io_work);
	read_unlock_bh(&sk->sk_callback_lock);
}

static void cd_state_change(struct sock *sk)
{
	cd_data_ready(sk);
}

/* Room to send again (after an -EAGAIN): the I/O work goes on. */
static void cd_write_space(struct sock *sk)
{
	struct clouddrec_session *s;

	read_lock_bh(&sk->sk_callback_lock);
	s = sk->sk_user_data;
	if (s && !READ_ONCE(s->closing) && sk_stream_is_writeable(sk)) {
		clear_bit(SOCK_NOSPACE, &sk->sk_socket->flags);
		queue_work(s->srv->wq, &s->io_work);
	}
	read_unlock_bh(&sk->sk_callback_lock);
}

/* Stop the socket from queueing work for @s. */
static void cd_session_unhook(struct clouddrec_session *s)
{
	struct sock *sk = s->sock->sk;

	write_lock_bh(&sk->sk_callback_lock);
	if (sk->sk_user_data == s) {
		sk->sk_user_data = NULL;
		sk->sk_data_ready = s->saved_data_ready;
		sk->sk_state_change = s->saved_state_change;
		sk->sk_write_space = s->saved_write_space;
	}
	write_unlock_bh(&sk->sk_callback_lock);
}

#if IS_ENABLED(CONFIG_KUNIT)
void (*clouddrec_test_orphaned)(struct clouddrec_server *srv,
				unsigned int replies_queued);
void (*clouddrec_test_io)(struct clouddrec_server *srv);
#endif

static void clouddrec_session_release(struct work_struct *work)
{
	struct clouddrec_session *s =
		container_of(work, struct clouddrec_session, release_work);
	struct clouddrec_server *srv = s->srv;
	struct cd_table *tab;
	LIST_HEAD(expired);

	/* The I/O work sees ->closing and does nothing any more. */
	cancel_work_sync(&s->io_work);
	/* Other connections of the session may be using its chunks. */
	tab = s->tab;
	mutex_lock(&tab->lock);
	cd_session_drop_refs(s);
	mutex_unlock(&tab->lock);
	mutex_lock(&srv->lock);
	list_del(&s->node);
	srv->nr_sessions--;
	/* The last connection of a session ends it, or orphans it. */
	if (--tab->conns)
		s->tab = NULL;
	else
		cd_session_orphan(s, &expired);
	mutex_unlock(&srv->lock);
#if IS_ENABLED(CONFIG_KUNIT)
	if (clouddrec_test_orphaned && !s->tab)
		clouddrec_test_orphaned(srv, s->tx_nr);
#endif
	cd_tables_free(srv, &expired);
	if (s->ready)
		cd_pool_session_gone(srv);
	cd_count(srv, CD_STAT_SESSIONS_CLOSED);
	if (s->timed_out)
		cd_count(srv, CD_STAT_ERR_TIMEOUT);
	cd_session_free(s);
}

/* End a session: called by its I/O work only. */
static void cd_session_close(struct clouddrec_session *s)
{
	WRITE_ONCE(s->closing, true);
	cd_session_unhook(s);
	/* A last reply (AUTH refused) leaves if the socket takes it now. */
	if (!READ_ONCE(s->timed_out))
		cd_tx_push(s);
	kernel_sock_shutdown(s->sock, SHUT_RDWR);
	queue_work(s->srv->wq, &s->release_work);
}

/* Frames served per run of the I/O work before it yields. */
#define CD_IO_BUDGET	16

/*
 * One run of a connection's I/O work, under its table's lock: send, then
 * serve frames until the socket has no more, the budget is spent, or a
 * RESUME or JOIN gave the connection another table (the run ends there:
 * the next one takes that table's lock).
 */
static void cd_session_io_run(struct clouddrec_session *s,
			      const struct cd_table *tab)
{
	int budget = CD_IO_BUDGET, ret;

	ret = cd_tx_push(s);
	do {
		if (ret < 0 || READ_ONCE(s->srv->stopping) ||
		    READ_ONCE(s->timed_out)) {
			cd_session_close(s);
			return;
		}
		/*
		 * Backpressure: a client that does not read its replies gets
		 * no more served; write_space brings the work back.
		 */
		if (cd_tx_full(s))
			return;
		ret = cd_rx_step(s);
	} while (ret > 0 && --budget && s->tab == tab);

	if (ret < 0) {
		cd_session_close(s);
		return;
	}
	/* Out of budget with data left: let others run, then go on. */
	if (!budget || s->tab != tab)
		queue_work(s->srv->wq, &s->io_work);
}

static void clouddrec_session_io(struct work_struct *work)
{
	struct clouddrec_session *s =
		container_of(work, struct clouddrec_session, io_work);
	struct cd_table *tab;

	if (READ_ONCE(s->closing))
		return;
#if IS_ENABLED(CONFIG_KUNIT)
	if (clouddrec_test_io)
		clouddrec_test_io(s->srv);
#endif
	/* Only this work (RESUME, JOIN) changes it while the work runs. */
	tab = s->tab;
	mutex_lock(&tab->lock);
	cd_session_io_run(s, tab);
	mutex_unlock(&tab->lock);
	/* A table RESUME or JOIN replaced is empty: nobody else knows it. */
	if (s->retired) {
		cd_table_free(s->srv, s->retired);
		s->retired = NULL;
	}
}

/* Why the reaper closes @s now, if it does: a timeout it is past. */
static bool cd_reap_due(struct clouddrec_server *srv,
			struct clouddrec_session *s)
{
	unsigned long idle = msecs_to_jiffies(srv->cfg.idle_timeout_ms);
	unsigned long io = msecs_to_jiffies(srv->cfg.io_timeout_ms);
	unsigned long hs = msecs_to_jiffies(srv->cfg.handshake_timeout_ms);
	bool in_frame = READ_ONCE(s->rx_stage) != CD_RX_HDR ||
			READ_ONCE(s->rx_have);

	if (READ_ONCE(s->closing) || READ_ONCE(s->timed_out))
		return false;
	/* Not done with HELLO/AUTH in time. */
	if (!READ_ONCE(s->ready) && time_after(jiffies, s->accepted + hs))
		return true;
	/* Replies not read: no send progress for io_timeout. */
	if (READ_ONCE(s->tx_bytes) &&
	    time_after(jiffies, READ_ONCE(s->tx_since) + io))
		return true;
	if (in_frame)
		return time_after(jiffies, READ_ONCE(s->frame_start) + io);
	/*
	 * A quiet session that holds chunks is memory in use, not an idle
	 * connection: it stays until its client frees them, closes or is
	 * found dead by TCP keepalive.
	 */
	if (READ_ONCE(s->tab->nr_chunks))
		return false;
	return time_after(jiffies, READ_ONCE(s->last_rx) + idle);
}

/*
 * Close sessions idle, mid-frame, deaf or in their handshake for longer
 * than allowed.  Only flags them and shuts their socket down: their I/O
 * work (queued by the state change) closes them; no worker waits.
 */
static void clouddrec_reaper(struct work_struct *work)
{
	struct clouddrec_server *srv =
		container_of(work, struct clouddrec_server, reaper.work);
	unsigned long orphan_life =
		msecs_to_jiffies(srv->cfg.orphan_timeout_ms);
	struct clouddrec_session *s;
	struct cd_table *tab, *next;
	LIST_HEAD(expired);

	mutex_lock(&srv->lock);
	/* Oldest first: stop at the first orphan still within its time. */
	list_for_each_entry_safe(tab, next, &srv->orphans, orphan_node) {
		if (!time_after(jiffies, tab->orphaned + orphan_life))
			break;
		list_move_tail(&tab->orphan_node, &expired);
		srv->nr_orphans--;
		cd_count(srv, CD_STAT_ORPHANS_EXPIRED);
	}
	list_for_each_entry(s, &srv->sessions, node) {
		if (!cd_reap_due(srv, s))
			continue;
		WRITE_ONCE(s->timed_out, true);
		/* Queues the I/O work, which closes the session. */
		kernel_sock_shutdown(s->sock, SHUT_RDWR);
	}
	if (!srv->stopping)
		queue_delayed_work(srv->wq, &srv->reaper, srv->reap_period);
	mutex_unlock(&srv->lock);
	cd_tables_free(srv, &expired);
}

/* Sessions from the host @addr names; under srv->lock. */
static u32 cd_sessions_from(struct clouddrec_server *srv,
			    const union virgo_addr *addr)
{
	struct clouddrec_session *s;
	u32 n = 0;

	list_for_each_entry(s, &srv->sessions, node)
		if (virgo_addr_same_host(&s->peer, addr))
			n++;
	return n;
}

static void cd_sock_set_notsent_lowat(struct socket *sock, int bytes)
{
	int ret = sock->ops->setsockopt(sock, SOL_TCP, TCP_NOTSENT_LOWAT,
					KERNEL_SOCKPTR(&bytes), sizeof(bytes));

	/* Not fatal: the session works, with the kernel's default. */
	if (ret)
		pr_warn_once("cannot set TCP_NOTSENT_LOWAT: %d\n", ret);
}

/* A new session for @sock, fully set up (nothing to undo but kfree). */
static struct clouddrec_session *cd_session_new(struct clouddrec_server *srv,
						struct socket *sock)
{
	struct clouddrec_session *s = kzalloc(sizeof(*s), GFP_KERNEL);
	struct sockaddr_storage peer;

	if (!s)
		return NULL;
	s->tab = kzalloc(sizeof(*s->tab), GFP_KERNEL);
	if (!s->tab) {
		kfree(s);
		return NULL;
	}
	s->srv = srv;
	s->sock = sock;
	s->authed = !srv->hmac;
	s->accepted = jiffies;
	s->last_rx = s->accepted;
	INIT_LIST_HEAD(&s->tx_queue);
	mutex_init(&s->tab->lock);
	s->tab->conns = 1;
	xa_init(&s->tab->chunks);
	INIT_WORK(&s->io_work, clouddrec_session_io);
	INIT_WORK(&s->release_work, clouddrec_session_release);
	/* 0 is never a session id: no handle is 0. */
	do {
		s->tab->sid = atomic_inc_return(&srv->next_sid);
	} while (!s->tab->sid);
	/* An IPv4 client of a dual-stack listener is stored as IPv4. */
	if (kernel_getpeername(sock, (struct sockaddr *)&peer) < 0 ||
	    virgo_addr_from_sockaddr(&s->peer, &peer))
		memset(&s->peer, 0, sizeof(s->peer));
	return s;
}

/* Take over an accepted socket: start a session, or refuse it. */
static void cd_session_start(struct clouddrec_server *srv, struct socket *sock)
{
	struct clouddrec_session *s;
	struct sock *sk = sock->sk;

	s = cd_session_new(srv, sock);
	if (!s)
		goto refuse;

	/*
	 * A client host that dies silently is found by TCP: keepalive
	 * probes an idle connection (dead after about 90 s), the user
	 * timeout aborts one whose replies stay unacknowledged for
	 * io_timeout.  Its session then closes and frees its chunks.
	 */
	tcp_sock_set_nodelay(sk);
	sock_set_keepalive(sk);
	tcp_sock_set_keepidle(sk, CD_KEEPIDLE_S);
	tcp_sock_set_keepintvl(sk, CD_KEEPINTVL_S);
	tcp_sock_set_keepcnt(sk, CD_KEEPCNT);
	tcp_sock_set_user_timeout(sk, srv->cfg.io_timeout_ms);
	cd_sock_set_notsent_lowat(sock, CD_NOTSENT_LOWAT);

	mutex_lock(&srv->lock);
	if (srv->stopping || srv->nr_sessions >= srv->cfg.max_sessions ||
	    cd_sessions_from(srv, &s->peer) >=
	    srv->cfg.max_sessions_per_addr) {
		mutex_unlock(&srv->lock);
		goto refuse;
	}
	list_add_tail(&s->node, &srv->sessions);
	srv->nr_sessions++;

	write_lock_bh(&sk->sk_callback_lock);
	sk->sk_user_data = s;
	s->saved_data_ready = sk->sk_data_ready;
	s->saved_state_change = sk->sk_state_change;
	s->saved_write_space = sk->sk_write_space;
	sk->sk_data_ready = cd_data_ready;
	sk->sk_state_change = cd_state_change;
	sk->sk_write_space = cd_write_space;
	write_unlock_bh(&sk->sk_callback_lock);

	/* Bytes may have arrived before the callbacks were ours. */
	queue_work(srv->wq, &s->io_work);
	mutex_unlock(&srv->lock);
	cd_count(srv, CD_STAT_SESSIONS_ACCEPTED);
	return;

refuse:
	cd_count(srv, CD_STAT_SESSIONS_REFUSED);
	if (s) {
		s->sock = NULL;
		cd_session_free(s);
	}
	kernel_sock_shutdown(sock, SHUT_RDWR);
	sock_release(sock);
}

static int clouddrec_acceptor(void *data)
{
	struct clouddrec_server *srv = data;

	while (!kthread_should_stop()) {
		struct socket *sock;
		int ret;

		ret = kernel_accept(srv->listener, &sock, 0);
		if (ret) {
			/* Shut down, or out of memory: back off, retry. */
			if (!kthread_should_stop())
				schedule_timeout_interruptible(HZ / 10);
			continue;
		}
		cd_session_start(srv, sock);
	}
	return 0;
}

/* ---- debugfs --------------------------------------------------------- */

static int cd_stats_show(struct seq_file *m, void *v)
{
	struct clouddrec_server *srv = m->private;
	int i;

	seq_printf(m, "capacity %llu\n", srv->cfg.max_memory);
	seq_printf(m, "lent_bytes %llu\n", clouddrec_server_lent_bytes(srv));
	seq_printf(m, "lent_chunks %llu\n", clouddrec_server_lent_chunks(srv));
	seq_printf(m, "charged_bytes %llu\n",
		   clouddrec_server_charged_bytes(srv));
	seq_printf(m, "materialised_bytes %llu\n",
		   clouddrec_server_materialised_bytes(srv));
	seq_printf(m, "materialised_chunks %llu\n",
		   clouddrec_server_materialised_chunks(srv));
	seq_printf(m, "rx_buffer_bytes %llu\n",
		   clouddrec_server_rx_buffered(srv));
	seq_printf(m, "pool_bytes %llu\n", clouddrec_server_pooled_bytes(srv));
	seq_printf(m, "tx_queued %llu\n", clouddrec_server_tx_queued(srv));
	seq_printf(m, "sessions %u\n", clouddrec_server_sessions(srv));
	seq_printf(m, "orphans %u\n", clouddrec_server_orphans(srv));
	for (i = 0; i < CD_STAT_NR; i++)
		seq_printf(m, "%s %llu\n", clouddrec_stat_names[i],
			   clouddrec_server_stat(srv, i));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(cd_stats);

static int cd_sessions_show(struct seq_file *m, void *v)
{
	struct clouddrec_server *srv = m->private;
	struct clouddrec_session *s;

	seq_puts(m, "peer bytes chunks authenticated\n");
	mutex_lock(&srv->lock);
	list_for_each_entry(s, &srv->sessions, node)
		seq_printf(m, "%pISpc %llu %llu %d\n", &s->peer,
			   READ_ONCE(s->tab->bytes),
			   READ_ONCE(s->tab->nr_chunks),
			   READ_ONCE(s->ready));
	mutex_unlock(&srv->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(cd_sessions);

/* ---- server ---------------------------------------------------------- */

static int cd_check_config(const struct clouddrec_config *cfg,
			   struct virgo_wire_limits *lim)
{
	if (cfg->psk_len > sizeof_field(struct clouddrec_server, psk) ||
	    (cfg->psk_len && !cfg->psk))
		return -EINVAL;
	if (!cfg->max_memory || !cfg->max_sessions || !cfg->max_inflight ||
	    !cfg->idle_timeout_ms || !cfg->io_timeout_ms ||
	    !cfg->handshake_timeout_ms || !cfg->max_sessions_per_addr ||
	    !cfg->max_session_chunks)
		return -EINVAL;
	if (cfg->max_sessions > CD_MAX_SESSIONS ||
	    cfg->max_queues > CD_MAX_QUEUES)
		return -EINVAL;
	if (!cfg->max_chunk || cfg->max_chunk > VIRGO_WIRE_MAX_CHUNK_LIMIT ||
	    !cfg->max_batch || cfg->max_batch > VIRGO_WIRE_MAX_BATCH_LIMIT)
		return -EINVAL;

	lim->max_chunk = cfg->max_chunk;
	lim->max_batch = cfg->max_batch;
	lim->max_payload = max3(cfg->max_chunk + VIRGO_WIRE_RW_REQ_LEN,
				VIRGO_WIRE_BATCH_HDR_LEN +
				VIRGO_WIRE_HANDLE_LEN * cfg->max_batch,
				(u32)VIRGO_WIRE_MIN_PAYLOAD);
	return virgo_wire_limits_check(lim);
}

/* IPV6_V6ONLY off: a listener on :: takes IPv4 clients too. */
static int cd_sock_set_dual_stack(struct socket *sock)
{
	int off = 0;

	return sock->ops->setsockopt(sock, SOL_IPV6, IPV6_V6ONLY,
				     KERNEL_SOCKPTR(&off), sizeof(off));
}

static int cd_listen_on(struct clouddrec_server *srv, union virgo_addr *addr)
{
	int ret;

	ret = sock_create_kern(&init_net, addr->sa.sa_family, SOCK_STREAM,
			       IPPROTO_TCP, &srv->listener);
	if (ret)
		return ret;
	sock_set_reuseaddr(srv->listener->sk);
	if (addr->sa.sa_family == AF_INET6 && virgo_addr_is_any(addr)) {
		ret = cd_sock_set_dual_stack(srv->listener);
		if (ret)
			goto release;
	}
	ret = kernel_bind(srv->listener, &addr->sa, virgo_addr_len(addr));
	if (ret)
		goto release;
	ret = kernel_listen(srv->listener, 128);
	if (ret)
		goto release;
	return 0;

release:
	sock_release(srv->listener);
	srv->listener = NULL;
	return ret;
}

/*
 * Listen on cfg.addr; "any" (AF_UNSPEC or ::) is dual-stack, or 0.0.0.0
 * on a kernel without IPv6 (not built, or booted with ipv6.disable=1).
 */
static int cd_listen(struct clouddrec_server *srv)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;
	union virgo_addr addr = srv->cfg.addr;
	int ret;

	if (addr.sa.sa_family == AF_UNSPEC)
		virgo_addr_set_v6(&addr, &any6, 0);
	virgo_addr_set_port(&addr, srv->cfg.port);
	ret = cd_listen_on(srv, &addr);
	if (ret == -EAFNOSUPPORT && addr.sa.sa_family == AF_INET6 &&
	    virgo_addr_is_any(&addr)) {
		pr_info("no IPv6 sockets (EAFNOSUPPORT): listening on IPv4 only\n");
		virgo_addr_set_v4(&addr, htonl(INADDR_ANY), srv->cfg.port);
		ret = cd_listen_on(srv, &addr);
	}
	return ret;
}

/* Where @srv listens, as text ("[::]:7707", "0.0.0.0:7707"). */
static void cd_listen_addr(struct clouddrec_server *srv, char *buf,
			   size_t size)
{
	struct sockaddr_storage ss;
	union virgo_addr addr;

	memset(&addr, 0, sizeof(addr));
	if (kernel_getsockname(srv->listener, (struct sockaddr *)&ss) >= 0)
		virgo_addr_from_sockaddr(&addr, &ss);
	virgo_addr_format(&addr, buf, size);
}

/**
 * clouddrec_server_start() - start a server
 * @cfg: its configuration (copied)
 *
 * Return: the running server, or an ERR_PTR(): -EINVAL for a bad
 * configuration, -EADDRINUSE and friends from bind, -ENOMEM, or the
 * crypto API's error when hmac(sha256) is unavailable.
 */
struct clouddrec_server *
clouddrec_server_start(const struct clouddrec_config *cfg)
{
	struct clouddrec_server *srv;
	u32 period;
	int ret, i;

	srv = kzalloc(sizeof(*srv), GFP_KERNEL);
	if (!srv)
		return ERR_PTR(-ENOMEM);
	ret = cd_check_config(cfg, &srv->lim);
	if (ret)
		goto free;
	srv->cfg = *cfg;
	if (cfg->psk_len) {
		memcpy(srv->psk, cfg->psk, cfg->psk_len);
		srv->cfg.psk = srv->psk;
	} else {
		srv->cfg.psk = NULL;
	}
	mutex_init(&srv->lock);
	INIT_LIST_HEAD(&srv->sessions);
	INIT_LIST_HEAD(&srv->orphans);
	INIT_DELAYED_WORK(&srv->reaper, clouddrec_reaper);
	period = min3(cfg->idle_timeout_ms, cfg->io_timeout_ms,
		      cfg->handshake_timeout_ms);
	srv->reap_period = clamp(msecs_to_jiffies(period) / 4,
				 msecs_to_jiffies(10), (unsigned long)HZ);
	atomic64_set(&srv->lent_bytes, 0);
	atomic64_set(&srv->lent_chunks, 0);
	atomic64_set(&srv->charged, 0);
	atomic64_set(&srv->materialised, 0);
	atomic64_set(&srv->materialised_chunks, 0);
	atomic64_set(&srv->rx_buffered, 0);
	atomic64_set(&srv->tx_queued, 0);
	/* Handles of a restarted server's sessions differ from the last. */
	atomic_set(&srv->next_sid, get_random_u32());
	for (i = 0; i < CD_STAT_NR; i++)
		atomic64_set(&srv->stats[i], 0);
	spin_lock_init(&srv->pool.lock);
	INIT_WORK(&srv->pool.refill, cd_pool_refill);
	atomic_set(&srv->ready_sessions, 0);
	srv->pool.max = min(cfg->pool_bytes, cfg->max_memory) >> PAGE_SHIFT;
	if (srv->pool.max) {
		srv->pool.pages = kvcalloc(srv->pool.max,
					   sizeof(*srv->pool.pages),
					   GFP_KERNEL);
		if (!srv->pool.pages) {
			ret = -ENOMEM;
			goto free;
		}
	}

	if (cfg->psk_len) {
		srv->hmac = crypto_alloc_shash("hmac(sha256)", 0, 0);
		if (IS_ERR(srv->hmac)) {
			ret = PTR_ERR(srv->hmac);
			srv->hmac = NULL;
			goto free;
		}
		ret = crypto_shash_setkey(srv->hmac, srv->psk, cfg->psk_len);
		if (ret)
			goto free_hmac;
	}

	srv->wq = alloc_workqueue("virgo_clouddrec", WQ_UNBOUND,
				  cfg->max_workers);
	if (!srv->wq) {
		ret = -ENOMEM;
		goto free_hmac;
	}
	ret = cd_listen(srv);
	if (ret)
		goto free_wq;

	srv->acceptor = kthread_run(clouddrec_acceptor, srv,
				    "virgo_cd_accept");
	if (IS_ERR(srv->acceptor)) {
		ret = PTR_ERR(srv->acceptor);
		goto release;
	}
	queue_delayed_work(srv->wq, &srv->reaper, srv->reap_period);

	if (cfg->debugfs) {
		srv->dir = debugfs_create_dir("virgo_clouddrec", NULL);
		debugfs_create_file("stats", 0400, srv->dir, srv,
				    &cd_stats_fops);
		debugfs_create_file("sessions", 0400, srv->dir, srv,
				    &cd_sessions_fops);
	}
	return srv;

release:
	sock_release(srv->listener);
free_wq:
	destroy_workqueue(srv->wq);
free_hmac:
	crypto_free_shash(srv->hmac);
free:
	kvfree(srv->pool.pages);
	memzero_explicit(srv->psk, sizeof(srv->psk));
	kfree(srv);
	return ERR_PTR(ret);
}

/**
 * clouddrec_server_stop() - stop a server and free everything it lent
 * @srv: the server
 *
 * Safe at any moment: sessions connected, requests in flight.  Returns
 * once no thread of the server runs and every chunk is freed.
 */
void clouddrec_server_stop(struct clouddrec_server *srv)
{
	struct clouddrec_session *s;

	debugfs_remove_recursive(srv->dir);

	mutex_lock(&srv->lock);
	srv->stopping = true;
	mutex_unlock(&srv->lock);

	/* Wakes the acceptor out of kernel_accept(). */
	kernel_sock_shutdown(srv->listener, SHUT_RDWR);
	kthread_stop(srv->acceptor);
	cancel_delayed_work_sync(&srv->reaper);

	/*
	 * Queues every session's I/O work (through the state change), which
	 * sees ->stopping and closes the session; wakes any send.  Then take
	 * the sockets' callbacks away: from here on only work items queue
	 * work (a session's release), which is what a draining workqueue
	 * allows.  A callback left in place would queue from softirq when
	 * a client's FIN or RST arrives mid-drain: the workqueue refuses
	 * that with a warning and leaves the work pending for ever.
	 */
	mutex_lock(&srv->lock);
	list_for_each_entry(s, &srv->sessions, node)
		kernel_sock_shutdown(s->sock, SHUT_RDWR);
	list_for_each_entry(s, &srv->sessions, node)
		cd_session_unhook(s);
	mutex_unlock(&srv->lock);

	/* Drains: every session closes and its release frees its chunks. */
	destroy_workqueue(srv->wq);
	WARN_ON(!list_empty(&srv->sessions));
	/* No work runs any more: the orphans are ours alone. */
	cd_tables_free(srv, &srv->orphans);
	srv->nr_orphans = 0;
	WARN_ON(atomic64_read(&srv->lent_bytes));
	WARN_ON(atomic64_read(&srv->charged));
	WARN_ON(atomic64_read(&srv->materialised));
	/* The refill work ran its last with the workqueue. */
	cd_pool_drain(srv);
	kvfree(srv->pool.pages);

	sock_release(srv->listener);
	crypto_free_shash(srv->hmac);
	memzero_explicit(srv->psk, sizeof(srv->psk));
	kfree(srv);
}

/**
 * clouddrec_server_port() - the TCP port a server listens on
 * @srv: the server
 *
 * Return: the port, useful after starting with port 0; 0 on error.
 */
u16 clouddrec_server_port(struct clouddrec_server *srv)
{
	struct sockaddr_storage ss;
	union virgo_addr addr;

	if (kernel_getsockname(srv->listener, (struct sockaddr *)&ss) < 0 ||
	    virgo_addr_from_sockaddr(&addr, &ss))
		return 0;
	return virgo_addr_port(&addr);
}

/**
 * clouddrec_server_stat() - read one event counter
 * @srv: the server
 * @stat: which counter
 *
 * Return: the counter's value.
 */
u64 clouddrec_server_stat(struct clouddrec_server *srv,
			  enum clouddrec_stat stat)
{
	if (stat >= CD_STAT_NR)
		return 0;
	return atomic64_read(&srv->stats[stat]);
}

/**
 * clouddrec_server_lent_bytes() - bytes currently lent to all sessions
 * @srv: the server
 *
 * Return: the byte count.
 */
u64 clouddrec_server_lent_bytes(struct clouddrec_server *srv)
{
	return atomic64_read(&srv->lent_bytes);
}

/**
 * clouddrec_server_lent_chunks() - chunks currently lent to all sessions
 * @srv: the server
 *
 * Return: the chunk count.
 */
u64 clouddrec_server_lent_chunks(struct clouddrec_server *srv)
{
	return atomic64_read(&srv->lent_chunks);
}

/**
 * clouddrec_server_charged_bytes() - the lending budget in use
 * @srv: the server
 *
 * What the chunks alive cost the node, metadata included: what
 * max_memory bounds.
 *
 * Return: the byte count.
 */
u64 clouddrec_server_charged_bytes(struct clouddrec_server *srv)
{
	return atomic64_read(&srv->charged);
}

/**
 * clouddrec_server_materialised_bytes() - bytes of chunk memory allocated
 * @srv: the server
 *
 * Chunks get memory at their first WRITE and give it back when freed or
 * discarded (once no queued READ reply sends from it): the device is thin.
 *
 * Return: the byte count (chunk sizes, not their slab rounding).
 */
u64 clouddrec_server_materialised_bytes(struct clouddrec_server *srv)
{
	return atomic64_read(&srv->materialised);
}

/**
 * clouddrec_server_materialised_chunks() - chunks with memory allocated
 * @srv: the server
 *
 * Return: the chunk count clouddrec_server_materialised_bytes() covers.
 */
u64 clouddrec_server_materialised_chunks(struct clouddrec_server *srv)
{
	return atomic64_read(&srv->materialised_chunks);
}

/**
 * clouddrec_server_rx_buffered() - bytes of session receive buffers
 * @srv: the server
 *
 * Payloads of up to 64 bytes land in the session itself; only ALLOC and
 * FREE requests longer than that get a buffer, which is freed after the
 * frame when it exceeds 16 KiB.
 *
 * Return: the byte count.
 */
u64 clouddrec_server_rx_buffered(struct clouddrec_server *srv)
{
	return atomic64_read(&srv->rx_buffered);
}

/**
 * clouddrec_server_tx_queued() - replies queued for clients that have not
 *	taken them yet (their sockets full), all sessions
 * @srv: the server
 *
 * At most max_inflight per session past its handshake, 2 before it.
 *
 * Return: the reply count.
 */
u64 clouddrec_server_tx_queued(struct clouddrec_server *srv)
{
	return atomic64_read(&srv->tx_queued);
}

/**
 * clouddrec_server_pooled_bytes() - memory held in the pool of zeroed pages
 * @srv: the server
 *
 * The pool is not lent and not part of the lending budget: it holds up to
 * cfg.pool_bytes (at most max_memory) while a session is past its
 * handshake, nothing otherwise.
 *
 * Return: the byte count.
 */
u64 clouddrec_server_pooled_bytes(struct clouddrec_server *srv)
{
	return (u64)READ_ONCE(srv->pool.nr) << PAGE_SHIFT;
}

/**
 * clouddrec_server_orphans() - sessions kept for RESUME
 * @srv: the server
 *
 * Return: the number of orphans (chunk tables whose connection ended).
 */
unsigned int clouddrec_server_orphans(struct clouddrec_server *srv)
{
	unsigned int n;

	mutex_lock(&srv->lock);
	n = srv->nr_orphans;
	mutex_unlock(&srv->lock);
	return n;
}

/**
 * clouddrec_server_sessions() - connected sessions
 * @srv: the server
 *
 * Return: the number of live sessions.
 */
unsigned int clouddrec_server_sessions(struct clouddrec_server *srv)
{
	unsigned int n;

	mutex_lock(&srv->lock);
	n = srv->nr_sessions;
	mutex_unlock(&srv->lock);
	return n;
}

/* ---- module ---------------------------------------------------------- */

static char *listen_addr = "::";
module_param(listen_addr, charp, 0444);
MODULE_PARM_DESC(listen_addr, "IPv4 or IPv6 address to listen on (default ::, every IPv6 and IPv4 address)");

static ushort port = 7707;
module_param(port, ushort, 0444);
MODULE_PARM_DESC(port, "TCP port to listen on (default 7707)");

static char psk[65];
module_param_string(psk, psk, sizeof(psk), 0);
MODULE_PARM_DESC(psk, "pre-shared key for AUTH, up to 64 bytes (default: none, and a warning)");

static ulong max_memory_mb;
module_param(max_memory_mb, ulong, 0444);
MODULE_PARM_DESC(max_memory_mb, "MiB lent in total (default: a quarter of RAM)");

static uint max_chunk = VIRGO_WIRE_DEF_MAX_CHUNK;
module_param(max_chunk, uint, 0444);
MODULE_PARM_DESC(max_chunk, "largest chunk in bytes (default 1 MiB, at most 32 MiB)");

static uint max_batch = VIRGO_WIRE_DEF_MAX_BATCH;
module_param(max_batch, uint, 0444);
MODULE_PARM_DESC(max_batch, "most chunks in one ALLOC or FREE (default 1024)");

static uint max_sessions = 1024;
module_param(max_sessions, uint, 0444);
MODULE_PARM_DESC(max_sessions, "most client connections at once (default 1024)");

static uint max_inflight = VIRGO_WIRE_DEF_MAX_INFLIGHT;
module_param(max_inflight, uint, 0444);
MODULE_PARM_DESC(max_inflight, "requests a client may pipeline per connection (default 128)");

static uint idle_timeout = 300;
module_param(idle_timeout, uint, 0444);
MODULE_PARM_DESC(idle_timeout, "seconds before an idle session is closed (default 300)");

static uint io_timeout = 30;
module_param(io_timeout, uint, 0444);
MODULE_PARM_DESC(io_timeout, "seconds a frame may take to arrive or leave (default 30)");

static uint handshake_timeout = 5;
module_param(handshake_timeout, uint, 0444);
MODULE_PARM_DESC(handshake_timeout, "seconds a connection has to finish HELLO and AUTH (default 5)");

static uint max_sessions_per_addr = 64;
module_param(max_sessions_per_addr, uint, 0444);
MODULE_PARM_DESC(max_sessions_per_addr, "most connections from one client address (default 64)");

static uint max_session_chunks = 1U << 20;
module_param(max_session_chunks, uint, 0444);
MODULE_PARM_DESC(max_session_chunks, "most chunks one session may hold, all its connections together (default 1048576)");

static uint orphan_timeout = 120;
module_param(orphan_timeout, uint, 0444);
MODULE_PARM_DESC(orphan_timeout, "seconds a lost client's chunks wait for it to resume its session (default 120; 0: no resumption, chunks freed at once)");

static long min_free_mb = -1;
module_param(min_free_mb, long, 0444);
MODULE_PARM_DESC(min_free_mb, "MiB of available memory kept for the node: no new chunk below (default -1: 1/32 of RAM; 0: none)");

static uint max_queues = CD_QUEUES_DEFAULT;
module_param(max_queues, uint, 0444);
MODULE_PARM_DESC(max_queues, "connections one client session may have (capability QUEUES, with RESUME); 0 or 1 for one (default 16, at most 256)");

static bool discard = true;
module_param(discard, bool, 0444);
MODULE_PARM_DESC(discard, "grant the DISCARD capability: clients give written chunks' memory back (default yes)");

static uint pool_mb = CD_POOL_DEFAULT >> 20;
module_param(pool_mb, uint, 0444);
MODULE_PARM_DESC(pool_mb, "MiB of zeroed pages kept ready for first writes while a client is connected, apart from max_memory_mb (default 0: none; at most max_memory_mb)");

/*
 * Built in (the KUnit kernel), the suites run servers of their own; the
 * module's instance starts only when asked (virgo_clouddrec.start=1).
 */
#ifdef MODULE
static bool start = true;
#else
static bool start;
#endif
module_param(start, bool, 0444);
MODULE_PARM_DESC(start, "start the server at load (default: yes as a module)");

/* The module's server; set once at init, cleared at exit. */
static struct clouddrec_server *clouddrec;

static int __init clouddrec_init(void)
{
	char where[VIRGO_ADDR_STRLEN];
	struct clouddrec_config cfg;
	struct clouddrec_server *srv;

	if (!start)
		return 0;
	clouddrec_config_default(&cfg);
	if (virgo_addr_parse_host(listen_addr, strlen(listen_addr), port,
				  &cfg.addr)) {
		pr_err("listen_addr=%s is not an IPv4 or IPv6 address\n",
		       listen_addr);
		return -EINVAL;
	}
	cfg.port = port;
	cfg.psk = (const u8 *)psk;
	cfg.psk_len = strnlen(psk, sizeof(psk));
	if (cfg.psk_len > 64) {
		pr_err("psk is longer than 64 bytes\n");
		return -EINVAL;
	}
	if (max_memory_mb)
		cfg.max_memory = (u64)max_memory_mb << 20;
	cfg.max_chunk = max_chunk;
	cfg.max_batch = max_batch;
	cfg.max_sessions = max_sessions;
	cfg.max_inflight = max_inflight;
	cfg.idle_timeout_ms = idle_timeout * MSEC_PER_SEC;
	cfg.io_timeout_ms = io_timeout * MSEC_PER_SEC;
	cfg.handshake_timeout_ms = handshake_timeout * MSEC_PER_SEC;
	cfg.max_sessions_per_addr = max_sessions_per_addr;
	cfg.max_session_chunks = max_session_chunks;
	cfg.orphan_timeout_ms = orphan_timeout * MSEC_PER_SEC;
	if (min_free_mb >= 0)
		cfg.min_free = (u64)min_free_mb << 20;
	cfg.pool_bytes = (u64)pool_mb << 20;
	cfg.debugfs = true;
	cfg.discard = discard;
	cfg.max_queues = max_queues;
	if (!port || !idle_timeout || !io_timeout || !handshake_timeout ||
	    idle_timeout > INT_MAX / MSEC_PER_SEC ||
	    io_timeout > INT_MAX / MSEC_PER_SEC ||
	    handshake_timeout > INT_MAX / MSEC_PER_SEC ||
	    orphan_timeout > INT_MAX / MSEC_PER_SEC) {
		pr_err("port and timeouts must be non-zero\n");
		return -EINVAL;
	}
	if (!max_sessions_per_addr || !max_session_chunks) {
		pr_err("max_sessions_per_addr and max_session_chunks must be non-zero\n");
		return -EINVAL;
	}

	if (!cfg.psk_len)
		pr_warn("no psk set: any host that reaches port %u can use this node's memory\n",
			port);

	srv = clouddrec_server_start(&cfg);
	if (IS_ERR(srv)) {
		virgo_addr_format(&cfg.addr, where, sizeof(where));
		pr_err("cannot start on %s: %ld\n", where, PTR_ERR(srv));
		return PTR_ERR(srv);
	}
	clouddrec = srv;
	cd_listen_addr(srv, where, sizeof(where));
	pr_info("lending up to %llu MiB on %s%s\n", cfg.max_memory >> 20,
		where, cfg.psk_len ? ", key required" : "");
	return 0;
}

static void __exit clouddrec_exit(void)
{
	if (clouddrec)
		clouddrec_server_stop(clouddrec);
	memzero_explicit(psk, sizeof(psk));
}

module_init(clouddrec_init);
module_exit(clouddrec_exit);

MODULE_DESCRIPTION("virgo: kernel memory spread across many machines (server)");
MODULE_AUTHOR("The virgo developers");
MODULE_LICENSE("GPL");
