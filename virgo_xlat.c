// SPDX-License-Identifier: GPL-2.0
/*
 * VIRGO address translation table.
 *
 * Every allocation owns the VIRGO address range [va, va + size), followed
 * by an unmapped guard page so that an overrun of one allocation never
 * lands in the next.  The ranges live in a maple tree in RCU mode:
 *
 *  - Writers (insert, remove, destroy) serialise on xl->lock, a mutex the
 *    tree uses as its external lock.  The gap search (mas_empty_area())
 *    and the store that claims the gap (mas_store_gfp()) run under that
 *    one lock, and the store may sleep to allocate tree nodes without
 *    dropping it.  (With the tree's internal spinlock, mas_nomem() drops
 *    the lock around a GFP_KERNEL allocation, so another writer could
 *    claim the gap in between; mtree_alloc_range() fails on an empty tree
 *    in 6.1.)
 *  - Readers take no lock: they find an entry under rcu_read_lock() and
 *    take a reference with refcount_inc_not_zero().  An entry is freed by
 *    its last reference, after a grace period (kvfree_rcu()).
 *
 * A removed entry is marked ->removed before its remover checks the
 * reference count, and a reader checks ->removed after taking its
 * reference, so virgo_xlat_wait_unused() can wait until every reader of
 * a removed entry is gone before the remote chunks are released.
 */

#include <linux/err.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/wait_bit.h>

#include "virgo_xlat.h"

/**
 * virgo_xlat_init() - initialise an empty table
 * @xl: the table
 */
void virgo_xlat_init(struct virgo_xlat *xl)
{
	mutex_init(&xl->lock);
	mt_init_flags(&xl->mt, MT_FLAGS_ALLOC_RANGE | MT_FLAGS_LOCK_EXTERN |
			       MT_FLAGS_USE_RCU);
	mt_set_external_lock(&xl->mt, &xl->lock);
	atomic_long_set(&xl->nr_entries, 0);
	atomic64_set(&xl->nr_bytes, 0);
}

/**
 * virgo_xlat_destroy() - drop every entry and free the tree
 * @xl: the table
 *
 * Entries still in the table lose the table's reference; whoever still
 * holds another reference keeps a valid (removed) entry until it puts it.
 */
void virgo_xlat_destroy(struct virgo_xlat *xl)
{
	MA_STATE(mas, &xl->mt, 0, 0);
	struct virgo_xlat_entry *e;

	mutex_lock(&xl->lock);
	mas_for_each(&mas, e, ULONG_MAX) {
		WRITE_ONCE(e->removed, true);
		virgo_xlat_put(e);
	}
	__mt_destroy(&xl->mt);
	atomic_long_set(&xl->nr_entries, 0);
	atomic64_set(&xl->nr_bytes, 0);
	mutex_unlock(&xl->lock);
	mutex_destroy(&xl->lock);
}

/* The largest entry is one kvzalloc() well below INT_MAX bytes. */
static_assert(sizeof(struct virgo_xlat_entry) +
	      (size_t)VIRGO_XLAT_MAX_CHUNKS * sizeof(struct virgo_chunk) <=
	      INT_MAX / 16);

/**
 * virgo_xlat_entry_alloc() - allocate an entry that is not in a table yet
 * @size: size of the allocation in bytes, 1..VIRGO_XLAT_MAX_SIZE
 * @nr_chunks: number of chunks, 1..@size and at most VIRGO_XLAT_MAX_CHUNKS
 * @gfp: allocation flags
 *
 * The caller fills in ->chunks (and ->owner), then inserts the entry with
 * virgo_xlat_insert() or frees it with virgo_xlat_entry_free().
 *
 * Return: the entry holding one reference, or an ERR_PTR(): -EINVAL for
 * a size or chunk count out of range, -ENOMEM for more chunks than
 * VIRGO_XLAT_MAX_CHUNKS (an allocation too big) or no memory.
 */
