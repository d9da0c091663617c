/* SPDX-License-Identifier: GPL-2.0 */
/*
 * VIRGO address translation table.
 *
 * Maps the contiguous VIRGO address range of each allocation to the list
 * of chunks that hold its bytes on remote peers.  VIRGO addresses are
 * plain 64-bit numbers handed out by this table, never kernel pointers.
 */
#ifndef _VIRGO_XLAT_H
#define _VIRGO_XLAT_H

#include <linux/maple_tree.h>
#include <linux/mutex.h>
#include <linux/atomic.h>
#include <linux/bits.h>
#include <linux/refcount.h>
#include <linux/rwsem.h>
#include <linux/rcupdate.h>
#include <linux/types.h>
#include <linux/virgo.h>

/* Lowest and highest address the table hands out (both page aligned). */
#define VIRGO_XLAT_VA_MIN	BIT_ULL(32)
#define VIRGO_XLAT_VA_MAX	(BIT_ULL(62) - 1)
/* Largest single allocation the table accepts. */
#define VIRGO_XLAT_MAX_SIZE	BIT_ULL(46)
/*
 * Most chunks one allocation may have.  An entry is one kvzalloc() of
 * nr_chunks * sizeof(struct virgo_chunk) (64 bytes) plus its header: at
 * most 64 MiB, far below the INT_MAX bytes above which kvmalloc() refuses
 * with a WARN (and panic_on_warn turns a user's request into a crash).
 * With the default 1 MiB chunk that is 1 TiB per allocation, with the
 * smallest (4 KiB) 4 GiB.
 */
#define VIRGO_XLAT_MAX_CHUNKS	BIT(20)
/* Unmapped bytes kept after every allocation, so overruns never alias. */
#define VIRGO_XLAT_GUARD	PAGE_SIZE

/* Replicas a chunk has room for; the first slot is always in use. */
#define VIRGO_MAX_REPLICAS	3

/**
 * struct virgo_replica - where one copy of a chunk lives
 * @peer_id: id of the peer in the client's peer table (0 = unused slot)
 * @epoch: the peer's connection epoch the handle belongs to; handles die
 *	with the server session that issued them
 * @handle: the opaque handle that peer returned for the chunk
 */
struct virgo_replica {
	u32 peer_id;
	u32 epoch;
	u64 handle;
};

/**
 * struct virgo_chunk - one piece of an allocation
 * @offset: offset of the chunk's first byte inside the allocation
 * @len: length of the chunk in bytes
 * @nr_replicas: replica slots in use, 1..VIRGO_MAX_REPLICAS
 * @stale: bit r set once replica r missed a write that another replica
 *	got: it is never read again (set by the client under its stale lock,
 *	read with READ_ONCE(); never cleared)
 * @replicas: the copies of this chunk
 */
struct virgo_chunk {
	u64 offset;
	u32 len;
	u16 nr_replicas;
	u16 stale;
	struct virgo_replica replicas[VIRGO_MAX_REPLICAS];
};

/**
 * struct virgo_xlat_entry - one allocation in the table
 * @va: first VIRGO address of the allocation (set by virgo_xlat_insert())
 * @size: size of the allocation in bytes
 * @owner: opaque cookie of whoever owns the allocation (may be NULL)
 * @io_lock: held shared by every read and write of the allocation, and
 *	exclusively by a repair while it copies a chunk to a new replica and
 *	swaps it into @chunks
 * @ref: references; the table holds one while the entry is inserted
 * @removed: set once the entry left the table
 * @rcu: frees the entry after a grace period
 * @nr_chunks: number of elements in @chunks
 * @chunks: the chunks, sorted by offset, covering [0, size) without gaps
 *
 * An entry is immutable once inserted, except for @ref, @removed, the
 * chunks' stale masks and, under @io_lock held exclusively, their
 * replicas: readers holding a reference (and @io_lock shared, to look at
 * replicas) may use every other field without a lock.
 */
