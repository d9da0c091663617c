// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for virgo_clouddrec: a live server on loopback, driven by a
 * raw kernel-socket client that speaks the wire protocol byte by byte.
 */

#include <crypto/hash.h>
#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/inet.h>
#include <linux/net.h>
#include <linux/netdevice.h>
#include <linux/random.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <net/net_namespace.h>
#include <net/sock.h>

#include <virgo_wire.h>

#include "virgo_test_net.h"
#include "../virgo_clouddrec.h"

#define TEST_PSK	"correct horse battery staple"
#define TEST_CHUNK	(256 * 1024)
#define TEST_MEMORY	(4ULL * 1024 * 1024)

struct cd_test_ctx {
	struct clouddrec_server *srv;
	struct clouddrec_config cfg;
	struct socket *socks[8];
	u8 *buf;		/* reply payloads, TEST_CHUNK + 64 bytes */
	u64 tag;
};

static struct cd_test_ctx *ctx_of(struct kunit *test)
{
	return test->priv;
}

/* ---- a raw client ---------------------------------------------------- */

static int tc_send(struct socket *sock, const void *buf, size_t len)
{
	while (len) {
		struct kvec iov = { .iov_base = (void *)buf, .iov_len = len };
		struct msghdr msg = { .msg_flags = MSG_NOSIGNAL };
		int ret = kernel_sendmsg(sock, &msg, &iov, 1, len);

		if (ret <= 0)
			return ret ? ret : -EPIPE;
		buf += ret;
		len -= ret;
	}
	return 0;
}

/* Receive exactly @len bytes; 0, -ECONNRESET on EOF, or an errno. */
static int tc_recv(struct socket *sock, void *buf, size_t len)
{
	while (len) {
		struct kvec iov = { .iov_base = buf, .iov_len = len };
		struct msghdr msg = {};
		int ret = kernel_recvmsg(sock, &msg, &iov, 1, len, MSG_WAITALL);

		if (!ret)
			return -ECONNRESET;
		if (ret < 0)
			return ret;
		buf += ret;
		len -= ret;
	}
	return 0;
}

/* True when the server closed the connection (EOF or reset). */
static bool tc_closed(struct socket *sock)
{
	u8 byte;
	int ret = tc_recv(sock, &byte, 1);

	return ret == -ECONNRESET || ret == -EPIPE;
}

static struct socket *tc_connect(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
		.sin_port = htons(clouddrec_server_port(ctx->srv)),
	};
	struct socket *sock;
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(ctx->socks) && ctx->socks[i]; i++)
		;
	KUNIT_ASSERT_LT(test, i, (int)ARRAY_SIZE(ctx->socks));
	ret = sock_create_kern(&init_net, AF_INET, SOCK_STREAM, IPPROTO_TCP,
			       &sock);
	KUNIT_ASSERT_EQ(test, ret, 0);
	ctx->socks[i] = sock;
	sock->sk->sk_rcvtimeo = 10 * HZ;
	sock->sk->sk_sndtimeo = 10 * HZ;
	ret = kernel_connect(sock, (struct sockaddr *)&sin, sizeof(sin), 0);
	KUNIT_ASSERT_EQ(test, ret, 0);
	return sock;
}

static void tc_close(struct kunit *test, struct socket *sock)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	int i;

	for (i = 0; i < ARRAY_SIZE(ctx->socks); i++) {
		if (ctx->socks[i] == sock) {
			ctx->socks[i] = NULL;
			sock_release(sock);
		}
	}
}

static int tc_send_frame(struct socket *sock, u8 op, u64 tag,
			 const void *payload, u32 len)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	int ret;

	virgo_wire_hdr_pack(hdr, op, 0, len, 0, tag);
	ret = tc_send(sock, hdr, sizeof(hdr));
	if (ret || !len)
		return ret;
	return tc_send(sock, payload, len);
}

/*
 * Read one reply into ctx->buf; checks it is a well-formed reply to @op
 * with @tag.  Returns its wire status, or a negative errno.
 */
