// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the virgo client against real virgo_clouddrec servers
 * on loopback.
 */

#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/net.h>
#include <linux/netdevice.h>
#include <linux/random.h>
#include <linux/rtnetlink.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/signal.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>
#include <net/net_namespace.h>
#include <net/sock.h>

#include "virgo_test_net.h"
#include "../virgo_api.h"
#include "../virgo_client.h"
#include "../virgo_clouddrec.h"
#include "../virgo_user.h"

#define NR_SERVERS	4
#define CHUNK		4096
#define SERVER_MEMORY	(8ULL * 1024 * 1024)

struct vc_test_ctx {
	struct clouddrec_server *srv[NR_SERVERS];
	struct virgo_client vc;
	bool vc_live;
	unsigned int replicas;
	unsigned int peer_dead_ms;
	unsigned int repair_period_ms;
	unsigned int queues;
	unsigned int chunk_size;
	unsigned int rpc_timeout_ms;
	u64 server_memory;
	const char *const *domains;
	unsigned int orphan_timeout_ms;
	bool ipv6;
	char peers[NR_SERVERS * VIRGO_PEER_SPEC_LEN];
};

static struct vc_test_ctx *vctx(struct kunit *test)
{
	return test->priv;
}

static struct virgo_client *vc_of(struct kunit *test)
{
	return &vctx(test)->vc;
}

static u64 lent_everywhere(struct kunit *test)
{
	u64 sum = 0;
	int i;

	for (i = 0; i < NR_SERVERS; i++)
		if (vctx(test)->srv[i])
			sum += clouddrec_server_lent_bytes(vctx(test)->srv[i]);
	return sum;
}

/* The servers' configuration in these tests, before any change. */
static void test_server_config(struct clouddrec_config *cfg, u64 memory)
{
	clouddrec_config_default(cfg);
	virgo_addr_set_v4(&cfg->addr, htonl(INADDR_LOOPBACK), 0);
	cfg->max_memory = memory;
	cfg->max_chunk = 65536;
	cfg->max_sessions = 16;
	cfg->io_timeout_ms = 2000;
	/*
	 * No RESUME unless a test asks for it (ctx->orphan_timeout_ms): a
	 * broken connection then ends its session, as the epoch tests need,
	 * and a client's chunks are freed the moment its connection ends.
	 */
	cfg->orphan_timeout_ms = 0;
}

static struct clouddrec_server *start_one(struct kunit *test, u64 memory,
					  const char *psk)
{
	struct clouddrec_config cfg;
	struct clouddrec_server *srv;

	test_server_config(&cfg, memory);
	cfg.orphan_timeout_ms = vctx(test)->orphan_timeout_ms;
	cfg.max_chunk = max(cfg.max_chunk, vctx(test)->chunk_size);
	if (vctx(test)->ipv6)
		KUNIT_ASSERT_EQ(test, virgo_addr_parse_host("::1", 3, 0,
							    &cfg.addr), 0);
	if (psk) {
		cfg.psk = psk;
		cfg.psk_len = strlen(psk);
	}
	srv = clouddrec_server_start(&cfg);
	KUNIT_ASSERT_FALSE(test, IS_ERR(srv));
	return srv;
}

/* Start @n servers and a client that knows them all. */
static void start_cluster(struct kunit *test, int n, const char *psk,
			  const char *client_psk)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct virgo_client_config cfg = {
		.peers = ctx->peers,
		.chunk_size = ctx->chunk_size ?: CHUNK,
		.connect_timeout_ms = 2000,
		.rpc_timeout_ms = ctx->rpc_timeout_ms ?: 3000,
		.replicas = ctx->replicas,
		.peer_dead_ms = ctx->peer_dead_ms,
		.repair_period_ms = ctx->repair_period_ms,
		.queues = ctx->queues,
	};
	int i, len = 0;

	for (i = 0; i < n; i++) {
		ctx->srv[i] = start_one(test,
					ctx->server_memory ?: SERVER_MEMORY,
					psk);
		len += scnprintf(ctx->peers + len, sizeof(ctx->peers) - len,
				 "%s%s:%u%s%s", i ? "," : "",
				 ctx->ipv6 ? "[::1]" : "127.0.0.1",
				 clouddrec_server_port(ctx->srv[i]),
				 ctx->domains ? "@" : "",
				 ctx->domains ? ctx->domains[i] : "");
	}
	if (client_psk) {
		cfg.psk = client_psk;
		cfg.psk_len = strlen(client_psk);
	}
	KUNIT_ASSERT_EQ(test, virgo_client_init(&ctx->vc, &cfg), 0);
	ctx->vc_live = true;
}

static int vc_test_suite_init(struct kunit_suite *suite)
{
	return virgo_test_lo_up();
}

static int vc_test_init(struct kunit *test)
{
	test->priv = kunit_kzalloc(test, sizeof(struct vc_test_ctx),
				   GFP_KERNEL);
	return test->priv ? 0 : -ENOMEM;
}

/* Servers' I/O works wait for it while clouddrec_test_io is set. */
static DECLARE_COMPLETION(hook_server_go);

static void vc_test_exit(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	int i;

	virgo_peer_test_pre_send = NULL;
	virgo_peer_test_rx = NULL;
	vc_test_free_nomem = false;
	if (clouddrec_test_io) {
		clouddrec_test_io = NULL;
		complete_all(&hook_server_go);
	}
	if (ctx->vc_live)
		virgo_client_destroy(&ctx->vc);
	for (i = 0; i < NR_SERVERS; i++)
		if (ctx->srv[i])
			clouddrec_server_stop(ctx->srv[i]);
}

static void vc_test_integrity_random_offsets(struct kunit *test)
{
	const size_t size = 10 * CHUNK + 123;
	u8 *ref = kunit_kzalloc(test, size, GFP_KERNEL);
	u8 *buf = kunit_kzalloc(test, size, GFP_KERNEL);
	virgo_addr_t va;
	int round;

	KUNIT_ASSERT_NOT_NULL(test, ref);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	start_cluster(test, NR_SERVERS, NULL, NULL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_EXPECT_NE(test, va, 0ULL);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), (u64)size);

	/* Fresh memory reads as zeroes. */
	KUNIT_ASSERT_EQ(test, vc_get(vc_of(test), va, NULL, buf, size), 0);
	KUNIT_EXPECT_TRUE(test, !memchr_inv(buf, 0, size));

	for (round = 0; round < 40; round++) {
		size_t off = get_random_u32_below(size);
		size_t len = 1 + get_random_u32_below(size - off);

		get_random_bytes(ref + off, len);
		KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va + off, NULL,
					     ref + off, len), 0);
		off = get_random_u32_below(size);
		len = 1 + get_random_u32_below(size - off);
		memset(buf, 0xa5, size);
		KUNIT_ASSERT_EQ(test, vc_get(vc_of(test), va + off, NULL,
					     buf, len), 0);
		KUNIT_ASSERT_EQ(test, memcmp(buf, ref + off, len), 0);
	}
	KUNIT_ASSERT_EQ(test, vc_get(vc_of(test), va, NULL, buf, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(buf, ref, size), 0);

	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

/* A source buffer of @kind (see below) for @len bytes; NULL if none. */
static u8 *vc_zc_buffer(int kind, size_t len, struct page **pages)
{
	*pages = NULL;
	switch (kind) {
	case 0:		/* kmalloc: slab up to 8 KiB, pages above */
		return kmalloc(len, GFP_KERNEL);
	case 1:		/* vmalloc */
		return vmalloc(len);
	default:	/* page allocator, not page-aligned */
		*pages = alloc_pages(GFP_KERNEL, get_order(len + 100));
		return *pages ? (u8 *)page_address(*pages) + 100 : NULL;
	}
}

static void vc_zc_buffer_free(int kind, u8 *buf, size_t len,
			      struct page *pages)
{
	if (kind == 0)
		kfree(buf);
	else if (kind == 1)
		vfree(buf);
	else
		__free_pages(pages, get_order(len + 100));
}

/*
 * WRITE data goes to the socket by page reference where the caller's
 * memory allows it (vmalloc, the page allocator, a large kmalloc) and is
 * copied where it does not (slab): from any of them, what is read back
 * is what was written (against a shadow copy); a buffer changed and freed
 * right after vc_set() changes nothing stored, and nothing is used after
 * it is freed (KASAN).
 */
static void vc_test_write_from_any_memory_matches_shadow(struct kunit *test)
{
	const size_t size = 16 * CHUNK;
	u8 *shadow = kunit_kzalloc(test, size, GFP_KERNEL);
	u8 *back = kunit_kzalloc(test, size, GFP_KERNEL);
	virgo_addr_t va;
	int round;

	KUNIT_ASSERT_NOT_NULL(test, shadow);
	KUNIT_ASSERT_NOT_NULL(test, back);
	start_cluster(test, 2, NULL, NULL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	for (round = 0; round < 30; round++) {
		size_t off = get_random_u32_below(size);
		size_t len = 1 + get_random_u32_below(size - off);
		int kind = round % 3;
		struct page *pages;
		u8 *src;

		/* Half the kmalloc rounds: a small buffer, slab for sure. */
		if (kind == 0 && round % 2)
			len = min_t(size_t, len, 3000);
		src = vc_zc_buffer(kind, len, &pages);
		KUNIT_ASSERT_NOT_NULL(test, src);
		get_random_bytes(src, len);
		memcpy(shadow + off, src, len);
		KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va + off, NULL, src,
					     len), 0);
		memset(src, 0x5a, len);
		vc_zc_buffer_free(kind, src, len, pages);

		memset(back, 0xa5, size);
		KUNIT_ASSERT_EQ(test, vc_get(vc_of(test), va, NULL, back,
					     size), 0);
		KUNIT_ASSERT_EQ(test, memcmp(back, shadow, size), 0);
	}
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vc_test_bad_arguments(struct kunit *test)
{
	virgo_addr_t va;
	u8 byte = 0;

	start_cluster(test, 1, NULL, NULL);
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), 0, NULL, &va), -EINVAL);
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), 1, NULL, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), SIZE_MAX, NULL, &va),
			-ENOMEM);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), 0, NULL, &byte, 1), -ENOENT);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), 0, NULL), -ENOENT);

	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 100, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va + 99, NULL, &byte, 2),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va + 100, NULL, &byte, 1),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, NULL, 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va + 1, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), -ENOENT);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, &byte, 1),
			-ENOENT);
}

static void vc_test_other_owner_refused(struct kunit *test)
{
	static const int me, other;
	virgo_addr_t va;
	u8 byte = 7;

	start_cluster(test, 1, NULL, NULL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 100, &me, &va), 0);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va, &other, &byte, 1),
			-EPERM);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, &byte, 1), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, &other), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_free_all(vc_of(test), &other, false), 0U);
	KUNIT_EXPECT_EQ(test, vc_free_all(vc_of(test), &me, false), 1U);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

/* Per-user owner cookies: one per uid, stable, never the kernel's NULL. */
static void vc_test_user_owner_per_uid(struct kunit *test)
{
	const void *a = virgo_user_owner(KUIDT_INIT(4242));
	const void *b = virgo_user_owner(KUIDT_INIT(4243));
	virgo_addr_t va;

	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(a));
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(b));
	KUNIT_EXPECT_PTR_NE(test, a, b);
	KUNIT_EXPECT_PTR_EQ(test, virgo_user_owner(KUIDT_INIT(4242)), a);

	start_cluster(test, 1, NULL, NULL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 100, a, &va), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, b), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, a), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vc_test_no_peers(struct kunit *test)
{
	struct virgo_client_config cfg = {
		.chunk_size = CHUNK, .connect_timeout_ms = 1000,
		.rpc_timeout_ms = 1000,
	};
	virgo_addr_t va;

	KUNIT_ASSERT_EQ(test, virgo_client_init(vc_of(test), &cfg), 0);
	vctx(test)->vc_live = true;
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), 1, NULL, &va), -ENODEV);
}

static void vc_test_chunks_spread_over_peers(struct kunit *test)
{
	virgo_addr_t va;
	int i;

	start_cluster(test, NR_SERVERS, NULL, NULL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 64 * CHUNK, NULL, &va),
			0);
	for (i = 0; i < NR_SERVERS; i++) {
		u64 lent = clouddrec_server_lent_bytes(vctx(test)->srv[i]);

		/* Power of two choices keeps every peer near 1/4. */
		KUNIT_EXPECT_GE(test, lent, 8ULL * CHUNK);
		KUNIT_EXPECT_LE(test, lent, 24ULL * CHUNK);
	}
}

static void vc_test_partial_failure_leaves_nothing(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct virgo_client other;
	struct virgo_client_config cfg = {
		.chunk_size = 65536, .connect_timeout_ms = 2000,
		.rpc_timeout_ms = 3000,
	};
	virgo_addr_t va, hog;
	char spec[24];

	start_cluster(test, 2, NULL, NULL);
	/* Connect the client to both peers while both report free room. */
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 2 * SERVER_MEMORY / 4,
					NULL, &va), 0);
	KUNIT_ASSERT_EQ(test, vc_free(vc_of(test), va, NULL), 0);

	/* Someone else now takes almost all of server 1. */
	snprintf(spec, sizeof(spec), "127.0.0.1:%u",
		 clouddrec_server_port(ctx->srv[1]));
	cfg.peers = spec;
	KUNIT_ASSERT_EQ(test, virgo_client_init(&other, &cfg), 0);
	KUNIT_ASSERT_EQ(test, vc_malloc(&other, SERVER_MEMORY - 65536, NULL,
					&hog), 0);

	/* Our stale view sends half to server 1: that ALLOC fails. */
	KUNIT_EXPECT_NE(test, vc_malloc(vc_of(test), SERVER_MEMORY, NULL, &va),
			0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv[0]), 0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv[1]),
			SERVER_MEMORY - 65536);
	KUNIT_EXPECT_EQ(test, virgo_xlat_count(&vc_of(test)->table), 0UL);
	virgo_client_destroy(&other);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vc_test_peer_gone_gives_eio(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	u8 *buf = kunit_kzalloc(test, 16 * CHUNK, GFP_KERNEL);
	virgo_addr_t va;
	unsigned long start;
	int ret;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	start_cluster(test, 2, NULL, NULL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 16 * CHUNK, NULL, &va),
			0);
	KUNIT_ASSERT_NE(test, clouddrec_server_lent_bytes(ctx->srv[1]), 0ULL);
	clouddrec_server_stop(ctx->srv[1]);
	ctx->srv[1] = NULL;

	start = jiffies;
	ret = vc_get(vc_of(test), va, NULL, buf, 16 * CHUNK);
	KUNIT_EXPECT_TRUE(test, ret == -EIO || ret == -ETIMEDOUT);
	KUNIT_EXPECT_LT(test, jiffies - start, msecs_to_jiffies(5000));
	/* The survivor still serves, and new allocations avoid the dead. */
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), 4 * CHUNK, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va, NULL, buf, 4 * CHUNK),
			0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