struct virgo_xlat_entry {
	virgo_addr_t va;
	u64 size;
	const void *owner;
	struct rw_semaphore io_lock;
	refcount_t ref;
	bool removed;
	struct rcu_head rcu;
	u32 nr_chunks;
	struct virgo_chunk chunks[];
};

/**
 * struct virgo_xlat - the VIRGO address translation table
 * @mt: maple tree from VIRGO address ranges to entries (RCU mode)
 * @lock: serialises every writer of @mt; readers use RCU only
 * @nr_entries: live entries (written under @lock)
 * @nr_bytes: bytes in live entries (written under @lock)
 */
struct virgo_xlat {
	struct maple_tree mt;
	/* Serialises every writer of @mt; readers use RCU only. */
	struct mutex lock;
	atomic_long_t nr_entries;
	atomic64_t nr_bytes;
};

/**
 * struct virgo_xlat_pos - result of a lookup
 * @entry: the allocation containing the address (a reference is held)
 * @chunk: index of the chunk containing the address
 * @chunk_off: offset of the address inside that chunk
 */
struct virgo_xlat_pos {
	struct virgo_xlat_entry *entry;
	u32 chunk;
	u32 chunk_off;
};

/**
 * typedef virgo_xlat_walk_fn - called once per chunk by virgo_xlat_walk()
 * @e: the entry walked
 * @idx: index of the chunk in @e->chunks
 * @chunk_off: first byte of the range inside the chunk
 * @len: bytes of the range inside the chunk
 * @buf_off: offset of those bytes from the start of the walked range
 * @arg: the caller's argument
 *
 * Return: 0 to go on, a negative errno to stop the walk with that error.
 */
typedef int (*virgo_xlat_walk_fn)(struct virgo_xlat_entry *e, u32 idx,
				  u32 chunk_off, u32 len, u64 buf_off,
				  void *arg);

void virgo_xlat_init(struct virgo_xlat *xl);
void virgo_xlat_destroy(struct virgo_xlat *xl);

struct virgo_xlat_entry *virgo_xlat_entry_alloc(u64 size, u32 nr_chunks,
						gfp_t gfp);
int virgo_xlat_entry_check(const struct virgo_xlat_entry *e);
void virgo_xlat_entry_free(struct virgo_xlat_entry *e);

int virgo_xlat_insert(struct virgo_xlat *xl, struct virgo_xlat_entry *e);
int virgo_xlat_lookup(struct virgo_xlat *xl, virgo_addr_t addr,
		      struct virgo_xlat_pos *pos);
struct virgo_xlat_entry *virgo_xlat_get(struct virgo_xlat *xl,
					virgo_addr_t addr);
struct virgo_xlat_entry *virgo_xlat_find_next(struct virgo_xlat *xl,
					      virgo_addr_t *from);
struct virgo_xlat_entry *virgo_xlat_remove(struct virgo_xlat *xl,
					   virgo_addr_t va, const void *owner);
void virgo_xlat_put(struct virgo_xlat_entry *e);
void virgo_xlat_wait_unused(struct virgo_xlat_entry *e);

int virgo_xlat_chunk_index(const struct virgo_xlat_entry *e, u64 off);
int virgo_xlat_walk(struct virgo_xlat_entry *e, virgo_addr_t addr, u64 len,
		    virgo_xlat_walk_fn fn, void *arg);

/**
 * virgo_xlat_count() - number of live entries
 * @xl: the table
 *
 * Return: the entry count at some instant during the call.
 */
static inline unsigned long virgo_xlat_count(struct virgo_xlat *xl)
{
	return atomic_long_read(&xl->nr_entries);
}

/**
 * virgo_xlat_bytes() - bytes covered by live entries
 * @xl: the table
 *
 * Return: the byte count at some instant during the call.
 */
static inline u64 virgo_xlat_bytes(struct virgo_xlat *xl)
{
	return atomic64_read(&xl->nr_bytes);
}

#endif /* _VIRGO_XLAT_H */
