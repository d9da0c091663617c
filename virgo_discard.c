// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: virgo_discard(), giving part of an allocation back.
 *
 * A range is made to read as zeroes.  Every chunk it covers whole is
 * DISCARDed on each of its replicas (protocol.md 5.9): the server frees
 * the chunk's memory and keeps the chunk, which reads as zeroes until
 * written again, so a block device over an allocation is thin.  The
 * pieces of chunks at the edges of the range, and whole chunks with a
 * replica on a peer that did not grant DISCARD, are written with zeroes
 * instead (vc_zero_entry()).
 *
 * Chunks are taken a window at a time: one DISCARD per peer and session
 * for the window's replicas there (at most the peer's max_batch handles
 * each), all sent before any reply is awaited.  A replica whose DISCARD
 * failed while another replica of its chunk was discarded is marked
 * stale, as for a write; a chunk discarded on no replica fails the call.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "virgo_client.h"

/* Chunks one window of a discard covers at most. */
#define VC_DISCARD_WINDOW	256

/* One replica of one chunk to discard; sorted by peer, epoch, handle. */
struct vc_discard_item {
	u32 peer_id;
	u32 epoch;
	u64 handle;
	u32 idx;	/* chunk index in the window */
	u8 replica;
};

/* One DISCARD request: items[first .. first + count) of the window. */
struct vc_discard_req {
	struct virgo_rpc *rpc;
	u32 first;
	u32 count;
	int err;
};

/**
 * struct vc_discard - one discard of whole chunks in progress
 * @vc: the client
 * @e: the allocation (a reference and its io_lock held shared)
 * @round: the deadline of the window's requests
 * @base: index in @e->chunks of the window's first chunk
 * @nr: chunks in the window
 * @items: replicas to discard, @nr_items of them
 * @nr_items: entries in @items
 * @reqs: requests of the window, @nr_reqs of them
 * @nr_reqs: entries in @reqs
 * @ok: per chunk of the window, replicas discarded
 * @failed: per chunk of the window, replicas that failed
 * @zero: chunks of the window to write zeroes to instead
 */
struct vc_discard {
	struct virgo_client *vc;
	struct virgo_xlat_entry *e;
	unsigned long round;
	u32 base;
	u32 nr;
	struct vc_discard_item items[VC_DISCARD_WINDOW * VIRGO_MAX_REPLICAS];
	u32 nr_items;
	struct vc_discard_req reqs[VC_DISCARD_WINDOW * VIRGO_MAX_REPLICAS];
	u32 nr_reqs;
	u8 ok[VC_DISCARD_WINDOW];
	u8 failed[VC_DISCARD_WINDOW];
	DECLARE_BITMAP(zero, VC_DISCARD_WINDOW);
};

static int vc_cmp_discard_item(const void *a, const void *b)
{
	const struct vc_discard_item *x = a, *y = b;

	if (x->peer_id != y->peer_id)
		return x->peer_id < y->peer_id ? -1 : 1;
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch ? -1 : 1;
	if (x->handle != y->handle)
		return x->handle < y->handle ? -1 : 1;
	return 0;
}

/* Does @peer_id take DISCARD now?  A hint: the send checks again. */
static bool vc_peer_discards(struct virgo_client *vc, u32 peer_id)
{
	struct virgo_peer *peer = virgo_peer_get(&vc->peers, peer_id);
	bool can;

	if (!peer)
		return false;
	can = READ_ONCE(peer->discard);
	virgo_peer_put(peer);
	return can;
}

/*
 * The window's replicas to discard into @d->items; a chunk with a (fresh)
 * replica on a peer that does not take DISCARD goes to @d->zero instead.
 */
