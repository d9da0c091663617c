// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: virgo_malloc(), virgo_free(), virgo_set(), virgo_get().
 *
 * virgo_malloc() cuts an allocation into chunk_size chunks, places each
 * chunk on a peer by the power of two choices (two random peers, the one
 * with more free memory wins, counting what this allocation already put
 * there), sends one batched ALLOC per peer, all before waiting on any, and
 * waits for all of them with one deadline.  If any part fails, whatever
 * did succeed is freed again and nothing enters the table; only a
 * complete allocation is recorded in the VIRGO address translation table.
 *
 * virgo_set() / virgo_get() split a range into one WRITE / READ per chunk
 * piece and send them all, spread across the peers, before waiting.
 * virgo_free() takes the allocation out of the table, waits for users of
 * it to finish, and frees its chunks with one FREE per peer, in parallel.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "virgo_client.h"
#include "virgo_repair.h"

#define CREATE_TRACE_POINTS
#include "virgo_trace.h"

/* Requests one virgo_set()/virgo_get() keeps in flight at most. */
#define VC_IO_WINDOW	256

/* ---- placement ------------------------------------------------------- */

/* Free bytes of @peer we may still plan on, or -1 if it is unusable. */
static s64 vc_room(struct virgo_peer *peer, u64 planned, u32 len)
{
	s64 room;

	if (!virgo_peer_usable(peer)) {
		/* Never connect here: the background does, for later calls. */
		virgo_peer_kick(peer);
		return -1;
	}
	if (peer->lim.max_chunk < len)
		return -1;
	room = atomic64_read(&peer->free) - planned;
	return room >= len ? room : -1;
}

/*
 * May peer @i hold one more replica of a chunk whose other replicas are on
 * @chosen[0..@k)?  Never the same peer; with @domains, never the same
 * failure domain either (peers without a label are each their own).
 */
static bool vc_distinct(struct virgo_peer **peers, const int *chosen,
			unsigned int k, unsigned int i, bool domains)
{
	unsigned int j;

	for (j = 0; j < k; j++) {
		const struct virgo_peer *o = peers[chosen[j]];

		if (chosen[j] == i)
			return false;
		if (domains && peers[i]->domain[0] &&
		    !strcmp(peers[i]->domain, o->domain))
			return false;
	}
	return true;
}

static s64 vc_room_for(struct virgo_peer **peers, u64 *planned, u32 len,
		       const int *chosen, unsigned int k, unsigned int i,
		       bool domains)
{
	if (!vc_distinct(peers, chosen, k, i, domains))
		return -1;
	return vc_room(peers[i], planned[i], len);
}

/* Two distinct random indexes below @n (the same one if @n is 1). */
static void vc_two_random(unsigned int n, unsigned int *a, unsigned int *b)
{
	*a = get_random_u32_below(n);
	*b = n > 1 ? get_random_u32_below(n - 1) : *a;
	if (n > 1 && *b >= *a)
		(*b)++;
}

/*
 * Pick a peer for replica @k of a chunk of @len bytes: the roomier of two
 * random peers; after a few unlucky draws, the first one with room.
 * Distinct failure domains first, then at least distinct peers.
 */
static int vc_pick(struct virgo_peer **peers, unsigned int n, u64 *planned,
		   u32 len, const int *chosen, unsigned int k)
{
	unsigned int i, try, pass;

	for (pass = 0; pass < (k ? 2 : 1); pass++) {
		bool domains = !pass;

		for (try = 0; try < 4; try++) {
			unsigned int a, b;
			s64 ra, rb;

			vc_two_random(n, &a, &b);
			ra = vc_room_for(peers, planned, len, chosen, k, a,
					 domains);
			rb = b == a ? -1 : vc_room_for(peers, planned, len,
						       chosen, k, b, domains);
			if (ra < 0 && rb < 0)
				continue;
			return ra >= rb ? a : b;
		}
		for (i = 0; i < n; i++)
			if (vc_room_for(peers, planned, len, chosen, k, i,
					domains) >= 0)
				return i;
	}
	return -ENOSPC;
}

/**
 * vc_pick_replacement() - a peer for a new replica of a chunk
 * @peers: candidate peers (references held)
 * @n: how many
 * @planned: bytes already planned on each candidate (updated)
 * @c: the chunk; the new replica goes to none of its replicas' peers
 *
 * Return: an index into @peers, or -ENOSPC.
 */
int vc_pick_replacement(struct virgo_peer **peers, unsigned int n,
			u64 *planned, const struct virgo_chunk *c)
{
	int chosen[VIRGO_MAX_REPLICAS];
	unsigned int k = 0, r, i;
	int p;

	for (r = 0; r < c->nr_replicas; r++)
		for (i = 0; i < n; i++)
			if (peers[i]->id == c->replicas[r].peer_id)
				chosen[k++] = i;
	p = vc_pick(peers, n, planned, c->len, chosen, k);
	if (p >= 0)
		planned[p] += c->len;
	return p;
}

/* ---- virgo_malloc() --------------------------------------------------- */

/*
 * The plan of one malloc.  A unit is one replica of one chunk: unit u is
 * replica u % replicas of chunk u / replicas.
 */
struct vc_plan {
	struct virgo_peer **peers;
	unsigned int nr_peers;
	unsigned int replicas;
	u32 nr_units;
	u32 *place;	/* unit -> peer index */
	u32 *order;	/* units grouped by peer */
	u64 *planned;	/* peer index -> bytes planned there */
	u32 *count;	/* peer index -> units there, then its run's start */
};

/* One batched ALLOC to one peer: units order[first .. first + count). */
struct vc_alloc_req {
	struct virgo_rpc *rpc;
	unsigned int peer;
	u32 first;
	u32 count;
	u64 bytes;
	int err;
};

static int vc_cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* The handles an ALLOC got, freed in the background by the peer. */
static void vc_undo_alloc_later(struct vc_alloc_req *r,
				struct virgo_peer *peer)
{
	u64 *handles = kvmalloc_array(r->count, sizeof(*handles), GFP_KERNEL);
	u32 i;

	if (!handles)
		return;
	for (i = 0; i < r->count; i++)
		handles[i] = virgo_wire_handle(r->rpc->data, i);
	virgo_peer_free_handles(peer, r->rpc->epoch, handles, r->count);
	kvfree(handles);
}

/*
 * Free the chunks an ALLOC got, and wait for it (used on failure).  A FREE
 * that cannot be sent now (no memory, a fatal signal, a full window) is
 * left to the peer's background frees: a failed malloc leaves nothing
 * lent.  -EIO: the chunks died with their session.
 */
static void vc_undo_alloc(struct virgo_client *vc, struct vc_alloc_req *r,
			  struct virgo_peer *peer)
{
	u32 len = VIRGO_WIRE_BATCH_HDR_LEN + r->count * VIRGO_WIRE_HANDLE_LEN;
	struct virgo_rpc *rpc;
	int err = -ENOMEM;
	void *p;
	u32 i;