static int tc_read_reply(struct kunit *test, struct socket *sock, u8 op,
			 u64 tag, u32 *len)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct virgo_wire_limits lim = {
		.max_payload = TEST_CHUNK + 64,
		.max_chunk = TEST_CHUNK,
		.max_batch = 64,
	};
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct virgo_wire_msg m;
	int ret;

	ret = tc_recv(sock, hdr, sizeof(hdr));
	if (ret)
		return ret;
	ret = virgo_wire_hdr_unpack(hdr, &m, &lim);
	KUNIT_ASSERT_EQ(test, ret, 0);
	KUNIT_EXPECT_TRUE(test, virgo_wire_is_reply(&m));
	KUNIT_EXPECT_EQ(test, m.opcode, op);
	KUNIT_EXPECT_EQ(test, m.tag, tag);
	ret = tc_recv(sock, ctx->buf, m.len);
	if (ret)
		return ret;
	if (!m.status)
		KUNIT_EXPECT_EQ(test, virgo_wire_check_rep(&m, ctx->buf, &lim),
				0);
	if (len)
		*len = m.len;
	return m.status;
}

/* One request, one reply: returns the wire status or a negative errno. */
static int tc_call(struct kunit *test, struct socket *sock, u8 op,
		   const void *payload, u32 len, u32 *rlen)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u64 tag = ++ctx->tag;
	int ret;

	ret = tc_send_frame(sock, op, tag, payload, len);
	if (ret)
		return ret;
	return tc_read_reply(test, sock, op, tag, rlen);
}

static int tc_hello(struct kunit *test, struct socket *sock,
		    struct virgo_wire_hello_rep *rep, u8 *client_nonce)
{
	struct virgo_wire_hello_req req = {
		.ver_min = 1,
		.ver_max = 1,
	};
	u8 p[VIRGO_WIRE_HELLO_REQ_LEN];
	int ret;

	get_random_bytes(req.nonce, sizeof(req.nonce));
	if (client_nonce)
		memcpy(client_nonce, req.nonce, sizeof(req.nonce));
	KUNIT_ASSERT_EQ(test, virgo_wire_put_hello_req(p, sizeof(p), &req),
			(int)sizeof(p));
	ret = tc_call(test, sock, VIRGO_OP_HELLO, p, sizeof(p), NULL);
	if (!ret && rep)
		virgo_wire_get_hello_rep(ctx_of(test)->buf, rep);
	return ret;
}

/* A connected, greeted session (no key). */
static struct socket *tc_session(struct kunit *test)
{
	struct socket *sock = tc_connect(test);

	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, NULL, NULL), 0);
	return sock;
}

/* ALLOC @count chunks; fills @handles.  Returns the wire status. */
static int tc_alloc(struct kunit *test, struct socket *sock, const u32 *sizes,
		    u32 count, u64 *handles)
{
	u8 *p = kunit_kzalloc(test, 8 + 4 * count, GFP_KERNEL);
	u32 i, rlen;
	int len, ret;

	KUNIT_ASSERT_NOT_NULL(test, p);
	len = virgo_wire_put_alloc_req(p, 8 + 4 * count, sizes, count);
	KUNIT_ASSERT_GT(test, len, 0);
	ret = tc_call(test, sock, VIRGO_OP_ALLOC, p, len, &rlen);
	if (ret)
		return ret;
	KUNIT_ASSERT_EQ(test, virgo_wire_batch_count(ctx_of(test)->buf),
			count);
	for (i = 0; i < count; i++)
		handles[i] = virgo_wire_handle(ctx_of(test)->buf, i);
	return 0;
}

/* FREE; returns the number freed or a negative wire status. */
static int tc_free(struct kunit *test, struct socket *sock, const u64 *handles,
		   u32 count)
{
	u8 p[8 + 8 * 16];
	int len, ret;

	KUNIT_ASSERT_LE(test, count, 16U);
	len = virgo_wire_put_free_req(p, sizeof(p), handles, count);
	KUNIT_ASSERT_GT(test, len, 0);
	ret = tc_call(test, sock, VIRGO_OP_FREE, p, len, NULL);
	if (ret)
		return -ret;
	return virgo_wire_freed(ctx_of(test)->buf);
}

static int tc_write(struct kunit *test, struct socket *sock, u64 handle,
		    u32 offset, const void *data, u32 length)
{
	struct virgo_wire_rw rw = {
		.handle = handle, .offset = offset, .length = length,
	};
	u8 *p = kunit_kmalloc(test, 16 + length, GFP_KERNEL);
	int ret;

	KUNIT_ASSERT_NOT_NULL(test, p);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(p, 16, &rw), 16);
	memcpy(p + 16, data, length);
	ret = tc_call(test, sock, VIRGO_OP_WRITE, p, 16 + length, NULL);
	kunit_kfree(test, p);
	return ret;
}

