// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the VIRGO address translation table.
 */

#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/vmstat.h>

#include "../virgo_xlat.h"

#define MIB	(1024ULL * 1024)

struct xlat_test_ctx {
	struct virgo_xlat xl;
};

static int xlat_test_init(struct kunit *test)
{
	struct xlat_test_ctx *ctx;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	virgo_xlat_init(&ctx->xl);
	test->priv = ctx;
	return 0;
}

static void xlat_test_exit(struct kunit *test)
{
	struct xlat_test_ctx *ctx = test->priv;

	virgo_xlat_destroy(&ctx->xl);
	kfree(ctx);
}

static struct virgo_xlat *xl_of(struct kunit *test)
{
	return &((struct xlat_test_ctx *)test->priv)->xl;
}

/*
 * Build an entry of @size bytes cut into chunks of @chunk bytes (the last
 * one shorter), chunk i on peer i + 1 with handle 1000 + i.
 */
static struct virgo_xlat_entry *make_entry(u64 size, u64 chunk)
{
	u32 nr = DIV_ROUND_UP_ULL(size, chunk), i;
	struct virgo_xlat_entry *e;

	e = virgo_xlat_entry_alloc(size, nr, GFP_KERNEL);
	if (IS_ERR(e))
		return e;
	for (i = 0; i < nr; i++) {
		e->chunks[i].offset = (u64)i * chunk;
		e->chunks[i].len = min_t(u64, chunk, size - (u64)i * chunk);
		e->chunks[i].nr_replicas = 1;
		e->chunks[i].replicas[0].peer_id = i + 1;
		e->chunks[i].replicas[0].handle = 1000 + i;
	}
	return e;
}

/* Insert an entry and return its address; fails the test on error. */
static virgo_addr_t insert_entry(struct kunit *test, u64 size, u64 chunk)
{
	struct virgo_xlat_entry *e = make_entry(size, chunk);

	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	KUNIT_ASSERT_EQ(test, virgo_xlat_insert(xl_of(test), e), 0);
	return e->va;
}

static bool addr_found_in(struct virgo_xlat *xl, virgo_addr_t addr)
{
	struct virgo_xlat_entry *e = virgo_xlat_get(xl, addr);

	if (!e)
		return false;
	virgo_xlat_put(e);
	return true;
}

static bool addr_found(struct kunit *test, virgo_addr_t addr)
{
	return addr_found_in(xl_of(test), addr);
}

static void xlat_test_first_insert_into_empty_table(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 4096, 4096);

	KUNIT_EXPECT_EQ(test, va, VIRGO_XLAT_VA_MIN);
	KUNIT_EXPECT_EQ(test, virgo_xlat_count(xl_of(test)), 1UL);
}

static void xlat_test_addresses_are_page_aligned_and_nonzero(struct kunit *test)
{
	static const u64 sizes[] = { 1, 7, 4095, 4096, 4097, 65536 + 3 };
	int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		virgo_addr_t va = insert_entry(test, sizes[i], 1024);

		KUNIT_EXPECT_NE(test, va, 0ULL);
		KUNIT_EXPECT_TRUE(test, PAGE_ALIGNED(va));
	}
}

static void xlat_test_size_zero_is_rejected(struct kunit *test)
{
	struct virgo_xlat_entry *e = virgo_xlat_entry_alloc(0, 1, GFP_KERNEL);

	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(e), -EINVAL);
}

static void xlat_test_huge_sizes_are_rejected(struct kunit *test)
{
	struct virgo_xlat_entry *e;

	e = virgo_xlat_entry_alloc(VIRGO_XLAT_MAX_SIZE + 1, 1, GFP_KERNEL);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(e), -EINVAL);
	e = virgo_xlat_entry_alloc(U64_MAX, 1, GFP_KERNEL);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(e), -EINVAL);
	e = virgo_xlat_entry_alloc(16, 17, GFP_KERNEL);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(e), -EINVAL);
	e = virgo_xlat_entry_alloc(16, 0, GFP_KERNEL);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(e), -EINVAL);
}