	p = kmalloc(len, GFP_KERNEL);
	rpc = virgo_rpc_alloc(VIRGO_OP_FREE, NULL, VIRGO_WIRE_FREE_REP_LEN,
			      VIRGO_WIRE_FREE_REP_LEN, GFP_KERNEL);
	if (p && rpc) {
		virgo_wire_put_batch_hdr(p, len, r->count,
					 VIRGO_WIRE_HANDLE_LEN);
		for (i = 0; i < r->count; i++) {
			u64 h = virgo_wire_handle(r->rpc->data, i);

			virgo_wire_set_handle(p, i, h);
		}
		rpc->count = r->count;
		/* Handles of the session that gave them, or none at all. */
		err = virgo_rpc_send(peer, r->rpc->epoch, rpc, p, len, NULL, 0);
	}
	kfree(p);
	if (!err) {
		unsigned long deadline = jiffies +
			msecs_to_jiffies(vc->rpc_timeout_ms);

		if (virgo_rpc_gone(virgo_rpc_wait(rpc, deadline)))
			rpc = NULL;
	} else if (err != -EIO) {
		vc_undo_alloc_later(r, peer);
	}
	virgo_rpc_free(rpc);
}

/*
 * Every ALLOC of a malloc succeeded: count their bytes as placed on their
 * peers, or fail with -EIO if one of the peers was removed since.
 */
static int vc_commit_placed(struct virgo_client *vc,
			    struct virgo_peer **peers,
			    struct vc_alloc_req *reqs, unsigned int nr_reqs)
{
	unsigned int i;
	int ret = 0;

	mutex_lock(&vc->peers.lock);
	for (i = 0; i < nr_reqs; i++)
		if (READ_ONCE(peers[reqs[i].peer]->removed))
			ret = -EIO;
	for (i = 0; i < nr_reqs && !ret; i++) {
		struct virgo_peer *peer = peers[reqs[i].peer];

		atomic64_add(reqs[i].bytes, &peer->placed);
		atomic64_sub(reqs[i].bytes, &peer->free);
	}
	mutex_unlock(&vc->peers.lock);
	return ret;
}

static void vc_plan_free(struct vc_plan *plan)
{
	kvfree(plan->place);
	kvfree(plan->order);
	kvfree(plan->planned);
	kvfree(plan->count);
}

/* Place every replica of every chunk of @e; group the units by peer. */
static int vc_place(struct virgo_client *vc, struct virgo_xlat_entry *e,
		    struct vc_plan *plan)
{
	unsigned int R = plan->replicas, n = plan->nr_peers, i, r;

	plan->nr_units = e->nr_chunks * R;
	plan->place = kvmalloc_array(plan->nr_units, sizeof(u32), GFP_KERNEL);
	plan->order = kvmalloc_array(plan->nr_units, sizeof(u32), GFP_KERNEL);
	plan->planned = kvcalloc(n, sizeof(u64), GFP_KERNEL);
	plan->count = kvcalloc(n, sizeof(u32), GFP_KERNEL);
	if (!plan->place || !plan->order || !plan->planned || !plan->count)
		return -ENOMEM;

	for (i = 0; i < e->nr_chunks; i++) {
		u64 off = (u64)i * vc->chunk_size;
		u32 len = min_t(u64, vc->chunk_size, e->size - off);
		int chosen[VIRGO_MAX_REPLICAS];

		e->chunks[i].offset = off;
		e->chunks[i].len = len;
		e->chunks[i].nr_replicas = R;
		for (r = 0; r < R; r++) {
			int p = vc_pick(plan->peers, n, plan->planned, len,
					chosen, r);

			if (p < 0)
				return p;
			chosen[r] = p;
			plan->place[i * R + r] = p;
			plan->planned[p] += len;
			plan->count[p]++;
		}
		cond_resched();
	}

	/* order[] lists the units peer after peer. */
	for (i = 1; i < n; i++)
		plan->count[i] += plan->count[i - 1];
	for (i = plan->nr_units; i-- > 0; )
		plan->order[--plan->count[plan->place[i]]] = i;
	/* count[p] is now where peer p's run starts in order[]. */
	return 0;
}

/* Send one ALLOC of up to max_batch units of one peer, from order[@i]. */
static u32 vc_send_alloc(struct vc_plan *plan, struct virgo_xlat_entry *e,
			 u32 i, struct vc_alloc_req *r)
{
	unsigned int p = plan->place[plan->order[i]], R = plan->replicas;
	struct virgo_peer *peer = plan->peers[p];
	u32 n = 0, len, rlen, j;
	void *payload;

	while (i + n < plan->nr_units && plan->place[plan->order[i + n]] == p &&
	       n < peer->lim.max_batch)
		n++;
	r->peer = p;
	r->first = i;
	r->count = n;
	for (j = 0; j < n; j++)
		r->bytes += e->chunks[plan->order[i + j] / R].len;

	len = VIRGO_WIRE_BATCH_HDR_LEN + n * VIRGO_WIRE_SIZE_LEN;
	rlen = VIRGO_WIRE_BATCH_HDR_LEN + n * VIRGO_WIRE_HANDLE_LEN;
	payload = kmalloc(len, GFP_KERNEL);
	r->rpc = virgo_rpc_alloc(VIRGO_OP_ALLOC, NULL, rlen, rlen, GFP_KERNEL);
	r->err = -ENOMEM;
	if (payload && r->rpc) {
		r->rpc->count = n;
		virgo_wire_put_batch_hdr(payload, len, n, VIRGO_WIRE_SIZE_LEN);
		for (j = 0; j < n; j++)
			virgo_wire_set_alloc_size(payload, j,
						  e->chunks[plan->order[i + j] /
							    R].len);
		r->err = virgo_rpc_send(peer, VIRGO_EPOCH_ANY, r->rpc, payload,
					len, NULL, 0);
	}
	kfree(payload);
	if (r->err) {
		/* Never sent: still ours. */
		virgo_rpc_free(r->rpc);
		r->rpc = NULL;
	}
	return n;
}

/* Wait for every ALLOC sent; the first error, or 0. */
static int vc_wait_allocs(struct virgo_client *vc, struct vc_alloc_req *reqs,
			  unsigned int nr_reqs)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(vc->rpc_timeout_ms);
	unsigned int i;
	int ret = 0;

	for (i = 0; i < nr_reqs; i++) {
		struct vc_alloc_req *r = &reqs[i];

		if (!r->err) {
			r->err = virgo_rpc_wait(r->rpc, deadline);
			if (virgo_rpc_gone(r->err))
				r->rpc = NULL;	/* the peer frees its chunks */
		}
		if (r->err && !ret)
			ret = r->err == -EBUSY ? -ETIMEDOUT :
			      r->err == VIRGO_ERR_CONN_LOST ? -EIO : r->err;
	}
	return ret;
}