struct vc_reader {
	struct virgo_client *vc;
	virgo_addr_t va;
	size_t len;
	u8 *buf;
	struct completion done;
	int last_err;
	unsigned long failed_after;
	int rounds;
};

/* Read the allocation over and over until a read fails (or 30 s pass). */
static int vc_reader_fn(void *data)
{
	struct vc_reader *r = data;
	unsigned long end = jiffies + 30 * HZ;

	while (time_before(jiffies, end)) {
		r->last_err = vc_get(r->vc, r->va, NULL, r->buf, r->len);
		r->rounds++;
		if (r->last_err)
			break;
	}
	r->failed_after = jiffies;
	complete(&r->done);
	return 0;
}

static void vc_test_peer_dies_mid_operation(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct vc_reader r = { .len = 32 * CHUNK };
	unsigned long stopped;
	int i;

	r.buf = kunit_kzalloc(test, r.len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r.buf);
	start_cluster(test, 2, NULL, NULL);
	r.vc = vc_of(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(r.vc, r.len, NULL, &r.va), 0);
	init_completion(&r.done);
	KUNIT_ASSERT_FALSE(test, IS_ERR(kthread_run(vc_reader_fn, &r,
						    "vc-reader")));
	/* Two whole reads first (a loaded machine needs more than 200 ms). */
	for (i = 0; i < 500 && READ_ONCE(r.rounds) < 2; i++)
		msleep(20);
	clouddrec_server_stop(ctx->srv[1]);
	ctx->srv[1] = NULL;
	stopped = jiffies;
	/* The reader fails within the RPC timeout, never hangs. */
	KUNIT_ASSERT_TRUE(test, wait_for_completion_timeout(&r.done,
							    10 * HZ));
	KUNIT_EXPECT_TRUE(test, r.last_err == -EIO ||
			  r.last_err == -ETIMEDOUT);
	KUNIT_EXPECT_LE(test, (long)(r.failed_after - stopped),
			(long)msecs_to_jiffies(3000 + 500));
	KUNIT_EXPECT_GT(test, r.rounds, 1);
	KUNIT_EXPECT_EQ(test, vc_free(r.vc, r.va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vc_test_auth_key_checked(struct kunit *test)
{
	virgo_addr_t va;

	start_cluster(test, 1, "the key", "not the key");
	KUNIT_EXPECT_NE(test, vc_malloc(vc_of(test), 10, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vc_test_auth_right_key(struct kunit *test)
{
	virgo_addr_t va;

	start_cluster(test, 2, "the key", "the key");
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), 3 * CHUNK, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va, NULL, "abc", 3), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
}

static void vc_test_peer_del_refused_while_used(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	virgo_addr_t va;
	char spec[24];

	start_cluster(test, 1, NULL, NULL);
	snprintf(spec, sizeof(spec), "127.0.0.1:%u",
		 clouddrec_server_port(ctx->srv[0]));
	KUNIT_EXPECT_EQ(test, virgo_peer_add(&vc_of(test)->peers, spec),
			-EEXIST);
	KUNIT_EXPECT_EQ(test, virgo_peer_add(&vc_of(test)->peers, "1.2.3"),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_peer_add(&vc_of(test)->peers,
					     "127.0.0.1:0"), -EINVAL);
	/* One peer a line: anything after it is refused, not ignored. */
	KUNIT_EXPECT_EQ(test, virgo_peer_add(&vc_of(test)->peers,
					     " 127.0.0.2:7 junk\n"), -EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers,
					     "127.0.0.1:1 junk"), -EINVAL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 100, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec),
			-EBUSY);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec), 0);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), 100, NULL, &va), -ENODEV);
}

/*
 * Peers given as [::1]:port (with failure domains): names, lookups by any
 * spelling of the address, data over IPv6, del.
 */
static void vc_test_ipv6_peers(struct kunit *test)
{
	static const char *const domains[] = { "r1", "r2" };
	struct vc_test_ctx *ctx = vctx(test);
	const size_t size = 10 * CHUNK + 5;
	char spec[VIRGO_PEER_SPEC_LEN], want[VIRGO_PEER_SPEC_LEN];
	struct virgo_peer *peer;
	u8 *ref, *buf;
	virgo_addr_t va;
	u16 port;

	ref = kunit_kmalloc(test, size, GFP_KERNEL);
	buf = kunit_kzalloc(test, size, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ref);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	ctx->ipv6 = true;
	ctx->domains = domains;
	start_cluster(test, 2, NULL, NULL);
	port = clouddrec_server_port(ctx->srv[0]);

	peer = virgo_peer_get(&vc_of(test)->peers, 1);
	KUNIT_ASSERT_NOT_NULL(test, peer);
	snprintf(want, sizeof(want), "[::1]:%u", port);
	KUNIT_EXPECT_STREQ(test, peer->name, want);
	KUNIT_EXPECT_STREQ(test, peer->domain, "r1");
	KUNIT_EXPECT_EQ(test, peer->addr.sa.sa_family, AF_INET6);
	virgo_peer_put(peer);

	/* The same endpoint spelled otherwise is the same peer. */
	snprintf(spec, sizeof(spec), "[0:0:0:0:0:0:0:1]:%u@r9", port);
	KUNIT_EXPECT_EQ(test, virgo_peer_add(&vc_of(test)->peers, spec),
			-EEXIST);
	snprintf(spec, sizeof(spec), "::1:%u", port);
	KUNIT_EXPECT_EQ(test, virgo_peer_add(&vc_of(test)->peers, spec),
			-EINVAL);
	snprintf(spec, sizeof(spec), "[fe80::1%%lo]:%u", port);
	KUNIT_EXPECT_EQ(test, virgo_peer_add(&vc_of(test)->peers, spec),
			-EINVAL);
	/* 127.0.0.1 is another host. */
	snprintf(spec, sizeof(spec), "127.0.0.1:%u", port);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec),
			-ENOENT);

	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_EXPECT_GT(test, clouddrec_server_lent_bytes(ctx->srv[0]), 0ULL);
	KUNIT_EXPECT_GT(test, clouddrec_server_lent_bytes(ctx->srv[1]), 0ULL);
	get_random_bytes(ref, size);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va, NULL, ref, size), 0);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, buf, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ref, buf, size), 0);

	snprintf(spec, sizeof(spec), " [::1]:%u\n", port);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec),
			-EBUSY);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec), 0);
	KUNIT_EXPECT_EQ(test, vc_of(test)->peers.nr, 1U);
}

struct vc_worker {
	struct kunit *test;
	struct completion done;
	int errors;
};

static int vc_worker_fn(void *data)
{
	struct vc_worker *w = data;
	struct virgo_client *vc = vc_of(w->test);
	u8 *a = kmalloc(3 * CHUNK, GFP_KERNEL), *b = kmalloc(3 * CHUNK,
							      GFP_KERNEL);
	int i;

	for (i = 0; a && b && i < 20; i++) {
		size_t size = 1 + get_random_u32_below(3 * CHUNK);
		virgo_addr_t va;

		if (vc_malloc(vc, size, NULL, &va)) {
			w->errors++;
			continue;
		}
		get_random_bytes(a, size);
		if (vc_set(vc, va, NULL, a, size) ||
		    vc_get(vc, va, NULL, b, size) || memcmp(a, b, size))
			w->errors++;
		if (vc_free(vc, va, NULL))
			w->errors++;
	}
	if (!a || !b)
		w->errors++;
	kfree(a);
	kfree(b);
	complete(&w->done);
	return 0;
}

static void vc_test_concurrent_users(struct kunit *test)
{
	struct vc_worker w[4];
	int i;

	start_cluster(test, NR_SERVERS, NULL, NULL);
	for (i = 0; i < ARRAY_SIZE(w); i++) {
		w[i].test = test;
		w[i].errors = 0;
		init_completion(&w[i].done);
		KUNIT_ASSERT_FALSE(test, IS_ERR(kthread_run(vc_worker_fn, &w[i],
							    "vc-worker-%d",
							    i)));
	}
	for (i = 0; i < ARRAY_SIZE(w); i++) {
		wait_for_completion(&w[i].done);
		KUNIT_EXPECT_EQ(test, w[i].errors, 0);
	}
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vc_test_destroy_frees_remote_memory(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	virgo_addr_t va;
	int i;

	start_cluster(test, NR_SERVERS, NULL, NULL);
	for (i = 0; i < 5; i++)
		KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 7 * CHUNK + i,
						NULL, &va), 0);
	KUNIT_EXPECT_GT(test, lent_everywhere(test), 0ULL);
	virgo_client_destroy(&ctx->vc);
	ctx->vc_live = false;
	/* FREEs were answered before destroy returned. */
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	for (i = 0; i < NR_SERVERS; i++) {
		u64 chunks = clouddrec_server_lent_chunks(ctx->srv[i]);

		KUNIT_EXPECT_EQ(test, chunks, 0ULL);
	}
}

#define MANY_PEERS	1000

/* 1000 peers 127.0.0.1 ... 127.0.4.x, all one server listening on any. */
static void vc_test_thousand_peers(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct virgo_client_config cfg = {
		.chunk_size = CHUNK, .connect_timeout_ms = 5000,
		.rpc_timeout_ms = 20000,
	};
	const size_t size = 2 * MANY_PEERS * CHUNK;
	struct clouddrec_config scfg;
	struct virgo_xlat_entry *e;
	u16 *per_peer;
	u8 *buf;
	virgo_addr_t va;
	u32 i, used = 0, most = 0;
	u16 port;

	per_peer = kunit_kcalloc(test, MANY_PEERS + 1, sizeof(*per_peer),
				 GFP_KERNEL);
	buf = kunit_kmalloc(test, 3 * CHUNK, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, per_peer);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	clouddrec_config_default(&scfg);
	scfg.max_memory = 64ULL << 20;
	scfg.max_sessions = MANY_PEERS + 8;
	/* Every connection comes from 127.0.0.1. */
	scfg.max_sessions_per_addr = MANY_PEERS + 8;
	ctx->srv[0] = clouddrec_server_start(&scfg);
	KUNIT_ASSERT_FALSE(test, IS_ERR(ctx->srv[0]));
	port = clouddrec_server_port(ctx->srv[0]);

	KUNIT_ASSERT_EQ(test, virgo_client_init(&ctx->vc, &cfg), 0);
	ctx->vc_live = true;
	for (i = 0; i < MANY_PEERS; i++) {
		char spec[24];

		snprintf(spec, sizeof(spec), "127.0.%u.%u:%u", i / 250,
			 i % 250 + 1, port);
		KUNIT_ASSERT_EQ(test, virgo_peer_add(&ctx->vc.peers, spec), 0);
	}

	KUNIT_ASSERT_EQ(test, vc_malloc(&ctx->vc, size, NULL, &va), 0);
	e = virgo_xlat_get(&ctx->vc.table, va);
	KUNIT_ASSERT_NOT_NULL(test, e);
	for (i = 0; i < e->nr_chunks; i++) {
		u32 id = e->chunks[i].replicas[0].peer_id;

		KUNIT_ASSERT_LE(test, id, (u32)MANY_PEERS);
		if (!per_peer[id]++)
			used++;
		most = max_t(u32, most, per_peer[id]);
	}
	virgo_xlat_put(e);
	kunit_info(test, "%u chunks on %u of %u peers, at most %u on one\n",
		   2 * MANY_PEERS, used, MANY_PEERS, most);
	/* Two choices per chunk: most peers used, none overloaded. */
	KUNIT_EXPECT_GE(test, used, (u32)MANY_PEERS / 2);
	KUNIT_EXPECT_LE(test, most, 8U);
	KUNIT_EXPECT_GE(test, clouddrec_server_sessions(ctx->srv[0]), used);

	get_random_bytes(buf, 3 * CHUNK);
	KUNIT_EXPECT_EQ(test, vc_set(&ctx->vc, va + size / 2 - CHUNK, NULL,
				     buf, 3 * CHUNK), 0);
	memset(buf + 3 * CHUNK / 2, 0, 3 * CHUNK / 2);
	KUNIT_EXPECT_EQ(test, vc_get(&ctx->vc, va + size / 2 - CHUNK / 2,
				     NULL, buf + 3 * CHUNK / 2, CHUNK), 0);
	KUNIT_EXPECT_EQ(test, memcmp(buf + CHUNK / 2, buf + 3 * CHUNK / 2,
				     CHUNK), 0);
	KUNIT_EXPECT_EQ(test, vc_free(&ctx->vc, va, NULL), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv[0]), 0ULL);
}

/* ---- virgo_discard() ------------------------------------------------- */

static void start_custom(struct kunit *test, struct clouddrec_config *scfg);

/* Bytes of chunk memory the servers hold (written, not discarded). */
static u64 materialised_everywhere(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	u64 sum = 0;
	int i;

	for (i = 0; i < NR_SERVERS; i++)
		if (ctx->srv[i])
			sum += clouddrec_server_materialised_bytes(ctx->srv[i]);
	return sum;
}

/* Allocate @nr chunks, fill them from a random @shadow: their address. */
static virgo_addr_t discard_setup(struct kunit *test, u8 **shadow, u32 nr)
{
	virgo_addr_t va;

	*shadow = kunit_kmalloc(test, nr * CHUNK, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, *shadow);
	get_random_bytes(*shadow, nr * CHUNK);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), nr * CHUNK, NULL, &va),
			0);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, *shadow,
				     nr * CHUNK), 0);
	return va;
}

/* The allocation reads back as the shadow, byte for byte. */
static void expect_shadow(struct kunit *test, virgo_addr_t va,
			  const u8 *shadow, u32 len)
{
	u8 *got = kunit_kmalloc(test, len, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, got);
	KUNIT_ASSERT_EQ(test, vc_get(vc_of(test), va, NULL, got, len), 0);
	KUNIT_EXPECT_EQ(test, memcmp(got, shadow, len), 0);
	kunit_kfree(test, got);
}

/*
 * A range with partial chunks at both ends reads as zeroes, the rest
 * keeps its bytes; the chunks it covers whole give their memory back,
 * stay allocated, and are written again like fresh ones.
 */
