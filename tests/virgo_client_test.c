// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the virgo client against real virgo_clouddrec servers
 * on loopback.
 */

#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/netdevice.h>
#include <linux/random.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <net/net_namespace.h>

#include "virgo_test_net.h"
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
	char peers[NR_SERVERS * 24];
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

static struct clouddrec_server *start_one(struct kunit *test, u64 memory,
					  const char *psk)
{
	struct clouddrec_config cfg;
	struct clouddrec_server *srv;

	clouddrec_config_default(&cfg);
	cfg.addr = htonl(INADDR_LOOPBACK);
	cfg.max_memory = memory;
	cfg.max_chunk = 65536;
	cfg.max_sessions = 16;
	cfg.io_timeout_ms = 2000;
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
		.chunk_size = CHUNK,
		.connect_timeout_ms = 2000,
		.rpc_timeout_ms = 3000,
	};
	int i, len = 0;

	for (i = 0; i < n; i++) {
		ctx->srv[i] = start_one(test, SERVER_MEMORY, psk);
		len += scnprintf(ctx->peers + len, sizeof(ctx->peers) - len,
				 "%s127.0.0.1:%u", i ? "," : "",
				 clouddrec_server_port(ctx->srv[i]));
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

static void vc_test_exit(struct kunit *test)
{
	struct vc_test_ctx *ctx = vctx(test);
	int i;

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

	r.buf = kunit_kzalloc(test, r.len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r.buf);
	start_cluster(test, 2, NULL, NULL);
	r.vc = vc_of(test);
	KUNIT_ASSERT_EQ(test, vc_malloc(r.vc, r.len, NULL, &r.va), 0);
	init_completion(&r.done);
	KUNIT_ASSERT_FALSE(test, IS_ERR(kthread_run(vc_reader_fn, &r,
						    "vc-reader")));
	msleep(200);
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
	KUNIT_ASSERT_EQ(test, vc_malloc(vc_of(test), 100, NULL, &va), 0);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec),
			-EBUSY);
	KUNIT_EXPECT_EQ(test, vc_free(vc_of(test), va, NULL), 0);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec), 0);
	KUNIT_EXPECT_EQ(test, virgo_peer_del(&vc_of(test)->peers, spec),
			-ENOENT);
	KUNIT_EXPECT_EQ(test, vc_malloc(vc_of(test), 100, NULL, &va), -ENODEV);
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

static struct kunit_case virgo_client_test_cases[] = {
	KUNIT_CASE(vc_test_integrity_random_offsets),
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
	KUNIT_CASE(vc_test_concurrent_users),
	KUNIT_CASE(vc_test_destroy_frees_remote_memory),
	KUNIT_CASE(vc_test_thousand_peers),
	{}
};

static struct kunit_suite virgo_client_test_suite = {
	.name = "virgo_client",
	.suite_init = vc_test_suite_init,
	.init = vc_test_init,
	.exit = vc_test_exit,
	.test_cases = virgo_client_test_cases,
};

kunit_test_suite(virgo_client_test_suite);

MODULE_LICENSE("GPL");