static void vc_discard_collect(struct vc_discard *d)
{
	u32 i, r;

	d->nr_items = 0;
	bitmap_zero(d->zero, VC_DISCARD_WINDOW);
	memset(d->ok, 0, sizeof(d->ok));
	memset(d->failed, 0, sizeof(d->failed));
	for (i = 0; i < d->nr; i++) {
		const struct virgo_chunk *c = &d->e->chunks[d->base + i];
		u16 stale = READ_ONCE(c->stale);
		u32 first = d->nr_items;

		/* Every replica stale: lost; the write says so (-EIO). */
		if (hweight16(stale) >= c->nr_replicas)
			__set_bit(i, d->zero);
		for (r = 0; r < c->nr_replicas && !test_bit(i, d->zero); r++) {
			const struct virgo_replica *rep = &c->replicas[r];

			/* Stale: never read again; nothing to keep right. */
			if (stale & BIT(r))
				continue;
			if (!vc_peer_discards(d->vc, rep->peer_id)) {
				__set_bit(i, d->zero);
				d->nr_items = first;
				break;
			}
			d->items[d->nr_items++] = (struct vc_discard_item){
				.peer_id = rep->peer_id, .epoch = rep->epoch,
				.handle = rep->handle, .idx = i, .replica = r,
			};
		}
	}
	sort(d->items, d->nr_items, sizeof(d->items[0]), vc_cmp_discard_item,
	     NULL);
}

/* Send one DISCARD for @q's items; on error nothing was sent. */
static int vc_discard_send(struct vc_discard *d, struct vc_discard_req *q)
{
	const struct vc_discard_item *it = &d->items[q->first];
	u32 len = VIRGO_WIRE_BATCH_HDR_LEN + q->count * VIRGO_WIRE_HANDLE_LEN;
	struct virgo_peer *peer;
	int ret = -ENOMEM;
	void *p;
	u32 j;

	q->rpc = NULL;
	peer = virgo_peer_get(&d->vc->peers, it->peer_id);
	if (!peer)
		return -EIO;
	p = kmalloc(len, GFP_KERNEL);
	q->rpc = virgo_rpc_alloc(VIRGO_OP_DISCARD, NULL,
				 VIRGO_WIRE_DISCARD_REP_LEN,
				 VIRGO_WIRE_DISCARD_REP_LEN, GFP_KERNEL);
	if (p && q->rpc) {
		virgo_wire_put_batch_hdr(p, len, q->count,
					 VIRGO_WIRE_HANDLE_LEN);
		for (j = 0; j < q->count; j++)
			virgo_wire_set_handle(p, j, it[j].handle);
		q->rpc->count = q->count;
		q->rpc->deadline = d->round;
		/* Only into the session that gave the handles. */
		ret = virgo_rpc_send(peer, it->epoch, q->rpc, p, len, NULL, 0);
	}
	kfree(p);
	if (ret) {
		virgo_rpc_free(q->rpc);
		q->rpc = NULL;
	}
	virgo_peer_put(peer);
	return ret;
}

/* Wait for @q's reply (if it was sent); its result. */
static int vc_discard_wait(struct vc_discard_req *q, unsigned long deadline)
{
	int err;

	if (!q->rpc)
		return q->err;
	err = virgo_rpc_wait(q->rpc, deadline);
	/*
	 * Fewer than asked: the server skipped some (not the session's, or
	 * no budget to discard a chunk its queued replies still hold): the
	 * batch's chunks are written with zeroes instead, which fails for a
	 * handle that is really gone.
	 */
	if (!err && virgo_wire_discarded(q->rpc->data) != q->count)
		err = -EOPNOTSUPP;
	/* Sent only when granted: PROTO is the server's fault. */
	if (err == -EPROTONOSUPPORT)
		err = -EIO;
	if (!virgo_rpc_gone(err))
		virgo_rpc_free(q->rpc);
	q->rpc = NULL;
	return err;
}

/* @q's connection broke: once its session is back, send it again. */
static int vc_discard_resend(struct vc_discard *d, struct vc_discard_req *q,
			     int err)
{
	const struct vc_discard_item *it = &d->items[q->first];
	struct virgo_peer *peer;

	while (err == VIRGO_ERR_CONN_LOST && time_before(jiffies, d->round)) {
		peer = virgo_peer_get(&d->vc->peers, it->peer_id);
		if (!peer)
			return -EIO;
		err = virgo_peer_wait_session(peer, it->epoch, d->round);
		virgo_peer_put(peer);
		if (err)
			break;
		q->err = vc_discard_send(d, q);
		err = vc_discard_wait(q, d->round);
	}
	return err;
}