static void vc_test_discard_zeroes_range_frees_whole_chunks(struct kunit *test)
{
	const u32 nr = 16, start = CHUNK + 100, end = 9 * CHUNK + 7;
	struct virgo_client *vc = vc_of(test);
	virgo_addr_t va;
	u8 *shadow;

	start_cluster(test, 3, NULL, NULL);
	va = discard_setup(test, &shadow, nr);
	KUNIT_EXPECT_EQ(test, materialised_everywhere(test), (u64)nr * CHUNK);
	KUNIT_ASSERT_EQ(test, vc_discard(vc, va + start, NULL, end - start,
					 0), 0);
	memset(shadow + start, 0, end - start);
	expect_shadow(test, va, shadow, nr * CHUNK);
	/* Chunks 2..8 went whole; 1 and 9 were zeroed in part. */
	KUNIT_EXPECT_EQ(test, materialised_everywhere(test),
			(u64)(nr - 7) * CHUNK);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), (u64)nr * CHUNK);

	/* Inside one chunk: zeroes written, no memory given back. */
	KUNIT_ASSERT_EQ(test, vc_discard(vc, va + 12 * CHUNK + 5, NULL, 10, 0),
			0);
	memset(shadow + 12 * CHUNK + 5, 0, 10);
	/* Written again after a discard: as a fresh chunk. */
	get_random_bytes(shadow + 3 * CHUNK + 10, 20);
	KUNIT_ASSERT_EQ(test, vc_set(vc, va + 3 * CHUNK + 10, NULL,
				     shadow + 3 * CHUNK + 10, 20), 0);
	expect_shadow(test, va, shadow, nr * CHUNK);
	KUNIT_EXPECT_EQ(test, materialised_everywhere(test),
			(u64)(nr - 6) * CHUNK);

	/* The whole allocation, and the arguments a caller gets wrong. */
	KUNIT_EXPECT_EQ(test, vc_discard(vc, va, NULL, nr * CHUNK, 0), 0);
	KUNIT_EXPECT_EQ(test, materialised_everywhere(test), 0ULL);
	KUNIT_EXPECT_EQ(test, vc_discard(vc, va, NULL, 0, 0), 0);
	KUNIT_EXPECT_EQ(test, vc_discard(vc, va + CHUNK, NULL, nr * CHUNK, 0),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, vc_discard(vc, va, vc, CHUNK, 0), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_discard(vc, va - 4096, NULL, CHUNK, 0),
			-ENOENT);
	memset(shadow, 0, nr * CHUNK);
	expect_shadow(test, va, shadow, nr * CHUNK);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

/*
 * A free that finds no memory to free the whole allocation at once goes
 * through the client's reserve, a few chunks at a time: every replica of
 * every chunk is given back.  (It failed with -ENOMEM once the allocation
 * had left the table: nothing could free its chunks any more.)
 */
static void vc_test_free_without_memory_frees_every_chunk(struct kunit *test)
{
	const size_t size = 40 * CHUNK + 5;
	u8 *data = kunit_kmalloc(test, size, GFP_KERNEL);
	virgo_addr_t va;

	KUNIT_ASSERT_NOT_NULL(test, data);
	vctx(test)->replicas = 2;
	start_cluster(test, 3, NULL, NULL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	get_random_bytes(data, size);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 2ULL * size);
	vc_test_free_nomem = true;
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	vc_test_free_nomem = false;
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), -ENOENT);
	/* The reserve is there for the next one. */
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	vc_test_free_nomem = true;
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	vc_test_free_nomem = false;
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

/* With two replicas, every replica of a chunk gives its memory back. */
static void vc_test_discard_reaches_every_replica(struct kunit *test)
{
	virgo_addr_t va;
	u8 *shadow;

	vctx(test)->replicas = 2;
	start_cluster(test, 3, NULL, NULL);
	va = discard_setup(test, &shadow, 8);
	KUNIT_EXPECT_EQ(test, materialised_everywhere(test), 2ULL * 8 * CHUNK);
	KUNIT_ASSERT_EQ(test, vc_discard(vc_of(test), va + 2 * CHUNK, NULL,
					 4 * CHUNK, 0), 0);
	KUNIT_EXPECT_EQ(test, materialised_everywhere(test), 2ULL * 4 * CHUNK);
	memset(shadow + 2 * CHUNK, 0, 4 * CHUNK);
	expect_shadow(test, va, shadow, 8 * CHUNK);
	KUNIT_EXPECT_EQ(test, atomic64_read(&vc_of(test)->stale_replicas), 0);
}

/*
 * A server that does not grant DISCARD gets zeroes written instead: the
 * range reads as zeroes all the same, nothing is given back.
 */
static void vc_test_discard_without_capability_writes_zeroes(struct kunit *test)
{
	struct clouddrec_config scfg;
	struct virgo_peer *peer;
	virgo_addr_t va;
	u8 *shadow;
	u64 served;

	test_server_config(&scfg, SERVER_MEMORY);
	scfg.discard = false;
	start_custom(test, &scfg);
	va = discard_setup(test, &shadow, 8);
	peer = virgo_peer_get(&vc_of(test)->peers, 1);
	KUNIT_ASSERT_NOT_NULL(test, peer);
	KUNIT_EXPECT_FALSE(test, READ_ONCE(peer->discard));
	virgo_peer_put(peer);
	served = clouddrec_server_stat(vctx(test)->srv[0],
				       CD_STAT_ERR_SEQUENCE);
	KUNIT_ASSERT_EQ(test, vc_discard(vc_of(test), va + 100, NULL,
					 6 * CHUNK, 0), 0);
	memset(shadow + 100, 0, 6 * CHUNK);
	expect_shadow(test, va, shadow, 8 * CHUNK);
	KUNIT_EXPECT_EQ(test, materialised_everywhere(test), 8ULL * CHUNK);
	/* Never sent an opcode it was not granted. */
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(vctx(test)->srv[0],
						    CD_STAT_ERR_SEQUENCE),
			served);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(vctx(test)->srv[0],
						    CD_STAT_CHUNKS_DISCARDED),
			0ULL);
}

static struct kunit_case virgo_client_test_cases[] = {
	KUNIT_CASE(vc_test_integrity_random_offsets),
	KUNIT_CASE(vc_test_write_from_any_memory_matches_shadow),
	KUNIT_CASE(vc_test_bad_arguments),
	KUNIT_CASE(vc_test_other_owner_refused),
	KUNIT_CASE(vc_test_user_owner_per_uid),
	KUNIT_CASE(vc_test_no_peers),
	KUNIT_CASE(vc_test_chunks_spread_over_peers),
	KUNIT_CASE(vc_test_partial_failure_leaves_nothing),
	KUNIT_CASE(vc_test_peer_gone_gives_eio),
	KUNIT_CASE(vc_test_peer_dies_mid_operation),
	KUNIT_CASE(vc_test_auth_key_checked),
	KUNIT_CASE(vc_test_auth_right_key),
	KUNIT_CASE(vc_test_peer_del_refused_while_used),
	KUNIT_CASE(vc_test_ipv6_peers),
	KUNIT_CASE(vc_test_concurrent_users),
	KUNIT_CASE(vc_test_destroy_frees_remote_memory),
	KUNIT_CASE(vc_test_thousand_peers),
	KUNIT_CASE(vc_test_discard_zeroes_range_frees_whole_chunks),
	KUNIT_CASE(vc_test_discard_reaches_every_replica),
	KUNIT_CASE(vc_test_free_without_memory_frees_every_chunk),
	KUNIT_CASE(vc_test_discard_without_capability_writes_zeroes),
	{}
};

static struct kunit_suite virgo_client_test_suite = {
	.name = "virgo_client",
	.suite_init = vc_test_suite_init,
	.init = vc_test_init,
	.exit = vc_test_exit,
	.test_cases = virgo_client_test_cases,
};

/* ---- faults: sessions, slots, backoff, removal ----------------------- */

/* The case the hooks act for, and what they do (one hook fires at once). */
static struct kunit *hook_test;
static atomic_t hook_armed;
static u8 hook_opcode;
static unsigned int hook_stall_ms;
static virgo_addr_t hook_other;
static const u8 *hook_other_data;
static size_t hook_other_len;
static u64 hook_requests;

/* One server configured by @scfg and a client of it. */
static void start_custom(struct kunit *test, struct clouddrec_config *scfg)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct virgo_client_config cfg = {
		.peers = ctx->peers,
		.chunk_size = CHUNK,
		.connect_timeout_ms = 2000,
		.rpc_timeout_ms = 3000,
	};

	ctx->srv[0] = clouddrec_server_start(scfg);
	KUNIT_ASSERT_FALSE(test, IS_ERR(ctx->srv[0]));
	snprintf(ctx->peers, sizeof(ctx->peers), "127.0.0.1:%u",
		 clouddrec_server_port(ctx->srv[0]));
	KUNIT_ASSERT_EQ(test, virgo_client_init(&ctx->vc, &cfg), 0);
	ctx->vc_live = true;
}

/* Peer 1 of the client, with a reference. */
static struct virgo_peer *first_peer(struct kunit *test)
{
	struct virgo_peer *peer = virgo_peer_get(&vc_of(test)->peers, 1);

	KUNIT_ASSERT_NOT_NULL(test, peer);
	return peer;
}

static u64 requests_served(struct kunit *test)
{
	return clouddrec_server_stat(vctx(test)->srv[0], CD_STAT_REQUESTS);
}

/* Break @peer's connection and make a new one: a new server session. */
static void reconnect(struct kunit *test, struct virgo_peer *peer)
{
	unsigned long end = jiffies + 3 * HZ;
	u32 epoch = READ_ONCE(peer->epoch);

	mutex_lock(&peer->conn_lock);
	if (peer->sock)
		kernel_sock_shutdown(peer->sock, SHUT_RDWR);
	mutex_unlock(&peer->conn_lock);
	while (READ_ONCE(peer->state) == VIRGO_PEER_UP &&
	       time_before(jiffies, end))
		usleep_range(5000, 10000);
	KUNIT_EXPECT_EQ(test, virgo_peer_connect(peer), 0);
	KUNIT_EXPECT_NE(test, READ_ONCE(peer->epoch), epoch);
}

/*
 * Fires once, right before a request takes the connection lock: the
 * connection is replaced by a new session and another allocation is made
 * and written there (its handles may equal those the request carries).
 */
static int hook_other_ret;
static DECLARE_COMPLETION(hook_other_done);

/* The other allocation, made and written by another task. */
static int hook_allocate_fn(void *data)
{
	struct kunit *test = data;

	hook_other_ret = vc_malloc(vc_of(test), hook_other_len, NULL,
				   &hook_other);
	if (!hook_other_ret)
		hook_other_ret = vc_set(vc_of(test), hook_other, NULL,
					hook_other_data, hook_other_len);
	complete(&hook_other_done);
	return 0;
}

static void hook_reconnect_and_allocate(struct virgo_peer *peer)
{
	struct kunit *test = hook_test;
	struct task_struct *t;

	if (!atomic_xchg(&hook_armed, 0))
		return;
	reconnect(test, peer);
	/*
	 * In another thread: this task holds the first allocation's io_lock
	 * (shared), and taking another entry's here, or waiting for a work
	 * item that does, looks like a lock cycle to lockdep; no real
	 * caller nests calls.
	 */
	reinit_completion(&hook_other_done);
	hook_other_ret = -ECHILD;
	t = kthread_run(hook_allocate_fn, test, "vc-hook-other");
	if (!IS_ERR(t))
		wait_for_completion(&hook_other_done);
	KUNIT_EXPECT_EQ(test, hook_other_ret, 0);
	hook_requests = requests_served(test);
}

/* Fires once, for the first reply of opcode hook_opcode: holds it back. */
static void hook_stall_reply(struct virgo_peer *peer, u8 opcode)
{
	if (opcode == hook_opcode && atomic_xchg(&hook_armed, 0))
		msleep(hook_stall_ms);
}

/* Allocate and fill the victim; arm the reconnect hook with the other. */
static virgo_addr_t arm_reconnect(struct kunit *test, u8 *mine, u8 *other,
				  size_t size)
{
	virgo_addr_t va;

	start_cluster(test, 1, NULL, NULL);
	get_random_bytes(mine, size);
	get_random_bytes(other, size);
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va, NULL, mine, size), 0);
	hook_test = test;
	hook_other_data = other;
	hook_other_len = size;
	atomic_set(&hook_armed, 1);
	virgo_peer_test_pre_send = hook_reconnect_and_allocate;
	return va;
}

/* The other allocation holds its bytes and nothing more reached the server. */
static void expect_other_intact(struct kunit *test, const u8 *other,
				size_t size)
{
	u8 *buf = kunit_kzalloc(test, size, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, buf);
	KUNIT_EXPECT_EQ(test, atomic_read(&hook_armed), 0);
	msleep(100);
	KUNIT_EXPECT_EQ(test, requests_served(test), hook_requests);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), hook_other, NULL, buf, size),
			0);
	KUNIT_EXPECT_EQ(test, memcmp(buf, other, size), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), hook_other, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vcf_write_for_a_dead_session_is_never_sent(struct kunit *test)
{
	const size_t size = 4 * CHUNK;
	u8 *mine = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *other = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *junk = kunit_kzalloc(test, size, GFP_KERNEL);
	virgo_addr_t va;

	KUNIT_ASSERT_NOT_NULL(test, mine);
	KUNIT_ASSERT_NOT_NULL(test, other);
	KUNIT_ASSERT_NOT_NULL(test, junk);
	va = arm_reconnect(test, mine, other, size);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va, NULL, junk, size), -EIO);
	virgo_peer_test_pre_send = NULL;
	expect_other_intact(test, other, size);
	/* The lost allocation stays lost, and frees without a word sent. */
	hook_requests = requests_served(test);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, junk, size), -EIO);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, requests_served(test), hook_requests);
}

static void vcf_free_for_a_dead_session_is_never_sent(struct kunit *test)
{
	const size_t size = 4 * CHUNK;
	u8 *mine = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *other = kunit_kmalloc(test, size, GFP_KERNEL);
	virgo_addr_t va;

	KUNIT_ASSERT_NOT_NULL(test, mine);
	KUNIT_ASSERT_NOT_NULL(test, other);
	va = arm_reconnect(test, mine, other, size);
	/* Its chunks died with their session: nothing to free, no error. */
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	virgo_peer_test_pre_send = NULL;
	expect_other_intact(test, other, size);
}

