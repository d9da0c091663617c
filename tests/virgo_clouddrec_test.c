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
#include <linux/tcp.h>
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
	struct socket *socks[40];
	/* Where tc_connect() connects; the port is the server's. */
	union virgo_addr dst;
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

static struct socket *__tc_connect(struct kunit *test, int rcvbuf);

static struct socket *tc_connect(struct kunit *test)
{
	return __tc_connect(test, 0);
}

/*
 * A connection whose receive buffer is @rcvbuf bytes (0: the default): a
 * client that does not read soon leaves replies queued at the server.
 */
static struct socket *__tc_connect(struct kunit *test, int rcvbuf)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	union virgo_addr dst = ctx->dst;
	struct socket *sock;
	int i, ret;

	for (i = 0; i < ARRAY_SIZE(ctx->socks) && ctx->socks[i]; i++)
		;
	KUNIT_ASSERT_LT(test, i, (int)ARRAY_SIZE(ctx->socks));
	ret = sock_create_kern(&init_net, dst.sa.sa_family, SOCK_STREAM,
			       IPPROTO_TCP, &sock);
	KUNIT_ASSERT_EQ(test, ret, 0);
	ctx->socks[i] = sock;
	sock->sk->sk_rcvtimeo = 10 * HZ;
	sock->sk->sk_sndtimeo = 10 * HZ;
	/* Header and payload go out as two sends: no delayed-ACK wait. */
	tcp_sock_set_nodelay(sock->sk);
	if (rcvbuf) {
		sock->sk->sk_userlocks |= SOCK_RCVBUF_LOCK;
		WRITE_ONCE(sock->sk->sk_rcvbuf, rcvbuf);
	}
	virgo_addr_set_port(&dst, clouddrec_server_port(ctx->srv));
	ret = kernel_connect(sock, &dst.sa, virgo_addr_len(&dst), 0);
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

static int tc_send_frame_flags(struct socket *sock, u8 op, u16 flags,
			       u64 tag, const void *payload, u32 len)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	int ret;

	virgo_wire_hdr_pack(hdr, op, flags, len, 0, tag);
	ret = tc_send(sock, hdr, sizeof(hdr));
	if (ret || !len)
		return ret;
	return tc_send(sock, payload, len);
}

static int tc_send_frame(struct socket *sock, u8 op, u64 tag,
			 const void *payload, u32 len)
{
	return tc_send_frame_flags(sock, op, 0, tag, payload, len);
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

static int tc_hello_caps(struct kunit *test, struct socket *sock, u32 caps,
			 struct virgo_wire_hello_rep *rep, u8 *client_nonce)
{
	struct virgo_wire_hello_req req = {
		.ver_min = 1,
		.ver_max = 1,
		.caps = caps,
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

static int tc_hello(struct kunit *test, struct socket *sock,
		    struct virgo_wire_hello_rep *rep, u8 *client_nonce)
{
	return tc_hello_caps(test, sock, 0, rep, client_nonce);
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

/*
 * Wait up to 5 s for the server to have no session and nothing lent,
 * charged or buffered (a session's release frees after it leaves the
 * session count).
 */
static bool server_idle(struct clouddrec_server *srv)
{
	int i;

	for (i = 0; i < 250; i++) {
		if (!clouddrec_server_sessions(srv) &&
		    !clouddrec_server_lent_bytes(srv) &&
		    !clouddrec_server_lent_chunks(srv) &&
		    !clouddrec_server_charged_bytes(srv) &&
		    !clouddrec_server_materialised_bytes(srv) &&
		    !clouddrec_server_rx_buffered(srv) &&
		    !clouddrec_server_pooled_bytes(srv))
			return true;
		msleep(20);
	}
	return false;
}

/*
 * Wait up to 5 s for counter @stat to reach @want: a client sees the
 * close before the session's release work has counted it.
 */
static u64 wait_stat(struct clouddrec_server *srv, enum clouddrec_stat stat,
		     u64 want)
{
	int i;

	for (i = 0; i < 250 && clouddrec_server_stat(srv, stat) < want; i++)
		msleep(20);
	return clouddrec_server_stat(srv, stat);
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
	virgo_addr_set_v4(&ctx->cfg.addr, htonl(INADDR_LOOPBACK), 0);
	ctx->dst = ctx->cfg.addr;
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
	clouddrec_test_orphaned = NULL;
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
	/* A's chunks go with its release, which runs after the close. */
	for (i = 0; i < 250 && clouddrec_server_lent_chunks(ctx->srv) != 8;
	     i++)
		msleep(20);
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
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv), 0ULL);
	/*
	 * 16 x 256 KiB is the budget in data alone: with each chunk's
	 * metadata it does not fit, 15 do.
	 */
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, sizes, 16, handles),
			VIRGO_ST_NOMEM);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, sizes, 15, handles), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv),
			15ULL * TEST_CHUNK);
	KUNIT_EXPECT_GT(test, clouddrec_server_charged_bytes(ctx->srv),
			15ULL * TEST_CHUNK);
	KUNIT_EXPECT_LE(test, clouddrec_server_charged_bytes(ctx->srv),
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
	KUNIT_EXPECT_EQ(test, wait_stat(ctx->srv, CD_STAT_CHUNKS_FREED, 12),
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
	KUNIT_EXPECT_EQ(test, wait_stat(ctx->srv, CD_STAT_ERR_TIMEOUT, 1),
			1ULL);
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
	/* free is what the budget has left: data and metadata charged. */
	KUNIT_EXPECT_EQ(test, st.free, TEST_MEMORY -
			clouddrec_server_charged_bytes(ctx->srv));
	KUNIT_EXPECT_LT(test, st.free, TEST_MEMORY - 4000 - 2 * 64);
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

/* ---- before the handshake ------------------------------------------- */

/* A peer that has not finished the handshake gets no buffer: frames
 * longer than a HELLO close the connection.
 */
static void cd_test_preauth_big_frame_closes(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 ping[64] = {}, p[48] = {};
	struct socket *sock;

	start_server(test);
	sock = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_PING, 1, ping,
					    sizeof(ping)), 0);
	KUNIT_EXPECT_TRUE(test, tc_closed(sock));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_PERM), 1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_rx_buffered(ctx->srv), 0ULL);

	/* With a key: after HELLO, before AUTH, the same. */
	clouddrec_server_stop(ctx->srv);
	use_key(test);
	start_server(test);
	sock = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, NULL, NULL), 0);
	KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_ALLOC, 2, p,
					    sizeof(p)), 0);
	KUNIT_EXPECT_TRUE(test, tc_closed(sock));
	KUNIT_EXPECT_EQ(test, clouddrec_server_rx_buffered(ctx->srv), 0ULL);
	/* A full handshake still works. */
	sock = tc_connect(test);
	KUNIT_EXPECT_EQ(test, tc_auth(test, sock, TEST_PSK), 0);
}

/*
 * A peer past HELLO but not AUTH that sends request after request and
 * reads no reply gets at most two replies queued: then the server reads
 * nothing more from it (its handshake deadline ends it).  (It kept up to
 * max_inflight replies, 128, for a peer it did not know yet.)
 */
static void cd_test_preauth_replies_stay_few(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	const size_t len = 2048 * VIRGO_WIRE_HDR_LEN;
	u8 *pings = kunit_kzalloc(test, len, GFP_KERNEL);
	struct socket *sock;
	u64 perm = 0, now;
	int i, ret = 0;

	KUNIT_ASSERT_NOT_NULL(test, pings);
	for (i = 0; i < (int)(len / VIRGO_WIRE_HDR_LEN); i++)
		virgo_wire_hdr_pack(pings + i * VIRGO_WIRE_HDR_LEN,
				    VIRGO_OP_PING, 0, 0, 0, i + 1);
	use_key(test);
	ctx->cfg.handshake_timeout_ms = 60000;
	ctx->cfg.io_timeout_ms = 60000;
	start_server(test);
	sock = __tc_connect(test, 4096);
	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, NULL, NULL), 0);
	/* Until the server stops reading and every buffer is full. */
	sock->sk->sk_sndtimeo = HZ / 2;
	for (i = 0; i < 1000 && !ret; i++)
		ret = tc_send(sock, pings, len);
	KUNIT_EXPECT_EQ(test, ret, -EAGAIN);
	/* Until the server has stopped: replies queued, none served. */
	for (i = 0; i < 100; i++) {
		msleep(100);
		now = clouddrec_server_stat(ctx->srv, CD_STAT_ERR_PERM);
		if (now == perm && clouddrec_server_tx_queued(ctx->srv))
			break;
		perm = now;
	}
	KUNIT_EXPECT_GT(test, perm, 0ULL);
	/* The queue was reached: the socket took no more replies. */
	KUNIT_EXPECT_GE(test, clouddrec_server_tx_queued(ctx->srv), 1ULL);
	KUNIT_EXPECT_LE(test, clouddrec_server_tx_queued(ctx->srv), 2ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(ctx->srv), 1U);
}

static void cd_test_handshake_deadline(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct socket *silent, *no_auth, *good;
	unsigned long start;
	u32 rlen;

	use_key(test);
	ctx->cfg.handshake_timeout_ms = 300;
	start_server(test);
	good = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_auth(test, good, TEST_PSK), 0);
	start = jiffies;
	silent = tc_connect(test);
	no_auth = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello(test, no_auth, NULL, NULL), 0);
	KUNIT_EXPECT_TRUE(test, tc_closed(silent));
	KUNIT_EXPECT_TRUE(test, tc_closed(no_auth));
	KUNIT_EXPECT_LT(test, jiffies - start, 3UL * HZ);
	KUNIT_EXPECT_EQ(test, wait_stat(ctx->srv, CD_STAT_ERR_TIMEOUT, 2),
			2ULL);
	/* The authenticated session is past its handshake: it stays. */
	msleep(500);
	KUNIT_EXPECT_EQ(test, tc_call(test, good, VIRGO_OP_PING, "ok", 2,
				      &rlen), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(ctx->srv), 1U);
}

static void cd_test_sessions_per_addr_capped(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct socket *a, *extra;
	u32 rlen;

	ctx->cfg.max_sessions = 8;
	ctx->cfg.max_sessions_per_addr = 2;
	start_server(test);
	a = tc_session(test);
	tc_session(test);
	extra = tc_connect(test);
	KUNIT_EXPECT_TRUE(test, tc_closed(extra));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_SESSIONS_REFUSED),
			1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(ctx->srv), 2U);
	/* One gone, one more may come. */
	tc_close(test, a);
	tc_close(test, extra);
	msleep(200);
	extra = tc_session(test);
	KUNIT_EXPECT_EQ(test, tc_call(test, extra, VIRGO_OP_PING, "x", 1,
				      &rlen), 0);
}

/* Make the next tc_connect()s go to @ip ("127.0.0.1", "::1"). */
static void tc_use(struct kunit *test, const char *ip)
{
	KUNIT_ASSERT_EQ(test, virgo_addr_parse_host(ip, strlen(ip), 0,
						    &ctx_of(test)->dst), 0);
}

/*
 * The default listen address (any, dual-stack) serves IPv6 and IPv4
 * clients, and the per-address cap counts each host apart: an IPv4
 * client, which the listener sees as ::ffff:127.0.0.1, as 127.0.0.1.
 */
