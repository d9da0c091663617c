/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo-clouddrecd: a virgo cloud node in user space.
 *
 * cd_proto.c is the protocol: a session is fed the bytes its client sent
 * and leaves its replies in an output queue; it knows nothing of sockets
 * (so the fuzzer drives it in process).  cd_loop.c moves bytes between
 * sockets and sessions, one epoll loop per thread.  cd_main.c is the
 * daemon: options, key file, signals, log, stats file.
 */
#ifndef VIRGO_CLOUDDRECD_H
#define VIRGO_CLOUDDRECD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <virgo_wire.h>

#define CD_PSK_MAX		64	/* the kernel server's limit too */
#define CD_MAX_SESSIONS		65536
#define CD_RXBUF		65536	/* bytes read from a socket at once */
/*
 * What a chunk costs besides its bytes (its table slot and bookkeeping):
 * counted in the budget (max_memory), so a flood of 1-byte chunks cannot
 * make the daemon allocate more than it is allowed to.  Not in lent_bytes.
 */
#define CD_CHUNK_META		64

enum cd_stat {
	CD_STAT_SESSIONS_ACCEPTED,
	CD_STAT_SESSIONS_REFUSED,
	CD_STAT_SESSIONS_CLOSED,
	CD_STAT_REQUESTS,
	CD_STAT_CHUNKS_ALLOCATED,
	CD_STAT_CHUNKS_FREED,
	CD_STAT_BYTES_WRITTEN,
	CD_STAT_BYTES_READ,
	CD_STAT_ERR_HEADER,
	CD_STAT_ERR_PAYLOAD,
	CD_STAT_ERR_SEQUENCE,
	CD_STAT_ERR_PERM,
	CD_STAT_ERR_AUTH,
	CD_STAT_ERR_HANDLE,
	CD_STAT_ERR_RANGE,
	CD_STAT_ERR_NOMEM,
	CD_STAT_ERR_TIMEOUT,
	CD_STAT_SESSIONS_ORPHANED,	/* ended holding chunks: kept */
	CD_STAT_SESSIONS_RESUMED,	/* orphans taken over by a RESUME */
	CD_STAT_ORPHANS_EXPIRED,	/* orphans freed unresumed */
	CD_STAT_ERR_RESUME,		/* RESUMEs answered other than OK */
	CD_STAT_CHUNKS_DISCARDED,	/* handles DISCARD took */
	CD_STAT_NR
};

extern const char *const cd_stat_names[CD_STAT_NR];

/**
 * struct cd_config - what the daemon was told
 * @max_memory: bytes lent in total (chunk bytes + CD_CHUNK_META each)
 * @max_chunk: largest chunk
 * @max_batch: largest ALLOC/FREE batch
 * @max_sessions: most sessions at once
 * @max_inflight: advertised in HELLO
 * @idle_timeout_ms: a session holding no chunk and quiet this long closes
 * @io_timeout_ms: a frame half received, or replies not taken, this long
 * @handshake_timeout_ms: HELLO (and AUTH) must be done within this
 * @orphan_timeout_ms: a session of capability RESUME that ends holding
 *	chunks is kept this long for a RESUME; 0: the capability is never
 *	granted (docs/protocol.md 6.1)
 * @psk: key bytes (@psk_len of them), no key if @psk_len is 0
 * @psk_len: bytes in @psk
 * @mlock: lock chunk memory (mlockall at start)
 * @hugepages: try MAP_HUGETLB / MADV_HUGEPAGE for large chunks
 * @discard: grant the DISCARD capability (docs/protocol.md 5.9)
 */
struct cd_config {
	u64 max_memory;
	u32 max_chunk;
	u32 max_batch;
	u32 max_sessions;
	u32 max_inflight;
	u32 idle_timeout_ms;
	u32 io_timeout_ms;
	u32 handshake_timeout_ms;
	u32 orphan_timeout_ms;
	u8 psk[CD_PSK_MAX];
	size_t psk_len;
	bool mlock;
	bool hugepages;
	bool discard;
};