struct virgo_xlat_entry *virgo_xlat_entry_alloc(u64 size, u32 nr_chunks,
						gfp_t gfp)
{
	struct virgo_xlat_entry *e;

	if (!size || size > VIRGO_XLAT_MAX_SIZE || !nr_chunks ||
	    nr_chunks > size)
		return ERR_PTR(-EINVAL);
	if (nr_chunks > VIRGO_XLAT_MAX_CHUNKS)
		return ERR_PTR(-ENOMEM);

	e = kvzalloc(struct_size(e, chunks, nr_chunks), gfp);
	if (!e)
		return ERR_PTR(-ENOMEM);

	e->size = size;
	e->nr_chunks = nr_chunks;
	init_rwsem(&e->io_lock);
	refcount_set(&e->ref, 1);
	return e;
}

/**
 * virgo_xlat_entry_free() - free an entry that never entered a table
 * @e: the entry, or NULL
 */
void virgo_xlat_entry_free(struct virgo_xlat_entry *e)
{
	kvfree(e);
}

/**
 * virgo_xlat_entry_check() - validate the chunk list of an entry
 * @e: the entry
 *
 * The chunks must be in order, non-empty and cover [0, size) exactly;
 * every chunk needs 1..VIRGO_MAX_REPLICAS replicas on distinct, non-zero
 * peers.
 *
 * Return: 0 or -EINVAL.
 */
int virgo_xlat_entry_check(const struct virgo_xlat_entry *e)
{
	u64 next = 0;
	u32 i, r, s;

	if (!e->size || e->size > VIRGO_XLAT_MAX_SIZE || !e->nr_chunks ||
	    e->nr_chunks > VIRGO_XLAT_MAX_CHUNKS)
		return -EINVAL;

	for (i = 0; i < e->nr_chunks; i++) {
		const struct virgo_chunk *c = &e->chunks[i];

		if (c->offset != next || !c->len || c->len > e->size - next)
			return -EINVAL;
		if (!c->nr_replicas || c->nr_replicas > VIRGO_MAX_REPLICAS)
			return -EINVAL;
		for (r = 0; r < c->nr_replicas; r++) {
			if (!c->replicas[r].peer_id)
				return -EINVAL;
			for (s = 0; s < r; s++)
				if (c->replicas[s].peer_id ==
				    c->replicas[r].peer_id)
					return -EINVAL;
		}
		next += c->len;
	}
	return next == e->size ? 0 : -EINVAL;
}

/**
 * virgo_xlat_insert() - give an entry an address range and publish it
 * @xl: the table
 * @e: a complete entry from virgo_xlat_entry_alloc()
 *
 * On success the table owns the caller's reference and ->va holds the
 * allocation's first VIRGO address.  On failure the entry is untouched
 * and still the caller's.
 *
 * Return: 0, -EINVAL for a malformed entry, -ENOMEM when no address
 * range or tree node is left.
 */
int virgo_xlat_insert(struct virgo_xlat *xl, struct virgo_xlat_entry *e)
{
	MA_STATE(mas, &xl->mt, 0, 0);
	u64 span;
	int ret;

	ret = virgo_xlat_entry_check(e);
	if (ret)
		return ret;

	/* size <= VIRGO_XLAT_MAX_SIZE, so this cannot overflow. */
	span = round_up(e->size, PAGE_SIZE) + VIRGO_XLAT_GUARD;

	mutex_lock(&xl->lock);
	ret = mas_empty_area(&mas, VIRGO_XLAT_VA_MIN, VIRGO_XLAT_VA_MAX, span);
	if (ret) {
		ret = -ENOMEM;
		goto unlock;
	}
	if (WARN_ON_ONCE(!PAGE_ALIGNED(mas.index))) {
		ret = -EFAULT;
		goto unlock;
	}
	mas.last = mas.index + span - 1;
	e->va = mas.index;
	e->removed = false;
	ret = mas_store_gfp(&mas, e, GFP_KERNEL);
	if (ret) {
		e->va = 0;
		goto unlock;
	}
	atomic_long_inc(&xl->nr_entries);
	atomic64_add(e->size, &xl->nr_bytes);
unlock:
	mutex_unlock(&xl->lock);
	return ret;
}

/* Take a reference on @e unless it is being freed or was removed. */
static bool virgo_xlat_tryget(struct virgo_xlat_entry *e)
{
	if (!refcount_inc_not_zero(&e->ref))
		return false;
	/* Pairs with the barrier in virgo_xlat_wait_unused(). */
	smp_mb();
	if (READ_ONCE(e->removed)) {
		virgo_xlat_put(e);
		return false;
	}
	return true;
}