static void cd_test_dual_stack_sessions_per_addr(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct socket *v6, *v4, *extra;
	u32 rlen;

	memset(&ctx->cfg.addr, 0, sizeof(ctx->cfg.addr));
	ctx->cfg.max_sessions = 8;
	ctx->cfg.max_sessions_per_addr = 2;
	start_server(test);

	tc_use(test, "::1");
	v6 = tc_session(test);
	KUNIT_EXPECT_EQ(test, tc_call(test, v6, VIRGO_OP_PING, "6", 1, &rlen),
			0);
	tc_session(test);
	extra = tc_connect(test);
	KUNIT_EXPECT_TRUE(test, tc_closed(extra));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_SESSIONS_REFUSED),
			1ULL);

	tc_use(test, "127.0.0.1");
	v4 = tc_session(test);
	KUNIT_EXPECT_EQ(test, tc_call(test, v4, VIRGO_OP_PING, "4", 1, &rlen),
			0);
	tc_session(test);
	extra = tc_connect(test);
	KUNIT_EXPECT_TRUE(test, tc_closed(extra));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_SESSIONS_REFUSED),
			2ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(ctx->srv), 4U);

	/* One IPv6 session gone: one more IPv6 client may come. */
	tc_close(test, v6);
	msleep(200);
	tc_use(test, "::1");
	v6 = tc_session(test);
	KUNIT_EXPECT_EQ(test, tc_call(test, v6, VIRGO_OP_PING, "6", 1, &rlen),
			0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(ctx->srv), 4U);
}

/* A server on ::1 serves IPv6 there, and nothing on 127.0.0.1. */
static void cd_test_listen_ipv6_only(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	union virgo_addr v4;
	struct socket *sock;
	u32 rlen;
	int ret;

	KUNIT_ASSERT_EQ(test, virgo_addr_parse_host("[::1]", 5, 0,
						    &ctx->cfg.addr), 0);
	start_server(test);
	tc_use(test, "::1");
	sock = tc_session(test);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_PING, "6", 1,
				      &rlen), 0);

	virgo_addr_set_v4(&v4, htonl(INADDR_LOOPBACK),
			  clouddrec_server_port(ctx->srv));
	ret = sock_create_kern(&init_net, AF_INET, SOCK_STREAM, IPPROTO_TCP,
			       &sock);
	KUNIT_ASSERT_EQ(test, ret, 0);
	ret = kernel_connect(sock, &v4.sa, virgo_addr_len(&v4), 0);
	sock_release(sock);
	KUNIT_EXPECT_EQ(test, ret, -ECONNREFUSED);
}

/*
 * Receive buffers are sized per request: a frame too long for its opcode
 * is dropped unbuffered, a big FREE's buffer is freed after it.
 */
static void cd_test_rx_buffers_bounded(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 count = 4096, len = 8 + 8 * count, i, rlen;
	struct socket *sock;
	u8 *p;

	ctx->cfg.max_batch = count;
	start_server(test);
	sock = tc_session(test);
	p = kunit_kzalloc(test, TEST_CHUNK, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, p);

	/* A PING as long as max_payload allows: TOOBIG, nothing kept. */
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_PING, p,
				      TEST_CHUNK, NULL), VIRGO_ST_TOOBIG);
	KUNIT_EXPECT_EQ(test, clouddrec_server_rx_buffered(ctx->srv), 0ULL);
	/* A READ with a payload: INVAL. */
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_READ, p, 4096,
				      NULL), VIRGO_ST_INVAL);
	/* 4096 unknown handles (32 KiB): buffered for the frame only. */
	KUNIT_ASSERT_EQ(test, virgo_wire_put_batch_hdr(p, len, count, 8),
			(int)len);
	for (i = 0; i < count; i++)
		virgo_wire_set_handle(p, i, 1000 + i);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_FREE, p, len,
				      NULL), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_freed(ctx->buf), 0U);
	/* Released once the reply is out: on SMP the reply may come first. */
	for (i = 0; i < 100 && clouddrec_server_rx_buffered(ctx->srv); i++)
		msleep(20);
	KUNIT_EXPECT_EQ(test, clouddrec_server_rx_buffered(ctx->srv), 0ULL);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_PING, "x", 1,
				      &rlen), 0);
}

/* ---- deaf clients ------------------------------------------------------ */

/* Send @n READs of the whole chunk @handle and read nothing. */
static void tc_deaf_reads(struct kunit *test, struct socket *sock,
			  u64 handle, u32 length, int n)
{
	struct virgo_wire_rw rw = { .handle = handle, .length = length };
	u8 p[16];
	int i;

	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(p, 16, &rw), 16);
	for (i = 0; i < n; i++)
		KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_READ,
						    5000 + i, p, 16), 0);
}

/* 20 x (PING, WRITE 4 KiB, READ 4 KiB, compare); returns the jiffies. */
static unsigned long tc_round_trips(struct kunit *test, struct socket *sock,
				    u64 handle, const u8 *data)
{
	unsigned long start = jiffies;
	u32 rlen;
	int i;

	for (i = 0; i < 20; i++) {
		KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_PING, "hi",
					      2, &rlen), 0);
		KUNIT_EXPECT_EQ(test, tc_write(test, sock, handle, 0, data,
					       4096), 0);
		KUNIT_EXPECT_EQ(test, tc_read(test, sock, handle, 0, 4096), 0);
		KUNIT_EXPECT_EQ(test, memcmp(ctx_of(test)->buf, data, 4096),
				0);
	}
	return jiffies - start;
}

/*
 * Clients that pipeline READs and never read the replies hold no worker:
 * with fewer workers than deaf sessions, another session is served as
 * fast as without them, and the deaf ones are closed after io_timeout.
 * (Replies sent blocking from the session work, as before, stall it for
 * io_timeout.)
 */
static void cd_test_deaf_sessions_do_not_stall_others(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *data = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	unsigned long base, took;
	u32 size = TEST_CHUNK, rlen;
	struct socket *deaf[8], *good;
	u64 handle, mine;
	int i;

	KUNIT_ASSERT_NOT_NULL(test, data);
	memset(data, 0x5a, TEST_CHUNK);
	ctx->cfg.max_sessions = 16;
	ctx->cfg.max_sessions_per_addr = 16;
	ctx->cfg.max_workers = 4;
	ctx->cfg.io_timeout_ms = 6000;
	start_server(test);
	good = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, good, &size, 1, &mine), 0);
	base = tc_round_trips(test, good, mine, data);

	for (i = 0; i < ARRAY_SIZE(deaf); i++) {
		deaf[i] = __tc_connect(test, 4096);
		KUNIT_ASSERT_EQ(test, tc_hello(test, deaf[i], NULL, NULL), 0);
		KUNIT_ASSERT_EQ(test, tc_alloc(test, deaf[i], &size, 1,
					       &handle), 0);
		KUNIT_ASSERT_EQ(test, tc_write(test, deaf[i], handle, 0, data,
					       TEST_CHUNK), 0);
		tc_deaf_reads(test, deaf[i], handle, TEST_CHUNK, 32);
	}
	msleep(300);
	took = tc_round_trips(test, good, mine, data);
	kunit_info(test, "20 round trips: %lu ms alone, %lu ms next to %zu deaf sessions\n",
		   base * 1000 / HZ, took * 1000 / HZ, ARRAY_SIZE(deaf));
	KUNIT_EXPECT_LE(test, took, 2 * base + HZ / 2);
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(ctx->srv), 9U);

	/* The deaf ones are closed once io_timeout passes without reads. */
	for (i = 0; i < 600 && clouddrec_server_sessions(ctx->srv) > 1; i++)
		msleep(20);
	KUNIT_EXPECT_EQ(test, clouddrec_server_sessions(ctx->srv), 1U);
	KUNIT_EXPECT_EQ(test, wait_stat(ctx->srv, CD_STAT_SESSIONS_CLOSED, 8),
			8ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv),
			clouddrec_chunk_cost(TEST_CHUNK));
	KUNIT_EXPECT_EQ(test, tc_call(test, good, VIRGO_OP_PING, "hi", 2,
				      &rlen), 0);
}

/*
 * A READ reply still queued sends the chunk's bytes as they were when
 * the READ was served: a FREE of the chunk does not pull the memory from
 * under it, a WRITE to it waits until the reply is out.
 */
static void cd_test_queued_read_reply_keeps_its_bytes(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *old = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	u8 *new = kunit_kmalloc(test, 16 + TEST_CHUNK, GFP_KERNEL);
	struct virgo_wire_rw rw = { .length = TEST_CHUNK };
	u32 sizes[2] = { TEST_CHUNK, TEST_CHUNK }, rlen;
	u8 fr[8 + 8];
	struct socket *sock;
	u64 h[2];
	int i;

	KUNIT_ASSERT_NOT_NULL(test, old);
	KUNIT_ASSERT_NOT_NULL(test, new);
	get_random_bytes(old, TEST_CHUNK);
	get_random_bytes(new + 16, TEST_CHUNK);
	start_server(test);
	sock = __tc_connect(test, 4096);
	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, NULL, NULL), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, sizes, 2, h), 0);
	for (i = 0; i < 2; i++)
		KUNIT_ASSERT_EQ(test, tc_write(test, sock, h[i], 0, old,
					       TEST_CHUNK), 0);

	/* READ h0 x4, FREE h0, READ h1, WRITE h1, READ h1: all pipelined. */
	tc_deaf_reads(test, sock, h[0], TEST_CHUNK, 4);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_free_req(fr, sizeof(fr), h, 1),
			(int)sizeof(fr));
	KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_FREE, 10, fr,
					    sizeof(fr)), 0);
	rw.handle = h[1];
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(new, 16, &rw), 16);
	KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_READ, 11, new, 16),
			0);
	KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_WRITE, 12, new,
					    16 + TEST_CHUNK), 0);
	KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_READ, 13, new, 16),
			0);
	msleep(200);

	for (i = 0; i < 4; i++) {
		KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_READ,
						    5000 + i, &rlen), 0);
		KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, old, TEST_CHUNK), 0);
	}
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_FREE, 10,
					    &rlen), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_freed(ctx->buf), 1U);
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_READ, 11,
					    &rlen), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, old, TEST_CHUNK), 0);
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_WRITE, 12,
					    &rlen), 0);
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_READ, 13,
					    &rlen), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, new + 16, TEST_CHUNK), 0);
	/* h0's memory went with its last reply. */
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv),
			clouddrec_chunk_cost(TEST_CHUNK));
}

/* Wait up to 5 s for the pool to hold @want bytes. */
static bool wait_pooled(struct clouddrec_server *srv, u64 want)
{
	int i;

	for (i = 0; i < 250; i++) {
		if (clouddrec_server_pooled_bytes(srv) == want)
			return true;
		msleep(20);
	}
	return false;
}

/*
 * The pool of zeroed pages fills only for a session past HELLO and AUTH,
 * serves first writes (a partly written chunk from it reads zeroes
 * around the write), refills, and goes back to the page allocator when
 * the last session ends.
 */