/* READ into ctx->buf; returns the wire status. */
static int tc_read(struct kunit *test, struct socket *sock, u64 handle,
		   u32 offset, u32 length)
{
	struct virgo_wire_rw rw = {
		.handle = handle, .offset = offset, .length = length,
	};
	u8 p[16];
	u32 rlen = 0;
	int ret;

	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(p, 16, &rw), 16);
	ret = tc_call(test, sock, VIRGO_OP_READ, p, 16, &rlen);
	if (!ret)
		KUNIT_EXPECT_EQ(test, rlen, length);
	return ret;
}

/* Wait up to 5 s for the server to have no session and nothing lent. */
static bool server_idle(struct clouddrec_server *srv)
{
	int i;

	for (i = 0; i < 250; i++) {
		if (!clouddrec_server_sessions(srv) &&
		    !clouddrec_server_lent_bytes(srv) &&
		    !clouddrec_server_lent_chunks(srv))
			return true;
		msleep(20);
	}
	return false;
}

/* ---- fixtures -------------------------------------------------------- */

static int cd_test_suite_init(struct kunit_suite *suite)
{
	return virgo_test_lo_up();
}

static void start_server(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);

	ctx->srv = clouddrec_server_start(&ctx->cfg);
	KUNIT_ASSERT_FALSE(test, IS_ERR(ctx->srv));
	KUNIT_ASSERT_NE(test, clouddrec_server_port(ctx->srv), 0);
}

static int cd_test_init(struct kunit *test)
{
	struct cd_test_ctx *ctx;

	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	ctx->buf = kunit_kzalloc(test, TEST_CHUNK + 64, GFP_KERNEL);
	if (!ctx->buf)
		return -ENOMEM;
	clouddrec_config_default(&ctx->cfg);
	ctx->cfg.addr = htonl(INADDR_LOOPBACK);
	ctx->cfg.port = 0;
	ctx->cfg.max_memory = TEST_MEMORY;
	ctx->cfg.max_chunk = TEST_CHUNK;
	ctx->cfg.max_batch = 64;
	ctx->cfg.max_sessions = 4;
	ctx->cfg.idle_timeout_ms = 10000;
	ctx->cfg.io_timeout_ms = 2000;
	test->priv = ctx;
	return 0;
}

static void cd_test_exit(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	int i;

	for (i = 0; i < ARRAY_SIZE(ctx->socks); i++)
		if (ctx->socks[i])
			sock_release(ctx->socks[i]);
	if (!IS_ERR_OR_NULL(ctx->srv))
		clouddrec_server_stop(ctx->srv);
}

/* ---- cases ----------------------------------------------------------- */

static void cd_test_hello_reports_limits_and_capacity(struct kunit *test)
{
	struct virgo_wire_hello_rep rep;
	struct socket *sock;

	start_server(test);
	sock = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, &rep, NULL), 0);
	KUNIT_EXPECT_EQ(test, rep.version, 1);
	KUNIT_EXPECT_EQ(test, rep.flags, 0);
	KUNIT_EXPECT_EQ(test, rep.max_chunk, (u32)TEST_CHUNK);
	KUNIT_EXPECT_EQ(test, rep.max_batch, 64U);
	KUNIT_EXPECT_EQ(test, rep.capacity, TEST_MEMORY);
	KUNIT_EXPECT_EQ(test, rep.free, TEST_MEMORY);
	/* A second HELLO is a sequencing error, not a crash. */
	KUNIT_EXPECT_EQ(test, tc_hello(test, sock, NULL, NULL), VIRGO_ST_INVAL);
}

static void cd_test_request_before_hello_is_refused(struct kunit *test)
{
	u32 size = 4096;
	u64 handle;
	struct socket *sock;

	start_server(test);
	sock = tc_connect(test);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, &size, 1, &handle),
			VIRGO_ST_PERM);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx_of(test)->srv),
			0ULL);
}