/**
 * struct cd_server - state shared by every thread (atomics only after start)
 * @cfg: configuration, read only after cd_server_init()
 * @lim: wire limits derived from @cfg
 * @out_high: a session stops executing requests while its output queue
 *	holds this many bytes (its client is not reading); CD_OUT_PREAUTH
 *	before its handshake is done
 * @budget: bytes of @cfg.max_memory in use (chunks + metadata)
 * @lent_bytes: chunk bytes lent, all sessions
 * @lent_chunks: chunks lent, all sessions
 * @materialised: bytes of chunk data allocated (written, not discarded)
 * @sessions: open sessions (connections; orphans are not counted)
 * @orphans: sessions kept for a RESUME (a gauge; changed under @reg_lock)
 * @stats: event counters
 * @reg_lock: protects @reg, @next_resume_id, the orphan list
 *	(@orphan_head, @orphan_tail) and, in every session with capability
 *	RESUME, its @resume_id, @token, @reg_next, @orphan, @orphan_prev,
 *	@orphan_next and @orphan_deadline_ms; an orphan's other fields
 *	belong to whoever took it out of the registry under the lock
 * @reg: sessions with capability RESUME, live and orphans, hashed by
 *	resume id (@reg_mask + 1 buckets, chained through reg_next)
 * @reg_mask: buckets - 1 (a power of two, at least 2 x max_sessions)
 * @next_resume_id: the last resume id handed out (never 0)
 * @orphan_head: the oldest orphan (first to expire)
 * @orphan_tail: the newest
 */
struct cd_server {
	struct cd_config cfg;
	struct virgo_wire_limits lim;
	size_t out_high;

	atomic_ullong budget;
	atomic_ullong lent_bytes;
	atomic_ullong lent_chunks;
	atomic_ullong materialised;
	atomic_ullong sessions;
	atomic_ullong orphans;
	atomic_ullong stats[CD_STAT_NR];

	pthread_mutex_t reg_lock;
	struct cd_session **reg;
	size_t reg_mask;
	u64 next_resume_id;
	struct cd_session *orphan_head;
	struct cd_session *orphan_tail;
};

/* Where the receive side of a session is. */
enum cd_rx_stage {
	CD_RX_HDR,	/* reading a header: rx_have bytes of it */
	CD_RX_PAYLOAD,	/* reading rx_msg.len payload bytes into payload */
};

struct cd_chunk {
	u64 handle;	/* 0: free slot */
	u32 size;
	u32 mapped;	/* data is an mmap of mapped_len bytes */
	size_t mapped_len;
	u8 *data;		/* NULL until the first WRITE: reads zeroes */
};

/**
 * struct cd_session - one client connection's protocol state
 *
 * Owned by one thread; nothing here is shared.
 */
struct cd_session {
	struct cd_server *srv;
	int stage;
	u32 rx_have;
	u8 rx_hdr[VIRGO_WIRE_HDR_LEN];
	struct virgo_wire_msg rx_msg;
	u8 *payload;		/* current frame's payload */
	size_t payload_cap;		/* bytes allocated at payload */
	/* Output queue: bytes [out_off, out_len) of out are still to send. */
	u8 *out;
	size_t out_cap;
	size_t out_off;
	size_t out_len;
	/* Chunk table: open addressing, linear probing, tombstone-free. */
	struct cd_chunk *tab;
	size_t tab_cap;			/* power of two, or 0 */
	size_t nr_chunks;
	u64 bytes;
	u64 handle_base;		/* random, per session */
	u64 next_handle;
	bool hello_done;
	bool authed;
	bool allocated;			/* an ALLOC succeeded: no RESUME */
	bool resume;			/* capability RESUME agreed */
	bool discard;			/* capability DISCARD agreed */
	bool resumed;			/* took an orphan over: no RESUME */
	u8 client_nonce[VIRGO_WIRE_NONCE_LEN];
	u8 server_nonce[VIRGO_WIRE_NONCE_LEN];
	/* With @resume: in srv->reg; fields under srv->reg_lock. */
	u64 resume_id;
	u8 token[VIRGO_WIRE_TOKEN_LEN];
	struct cd_session *reg_next;
	bool orphan;			/* no connection: waits for RESUME */
	struct cd_session *orphan_prev, *orphan_next;
	u64 orphan_deadline_ms;
	/*
	 * A RESUME on another connection found this session live: it sets
	 * @kicked and calls @kick (under srv->reg_lock); the loop that owns
	 * the connection then closes it (the session becomes an orphan).
	 */
	atomic_bool kicked;
	void (*kick)(void *arg);
	void *kick_arg;
	/* Times in ms of CLOCK_MONOTONIC, kept by the caller (cd_loop.c). */
	u64 now_ms;
	u64 last_rx_ms;
	u64 frame_start_ms;
	u64 start_ms;
	/*
	 * Optional: sends without blocking, returns the bytes sent (0 when
	 * the socket is full) or -errno.  With it a large reply (READ data)
	 * goes out straight from the chunk when nothing is queued; only what
	 * the socket does not take is copied into the queue.
	 */
	ssize_t (*tx)(void *arg, const struct iovec *iov, int nr);
	void *tx_arg;
};