static void cd_test_pool_fills_for_authed_sessions_only(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 size = TEST_CHUNK;
	struct socket *raw, *greeted, *authed;
	u8 data[100];
	u64 handle;

	ctx->cfg.pool_bytes = 512 * 1024;
	use_key(test);
	start_server(test);
	raw = tc_connect(test);
	greeted = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello(test, greeted, NULL, NULL), 0);
	msleep(200);
	KUNIT_EXPECT_EQ(test, clouddrec_server_pooled_bytes(ctx->srv), 0ULL);

	authed = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_auth(test, authed, TEST_PSK), 0);
	KUNIT_EXPECT_TRUE(test, wait_pooled(ctx->srv, 512 * 1024));
	/* Not lent, not charged. */
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv), 0ULL);

	KUNIT_ASSERT_EQ(test, tc_alloc(test, authed, &size, 1, &handle), 0);
	get_random_bytes(data, sizeof(data));
	data[0] |= 1;
	KUNIT_ASSERT_EQ(test, tc_write(test, authed, handle, 5000, data,
				       sizeof(data)), 0);
	KUNIT_ASSERT_EQ(test, tc_read(test, authed, handle, 0, size), 0);
	KUNIT_EXPECT_TRUE(test, !memchr_inv(ctx->buf, 0, 5000));
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf + 5000, data, sizeof(data)), 0);
	KUNIT_EXPECT_TRUE(test, !memchr_inv(ctx->buf + 5000 + sizeof(data), 0,
					    size - 5000 - sizeof(data)));
	/* The pages it gave are made up again. */
	KUNIT_EXPECT_TRUE(test, wait_pooled(ctx->srv, 512 * 1024));

	tc_close(test, authed);
	tc_close(test, greeted);
	tc_close(test, raw);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/*
 * Zero-copy page lifetime: a chunk freed while its READ reply is still in
 * the socket (sent by page reference, not yet received) is freed at
 * once, but its pages stay the network stack's until sent: the reply
 * carries the old bytes, while another session allocates and writes the
 * memory that was freed (and no KASAN report: nothing is used after
 * free).
 */
static void cd_test_chunk_freed_mid_reply_sends_old_bytes(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *old = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	u8 *got = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	struct virgo_wire_rw rw = { .length = TEST_CHUNK };
	u32 size = TEST_CHUNK, sizes[8], rlen, i;
	u8 hdr[VIRGO_WIRE_HDR_LEN], fr[16], rq[16];
	struct socket *deaf, *other;
	u64 h, hs[8];
	int round;

	KUNIT_ASSERT_NOT_NULL(test, old);
	KUNIT_ASSERT_NOT_NULL(test, got);
	get_random_bytes(old, TEST_CHUNK);
	start_server(test);
	deaf = __tc_connect(test, 4096);
	KUNIT_ASSERT_EQ(test, tc_hello(test, deaf, NULL, NULL), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, deaf, &size, 1, &h), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, deaf, h, 0, old, TEST_CHUNK), 0);

	/* READ h, FREE h, pipelined; read all but the reply's last 8 KiB. */
	rw.handle = h;
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(rq, 16, &rw), 16);
	KUNIT_ASSERT_EQ(test, tc_send_frame(deaf, VIRGO_OP_READ, 1, rq, 16),
			0);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_free_req(fr, sizeof(fr), &h, 1),
			(int)sizeof(fr));
	KUNIT_ASSERT_EQ(test, tc_send_frame(deaf, VIRGO_OP_FREE, 2, fr,
					    sizeof(fr)), 0);
	KUNIT_ASSERT_EQ(test, tc_recv(deaf, hdr, sizeof(hdr)), 0);
	KUNIT_ASSERT_EQ(test, tc_recv(deaf, got, TEST_CHUNK - 8192), 0);
	msleep(200);
	/* The whole reply is in the socket and the chunk is freed... */
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv), 0ULL);

	/* ...and its memory may go to others, who write over what they get. */
	other = tc_session(test);
	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		sizes[i] = TEST_CHUNK;
	memset(ctx->buf, 0xa5, TEST_CHUNK);
	for (round = 0; round < 4; round++) {
		KUNIT_ASSERT_EQ(test, tc_alloc(test, other, sizes, 8, hs), 0);
		for (i = 0; i < 8; i++)
			KUNIT_ASSERT_EQ(test, tc_write(test, other, hs[i], 0,
						       ctx->buf, TEST_CHUNK),
					0);
		KUNIT_ASSERT_EQ(test, tc_free(test, other, hs, 8), 8);
	}

	KUNIT_ASSERT_EQ(test, tc_recv(deaf, got + TEST_CHUNK - 8192, 8192), 0);
	KUNIT_EXPECT_EQ(test, memcmp(got, old, TEST_CHUNK), 0);
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, deaf, VIRGO_OP_FREE, 2,
					    &rlen), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_freed(ctx->buf), 1U);
	tc_close(test, other);
	tc_close(test, deaf);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/* ---- what chunks cost ------------------------------------------------ */

/* A flood of 1-byte chunks stops at the budget, metadata counted. */
static void cd_test_tiny_chunk_flood_stops_at_budget(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[64], i;
	u64 handles[64], chunks;
	struct socket *sock;
	int ret = 0, round;

	ctx->cfg.max_memory = 256 * 1024;
	start_server(test);
	sock = tc_session(test);
	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		sizes[i] = 1;
	for (round = 0; round < 4096 && !ret; round++)
		ret = tc_alloc(test, sock, sizes, 64, handles);
	KUNIT_EXPECT_EQ(test, ret, VIRGO_ST_NOMEM);
	KUNIT_EXPECT_GE(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_NOMEM), 1ULL);
	chunks = clouddrec_server_lent_chunks(ctx->srv);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv), chunks);
	/* Each costs its data and 64 bytes of metadata, all within budget. */
	KUNIT_EXPECT_GE(test, clouddrec_server_charged_bytes(ctx->srv),
			chunks * 65);
	KUNIT_EXPECT_LE(test, clouddrec_server_charged_bytes(ctx->srv),
			256ULL * 1024);
	KUNIT_EXPECT_LT(test, chunks, 256ULL * 1024 / 64);
	KUNIT_EXPECT_GT(test, chunks, 256ULL * 1024 / 128);
	tc_close(test, sock);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv), 0ULL);
}

static void cd_test_session_chunk_cap(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[64], i;
	u64 handles[64];
	struct socket *a, *b;

	ctx->cfg.max_session_chunks = 100;
	start_server(test);
	a = tc_session(test);
	b = tc_session(test);
	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		sizes[i] = 16;
	KUNIT_EXPECT_EQ(test, tc_alloc(test, a, sizes, 64, handles), 0);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, a, sizes, 64, handles),
			VIRGO_ST_NOMEM);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, a, sizes, 36, handles), 0);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, a, sizes, 1, handles),
			VIRGO_ST_NOMEM);
	/* Per session: another one is not affected; a FREE makes room. */
	KUNIT_EXPECT_EQ(test, tc_alloc(test, b, sizes, 64, handles), 0);
	KUNIT_EXPECT_EQ(test, tc_free(test, b, handles, 1), 1);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, b, sizes, 37, handles), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 200ULL);
}

/* Below min_free of available memory the node lends nothing new. */
static void cd_test_min_free_refuses_new_chunks(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct virgo_wire_hello_rep rep;
	struct socket *sock;
	u32 size = 4096;
	u64 handle;

	ctx->cfg.min_free = (u64)totalram_pages() << (PAGE_SHIFT + 1);
	start_server(test);
	sock = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, &rep, NULL), 0);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, &size, 1, &handle),
			VIRGO_ST_NOMEM);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_NOMEM), 1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv), 0ULL);
}

/* ---- what docs/protocol.md says the server does ------------------------ */

/* §4: the server advertises max_chunk + 16 and closes beyond it. */
static void cd_test_max_payload_advertised_and_enforced(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct virgo_wire_hello_rep rep;
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct socket *sock;

	start_server(test);
	sock = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, &rep, NULL), 0);
	KUNIT_EXPECT_EQ(test, rep.max_payload, (u32)TEST_CHUNK + 16);
	virgo_wire_hdr_pack(hdr, VIRGO_OP_WRITE, 0, TEST_CHUNK + 17, 0, 1);
	KUNIT_ASSERT_EQ(test, tc_send(sock, hdr, sizeof(hdr)), 0);
	KUNIT_EXPECT_TRUE(test, tc_closed(sock));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_HEADER), 1ULL);
}

/* §6: before the handshake a malformed request is PERM, not parsed. */
static void cd_test_preauth_malformed_gets_perm(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	/* ALLOC claiming two sizes, carrying one; READ of handle 0. */
	u8 alloc[12] = { 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0 };
	u8 read[16] = {};
	struct socket *sock;

	start_server(test);
	sock = tc_connect(test);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_ALLOC, alloc,
				      sizeof(alloc), NULL), VIRGO_ST_PERM);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_READ, read,
				      sizeof(read), NULL), VIRGO_ST_PERM);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_STAT, read, 3,
				      NULL), VIRGO_ST_PERM);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_PAYLOAD), 0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_PERM), 3ULL);

	clouddrec_server_stop(ctx->srv);
	use_key(test);
	start_server(test);
	sock = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello(test, sock, NULL, NULL), 0);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_READ, read,
				      sizeof(read), NULL), VIRGO_ST_PERM);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_WRITE, read,
				      sizeof(read), NULL), VIRGO_ST_PERM);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_PAYLOAD), 0ULL);
	/* AUTH itself is parsed: a short one is INVAL. */
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_AUTH, read,
				      sizeof(read), NULL), VIRGO_ST_INVAL);
}

/* §6: a HELLO refused with PROTO is not the connection's one HELLO. */
static void cd_test_refused_hello_is_not_the_hello(struct kunit *test)
{
	struct virgo_wire_hello_req req = { .ver_min = 2, .ver_max = 3 };
	u8 p[VIRGO_WIRE_HELLO_REQ_LEN];
	struct socket *sock;

	start_server(test);
	sock = tc_connect(test);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_hello_req(p, sizeof(p), &req),
			(int)sizeof(p));
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_HELLO, p,
				      sizeof(p), NULL), VIRGO_ST_PROTO);
	KUNIT_EXPECT_EQ(test, tc_hello(test, sock, NULL, NULL), 0);
	KUNIT_EXPECT_EQ(test, tc_hello(test, sock, NULL, NULL), VIRGO_ST_INVAL);
}

/* §8: a frame with the REPLY flag sent to a server is INVAL, no more. */
static void cd_test_reply_flag_request_is_inval(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct socket *sock;
	u32 rlen;

	start_server(test);
	sock = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_send_frame_flags(sock, VIRGO_OP_PING,
						  VIRGO_WF_REPLY, 77, "boo", 3),
			0);
	KUNIT_EXPECT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_PING, 77,
					    &rlen), VIRGO_ST_INVAL);
	KUNIT_EXPECT_EQ(test, tc_call(test, sock, VIRGO_OP_PING, "ping", 4,
				      &rlen), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, "ping", 4), 0);
}

/* §5.4: FREE checks the whole batch first, then frees what is its own. */
static void cd_test_free_check_order(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[2] = { 4096, 4096 };
	u64 h[2], other, batch[4];
	struct socket *a, *b;
	u8 p[8 + 8 * 2];
	u64 errs;

	start_server(test);
	a = tc_session(test);
	b = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, sizes, 2, h), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, sizes, 1, &other), 0);
	/* A handle 0 in the batch: INVAL, nothing freed. */
	KUNIT_ASSERT_EQ(test, virgo_wire_put_batch_hdr(p, sizeof(p), 2, 8),
			(int)sizeof(p));
	virgo_wire_set_handle(p, 0, h[0]);
	virgo_wire_set_handle(p, 1, 0);
	KUNIT_EXPECT_EQ(test, tc_call(test, a, VIRGO_OP_FREE, p, sizeof(p),
				      NULL), VIRGO_ST_INVAL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 3ULL);
	/* Own, duplicate, another session's, own: 2 freed, 2 skipped. */
	errs = clouddrec_server_stat(ctx->srv, CD_STAT_ERR_HANDLE);
	batch[0] = h[0];
	batch[1] = h[0];
	batch[2] = other;
	batch[3] = h[1];
	KUNIT_EXPECT_EQ(test, tc_free(test, a, batch, 4), 2);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_HANDLE),
			errs + 2);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 1ULL);
	KUNIT_EXPECT_EQ(test, tc_read(test, b, other, 0, 16), 0);
}

/* ---- random frames --------------------------------------------------- */