/**
 * virgo_xlat_get() - find the allocation containing an address
 * @xl: the table
 * @addr: any VIRGO address
 *
 * Lock free; safe against concurrent inserts and removes.
 *
 * Return: the entry with a reference the caller must put, or NULL when
 * @addr lies in no allocation.
 */
struct virgo_xlat_entry *virgo_xlat_get(struct virgo_xlat *xl,
					virgo_addr_t addr)
{
	struct virgo_xlat_entry *e;

	if (addr < VIRGO_XLAT_VA_MIN || addr > VIRGO_XLAT_VA_MAX)
		return NULL;

	rcu_read_lock();
	e = mtree_load(&xl->mt, addr);
	if (e && (addr - e->va >= e->size || !virgo_xlat_tryget(e)))
		e = NULL;
	rcu_read_unlock();
	return e;
}

/**
 * virgo_xlat_lookup() - translate a VIRGO address
 * @xl: the table
 * @addr: any VIRGO address
 * @pos: filled with the entry, the chunk index and the offset in it
 *
 * On success @pos->entry holds a reference the caller must put.
 *
 * Return: 0 or -ENOENT.
 */
int virgo_xlat_lookup(struct virgo_xlat *xl, virgo_addr_t addr,
		      struct virgo_xlat_pos *pos)
{
	struct virgo_xlat_entry *e;
	u64 off;
	int idx;

	e = virgo_xlat_get(xl, addr);
	if (!e)
		return -ENOENT;

	off = addr - e->va;
	idx = virgo_xlat_chunk_index(e, off);
	if (WARN_ON_ONCE(idx < 0)) {
		virgo_xlat_put(e);
		return -ENOENT;
	}
	pos->entry = e;
	pos->chunk = idx;
	pos->chunk_off = off - e->chunks[idx].offset;
	return 0;
}

/**
 * virgo_xlat_find_next() - iterate over the live entries
 * @xl: the table
 * @from: in: lowest address to look at; out: where the next call starts
 *
 * Start with *@from = 0.  Entries inserted or removed during an iteration
 * may or may not be seen; every entry live throughout it is seen once.
 *
 * Return: the next entry at or above *@from with a reference the caller
 * must put, or NULL at the end.
 */
struct virgo_xlat_entry *virgo_xlat_find_next(struct virgo_xlat *xl,
					      virgo_addr_t *from)
{
	struct virgo_xlat_entry *e;
	unsigned long index = max_t(u64, *from, VIRGO_XLAT_VA_MIN);

	if (*from > VIRGO_XLAT_VA_MAX)
		return NULL;

	rcu_read_lock();
	for (;;) {
		e = mt_find(&xl->mt, &index, VIRGO_XLAT_VA_MAX);
		if (!e || virgo_xlat_tryget(e))
			break;
		if (!index)	/* wrapped past the last index */
			break;
	}
	rcu_read_unlock();

	if (e)
		*from = e->va + round_up(e->size, PAGE_SIZE) + VIRGO_XLAT_GUARD;
	return e;
}

/**
 * virgo_xlat_remove() - take an allocation out of the table
 * @xl: the table
 * @va: the first address of the allocation
 * @owner: must equal the entry's owner
 *
 * New lookups no longer find the entry.  Lookups already holding it keep
 * it; virgo_xlat_wait_unused() waits for them.
 *
 * Return: the entry with the table's reference, now the caller's; or
 * ERR_PTR(-ENOENT) when no allocation contains @va, ERR_PTR(-EINVAL) when
 * @va is inside one but not its start, ERR_PTR(-EPERM) for another owner,
 * ERR_PTR(-ENOMEM) when the tree could not be changed (the entry stays).
 */