static void xlat_test_largest_size_is_accepted(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, VIRGO_XLAT_MAX_SIZE, SZ_1G);
	struct virgo_xlat_pos pos;

	KUNIT_ASSERT_EQ(test, virgo_xlat_lookup(xl_of(test),
						va + VIRGO_XLAT_MAX_SIZE - 1,
						&pos), 0);
	KUNIT_EXPECT_EQ(test, pos.chunk, pos.entry->nr_chunks - 1);
	KUNIT_EXPECT_EQ(test, pos.chunk_off, (u32)(SZ_1G - 1));
	virgo_xlat_put(pos.entry);
	KUNIT_EXPECT_EQ(test, virgo_xlat_bytes(xl_of(test)),
			VIRGO_XLAT_MAX_SIZE);
}

static void xlat_test_address_zero_is_not_found(struct kunit *test)
{
	struct virgo_xlat_pos pos;

	insert_entry(test, 4096, 4096);
	KUNIT_EXPECT_EQ(test, virgo_xlat_lookup(xl_of(test), 0, &pos),
			-ENOENT);
	KUNIT_EXPECT_PTR_EQ(test, virgo_xlat_remove(xl_of(test), 0, NULL),
			    ERR_PTR(-ENOENT));
}

static void xlat_test_first_byte_is_found(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 10000, 1000);
	struct virgo_xlat_pos pos;

	KUNIT_ASSERT_EQ(test, virgo_xlat_lookup(xl_of(test), va, &pos), 0);
	KUNIT_EXPECT_EQ(test, pos.entry->va, va);
	KUNIT_EXPECT_EQ(test, pos.chunk, 0U);
	KUNIT_EXPECT_EQ(test, pos.chunk_off, 0U);
	virgo_xlat_put(pos.entry);
}

static void xlat_test_last_byte_is_found(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 10001, 1000);
	struct virgo_xlat_pos pos;

	KUNIT_ASSERT_EQ(test, virgo_xlat_lookup(xl_of(test), va + 10000, &pos),
			0);
	KUNIT_EXPECT_EQ(test, pos.chunk, 10U);
	KUNIT_EXPECT_EQ(test, pos.chunk_off, 0U);
	KUNIT_EXPECT_EQ(test, pos.entry->chunks[10].len, 1U);
	virgo_xlat_put(pos.entry);
}

static void xlat_test_one_past_the_end_is_not_found(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 5000, 1000);

	KUNIT_EXPECT_TRUE(test, addr_found(test, va + 4999));
	KUNIT_EXPECT_FALSE(test, addr_found(test, va + 5000));
	/* Nor anywhere up to the next page-aligned start. */
	KUNIT_EXPECT_FALSE(test, addr_found(test, va + 8191));
	KUNIT_EXPECT_FALSE(test, addr_found(test, va - 1));
}

static void xlat_test_overrun_never_reaches_next_entry(struct kunit *test)
{
	virgo_addr_t a = insert_entry(test, 4096, 4096);
	virgo_addr_t b = insert_entry(test, 4096, 4096);

	/* A guard page sits between consecutive allocations. */
	KUNIT_EXPECT_GE(test, b, a + 4096 + VIRGO_XLAT_GUARD);
	KUNIT_EXPECT_FALSE(test, addr_found(test, a + 4096));
	KUNIT_EXPECT_FALSE(test, addr_found(test, b - 1));
}

static void xlat_test_lookup_between_entries_fails(struct kunit *test)
{
	virgo_addr_t a = insert_entry(test, 3 * 4096, 4096);
	virgo_addr_t b = insert_entry(test, 4096, 4096);
	virgo_addr_t c = insert_entry(test, 4096, 4096);
	struct virgo_xlat_entry *e;

	/* Free the middle one: its range must read as a hole. */
	e = virgo_xlat_remove(xl_of(test), b, NULL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	virgo_xlat_put(e);
	KUNIT_EXPECT_FALSE(test, addr_found(test, b));
	KUNIT_EXPECT_FALSE(test, addr_found(test, b + 100));
	KUNIT_EXPECT_TRUE(test, addr_found(test, a + 3 * 4096 - 1));
	KUNIT_EXPECT_TRUE(test, addr_found(test, c));
}

static void xlat_test_lookup_after_remove_fails(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 8192, 4096);
	struct virgo_xlat_entry *e;

	e = virgo_xlat_remove(xl_of(test), va, NULL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	KUNIT_EXPECT_EQ(test, e->va, va);
	virgo_xlat_put(e);
	KUNIT_EXPECT_FALSE(test, addr_found(test, va));
	KUNIT_EXPECT_FALSE(test, addr_found(test, va + 4096));
	KUNIT_EXPECT_EQ(test, virgo_xlat_count(xl_of(test)), 0UL);
	KUNIT_EXPECT_EQ(test, virgo_xlat_bytes(xl_of(test)), 0ULL);
}

static void xlat_test_double_remove_returns_enoent(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 4096, 4096);
	struct virgo_xlat_entry *e;

	e = virgo_xlat_remove(xl_of(test), va, NULL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	virgo_xlat_put(e);
	KUNIT_EXPECT_PTR_EQ(test, virgo_xlat_remove(xl_of(test), va, NULL),
			    ERR_PTR(-ENOENT));
}

static void xlat_test_remove_inside_allocation_is_einval(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 8192, 4096);

	KUNIT_EXPECT_PTR_EQ(test, virgo_xlat_remove(xl_of(test), va + 1, NULL),
			    ERR_PTR(-EINVAL));
	KUNIT_EXPECT_TRUE(test, addr_found(test, va));
}