/* One random request for @sock's session: valid, nearly valid or not. */
static u32 tc_random_frame(u8 *p, u8 *op, u16 *flags, const u64 *handles,
			   u32 nr)
{
	u32 r = get_random_u32(), len, i, n;
	u64 h = nr && (r & 3) ? handles[get_random_u32_below(nr)] :
		get_random_u64();
	struct virgo_wire_rw rw = {
		.handle = h,
		.offset = get_random_u32_below(8192),
		.length = 1 + get_random_u32_below(4096),
	};

	*flags = !get_random_u32_below(20) ? VIRGO_WF_REPLY : 0;
	*op = 1 + get_random_u32_below(VIRGO_OP_PING);
	switch (*op) {
	case VIRGO_OP_HELLO: {
		struct virgo_wire_hello_req req = {
			.ver_min = get_random_u32_below(3),
			.ver_max = get_random_u32_below(3),
		};

		len = virgo_wire_put_hello_req(p, 64, &req);
		break;
	}
	case VIRGO_OP_AUTH:
		len = VIRGO_WIRE_AUTH_LEN;
		get_random_bytes(p, len);
		break;
	case VIRGO_OP_ALLOC:
		n = 1 + get_random_u32_below(8);
		len = virgo_wire_put_batch_hdr(p, 8 + 4 * n, n, 4);
		for (i = 0; i < n; i++)
			virgo_wire_set_alloc_size(p, i, 1 +
						  get_random_u32_below(8192));
		break;
	case VIRGO_OP_FREE:
		n = 1 + get_random_u32_below(4);
		len = virgo_wire_put_batch_hdr(p, 8 + 8 * n, n, 8);
		for (i = 0; i < n; i++) {
			if (nr)
				h = handles[get_random_u32_below(nr)];
			virgo_wire_set_handle(p, i, h);
		}
		break;
	case VIRGO_OP_WRITE:
		len = 16 + rw.length;
		virgo_wire_put_rw_req(p, 16, &rw);
		get_random_bytes(p + 16, rw.length);
		break;
	case VIRGO_OP_READ:
		len = virgo_wire_put_rw_req(p, 16, &rw);
		break;
	case VIRGO_OP_STAT:
		len = 0;
		break;
	default:
		len = get_random_u32_below(VIRGO_WIRE_PING_MAX + 1);
		get_random_bytes(p, len);
		break;
	}
	/* A third mutated: a byte changed, or a length off by a little. */
	if (!get_random_u32_below(3)) {
		if (len && (r & 0x100))
			p[get_random_u32_below(len)] ^=
				1 + get_random_u32_below(255);
		else if (r & 0x200)
			len += get_random_u32_below(8);
		else if (len)
			len -= get_random_u32_below(len);
	}
	return len;
}

/*
 * Random and mutated request streams against one server: every frame
 * gets exactly one well-formed reply with its tag (or, for a frame the
 * server must not accept at all, the connection closes); nothing leaks;
 * a clean session works after.  The in-kernel complement of
 * tools/fuzz (which fuzzes the codec alone); KASAN and lockdep watch.
 */
static void cd_test_random_frames(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *p = kunit_kzalloc(test, 16 + 8192 + 64, GFP_KERNEL);
	u32 sizes[4] = { 4096, 8192, 100, 1 }, len, rlen, closes = 0;
	struct socket *sock = NULL;
	u64 handles[4];
	int i, ret, nr = 0;
	u16 flags;
	u8 op;

	KUNIT_ASSERT_NOT_NULL(test, p);
	ctx->cfg.max_chunk = 8192;
	ctx->cfg.max_sessions = 32;
	ctx->cfg.max_sessions_per_addr = 32;
	start_server(test);
	for (i = 0; i < 400; i++) {
		u64 tag = ++ctx->tag;

		if (!sock) {
			sock = tc_connect(test);
			nr = 0;
			/* Most connections get past HELLO, some allocate. */
			if (get_random_u32_below(4) &&
			    !tc_hello(test, sock, NULL, NULL) &&
			    get_random_u32_below(2) &&
			    !tc_alloc(test, sock, sizes, 4, handles))
				nr = 4;
		}
		len = tc_random_frame(p, &op, &flags, handles, nr);
		/* Now and then an unknown opcode: a header error. */
		if (!get_random_u32_below(30))
			op = VIRGO_OP_MAX + 1;
		ret = tc_send_frame_flags(sock, op, flags, tag, p, len);
		if (!ret)
			ret = tc_read_reply(test, sock, op, tag, &rlen);
		if (ret < 0) {
			/* Closed by the server: a frame it had to refuse. */
			closes++;
			tc_close(test, sock);
			sock = NULL;
		} else if (!get_random_u32_below(40)) {
			tc_close(test, sock);
			sock = NULL;
		}
	}
	kunit_info(test, "400 frames, %u connections closed by the server\n",
		   closes);
	if (sock)
		tc_close(test, sock);
	if (!server_idle(ctx->srv))
		/* What is left: a mutated HELLO may have granted RESUME. */
		kunit_info(test, "not idle: %u sessions, %u orphans, %llu chunks\n",
			   clouddrec_server_sessions(ctx->srv),
			   clouddrec_server_orphans(ctx->srv),
			   clouddrec_server_lent_chunks(ctx->srv));
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv), 0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_rx_buffered(ctx->srv), 0ULL);
	sock = tc_session(test);
	KUNIT_EXPECT_EQ(test, tc_alloc(test, sock, sizes, 4, handles), 0);
	KUNIT_EXPECT_EQ(test, tc_write(test, sock, handles[0], 0, "abc", 3), 0);
	KUNIT_ASSERT_EQ(test, tc_read(test, sock, handles[0], 0, 3), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, "abc", 3), 0);
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

/* ---- RESUME (protocol.md 6.1) ---------------------------------------- */

/* A session that offered RESUME; its HELLO reply in @rep. */
static struct socket *tc_resumable(struct kunit *test,
				   struct virgo_wire_hello_rep *rep, u8 *cn)
{
	struct socket *sock = tc_connect(test);

	KUNIT_ASSERT_EQ(test, tc_hello_caps(test, sock, VIRGO_CAP_RESUME, rep,
					    cn), 0);
	KUNIT_ASSERT_EQ(test, rep->caps, VIRGO_CAP_RESUME);
	KUNIT_ASSERT_NE(test, rep->resume_id, 0ULL);
	return sock;
}

/* RESUME @id with @proof; returns the wire status (chunks, bytes out). */
static int tc_resume(struct kunit *test, struct socket *sock, u64 id,
		     const u8 *proof, u64 *chunks, u64 *bytes)
{
	u8 p[VIRGO_WIRE_RESUME_REQ_LEN];
	u64 c, b;
	int ret;

	KUNIT_ASSERT_EQ(test, virgo_wire_put_resume_req(p, sizeof(p), id,
							proof),
			(int)sizeof(p));
	ret = tc_call(test, sock, VIRGO_OP_RESUME, p, sizeof(p), NULL);
	if (ret)
		return ret;
	virgo_wire_get_resume_rep(ctx_of(test)->buf, &c, &b);
	if (chunks)
		*chunks = c;
	if (bytes)
		*bytes = b;
	return 0;
}

/* What clouddrec_test_orphaned saw: calls, and queued replies at each. */
static atomic_t orphaned_calls, orphaned_replies;

static void record_orphaned(struct clouddrec_server *srv,
			    unsigned int replies_queued)
{
	atomic_inc(&orphaned_calls);
	atomic_add(replies_queued, &orphaned_replies);
}

/* Wait up to 5 s for the server to hold @n orphans. */
static bool wait_orphans(struct clouddrec_server *srv, unsigned int n)
{
	int i;

	for (i = 0; i < 250 && clouddrec_server_orphans(srv) != n; i++)
		msleep(20);
	return clouddrec_server_orphans(srv) == n;
}

static void cd_test_resume_keeps_every_handle_and_byte(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[3] = { 4096, 100, TEST_CHUNK }, more = 64;
	struct virgo_wire_hello_rep first, second, third;
	u64 handles[3], extra, chunks, bytes, lent;
	struct socket *a, *b, *c;
	u8 *data[3];
	int i;

	start_server(test);
	a = tc_resumable(test, &first, NULL);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, sizes, 3, handles), 0);
	for (i = 0; i < 3; i++) {
		data[i] = kunit_kmalloc(test, sizes[i], GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, data[i]);
		get_random_bytes(data[i], sizes[i]);
		KUNIT_ASSERT_EQ(test, tc_write(test, a, handles[i], 0, data[i],
					       sizes[i]), 0);
	}
	lent = clouddrec_server_lent_bytes(ctx->srv);
	/* The connection is lost, not closed by a client that freed. */
	tc_close(test, a);
	KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, 1));
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv), lent);

	b = tc_resumable(test, &second, NULL);
	KUNIT_ASSERT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					&chunks, &bytes), 0);
	KUNIT_EXPECT_EQ(test, chunks, 3ULL);
	KUNIT_EXPECT_EQ(test, bytes, (u64)4096 + 100 + TEST_CHUNK);
	KUNIT_EXPECT_EQ(test, clouddrec_server_orphans(ctx->srv), 0U);
	for (i = 0; i < 3; i++) {
		KUNIT_ASSERT_EQ(test, tc_read(test, b, handles[i], 0,
					      sizes[i]), 0);
		KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data[i], sizes[i]), 0);
	}
	/* New chunks join the resumed session: same id, next index. */
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, &more, 1, &extra), 0);
	KUNIT_EXPECT_EQ(test, extra >> 32, first.resume_id);
	KUNIT_EXPECT_GT(test, extra, handles[2]);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv),
			lent + more);
	/* A second RESUME on it is refused. */
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					NULL, NULL), VIRGO_ST_INVAL);

	/* Lost again: the old token is void, this connection's works. */
	tc_close(test, b);
	KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, 1));
	c = tc_resumable(test, &third, NULL);
	KUNIT_EXPECT_EQ(test, tc_resume(test, c, first.resume_id, first.token,
					NULL, NULL), VIRGO_ST_NOENT);
	KUNIT_EXPECT_EQ(test, tc_resume(test, c, first.resume_id,
					second.token, &chunks, NULL), 0);
	KUNIT_EXPECT_EQ(test, chunks, 4ULL);
	KUNIT_EXPECT_EQ(test, tc_free(test, c, handles, 3), 3);
	KUNIT_EXPECT_EQ(test, tc_free(test, c, &extra, 1), 1);
	tc_close(test, c);
	/* Nothing held: no orphan, everything back. */
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
	KUNIT_EXPECT_EQ(test, clouddrec_server_orphans(ctx->srv), 0U);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_SESSIONS_RESUMED),
			2ULL);
}

