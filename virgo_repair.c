// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: repair, re-creating lost replicas in the background.
 *
 * A replica needs repair when it is stale (it missed a write), when its
 * peer has been unreachable for peer_dead_ms, or when its peer is being
 * drained.  A worker walks the table every repair_period_ms; for each such
 * replica that has a live sibling it allocates a chunk on another peer
 * (placement rules as for a malloc: distinct peers, distinct failure
 * domains first), then, holding the allocation's io_lock exclusively (no
 * set, get or free of it runs meanwhile), copies the chunk from the live
 * sibling, swaps the new replica into the entry and clears its stale bit.
 * The old replica is freed in the background if its peer still has the
 * session.  repair_kbps bounds the bandwidth (0: unbounded).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/delay.h>
#include <linux/math64.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "virgo_repair.h"
#include "virgo_trace.h"

/* A peer that can serve as the source of a copy. */
static bool vr_source_ok(struct virgo_peer *peer)
{
	return !READ_ONCE(peer->removed) &&
		READ_ONCE(peer->state) == VIRGO_PEER_UP &&
		!atomic_read(&peer->suspect);
}

/* Has replica @r of @c to be re-created?  (Racy hint without io_lock.) */
static bool vr_needed(struct virgo_client *vc, const struct virgo_chunk *c,
		      unsigned int r)
{
	struct virgo_peer *peer;
	unsigned long since;
	bool gone;

	if (READ_ONCE(c->stale) & BIT(r))
		return true;
	peer = virgo_peer_get(&vc->peers, READ_ONCE(c->replicas[r].peer_id));
	if (!peer)
		return true;
	since = READ_ONCE(peer->down_since);
	gone = READ_ONCE(peer->draining) ||
		(since && time_after(jiffies, since +
				     msecs_to_jiffies(vc->peer_dead_ms)));
	virgo_peer_put(peer);
	return gone;
}

/* A sibling of replica @r to copy from, or -1. */
static int vr_source(struct virgo_client *vc, const struct virgo_chunk *c,
		     unsigned int r)
{
	unsigned int s;

	for (s = 0; s < c->nr_replicas; s++) {
		struct virgo_peer *peer;
		bool ok;

		if (s == r || (READ_ONCE(c->stale) & BIT(s)))
			continue;
		peer = virgo_peer_get(&vc->peers, c->replicas[s].peer_id);
		if (!peer)
			continue;
		ok = vr_source_ok(peer) && !vr_needed(vc, c, s);
		virgo_peer_put(peer);
		if (ok)
			return s;
	}
	return -1;
}

/* ALLOC one chunk of @len bytes on @peer. */
static int vr_alloc(struct virgo_peer *peer, u32 len, u64 *handle,
		    u32 *epoch)
{
	u8 req[VIRGO_WIRE_BATCH_HDR_LEN + VIRGO_WIRE_SIZE_LEN];
	u8 rep[VIRGO_WIRE_BATCH_HDR_LEN + VIRGO_WIRE_HANDLE_LEN];
	int ret;

	virgo_wire_put_batch_hdr(req, sizeof(req), 1, VIRGO_WIRE_SIZE_LEN);
	virgo_wire_set_alloc_size(req, 0, len);
	ret = virgo_rpc_call(peer, VIRGO_EPOCH_ANY, VIRGO_OP_ALLOC, req,
			     sizeof(req), NULL, 0, rep, sizeof(rep), epoch);
	if (!ret)
		*handle = virgo_wire_handle(rep, 0);
	return ret;
}

/* READ or WRITE a whole chunk of replica @rep on @peer. */
static int vr_rw(struct virgo_peer *peer, const struct virgo_replica *rep,
		 u8 *buf, u32 len, bool write)
{
	struct virgo_wire_rw rw = { .handle = rep->handle, .length = len };
	u8 req[VIRGO_WIRE_RW_REQ_LEN];

	virgo_wire_put_rw_req(req, sizeof(req), &rw);
	if (write)
		return virgo_rpc_call(peer, rep->epoch, VIRGO_OP_WRITE, req,
				      sizeof(req), buf, len, NULL, 0, NULL);
	return virgo_rpc_call(peer, rep->epoch, VIRGO_OP_READ, req,
			      sizeof(req), NULL, 0, buf, len, NULL);
}

/* Count @len bytes as placed on @peer, unless it was removed. */
static bool vr_commit_placed(struct virgo_client *vc, struct virgo_peer *peer,
			     u32 len)
{
	bool ok;

	mutex_lock(&vc->peers.lock);
	ok = !READ_ONCE(peer->removed);
	if (ok) {
		atomic64_add(len, &peer->placed);
		atomic64_sub(len, &peer->free);
	}
	mutex_unlock(&vc->peers.lock);
	return ok;
}

/* The old replica @old is out of the entry: account and free it. */
static void vr_release_old(struct virgo_client *vc,
			   const struct virgo_replica *old, u32 len)
{
	struct virgo_peer *peer = virgo_peer_get(&vc->peers, old->peer_id);

	if (!peer)
		return;
	virgo_peer_credit(peer, old->epoch, len);
	virgo_peer_free_handles(peer, old->epoch, &old->handle, 1);
	virgo_peer_put(peer);
}

/*
 * Copy chunk @i of @e from a live sibling to the new replica @fresh and
 * swap it in for replica @r.  Called with @e->io_lock held exclusively.
 */