static void vcf_late_alloc_reply_freed_peer_usable_again(struct kunit *test)
{
	struct virgo_peer *peer;
	unsigned long end;
	virgo_addr_t va;

	start_cluster(test, 1, NULL, NULL);
	peer = first_peer(test);
	KUNIT_ASSERT_EQ(test, virgo_peer_connect(peer), 0);
	hook_opcode = VIRGO_OP_ALLOC;
	hook_stall_ms = 3000 + 1000;
	atomic_set(&hook_armed, 1);
	virgo_peer_test_rx = hook_stall_reply;

	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), 5 * CHUNK, NULL, &va),
			-ETIMEDOUT);
	/* Suspect now: placement skips it instead of waiting on it again. */
	KUNIT_EXPECT_FALSE(test, virgo_peer_usable(peer));
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), CHUNK, NULL, &va),
			-ENOSPC);

	/* The late reply arrives: its chunks go back, the peer is usable. */
	end = jiffies + 5 * HZ;
	while ((lent_everywhere(test) || !virgo_peer_usable(peer)) &&
	       time_before(jiffies, end))
		msleep(20);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(vctx(test)->srv[0]),
			0ULL);
	KUNIT_EXPECT_TRUE(test, virgo_peer_usable(peer));
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), CHUNK, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	virgo_peer_put(peer);
}

/* Write a pattern over all of @va, read it back, compare every byte. */
static void expect_round_trip(struct kunit *test, virgo_addr_t va,
			      size_t size)
{
	u8 *ref = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *buf = kunit_kzalloc(test, size, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, ref);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	get_random_bytes(ref, size);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va, NULL, ref, size), 0);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, buf, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ref, buf, size), 0);
}

static void vcf_more_chunks_than_max_batch_on_one_peer(struct kunit *test)
{
	struct clouddrec_config scfg;
	const size_t size = 50 * CHUNK - 7;
	virgo_addr_t va;

	test_server_config(&scfg, SERVER_MEMORY);
	scfg.max_batch = 8;
	start_custom(test, &scfg);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(vctx(test)->srv[0]),
			50ULL);
	expect_round_trip(test, va, size);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(vctx(test)->srv[0]),
			0ULL);
}

static void vcf_io_wider_than_window_waits_for_slots(struct kunit *test)
{
	struct clouddrec_config scfg;
	const size_t size = 300 * CHUNK;
	struct virgo_peer *peer;
	virgo_addr_t va;

	test_server_config(&scfg, SERVER_MEMORY);
	scfg.max_inflight = 2;
	start_custom(test, &scfg);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	peer = first_peer(test);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->max_inflight), 2U);
	/* 300 pieces: more than one window, two at a time on the wire. */
	expect_round_trip(test, va, size);
	KUNIT_EXPECT_EQ(test, atomic_read(&peer->inflight), 0);
	virgo_peer_put(peer);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

/*
 * A round is bounded by rpc_timeout_ms as a whole: with more pieces for
 * one peer than it has in-flight slots, and a peer that stops answering,
 * the waits for slots and the wait for the replies share one deadline.
 * (They used to add up: the round's deadline was taken after the sends,
 * and the call took the 5 s stall here instead of the 3 s timeout.)
 */
static void vcf_round_bounded_with_slots_full(struct kunit *test)
{
	struct clouddrec_config scfg;
	const size_t size = 16 * CHUNK;
	u8 *buf = kunit_kzalloc(test, size, GFP_KERNEL);
	unsigned long start, took, bound;
	virgo_addr_t va;
	int ret;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	test_server_config(&scfg, SERVER_MEMORY);
	scfg.max_inflight = 2;
	start_custom(test, &scfg);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	/* The first READ reply is held back well past the round. */
	hook_opcode = VIRGO_OP_READ;
	hook_stall_ms = 5000;
	atomic_set(&hook_armed, 1);
	virgo_peer_test_rx = hook_stall_reply;
	start = jiffies;
	ret = vc_get(vc_of(test), va, NULL, buf, size);
	took = jiffies - start;
	bound = msecs_to_jiffies(vc_of(test)->rpc_timeout_ms + 1000);
	KUNIT_EXPECT_EQ(test, ret, -ETIMEDOUT);
	KUNIT_EXPECT_LT(test, took, bound);
	/* Let the held reply go before the teardown. */
	msleep(hook_stall_ms);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
}

static void vcf_unwritten_bytes_of_a_chunk_read_as_zeros(struct kunit *test)
{
	u8 *buf = kunit_kmalloc(test, 2 * CHUNK, GFP_KERNEL);
	u8 *ref = kunit_kzalloc(test, 2 * CHUNK, GFP_KERNEL);
	virgo_addr_t va;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	KUNIT_ASSERT_NOT_NULL(test, ref);
	start_cluster(test, 1, NULL, NULL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 2 * CHUNK, NULL, &va), 0);
	/* Never written: zeros. */
	memset(buf, 0xa5, 2 * CHUNK);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, buf, 2 * CHUNK),
			0);
	KUNIT_EXPECT_EQ(test, memcmp(buf, ref, 2 * CHUNK), 0);
	/* A first write of part of a chunk: the rest of it is zeros. */
	get_random_bytes(ref + 1000, 100);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va + 1000, NULL, ref + 1000,
				     100), 0);
	memset(buf, 0xa5, 2 * CHUNK);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, buf, 2 * CHUNK),
			0);
	KUNIT_EXPECT_EQ(test, memcmp(buf, ref, 2 * CHUNK), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
}

static void vcf_limits_are_the_minimum_of_both_sides(struct kunit *test)
{
	struct clouddrec_config scfg;
	struct virgo_peer *peer;

	test_server_config(&scfg, SERVER_MEMORY);
	scfg.max_batch = 8;
	start_custom(test, &scfg);
	peer = first_peer(test);
	KUNIT_ASSERT_EQ(test, virgo_peer_connect(peer), 0);
	/* The server lends 64 KiB chunks; this client asks for 4 KiB. */
	KUNIT_EXPECT_EQ(test, peer->lim.max_chunk, (u32)CHUNK);
	KUNIT_EXPECT_EQ(test, peer->lim.max_batch, 8U);
	/* Ours: a FREE of 1024 handles (more than a 4 KiB WRITE). */
	KUNIT_EXPECT_EQ(test, peer->lim.max_payload,
			(u32)(VIRGO_WIRE_BATCH_HDR_LEN + VIRGO_WIRE_HANDLE_LEN *
			      VIRGO_WIRE_DEF_MAX_BATCH));
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&peer->lim), 0);
	virgo_peer_put(peer);
}

static void vcf_reconnect_backs_off_then_succeeds(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct clouddrec_config scfg;
	struct virgo_peer *peer;
	unsigned long start;
	u32 backoff;
	virgo_addr_t va;
	u16 port;
	int i;

	start_cluster(test, 2, NULL, NULL);
	peer = virgo_peer_get(&vc_of(test)->peers, 2);
	KUNIT_ASSERT_NOT_NULL(test, peer);
	/* Connected in the background from the moment it was added. */
	for (i = 0; i < 100 && READ_ONCE(peer->state) != VIRGO_PEER_UP; i++)
		msleep(20);
	KUNIT_ASSERT_EQ(test, READ_ONCE(peer->state), VIRGO_PEER_UP);
	port = clouddrec_server_port(ctx->srv[1]);
	clouddrec_server_stop(ctx->srv[1]);
	ctx->srv[1] = NULL;

	/*
	 * Refused again and again: the attempts back off (100, 200 ms...).
	 * An attempt in flight when the server stopped may wait out its
	 * connect timeout (2 s) first; TCG under KCSAN is slow: 15 s.
	 */
	for (i = 0; i < 750 && READ_ONCE(peer->backoff_ms) < 200; i++)
		msleep(20);
	backoff = READ_ONCE(peer->backoff_ms);
	KUNIT_EXPECT_GE(test, backoff, 200U);
	KUNIT_EXPECT_FALSE(test, virgo_peer_usable(peer));
	/* A malloc does not wait for it: everything goes to the live peer. */
	start = jiffies;
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), 4 * CHUNK, NULL, &va), 0);
	KUNIT_EXPECT_LT(test, (long)(jiffies - start), (long)(HZ / 2));
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv[0]),
			4ULL * CHUNK);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);

	/* Back on its port: reconnected in the background, nobody asking. */
	test_server_config(&scfg, SERVER_MEMORY);
	scfg.port = port;
	ctx->srv[1] = clouddrec_server_start(&scfg);
	KUNIT_ASSERT_FALSE(test, IS_ERR(ctx->srv[1]));
	for (i = 0; i < 750 && READ_ONCE(peer->state) != VIRGO_PEER_UP; i++)
		msleep(20);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->state), VIRGO_PEER_UP);
	backoff = READ_ONCE(peer->backoff_ms);
	KUNIT_EXPECT_EQ(test, backoff, 0U);
	KUNIT_EXPECT_TRUE(test, virgo_peer_usable(peer));
	virgo_peer_put(peer);
}

static void vcf_removed_peer_never_connects_again(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct virgo_peer **peers;
	unsigned int nr, i;
	char spec[24];

	start_cluster(test, 2, NULL, NULL);
	peers = virgo_peers_snapshot(&vc_of(test)->peers, &nr);
	KUNIT_ASSERT_EQ(test, nr, 2U);
	snprintf(spec, sizeof(spec), "127.0.0.1:%u",
		 clouddrec_server_port(ctx->srv[1]));
	KUNIT_EXPECT_EQ(test, virgo_peer_connect(peers[1]), 0);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec), 0);
	/* Whoever still holds it cannot bring it back. */
	KUNIT_EXPECT_FALSE(test, virgo_peer_usable(peers[1]));
	KUNIT_EXPECT_EQ(test, virgo_peer_connect(peers[1]), -ENODEV);
	KUNIT_EXPECT_NULL(test, peers[1]->sock);
	KUNIT_EXPECT_NULL(test, peers[1]->rx);
	for (i = 0; i < 50 && clouddrec_server_sessions(ctx->srv[1]); i++)
		msleep(20);
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(ctx->srv[1]), 0U);
	virgo_peers_snapshot_put(peers, nr);
}

struct vc_churn {
	struct kunit *test;
	char spec[24];
	struct completion done;
	unsigned long end;
	int errors;
	int first_err;
	int first_step;
	int rounds;
};

/* Count an error; remember the first (step, errno) for the report. */
static void vc_churn_err(struct vc_churn *c, int step, int err)
{
	if (!c->errors++) {
		c->first_step = step;
		c->first_err = err;
	}
}

/* malloc, write, read back, free; the allocations that succeed are intact. */
static int vc_churn_user_fn(void *data)
{
	struct vc_churn *c = data;
	struct virgo_client *vc = vc_of(c->test);
	u8 *a = kmalloc(4 * CHUNK, GFP_KERNEL);
	u8 *b = kmalloc(4 * CHUNK, GFP_KERNEL);

	while (a && b && time_before(jiffies, c->end)) {
		size_t size = 1 + get_random_u32_below(4 * CHUNK);
		virgo_addr_t va;
		int ret = vc_malloc(vc, size, NULL, &va);

		c->rounds++;
		if (ret) {
			if (ret != -EIO && ret != -ENOSPC && ret != -ENODEV)
				vc_churn_err(c, 1, ret);
			continue;
		}
		get_random_bytes(a, size);
		ret = vc_set(vc, va, NULL, a, size);
		if (ret)
			vc_churn_err(c, 2, ret);
		ret = vc_get(vc, va, NULL, b, size);
		if (ret || memcmp(a, b, size))
			vc_churn_err(c, 3, ret);
		ret = vc_free(vc, va, NULL);
		if (ret)
			vc_churn_err(c, 4, ret);
	}
	if (!a || !b)
		vc_churn_err(c, 0, -ENOMEM);
	kfree(a);
	kfree(b);
	complete(&c->done);
	return 0;
}

/* Remove and add the second peer again and again. */
static int vc_churn_admin_fn(void *data)
{
	struct vc_churn *c = data;
	struct virgo_peer_set *set = &vc_of(c->test)->peers;

	while (time_before(jiffies, c->end)) {
		int ret = virgo_peer_del(set, c->spec);

		c->rounds++;
		if (ret && ret != -EBUSY)
			vc_churn_err(c, 5, ret);
		if (!ret) {
			ret = virgo_peer_add(set, c->spec);
			if (ret)
				vc_churn_err(c, 6, ret);
		}
		usleep_range(500, 2000);
	}
	complete(&c->done);
	return 0;
}

static void vcf_peer_add_del_races_malloc(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct vc_churn c[3];
	unsigned long end = jiffies + 3 * HZ;
	struct task_struct *t;
	int i;

	start_cluster(test, 2, NULL, NULL);
	for (i = 0; i < ARRAY_SIZE(c); i++) {
		c[i].test = test;
		c[i].end = end;
		c[i].errors = 0;
		c[i].first_err = 0;
		c[i].first_step = 0;
		c[i].rounds = 0;
		init_completion(&c[i].done);
		snprintf(c[i].spec, sizeof(c[i].spec), "127.0.0.1:%u",
			 clouddrec_server_port(ctx->srv[1]));
		t = kthread_run(i ? vc_churn_user_fn : vc_churn_admin_fn,
				&c[i], "vc-churn-%d", i);
		KUNIT_ASSERT_FALSE(test, IS_ERR(t));
	}
	for (i = 0; i < ARRAY_SIZE(c); i++) {
		wait_for_completion(&c[i].done);
		KUNIT_EXPECT_EQ_MSG(test, c[i].errors, 0,
				    "thread %d: first error %d at step %d", i,
				    c[i].first_err, c[i].first_step);
		KUNIT_EXPECT_GT(test, c[i].rounds, 10);
	}
	/* Removed peers' sessions end; nothing stays lent anywhere. */
	for (i = 0; i < 100 && lent_everywhere(test); i++)
		msleep(20);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

struct vc_killed {
	struct virgo_client *vc;
	virgo_addr_t va;
	u8 buf[CHUNK];
	int ret;
	struct completion done;
};

static int vc_killed_fn(void *data)
{
	struct vc_killed *k = data;

	allow_signal(SIGKILL);
	k->ret = vc_get(k->vc, k->va, NULL, k->buf, CHUNK);
	complete(&k->done);
	return 0;
}

static void vcf_killed_caller_stops_waiting(struct kunit *test)
{
	struct vc_killed *k = kunit_kzalloc(test, sizeof(*k), GFP_KERNEL);
	struct task_struct *task;
	unsigned long start;

	KUNIT_ASSERT_NOT_NULL(test, k);
	start_cluster(test, 1, NULL, NULL);
	k->vc = vc_of(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(k->vc, CHUNK, NULL, &k->va), 0);
	init_completion(&k->done);
	hook_opcode = VIRGO_OP_READ;
	hook_stall_ms = 2000;
	atomic_set(&hook_armed, 1);
	virgo_peer_test_rx = hook_stall_reply;

	task = kthread_run(vc_killed_fn, k, "vc-killed");
	KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	get_task_struct(task);
	msleep(300);
	start = jiffies;
	/* To the thread itself, as a SIGKILL to a user task would be. */
	do_send_sig_info(SIGKILL, SEND_SIG_PRIV, task, PIDTYPE_PID);
	put_task_struct(task);
	KUNIT_ASSERT_TRUE(test, wait_for_completion_timeout(&k->done, 5 * HZ));
	KUNIT_EXPECT_EQ(test, k->ret, -EINTR);
	KUNIT_EXPECT_LT(test, (long)(jiffies - start), (long)HZ);
	/* The stalled reply is disposed of; the allocation still works. */
	msleep(2000);
	expect_round_trip(test, k->va, CHUNK);
	KUNIT_EXPECT_EQ(test, vc_free(k->vc, k->va, NULL), 0);
}

/* Break @peer's connection; wait until it is up again (resumed or not). */
static void break_connection(struct kunit *test, struct virgo_peer *peer)
{
	unsigned long end = jiffies + 5 * HZ;

	mutex_lock(&peer->conn_lock);
	if (peer->sock)
		kernel_sock_shutdown(peer->sock, SHUT_RDWR);
	mutex_unlock(&peer->conn_lock);
	while (READ_ONCE(peer->state) == VIRGO_PEER_UP &&
	       time_before(jiffies, end))
		usleep_range(2000, 5000);
	/* The background connect brings it back; do not race it. */
	while (READ_ONCE(peer->state) != VIRGO_PEER_UP &&
	       time_before(jiffies, end))
		usleep_range(5000, 10000);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->state), VIRGO_PEER_UP);
}