/* Write the handles the ALLOCs got into the entry's replicas. */
static void vc_record(struct vc_plan *plan, struct virgo_xlat_entry *e,
		      struct vc_alloc_req *reqs, unsigned int nr_reqs)
{
	unsigned int R = plan->replicas, i;
	u32 j;

	for (i = 0; i < nr_reqs; i++) {
		struct vc_alloc_req *r = &reqs[i];
		struct virgo_peer *peer = plan->peers[r->peer];

		for (j = 0; j < r->count; j++) {
			u32 unit = plan->order[r->first + j];
			struct virgo_replica *rep =
				&e->chunks[unit / R].replicas[unit % R];

			rep->peer_id = peer->id;
			rep->epoch = r->rpc->epoch;
			rep->handle = virgo_wire_handle(r->rpc->data, j);
		}
	}
}

static int __vc_malloc(struct virgo_client *vc, size_t size,
		       unsigned int replicas, const void *owner,
		       virgo_addr_t *addr, u32 *nr);

/**
 * vc_malloc_replicas() - allocate memory on the peers of a client
 * @vc: the client
 * @size: bytes, 1..VIRGO_XLAT_MAX_SIZE
 * @replicas: copies of every chunk, on distinct peers, 1..3 (0: the
 *	client's default)
 * @owner: owner cookie of the allocation (NULL: the kernel)
 * @addr: set to the allocation's first VIRGO address
 *
 * Return: 0; -EINVAL (size 0, no @addr, bad @replicas); -ENOMEM (too big,
 * no memory here or on the peers); -ENODEV (no peers); -ENOSPC (not
 * enough reachable peers with room); -ETIMEDOUT or -EIO (a peer failed);
 * -EINTR.
 */
int vc_malloc_replicas(struct virgo_client *vc, size_t size,
		       unsigned int replicas, const void *owner,
		       virgo_addr_t *addr)
{
	u64 start = ktime_get_ns();
	u32 nr = 0;
	int ret;

	might_sleep();
	ret = __vc_malloc(vc, size, replicas ? replicas : vc->replicas, owner,
			  addr, &nr);
	trace_virgo_malloc(size, ret ? 0 : *addr, nr, ret,
			   ktime_get_ns() - start);
	return ret;
}

/**
 * vc_malloc() - vc_malloc_replicas() with the client's default replicas
 * @vc: the client
 * @size: bytes
 * @owner: owner cookie of the allocation (NULL: the kernel)
 * @addr: set to the allocation's first VIRGO address
 *
 * Return: as vc_malloc_replicas().
 */
int vc_malloc(struct virgo_client *vc, size_t size, const void *owner,
	      virgo_addr_t *addr)
{
	return vc_malloc_replicas(vc, size, 0, owner, addr);
}

static int __vc_malloc(struct virgo_client *vc, size_t size,
		       unsigned int replicas, const void *owner,
		       virgo_addr_t *addr, u32 *nr)
{
	struct vc_plan plan = { .replicas = replicas };
	struct vc_alloc_req *reqs = NULL;
	struct virgo_xlat_entry *e;
	unsigned int nr_reqs = 0, i;
	u64 nr_chunks;
	int ret;

	if (!addr || !size || !replicas || replicas > VIRGO_MAX_REPLICAS)
		return -EINVAL;
	if (size > VIRGO_XLAT_MAX_SIZE)
		return -ENOMEM;
	nr_chunks = DIV_ROUND_UP_ULL(size, vc->chunk_size);
	if (nr_chunks > U32_MAX / (2 * VIRGO_MAX_REPLICAS))
		return -ENOMEM;
	*nr = nr_chunks;

	plan.peers = virgo_peers_snapshot(&vc->peers, &plan.nr_peers);
	if (!plan.peers)
		return plan.nr_peers ? -ENOMEM : -ENODEV;
	ret = virgo_peers_wait_tried(&vc->peers, plan.peers, plan.nr_peers);
	if (ret)
		goto put_peers;

	e = virgo_xlat_entry_alloc(size, nr_chunks, GFP_KERNEL);
	if (IS_ERR(e)) {
		ret = PTR_ERR(e);
		goto put_peers;
	}
	e->owner = owner;
	ret = vc_place(vc, e, &plan);
	if (ret)
		goto free_entry;
	ret = -ENOMEM;
	reqs = kvcalloc(plan.nr_units, sizeof(*reqs), GFP_KERNEL);
	if (!reqs)
		goto free_entry;

	/* One ALLOC per peer (per max_batch units), all sent first. */
	for (i = 0; i < plan.nr_units; nr_reqs++)
		i += vc_send_alloc(&plan, e, i, &reqs[nr_reqs]);
	/* Then wait for all of them. */
	ret = vc_wait_allocs(vc, reqs, nr_reqs);

	/*
	 * Count the chunks as placed, unless one of the peers was removed
	 * meanwhile (its session, and these chunks, are gone): under the
	 * set's lock, which virgo_peer_del() holds from its check of
	 * ->placed to ->removed, so an allocation is never recorded on a
	 * removed peer and a peer holding chunks is never removed.
	 */
	if (!ret)
		ret = vc_commit_placed(vc, plan.peers, reqs, nr_reqs);
	if (ret) {
		/* All or nothing: give back what did succeed. */
		for (i = 0; i < nr_reqs; i++)
			if (!reqs[i].err)
				vc_undo_alloc(vc, &reqs[i],
					      plan.peers[reqs[i].peer]);
		goto free_reqs;
	}

	vc_record(&plan, e, reqs, nr_reqs);
	ret = virgo_xlat_insert(&vc->table, e);
	if (ret) {
		/* Only if the table itself is out of memory. */
		for (i = 0; i < nr_reqs; i++) {
			struct virgo_peer *peer = plan.peers[reqs[i].peer];

			atomic64_sub(reqs[i].bytes, &peer->placed);
			atomic64_add(reqs[i].bytes, &peer->free);
			vc_undo_alloc(vc, &reqs[i], peer);
		}
		goto free_reqs;
	}
	*addr = e->va;
	e = NULL;

free_reqs:
	for (i = 0; i < nr_reqs; i++)
		virgo_rpc_free(reqs[i].rpc);
	kvfree(reqs);
free_entry:
	virgo_xlat_entry_free(e);
	vc_plan_free(&plan);
put_peers:
	virgo_peers_snapshot_put(plan.peers, plan.nr_peers);
	return ret;
}

/* ---- virgo_free() ----------------------------------------------------- */

/* A chunk to free: sorted by peer, epoch, then handle. */
struct vc_dead_chunk {
	u32 peer_id;
	u32 epoch;
	u64 handle;
	u32 len;
};

#if IS_ENABLED(CONFIG_KUNIT)
bool vc_test_free_nomem;
#endif

/* Replica entries in a client's reserve for frees (vc_release_chunks()). */
#define VC_FREE_RESERVE		(16 * VIRGO_MAX_REPLICAS)