static void cd_test_resume_refusals(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct virgo_wire_hello_rep first, rep;
	u8 wrong[VIRGO_WIRE_TOKEN_LEN];
	u32 size = 4096;
	struct socket *a, *b, *plain;
	u64 handle, chunks;

	start_server(test);
	a = tc_resumable(test, &first, NULL);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, &size, 1, &handle), 0);

	/* Without the capability: a 72-byte reply and PROTO. */
	plain = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello(test, plain, &rep, NULL), 0);
	KUNIT_EXPECT_EQ(test, rep.caps, 0U);
	KUNIT_EXPECT_EQ(test, tc_resume(test, plain, first.resume_id,
					first.token, NULL, NULL),
			VIRGO_ST_PROTO);
	tc_close(test, plain);

	b = tc_resumable(test, &rep, NULL);
	/* A wrong token or an unknown id: NOENT, nothing changes. */
	memcpy(wrong, first.token, sizeof(wrong));
	wrong[7] ^= 1;
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, wrong, NULL,
					NULL), VIRGO_ST_NOENT);
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id + 1000,
					first.token, NULL, NULL),
			VIRGO_ST_NOENT);
	/* The right one for a session still connected: BUSY, and closed. */
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					NULL, NULL), VIRGO_ST_BUSY);
	KUNIT_EXPECT_TRUE(test, tc_closed(a));
	KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, 1));
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					&chunks, NULL), 0);
	KUNIT_EXPECT_EQ(test, chunks, 1ULL);
	KUNIT_EXPECT_EQ(test, tc_free(test, b, &handle, 1), 1);

	/* After an ALLOC the session is its own: INVAL. */
	tc_close(test, b);
	b = tc_resumable(test, &rep, NULL);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, &size, 1, &handle), 0);
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					NULL, NULL), VIRGO_ST_INVAL);
	KUNIT_EXPECT_EQ(test, tc_free(test, b, &handle, 1), 1);
	tc_close(test, b);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
	KUNIT_EXPECT_EQ(test, clouddrec_server_orphans(ctx->srv), 0U);
}

/* HMAC-SHA256(@key, resume input of @token and the nonces). */
static int tc_resume_proof(const u8 *key, size_t key_len, const u8 *token,
			   const u8 *cn, const u8 *sn, u8 *mac)
{
	u8 input[VIRGO_WIRE_RESUME_INPUT_LEN];
	struct crypto_shash *tfm;
	int ret;

	tfm = crypto_alloc_shash("hmac(sha256)", 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	ret = crypto_shash_setkey(tfm, key, key_len);
	if (!ret) {
		virgo_wire_resume_input(input, token, cn, sn);
		ret = crypto_shash_tfm_digest(tfm, input, sizeof(input), mac);
	}
	crypto_free_shash(tfm);
	return ret;
}

static void cd_test_resume_proof_matches_the_test_vector(struct kunit *test)
{
	static const u8 want[VIRGO_WIRE_MAC_LEN] = {
		0xe7, 0x21, 0xde, 0x4c, 0x23, 0xfd, 0x23, 0x2f,
		0x28, 0xc5, 0x8d, 0xce, 0xb9, 0xcc, 0x38, 0x40,
		0xfa, 0xc4, 0xd8, 0x08, 0x1c, 0xd7, 0x44, 0xa5,
		0x37, 0x98, 0xf3, 0xfd, 0xfd, 0x4c, 0x8b, 0xb5,
	};
	u8 key[32], token[32], cn[32], sn[32], mac[VIRGO_WIRE_MAC_LEN];
	int i;

	for (i = 0; i < 32; i++) {
		key[i] = i;
		token[i] = 0xa0 + i;
		cn[i] = 0xc0 + i;
		sn[i] = 0x50 + i;
	}
	KUNIT_ASSERT_EQ(test, tc_resume_proof(key, sizeof(key), token, cn, sn,
					      mac), 0);
	KUNIT_EXPECT_EQ(test, memcmp(mac, want, sizeof(want)), 0);
}

static void cd_test_resume_with_key_needs_the_key(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 cn[VIRGO_WIRE_NONCE_LEN], mac[VIRGO_WIRE_MAC_LEN];
	struct virgo_wire_hello_rep first, rep;
	struct socket *a, *b;
	u32 size = 4096;
	u64 handle;

	use_key(test);
	start_server(test);
	a = tc_resumable(test, &first, cn);
	KUNIT_ASSERT_EQ(test, tc_mac(VIRGO_WIRE_AUTH_CLIENT, TEST_PSK,
				     strlen(TEST_PSK), cn, first.nonce, mac),
			0);
	KUNIT_ASSERT_EQ(test, tc_call(test, a, VIRGO_OP_AUTH, mac, sizeof(mac),
				      NULL), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, &size, 1, &handle), 0);
	tc_close(test, a);
	KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, 1));

	b = tc_resumable(test, &rep, cn);
	/* Before AUTH: PERM, whatever it carries. */
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					NULL, NULL), VIRGO_ST_PERM);
	KUNIT_ASSERT_EQ(test, tc_mac(VIRGO_WIRE_AUTH_CLIENT, TEST_PSK,
				     strlen(TEST_PSK), cn, rep.nonce, mac), 0);
	KUNIT_ASSERT_EQ(test, tc_call(test, b, VIRGO_OP_AUTH, mac, sizeof(mac),
				      NULL), 0);
	/* The token seen on the wire is not enough with a key. */
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					NULL, NULL), VIRGO_ST_NOENT);
	/* Nor a proof made with another key. */
	KUNIT_ASSERT_EQ(test, tc_resume_proof("other", 5, first.token, cn,
					      rep.nonce, mac), 0);
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, mac, NULL,
					NULL), VIRGO_ST_NOENT);
	KUNIT_ASSERT_EQ(test, tc_resume_proof(TEST_PSK, strlen(TEST_PSK),
					      first.token, cn, rep.nonce, mac),
			0);
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, mac, NULL,
					NULL), 0);
	KUNIT_EXPECT_EQ(test, tc_free(test, b, &handle, 1), 1);
	tc_close(test, b);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

static void cd_test_orphan_expiry_frees_everything(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[2] = { 4096, 9000 };
	struct virgo_wire_hello_rep rep;
	struct socket *a, *b;
	u64 handles[2];

	ctx->cfg.orphan_timeout_ms = 300;
	start_server(test);
	a = tc_resumable(test, &rep, NULL);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, sizes, 2, handles), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, a, handles[1], 5, "x", 1), 0);
	tc_close(test, a);
	KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, 1));
	KUNIT_EXPECT_TRUE(test, wait_orphans(ctx->srv, 0));
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ORPHANS_EXPIRED),
			1ULL);
	/* Gone for good. */
	b = tc_resumable(test, &rep, NULL);
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, handles[0] >> 32, rep.token,
					NULL, NULL), VIRGO_ST_NOENT);
}

static void cd_test_orphans_are_capped_and_stop_frees_them(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct virgo_wire_hello_rep rep;
	u32 size = 4096;
	struct socket *a;
	u64 handle;
	int i;

	start_server(test);
	/* max_sessions is 4: the fifth orphan pushes the oldest out. */
	for (i = 0; i < 5; i++) {
		a = tc_resumable(test, &rep, NULL);
		KUNIT_ASSERT_EQ(test, tc_alloc(test, a, &size, 1, &handle), 0);
		tc_close(test, a);
		KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, min(i + 1, 4)));
	}
	KUNIT_EXPECT_EQ(test, wait_stat(ctx->srv, CD_STAT_ORPHANS_EXPIRED, 1),
			1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 4ULL);
	/* Stopping frees them (its checks warn otherwise). */
	clouddrec_server_stop(ctx->srv);
	ctx->srv = NULL;
}

/* ---- DISCARD (protocol.md 5.9) ---------------------------------------- */

/* A greeted session that offered DISCARD (granted unless cfg says no). */
static struct socket *tc_discard_session(struct kunit *test, u32 *caps)
{
	struct socket *sock = tc_connect(test);
	struct virgo_wire_hello_rep rep;

	KUNIT_ASSERT_EQ(test, tc_hello_caps(test, sock, VIRGO_CAP_DISCARD,
					    &rep, NULL), 0);
	if (caps)
		*caps = rep.caps;
	return sock;
}

/* DISCARD @count handles; the number discarded or a negative status. */
static int tc_discard(struct kunit *test, struct socket *sock,
		      const u64 *handles, u32 count)
{
	u8 p[8 + 8 * 16];
	int len, ret;

	KUNIT_ASSERT_LE(test, count, 16U);
	len = virgo_wire_put_discard_req(p, sizeof(p), handles, count);
	KUNIT_ASSERT_GT(test, len, 0);
	ret = tc_call(test, sock, VIRGO_OP_DISCARD, p, len, NULL);
	if (ret)
		return -ret;
	return virgo_wire_discarded(ctx_of(test)->buf);
}

/*
 * Written chunks give their memory back and read as zeroes; their budget
 * stays reserved, their handles valid; a chunk not discarded keeps its
 * bytes; a discarded chunk is written again like a fresh one.
 */
static void cd_test_discard_gives_memory_back_and_reads_zero(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *data = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	u8 *zero = kunit_kzalloc(test, TEST_CHUNK, GFP_KERNEL);
	u32 sizes[3] = { TEST_CHUNK, TEST_CHUNK, TEST_CHUNK }, caps;
	u64 h[3], charged, discarded, batch[2];
	struct virgo_wire_stat st;
	struct socket *sock;
	int i;

	KUNIT_ASSERT_NOT_NULL(test, data);
	KUNIT_ASSERT_NOT_NULL(test, zero);
	get_random_bytes(data, TEST_CHUNK);
	start_server(test);
	sock = tc_discard_session(test, &caps);
	KUNIT_EXPECT_EQ(test, caps, VIRGO_CAP_DISCARD);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, sizes, 3, h), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			0ULL);
	for (i = 0; i < 2; i++)
		KUNIT_ASSERT_EQ(test, tc_write(test, sock, h[i], 0, data,
					       TEST_CHUNK), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, sock, h[2], 100, data, 10), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			3ULL * TEST_CHUNK);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_chunks(ctx->srv),
			3ULL);
	charged = clouddrec_server_charged_bytes(ctx->srv);
	discarded = clouddrec_server_stat(ctx->srv, CD_STAT_CHUNKS_DISCARDED);

	batch[0] = h[0];
	batch[1] = h[2];
	KUNIT_EXPECT_EQ(test, tc_discard(test, sock, batch, 2), 2);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			(u64)TEST_CHUNK);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_chunks(ctx->srv),
			1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_CHUNKS_DISCARDED),
			discarded + 2);
	/* Still allocated and charged, as never-written chunks are. */
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv),
			charged);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 3ULL);
	KUNIT_ASSERT_EQ(test, tc_call(test, sock, VIRGO_OP_STAT, NULL, 0,
				      NULL), 0);
	virgo_wire_get_stat_rep(ctx->buf, &st);
	KUNIT_EXPECT_EQ(test, st.session_bytes, 3ULL * TEST_CHUNK);
	KUNIT_EXPECT_EQ(test, st.free, TEST_MEMORY - charged);

	KUNIT_ASSERT_EQ(test, tc_read(test, sock, h[0], 0, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, zero, TEST_CHUNK), 0);
	KUNIT_ASSERT_EQ(test, tc_read(test, sock, h[2], 0, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, zero, TEST_CHUNK), 0);
	KUNIT_ASSERT_EQ(test, tc_read(test, sock, h[1], 0, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, TEST_CHUNK), 0);

	/* Written again: zeroes around the new bytes, memory again. */
	KUNIT_ASSERT_EQ(test, tc_write(test, sock, h[0], 4096, data, 7), 0);
	KUNIT_ASSERT_EQ(test, tc_read(test, sock, h[0], 0, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, zero, 4096), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf + 4096, data, 7), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf + 4103, zero,
				     TEST_CHUNK - 4103), 0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_chunks(ctx->srv),
			2ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv),
			charged);
	tc_close(test, sock);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/*
 * PERM before the handshake, INVAL/TOOBIG when malformed (nothing
 * discarded), PROTO when not agreed; then best effort: the session's
 * handles (a duplicate, a never-written chunk) count, others are skipped.
 */