/* Fires once before a send: the connection breaks under the request. */
static void hook_break_connection(struct virgo_peer *peer)
{
	if (!atomic_xchg(&hook_armed, 0))
		return;
	mutex_lock(&peer->conn_lock);
	if (peer->sock)
		kernel_sock_shutdown(peer->sock, SHUT_RDWR);
	mutex_unlock(&peer->conn_lock);
}

static void vcf_freeing_a_lost_session_credits_nothing(struct kunit *test)
{
	const size_t size = 8 * CHUNK;
	struct virgo_peer *peer;
	virgo_addr_t va;
	s64 free_now;

	start_cluster(test, 1, NULL, NULL);
	peer = first_peer(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	/* A new session (no RESUME here): its HELLO counts the free bytes. */
	reconnect(test, peer);
	free_now = atomic64_read(&peer->free);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	/* The lost chunks were not in it: nothing to give back. */
	KUNIT_EXPECT_EQ(test, atomic64_read(&peer->free), free_now);
	KUNIT_EXPECT_LE(test, atomic64_read(&peer->free), (s64)peer->capacity);
	KUNIT_EXPECT_EQ(test, atomic64_read(&peer->placed), 0LL);
	virgo_peer_put(peer);
}

static void vcf_lost_connection_resumes_with_every_byte(struct kunit *test)
{
	const size_t size = 6 * CHUNK + 77;
	u8 *data = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *back = kunit_kzalloc(test, size, GFP_KERNEL);
	struct virgo_peer *peer;
	virgo_addr_t va;
	u64 lent;
	u32 epoch;

	KUNIT_ASSERT_NOT_NULL(test, data);
	KUNIT_ASSERT_NOT_NULL(test, back);
	vctx(test)->orphan_timeout_ms = 30000;
	start_cluster(test, 1, NULL, NULL);
	peer = first_peer(test);
	get_random_bytes(data, size);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	lent = lent_everywhere(test);
	epoch = READ_ONCE(peer->epoch);

	/* Idle: the session is taken over, same epoch, same bytes. */
	break_connection(test, peer);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->epoch), epoch);
	KUNIT_EXPECT_EQ(test, atomic_read(&peer->resumed), 1);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), lent);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);

	/* Under a write: it goes on once resumed, and lands. */
	get_random_bytes(data, size);
	hook_test = test;
	atomic_set(&hook_armed, 1);
	virgo_peer_test_pre_send = hook_break_connection;
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	virgo_peer_test_pre_send = NULL;
	KUNIT_EXPECT_EQ(test, atomic_read(&hook_armed), 0);
	/* And under a read. */
	atomic_set(&hook_armed, 1);
	virgo_peer_test_pre_send = hook_break_connection;
	memset(back, 0, size);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	virgo_peer_test_pre_send = NULL;
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->epoch), epoch);
	KUNIT_EXPECT_GE(test, clouddrec_server_stat(vctx(test)->srv[0],
						    CD_STAT_SESSIONS_RESUMED),
			3ULL);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), lent);

	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	virgo_peer_put(peer);
}

static void vcf_restarted_server_loses_only_its_session(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	const size_t size = 3 * CHUNK;
	u8 *data = kunit_kmalloc(test, size, GFP_KERNEL);
	struct clouddrec_config cfg;
	struct virgo_peer *peer;
	virgo_addr_t va, vb;
	u32 epoch;
	int i;

	KUNIT_ASSERT_NOT_NULL(test, data);
	ctx->orphan_timeout_ms = 30000;
	start_cluster(test, 1, NULL, NULL);
	peer = first_peer(test);
	get_random_bytes(data, size);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	epoch = READ_ONCE(peer->epoch);

	/* The server restarts on its port: its memory is genuinely gone. */
	test_server_config(&cfg, SERVER_MEMORY);
	cfg.orphan_timeout_ms = ctx->orphan_timeout_ms;
	cfg.port = clouddrec_server_port(ctx->srv[0]);
	clouddrec_server_stop(ctx->srv[0]);
	ctx->srv[0] = clouddrec_server_start(&cfg);
	KUNIT_ASSERT_FALSE(test, IS_ERR(ctx->srv[0]));
	/* The client reconnects by itself; its RESUME finds nothing. */
	for (i = 0; i < 250 && (READ_ONCE(peer->epoch) == epoch ||
				READ_ONCE(peer->state) != VIRGO_PEER_UP); i++)
		msleep(20);
	KUNIT_EXPECT_NE(test, READ_ONCE(peer->epoch), epoch);
	KUNIT_EXPECT_EQ(test, atomic_read(&peer->sessions_lost), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&peer->resumed), 0);
	/* Exactly the lost chunks fail, cleanly; they free without a word. */
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, data, size), -EIO);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	/* New memory works; nothing is left anywhere. */
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &vb), 0);
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), vb, NULL, data, size), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), vb, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	virgo_peer_put(peer);
}

/* A connected pair of loopback TCP sockets; @srv never reads. */
static void tcp_pair(struct kunit *test, struct socket **cli,
		     struct socket **srv)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct socket *lsock;
	int len = sizeof(sin);

	KUNIT_ASSERT_EQ(test, sock_create_kern(&init_net, AF_INET, SOCK_STREAM,
					       IPPROTO_TCP, &lsock), 0);
	KUNIT_ASSERT_EQ(test, kernel_bind(lsock, (struct sockaddr *)&sin,
					  sizeof(sin)), 0);
	KUNIT_ASSERT_EQ(test, kernel_listen(lsock, 1), 0);
	KUNIT_ASSERT_EQ(test, kernel_getsockname(lsock,
						 (struct sockaddr *)&sin), len);
	KUNIT_ASSERT_EQ(test, sock_create_kern(&init_net, AF_INET, SOCK_STREAM,
					       IPPROTO_TCP, cli), 0);
	KUNIT_ASSERT_EQ(test, kernel_connect(*cli, (struct sockaddr *)&sin,
					     sizeof(sin), 0), 0);
	KUNIT_ASSERT_EQ(test, kernel_accept(lsock, srv, 0), 0);
	sock_release(lsock);
}

/*
 * A peer that takes bytes, then none (a dead node, a client that stopped
 * reading): one send gives up after its timeout, not after one timeout
 * per partial send.  (It took two: the first sendmsg returned the bytes
 * that fit before timing out, the second waited a full timeout again; an
 * 8 MiB set right after a node died took two rpc_timeout_ms.)
 */
static void vcf_send_to_a_stuck_peer_takes_one_timeout(struct kunit *test)
{
	const size_t size = 16 << 20;
	const unsigned int timeout_ms = 1000;
	struct socket *cli, *srv;
	struct kvec iov;
	u64 t0, ms;
	void *buf;

	buf = vzalloc(size);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	tcp_pair(test, &cli, &srv);
	iov = (struct kvec){ .iov_base = buf, .iov_len = size };
	t0 = ktime_get_ns();
	KUNIT_EXPECT_EQ(test, virgo_sock_sendv(cli, &iov, 1, size,
					       msecs_to_jiffies(timeout_ms)),
			-ETIMEDOUT);
	ms = (ktime_get_ns() - t0) / NSEC_PER_MSEC;
	KUNIT_EXPECT_GE(test, ms, timeout_ms - 20);
	/* Two timeouts without the fix; room for a loaded TCG host. */
	KUNIT_EXPECT_LT(test, ms, timeout_ms * 7 / 4);
	sock_release(cli);
	sock_release(srv);
	vfree(buf);
}

/* ---- several queues per peer (capability QUEUES) -------------------- */

/* Up to 5 s for every extra queue of @peer to be up; how many are. */
static unsigned int wait_queues_up(struct virgo_peer *peer)
{
	unsigned int i, up = 0;
	int t;

	for (t = 0; t < 250; t++) {
		for (i = 0, up = 0; i < peer->nr_queues; i++)
			up += READ_ONCE(peer->queues[i].up);
		if (up == peer->nr_queues)
			break;
		msleep(20);
	}
	return up;
}

/* Break the connection of queue @i of @peer (not the peer's own). */
static void break_queue(struct virgo_peer *peer, unsigned int i)
{
	struct virgo_queue *q = &peer->queues[i];

	mutex_lock(&q->lock);
	if (q->sock)
		kernel_sock_shutdown(q->sock, SHUT_RDWR);
	mutex_unlock(&q->lock);
}

/* Fires once before a send: the first extra queue breaks under it. */
static void hook_break_queue(struct virgo_peer *peer)
{
	if (!atomic_xchg(&hook_armed, 0))
		return;
	break_queue(peer, 0);
}

/* One server granting RESUME (so QUEUES), a client with @queues. */
static struct virgo_peer *start_queued(struct kunit *test,
				       unsigned int queues)
{
	struct virgo_peer *peer;

	vctx(test)->orphan_timeout_ms = 30000;
	vctx(test)->queues = queues;
	start_cluster(test, 1, NULL, NULL);
	peer = first_peer(test);
	KUNIT_ASSERT_EQ(test, peer->nr_queues, queues - 1);
	KUNIT_ASSERT_EQ(test, wait_queues_up(peer), queues - 1);
	return peer;
}

/*
 * The end of a case over queues: every extra queue carried requests; @va
 * frees, nothing is left lent; the reference on @peer is dropped.
 */
static void expect_queues_used_then_free(struct kunit *test,
					 struct virgo_peer *peer,
					 virgo_addr_t va)
{
	unsigned int i;

	for (i = 0; i < peer->nr_queues; i++)
		KUNIT_EXPECT_GT(test, atomic64_read(&peer->queues[i].sent),
				0LL);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	virgo_peer_put(peer);
}

/*
 * Requests go out on every queue, each caller's in its order: a write
 * then a read of the same bytes (on other queues) reads what was written,
 * round after round; the server holds one session over four connections.
 */
static void vcq_requests_spread_over_queues_in_order(struct kunit *test)
{
	const size_t size = 7 * CHUNK + 77;
	u8 *data = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *back = kunit_kmalloc(test, size, GFP_KERNEL);
	struct clouddrec_server *srv;
	struct virgo_peer *peer;
	virgo_addr_t va;
	int round;

	KUNIT_ASSERT_NOT_NULL(test, data);
	KUNIT_ASSERT_NOT_NULL(test, back);
	peer = start_queued(test, 4);
	srv = vctx(test)->srv[0];
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(srv), 4U);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(srv, CD_STAT_QUEUES_JOINED),
			3ULL);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	for (round = 0; round < 24; round++) {
		size_t off = (round * 1237) % (size - 3 * CHUNK);

		get_random_bytes(data, size);
		KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va + off, NULL, data,
					     3 * CHUNK), 0);
		memset(back, 0, size);
		KUNIT_ASSERT_EQ(test, vc_get(vc_of(test), va + off, NULL, back,
					     3 * CHUNK), 0);
		KUNIT_EXPECT_EQ(test, memcmp(back, data, 3 * CHUNK), 0);
	}
	expect_queues_used_then_free(test, peer, va);
}

/*
 * A READ reply longer than the socket's buffers reaches an extra queue in
 * parts, and its receive work waits for the rest of one that has begun:
 * each part must wake it.  (The queue's sk_data_ready took the socket's
 * place and only queued the work: every such reply waited a whole
 * rpc_timeout_ms, and the peer was suspect meanwhile.)
 */
static void vcq_long_replies_on_a_queue_wait_for_no_timeout(struct kunit *test)
{
	const size_t size = 6 * SZ_1M;
	u8 *data = vmalloc(size), *back = vzalloc(size);
	struct virgo_peer *peer;
	virgo_addr_t va;
	u64 ms, t0;

	KUNIT_ASSERT_NOT_NULL(test, data);
	KUNIT_ASSERT_NOT_NULL(test, back);
	vctx(test)->chunk_size = SZ_1M;
	vctx(test)->rpc_timeout_ms = 20000;
	peer = start_queued(test, 2);
	get_random_bytes(data, size);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	t0 = ktime_get_ns();
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	ms = (ktime_get_ns() - t0) / NSEC_PER_MSEC;
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);
	/* Three of the six replies come on the extra queue. */
	KUNIT_EXPECT_GT(test, atomic64_read(&peer->queues[0].sent), 0LL);
	/* Under a second here; 20 s (at least) per reply with the bug. */
	KUNIT_EXPECT_LT_MSG(test, ms, 10000ULL, "6 MiB read in %llu ms", ms);
	KUNIT_EXPECT_EQ(test, atomic_read(&peer->suspect), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	virgo_peer_put(peer);
	vfree(data);
	vfree(back);
}

/* Every run of a server's I/O work waits (a server that reads nothing). */
static void hook_server_deaf(struct clouddrec_server *srv)
{
	wait_for_completion_timeout(&hook_server_go, 30 * HZ);
}

static void hook_server_go_fn(struct work_struct *work)
{
	complete_all(&hook_server_go);
}

static DECLARE_DELAYED_WORK(hook_server_go_work, hook_server_go_fn);

/*
 * A signal that is not fatal pending in the caller's task (a user
 * process's timer, say) while its send waits for room in the socket: the
 * send waits on, the connection stays up, every byte arrives.  (The socket
 * returned -EINTR, which broke the connection, and every other caller's
 * requests on it, for a signal the task would handle later.)
 */