static inline void cd_count(struct cd_server *srv, enum cd_stat st)
{
	atomic_fetch_add_explicit(&srv->stats[st], 1, memory_order_relaxed);
}

/* cd_proto.c */
int cd_server_init(struct cd_server *srv, const struct cd_config *cfg);
void cd_config_default(struct cd_config *cfg);
struct cd_session *cd_session_new(struct cd_server *srv, u64 now_ms);
void cd_server_fini(struct cd_server *srv);
void cd_session_free(struct cd_session *s);
void cd_session_end(struct cd_session *s, bool keep, u64 now_ms);
void cd_orphans_expire(struct cd_server *srv, u64 now_ms);
int cd_session_input(struct cd_session *s, const u8 *p, size_t n,
		     size_t *used);
bool cd_session_ready(const struct cd_session *s);
bool cd_session_in_frame(const struct cd_session *s);
static inline size_t cd_session_pending(const struct cd_session *s)
{
	return s->out_len - s->out_off;
}

/*
 * Reply bytes a session queues before its handshake is done (HELLO's,
 * then AUTH's or a refusal): nothing more is kept on the word of a peer
 * not known yet.
 */
#define CD_OUT_PREAUTH	(2 * (VIRGO_WIRE_HDR_LEN + VIRGO_WIRE_HELLO_REP_MAX))

/* True while the session must not execute requests: its client lags. */
static inline bool cd_session_blocked(const struct cd_session *s)
{
	size_t high = s->hello_done && s->authed ? s->srv->out_high :
						   CD_OUT_PREAUTH;

	return cd_session_pending(s) >= high;
}

void cd_session_sent(struct cd_session *s, size_t n);
int cd_random(void *buf, size_t len);

u8 *cd_session_rx_window(struct cd_session *s, size_t *len);
int cd_session_rx_commit(struct cd_session *s, size_t n);

/* cd_loop.c */
#define CD_MAX_LISTEN	8

struct cd_thread;

/**
 * struct cd_daemon - the running daemon
 * @srv: protocol state shared by the threads
 * @listen: addresses to listen on (@nr_listen of them)
 * @listen_len: their lengths
 * @nr_listen: entries in @listen
 * @nr_threads: event loops
 * @threads: the loops
 * @stopping: set by SIGTERM: stop accepting, drain, exit
 */
struct cd_daemon {
	struct cd_server srv;
	struct sockaddr_storage listen[CD_MAX_LISTEN];
	socklen_t listen_len[CD_MAX_LISTEN];
	int nr_listen;
	int nr_threads;
	struct cd_thread *threads;
	atomic_bool stopping;
};

int cd_loop_start(struct cd_daemon *d);
void cd_loop_stop(struct cd_daemon *d);
void cd_loop_join(struct cd_daemon *d);
int cd_loop_port(struct cd_daemon *d, int i);

/* cd_main.c: logging */
void cd_log(const char *fmt, ...);

#endif /* VIRGO_CLOUDDRECD_H */