struct virgo_xlat_entry *virgo_xlat_remove(struct virgo_xlat *xl,
					   virgo_addr_t va, const void *owner)
{
	MA_STATE(mas, &xl->mt, va, va);
	struct virgo_xlat_entry *e;

	if (va < VIRGO_XLAT_VA_MIN || va > VIRGO_XLAT_VA_MAX)
		return ERR_PTR(-ENOENT);

	mutex_lock(&xl->lock);
	e = mas_walk(&mas);
	if (!e || va - e->va >= e->size) {
		e = ERR_PTR(-ENOENT);
		goto unlock;
	}
	if (e->va != va) {
		e = ERR_PTR(-EINVAL);
		goto unlock;
	}
	if (e->owner != owner) {
		e = ERR_PTR(-EPERM);
		goto unlock;
	}
	/* The entry's whole range; mas_erase() would hide a failed store. */
	mas_set_range(&mas, mas.index, mas.last);
	if (mas_store_gfp(&mas, NULL, GFP_KERNEL)) {
		e = ERR_PTR(-ENOMEM);
		goto unlock;
	}
	WRITE_ONCE(e->removed, true);
	atomic_long_dec(&xl->nr_entries);
	atomic64_sub(e->size, &xl->nr_bytes);
unlock:
	mutex_unlock(&xl->lock);
	return e;
}

/**
 * virgo_xlat_put() - drop a reference to an entry
 * @e: the entry
 *
 * May be called from any context.
 */
void virgo_xlat_put(struct virgo_xlat_entry *e)
{
	/* Keeps @e readable after our decrement lets a remover go on. */
	rcu_read_lock();
	if (refcount_dec_and_test(&e->ref)) {
		kvfree_rcu(e, rcu);
	} else {
		/* Pairs with the barrier in virgo_xlat_wait_unused(). */
		smp_mb();
		if (READ_ONCE(e->removed))
			wake_up_var(&e->ref);
	}
	rcu_read_unlock();
}

/**
 * virgo_xlat_wait_unused() - wait until the caller's is the last reference
 * @e: a removed entry, with a reference held by the caller
 *
 * After this returns no lookup holds or can take a reference to @e, so
 * its chunks may be released.  Sleeps.
 */
void virgo_xlat_wait_unused(struct virgo_xlat_entry *e)
{
	WARN_ON_ONCE(!READ_ONCE(e->removed));
	/* Pairs with the barriers in virgo_xlat_tryget() and _put(). */
	smp_mb();
	wait_var_event(&e->ref, refcount_read(&e->ref) == 1);
}

/**
 * virgo_xlat_chunk_index() - find the chunk holding an offset
 * @e: the entry
 * @off: offset inside the allocation
 *
 * Return: the chunk index, or -ERANGE when @off is not below the size.
 */
int virgo_xlat_chunk_index(const struct virgo_xlat_entry *e, u64 off)
{
	u32 lo = 0, hi = e->nr_chunks;

	if (off >= e->size)
		return -ERANGE;

	/* Invariant: chunks[lo].offset <= off < chunks[hi].offset. */
	while (hi - lo > 1) {
		u32 mid = lo + (hi - lo) / 2;

		if (e->chunks[mid].offset <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/**
 * virgo_xlat_walk() - visit the chunks overlapping a range
 * @e: the entry, with a reference held
 * @addr: first VIRGO address of the range
 * @len: length of the range
 * @fn: called for each overlapping chunk, in address order
 * @arg: passed to @fn
 *
 * Return: 0 when every call returned 0 (also for @len == 0), -ERANGE when
 * [@addr, @addr + @len) is not inside the allocation, or the first
 * negative value @fn returned.
 */
int virgo_xlat_walk(struct virgo_xlat_entry *e, virgo_addr_t addr, u64 len,
		    virgo_xlat_walk_fn fn, void *arg)
{
	u64 off, done = 0;
	int idx, ret;

	if (addr < e->va)
		return -ERANGE;
	off = addr - e->va;
	if (off > e->size || len > e->size - off)
		return -ERANGE;
	if (!len)
		return 0;

	idx = virgo_xlat_chunk_index(e, off);
	if (idx < 0)
		return idx;

	while (done < len) {
		const struct virgo_chunk *c = &e->chunks[idx];
		u32 coff = off - c->offset;
		u32 n = min_t(u64, len - done, c->len - coff);

		ret = fn(e, idx, coff, n, done, arg);
		if (ret)
			return ret;
		off += n;
		done += n;
		idx++;
	}
	return 0;
}