static void cd_test_roundtrip_random_data(struct kunit *test)
{
	static const u32 sizes[] = { 1, 4096, 65537, TEST_CHUNK };
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *data = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	u64 handles[ARRAY_SIZE(sizes)];
	struct socket *sock;
	int i, round;

	KUNIT_ASSERT_NOT_NULL(test, data);
	start_server(test);
	sock = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, sizes, ARRAY_SIZE(sizes),
				       handles), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 4ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv),
			1ULL + 4096 + 65537 + TEST_CHUNK);

	for (round = 0; round < 32; round++) {
		int c = get_random_u32_below(ARRAY_SIZE(sizes));
		u32 off = get_random_u32_below(sizes[c]);
		u32 len = 1 + get_random_u32_below(sizes[c] - off);

		get_random_bytes(data, len);
		KUNIT_ASSERT_EQ(test, tc_write(test, sock, handles[c], off,
					       data, len), 0);
		KUNIT_ASSERT_EQ(test, tc_read(test, sock, handles[c], off,
					      len), 0);
		KUNIT_ASSERT_EQ(test, memcmp(ctx->buf, data, len), 0);
	}

	KUNIT_EXPECT_EQ(test, tc_free(test, sock, handles, ARRAY_SIZE(sizes)),
			(int)ARRAY_SIZE(sizes));
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv), 0ULL);
	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		KUNIT_EXPECT_EQ(test, tc_read(test, sock, handles[i], 0, 1),
				VIRGO_ST_NOENT);
}

static void cd_test_fresh_chunk_reads_zero(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 size = 8192;
	struct socket *sock;
	u64 handle;

	start_server(test);
	sock = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, &size, 1, &handle), 0);
	KUNIT_ASSERT_EQ(test, tc_read(test, sock, handle, 0, size), 0);
	KUNIT_EXPECT_TRUE(test, !memchr_inv(ctx->buf, 0, size));
}

static void cd_test_other_session_handle_refused(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct socket *a, *b;
	u8 data[16] = "session a data";
	u32 size = 4096;
	u64 handle;

	start_server(test);
	a = tc_session(test);
	b = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, &size, 1, &handle), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, a, handle, 0, data, 16), 0);

	KUNIT_EXPECT_EQ(test, tc_read(test, b, handle, 0, 16), VIRGO_ST_NOENT);
	KUNIT_EXPECT_EQ(test, tc_write(test, b, handle, 0, "xxxx", 4),
			VIRGO_ST_NOENT);
	KUNIT_EXPECT_EQ(test, tc_free(test, b, &handle, 1), 0);

	KUNIT_ASSERT_EQ(test, tc_read(test, a, handle, 0, 16), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, 16), 0);
	KUNIT_EXPECT_GE(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_HANDLE), 3ULL);
}

/*
 * Handles of different sessions never coincide: a stale handle of one
 * session (e.g. a client that reconnected) is NOENT in any other and
 * never reaches that session's chunks.
 */
static void cd_test_handles_disjoint_across_sessions(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 data_a[16] = "session a bytes", data_b[16] = "session b bytes";
	u32 sizes[4] = { 4096, 4096, 4096, 4096 };
	u64 ha[4], hb[4], hc[4];
	struct socket *a, *b, *c;
	int i, j;

	start_server(test);
	a = tc_session(test);
	b = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, sizes, 4, ha), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, sizes, 4, hb), 0);
	for (i = 0; i < 4; i++) {
		KUNIT_ASSERT_EQ(test, tc_write(test, a, ha[i], 0, data_a, 16),
				0);
		KUNIT_ASSERT_EQ(test, tc_write(test, b, hb[i], 0, data_b, 16),
				0);
		for (j = 0; j < 4; j++)
			KUNIT_EXPECT_NE(test, ha[i], hb[j]);
	}
	/* A's handles sent to B: nothing of B's is touched. */
	for (i = 0; i < 4; i++) {
		KUNIT_EXPECT_EQ(test, tc_write(test, b, ha[i], 0, "xxxx", 4),
				VIRGO_ST_NOENT);
		KUNIT_EXPECT_EQ(test, tc_read(test, b, ha[i], 0, 16),
				VIRGO_ST_NOENT);
	}
	KUNIT_EXPECT_EQ(test, tc_free(test, b, ha, 4), 0);
	for (i = 0; i < 4; i++) {
		KUNIT_ASSERT_EQ(test, tc_read(test, b, hb[i], 0, 16), 0);
		KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data_b, 16), 0);
	}
	/* A reconnects: its old handles are NOENT in the new session too. */
	tc_close(test, a);
	c = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, c, sizes, 4, hc), 0);
	for (i = 0; i < 4; i++) {
		KUNIT_ASSERT_EQ(test, tc_write(test, c, hc[i], 0, data_a, 16),
				0);
		KUNIT_EXPECT_EQ(test, tc_write(test, c, ha[i], 0, "xxxx", 4),
				VIRGO_ST_NOENT);
		KUNIT_ASSERT_EQ(test, tc_read(test, c, hc[i], 0, 16), 0);
		KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data_a, 16), 0);
	}
	KUNIT_EXPECT_EQ(test, tc_free(test, c, ha, 4), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 8ULL);
}