/* Room to free a few chunks when there is no memory for more. */
struct vc_free_reserve {
	struct vc_dead_chunk dead[VC_FREE_RESERVE];
	struct virgo_rpc *rpcs[VC_FREE_RESERVE];
};

static int vc_cmp_dead(const void *a, const void *b)
{
	const struct vc_dead_chunk *x = a, *y = b;

	if (x->peer_id != y->peer_id)
		return x->peer_id < y->peer_id ? -1 : 1;
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch ? -1 : 1;
	return vc_cmp_u64(&x->handle, &y->handle);
}

/*
 * Send one FREE for @n chunks of one peer and epoch.  Returns the request
 * to wait for, or NULL: nothing to wait for (the session is gone, or the
 * FREE was handed to the peer's background worker).
 */
static struct virgo_rpc *vc_free_batch(struct virgo_peer *peer,
				       const struct vc_dead_chunk *dead, u32 n)
{
	u32 len = VIRGO_WIRE_BATCH_HDR_LEN + n * VIRGO_WIRE_HANDLE_LEN, j;
	struct virgo_rpc *rpc;
	int err = -ENOMEM;
	void *p;

	p = kmalloc(len, GFP_KERNEL);
	rpc = virgo_rpc_alloc(VIRGO_OP_FREE, NULL, VIRGO_WIRE_FREE_REP_LEN,
			      VIRGO_WIRE_FREE_REP_LEN, GFP_KERNEL);
	if (p && rpc) {
		virgo_wire_put_batch_hdr(p, len, n, VIRGO_WIRE_HANDLE_LEN);
		for (j = 0; j < n; j++)
			virgo_wire_set_handle(p, j, dead[j].handle);
		rpc->count = n;
		err = virgo_rpc_send(peer, dead[0].epoch, rpc, p, len, NULL, 0);
	}
	kfree(p);
	if (!err)
		return rpc;
	virgo_rpc_free(rpc);
	/* -EIO: the chunks died with their session; else try later. */
	if (err != -EIO) {
		u64 *handles = kvmalloc_array(n, sizeof(*handles), GFP_KERNEL);

		if (handles) {
			for (j = 0; j < n; j++)
				handles[j] = dead[j].handle;
			virgo_peer_free_handles(peer, dead[0].epoch, handles,
						n);
			kvfree(handles);
		}
	}
	return NULL;
}

/* A FREE's reply: did the server free every chunk asked? */
static int vc_check_freed(struct virgo_rpc *rpc)
{
	u32 freed = virgo_wire_freed(rpc->data);

	if (freed == rpc->count)
		return 0;
	pr_warn_ratelimited("peer %s freed %u of %u chunks: the others were not there\n",
			    rpc->peer->name, freed, rpc->count);
	return -EIO;
}

/* Wait for the FREEs sent; a server that freed fewer than asked is -EIO. */
static int vc_free_wait(struct virgo_client *vc, struct virgo_rpc **rpcs,
			u32 nr_rpcs)
{
	unsigned long deadline = jiffies + msecs_to_jiffies(vc->rpc_timeout_ms);
	int ret = 0;
	u32 i;

	for (i = 0; i < nr_rpcs; i++) {
		struct virgo_rpc *rpc = rpcs[i];
		int err = virgo_rpc_wait(rpc, deadline);

		if (virgo_rpc_gone(err)) {
			if (!ret)
				ret = err;
			continue;
		}
		/*
		 * -EIO: the session ended before the reply (the peer was
		 * removed, or could not be resumed): its chunks are gone as
		 * asked.  -ECONNRESET: the connection broke; if the server
		 * applied the FREE they are gone, else it frees them when the
		 * session ends or, as an orphan, expires.
		 */
		if (err == -EIO || err == VIRGO_ERR_CONN_LOST)
			err = 0;
		else if (!err)
			err = vc_check_freed(rpc);
		if (err && !ret)
			ret = err;
		virgo_rpc_free(rpc);
	}
	return ret;
}

/*
 * Free the replicas of chunks [@first, @end) of @e on their peers, with
 * room for all of them at @dead and @rpcs: batched per peer and epoch,
 * every FREE out before any reply is awaited.
 */
static int vc_release_range(struct virgo_client *vc,
			    struct virgo_xlat_entry *e, u32 first, u32 end,
			    struct vc_dead_chunk *dead,
			    struct virgo_rpc **rpcs)
{
	u32 i, r, nr = 0, nr_rpcs = 0;

	for (i = first; i < end; i++) {
		const struct virgo_chunk *c = &e->chunks[i];
		u16 stale = READ_ONCE(c->stale);

		/* Stale replicas are freed too; they stop counting as such. */
		if (stale) {
			atomic64_sub(hweight16(stale), &vc->stale_replicas);
			atomic64_sub((u64)hweight16(stale) * c->len,
				     &vc->stale_bytes);
		}
		for (r = 0; r < c->nr_replicas; r++, nr++) {
			dead[nr].peer_id = c->replicas[r].peer_id;
			dead[nr].epoch = c->replicas[r].epoch;
			dead[nr].handle = c->replicas[r].handle;
			dead[nr].len = c->len;
		}
	}
	cond_resched();
	sort(dead, nr, sizeof(*dead), vc_cmp_dead, NULL);

	for (i = 0; i < nr; ) {
		struct virgo_peer *peer = virgo_peer_get(&vc->peers,
							 dead[i].peer_id);
		u32 max = peer ? READ_ONCE(peer->lim.max_batch) : U32_MAX;
		u32 n = 0, j;
		u64 bytes = 0;

		while (i + n < nr && n < max &&
		       dead[i + n].peer_id == dead[i].peer_id &&
		       dead[i + n].epoch == dead[i].epoch)
			n++;
		for (j = 0; j < n; j++)
			bytes += dead[i + j].len;
		if (peer) {
			virgo_peer_credit(peer, dead[i].epoch, bytes);
			/* Sent only in the chunks' epoch (checked there). */
			rpcs[nr_rpcs] = vc_free_batch(peer, &dead[i], n);
			if (rpcs[nr_rpcs])
				nr_rpcs++;
			virgo_peer_put(peer);
		}
		i += n;
		cond_resched();
	}
	return vc_free_wait(vc, rpcs, nr_rpcs);
}

/*
 * Free every chunk of @e, which has left the table already: it cannot
 * fail for want of memory here.  Without room for all its replicas at
 * once, they go through the client's reserve, a few chunks at a time.
 */
static int vc_release_chunks(struct virgo_client *vc,
			     struct virgo_xlat_entry *e)
{
	const u32 window = VC_FREE_RESERVE / VIRGO_MAX_REPLICAS;
	struct vc_dead_chunk *dead;
	struct virgo_rpc **rpcs;
	u32 i, n, nr = 0;
	int ret = 0, err;