static void cd_test_discard_check_order(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[2] = { 4096, 4096 };
	u64 h[2], other, batch[5], errs;
	struct socket *a, *b, *raw;
	u8 p[8 + 8 * 65];

	start_server(test);
	a = tc_discard_session(test, NULL);
	b = tc_session(test);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, sizes, 2, h), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, sizes, 1, &other), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, a, h[0], 0, "a", 1), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, b, other, 0, "b", 1), 0);

	raw = tc_connect(test);
	KUNIT_EXPECT_EQ(test, tc_discard(test, raw, h, 1), -VIRGO_ST_PERM);
	/* b did not offer DISCARD: PROTO, and its chunk keeps its byte. */
	KUNIT_EXPECT_EQ(test, tc_discard(test, b, &other, 1),
			-VIRGO_ST_PROTO);
	/* A handle 0 in the batch: INVAL, nothing discarded. */
	KUNIT_ASSERT_EQ(test, virgo_wire_put_batch_hdr(p, sizeof(p), 2, 8),
			24);
	virgo_wire_set_handle(p, 0, h[0]);
	virgo_wire_set_handle(p, 1, 0);
	KUNIT_EXPECT_EQ(test, tc_call(test, a, VIRGO_OP_DISCARD, p, 24, NULL),
			VIRGO_ST_INVAL);
	/* max_batch (64) + 1 handles: TOOBIG. */
	KUNIT_ASSERT_EQ(test, virgo_wire_put_batch_hdr(p, sizeof(p), 65, 8),
			(int)sizeof(p));
	memset(p + 8, 0xff, 8 * 65);
	KUNIT_EXPECT_EQ(test, tc_call(test, a, VIRGO_OP_DISCARD, p, sizeof(p),
				      NULL), VIRGO_ST_TOOBIG);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_chunks(ctx->srv),
			2ULL);

	/* Own, duplicate, another session's, unknown, never written. */
	errs = clouddrec_server_stat(ctx->srv, CD_STAT_ERR_HANDLE);
	batch[0] = h[0];
	batch[1] = h[0];
	batch[2] = other;
	batch[3] = h[1] + 1000;
	batch[4] = h[1];
	KUNIT_EXPECT_EQ(test, tc_discard(test, a, batch, 5), 3);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_HANDLE),
			errs + 2);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_chunks(ctx->srv),
			1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 3ULL);
	KUNIT_ASSERT_EQ(test, tc_read(test, b, other, 0, 1), 0);
	KUNIT_EXPECT_EQ(test, ctx->buf[0], 'b');
	/* The session goes on, its handles valid. */
	KUNIT_EXPECT_EQ(test, tc_free(test, a, h, 2), 2);
}

/* A server told not to (discard=0) does not grant it: PROTO. */
static void cd_test_discard_off_is_not_granted(struct kunit *test)
{
	u32 sizes[1] = { 4096 }, caps;
	struct socket *sock;
	u64 h;

	ctx_of(test)->cfg.discard = false;
	start_server(test);
	sock = tc_discard_session(test, &caps);
	KUNIT_EXPECT_EQ(test, caps, 0U);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, sizes, 1, &h), 0);
	KUNIT_EXPECT_EQ(test, tc_discard(test, sock, &h, 1), -VIRGO_ST_PROTO);
}

/*
 * READ replies queued before a DISCARD send the bytes as they were; the
 * memory goes with the last of them; the READ after it sends zeroes.
 */
static void cd_test_discard_behind_queued_reads(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *data = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	struct virgo_wire_rw rw = { .length = TEST_CHUNK };
	u32 sizes[1] = { TEST_CHUNK }, rlen;
	u8 fr[8 + 8], rd[16];
	struct socket *sock;
	u64 h, charged;
	int i;

	KUNIT_ASSERT_NOT_NULL(test, data);
	get_random_bytes(data, TEST_CHUNK);
	start_server(test);
	sock = __tc_connect(test, 4096);
	KUNIT_ASSERT_EQ(test, tc_hello_caps(test, sock, VIRGO_CAP_DISCARD,
					    NULL, NULL), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, sizes, 1, &h), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, sock, h, 0, data, TEST_CHUNK), 0);
	charged = clouddrec_server_charged_bytes(ctx->srv);

	/* READ x4, DISCARD, READ: pipelined to a client not reading yet. */
	tc_deaf_reads(test, sock, h, TEST_CHUNK, 4);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_discard_req(fr, sizeof(fr), &h, 1),
			(int)sizeof(fr));
	KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_DISCARD, 10, fr,
					    sizeof(fr)), 0);
	rw.handle = h;
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(rd, 16, &rw), 16);
	KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_READ, 11, rd, 16),
			0);
	/*
	 * The server serves the DISCARD once this client has taken some
	 * replies (its queue is full until then): the old memory, still
	 * held by the rest, and the discarded chunk are then both charged
	 * (cd_test_discard_behind_reads_within_budget), until they are sent.
	 */
	for (i = 0; i < 4; i++) {
		KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_READ,
						    5000 + i, &rlen), 0);
		KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, TEST_CHUNK), 0);
	}
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_DISCARD, 10,
					    &rlen), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_discarded(ctx->buf), 1U);
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_READ, 11,
					    &rlen), 0);
	KUNIT_EXPECT_NULL(test, memchr_inv(ctx->buf, 0, TEST_CHUNK));
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv),
			charged);
	tc_close(test, sock);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/* ---- JOIN: several queues per session (protocol.md 6.2) -------------- */

#define TC_QCAPS	(VIRGO_CAP_RESUME | VIRGO_CAP_QUEUES)

/* Wait up to 5 s for the server to have @n connections. */
static bool wait_sessions(struct clouddrec_server *srv, unsigned int n)
{
	int i;

	for (i = 0; i < 250 && clouddrec_server_sessions(srv) != n; i++)
		msleep(20);
	return clouddrec_server_sessions(srv) == n;
}

/* A session that offered RESUME and QUEUES; its HELLO reply in @rep. */
static struct socket *tc_queued(struct kunit *test,
				struct virgo_wire_hello_rep *rep, u8 *cn)
{
	struct socket *sock = tc_connect(test);

	KUNIT_ASSERT_EQ(test, tc_hello_caps(test, sock, TC_QCAPS, rep, cn), 0);
	KUNIT_ASSERT_EQ(test, rep->caps, TC_QCAPS);
	return sock;
}

/* JOIN @id with @proof; returns the wire status (queues out). */
static int tc_join(struct kunit *test, struct socket *sock, u64 id,
		   const u8 *proof, u32 *queues)
{
	u8 p[VIRGO_WIRE_JOIN_REQ_LEN];
	int ret;

	KUNIT_ASSERT_EQ(test, virgo_wire_put_join_req(p, sizeof(p), id, proof),
			(int)sizeof(p));
	ret = tc_call(test, sock, VIRGO_OP_JOIN, p, sizeof(p), NULL);
	if (!ret && queues)
		*queues = virgo_wire_get_join_rep(ctx_of(test)->buf);
	return ret;
}

/* A new connection joined to the session @first names. */
static struct socket *tc_joined(struct kunit *test,
				const struct virgo_wire_hello_rep *first,
				u32 want_queues)
{
	struct virgo_wire_hello_rep rep;
	struct socket *sock = tc_queued(test, &rep, NULL);
	u32 queues = 0;

	KUNIT_ASSERT_EQ(test, tc_join(test, sock, first->resume_id,
				      first->token, &queues), 0);
	KUNIT_EXPECT_EQ(test, queues, want_queues);
	return sock;
}

/*
 * Handles, bytes and the budget are the session's, on every queue; a
 * queue that ends takes nothing with it; the last one to end orphans the
 * session, which RESUME takes over as before.
 */
static void cd_test_join_queues_share_the_session(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u32 sizes[2] = { 4096, 100 }, more = TEST_CHUNK;
	u8 *data = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	struct virgo_wire_hello_rep first, rep, other;
	struct socket *a, *b, *c, *d;
	u64 h[2], extra, chunks, lent;

	KUNIT_ASSERT_NOT_NULL(test, data);
	get_random_bytes(data, TEST_CHUNK);
	start_server(test);
	a = tc_queued(test, &first, NULL);
	b = tc_joined(test, &first, 2);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, sizes, 2, h), 0);
	/* Written on one queue, read on the other. */
	KUNIT_ASSERT_EQ(test, tc_write(test, b, h[0], 0, data, 4096), 0);
	KUNIT_ASSERT_EQ(test, tc_read(test, a, h[0], 0, 4096), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, 4096), 0);
	/* ALLOC on the joined queue continues the session's numbering. */
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, &more, 1, &extra), 0);
	KUNIT_EXPECT_EQ(test, extra >> 32, first.resume_id);
	KUNIT_EXPECT_EQ(test, extra, h[1] + 1);
	KUNIT_ASSERT_EQ(test, tc_write(test, a, extra, 0, data, TEST_CHUNK),
			0);
	lent = clouddrec_server_lent_bytes(ctx->srv);
	KUNIT_EXPECT_EQ(test, lent, (u64)4096 + 100 + TEST_CHUNK);

	/* The joined queue ends: the session and its chunks stay. */
	tc_close(test, b);
	KUNIT_ASSERT_TRUE(test, wait_sessions(ctx->srv, 1));
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv), lent);
	KUNIT_EXPECT_EQ(test, clouddrec_server_orphans(ctx->srv), 0U);
	KUNIT_ASSERT_EQ(test, tc_read(test, a, h[0], 0, 4096), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, 4096), 0);

	/* Another joins; now the first connection ends: no orphan yet. */
	c = tc_joined(test, &first, 2);
	tc_close(test, a);
	KUNIT_ASSERT_TRUE(test, wait_sessions(ctx->srv, 1));
	KUNIT_EXPECT_EQ(test, clouddrec_server_orphans(ctx->srv), 0U);
	KUNIT_ASSERT_EQ(test, tc_read(test, c, extra, 0, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, tc_free(test, c, &h[1], 1), 1);

	/* The last one ends: an orphan, which RESUME takes over. */
	tc_close(test, c);
	KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, 1));
	d = tc_queued(test, &rep, NULL);
	KUNIT_ASSERT_EQ(test, tc_resume(test, d, first.resume_id, first.token,
					&chunks, NULL), 0);
	KUNIT_EXPECT_EQ(test, chunks, 2ULL);
	KUNIT_ASSERT_EQ(test, tc_read(test, d, h[0], 0, 4096), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, 4096), 0);
	/* Queues join the resumed session with its new token only. */
	c = tc_queued(test, &other, NULL);
	KUNIT_EXPECT_EQ(test, tc_join(test, c, first.resume_id, first.token,
				      NULL), VIRGO_ST_NOENT);
	rep.resume_id = first.resume_id;
	tc_close(test, c);
	c = tc_joined(test, &rep, 2);
	KUNIT_ASSERT_EQ(test, tc_read(test, c, extra, 0, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, TEST_CHUNK), 0);
	tc_close(test, c);
	KUNIT_EXPECT_EQ(test, tc_free(test, d, h, 1), 1);
	KUNIT_EXPECT_EQ(test, tc_free(test, d, &extra, 1), 1);
	tc_close(test, d);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
	KUNIT_EXPECT_EQ(test, clouddrec_server_orphans(ctx->srv), 0U);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_QUEUES_JOINED),
			3ULL);
}