static void cd_test_out_of_bounds_refused(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 size = 4096;
	struct socket *sock;
	u64 handle;

	start_server(test);
	sock = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, &size, 1, &handle), 0);
	KUNIT_EXPECT_EQ(test, tc_write(test, sock, handle, 4095, "ab", 2),
			VIRGO_ST_RANGE);
	KUNIT_EXPECT_EQ(test, tc_read(test, sock, handle, 4096, 1),
			VIRGO_ST_RANGE);
	KUNIT_EXPECT_EQ(test, tc_read(test, sock, handle, 0, 4097),
			VIRGO_ST_RANGE);
	/* offset + length past max_chunk is caught by the codec. */
	KUNIT_EXPECT_EQ(test, tc_read(test, sock, handle, 0xffffffff, 2),
			VIRGO_ST_RANGE);
	KUNIT_EXPECT_EQ(test, tc_write(test, sock, handle, 4095, "a", 1), 0);
	KUNIT_EXPECT_GE(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_RANGE), 3ULL);
}

static void cd_test_over_limit_refused(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[65], i;
	u64 handles[65];
	struct socket *sock;

	start_server(test);
	sock = tc_session(test);
	sizes[0] = TEST_CHUNK + 1;
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, sizes, 1, handles),
			VIRGO_ST_TOOBIG);
	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		sizes[i] = 1;
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, sizes, 65, handles),
			VIRGO_ST_TOOBIG);
	/* 17 x 256 KiB > 4 MiB lendable: all or nothing. */
	for (i = 0; i < 17; i++)
		sizes[i] = TEST_CHUNK;
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, sizes, 17, handles),
			VIRGO_ST_NOMEM);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv), 0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 0ULL);
	/* Exactly the budget fits. */
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, sizes, 16, handles), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv),
			TEST_MEMORY);
}

static void cd_test_malformed_payload_keeps_session(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	/* ALLOC claiming two sizes, carrying one. */
	u8 p[12] = { 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
	struct socket *sock;
	u32 rlen;

	start_server(test);
	sock = tc_session(test);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_ALLOC, p, sizeof(p),
				      NULL), VIRGO_ST_INVAL);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_PING, "ping", 4,
				      &rlen), 0);
	KUNIT_EXPECT_EQ(test, rlen, 4U);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, "ping", 4), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_PAYLOAD), 1ULL);
}

/*
 * A WRITE's data goes straight into the chunk once its head is checked;
 * a refused one's data is read and dropped: the session goes on.
 */
static void cd_test_refused_write_data_is_skipped(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct virgo_wire_rw rw = { .handle = 12345, .length = 100000 };
	u32 size = 4096, rlen;
	struct socket *sock;
	u64 handle;
	u8 *p;

	start_server(test);
	sock = tc_session(test);
	p = kunit_kzalloc(test, 16 + rw.length, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);
	/* No such handle: 100,000 bytes of data to skip. */
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(p, 16, &rw), 16);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_WRITE, p,
				      16 + rw.length, NULL), VIRGO_ST_NOENT);
	/* The head says 10 bytes, the frame carries 5,000. */
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, &size, 1, &handle), 0);
	rw.handle = handle;
	rw.length = 10;
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(p, 16, &rw), 16);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_WRITE, p,
				      16 + 5000, NULL), VIRGO_ST_INVAL);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_PING, "ping", 4,
				      &rlen), 0);
	KUNIT_EXPECT_EQ(test, rlen, 4U);
	/* Nothing of it reached the chunk, which still reads zeroes. */
	KUNIT_ASSERT_EQ(test, tc_read(test, sock, handle, 0, 4096), 0);
	KUNIT_EXPECT_PTR_EQ(test, memchr_inv(ctx->buf, 0, 4096), NULL);
	KUNIT_EXPECT_EQ(test, tc_write(test, sock, handle, 4090, "abcdef", 6),
			0);
	KUNIT_ASSERT_EQ(test, tc_read(test, sock, handle, 4090, 6), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, "abcdef", 6), 0);
}