static void xlat_test_remove_by_other_owner_is_eperm(struct kunit *test)
{
	struct virgo_xlat_entry *e = make_entry(4096, 4096);
	static const int owner_a, owner_b;

	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	e->owner = &owner_a;
	KUNIT_ASSERT_EQ(test, virgo_xlat_insert(xl_of(test), e), 0);
	KUNIT_EXPECT_PTR_EQ(test, virgo_xlat_remove(xl_of(test), e->va,
						    &owner_b),
			    ERR_PTR(-EPERM));
	KUNIT_EXPECT_PTR_EQ(test, virgo_xlat_remove(xl_of(test), e->va, NULL),
			    ERR_PTR(-EPERM));
	KUNIT_EXPECT_PTR_EQ(test, virgo_xlat_remove(xl_of(test), e->va,
						    &owner_a), e);
	virgo_xlat_put(e);
}

static void xlat_test_removed_entry_stays_valid_while_held(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 4096, 4096);
	struct virgo_xlat_entry *held, *e;

	held = virgo_xlat_get(xl_of(test), va);
	KUNIT_ASSERT_NOT_NULL(test, held);
	e = virgo_xlat_remove(xl_of(test), va, NULL);
	KUNIT_ASSERT_PTR_EQ(test, e, held);
	virgo_xlat_put(e);
	/* Still readable (KASAN would object otherwise). */
	KUNIT_EXPECT_EQ(test, held->size, 4096ULL);
	KUNIT_EXPECT_EQ(test, held->chunks[0].replicas[0].handle, 1000ULL);
	virgo_xlat_put(held);
}

struct walk_rec {
	u32 idx[16];
	u32 coff[16];
	u32 len[16];
	u64 buf_off[16];
	int n;
	int fail_at;
};

static int record_chunk(struct virgo_xlat_entry *e, u32 idx, u32 chunk_off,
			u32 len, u64 buf_off, void *arg)
{
	struct walk_rec *r = arg;

	if (r->n == r->fail_at)
		return -EIO;
	if (r->n >= ARRAY_SIZE(r->idx))
		return -E2BIG;
	r->idx[r->n] = idx;
	r->coff[r->n] = chunk_off;
	r->len[r->n] = len;
	r->buf_off[r->n] = buf_off;
	r->n++;
	return 0;
}

static void xlat_test_walk_crosses_chunk_boundaries(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 10000, 1000);
	struct walk_rec r = { .fail_at = -1 };
	struct virgo_xlat_entry *e = virgo_xlat_get(xl_of(test), va);

	KUNIT_ASSERT_NOT_NULL(test, e);
	/* Bytes 999..3000: the last byte of chunk 0 to the first of 3. */
	KUNIT_ASSERT_EQ(test, virgo_xlat_walk(e, va + 999, 2002, record_chunk,
					      &r), 0);
	KUNIT_ASSERT_EQ(test, r.n, 4);
	KUNIT_EXPECT_EQ(test, r.idx[0], 0U);
	KUNIT_EXPECT_EQ(test, r.coff[0], 999U);
	KUNIT_EXPECT_EQ(test, r.len[0], 1U);
	KUNIT_EXPECT_EQ(test, r.buf_off[0], 0ULL);
	KUNIT_EXPECT_EQ(test, r.idx[1], 1U);
	KUNIT_EXPECT_EQ(test, r.coff[1], 0U);
	KUNIT_EXPECT_EQ(test, r.len[1], 1000U);
	KUNIT_EXPECT_EQ(test, r.buf_off[1], 1ULL);
	KUNIT_EXPECT_EQ(test, r.idx[2], 2U);
	KUNIT_EXPECT_EQ(test, r.buf_off[2], 1001ULL);
	KUNIT_EXPECT_EQ(test, r.idx[3], 3U);
	KUNIT_EXPECT_EQ(test, r.coff[3], 0U);
	KUNIT_EXPECT_EQ(test, r.len[3], 1U);
	KUNIT_EXPECT_EQ(test, r.buf_off[3], 2001ULL);
	virgo_xlat_put(e);
}