static void vcf_signal_while_a_send_waits_breaks_nothing(struct kunit *test)
{
	const size_t size = 16 * SZ_1M;
	u8 *data = vmalloc(size), *back = vzalloc(size);
	struct virgo_peer *peer;
	virgo_addr_t va;
	u32 epoch;
	int ret;

	KUNIT_ASSERT_NOT_NULL(test, data);
	KUNIT_ASSERT_NOT_NULL(test, back);
	vctx(test)->chunk_size = SZ_1M;
	vctx(test)->server_memory = size + 16 * SZ_1M;
	start_cluster(test, 1, NULL, NULL);
	peer = first_peer(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	epoch = READ_ONCE(peer->epoch);
	get_random_bytes(data, size);
	/* The server reads nothing for a while: the socket fills up. */
	reinit_completion(&hook_server_go);
	clouddrec_test_io = hook_server_deaf;
	schedule_delayed_work(&hook_server_go_work, msecs_to_jiffies(500));
	allow_signal(SIGUSR1);
	send_sig(SIGUSR1, current, 1);
	ret = vc_set(vc_of(test), va, NULL, data, size);
	/* Still pending: a user task would handle it on its way out. */
	KUNIT_EXPECT_TRUE(test, signal_pending(current));
	flush_signals(current);
	disallow_signal(SIGUSR1);
	cancel_delayed_work_sync(&hook_server_go_work);
	clouddrec_test_io = NULL;
	complete_all(&hook_server_go);
	KUNIT_EXPECT_EQ(test, ret, 0);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->epoch), epoch);
	KUNIT_EXPECT_EQ(test, atomic_read(&peer->resumed), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(vctx(test)->srv[0],
						    CD_STAT_SESSIONS_RESUMED),
			0ULL);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	virgo_peer_put(peer);
	vfree(back);
	vfree(data);
}

/*
 * A peer that stops reading (a dead node sends no RST) while one set
 * fills the socket buffers of two of its connections: the call fails
 * within one rpc_timeout_ms, as over one connection.  (A send was bounded
 * by rpc_timeout_ms of its own, not by its round: each connection's
 * blocked send took a whole one, and an 8 MiB set right after a node died
 * took two in e2e faults.)
 */
static void vcq_deaf_peer_costs_one_round_over_queues(struct kunit *test)
{
	const size_t size = 48 * SZ_1M;
	u8 *data = vzalloc(size);
	struct virgo_peer *peer;
	u64 t0, ms, bound;
	virgo_addr_t va;

	KUNIT_ASSERT_NOT_NULL(test, data);
	vctx(test)->chunk_size = SZ_1M;
	vctx(test)->server_memory = size + 16 * SZ_1M;
	peer = start_queued(test, 2);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	reinit_completion(&hook_server_go);
	clouddrec_test_io = hook_server_deaf;
	t0 = ktime_get_ns();
	KUNIT_EXPECT_NE(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	ms = (ktime_get_ns() - t0) / NSEC_PER_MSEC;
	bound = vc_of(test)->rpc_timeout_ms * 3 / 2;
	KUNIT_EXPECT_LT_MSG(test, ms, bound, "the set failed after %llu ms",
			    ms);
	clouddrec_test_io = NULL;
	complete_all(&hook_server_go);
	virgo_peer_put(peer);
	vfree(data);
}

/* Requests sent on @peer's extra queues so far. */
static s64 queues_sent(struct virgo_peer *peer)
{
	s64 sent = 0;
	unsigned int i;

	for (i = 0; i < peer->nr_queues; i++)
		sent += atomic64_read(&peer->queues[i].sent);
	return sent;
}

/*
 * ALLOC and FREE go on the peer's own connection only: a reply lost with
 * an extra queue would leave a chunk lent nobody knows of (the session
 * lives on), or a free that happened reported failed.
 */
static void vcq_alloc_and_free_never_on_an_extra_queue(struct kunit *test)
{
	struct virgo_peer *peer;
	virgo_addr_t va;
	s64 sent;
	int i;

	peer = start_queued(test, 4);
	sent = queues_sent(peer);
	for (i = 0; i < 16; i++) {
		KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 3 * CHUNK, NULL,
						&va), 0);
		KUNIT_ASSERT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	}
	KUNIT_EXPECT_EQ(test, queues_sent(peer), sent);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	virgo_peer_put(peer);
}

/*
 * A lost extra queue is no lost session: the same epoch, no RESUME, the
 * requests on it are sent again, every byte stays; a lost connection of
 * the peer's own resumes the session (same epoch) and the queues join it
 * again.
 */
static void vcq_lost_queue_keeps_session_and_epoch(struct kunit *test)
{
	const size_t size = 6 * CHUNK + 5;
	u8 *data = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *back = kunit_kzalloc(test, size, GFP_KERNEL);
	struct clouddrec_server *srv;
	struct virgo_peer *peer;
	virgo_addr_t va;
	u64 lent, joined;
	u32 epoch;

	KUNIT_ASSERT_NOT_NULL(test, data);
	KUNIT_ASSERT_NOT_NULL(test, back);
	peer = start_queued(test, 3);
	srv = vctx(test)->srv[0];
	get_random_bytes(data, size);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	lent = lent_everywhere(test);
	epoch = READ_ONCE(peer->epoch);

	/* Idle: the queue is opened and joined again. */
	break_queue(peer, 1);
	KUNIT_EXPECT_EQ(test, wait_queues_up(peer), 2U);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->state), VIRGO_PEER_UP);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->epoch), epoch);
	KUNIT_EXPECT_EQ(test, atomic_read(&peer->resumed), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(srv,
						    CD_STAT_SESSIONS_RESUMED),
			0ULL);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);

	/* Under a write, then under a read: sent again, and they land. */
	get_random_bytes(data, size);
	hook_test = test;
	atomic_set(&hook_armed, 1);
	virgo_peer_test_pre_send = hook_break_queue;
	KUNIT_EXPECT_EQ(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	virgo_peer_test_pre_send = NULL;
	KUNIT_EXPECT_EQ(test, atomic_read(&hook_armed), 0);
	KUNIT_EXPECT_EQ(test, wait_queues_up(peer), 2U);
	atomic_set(&hook_armed, 1);
	virgo_peer_test_pre_send = hook_break_queue;
	memset(back, 0, size);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	virgo_peer_test_pre_send = NULL;
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->epoch), epoch);
	KUNIT_EXPECT_EQ(test, atomic_read(&peer->resumed), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), lent);

	/* The peer's own connection: resumed, same epoch, queues again. */
	KUNIT_EXPECT_EQ(test, wait_queues_up(peer), 2U);
	joined = clouddrec_server_stat(srv, CD_STAT_QUEUES_JOINED);
	break_connection(test, peer);
	KUNIT_EXPECT_EQ(test, READ_ONCE(peer->epoch), epoch);
	KUNIT_EXPECT_EQ(test, atomic_read(&peer->resumed), 1);
	KUNIT_EXPECT_EQ(test, wait_queues_up(peer), 2U);
	KUNIT_EXPECT_GE(test, clouddrec_server_stat(srv, CD_STAT_QUEUES_JOINED),
			joined + 2);
	memset(back, 0, size);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), lent);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	virgo_peer_put(peer);
}

/* With a key: the queues authenticate and prove the session keyed. */
static void vcq_queues_with_a_key(struct kunit *test)
{
	const size_t size = 5 * CHUNK + 3;
	u8 *data = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *back = kunit_kzalloc(test, size, GFP_KERNEL);
	struct virgo_peer *peer;
	virgo_addr_t va;

	KUNIT_ASSERT_NOT_NULL(test, data);
	KUNIT_ASSERT_NOT_NULL(test, back);
	vctx(test)->orphan_timeout_ms = 30000;
	vctx(test)->queues = 3;
	start_cluster(test, 1, "queue key", "queue key");
	peer = first_peer(test);
	KUNIT_ASSERT_EQ(test, wait_queues_up(peer), 2U);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(vctx(test)->srv[0],
						    CD_STAT_QUEUES_JOINED),
			2ULL);
	get_random_bytes(data, size);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	KUNIT_ASSERT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);
	expect_queues_used_then_free(test, peer, va);
}

/*
 * Four users at once over two servers with four queues each, while queues
 * break under them: every byte read back is the one written, nothing is
 * left lent.
 */
static void vcq_concurrent_users_while_queues_break(struct kunit *test)
{
	struct virgo_peer *peers[2];
	struct vc_worker w[4];
	int i, round;

	vctx(test)->orphan_timeout_ms = 30000;
	vctx(test)->queues = 4;
	start_cluster(test, 2, NULL, NULL);
	for (i = 0; i < 2; i++) {
		peers[i] = virgo_peer_get(&vc_of(test)->peers, i + 1);
		KUNIT_ASSERT_NOT_NULL(test, peers[i]);
		KUNIT_ASSERT_EQ(test, wait_queues_up(peers[i]), 3U);
	}
	for (i = 0; i < ARRAY_SIZE(w); i++) {
		w[i].test = test;
		w[i].errors = 0;
		init_completion(&w[i].done);
		KUNIT_ASSERT_FALSE(test, IS_ERR(kthread_run(vc_worker_fn, &w[i],
							    "vcq-worker-%d",
							    i)));
	}
	for (round = 0; round < 6; round++) {
		msleep(30);
		break_queue(peers[round % 2], round % 3);
	}
	for (i = 0; i < ARRAY_SIZE(w); i++) {
		wait_for_completion(&w[i].done);
		KUNIT_EXPECT_EQ(test, w[i].errors, 0);
	}
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	for (i = 0; i < 2; i++) {
		KUNIT_EXPECT_EQ(test, READ_ONCE(peers[i]->state),
				VIRGO_PEER_UP);
		KUNIT_EXPECT_EQ(test, atomic_read(&peers[i]->resumed), 0);
		virgo_peer_put(peers[i]);
	}
}

/* A server that does not grant QUEUES: one connection, as before. */
static void vcq_without_capability_one_connection(struct kunit *test)
{
	const size_t size = 3 * CHUNK;
	u8 *data = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *back = kunit_kzalloc(test, size, GFP_KERNEL);
	struct virgo_peer *peer;
	virgo_addr_t va;
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, data);
	KUNIT_ASSERT_NOT_NULL(test, back);
	/* No RESUME (orphan_timeout 0): no QUEUES. */
	vctx(test)->queues = 4;
	start_cluster(test, 1, NULL, NULL);
	peer = first_peer(test);
	get_random_bytes(data, size);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, data, size), 0);
	KUNIT_ASSERT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);
	msleep(100);
	for (i = 0; i < peer->nr_queues; i++) {
		KUNIT_EXPECT_FALSE(test, READ_ONCE(peer->queues[i].up));
		KUNIT_EXPECT_EQ(test, atomic64_read(&peer->queues[i].sent),
				0LL);
	}
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(vctx(test)->srv[0]),
			1U);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	virgo_peer_put(peer);
}

static struct kunit_case virgo_client_fault_cases[] = {
	KUNIT_CASE(vcf_write_for_a_dead_session_is_never_sent),
	KUNIT_CASE(vcf_free_for_a_dead_session_is_never_sent),
	KUNIT_CASE(vcf_late_alloc_reply_freed_peer_usable_again),
	KUNIT_CASE(vcf_more_chunks_than_max_batch_on_one_peer),
	KUNIT_CASE(vcf_io_wider_than_window_waits_for_slots),
	KUNIT_CASE(vcf_round_bounded_with_slots_full),
	KUNIT_CASE(vcf_unwritten_bytes_of_a_chunk_read_as_zeros),
	KUNIT_CASE(vcf_limits_are_the_minimum_of_both_sides),
	KUNIT_CASE(vcf_reconnect_backs_off_then_succeeds),
	KUNIT_CASE(vcf_removed_peer_never_connects_again),
	KUNIT_CASE(vcf_peer_add_del_races_malloc),
	KUNIT_CASE(vcf_killed_caller_stops_waiting),
	KUNIT_CASE(vcf_freeing_a_lost_session_credits_nothing),
	KUNIT_CASE(vcf_lost_connection_resumes_with_every_byte),
	KUNIT_CASE(vcf_restarted_server_loses_only_its_session),
	KUNIT_CASE(vcf_send_to_a_stuck_peer_takes_one_timeout),
	KUNIT_CASE(vcf_signal_while_a_send_waits_breaks_nothing),
	KUNIT_CASE(vcq_requests_spread_over_queues_in_order),
	KUNIT_CASE(vcq_alloc_and_free_never_on_an_extra_queue),
	KUNIT_CASE(vcq_long_replies_on_a_queue_wait_for_no_timeout),
	KUNIT_CASE(vcq_deaf_peer_costs_one_round_over_queues),
	KUNIT_CASE(vcq_lost_queue_keeps_session_and_epoch),
	KUNIT_CASE(vcq_without_capability_one_connection),
	KUNIT_CASE(vcq_queues_with_a_key),
	KUNIT_CASE(vcq_concurrent_users_while_queues_break),
	{}
};

static struct kunit_suite virgo_client_fault_suite = {
	.name = "virgo_client_faults",
	.suite_init = vc_test_suite_init,
	.init = vc_test_init,
	.exit = vc_test_exit,
	.test_cases = virgo_client_fault_cases,
};

/* ---- replicas ------------------------------------------------------- */

/* Every peer connected (in the background) before placement counts on it. */
static void wait_peers_up(struct kunit *test)
{
	struct virgo_peer **peers;
	unsigned int nr, i, up = 0;
	int t;

	peers = virgo_peers_snapshot(&vc_of(test)->peers, &nr);
	KUNIT_ASSERT_NOT_NULL(test, peers);
	for (t = 0; t < 500 && up < nr; t++) {
		for (i = 0, up = 0; i < nr; i++)
			up += READ_ONCE(peers[i]->state) == VIRGO_PEER_UP;
		if (up < nr)
			msleep(20);
	}
	virgo_peers_snapshot_put(peers, nr);
	KUNIT_ASSERT_EQ(test, up, nr);
}

/* The peer (id) of replica @r of chunk @i of the allocation at @va. */
static u32 replica_peer(struct kunit *test, virgo_addr_t va, u32 i, u32 r)
{
	struct virgo_xlat_entry *e = virgo_xlat_get(&vc_of(test)->table, va);
	u32 id;

	KUNIT_ASSERT_NOT_NULL(test, e);
	id = e->chunks[i].replicas[r].peer_id;
	virgo_xlat_put(e);
	return id;
}

static u16 chunk_stale(struct kunit *test, virgo_addr_t va, u32 i)
{
	struct virgo_xlat_entry *e = virgo_xlat_get(&vc_of(test)->table, va);
	u16 stale;

	KUNIT_ASSERT_NOT_NULL(test, e);
	stale = READ_ONCE(e->chunks[i].stale);
	virgo_xlat_put(e);
	return stale;
}

