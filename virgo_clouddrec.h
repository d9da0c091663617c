/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo_clouddrec: the server that lends this node's kernel memory.
 *
 * The module runs one server instance configured by its parameters; the
 * KUnit suites start and stop instances of their own on loopback.
 */
#ifndef _VIRGO_CLOUDDREC_H
#define _VIRGO_CLOUDDREC_H

#include <linux/types.h>

#include <virgo_addr.h>

struct clouddrec_server;

/**
 * struct clouddrec_config - how a server instance listens and what it lends
 * @addr: listen address, IPv4 or IPv6 (its port is ignored: @port);
 *	AF_UNSPEC (zeroed) or :: listens on every IPv6 and IPv4 address
 *	(dual-stack), or on 0.0.0.0 when the kernel has no IPv6
 * @port: TCP port (0 = any free port; see clouddrec_server_port())
 * @psk: pre-shared key for AUTH, or NULL for none
 * @psk_len: bytes in @psk
 * @max_memory: bytes this server lends in total
 * @max_chunk: largest chunk a client may allocate
 * @max_batch: most sizes (handles) in one ALLOC (FREE)
 * @max_sessions: most client connections at once
 * @max_inflight: requests a client may pipeline on one connection
 * @idle_timeout_ms: a session with no request for this long is closed
 * @io_timeout_ms: a frame must arrive, and queued replies must make
 *	progress, within this
 * @handshake_timeout_ms: a session must finish HELLO (and AUTH, with a
 *	key) within this of its connection, or it is closed
 * @max_sessions_per_addr: most sessions from one client address (IPv4,
 *	or IPv6: one /128; an IPv4-mapped address counts as its IPv4 one)
 * @max_session_chunks: most chunks one session may hold at once
 * @orphan_timeout_ms: a session that agreed on RESUME and ends holding
 *	chunks keeps them this long for its client to resume it; 0 turns
 *	RESUME off (the capability is not granted)
 * @min_free: bytes of available memory (MemAvailable) below which no new
 *	chunk is allocated (NOMEM); 0 for none
 * @max_workers: sessions served at once (workqueue max_active); 0 for the
 *	workqueue default
 * @pool_bytes: zeroed pages kept ready for chunks' first WRITEs while a
 *	session is past its handshake, apart from @max_memory (at most
 *	@max_memory of them); 0 for none
 * @debugfs: publish stats and sessions in debugfs (module instance only)
 * @discard: grant the DISCARD capability to clients that offer it
 * @max_queues: most connections one session may have (the first and
 *	those that JOIN it); QUEUES is granted with RESUME when above 1
 */
struct clouddrec_config {
	union virgo_addr addr;
	u16 port;
	const u8 *psk;
	size_t psk_len;
	u64 max_memory;
	u32 max_chunk;
	u32 max_batch;
	u32 max_sessions;
	u32 max_inflight;
	u32 idle_timeout_ms;
	u32 io_timeout_ms;
	u32 handshake_timeout_ms;
	u32 max_sessions_per_addr;
	u32 max_session_chunks;
	u32 orphan_timeout_ms;
	u64 min_free;
	u32 max_workers;
	u64 pool_bytes;
	bool debugfs;
	bool discard;
	u32 max_queues;
};

/* Counters kept by a server; see clouddrec_stat_names[] for their names. */
enum clouddrec_stat {
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
	CD_STAT_SESSIONS_ORPHANED,
	CD_STAT_SESSIONS_RESUMED,
	CD_STAT_ORPHANS_EXPIRED,
	CD_STAT_ERR_RESUME,
	CD_STAT_CHUNKS_DISCARDED,
	CD_STAT_QUEUES_JOINED,
	CD_STAT_NR
};

struct clouddrec_server *
clouddrec_server_start(const struct clouddrec_config *cfg);
void clouddrec_server_stop(struct clouddrec_server *srv);
u16 clouddrec_server_port(struct clouddrec_server *srv);
u64 clouddrec_server_stat(struct clouddrec_server *srv,
			  enum clouddrec_stat stat);
u64 clouddrec_server_lent_bytes(struct clouddrec_server *srv);
u64 clouddrec_server_lent_chunks(struct clouddrec_server *srv);
u64 clouddrec_server_charged_bytes(struct clouddrec_server *srv);
u64 clouddrec_server_materialised_bytes(struct clouddrec_server *srv);
u64 clouddrec_server_materialised_chunks(struct clouddrec_server *srv);
u64 clouddrec_server_rx_buffered(struct clouddrec_server *srv);
u64 clouddrec_server_tx_queued(struct clouddrec_server *srv);
u64 clouddrec_server_pooled_bytes(struct clouddrec_server *srv);
u64 clouddrec_chunk_cost(u32 size);
unsigned int clouddrec_server_sessions(struct clouddrec_server *srv);
unsigned int clouddrec_server_orphans(struct clouddrec_server *srv);
void clouddrec_config_default(struct clouddrec_config *cfg);

#if IS_ENABLED(CONFIG_KUNIT)
/*
 * Called by a session's release right after its table became an orphan
 * (another connection may RESUME it from then on), with the replies the
 * session still had queued.
 */
extern void (*clouddrec_test_orphaned)(struct clouddrec_server *srv,
				       unsigned int replies_queued);
/* Called at the start of every run of a connection's I/O work. */
extern void (*clouddrec_test_io)(struct clouddrec_server *srv);
#endif

#endif /* _VIRGO_CLOUDDREC_H */