/* Send the window's DISCARDs: one per peer and epoch, max_batch each. */
static void vc_discard_send_all(struct vc_discard *d)
{
	u32 i = 0;

	d->nr_reqs = 0;
	while (i < d->nr_items) {
		const struct vc_discard_item *it = &d->items[i];
		struct virgo_peer *peer = virgo_peer_get(&d->vc->peers,
							 it->peer_id);
		u32 max = peer ? READ_ONCE(peer->lim.max_batch) : 1, n = 0;
		struct vc_discard_req *q = &d->reqs[d->nr_reqs++];

		if (peer)
			virgo_peer_put(peer);
		while (i + n < d->nr_items && n < max &&
		       it[n].peer_id == it->peer_id &&
		       it[n].epoch == it->epoch)
			n++;
		q->first = i;
		q->count = n;
		q->err = vc_discard_send(d, q);
		i += n;
	}
}

/*
 * Wait for the window's DISCARDs and note, per chunk, which replicas
 * were discarded and which failed; a peer that stopped taking DISCARD
 * (-EOPNOTSUPP at the send) or skipped some of a batch gets zeroes
 * written instead.
 */
static void vc_discard_wait_all(struct vc_discard *d, int *err0)
{
	u32 i, j;

	for (i = 0; i < d->nr_reqs; i++) {
		struct vc_discard_req *q = &d->reqs[i];
		int err = vc_discard_wait(q, d->round);

		err = vc_discard_resend(d, q, err);
		for (j = q->first; j < q->first + q->count; j++) {
			const struct vc_discard_item *it = &d->items[j];

			if (err == -EOPNOTSUPP)
				__set_bit(it->idx, d->zero);
			else if (err)
				d->failed[it->idx] |= BIT(it->replica);
			else
				d->ok[it->idx] |= BIT(it->replica);
		}
		if (err && err != -EOPNOTSUPP && !*err0)
			*err0 = err;
	}
}

/*
 * Discard the chunks of the window: returns 0, or the error of a chunk
 * that no replica discarded (the others are stale now: they missed a
 * change their chunk's other replicas got).
 */
static int vc_discard_window(struct vc_discard *d)
{
	int err0 = 0, ret = 0;
	u32 i;

	vc_discard_collect(d);
	vc_discard_send_all(d);
	vc_discard_wait_all(d, &err0);
	for (i = 0; i < d->nr; i++) {
		struct virgo_chunk *c = &d->e->chunks[d->base + i];

		if (test_bit(i, d->zero) || !d->failed[i])
			continue;
		if (d->ok[i])
			vc_chunk_mark_stale(d->vc, c, d->failed[i]);
		else if (!ret)
			ret = err0;
	}
	return ret;
}

/* What a failed DISCARD means to the caller (as for a write). */
static int vc_discard_errno(int err)
{
	if (err == -ENOENT || err == -ERANGE || err == -EPROTO ||
	    err == VIRGO_ERR_CONN_LOST)
		return -EIO;
	return err == -EBUSY ? -ETIMEDOUT : err;
}

/* The deadline of one window's requests. */
static unsigned long vc_discard_round(struct virgo_client *vc,
				      unsigned long deadline)
{
	unsigned long round = jiffies + msecs_to_jiffies(vc->rpc_timeout_ms);

	if (deadline && time_before(deadline, round))
		round = deadline;
	return round;
}

/* Write zeroes over the chunks of the window marked in @d->zero. */
static int vc_discard_zero_marked(struct vc_discard *d,
				  unsigned long deadline)
{
	u32 i;
	int ret;

	for_each_set_bit(i, d->zero, d->nr) {
		const struct virgo_chunk *c = &d->e->chunks[d->base + i];

		ret = vc_zero_entry(d->vc, d->e, d->e->va + c->offset, c->len,
				    deadline);
		if (ret)
			return ret;
	}
	return 0;
}