	for (i = 0; i < e->nr_chunks; i++)
		nr += e->chunks[i].nr_replicas;
	dead = kvmalloc_array(nr, sizeof(*dead), GFP_KERNEL | __GFP_NOWARN);
	rpcs = kvcalloc(nr, sizeof(*rpcs), GFP_KERNEL | __GFP_NOWARN);
#if IS_ENABLED(CONFIG_KUNIT)
	if (vc_test_free_nomem) {
		kvfree(dead);
		dead = NULL;
	}
#endif
	if (dead && rpcs) {
		ret = vc_release_range(vc, e, 0, e->nr_chunks, dead, rpcs);
		goto out;
	}
	mutex_lock(&vc->free_reserve_lock);
	for (i = 0; i < e->nr_chunks; i += n) {
		n = min(e->nr_chunks - i, window);
		err = vc_release_range(vc, e, i, i + n, vc->free_reserve->dead,
				       vc->free_reserve->rpcs);
		if (err && !ret)
			ret = err;
	}
	mutex_unlock(&vc->free_reserve_lock);
out:
	kvfree(rpcs);
	kvfree(dead);
	return ret;
}

/**
 * vc_free() - free an allocation
 * @vc: the client
 * @addr: the first VIRGO address of the allocation
 * @owner: its owner cookie
 *
 * Return: 0, -ENOENT, -EINVAL (not the first address), -EPERM (another
 * owner's), -ENOMEM (the table could not be changed: the allocation
 * stays), or an error from a peer (the allocation is gone regardless).
 */
int vc_free(struct virgo_client *vc, virgo_addr_t addr, const void *owner)
{
	struct virgo_xlat_entry *e;
	int ret;

	might_sleep();
	e = virgo_xlat_remove(&vc->table, addr, owner);
	if (IS_ERR(e))
		return PTR_ERR(e);
	virgo_xlat_wait_unused(e);
	ret = vc_release_chunks(vc, e);
	trace_virgo_free(addr, e->size, ret);
	virgo_xlat_put(e);
	return ret;
}

/**
 * vc_free_all() - free every allocation of an owner
 * @vc: the client
 * @owner: the owner cookie
 * @any_owner: free every allocation, whoever owns it
 *
 * Return: the number of allocations freed.
 */
unsigned int vc_free_all(struct virgo_client *vc, const void *owner,
			 bool any_owner)
{
	struct virgo_xlat_entry *e;
	virgo_addr_t from = 0;
	unsigned int n = 0;

	while ((e = virgo_xlat_find_next(&vc->table, &from))) {
		virgo_addr_t va = e->va;
		const void *o = e->owner;

		virgo_xlat_put(e);
		if (!any_owner && o != owner)
			continue;
		if (vc_free(vc, va, o) != -ENOENT)
			n++;
	}
	return n;
}

/* ---- virgo_set() / virgo_get() ----------------------------------------- */

/* One request of an I/O window: one replica of one chunk piece. */
struct vc_io_req {
	struct virgo_rpc *rpc;
	u32 idx;
	u32 chunk_off;
	u32 len;
	u64 buf_off;
	u8 *data;
	int err;
	u8 replica;
	u8 tried;
	bool last;
};

/*
 * One virgo_set()/virgo_get() in progress.  A write sends a piece to every
 * replica that is not stale, the requests of one piece next to each other
 * in @reqs, the last one marked; a read sends it to one replica and fails
 * over to the others, one at a time, if that one fails.  @round, set at
 * the first send of a window, bounds the whole round: the waits for
 * in-flight slots while it fills and the wait for its replies.
 */
struct vc_io {
	struct virgo_client *vc;
	struct virgo_xlat_entry *e;
	bool write;
	bool zero;
	u8 *buf;
	const struct kvec *vec;
	unsigned int nvec;
	unsigned int seg;
	u64 seg_start;
	unsigned long deadline;
	unsigned long round;
	struct vc_io_req reqs[VC_IO_WINDOW];
	unsigned int nr;
	int err;
};

/* Least time left for the replies of a round when its window drains. */
#define VC_IO_GRACE	msecs_to_jiffies(250)

/* What a failed piece means to the caller. */
static int vc_io_errno(int err)
{
	/* A chunk the server does not know is lost, not missing. */
	if (err == -ENOENT || err == -ERANGE || err == -EPROTO ||
	    err == VIRGO_ERR_CONN_LOST)
		return -EIO;
	return err == -EBUSY ? -ETIMEDOUT : err;
}

/* The deadline of one round of requests. */
static unsigned long vc_io_round(struct vc_io *io)
{
	unsigned long deadline = jiffies +
		msecs_to_jiffies(io->vc->rpc_timeout_ms);

	if (io->deadline && time_before(io->deadline, deadline))
		deadline = io->deadline;
	return deadline;
}

/*
 * Send @q's piece to its replica, waiting for an in-flight slot until
 * @deadline at most; on error nothing was sent.
 */
static int vc_io_send(struct vc_io *io, struct vc_io_req *q,
		      unsigned long deadline)
{
	const struct virgo_replica *rep =
		&io->e->chunks[q->idx].replicas[q->replica];
	struct virgo_wire_rw rw = {
		.handle = rep->handle, .offset = q->chunk_off,
		.length = q->len,
	};
	u8 payload[VIRGO_WIRE_RW_REQ_LEN];
	u8 *data = q->data;
	struct virgo_peer *peer;
	int ret = -ENOMEM;

	q->rpc = NULL;
	peer = virgo_peer_get(&io->vc->peers, rep->peer_id);
	if (!peer)
		return -EIO;
	q->rpc = virgo_rpc_alloc(io->write ? VIRGO_OP_WRITE : VIRGO_OP_READ,
				 io->write ? NULL : data,
				 io->write ? 0 : q->len, 0, GFP_KERNEL);
	if (!q->rpc)
		goto put;
	q->rpc->deadline = deadline;
	q->rpc->replicated = io->write &&
			     io->e->chunks[q->idx].nr_replicas > 1;
	virgo_wire_put_rw_req(payload, sizeof(payload), &rw);
	/* Only into the session that gave the handle: else -EIO, unsent. */
	ret = virgo_rpc_send(peer, rep->epoch, q->rpc, payload,
			     sizeof(payload), io->write ? data : NULL,
			     io->write ? q->len : 0);
	if (ret) {
		virgo_rpc_free(q->rpc);
		q->rpc = NULL;
	}
put:
	virgo_peer_put(peer);
	return ret;
}

/* Wait for @q's reply (if it was sent); its result. */
static int vc_io_wait(struct vc_io_req *q, unsigned long deadline)
{
	int err;

	if (!q->rpc)
		return q->err;
	err = virgo_rpc_wait(q->rpc, deadline);
	if (!virgo_rpc_gone(err))
		virgo_rpc_free(q->rpc);
	q->rpc = NULL;
	return err;
}

/*
 * @q failed with @err: when only its connection broke, wait (until
 * @deadline, the round's: a resume never makes a call longer than one
 * rpc_timeout_ms round) for the session to be resumed and send it again,
 * as often as the connection breaks.  Returns @q's final result.
 */