static void xlat_test_walk_rejects_ranges_outside(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 10000, 1000);
	struct walk_rec r = { .fail_at = -1 };
	struct virgo_xlat_entry *e = virgo_xlat_get(xl_of(test), va);

	KUNIT_ASSERT_NOT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, virgo_xlat_walk(e, va, 10001, record_chunk, &r),
			-ERANGE);
	KUNIT_EXPECT_EQ(test, virgo_xlat_walk(e, va + 9999, 2, record_chunk,
					      &r), -ERANGE);
	KUNIT_EXPECT_EQ(test, virgo_xlat_walk(e, va + 1, U64_MAX, record_chunk,
					      &r), -ERANGE);
	KUNIT_EXPECT_EQ(test, virgo_xlat_walk(e, va - 1, 1, record_chunk, &r),
			-ERANGE);
	KUNIT_EXPECT_EQ(test, virgo_xlat_walk(e, U64_MAX, 1, record_chunk, &r),
			-ERANGE);
	KUNIT_EXPECT_EQ(test, r.n, 0);
	/* Zero bytes at the very end is an empty, valid range. */
	KUNIT_EXPECT_EQ(test, virgo_xlat_walk(e, va + 10000, 0, record_chunk,
					      &r), 0);
	KUNIT_EXPECT_EQ(test, r.n, 0);
	virgo_xlat_put(e);
}

static void xlat_test_walk_stops_on_callback_error(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 10000, 1000);
	struct walk_rec r = { .fail_at = 2 };
	struct virgo_xlat_entry *e = virgo_xlat_get(xl_of(test), va);

	KUNIT_ASSERT_NOT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, virgo_xlat_walk(e, va, 10000, record_chunk, &r),
			-EIO);
	KUNIT_EXPECT_EQ(test, r.n, 2);
	virgo_xlat_put(e);
}

struct chunk_index_case {
	const char *name;
	u64 size;
	u64 chunk;
	u64 off;
	int idx;
	u32 chunk_off;
};

static const struct chunk_index_case chunk_index_cases[] = {
	{ "first byte", 4096, 1024, 0, 0, 0 },
	{ "last byte of first chunk", 4096, 1024, 1023, 0, 1023 },
	{ "first byte of second chunk", 4096, 1024, 1024, 1, 0 },
	{ "middle", 4096, 1024, 2500, 2, 452 },
	{ "last byte", 4096, 1024, 4095, 3, 1023 },
	{ "one past the end", 4096, 1024, 4096, -ERANGE, 0 },
	{ "short last chunk", 4100, 1024, 4099, 4, 3 },
	{ "single chunk", 1, 1, 0, 0, 0 },
	{ "many chunks", 1000000, 7, 999999, 142857, 0 },
	{ "huge offset", 4096, 1024, U64_MAX, -ERANGE, 0 },
};