/* Discard chunks [@first, @end) of @e whole. */
static int vc_discard_chunks(struct vc_discard *d, u32 first, u32 end,
			     unsigned long deadline)
{
	int ret = 0;

	for (d->base = first; d->base < end && !ret; d->base += d->nr) {
		d->nr = min_t(u32, end - d->base, VC_DISCARD_WINDOW);
		if (deadline && time_after_eq(jiffies, deadline))
			return -ETIMEDOUT;
		d->round = vc_discard_round(d->vc, deadline);
		/* Replicas stay put while we use them (a repair waits). */
		ret = down_read_killable(&d->e->io_lock);
		if (ret)
			return ret;
		ret = vc_discard_window(d);
		up_read(&d->e->io_lock);
		if (ret)
			return vc_discard_errno(ret);
		/* Outside io_lock: the write takes it itself. */
		ret = vc_discard_zero_marked(d, deadline);
		cond_resched();
	}
	return ret;
}

/*
 * The part of [@off, @off + @len) of @e in chunks it does not cover
 * whole is written with zeroes; [*@first, *@end) are the chunks it does.
 */
static int vc_discard_edges(struct virgo_client *vc,
			    struct virgo_xlat_entry *e, u64 off, u64 len,
			    unsigned long deadline, u32 *first, u32 *end)
{
	int head = virgo_xlat_chunk_index(e, off);
	int tail = virgo_xlat_chunk_index(e, off + len - 1);
	const struct virgo_chunk *h, *t;
	u64 stop = off + len;
	int ret;

	if (head < 0 || tail < 0)
		return -EINVAL;
	h = &e->chunks[head];
	t = &e->chunks[tail];
	*first = head;
	*end = tail + 1;
	if (off != h->offset || (head == tail && stop != h->offset + h->len)) {
		u64 n = min_t(u64, stop, h->offset + h->len) - off;

		ret = vc_zero_entry(vc, e, e->va + off, n, deadline);
		if (ret)
			return ret;
		(*first)++;
	}
	if (tail != head && stop != t->offset + t->len) {
		ret = vc_zero_entry(vc, e, e->va + t->offset,
				    stop - t->offset, deadline);
		if (ret)
			return ret;
		(*end)--;
	}
	if (*first > *end)
		*first = *end;
	return 0;
}

/**
 * vc_discard() - make a range of an allocation read as zeroes, giving
 *	the memory of the chunks it covers back to their peers
 * @vc: the client
 * @addr: any VIRGO address inside the allocation
 * @owner: its owner cookie
 * @len: bytes; [addr, addr + len) must lie inside the allocation; 0
 *	checks @addr and @owner only
 * @deadline: jiffies after which the call gives up with -ETIMEDOUT, or 0
 *	for none but each round's rpc_timeout_ms
 *
 * Return: 0, -ENOENT, -EPERM, -EINVAL (range outside), -ENOMEM, -EIO (a
 * chunk was lost, or no replica of it could be discarded), -ETIMEDOUT,
 * -EINTR.  On error the range holds old bytes and zeroes.
 */
int vc_discard(struct virgo_client *vc, virgo_addr_t addr, const void *owner,
	       size_t len, unsigned long deadline)
{
	struct virgo_xlat_entry *e;
	struct vc_discard *d;
	u32 first, end;
	u64 off;
	int ret;

	might_sleep();
	e = virgo_xlat_get(&vc->table, addr);
	if (!e)
		return -ENOENT;
	ret = -EPERM;
	if (e->owner != owner)
		goto put;
	ret = 0;
	if (!len)
		goto put;
	off = addr - e->va;
	ret = -EINVAL;
	if (off >= e->size || len > e->size - off)
		goto put;
	ret = vc_discard_edges(vc, e, off, len, deadline, &first, &end);
	if (ret || first == end)
		goto put;
	ret = -ENOMEM;
	d = kvzalloc(sizeof(*d), GFP_KERNEL);
	if (!d)
		goto put;
	d->vc = vc;
	d->e = e;
	ret = vc_discard_chunks(d, first, end, deadline);
	kvfree(d);
put:
	virgo_xlat_put(e);
	return ret;
}