static int vc_io_resend(struct vc_io *io, struct vc_io_req *q, int err,
			unsigned long deadline)
{
	const struct virgo_replica *rep;
	struct virgo_peer *peer;

	while (err == VIRGO_ERR_CONN_LOST && time_before(jiffies, deadline)) {
		rep = &io->e->chunks[q->idx].replicas[q->replica];
		peer = virgo_peer_get(&io->vc->peers, rep->peer_id);
		if (!peer)
			return -EIO;
		err = virgo_peer_wait_session(peer, rep->epoch, deadline);
		virgo_peer_put(peer);
		if (err)
			break;
		q->err = vc_io_send(io, q, deadline);
		err = vc_io_wait(q, deadline);
	}
	return err;
}

/*
 * The replica of chunk @c to read, among those neither stale nor in
 * @tried: a connected peer with the lowest RTT plus queue, else any.
 */
static int vc_pick_replica(struct vc_io *io, const struct virgo_chunk *c,
			   u8 tried)
{
	u16 skip = READ_ONCE(c->stale) | tried;
	u64 best_cost = U64_MAX;
	int best = -1;
	unsigned int r;

	for (r = 0; r < c->nr_replicas; r++) {
		struct virgo_peer *peer;
		u64 cost = U64_MAX - 1;

		if (skip & BIT(r))
			continue;
		peer = virgo_peer_get(&io->vc->peers, c->replicas[r].peer_id);
		if (peer && virgo_peer_usable(peer))
			cost = atomic64_read(&peer->rtt_ns) +
				atomic_read(&peer->inflight) * 100000ULL;
		if (peer)
			virgo_peer_put(peer);
		if (cost < best_cost) {
			best_cost = cost;
			best = r;
		}
	}
	return best;
}

/*
 * A read of @q's piece failed with @err: try the chunk's other replicas,
 * one after the other, within this call.  Returns 0 once one answered.
 */
static int vc_read_failover(struct vc_io *io, struct vc_io_req *q, int err)
{
	const struct virgo_chunk *c = &io->e->chunks[q->idx];
	unsigned long round;
	int r;

	while (err != -EINTR) {
		r = vc_pick_replica(io, c, q->tried);
		if (r < 0)
			break;
		q->tried |= BIT(r);
		q->replica = r;
		round = vc_io_round(io);
		q->err = vc_io_send(io, q, round);
		err = vc_io_wait(q, round);
		if (!err)
			return 0;
	}
	/* No replica left: the last one's connection may come back. */
	err = vc_io_resend(io, q, err, io->round);
	return vc_io_errno(err);
}

/**
 * vc_chunk_mark_stale() - replicas of a chunk missed a change
 * @vc: the client
 * @c: the chunk
 * @failed: replica bits that missed a write (or discard) another got
 *
 * They are never read again (repair replaces them).
 */
void vc_chunk_mark_stale(struct virgo_client *vc, struct virgo_chunk *c,
			 u16 failed)
{
	u16 fresh;

	spin_lock(&vc->stale_lock);
	fresh = failed & ~c->stale;
	WRITE_ONCE(c->stale, c->stale | failed);
	spin_unlock(&vc->stale_lock);
	if (fresh) {
		atomic64_add(hweight16(fresh), &vc->stale_replicas);
		atomic64_add((u64)hweight16(fresh) * c->len, &vc->stale_bytes);
	}
}

/* Replicas @failed of chunk @idx missed a write another replica got. */
static void vc_mark_stale(struct vc_io *io, u32 idx, u16 failed)
{
	vc_chunk_mark_stale(io->vc, &io->e->chunks[idx], failed);
}

/* The requests of one piece's write, reqs[first..last]. */
static void vc_write_drain_piece(struct vc_io *io, unsigned int first,
				 unsigned int last, unsigned long deadline)
{
	unsigned int i, ok = 0;
	u16 failed = 0;
	int err0 = 0;

	for (i = first; i <= last; i++) {
		struct vc_io_req *q = &io->reqs[i];
		int err = vc_io_wait(q, deadline);

		err = vc_io_resend(io, q, err, deadline);
		if (!err) {
			ok++;
			continue;
		}
		failed |= BIT(q->replica);
		if (!err0)
			err0 = err;
	}
	/* Written somewhere: the others are stale, never read again. */
	if (ok && failed)
		vc_mark_stale(io, io->reqs[first].idx, failed);
	if (!ok && !io->err)
		io->err = vc_io_errno(err0);
}

/* Wait for every request of the window; keep the first error. */
static void vc_io_drain(struct vc_io *io)
{
	/*
	 * Requests sent late in the round (after a send to a dead peer
	 * blocked) still get a moment for their replies: a healthy replica
	 * must not count as failed for want of a round trip.
	 */
	unsigned long deadline = io->round, grace = jiffies + VC_IO_GRACE;
	unsigned int i, first = 0;

	if (time_after(grace, deadline) &&
	    (!io->deadline || time_before(grace, io->deadline)))
		deadline = grace;

	for (i = 0; i < io->nr; i++) {
		struct vc_io_req *q = &io->reqs[i];
		int err;

		if (io->write) {
			if (q->last) {
				vc_write_drain_piece(io, first, i, deadline);
				first = i + 1;
			}
			continue;
		}
		err = vc_io_wait(q, deadline);
		if (err)
			err = vc_read_failover(io, q, err);
		if (err && !io->err)
			io->err = err;
	}
	io->nr = 0;
}

/* Where byte @buf_off of the call's data is, @n bytes of it contiguous. */
static u8 *vc_io_data(struct vc_io *io, u64 buf_off, u32 *n)
{
	const struct kvec *v;

	/* Writing zeroes: a page of them per request. */
	if (io->zero) {
		*n = min_t(u32, *n, PAGE_SIZE);
		return page_address(ZERO_PAGE(0));
	}
	if (!io->vec)
		return io->buf + buf_off;
	/* Pieces come in order: the cursor only moves forward. */
	while (buf_off >= io->seg_start + io->vec[io->seg].iov_len) {
		io->seg_start += io->vec[io->seg].iov_len;
		io->seg++;
	}
	v = &io->vec[io->seg];
	*n = min_t(u64, *n, io->seg_start + v->iov_len - buf_off);
	return (u8 *)v->iov_base + (buf_off - io->seg_start);
}

static int vc_io_one(struct vc_io *io, const struct virgo_chunk *c, u32 idx,
		     u32 chunk_off, u32 len, u64 buf_off, u8 *data);

/*
 * A chunk piece: one request (per replica) for each run of it that is
 * contiguous in the caller's memory (all of it, but for a vector).
 */