static void cd_test_join_refusals(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct virgo_wire_hello_rep first, rep;
	u8 wrong[VIRGO_WIRE_TOKEN_LEN];
	struct socket *a, *b, *c, *plain;
	u32 size = 4096;
	u64 handle, own;

	ctx->cfg.max_queues = 2;
	start_server(test);
	a = tc_queued(test, &first, NULL);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, &size, 1, &handle), 0);

	/* QUEUES needs RESUME; without it the bit is not granted: PROTO. */
	plain = tc_connect(test);
	KUNIT_ASSERT_EQ(test, tc_hello_caps(test, plain, VIRGO_CAP_QUEUES,
					    &rep, NULL), 0);
	KUNIT_EXPECT_EQ(test, rep.caps, 0U);
	KUNIT_EXPECT_EQ(test, tc_join(test, plain, first.resume_id,
				      first.token, NULL), VIRGO_ST_PROTO);
	tc_close(test, plain);

	/* A wrong token, an unknown id, its own id: NOENT. */
	b = tc_queued(test, &rep, NULL);
	memcpy(wrong, first.token, sizeof(wrong));
	wrong[3] ^= 0x10;
	KUNIT_EXPECT_EQ(test, tc_join(test, b, first.resume_id, wrong, NULL),
			VIRGO_ST_NOENT);
	KUNIT_EXPECT_EQ(test, tc_join(test, b, first.resume_id + 1000,
				      first.token, NULL), VIRGO_ST_NOENT);
	KUNIT_EXPECT_EQ(test, tc_join(test, b, rep.resume_id, rep.token, NULL),
			VIRGO_ST_NOENT);
	/* The session's token (no key): OK. */
	KUNIT_EXPECT_EQ(test, tc_join(test, b, first.resume_id, first.token,
				      NULL), 0);
	/* Joined: no second JOIN, no RESUME on it. */
	KUNIT_EXPECT_EQ(test, tc_join(test, b, first.resume_id, first.token,
				      NULL), VIRGO_ST_INVAL);
	KUNIT_EXPECT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					NULL, NULL), VIRGO_ST_INVAL);
	/* max_queues (2) reached: BUSY. */
	c = tc_queued(test, &rep, NULL);
	KUNIT_EXPECT_EQ(test, tc_join(test, c, first.resume_id, first.token,
				      NULL), VIRGO_ST_BUSY);
	/* After an ALLOC a connection is a session of its own: INVAL. */
	tc_close(test, c);
	c = tc_queued(test, &rep, NULL);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, c, &size, 1, &own), 0);
	KUNIT_EXPECT_EQ(test, tc_join(test, c, first.resume_id, first.token,
				      NULL), VIRGO_ST_INVAL);
	KUNIT_EXPECT_EQ(test, tc_free(test, c, &own, 1), 1);
	tc_close(test, c);

	/* RESUME of a session with two queues: BUSY, both closed. */
	c = tc_queued(test, &rep, NULL);
	KUNIT_EXPECT_EQ(test, tc_resume(test, c, first.resume_id, first.token,
					NULL, NULL), VIRGO_ST_BUSY);
	KUNIT_EXPECT_TRUE(test, tc_closed(a));
	KUNIT_EXPECT_TRUE(test, tc_closed(b));
	KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, 1));
	/* An orphan is not live: NOENT for JOIN, RESUME takes it. */
	tc_close(test, a);
	a = tc_queued(test, &rep, NULL);
	KUNIT_EXPECT_EQ(test, tc_join(test, a, first.resume_id, first.token,
				      NULL), VIRGO_ST_NOENT);
	KUNIT_EXPECT_EQ(test, tc_resume(test, c, first.resume_id, first.token,
					NULL, NULL), 0);
	KUNIT_EXPECT_EQ(test, tc_free(test, c, &handle, 1), 1);
	tc_close(test, a);
	tc_close(test, b);
	tc_close(test, c);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
	KUNIT_EXPECT_EQ(test, clouddrec_server_orphans(ctx->srv), 0U);
}

/* With a key, JOIN takes the keyed proof of this connection's nonces. */
static void cd_test_join_with_key_needs_the_key(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 cn[VIRGO_WIRE_NONCE_LEN], mac[VIRGO_WIRE_MAC_LEN];
	u8 input[VIRGO_WIRE_JOIN_INPUT_LEN];
	struct virgo_wire_hello_rep first, rep;
	struct crypto_shash *tfm;
	struct socket *a, *b;
	u32 size = 4096, queues;
	u64 handle;

	use_key(test);
	start_server(test);
	a = tc_queued(test, &first, cn);
	KUNIT_ASSERT_EQ(test, tc_mac(VIRGO_WIRE_AUTH_CLIENT, TEST_PSK,
				     strlen(TEST_PSK), cn, first.nonce, mac),
			0);
	KUNIT_ASSERT_EQ(test, tc_call(test, a, VIRGO_OP_AUTH, mac, sizeof(mac),
				      NULL), 0);
	b = tc_queued(test, &rep, cn);
	/* Before AUTH: PERM. */
	KUNIT_EXPECT_EQ(test, tc_join(test, b, first.resume_id, first.token,
				      NULL), VIRGO_ST_PERM);
	KUNIT_ASSERT_EQ(test, tc_mac(VIRGO_WIRE_AUTH_CLIENT, TEST_PSK,
				     strlen(TEST_PSK), cn, rep.nonce, mac), 0);
	KUNIT_ASSERT_EQ(test, tc_call(test, b, VIRGO_OP_AUTH, mac, sizeof(mac),
				      NULL), 0);
	/* The token seen on the wire is not enough, nor a RESUME proof. */
	KUNIT_EXPECT_EQ(test, tc_join(test, b, first.resume_id, first.token,
				      NULL), VIRGO_ST_NOENT);
	KUNIT_ASSERT_EQ(test, tc_resume_proof(TEST_PSK, strlen(TEST_PSK),
					      first.token, cn, rep.nonce, mac),
			0);
	KUNIT_EXPECT_EQ(test, tc_join(test, b, first.resume_id, mac, NULL),
			VIRGO_ST_NOENT);
	tfm = crypto_alloc_shash("hmac(sha256)", 0, 0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(tfm));
	KUNIT_ASSERT_EQ(test, crypto_shash_setkey(tfm, TEST_PSK,
						  strlen(TEST_PSK)), 0);
	virgo_wire_join_input(input, first.token, cn, rep.nonce);
	KUNIT_ASSERT_EQ(test, crypto_shash_tfm_digest(tfm, input, sizeof(input),
						      mac), 0);
	crypto_free_shash(tfm);
	KUNIT_EXPECT_EQ(test, tc_join(test, b, first.resume_id, mac, &queues),
			0);
	KUNIT_EXPECT_EQ(test, queues, 2U);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, &size, 1, &handle), 0);
	KUNIT_EXPECT_EQ(test, tc_free(test, a, &handle, 1), 1);
	tc_close(test, a);
	tc_close(test, b);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/*
 * A WRITE on one queue to a chunk another queue's READ reply still sends
 * from waits for that reply to leave, then is applied: the READ sends the
 * bytes of when it was served, the WRITE is not lost, and nothing stalls
 * (the last reply wakes the other queue's work).
 */
static void cd_test_join_write_waits_for_read_of_other_queue(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *old = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	u8 *new = kunit_kmalloc(test, 16 + TEST_CHUNK, GFP_KERNEL);
	struct virgo_wire_rw rw = { .length = TEST_CHUNK };
	struct virgo_wire_hello_rep first;
	u32 size = TEST_CHUNK, rlen;
	struct socket *a, *b;
	u64 h;
	int i;

	KUNIT_ASSERT_NOT_NULL(test, old);
	KUNIT_ASSERT_NOT_NULL(test, new);
	get_random_bytes(old, TEST_CHUNK);
	get_random_bytes(new + 16, TEST_CHUNK);
	start_server(test);
	a = __tc_connect(test, 4096);
	KUNIT_ASSERT_EQ(test, tc_hello_caps(test, a, TC_QCAPS, &first, NULL),
			0);
	b = tc_joined(test, &first, 2);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, &size, 1, &h), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, a, h, 0, old, TEST_CHUNK), 0);

	/* a asks for h 4 times and reads nothing yet; b overwrites h. */
	tc_deaf_reads(test, a, h, TEST_CHUNK, 4);
	msleep(100);
	rw.handle = h;
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(new, 16, &rw), 16);
	KUNIT_ASSERT_EQ(test, tc_send_frame(b, VIRGO_OP_WRITE, 7, new,
					    16 + TEST_CHUNK), 0);
	msleep(100);
	for (i = 0; i < 4; i++) {
		KUNIT_ASSERT_EQ(test, tc_read_reply(test, a, VIRGO_OP_READ,
						    5000 + i, &rlen), 0);
		KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, old, TEST_CHUNK), 0);
	}
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, b, VIRGO_OP_WRITE, 7, &rlen),
			0);
	KUNIT_ASSERT_EQ(test, tc_read(test, a, h, 0, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, new + 16, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, tc_free(test, b, &h, 1), 1);
	tc_close(test, a);
	tc_close(test, b);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/*
 * A chunk freed on one queue while another receives a WRITE's data into
 * it: the WRITE finishes into memory it still holds, which goes with it;
 * and a queue that breaks in the middle of a WRITE leaves the session's
 * other queues working and nothing charged once the chunks are freed.
 */
static void cd_test_join_free_during_write_of_other_queue(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *frame = kunit_kmalloc(test, 16 + TEST_CHUNK, GFP_KERNEL);
	struct virgo_wire_rw rw = { .length = TEST_CHUNK };
	u32 sizes[2] = { TEST_CHUNK, TEST_CHUNK }, rlen;
	struct virgo_wire_hello_rep first;
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct socket *a, *b;
	u64 h[2];

	KUNIT_ASSERT_NOT_NULL(test, frame);
	get_random_bytes(frame + 16, TEST_CHUNK);
	start_server(test);
	a = tc_queued(test, &first, NULL);
	b = tc_joined(test, &first, 2);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, sizes, 2, h), 0);

	/* b: header, head and half the data of a WRITE to h0. */
	rw.handle = h[0];
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(frame, 16, &rw), 16);
	virgo_wire_hdr_pack(hdr, VIRGO_OP_WRITE, 0, 16 + TEST_CHUNK, 0, 9);
	KUNIT_ASSERT_EQ(test, tc_send(b, hdr, sizeof(hdr)), 0);
	KUNIT_ASSERT_EQ(test, tc_send(b, frame, 16 + TEST_CHUNK / 2), 0);
	KUNIT_ASSERT_TRUE(test, wait_stat(ctx->srv, CD_STAT_REQUESTS, 5) >= 5);
	msleep(100);
	/* a frees h0 meanwhile; b sends the rest. */
	KUNIT_EXPECT_EQ(test, tc_free(test, a, h, 1), 1);
	KUNIT_ASSERT_EQ(test, tc_send(b, frame + 16 + TEST_CHUNK / 2,
				      TEST_CHUNK / 2), 0);
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, b, VIRGO_OP_WRITE, 9, &rlen),
			0);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_chunks(ctx->srv), 1ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_chunks(ctx->srv),
			0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv),
			clouddrec_chunk_cost(TEST_CHUNK));

	/* b breaks in the middle of a WRITE to h1: a goes on. */
	rw.handle = h[1];
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(frame, 16, &rw), 16);
	KUNIT_ASSERT_EQ(test, tc_send(b, hdr, sizeof(hdr)), 0);
	KUNIT_ASSERT_EQ(test, tc_send(b, frame, 16 + 1000), 0);
	msleep(100);
	tc_close(test, b);
	KUNIT_ASSERT_TRUE(test, wait_sessions(ctx->srv, 1));
	/* Unwritten bytes of a chunk the session keeps read as zeroes. */
	KUNIT_ASSERT_EQ(test, tc_read(test, a, h[1], 1000, 4096), 0);
	KUNIT_EXPECT_TRUE(test, !memchr_inv(ctx->buf, 0, 4096));
	KUNIT_EXPECT_EQ(test, tc_free(test, a, &h[1], 1), 1);
	tc_close(test, a);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/*
 * A queue whose client does not read its replies stops being served; the
 * session's other queue is served as fast as ever meanwhile.
 */