static void cd_test_garbage_header_drops_connection(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 junk[VIRGO_WIRE_HDR_LEN];
	struct socket *sock;

	start_server(test);
	sock = tc_session(test);
	get_random_bytes(junk, sizeof(junk));
	junk[0] = 'X';
	KUNIT_ASSERT_EQ(test, tc_send(sock, junk, sizeof(junk)), 0);
	KUNIT_EXPECT_TRUE(test, tc_closed(sock));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_HEADER), 1ULL);
	/* The server is fine and serves the next client. */
	tc_session(test);
}

static void cd_test_oversized_frame_drops_connection(struct kunit *test)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct socket *sock;

	start_server(test);
	sock = tc_session(test);
	virgo_wire_hdr_pack(hdr, VIRGO_OP_WRITE, 0, 0xffffffff, 0, 1);
	KUNIT_ASSERT_EQ(test, tc_send(sock, hdr, sizeof(hdr)), 0);
	KUNIT_EXPECT_TRUE(test, tc_closed(sock));
	KUNIT_EXPECT_TRUE(test, server_idle(ctx_of(test)->srv));
}

static void cd_test_truncated_frame_then_disconnect(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	u32 size = 65536;
	struct socket *sock;
	u64 handle;

	start_server(test);
	sock = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, &size, 1, &handle), 0);
	virgo_wire_hdr_pack(hdr, VIRGO_OP_WRITE, 0, 1000, 0, 9);
	KUNIT_ASSERT_EQ(test, tc_send(sock, hdr, sizeof(hdr)), 0);
	KUNIT_ASSERT_EQ(test, tc_send(sock, "0123456789", 10), 0);
	tc_close(test, sock);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

static void cd_test_disconnect_frees_everything(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[8] = { 4096, 4096, 8192, 100, 1, TEST_CHUNK, 7, 65536 };
	u64 handles[8];
	struct socket *a, *b;

	start_server(test);
	a = tc_session(test);
	b = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, sizes, 8, handles), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, sizes, 4, handles), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 12ULL);
	tc_close(test, a);
	tc_close(test, b);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_CHUNKS_FREED),
			12ULL);
}

static int tc_mac(enum virgo_wire_auth_role role, const u8 *key,
		  size_t key_len, const u8 *cn, const u8 *sn, u8 *mac)
{
	u8 input[VIRGO_WIRE_AUTH_INPUT_LEN];
	struct crypto_shash *tfm;
	int ret;

	tfm = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	ret = crypto_shash_setkey(tfm, key, key_len);
	if (!ret) {
		virgo_wire_auth_input(input, role, cn, sn);
		ret = crypto_shash_tfm_digest(tfm, input, sizeof(input), mac);
	}
	crypto_free_shash(tfm);
	return ret;
}

static void use_key(struct kunit *test)
{
	ctx_of(test)->cfg.psk = TEST_PSK;
	ctx_of(test)->cfg.psk_len = strlen(TEST_PSK);
}

/* HELLO then AUTH with @key; returns AUTH's wire status. */
static int tc_auth(struct kunit *test, struct socket *sock, const char *key)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 cn[VIRGO_WIRE_NONCE_LEN], mac[VIRGO_WIRE_MAC_LEN];
	struct virgo_wire_hello_rep rep;
	int ret;

	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, &rep, cn), 0);
	KUNIT_EXPECT_EQ(test, rep.flags, VIRGO_HELLO_AUTH_REQUIRED);
	KUNIT_ASSERT_EQ(test, tc_mac(VIRGO_WIRE_AUTH_CLIENT, key, strlen(key),
				     cn, rep.nonce, mac), 0);
	ret = tc_call(test, sock, VIRGO_OP_AUTH, mac, sizeof(mac), NULL);
	if (ret)
		return ret;
	/* The server proves it knows the key too. */
	KUNIT_ASSERT_EQ(test, tc_mac(VIRGO_WIRE_AUTH_SERVER, key, strlen(key),
				     cn, rep.nonce, mac), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, mac, sizeof(mac)), 0);
	return 0;
}

static void cd_test_auth_with_right_key(struct kunit *test)
{
	u32 size = 4096;
	struct socket *sock;
	u64 handle;

	use_key(test);
	start_server(test);
	sock = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_auth(test, sock, TEST_PSK), 0);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, &size, 1, &handle), 0);
	/* A second AUTH is refused. */
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_AUTH,
				      ctx_of(test)->buf, VIRGO_WIRE_MAC_LEN,
				      NULL), VIRGO_ST_INVAL);
}