static int vc_io_piece(struct virgo_xlat_entry *e, u32 idx, u32 chunk_off,
		       u32 len, u64 buf_off, void *arg)
{
	const struct virgo_chunk *c = &e->chunks[idx];
	struct vc_io *io = arg;
	int ret;

	while (len) {
		u32 n = len;
		u8 *data = vc_io_data(io, buf_off, &n);

		ret = vc_io_one(io, c, idx, chunk_off, n, buf_off, data);
		if (ret)
			return ret;
		chunk_off += n;
		buf_off += n;
		len -= n;
	}
	return 0;
}

static int vc_io_one(struct vc_io *io, const struct virgo_chunk *c, u32 idx,
		     u32 chunk_off, u32 len, u64 buf_off, u8 *data)
{
	unsigned int need = io->write ? c->nr_replicas : 1, r, sent = 0;
	u16 stale;
	int ret;

	if (io->nr + need > VC_IO_WINDOW)
		vc_io_drain(io);
	if (io->err)
		return io->err;
	if (io->deadline && time_after_eq(jiffies, io->deadline))
		return -ETIMEDOUT;
	if (!io->nr)
		io->round = vc_io_round(io);

	if (!io->write) {
		struct vc_io_req *q = &io->reqs[io->nr];

		*q = (struct vc_io_req){ .idx = idx, .chunk_off = chunk_off,
					 .len = len, .buf_off = buf_off,
					 .data = data };
		ret = vc_pick_replica(io, c, 0);
		if (ret < 0)
			return -EIO;
		q->replica = ret;
		q->tried = BIT(ret);
		ret = vc_io_send(io, q, io->round);
		if (ret)
			return vc_read_failover(io, q, ret);
		io->nr++;
		return 0;
	}

	stale = READ_ONCE(c->stale);
	for (r = 0; r < c->nr_replicas; r++) {
		struct vc_io_req *q = &io->reqs[io->nr];

		if (stale & BIT(r))
			continue;
		*q = (struct vc_io_req){ .idx = idx, .chunk_off = chunk_off,
					 .len = len, .buf_off = buf_off,
					 .data = data, .replica = r };
		q->err = vc_io_send(io, q, io->round);
		io->nr++;
		sent++;
	}
	if (!sent)
		return -EIO;	/* every replica missed a write: lost */
	io->reqs[io->nr - 1].last = true;
	return 0;
}

/*
 * @buf, or the @nvec segments of @vec when @vec is set, or zeroes (a
 * write with @zero): @len bytes.
 */
/* Move [@addr, @addr + @len) of @e, which the caller holds a reference on. */
static int vc_io_entry(struct virgo_client *vc, struct virgo_xlat_entry *e,
		       virgo_addr_t addr, void *buf, const struct kvec *vec,
		       unsigned int nvec, size_t len, bool write, bool zero,
		       unsigned long deadline)
{
	struct vc_io *io;
	int ret;

	/* Nothing to move: the address was checked, that is all. */
	if (!len)
		return 0;
	io = kvzalloc(sizeof(*io), GFP_KERNEL);
	if (!io)
		return -ENOMEM;
	io->vc = vc;
	io->e = e;
	io->write = write;
	io->zero = write && zero;
	io->buf = buf;
	io->vec = vec;
	io->nvec = nvec;
	io->deadline = deadline;
	/* Replicas stay put while we use them (a repair waits). */
	ret = down_read_killable(&e->io_lock);
	if (ret)
		goto free_io;
	ret = virgo_xlat_walk(e, addr, len, vc_io_piece, io);
	if (ret == -ERANGE)
		ret = -EINVAL;
	vc_io_drain(io);
	up_read(&e->io_lock);
	if (!ret)
		ret = io->err;
free_io:
	kvfree(io);
	return ret;
}

static int __vc_io(struct virgo_client *vc, virgo_addr_t addr,
		   const void *owner, void *buf, const struct kvec *vec,
		   unsigned int nvec, size_t len, bool write, bool zero,
		   unsigned long deadline)
{
	struct virgo_xlat_entry *e;
	int ret;

	might_sleep();
	if (!buf && !vec && !zero && len)
		return -EINVAL;
	e = virgo_xlat_get(&vc->table, addr);
	if (!e)
		return -ENOENT;
	ret = -EPERM;
	if (e->owner == owner)
		ret = vc_io_entry(vc, e, addr, buf, vec, nvec, len, write,
				  zero, deadline);
	virgo_xlat_put(e);
	return ret;
}

static int vc_io(struct virgo_client *vc, virgo_addr_t addr,
		 const void *owner, void *buf, const struct kvec *vec,
		 unsigned int nvec, size_t len, bool write,
		 unsigned long deadline)
{
	return __vc_io(vc, addr, owner, buf, vec, nvec, len, write, false,
		       deadline);
}

/**
 * vc_zero_entry() - write zeroes over a range of an allocation held
 * @vc: the client
 * @e: the allocation (the caller holds a reference: no lookup by address,
 *	which a concurrent free and malloc could give to another allocation)
 * @addr: the first VIRGO address of the range
 * @len: its length; the range must lie inside @e
 * @deadline: jiffies after which the call fails with -ETIMEDOUT (0: none)
 *
 * Return: as vc_set().
 */
int vc_zero_entry(struct virgo_client *vc, struct virgo_xlat_entry *e,
		  virgo_addr_t addr, size_t len, unsigned long deadline)
{
	return vc_io_entry(vc, e, addr, NULL, NULL, 0, len, true, true,
			   deadline);
}

/**
 * vc_set() - write bytes into an allocation
 * @vc: the client
 * @addr: any VIRGO address inside the allocation
 * @owner: the allocation's owner cookie
 * @buf: the bytes
 * @len: how many; [addr, addr + len) must lie inside the allocation; 0
 *	checks @addr and @owner only
 *
 * Return: 0, -ENOENT, -EPERM, -EINVAL (range outside), -EIO, -ETIMEDOUT,
 * -EINTR (fatal signal).
 */
int vc_set(struct virgo_client *vc, virgo_addr_t addr, const void *owner,
	   const void *buf, size_t len)
{
	return vc_io(vc, addr, owner, (void *)buf, NULL, 0, len, true, 0);
}

/**
 * vc_get() - read bytes from an allocation
 * @vc: the client
 * @addr: any VIRGO address inside the allocation
 * @owner: the allocation's owner cookie
 * @buf: where to put them
 * @len: how many; [addr, addr + len) must lie inside the allocation
 *
 * Return: as vc_set().
 */
int vc_get(struct virgo_client *vc, virgo_addr_t addr, const void *owner,
	   void *buf, size_t len)
{
	return vc_io(vc, addr, owner, buf, NULL, 0, len, false, 0);
}

/**
 * vc_rw_deadline() - vc_set() or vc_get() with a bound on its time
 * @vc: the client
 * @addr: any VIRGO address inside the allocation
 * @owner: its owner cookie
 * @buf: the bytes, or where they go
 * @len: how many
 * @write: vc_set() if true, else vc_get()
 * @deadline: jiffies after which the call gives up with -ETIMEDOUT (no
 *	request is sent after it, no reply awaited past it)
 *
 * Return: as vc_set().
 */
