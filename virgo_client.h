/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client: one instance of the client (the module has one; the KUnit
 * suites make their own).
 */
#ifndef _VIRGO_CLIENT_H
#define _VIRGO_CLIENT_H

#include <linux/uio.h>
#include <linux/virgo.h>

#include "virgo_peer.h"
#include "virgo_xlat.h"

/* Bounds of the chunk_size parameter. */
#define VIRGO_CHUNK_MIN		4096U
#define VIRGO_CHUNK_MAX		VIRGO_WIRE_MAX_CHUNK_LIMIT
/*
 * Its default: the servers' default max_chunk.  1 MiB rather than 256 KiB
 * because every chunk costs a request per malloc, set and get, and at
 * 256 KiB that overhead kept set/get near 0.6 of a raw stream
 * (docs/performance.md).
 */
#define VIRGO_CHUNK_DEFAULT	VIRGO_WIRE_DEF_MAX_CHUNK

struct vc_free_reserve;

/**
 * struct virgo_client - a client instance
 * @table: its VIRGO address translation table
 * @peers: its peers
 * @chunk_size: bytes per chunk (the last chunk of an allocation is shorter)
 * @rpc_timeout_ms: bound on each fan-out round
 * @replicas: copies of each chunk of an allocation, unless it asks otherwise
 * @stale_lock: serialises setting bits of the chunks' stale masks
 * @stale_replicas: replicas of live allocations marked stale (degraded)
 * @stale_bytes: bytes in those replicas
 * @repair_rate_bps: bytes/s the last repair pass that copied anything
 *	achieved
 * @peer_dead_ms: a peer unreachable this long loses its replicas (repair)
 * @repair_kbps: repair bandwidth bound in KiB/s (0: none)
 * @repair_period_ms: time between two repair passes
 * @repair_work: the repair worker (virgo_repair.c)
 * @repaired_chunks: replicas re-created so far
 * @repaired_bytes: bytes copied doing so
 * @free_reserve_lock: serialises the frees that use @free_reserve
 * @free_reserve: room to free a few chunks at a time when there is no
 *	memory to free a whole allocation at once (a free never fails for
 *	want of memory once the allocation left the table)
 */
struct virgo_client {
	struct virgo_xlat table;
	struct virgo_peer_set peers;
	u32 chunk_size;
	unsigned int rpc_timeout_ms;
	unsigned int replicas;
	/* Serialises writers of the chunks' ->stale masks. */
	spinlock_t stale_lock;
	atomic64_t stale_replicas;
	atomic64_t stale_bytes;
	atomic64_t repair_rate_bps;
	unsigned int peer_dead_ms;
	unsigned int repair_kbps;
	unsigned int repair_period_ms;
	struct delayed_work repair_work;
	atomic64_t repaired_chunks;
	atomic64_t repaired_bytes;
	/* Protects the contents of @free_reserve. */
	struct mutex free_reserve_lock;
	struct vc_free_reserve *free_reserve;
};

/**
 * struct virgo_client_config - how to set a client up
 * @peers: comma-separated "a.b.c.d:port" / "[ipv6]:port" list, or NULL
 * @psk: pre-shared key, or NULL
 * @psk_len: bytes in @psk
 * @chunk_size: bytes per chunk, VIRGO_CHUNK_MIN..VIRGO_CHUNK_MAX
 * @connect_timeout_ms: bound on connect + HELLO + AUTH to one peer
 * @rpc_timeout_ms: bound on one fan-out round
 * @replicas: default copies of each chunk, 1..3 (0: 1)
 * @peer_dead_ms: see struct virgo_client (0: 60 s)
 * @repair_kbps: see struct virgo_client
 * @repair_period_ms: see struct virgo_client (0: 1 s)
 * @queues: connections to each peer, 1..VIRGO_QUEUES_MAX (0: 1); more
 *	than one only with servers that grant QUEUES (protocol.md 6.2)
 */
struct virgo_client_config {
	const char *peers;
	const u8 *psk;
	size_t psk_len;
	u32 chunk_size;
	unsigned int connect_timeout_ms;
	unsigned int rpc_timeout_ms;
	unsigned int replicas;
	unsigned int peer_dead_ms;
	unsigned int repair_kbps;
	unsigned int repair_period_ms;
	unsigned int queues;
};

int virgo_client_init(struct virgo_client *vc,
		      const struct virgo_client_config *cfg);
void virgo_client_destroy(struct virgo_client *vc);
int vc_malloc(struct virgo_client *vc, size_t size, const void *owner,
	      virgo_addr_t *addr);
int vc_malloc_replicas(struct virgo_client *vc, size_t size,
		       unsigned int replicas, const void *owner,
		       virgo_addr_t *addr);
int vc_free(struct virgo_client *vc, virgo_addr_t addr, const void *owner);
int vc_set(struct virgo_client *vc, virgo_addr_t addr, const void *owner,
	   const void *buf, size_t len);
int vc_get(struct virgo_client *vc, virgo_addr_t addr, const void *owner,
	   void *buf, size_t len);
int vc_rw_deadline(struct virgo_client *vc, virgo_addr_t addr,
		   const void *owner, void *buf, size_t len, bool write,
		   unsigned long deadline);
int vc_rwv_deadline(struct virgo_client *vc, virgo_addr_t addr,
		    const void *owner, const struct kvec *vec,
		    unsigned int nvec, bool write, unsigned long deadline);
int vc_zero_entry(struct virgo_client *vc, struct virgo_xlat_entry *e,
		  virgo_addr_t addr, size_t len, unsigned long deadline);
int vc_discard(struct virgo_client *vc, virgo_addr_t addr, const void *owner,
	       size_t len, unsigned long deadline);
void vc_chunk_mark_stale(struct virgo_client *vc, struct virgo_chunk *c,
			 u16 failed);
int vc_stat(struct virgo_client *vc, virgo_addr_t addr, const void *owner,
	    struct virgo_alloc_info *info, bool peers);
unsigned int vc_free_all(struct virgo_client *vc, const void *owner,
			 bool any_owner);
int vc_pick_replacement(struct virgo_peer **peers, unsigned int n,
			u64 *planned, const struct virgo_chunk *c);

#if IS_ENABLED(CONFIG_KUNIT)
/* Tests only: a free finds no memory for the whole allocation at once. */
extern bool vc_test_free_nomem;
#endif

#endif /* _VIRGO_CLIENT_H */