static void cd_test_auth_with_wrong_key(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct socket *sock;

	use_key(test);
	start_server(test);
	sock = tc_connect(test);
	KUNIT_EXPECT_EQ(test, tc_auth(test, sock, "incorrect horse"),
			VIRGO_ST_AUTH);
	KUNIT_EXPECT_TRUE(test, tc_closed(sock));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv, CD_STAT_ERR_AUTH),
			1ULL);
}

static void cd_test_auth_missing_gets_no_memory(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 size = 4096;
	struct socket *sock;
	u64 handle;
	u32 rlen;

	use_key(test);
	start_server(test);
	sock = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, NULL, NULL), 0);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, &size, 1, &handle),
			VIRGO_ST_PERM);
	KUNIT_EXPECT_EQ(test, tc_read(test, sock, 1, 0, 1), VIRGO_ST_PERM);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_STAT, NULL, 0,
				      &rlen), VIRGO_ST_PERM);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv), 0ULL);
}

static void cd_test_too_many_sessions_refused(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct socket *extra;
	int i;

	ctx->cfg.max_sessions = 2;
	start_server(test);
	for (i = 0; i < 2; i++)
		tc_session(test);
	extra = tc_connect(test);
	KUNIT_EXPECT_TRUE(test, tc_closed(extra));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_SESSIONS_REFUSED),
			1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(ctx->srv), 2U);
}

static void cd_test_idle_session_is_closed(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct socket *sock;

	ctx->cfg.idle_timeout_ms = 300;
	start_server(test);
	sock = tc_session(test);
	KUNIT_EXPECT_TRUE(test, tc_closed(sock));
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_TIMEOUT), 1ULL);
}

/* A quiet session holding chunks is not idle: its memory is in use. */
static void cd_test_quiet_session_keeps_its_chunks(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 data[16] = "kept while idle";
	u32 size = 4096;
	struct socket *sock;
	u64 handle;

	ctx->cfg.idle_timeout_ms = 300;
	start_server(test);
	sock = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, &size, 1, &handle), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, sock, handle, 100, data, 16), 0);
	msleep(1200);
	KUNIT_ASSERT_EQ(test, tc_read(test, sock, handle, 100, 16), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, 16), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_TIMEOUT), 0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv), 4096ULL);
}

static void cd_test_slow_frame_is_dropped(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct socket *sock;

	ctx->cfg.io_timeout_ms = 300;
	start_server(test);
	sock = tc_session(test);
	/* A header promising 64 bytes, then silence. */
	virgo_wire_hdr_pack(hdr, VIRGO_OP_PING, 0, 64, 0, 5);
	KUNIT_ASSERT_EQ(test, tc_send(sock, hdr, sizeof(hdr)), 0);
	KUNIT_EXPECT_TRUE(test, tc_closed(sock));
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

static void cd_test_pipelined_requests(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct socket *sock;
	u64 tag;
	u32 rlen;

	start_server(test);
	sock = tc_session(test);
	for (tag = 100; tag < 132; tag++)
		KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_PING, tag,
						    &tag, sizeof(tag)), 0);
	for (tag = 100; tag < 132; tag++) {
		KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_PING,
						    tag, &rlen), 0);
		KUNIT_EXPECT_EQ(test, rlen, (u32)sizeof(tag));
		KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, &tag, sizeof(tag)), 0);
	}
}

static void cd_test_stat_reports_usage(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[2] = { 1000, 3000 };
	struct virgo_wire_stat st;
	struct socket *sock;
	u64 handles[2];

	start_server(test);
	sock = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, sizes, 2, handles), 0);
	KUNIT_ASSERT_EQ(test, tc_call(test, sock, VIRGO_OP_STAT, NULL, 0,
				      NULL), 0);
	virgo_wire_get_stat_rep(ctx->buf, &st);
	KUNIT_EXPECT_EQ(test, st.capacity, TEST_MEMORY);
	KUNIT_EXPECT_EQ(test, st.lent_bytes, 4000ULL);
	KUNIT_EXPECT_EQ(test, st.free, TEST_MEMORY - 4000);
	KUNIT_EXPECT_EQ(test, st.lent_chunks, 2ULL);
	KUNIT_EXPECT_EQ(test, st.session_chunks, 2ULL);
	KUNIT_EXPECT_EQ(test, st.sessions, 1ULL);
}