static void chunk_index_case_desc(const struct chunk_index_case *c,
				  char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(chunk_index, chunk_index_cases, chunk_index_case_desc);

static void xlat_test_chunk_index(struct kunit *test)
{
	const struct chunk_index_case *c = test->param_value;
	struct virgo_xlat_entry *e = make_entry(c->size, c->chunk);
	int idx;

	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	idx = virgo_xlat_chunk_index(e, c->off);
	KUNIT_EXPECT_EQ(test, idx, c->idx);
	if (idx >= 0)
		KUNIT_EXPECT_EQ(test, c->off - e->chunks[idx].offset,
				(u64)c->chunk_off);
	virgo_xlat_entry_free(e);
}

enum bad_chunks {
	BAD_GAP, BAD_OVERLAP, BAD_ZERO_LEN, BAD_SHORT, BAD_LONG,
	BAD_NO_REPLICA, BAD_TOO_MANY_REPLICAS, BAD_PEER_ZERO, BAD_SAME_PEER,
};

static const char *const bad_chunk_names[] = {
	"gap between chunks", "overlapping chunks", "zero-length chunk",
	"chunks short of the size", "chunks past the size", "no replica",
	"too many replicas", "peer id 0", "two replicas on one peer",
};

static void bad_chunk_desc(const enum bad_chunks *b, char *desc)
{
	strscpy(desc, bad_chunk_names[*b], KUNIT_PARAM_DESC_SIZE);
}

static const enum bad_chunks bad_chunk_cases[] = {
	BAD_GAP, BAD_OVERLAP, BAD_ZERO_LEN, BAD_SHORT, BAD_LONG,
	BAD_NO_REPLICA, BAD_TOO_MANY_REPLICAS, BAD_PEER_ZERO, BAD_SAME_PEER,
};

KUNIT_ARRAY_PARAM(bad_chunk, bad_chunk_cases, bad_chunk_desc);

static void xlat_test_malformed_chunk_list_is_rejected(struct kunit *test)
{
	const enum bad_chunks *b = test->param_value;
	struct virgo_xlat_entry *e = make_entry(4096, 1024);
	struct virgo_chunk *c;

	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	KUNIT_ASSERT_EQ(test, virgo_xlat_entry_check(e), 0);
	c = &e->chunks[1];
	switch (*b) {
	case BAD_GAP:
		c->offset++;
		break;
	case BAD_OVERLAP:
		c->offset--;
		break;
	case BAD_ZERO_LEN:
		e->chunks[3].len = 0;
		break;
	case BAD_SHORT:
		e->chunks[3].len--;
		break;
	case BAD_LONG:
		e->chunks[3].len++;
		break;
	case BAD_NO_REPLICA:
		c->nr_replicas = 0;
		break;
	case BAD_TOO_MANY_REPLICAS:
		c->nr_replicas = VIRGO_MAX_REPLICAS + 1;
		break;
	case BAD_PEER_ZERO:
		c->replicas[0].peer_id = 0;
		break;
	case BAD_SAME_PEER:
		c->nr_replicas = 2;
		c->replicas[1] = c->replicas[0];
		break;
	}
	KUNIT_EXPECT_EQ(test, virgo_xlat_insert(xl_of(test), e), -EINVAL);
	KUNIT_EXPECT_EQ(test, e->va, 0ULL);
	KUNIT_EXPECT_EQ(test, virgo_xlat_count(xl_of(test)), 0UL);
	virgo_xlat_entry_free(e);
}

static void xlat_test_counts_track_inserts_and_removes(struct kunit *test)
{
	virgo_addr_t va[8];
	u64 bytes = 0;
	int i;

	for (i = 0; i < ARRAY_SIZE(va); i++) {
		va[i] = insert_entry(test, 1000 * (i + 1), 512);
		bytes += 1000 * (i + 1);
	}
	KUNIT_EXPECT_EQ(test, virgo_xlat_count(xl_of(test)), 8UL);
	KUNIT_EXPECT_EQ(test, virgo_xlat_bytes(xl_of(test)), bytes);
	for (i = 0; i < ARRAY_SIZE(va); i += 2) {
		struct virgo_xlat_entry *e;

		e = virgo_xlat_remove(xl_of(test), va[i], NULL);
		KUNIT_ASSERT_FALSE(test, IS_ERR(e));
		bytes -= e->size;
		virgo_xlat_put(e);
	}
	KUNIT_EXPECT_EQ(test, virgo_xlat_count(xl_of(test)), 4UL);
	KUNIT_EXPECT_EQ(test, virgo_xlat_bytes(xl_of(test)), bytes);
}

static void xlat_test_freed_range_is_reused(struct kunit *test)
{
	virgo_addr_t a = insert_entry(test, 4096, 4096);
	struct virgo_xlat_entry *e;

	insert_entry(test, 4096, 4096);
	e = virgo_xlat_remove(xl_of(test), a, NULL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	virgo_xlat_put(e);
	/* The table does not leak address space. */
	KUNIT_EXPECT_EQ(test, insert_entry(test, 4096, 4096), a);
}

static void xlat_test_iteration_sees_every_entry_in_order(struct kunit *test)
{
	virgo_addr_t va[5], from = 0;
	struct virgo_xlat_entry *e;
	int i, n = 0;

	for (i = 0; i < ARRAY_SIZE(va); i++)
		va[i] = insert_entry(test, 4096 * (i + 1), 4096);
	while ((e = virgo_xlat_find_next(xl_of(test), &from))) {
		if (n < ARRAY_SIZE(va))
			KUNIT_EXPECT_EQ(test, e->va, va[n]);
		n++;
		virgo_xlat_put(e);
	}
	KUNIT_EXPECT_EQ(test, n, 5);
}

static int holder_thread(void *arg)
{
	struct virgo_xlat_entry *e = arg;

	msleep(50);
	virgo_xlat_put(e);
	return 0;
}

static void xlat_test_wait_unused_waits_for_readers(struct kunit *test)
{
	virgo_addr_t va = insert_entry(test, 4096, 4096);
	struct virgo_xlat_entry *held, *e;
	struct task_struct *t;
	ktime_t start;

	held = virgo_xlat_get(xl_of(test), va);
	KUNIT_ASSERT_NOT_NULL(test, held);
	e = virgo_xlat_remove(xl_of(test), va, NULL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	start = ktime_get();
	t = kthread_run(holder_thread, held, "xlat-holder");
	KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	virgo_xlat_wait_unused(e);
	KUNIT_EXPECT_GE(test, ktime_ms_delta(ktime_get(), start), 40LL);
	KUNIT_EXPECT_EQ(test, refcount_read(&e->ref), 1U);
	virgo_xlat_put(e);
}

#define STRESS_THREADS	4
#define STRESS_ROUNDS	3000

struct stress_arg {
	struct virgo_xlat *xl;
	struct completion done;
	int id;
	int errors;
	u64 seen;
};

/*
 * Each thread inserts, looks up and removes its own entries, and looks
 * up random addresses near the others'.  Every entry encodes its size in
 * its handles, so a lookup that finds a torn or freed entry shows up.
 */
static int stress_thread(void *data)
{
	struct stress_arg *a = data;
	virgo_addr_t mine[16] = { 0 };
	int round;

	for (round = 0; round < STRESS_ROUNDS; round++) {
		int slot = get_random_u32_below(ARRAY_SIZE(mine));
		struct virgo_xlat_entry *e;

		if (mine[slot]) {
			e = virgo_xlat_remove(a->xl, mine[slot], &a->id);
			if (IS_ERR(e)) {
				a->errors++;
			} else {
				virgo_xlat_wait_unused(e);
				virgo_xlat_put(e);
			}
			mine[slot] = 0;
		} else {
			u64 size = 1 + get_random_u32_below(5 * 4096);

			e = make_entry(size, 1024);
			if (IS_ERR(e)) {
				a->errors++;
				continue;
			}
			e->chunks[0].replicas[0].handle = size;
			e->owner = &a->id;
			if (virgo_xlat_insert(a->xl, e)) {
				virgo_xlat_entry_free(e);
				a->errors++;
				continue;
			}
			mine[slot] = e->va;
		}

		/* Probe a random address around some live range. */
		e = virgo_xlat_get(a->xl, VIRGO_XLAT_VA_MIN +
				   get_random_u32_below(64 * 6 * 4096));
		if (e) {
			if (e->chunks[0].replicas[0].handle != e->size &&
			    e->chunks[0].replicas[0].handle != 1000)
				a->errors++;
			a->seen++;
			virgo_xlat_put(e);
		}
		if (!(round % 64))
			cond_resched();
	}
	for (round = 0; round < ARRAY_SIZE(mine); round++) {
		struct virgo_xlat_entry *e;

		if (!mine[round])
			continue;
		e = virgo_xlat_remove(a->xl, mine[round], &a->id);
		if (IS_ERR(e))
			a->errors++;
		else
			virgo_xlat_put(e);
	}
	complete(&a->done);
	return 0;
}

static void xlat_test_concurrent_insert_lookup_remove(struct kunit *test)
{
	struct stress_arg *args;
	int i;

	args = kunit_kcalloc(test, STRESS_THREADS, sizeof(*args), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, args);
	for (i = 0; i < STRESS_THREADS; i++) {
		struct task_struct *t;

		args[i].xl = xl_of(test);
		args[i].id = i;
		init_completion(&args[i].done);
		t = kthread_run(stress_thread, &args[i], "xlat-stress-%d", i);
		KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		wait_for_completion(&args[i].done);
		KUNIT_EXPECT_EQ(test, args[i].errors, 0);
	}
	KUNIT_EXPECT_EQ(test, virgo_xlat_count(xl_of(test)), 0UL);
	KUNIT_EXPECT_EQ(test, virgo_xlat_bytes(xl_of(test)), 0ULL);
}

#define MILLION	1000000

/*
 * The million-entry suite shares one table, filled once by suite_init
 * (filling it is the slow part under KASAN and lockdep).  Only this
 * suite's cases touch it, one at a time.
 */
static struct virgo_xlat million_xl;
static virgo_addr_t *million_va;
static unsigned long million_slab_bytes;
static u64 million_fill_ns;

static unsigned long slab_bytes(void)
{
	return (global_node_page_state_pages(NR_SLAB_RECLAIMABLE_B) +
		global_node_page_state_pages(NR_SLAB_UNRECLAIMABLE_B)) *
		PAGE_SIZE;
}

static int xlat_million_suite_init(struct kunit_suite *suite)
{
	unsigned long slab_before;
	ktime_t start;
	int i;

	million_va = kvmalloc_array(MILLION, sizeof(*million_va), GFP_KERNEL);
	if (!million_va)
		return -ENOMEM;
	virgo_xlat_init(&million_xl);

	rcu_barrier();
	slab_before = slab_bytes();
	start = ktime_get();
	for (i = 0; i < MILLION; i++) {
		struct virgo_xlat_entry *e = make_entry(4096, 4096);

		if (IS_ERR(e))
			return PTR_ERR(e);
		if (virgo_xlat_insert(&million_xl, e)) {
			virgo_xlat_entry_free(e);
			return -ENOMEM;
		}
		million_va[i] = e->va;
		if (!(i % 1024))
			cond_resched();
	}
	million_fill_ns = ktime_to_ns(ktime_sub(ktime_get(), start));
	million_slab_bytes = slab_bytes() - min(slab_before, slab_bytes());
	return 0;
}

static void xlat_million_suite_exit(struct kunit_suite *suite)
{
	virgo_xlat_destroy(&million_xl);
	kvfree(million_va);
	million_va = NULL;
}

static void xlat_test_million_entries_all_found(struct kunit *test)
{
	int i, misses = 0, wrong = 0;

	KUNIT_ASSERT_EQ(test, virgo_xlat_count(&million_xl),
			(unsigned long)MILLION);
	for (i = 0; i < MILLION; i++) {
		struct virgo_xlat_pos pos;

		if (virgo_xlat_lookup(&million_xl, million_va[i] + (i % 4096),
				      &pos)) {
			misses++;
			continue;
		}
		if (pos.entry->va != million_va[i] ||
		    pos.chunk_off != i % 4096)
			wrong++;
		virgo_xlat_put(pos.entry);
	}
	KUNIT_EXPECT_EQ(test, misses, 0);
	KUNIT_EXPECT_EQ(test, wrong, 0);
}

static void xlat_test_benchmark_million_lookups(struct kunit *test)
{
	const int lookups = MILLION;
	u64 ns, per_sec;
	ktime_t start;
	int i, misses = 0;

	start = ktime_get();
	for (i = 0; i < lookups; i++) {
		u32 j = get_random_u32_below(MILLION);
		struct virgo_xlat_entry *e;

		e = virgo_xlat_get(&million_xl, million_va[j] + (j & 4095));
		if (!e)
			misses++;
		else
			virgo_xlat_put(e);
	}
	ns = max_t(u64, ktime_to_ns(ktime_sub(ktime_get(), start)), 1);
	per_sec = div64_u64((u64)lookups * NSEC_PER_SEC, ns);
	KUNIT_EXPECT_EQ(test, misses, 0);

	kunit_info(test,
		   "virgo_xlat benchmark: %d live entries, %llu lookups/s on one core (%llu ns/lookup), %llu inserts/s, table %lu bytes/entry (slab growth incl. debug-kernel overhead), entry %zu bytes + tree nodes\n",
		   MILLION, per_sec, div64_u64(ns, lookups),
		   div64_u64((u64)MILLION * NSEC_PER_SEC,
			     max_t(u64, million_fill_ns, 1)),
		   million_slab_bytes / MILLION,
		   struct_size((struct virgo_xlat_entry *)NULL, chunks, 1));
}

static void xlat_test_million_entries_all_removed(struct kunit *test)
{
	int i, misses = 0;

	for (i = 0; i < MILLION; i++) {
		struct virgo_xlat_entry *e;

		e = virgo_xlat_remove(&million_xl, million_va[i], NULL);
		if (IS_ERR(e)) {
			misses++;
			continue;
		}
		virgo_xlat_put(e);
		if (!(i % 1024))
			cond_resched();
	}
	KUNIT_EXPECT_EQ(test, misses, 0);
	KUNIT_EXPECT_EQ(test, virgo_xlat_count(&million_xl), 0UL);
	KUNIT_EXPECT_EQ(test, virgo_xlat_bytes(&million_xl), 0ULL);
	KUNIT_EXPECT_FALSE(test, addr_found_in(&million_xl, million_va[0]));
}

static struct kunit_case virgo_xlat_million_cases[] = {
	KUNIT_CASE(xlat_test_million_entries_all_found),
	KUNIT_CASE(xlat_test_benchmark_million_lookups),
	KUNIT_CASE(xlat_test_million_entries_all_removed),
	{}
};

static struct kunit_suite virgo_xlat_million_suite = {
	.name = "virgo_xlat_million",
	.suite_init = xlat_million_suite_init,
	.suite_exit = xlat_million_suite_exit,
	.test_cases = virgo_xlat_million_cases,
};

static struct kunit_case virgo_xlat_test_cases[] = {
	KUNIT_CASE(xlat_test_first_insert_into_empty_table),
	KUNIT_CASE(xlat_test_addresses_are_page_aligned_and_nonzero),
	KUNIT_CASE(xlat_test_size_zero_is_rejected),
	KUNIT_CASE(xlat_test_huge_sizes_are_rejected),
	KUNIT_CASE(xlat_test_largest_size_is_accepted),
	KUNIT_CASE(xlat_test_address_zero_is_not_found),
	KUNIT_CASE(xlat_test_first_byte_is_found),
	KUNIT_CASE(xlat_test_last_byte_is_found),
	KUNIT_CASE(xlat_test_one_past_the_end_is_not_found),
	KUNIT_CASE(xlat_test_overrun_never_reaches_next_entry),
	KUNIT_CASE(xlat_test_lookup_between_entries_fails),
	KUNIT_CASE(xlat_test_lookup_after_remove_fails),
	KUNIT_CASE(xlat_test_double_remove_returns_enoent),
	KUNIT_CASE(xlat_test_remove_inside_allocation_is_einval),
	KUNIT_CASE(xlat_test_remove_by_other_owner_is_eperm),
	KUNIT_CASE(xlat_test_removed_entry_stays_valid_while_held),
	KUNIT_CASE(xlat_test_walk_crosses_chunk_boundaries),
	KUNIT_CASE(xlat_test_walk_rejects_ranges_outside),
	KUNIT_CASE(xlat_test_walk_stops_on_callback_error),
	KUNIT_CASE_PARAM(xlat_test_chunk_index, chunk_index_gen_params),
	KUNIT_CASE_PARAM(xlat_test_malformed_chunk_list_is_rejected,
			 bad_chunk_gen_params),
	KUNIT_CASE(xlat_test_counts_track_inserts_and_removes),
	KUNIT_CASE(xlat_test_freed_range_is_reused),
	KUNIT_CASE(xlat_test_iteration_sees_every_entry_in_order),
	KUNIT_CASE(xlat_test_wait_unused_waits_for_readers),
	KUNIT_CASE(xlat_test_concurrent_insert_lookup_remove),
	{}
};

static struct kunit_suite virgo_xlat_test_suite = {
	.name = "virgo_xlat",
	.init = xlat_test_init,
	.exit = xlat_test_exit,
	.test_cases = virgo_xlat_test_cases,
};

kunit_test_suites(&virgo_xlat_test_suite, &virgo_xlat_million_suite);

MODULE_LICENSE("GPL");