static void vcr_replicas_go_to_distinct_peers_and_domains(struct kunit *test)
{
	static const char *const domains[] = { "a", "a", "b", "b" };
	struct virgo_xlat_entry *e;
	virgo_addr_t va;
	u32 i;

	vctx(test)->replicas = 2;
	vctx(test)->domains = domains;
	start_cluster(test, NR_SERVERS, NULL, NULL);
	wait_peers_up(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 20 * CHUNK, NULL, &va), 0);
	e = virgo_xlat_get(&vc_of(test)->table, va);
	KUNIT_ASSERT_NOT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, virgo_xlat_entry_check(e), 0);
	for (i = 0; i < e->nr_chunks; i++) {
		u32 a = e->chunks[i].replicas[0].peer_id;
		u32 b = e->chunks[i].replicas[1].peer_id;

		KUNIT_EXPECT_EQ(test, e->chunks[i].nr_replicas, 2);
		KUNIT_EXPECT_NE(test, a, b);
		/* Peers 1, 2 are in domain a; 3, 4 in b. */
		KUNIT_EXPECT_NE(test, (a - 1) / 2, (b - 1) / 2);
	}
	virgo_xlat_put(e);
	/* Every byte lives twice. */
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 2ULL * 20 * CHUNK);
	expect_round_trip(test, va, 20 * CHUNK);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vcr_read_fails_over_when_a_replica_dies(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	const size_t size = 16 * CHUNK + 99;
	u8 *ref = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *buf = kunit_kzalloc(test, size, GFP_KERNEL);
	unsigned long start;
	virgo_addr_t va;

	KUNIT_ASSERT_NOT_NULL(test, ref);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	ctx->replicas = 2;
	start_cluster(test, 3, NULL, NULL);
	wait_peers_up(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	get_random_bytes(ref, size);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, ref, size), 0);
	clouddrec_server_stop(ctx->srv[1]);
	ctx->srv[1] = NULL;

	/* Every byte still there, in one call each time. */
	start = jiffies;
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, buf, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ref, buf, size), 0);
	KUNIT_EXPECT_LT(test, (long)(jiffies - start), (long)(2 * HZ));
	memset(buf, 0, size);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va + 5, NULL, buf, size - 5),
			0);
	KUNIT_EXPECT_EQ(test, memcmp(ref + 5, buf, size - 5), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vcr_write_with_a_replica_down_marks_it_stale(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	const size_t size = 12 * CHUNK;
	u32 dead_id = 2, i, degraded = 0;
	virgo_addr_t va;

	ctx->replicas = 2;
	start_cluster(test, 3, NULL, NULL);
	wait_peers_up(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	expect_round_trip(test, va, size);
	clouddrec_server_stop(ctx->srv[dead_id - 1]);
	ctx->srv[dead_id - 1] = NULL;
	msleep(100);

	/* Succeeds: every live replica has the new bytes. */
	expect_round_trip(test, va, size);
	for (i = 0; i < 12; i++) {
		u16 stale = chunk_stale(test, va, i);
		u32 r;

		for (r = 0; r < 2; r++) {
			bool on_dead = replica_peer(test, va, i, r) == dead_id;

			KUNIT_EXPECT_EQ(test, !!(stale & BIT(r)), on_dead);
			degraded += on_dead;
		}
	}
	KUNIT_EXPECT_GT(test, degraded, 0U);
	KUNIT_EXPECT_EQ(test, atomic64_read(&vc_of(test)->stale_replicas),
			(s64)degraded);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, atomic64_read(&vc_of(test)->stale_replicas), 0LL);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

/* Only @deaf_srv's I/O works wait (a node that takes nothing any more). */
static struct clouddrec_server *deaf_srv;

static void hook_one_server_deaf(struct clouddrec_server *srv)
{
	if (srv == READ_ONCE(deaf_srv))
		wait_for_completion_timeout(&hook_server_go, 30 * HZ);
}

/*
 * A node that takes nothing any more (dead, no RST) holds a replica of
 * every chunk of a large write: once its socket is full, a send to it
 * uses the round up, and the healthy replicas' sends after it still go
 * out.  (They failed unsent, past the round: chunks lost both copies'
 * writes and the call failed, e2e durability's rewrite with a node dead.)
 */
static void vcr_write_past_a_deaf_replica_still_succeeds(struct kunit *test)
{
	const size_t size = 32 * SZ_1M;
	u8 *data = vmalloc(size), *back = vzalloc(size);
	virgo_addr_t va;
	int ret;

	KUNIT_ASSERT_NOT_NULL(test, data);
	KUNIT_ASSERT_NOT_NULL(test, back);
	vctx(test)->chunk_size = SZ_1M;
	vctx(test)->server_memory = size + 16 * SZ_1M;
	vctx(test)->replicas = 2;
	start_cluster(test, 2, NULL, NULL);
	wait_peers_up(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	get_random_bytes(data, size);
	reinit_completion(&hook_server_go);
	WRITE_ONCE(deaf_srv, vctx(test)->srv[1]);
	clouddrec_test_io = hook_one_server_deaf;
	ret = vc_set(vc_of(test), va, NULL, data, size);
	KUNIT_EXPECT_EQ(test, ret, 0);
	/* The deaf node's copies are stale: its socket did fill up. */
	KUNIT_EXPECT_GT(test, atomic64_read(&vc_of(test)->stale_replicas),
			0LL);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, back, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(back, data, size), 0);
	clouddrec_test_io = NULL;
	complete_all(&hook_server_go);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	vfree(back);
	vfree(data);
}

static void vcr_stale_replica_is_never_read(struct kunit *test)
{
	u8 *old = kunit_kmalloc(test, CHUNK, GFP_KERNEL);
	u8 *new = kunit_kmalloc(test, CHUNK, GFP_KERNEL);
	u8 *buf = kunit_kmalloc(test, CHUNK, GFP_KERNEL);
	struct virgo_xlat_entry *e;
	virgo_addr_t va;
	int i;

	KUNIT_ASSERT_NOT_NULL(test, old);
	KUNIT_ASSERT_NOT_NULL(test, new);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	vctx(test)->replicas = 2;
	start_cluster(test, 2, NULL, NULL);
	wait_peers_up(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), CHUNK, NULL, &va), 0);
	get_random_bytes(old, CHUNK);
	get_random_bytes(new, CHUNK);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, old, CHUNK), 0);
	/* Replica 1 "misses" the next write: it keeps the old bytes. */
	e = virgo_xlat_get(&vc_of(test)->table, va);
	KUNIT_ASSERT_NOT_NULL(test, e);
	WRITE_ONCE(e->chunks[0].stale, BIT(1));
	virgo_xlat_put(e);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, new, CHUNK), 0);
	for (i = 0; i < 20; i++) {
		memset(buf, 0, CHUNK);
		KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, buf, CHUNK),
				0);
		KUNIT_EXPECT_EQ(test, memcmp(buf, new, CHUNK), 0);
	}
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vcr_too_few_peers_for_the_replicas(struct kunit *test)
{
	virgo_addr_t va;

	start_cluster(test, 1, NULL, NULL);
	KUNIT_EXPECT_EQ(test, vc_malloc_replicas(vc_of(test), CHUNK, 2, NULL,
						 &va), -ENOSPC);
	KUNIT_EXPECT_EQ(test, vc_malloc_replicas(vc_of(test), CHUNK, 4, NULL,
						 &va), -EINVAL);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
	KUNIT_EXPECT_EQ(test, vc_malloc_replicas(vc_of(test), CHUNK, 1, NULL,
						 &va), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
}

/* ---- repair ------------------------------------------------------- */

/* Every chunk at @va has 2 live replicas, none on peer @gone, none stale. */
static bool fully_repaired(struct kunit *test, virgo_addr_t va, u32 gone)
{
	struct virgo_xlat_entry *e = virgo_xlat_get(&vc_of(test)->table, va);
	bool ok = e;
	u32 i, r;

	for (i = 0; e && i < e->nr_chunks; i++) {
		struct virgo_chunk *c = &e->chunks[i];

		down_read(&e->io_lock);
		for (r = 0; r < c->nr_replicas; r++)
			if (c->replicas[r].peer_id == gone)
				ok = false;
		if (READ_ONCE(c->stale))
			ok = false;
		up_read(&e->io_lock);
	}
	if (e) {
		ok = ok && !virgo_xlat_entry_check(e);
		virgo_xlat_put(e);
	}
	return ok;
}

static bool wait_repaired(struct kunit *test, virgo_addr_t va, u32 gone)
{
	int i;

	for (i = 0; i < 300; i++) {
		if (fully_repaired(test, va, gone))
			return true;
		msleep(50);
	}
	return false;
}

static void start_repairing(struct kunit *test, int n)
{
	vctx(test)->replicas = 2;
	vctx(test)->peer_dead_ms = 300;
	vctx(test)->repair_period_ms = 100;
	start_cluster(test, n, NULL, NULL);
	wait_peers_up(test);
}

static void vcrep_lost_node_replicas_are_recreated(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	const size_t size = 12 * CHUNK + 7;
	u8 *ref = kunit_kmalloc(test, size, GFP_KERNEL);
	u8 *buf = kunit_kzalloc(test, size, GFP_KERNEL);
	virgo_addr_t va;

	KUNIT_ASSERT_NOT_NULL(test, ref);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	start_repairing(test, 3);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	get_random_bytes(ref, size);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), va, NULL, ref, size), 0);
	KUNIT_ASSERT_GT(test, clouddrec_server_lent_bytes(ctx->srv[1]), 0ULL);
	clouddrec_server_stop(ctx->srv[1]);
	ctx->srv[1] = NULL;

	/* Peer 2 is gone for good: its replicas come back on 1 and 3. */
	KUNIT_EXPECT_TRUE(test, wait_repaired(test, va, 2));
	KUNIT_EXPECT_GT(test, atomic64_read(&vc_of(test)->repaired_chunks),
			0LL);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 2ULL * size);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, buf, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ref, buf, size), 0);
	/* And a second loss is survived too (peer 1 now). */
	clouddrec_server_stop(ctx->srv[0]);
	ctx->srv[0] = NULL;
	memset(buf, 0, size);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), va, NULL, buf, size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ref, buf, size), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

struct vc_io_loop {
	struct kunit *test;
	virgo_addr_t va;
	size_t size;
	u8 *shadow;
	struct completion done;
	bool stop;
	int errors;
	int rounds;
};

/* Random writes and reads against a shadow copy until told to stop. */
static int vc_io_loop_fn(void *data)
{
	struct vc_io_loop *l = data;
	struct virgo_client *vc = vc_of(l->test);
	u8 *buf = kmalloc(2 * CHUNK, GFP_KERNEL);

	while (buf && !READ_ONCE(l->stop)) {
		size_t off = get_random_u32_below(l->size);
		size_t len = 1 + get_random_u32_below(min_t(size_t, 2 * CHUNK,
							    l->size - off));

		get_random_bytes(buf, len);
		if (vc_set(vc, l->va + off, NULL, buf, len))
			l->errors++;
		else
			memcpy(l->shadow + off, buf, len);
		off = get_random_u32_below(l->size);
		len = 1 + get_random_u32_below(min_t(size_t, 2 * CHUNK,
						     l->size - off));
		if (vc_get(vc, l->va + off, NULL, buf, len) ||
		    memcmp(buf, l->shadow + off, len))
			l->errors++;
		l->rounds++;
	}
	if (!buf)
		l->errors++;
	kfree(buf);
	complete(&l->done);
	return 0;
}

static void vcrep_io_during_repair_stays_consistent(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct vc_io_loop l = { .test = test, .size = 16 * CHUNK };
	u8 *buf = kunit_kzalloc(test, l.size, GFP_KERNEL);

	l.shadow = kunit_kmalloc(test, l.size, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	KUNIT_ASSERT_NOT_NULL(test, l.shadow);
	start_repairing(test, 3);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), l.size, NULL, &l.va), 0);
	get_random_bytes(l.shadow, l.size);
	KUNIT_ASSERT_EQ(test, vc_set(vc_of(test), l.va, NULL, l.shadow,
				     l.size), 0);
	init_completion(&l.done);
	KUNIT_ASSERT_FALSE(test, IS_ERR(kthread_run(vc_io_loop_fn, &l,
						    "vc-io-loop")));
	msleep(200);
	clouddrec_server_stop(ctx->srv[2]);
	ctx->srv[2] = NULL;
	KUNIT_EXPECT_TRUE(test, wait_repaired(test, l.va, 3));
	WRITE_ONCE(l.stop, true);
	wait_for_completion(&l.done);
	KUNIT_EXPECT_EQ(test, l.errors, 0);
	KUNIT_EXPECT_GT(test, l.rounds, 5);
	KUNIT_EXPECT_EQ(test, vc_get(vc_of(test), l.va, NULL, buf, l.size), 0);
	KUNIT_EXPECT_EQ(test, memcmp(buf, l.shadow, l.size), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), l.va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vcrep_drain_moves_everything_off_a_peer(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	const size_t size = 10 * CHUNK;
	struct virgo_peer *peer;
	virgo_addr_t va;
	char spec[24];
	int i;

	start_repairing(test, 3);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), size, NULL, &va), 0);
	expect_round_trip(test, va, size);
	KUNIT_ASSERT_GT(test, clouddrec_server_lent_bytes(ctx->srv[1]), 0ULL);
	snprintf(spec, sizeof(spec), "127.0.0.1:%u",
		 clouddrec_server_port(ctx->srv[1]));
	KUNIT_EXPECT_EQ(test, virgo_peer_drain(&vc_of(test)->peers, spec), 0);
	KUNIT_EXPECT_EQ(test, virgo_peer_drain(&vc_of(test)->peers,
					       "127.0.0.1:1"), -ENOENT);
	KUNIT_EXPECT_TRUE(test, wait_repaired(test, va, 2));
	peer = virgo_peer_get(&vc_of(test)->peers, 2);
	KUNIT_ASSERT_NOT_NULL(test, peer);
	KUNIT_EXPECT_EQ(test, atomic64_read(&peer->placed), 0LL);
	virgo_peer_put(peer);
	/* Its old replicas were freed there: it lends nothing now. */
	for (i = 0; i < 100 && clouddrec_server_lent_bytes(ctx->srv[1]); i++)
		msleep(20);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv[1]), 0ULL);
	expect_round_trip(test, va, size);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static struct kunit_case virgo_replica_cases[] = {
	KUNIT_CASE(vcr_replicas_go_to_distinct_peers_and_domains),
	KUNIT_CASE(vcr_read_fails_over_when_a_replica_dies),
	KUNIT_CASE(vcr_write_with_a_replica_down_marks_it_stale),
	KUNIT_CASE(vcr_write_past_a_deaf_replica_still_succeeds),
	KUNIT_CASE(vcr_stale_replica_is_never_read),
	KUNIT_CASE(vcr_too_few_peers_for_the_replicas),
	KUNIT_CASE(vcrep_lost_node_replicas_are_recreated),
	KUNIT_CASE(vcrep_io_during_repair_stays_consistent),
	KUNIT_CASE(vcrep_drain_moves_everything_off_a_peer),
	{}
};