static void cd_test_stop_with_live_sessions(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[4] = { TEST_CHUNK, TEST_CHUNK, 4096, 1 };
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	u64 handles[4];
	struct socket *a, *b, *c;

	start_server(test);
	a = tc_session(test);
	b = tc_session(test);
	c = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, sizes, 4, handles), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, sizes, 2, handles), 0);
	/* b is in the middle of a frame, c never said anything. */
	virgo_wire_hdr_pack(hdr, VIRGO_OP_WRITE, 0, 16 + 4096, 0, 1);
	KUNIT_ASSERT_EQ(test, tc_send(b, hdr, sizeof(hdr)), 0);
	KUNIT_ASSERT_EQ(test, tc_send(b, handles, 8), 0);

	clouddrec_server_stop(ctx->srv);
	ctx->srv = NULL;
	KUNIT_EXPECT_TRUE(test, tc_closed(a));
	KUNIT_EXPECT_TRUE(test, tc_closed(b));
	KUNIT_EXPECT_TRUE(test, tc_closed(c));
}

static void cd_test_bad_config_is_rejected(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct clouddrec_server *srv;
	struct clouddrec_config cfg;

	cfg = ctx->cfg;
	cfg.max_chunk = 0;
	srv = clouddrec_server_start(&cfg);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(srv), -EINVAL);
	cfg = ctx->cfg;
	cfg.max_chunk = VIRGO_WIRE_MAX_CHUNK_LIMIT + 1;
	srv = clouddrec_server_start(&cfg);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(srv), -EINVAL);
	cfg = ctx->cfg;
	cfg.psk_len = 65;
	cfg.psk = TEST_PSK;
	srv = clouddrec_server_start(&cfg);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(srv), -EINVAL);
	cfg = ctx->cfg;
	cfg.max_sessions = 0;
	srv = clouddrec_server_start(&cfg);
	KUNIT_EXPECT_EQ(test, PTR_ERR_OR_ZERO(srv), -EINVAL);
}

static struct kunit_case virgo_clouddrec_test_cases[] = {
	KUNIT_CASE(cd_test_hello_reports_limits_and_capacity),
	KUNIT_CASE(cd_test_request_before_hello_is_refused),
	KUNIT_CASE(cd_test_roundtrip_random_data),
	KUNIT_CASE(cd_test_fresh_chunk_reads_zero),
	KUNIT_CASE(cd_test_other_session_handle_refused),
	KUNIT_CASE(cd_test_handles_disjoint_across_sessions),
	KUNIT_CASE(cd_test_out_of_bounds_refused),
	KUNIT_CASE(cd_test_over_limit_refused),
	KUNIT_CASE(cd_test_malformed_payload_keeps_session),
	KUNIT_CASE(cd_test_refused_write_data_is_skipped),
	KUNIT_CASE(cd_test_garbage_header_drops_connection),
	KUNIT_CASE(cd_test_oversized_frame_drops_connection),
	KUNIT_CASE(cd_test_truncated_frame_then_disconnect),
	KUNIT_CASE(cd_test_disconnect_frees_everything),
	KUNIT_CASE(cd_test_auth_with_right_key),
	KUNIT_CASE(cd_test_auth_with_wrong_key),
	KUNIT_CASE(cd_test_auth_missing_gets_no_memory),
	KUNIT_CASE(cd_test_too_many_sessions_refused),
	KUNIT_CASE(cd_test_idle_session_is_closed),
	KUNIT_CASE(cd_test_quiet_session_keeps_its_chunks),
	KUNIT_CASE(cd_test_slow_frame_is_dropped),
	KUNIT_CASE(cd_test_pipelined_requests),
	KUNIT_CASE(cd_test_stat_reports_usage),
	KUNIT_CASE(cd_test_stop_with_live_sessions),
	KUNIT_CASE(cd_test_bad_config_is_rejected),
	{}
};

static struct kunit_suite virgo_clouddrec_test_suite = {
	.name = "virgo_clouddrec",
	.suite_init = cd_test_suite_init,
	.init = cd_test_init,
	.exit = cd_test_exit,
	.test_cases = virgo_clouddrec_test_cases,
};

kunit_test_suite(virgo_clouddrec_test_suite);

MODULE_LICENSE("GPL");