static void cd_test_join_deaf_queue_does_not_stall_another(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *data = kunit_kmalloc(test, 4096, GFP_KERNEL);
	u32 sizes[2] = { TEST_CHUNK, 4096 };
	struct virgo_wire_hello_rep first;
	unsigned long took;
	struct socket *a, *b;
	u64 h[2];

	KUNIT_ASSERT_NOT_NULL(test, data);
	get_random_bytes(data, 4096);
	start_server(test);
	a = __tc_connect(test, 4096);
	KUNIT_ASSERT_EQ(test, tc_hello_caps(test, a, TC_QCAPS, &first, NULL),
			0);
	b = tc_joined(test, &first, 2);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, b, sizes, 2, h), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, b, h[0], 0, data, 4096), 0);
	/* a: many big READs whose replies it never takes. */
	tc_deaf_reads(test, a, h[0], TEST_CHUNK, 8);
	msleep(100);
	took = tc_round_trips(test, b, h[1], data);
	KUNIT_EXPECT_LT(test, took, (unsigned long)HZ);
	tc_close(test, a);
	KUNIT_EXPECT_EQ(test, tc_free(test, b, h, 2), 2);
	tc_close(test, b);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/*
 * A chunk whose memory queued READ replies still hold is not discarded
 * when the budget cannot charge it again (max_memory is a bound on what a
 * client makes the node allocate, replies it does not read included); once
 * the replies are gone it is.
 */
static void cd_test_discard_behind_reads_within_budget(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *data = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	u32 sizes[1] = { TEST_CHUNK }, rlen;
	u8 fr[8 + 8];
	struct socket *sock;
	u64 h, nomem;
	int i;

	KUNIT_ASSERT_NOT_NULL(test, data);
	get_random_bytes(data, TEST_CHUNK);
	/* Room for this one chunk, not for a second charge of it. */
	ctx->cfg.max_memory = clouddrec_chunk_cost(TEST_CHUNK) +
			      clouddrec_chunk_cost(TEST_CHUNK) / 2;
	start_server(test);
	sock = __tc_connect(test, 4096);
	KUNIT_ASSERT_EQ(test, tc_hello_caps(test, sock, VIRGO_CAP_DISCARD,
					    NULL, NULL), 0);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, sock, sizes, 1, &h), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, sock, h, 0, data, TEST_CHUNK), 0);
	nomem = clouddrec_server_stat(ctx->srv, CD_STAT_ERR_NOMEM);

	/* More than the sockets take: replies stay queued, holding it. */
	tc_deaf_reads(test, sock, h, TEST_CHUNK, 4);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_discard_req(fr, sizeof(fr), &h, 1),
			(int)sizeof(fr));
	KUNIT_ASSERT_EQ(test, tc_send_frame(sock, VIRGO_OP_DISCARD, 10, fr,
					    sizeof(fr)), 0);
	for (i = 0; i < 4; i++) {
		KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_READ,
						    5000 + i, &rlen), 0);
		KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, TEST_CHUNK), 0);
	}
	KUNIT_ASSERT_EQ(test, tc_read_reply(test, sock, VIRGO_OP_DISCARD, 10,
					    &rlen), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_discarded(ctx->buf), 0U);
	KUNIT_EXPECT_EQ(test, clouddrec_server_stat(ctx->srv,
						    CD_STAT_ERR_NOMEM),
			nomem + 1);
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv),
			clouddrec_chunk_cost(TEST_CHUNK));
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			(u64)TEST_CHUNK);

	/* Nothing holds it now: discarded, within the one charge. */
	KUNIT_EXPECT_EQ(test, tc_discard(test, sock, &h, 1), 1);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			0ULL);
	KUNIT_EXPECT_EQ(test, clouddrec_server_charged_bytes(ctx->srv),
			clouddrec_chunk_cost(TEST_CHUNK));
	tc_close(test, sock);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/*
 * A connection lost with READ replies still queued: they hold references
 * to its chunks, counted by plain increments that only the work of the
 * session owning the table may make.  They must be gone before the table
 * is an orphan, which another connection's work may RESUME (and READ,
 * WRITE, DISCARD) at once, on another CPU.  Then the resumed session has
 * every byte.
 */
static void cd_test_orphan_holds_no_reply_references(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	u8 *data = kunit_kmalloc(test, TEST_CHUNK, GFP_KERNEL);
	struct virgo_wire_hello_rep first, second;
	u32 size = TEST_CHUNK;
	struct socket *a, *b;
	u64 h;

	KUNIT_ASSERT_NOT_NULL(test, data);
	get_random_bytes(data, TEST_CHUNK);
	atomic_set(&orphaned_calls, 0);
	atomic_set(&orphaned_replies, 0);
	clouddrec_test_orphaned = record_orphaned;
	start_server(test);
	/* A small receive buffer, so that the replies do stay queued. */
	a = __tc_connect(test, 4096);
	KUNIT_ASSERT_EQ(test, tc_hello_caps(test, a, VIRGO_CAP_RESUME, &first,
					    NULL), 0);
	KUNIT_ASSERT_EQ(test, first.caps, VIRGO_CAP_RESUME);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, &size, 1, &h), 0);
	KUNIT_ASSERT_EQ(test, tc_write(test, a, h, 0, data, TEST_CHUNK), 0);
	/* More than the sockets take, never read: replies stay queued. */
	tc_deaf_reads(test, a, h, TEST_CHUNK, 8);
	msleep(200);
	tc_close(test, a);
	KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, 1));
	KUNIT_EXPECT_EQ(test, atomic_read(&orphaned_calls), 1);
	KUNIT_EXPECT_EQ(test, atomic_read(&orphaned_replies), 0);

	b = tc_resumable(test, &second, NULL);
	KUNIT_ASSERT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					NULL, NULL), 0);
	KUNIT_ASSERT_EQ(test, tc_read(test, b, h, 0, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->buf, data, TEST_CHUNK), 0);
	KUNIT_EXPECT_EQ(test, tc_free(test, b, &h, 1), 1);
	tc_close(test, b);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
}

/*
 * The first WRITE of a chunk below a page, covering it whole, whose data
 * stops after one byte: the session ends, its chunk waits as an orphan,
 * and after RESUME the bytes never received read as zeroes, not as what
 * the memory held before (the allocation was left unzeroed for a write
 * covering the chunk).  Freed objects of that size, filled with a
 * pattern, are what the allocator most likely hands out next.
 */
static void cd_test_torn_first_write_leaks_nothing(struct kunit *test)
{
	struct cd_test_ctx *ctx = ctx_of(test);
	struct virgo_wire_rw rw = { .length = 4000 };
	struct virgo_wire_hello_rep first, second;
	u8 hdr[VIRGO_WIRE_HDR_LEN], head[16 + 1];
	u32 size = 4000;
	struct socket *a, *b;
	void *junk[16];
	int i;

	start_server(test);
	a = tc_resumable(test, &first, NULL);
	KUNIT_ASSERT_EQ(test, tc_alloc(test, a, &size, 1, &rw.handle), 0);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_rw_req(head, 16, &rw), 16);
	head[16] = 0x77;
	for (i = 0; i < ARRAY_SIZE(junk); i++) {
		junk[i] = kmalloc(size, GFP_KERNEL);
		if (junk[i])
			memset(junk[i], 0x5a, size);
	}
	for (i = 0; i < ARRAY_SIZE(junk); i++)
		kfree(junk[i]);
	virgo_wire_hdr_pack(hdr, VIRGO_OP_WRITE, 0, 16 + size, 0, 9);
	KUNIT_ASSERT_EQ(test, tc_send(a, hdr, sizeof(hdr)), 0);
	KUNIT_ASSERT_EQ(test, tc_send(a, head, sizeof(head)), 0);
	msleep(100);
	tc_close(test, a);
	KUNIT_ASSERT_TRUE(test, wait_orphans(ctx->srv, 1));

	b = tc_resumable(test, &second, NULL);
	KUNIT_ASSERT_EQ(test, tc_resume(test, b, first.resume_id, first.token,
					NULL, NULL), 0);
	KUNIT_ASSERT_EQ(test, tc_read(test, b, rw.handle, 0, size), 0);
	/* Byte 0 old (0) or new (0x77); every other byte never written. */
	KUNIT_EXPECT_TRUE(test, ctx->buf[0] == 0 || ctx->buf[0] == 0x77);
	KUNIT_EXPECT_NULL(test, memchr_inv(ctx->buf + 1, 0, size - 1));
	KUNIT_EXPECT_EQ(test, tc_free(test, b, &rw.handle, 1), 1);
	tc_close(test, b);
	KUNIT_EXPECT_TRUE(test, server_idle(ctx->srv));
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
	KUNIT_CASE(cd_test_preauth_big_frame_closes),
	KUNIT_CASE(cd_test_handshake_deadline),
	KUNIT_CASE(cd_test_sessions_per_addr_capped),
	KUNIT_CASE(cd_test_dual_stack_sessions_per_addr),
	KUNIT_CASE(cd_test_listen_ipv6_only),
	KUNIT_CASE(cd_test_rx_buffers_bounded),
	KUNIT_CASE(cd_test_deaf_sessions_do_not_stall_others),
	KUNIT_CASE(cd_test_queued_read_reply_keeps_its_bytes),
	KUNIT_CASE(cd_test_pool_fills_for_authed_sessions_only),
	KUNIT_CASE(cd_test_chunk_freed_mid_reply_sends_old_bytes),
	KUNIT_CASE(cd_test_tiny_chunk_flood_stops_at_budget),
	KUNIT_CASE(cd_test_session_chunk_cap),
	KUNIT_CASE(cd_test_min_free_refuses_new_chunks),
	KUNIT_CASE(cd_test_max_payload_advertised_and_enforced),
	KUNIT_CASE(cd_test_preauth_malformed_gets_perm),
	KUNIT_CASE(cd_test_preauth_replies_stay_few),
	KUNIT_CASE(cd_test_refused_hello_is_not_the_hello),
	KUNIT_CASE(cd_test_reply_flag_request_is_inval),
	KUNIT_CASE(cd_test_free_check_order),
	KUNIT_CASE(cd_test_random_frames),
	KUNIT_CASE(cd_test_bad_config_is_rejected),
	KUNIT_CASE(cd_test_resume_keeps_every_handle_and_byte),
	KUNIT_CASE(cd_test_orphan_holds_no_reply_references),
	KUNIT_CASE(cd_test_torn_first_write_leaks_nothing),
	KUNIT_CASE(cd_test_resume_refusals),
	KUNIT_CASE(cd_test_resume_proof_matches_the_test_vector),
	KUNIT_CASE(cd_test_resume_with_key_needs_the_key),
	KUNIT_CASE(cd_test_orphan_expiry_frees_everything),
	KUNIT_CASE(cd_test_orphans_are_capped_and_stop_frees_them),
	KUNIT_CASE(cd_test_discard_gives_memory_back_and_reads_zero),
	KUNIT_CASE(cd_test_discard_check_order),
	KUNIT_CASE(cd_test_discard_off_is_not_granted),
	KUNIT_CASE(cd_test_discard_behind_queued_reads),
	KUNIT_CASE(cd_test_discard_behind_reads_within_budget),
	KUNIT_CASE(cd_test_join_queues_share_the_session),
	KUNIT_CASE(cd_test_join_refusals),
	KUNIT_CASE(cd_test_join_with_key_needs_the_key),
	KUNIT_CASE(cd_test_join_write_waits_for_read_of_other_queue),
	KUNIT_CASE(cd_test_join_free_during_write_of_other_queue),
	KUNIT_CASE(cd_test_join_deaf_queue_does_not_stall_another),
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