static struct kunit_suite virgo_replica_suite = {
	.name = "virgo_replicas",
	.suite_init = vc_test_suite_init,
	.init = vc_test_init,
	.exit = vc_test_exit,
	.test_cases = virgo_replica_cases,
};

/* ---- the API's contract: owners, len 0, introspection, deadlines ------ */

/* Two modules, as far as owners go: their owner cookies. */
static const char vca_mod_a[] = "vca_mod_a";
static const char vca_mod_b[] = "vca_mod_b";

static void vca_modules_cannot_touch_each_others_memory(struct kunit *test)
{
	struct virgo_client *vc;
	virgo_addr_t va, vb;
	u8 buf[16] = "module a's bytes";

	start_cluster(test, 1, NULL, NULL);
	vc = vc_of(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc, 3 * CHUNK, vca_mod_a, &va), 0);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc, CHUNK, vca_mod_b, &vb), 0);
	KUNIT_EXPECT_EQ(test, vc_set(vc, va, vca_mod_a, buf, sizeof(buf)), 0);
	KUNIT_EXPECT_EQ(test, vc_set(vc, va, vca_mod_b, buf, sizeof(buf)),
			-EPERM);
	KUNIT_EXPECT_EQ(test, vc_get(vc, va, vca_mod_b, buf, sizeof(buf)),
			-EPERM);
	KUNIT_EXPECT_EQ(test, vc_get(vc, va, NULL, buf, sizeof(buf)), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, vca_mod_b), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, NULL), -EPERM);
	/* "Free all mine" frees only mine. */
	KUNIT_EXPECT_EQ(test, vc_free_all(vc, vca_mod_b, false), 1U);
	KUNIT_EXPECT_EQ(test, vc_free_all(vc, NULL, false), 0U);
	memset(buf, 0, sizeof(buf));
	KUNIT_EXPECT_EQ(test, vc_get(vc, va, vca_mod_a, buf, sizeof(buf)), 0);
	KUNIT_EXPECT_EQ(test, memcmp(buf, "module a's bytes", sizeof(buf)), 0);
	/* Module a goes away holding it: freed, and counted once. */
	KUNIT_EXPECT_EQ(test, virgo_api_owner_gone(vc, vca_mod_a, vca_mod_a),
			1U);
	KUNIT_EXPECT_EQ(test, virgo_api_owner_gone(vc, vca_mod_a, vca_mod_a),
			0U);
	KUNIT_EXPECT_EQ(test, virgo_xlat_count(&vc->table), 0UL);
	KUNIT_EXPECT_EQ(test, lent_everywhere(test), 0ULL);
}

static void vca_len_zero_checks_the_address_only(struct kunit *test)
{
	struct virgo_client *vc;
	virgo_addr_t va;

	start_cluster(test, 1, NULL, NULL);
	vc = vc_of(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc, CHUNK, vca_mod_a, &va), 0);
	KUNIT_EXPECT_EQ(test, vc_get(vc, va + 10, vca_mod_a, NULL, 0), 0);
	KUNIT_EXPECT_EQ(test, vc_set(vc, va + 10, vca_mod_a, NULL, 0), 0);
	KUNIT_EXPECT_EQ(test, vc_get(vc, va, vca_mod_b, NULL, 0), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_get(vc, va + 64 * CHUNK, vca_mod_a, NULL, 0),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, vc_get(vc, 0, vca_mod_a, NULL, 0), -ENOENT);
	KUNIT_EXPECT_EQ(test, vc_get(vc, va, vca_mod_a, NULL, 1), -EINVAL);
	/* No place for the answer: an error, never a NULL dereference. */
	KUNIT_EXPECT_EQ(test, __virgo_size(NULL, va, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, __virgo_stat(NULL, va, NULL), -EINVAL);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, vca_mod_a), 0);
	KUNIT_EXPECT_EQ(test, vc_get(vc, va, vca_mod_a, NULL, 0), -ENOENT);
}

static void vca_stat_tells_size_chunks_and_peers(struct kunit *test)
{
	const size_t size = 9 * CHUNK + 5;
	struct virgo_alloc_info info;
	struct virgo_client *vc;
	virgo_addr_t va;

	start_cluster(test, 2, NULL, NULL);
	vc = vc_of(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc, size, vca_mod_a, &va), 0);
	KUNIT_ASSERT_EQ(test, vc_stat(vc, va + size - 1, vca_mod_a, &info,
				      true), 0);
	KUNIT_EXPECT_EQ(test, info.addr, va);
	KUNIT_EXPECT_EQ(test, info.size, (u64)size);
	KUNIT_EXPECT_EQ(test, info.chunk_size, (u32)CHUNK);
	KUNIT_EXPECT_EQ(test, info.nr_chunks, 10U);
	KUNIT_EXPECT_GE(test, info.nr_peers, 1U);
	KUNIT_EXPECT_LE(test, info.nr_peers, 2U);
	KUNIT_EXPECT_EQ(test, vc_stat(vc, va, vca_mod_b, &info, true), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_stat(vc, va + size, vca_mod_a, &info, true),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, vca_mod_a), 0);

	/* Every replica's peer counts (it counted the first replica's). */
	wait_peers_up(test);
	KUNIT_ASSERT_EQ(test, vc_malloc_replicas(vc, CHUNK, 2, vca_mod_a, &va),
			0);
	KUNIT_ASSERT_EQ(test, vc_stat(vc, va, vca_mod_a, &info, true), 0);
	KUNIT_EXPECT_EQ(test, info.nr_chunks, 1U);
	KUNIT_EXPECT_EQ(test, info.nr_peers, 2U);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, vca_mod_a), 0);
}

static void vca_deadline_bounds_a_call(struct kunit *test)
{
	u8 *buf = kunit_kzalloc(test, 4 * CHUNK, GFP_KERNEL);
	struct virgo_client *vc;
	unsigned long start;
	virgo_addr_t va;
	u64 before;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	start_cluster(test, 1, NULL, NULL);
	vc = vc_of(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc, 4 * CHUNK, NULL, &va), 0);
	/* In time: works. */
	KUNIT_EXPECT_EQ(test, vc_rw_deadline(vc, va, NULL, buf, 4 * CHUNK,
					     true, jiffies + 2 * HZ), 0);
	/* Already past: nothing is sent. */
	before = requests_served(test);
	KUNIT_EXPECT_EQ(test, vc_rw_deadline(vc, va, NULL, buf, 4 * CHUNK,
					     false, jiffies - 1), -ETIMEDOUT);
	KUNIT_EXPECT_EQ(test, requests_served(test), before);
	/* A reply held back past the deadline: the call ends at it. */
	hook_opcode = VIRGO_OP_READ;
	hook_stall_ms = 1500;
	atomic_set(&hook_armed, 1);
	virgo_peer_test_rx = hook_stall_reply;
	start = jiffies;
	KUNIT_EXPECT_EQ(test, vc_rw_deadline(vc, va, NULL, buf, CHUNK, false,
					     jiffies + HZ / 5), -ETIMEDOUT);
	KUNIT_EXPECT_LT(test, (long)(jiffies - start), (long)(HZ / 2));
	msleep(1500);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, NULL), 0);
}

/* Split @len bytes at @buf into @n kvecs of the sizes @sizes (cycled). */
static unsigned int vca_split(struct kvec *vec, u8 *buf, size_t len,
			      const size_t *sizes, unsigned int nsizes)
{
	unsigned int n = 0;
	size_t off = 0;

	while (off < len) {
		size_t k = min(sizes[n % nsizes], len - off);

		vec[n].iov_base = buf + off;
		vec[n].iov_len = k;
		off += k;
		n++;
	}
	return n;
}

static void vca_vectors_round_trip(struct kunit *test)
{
	/* Odd sizes, an empty one, runs across chunk boundaries. */
	static const size_t wsizes[] = { 1, 4095, 0, 4097, 512, 3 * CHUNK + 5 };
	static const size_t rsizes[] = { 7000, 1, 4096, 0, 2 * CHUNK - 1 };
	const size_t size = 9 * CHUNK + 7, len = size - 3;
	struct kvec *vec = kunit_kcalloc(test, len, sizeof(*vec), GFP_KERNEL);
	u8 *src = kunit_kmalloc(test, len, GFP_KERNEL);
	u8 *dst = kunit_kzalloc(test, len, GFP_KERNEL);
	unsigned long in_time = jiffies + 10 * HZ;
	struct virgo_client *vc;
	struct kvec bad[2];
	unsigned int n;
	virgo_addr_t va;

	KUNIT_ASSERT_NOT_NULL(test, vec);
	KUNIT_ASSERT_NOT_NULL(test, src);
	KUNIT_ASSERT_NOT_NULL(test, dst);
	get_random_bytes(src, len);
	start_cluster(test, 2, NULL, NULL);
	vc = vc_of(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc, size, vca_mod_a, &va), 0);

	n = vca_split(vec, src, len, wsizes, ARRAY_SIZE(wsizes));
	KUNIT_EXPECT_EQ(test, vc_rwv_deadline(vc, va + 3, vca_mod_a, vec, n,
					      true, in_time), 0);
	/* Read back through another split, and as one buffer. */
	n = vca_split(vec, dst, len, rsizes, ARRAY_SIZE(rsizes));
	KUNIT_EXPECT_EQ(test, vc_rwv_deadline(vc, va + 3, vca_mod_a, vec, n,
					      false, in_time), 0);
	KUNIT_EXPECT_EQ(test, memcmp(dst, src, len), 0);
	memset(dst, 0, len);
	KUNIT_EXPECT_EQ(test, vc_get(vc, va + 3, vca_mod_a, dst, len), 0);
	KUNIT_EXPECT_EQ(test, memcmp(dst, src, len), 0);

	/* A deadline already past: nothing is sent. */
	KUNIT_EXPECT_EQ(test, vc_rwv_deadline(vc, va + 3, vca_mod_a, vec, n,
					      true, jiffies - 1), -ETIMEDOUT);

	/* Bad vectors: nothing moves. */
	bad[0] = (struct kvec){ .iov_base = dst, .iov_len = 8 };
	bad[1] = (struct kvec){ .iov_base = NULL, .iov_len = 8 };
	KUNIT_EXPECT_EQ(test, vc_rwv_deadline(vc, va, vca_mod_a, bad, 2, true,
					      in_time), -EINVAL);
	KUNIT_EXPECT_EQ(test, vc_rwv_deadline(vc, va, vca_mod_a, NULL, 1,
					      false, in_time), -EINVAL);
	KUNIT_EXPECT_EQ(test, vc_rwv_deadline(vc, va, vca_mod_a, vec,
					      UIO_MAXIOV + 1, false, in_time),
			-EINVAL);
	bad[1] = (struct kvec){ .iov_base = dst, .iov_len = size };
	KUNIT_EXPECT_EQ(test, vc_rwv_deadline(vc, va, vca_mod_a, bad, 2, true,
					      in_time), -EINVAL);
	KUNIT_EXPECT_EQ(test, vc_rwv_deadline(vc, va, vca_mod_b, vec, 1, true,
					      in_time), -EPERM);
	KUNIT_EXPECT_EQ(test, vc_rwv_deadline(vc, va, vca_mod_a, NULL, 0,
					      false, in_time), 0);
	memset(dst, 0, len);
	KUNIT_EXPECT_EQ(test, vc_get(vc, va + 3, vca_mod_a, dst, len), 0);
	KUNIT_EXPECT_EQ(test, memcmp(dst, src, len), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, vca_mod_a), 0);
}

/*
 * Connected peer sockets, if every one of them has SOCK_MEMALLOC exactly
 * when @on; else -1.
 */
static int vca_memalloc_socks(struct virgo_client *vc, bool on)
{
	struct virgo_peer *peer;
	int n = 0;

	mutex_lock(&vc->peers.lock);
	list_for_each_entry(peer, &vc->peers.list, node) {
		mutex_lock(&peer->conn_lock);
		if (peer->sock && n >= 0)
			n = sock_flag(peer->sock->sk, SOCK_MEMALLOC) == on ?
				n + 1 : -1;
		mutex_unlock(&peer->conn_lock);
	}
	mutex_unlock(&vc->peers.lock);
	return n;
}

static void vca_memalloc_marks_every_peer_socket(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	struct virgo_client *vc;
	char spec[32];
	virgo_addr_t va;

	start_cluster(test, 2, NULL, NULL);
	vc = vc_of(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc, 4 * CHUNK, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, vca_memalloc_socks(vc, false), 2);
	virgo_peers_set_memalloc(&vc->peers, true);
	KUNIT_EXPECT_EQ(test, vca_memalloc_socks(vc, true), 2);
	/* A peer connected afterwards gets it too. */
	ctx->srv[2] = start_one(test, SERVER_MEMORY, NULL);
	snprintf(spec, sizeof(spec), "127.0.0.1:%u",
		 clouddrec_server_port(ctx->srv[2]));
	KUNIT_ASSERT_EQ(test, virgo_peer_add(&vc->peers, spec), 0);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, NULL), 0);
	KUNIT_ASSERT_EQ(test, vc_malloc(vc, 12 * CHUNK, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, vca_memalloc_socks(vc, true), 3);
	virgo_peers_set_memalloc(&vc->peers, false);
	KUNIT_EXPECT_EQ(test, vca_memalloc_socks(vc, false), 3);
	KUNIT_EXPECT_EQ(test, vc_free(vc, va, NULL), 0);
}

static struct kunit_case virgo_api_cases[] = {
	KUNIT_CASE(vca_modules_cannot_touch_each_others_memory),
	KUNIT_CASE(vca_len_zero_checks_the_address_only),
	KUNIT_CASE(vca_stat_tells_size_chunks_and_peers),
	KUNIT_CASE(vca_deadline_bounds_a_call),
	KUNIT_CASE(vca_vectors_round_trip),
	KUNIT_CASE(vca_memalloc_marks_every_peer_socket),
	{}
};

static struct kunit_suite virgo_api_suite = {
	.name = "virgo_api",
	.suite_init = vc_test_suite_init,
	.init = vc_test_init,
	.exit = vc_test_exit,
	.test_cases = virgo_api_cases,
};

kunit_test_suites(&virgo_client_test_suite, &virgo_client_fault_suite,
		  &virgo_replica_suite, &virgo_api_suite);

MODULE_LICENSE("GPL");