int vc_rw_deadline(struct virgo_client *vc, virgo_addr_t addr,
		   const void *owner, void *buf, size_t len, bool write,
		   unsigned long deadline)
{
	return vc_io(vc, addr, owner, buf, NULL, 0, len, write,
		     deadline ? deadline : 1);
}

/**
 * vc_rwv_deadline() - vc_rw_deadline() on a vector of buffers
 * @vc: the client
 * @addr: any VIRGO address inside the allocation
 * @owner: its owner cookie
 * @vec: the buffers, in order: their bytes are the range from @addr on
 * @nvec: how many (at most UIO_MAXIOV)
 * @write: write them, else read into them
 * @deadline: as for vc_rw_deadline()
 *
 * Each run of a chunk piece that lies in one buffer is its own request;
 * all of them go out before any reply is awaited, up to the window.
 *
 * Return: as vc_set(); -EINVAL for a NULL buffer of non-zero length or
 * too many buffers.
 */
int vc_rwv_deadline(struct virgo_client *vc, virgo_addr_t addr,
		    const void *owner, const struct kvec *vec,
		    unsigned int nvec, bool write, unsigned long deadline)
{
	size_t len = 0;
	unsigned int i;

	if (nvec > UIO_MAXIOV || (nvec && !vec))
		return -EINVAL;
	for (i = 0; i < nvec; i++) {
		if ((!vec[i].iov_base && vec[i].iov_len) ||
		    check_add_overflow(len, vec[i].iov_len, &len))
			return -EINVAL;
	}
	return vc_io(vc, addr, owner, NULL, vec, nvec, len, write,
		     deadline ? deadline : 1);
}

static int vc_cmp_u32(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;

	return x < y ? -1 : x > y;
}

/*
 * Distinct peers holding a replica of a chunk of @e (-ENOMEM without
 * memory, -EINTR on a fatal signal).  Under @e's io_lock: a repair moves
 * replicas from peer to peer.
 */
static int vc_count_peers(struct virgo_xlat_entry *e)
{
	u32 *ids, i, r, nr = 0, n = 0;
	int ret;

	ids = kvmalloc_array(e->nr_chunks, sizeof(*ids) * VIRGO_MAX_REPLICAS,
			     GFP_KERNEL);
	if (!ids)
		return -ENOMEM;
	ret = down_read_killable(&e->io_lock);
	if (ret)
		goto out;
	for (i = 0; i < e->nr_chunks; i++) {
		const struct virgo_chunk *c = &e->chunks[i];

		for (r = 0; r < c->nr_replicas; r++)
			ids[nr++] = c->replicas[r].peer_id;
		cond_resched();
	}
	up_read(&e->io_lock);
	sort(ids, nr, sizeof(*ids), vc_cmp_u32, NULL);
	for (i = 0; i < nr; i++)
		if (!i || ids[i] != ids[i - 1])
			n++;
	ret = n;
out:
	kvfree(ids);
	return ret;
}

/**
 * vc_stat() - describe the allocation that contains an address
 * @vc: the client
 * @addr: any VIRGO address inside the allocation
 * @owner: its owner cookie
 * @info: filled in
 * @peers: also count the distinct peers holding a replica of one of its
 *	chunks (O(n log n))
 *
 * Return: 0, -ENOENT, -EPERM, -ENOMEM or -EINTR.
 */
int vc_stat(struct virgo_client *vc, virgo_addr_t addr, const void *owner,
	    struct virgo_alloc_info *info, bool peers)
{
	struct virgo_xlat_entry *e;
	int ret = 0;

	e = virgo_xlat_get(&vc->table, addr);
	if (!e)
		return -ENOENT;
	if (e->owner != owner) {
		ret = -EPERM;
		goto put;
	}
	memset(info, 0, sizeof(*info));
	info->addr = e->va;
	info->size = e->size;
	info->chunk_size = vc->chunk_size;
	info->nr_chunks = e->nr_chunks;
	if (peers) {
		ret = vc_count_peers(e);
		if (ret >= 0) {
			info->nr_peers = ret;
			ret = 0;
		}
	}
put:
	virgo_xlat_put(e);
	return ret;
}

/* ---- client instances ------------------------------------------------- */

/**
 * virgo_client_init() - set a client up
 * @vc: the client
 * @cfg: its configuration
 *
 * Return: 0 or a negative errno (-EINVAL for a bad configuration).
 */
int virgo_client_init(struct virgo_client *vc,
		      const struct virgo_client_config *cfg)
{
	int ret;

	if (cfg->chunk_size < VIRGO_CHUNK_MIN ||
	    cfg->chunk_size > VIRGO_CHUNK_MAX || !cfg->rpc_timeout_ms ||
	    cfg->replicas > VIRGO_MAX_REPLICAS ||
	    cfg->queues > VIRGO_QUEUES_MAX)
		return -EINVAL;
	vc->chunk_size = cfg->chunk_size;
	vc->rpc_timeout_ms = cfg->rpc_timeout_ms;
	vc->replicas = cfg->replicas ? cfg->replicas : 1;
	spin_lock_init(&vc->stale_lock);
	atomic64_set(&vc->stale_replicas, 0);
	atomic64_set(&vc->stale_bytes, 0);
	atomic64_set(&vc->repair_rate_bps, 0);
	vc->peer_dead_ms = cfg->peer_dead_ms ? cfg->peer_dead_ms : 60000;
	vc->repair_kbps = cfg->repair_kbps;
	vc->repair_period_ms = cfg->repair_period_ms ?
		cfg->repair_period_ms : 1000;
	mutex_init(&vc->free_reserve_lock);
	vc->free_reserve = kmalloc(sizeof(*vc->free_reserve), GFP_KERNEL);
	if (!vc->free_reserve)
		return -ENOMEM;
	ret = virgo_peers_init(&vc->peers, cfg->psk, cfg->psk_len,
			       cfg->chunk_size, cfg->connect_timeout_ms,
			       cfg->rpc_timeout_ms);
	if (ret)
		goto free_reserve;
	vc->peers.queues = cfg->queues ? cfg->queues : 1;
	virgo_xlat_init(&vc->table);
	ret = virgo_peers_add_list(&vc->peers, cfg->peers);
	if (ret)
		goto destroy;
	virgo_repair_start(vc);
	return 0;

destroy:
	virgo_xlat_destroy(&vc->table);
	virgo_peers_destroy(&vc->peers);
free_reserve:
	kfree(vc->free_reserve);
	return ret;
}

/**
 * virgo_client_destroy() - free every allocation remotely, then the client
 * @vc: the client
 */
void virgo_client_destroy(struct virgo_client *vc)
{
	virgo_repair_stop(vc);
	vc_free_all(vc, NULL, true);
	virgo_peers_destroy(&vc->peers);
	virgo_xlat_destroy(&vc->table);
	kfree(vc->free_reserve);
}