static int vr_copy_swap(struct virgo_client *vc, struct virgo_xlat_entry *e,
			u32 i, unsigned int r, struct virgo_peer *dest,
			const struct virgo_replica *fresh, u8 *buf)
{
	struct virgo_chunk *c = &e->chunks[i];
	struct virgo_replica old = c->replicas[r];
	struct virgo_peer *src_peer;
	int s, ret;
	u16 was;

	if (READ_ONCE(e->removed) || !vr_needed(vc, c, r))
		return -ECANCELED;
	s = vr_source(vc, c, r);
	if (s < 0)
		return -ENOENT;
	src_peer = virgo_peer_get(&vc->peers, c->replicas[s].peer_id);
	if (!src_peer)
		return -ENOENT;
	ret = vr_rw(src_peer, &c->replicas[s], buf, c->len, false);
	virgo_peer_put(src_peer);
	if (!ret)
		ret = vr_rw(dest, fresh, buf, c->len, true);
	if (!ret && !vr_commit_placed(vc, dest, c->len))
		ret = -ENODEV;
	if (ret)
		return ret;

	c->replicas[r] = *fresh;
	spin_lock(&vc->stale_lock);
	was = c->stale;
	WRITE_ONCE(c->stale, was & ~BIT(r));
	spin_unlock(&vc->stale_lock);
	if (was & BIT(r)) {
		atomic64_dec(&vc->stale_replicas);
		atomic64_sub(c->len, &vc->stale_bytes);
	}
	vr_release_old(vc, &old, c->len);
	return 0;
}

/* Re-create replica @r of chunk @i of @e on another peer. */
static int vr_chunk(struct virgo_client *vc, struct virgo_xlat_entry *e,
		    u32 i, unsigned int r, struct virgo_peer **peers,
		    unsigned int nr, u64 *planned, u8 *buf)
{
	struct virgo_chunk *c = &e->chunks[i];
	struct virgo_replica fresh;
	struct virgo_peer *dest;
	int p, ret;

	if (vr_source(vc, c, r) < 0)
		return -ENOENT;
	p = vc_pick_replacement(peers, nr, planned, c);
	if (p < 0)
		return p;
	dest = peers[p];
	ret = vr_alloc(dest, c->len, &fresh.handle, &fresh.epoch);
	planned[p] -= c->len;
	if (ret)
		return ret;
	fresh.peer_id = dest->id;

	down_write(&e->io_lock);
	ret = vr_copy_swap(vc, e, i, r, dest, &fresh, buf);
	up_write(&e->io_lock);
	if (ret) {
		virgo_peer_free_handles(dest, fresh.epoch, &fresh.handle, 1);
		return ret;
	}
	atomic64_inc(&vc->repaired_chunks);
	atomic64_add(c->len, &vc->repaired_bytes);
	trace_virgo_repair(e->va + c->offset, c->len, dest->id);
	return 0;
}

/* Keep to repair_kbps: sleep what @len bytes are worth. */
static void vr_throttle(struct virgo_client *vc, u32 len)
{
	unsigned int kbps = READ_ONCE(vc->repair_kbps);

	if (kbps)
		msleep(div_u64((u64)len * MSEC_PER_SEC, (u64)kbps * 1024));
	else
		cond_resched();
}

/* One pass over the table. */
static void vr_pass(struct virgo_client *vc, struct virgo_peer **peers,
		    unsigned int nr, u64 *planned, u8 *buf)
{
	struct virgo_xlat_entry *e;
	virgo_addr_t from = 0;
	unsigned int r;
	u32 i;

	while ((e = virgo_xlat_find_next(&vc->table, &from))) {
		for (i = 0; i < e->nr_chunks && !READ_ONCE(e->removed); i++) {
			struct virgo_chunk *c = &e->chunks[i];

			for (r = 0; r < c->nr_replicas; r++) {
				if (c->nr_replicas < 2 || !vr_needed(vc, c, r))
					continue;
				if (!vr_chunk(vc, e, i, r, peers, nr, planned,
					      buf))
					vr_throttle(vc, c->len);
			}
			cond_resched();
		}
		virgo_xlat_put(e);
	}
}

static void vr_work(struct work_struct *work)
{
	struct virgo_client *vc = container_of(to_delayed_work(work),
					       struct virgo_client,
					       repair_work);
	u64 bytes = atomic64_read(&vc->repaired_bytes), start = ktime_get_ns();
	struct virgo_peer **peers;
	unsigned int nr;
	u64 *planned;
	u8 *buf;

	peers = virgo_peers_snapshot(&vc->peers, &nr);
	planned = peers ? kvcalloc(nr, sizeof(*planned), GFP_KERNEL) : NULL;
	buf = kvmalloc(vc->chunk_size, GFP_KERNEL);
	if (planned && buf && atomic_long_read(&vc->table.nr_entries))
		vr_pass(vc, peers, nr, planned, buf);
	bytes = atomic64_read(&vc->repaired_bytes) - bytes;
	if (bytes)
		atomic64_set(&vc->repair_rate_bps,
			     div64_u64(bytes * NSEC_PER_SEC,
				       max(ktime_get_ns() - start, 1ULL)));
	kvfree(buf);
	kvfree(planned);
	virgo_peers_snapshot_put(peers, nr);
	queue_delayed_work(system_unbound_wq, &vc->repair_work,
			   msecs_to_jiffies(vc->repair_period_ms));
}

/**
 * virgo_repair_start() - start a client's repair worker
 * @vc: the client (repair parameters set)
 */
void virgo_repair_start(struct virgo_client *vc)
{
	atomic64_set(&vc->repaired_chunks, 0);
	atomic64_set(&vc->repaired_bytes, 0);
	INIT_DELAYED_WORK(&vc->repair_work, vr_work);
	queue_delayed_work(system_unbound_wq, &vc->repair_work,
			   msecs_to_jiffies(vc->repair_period_ms));
}

/**
 * virgo_repair_stop() - stop it; returns once no pass runs
 * @vc: the client
 */
void virgo_repair_stop(struct virgo_client *vc)
{
	cancel_delayed_work_sync(&vc->repair_work);
}
