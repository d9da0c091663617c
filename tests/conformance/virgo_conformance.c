// SPDX-License-Identifier: GPL-2.0
/*
 * virgo-conformance: drives any virgo server (virgo_clouddrec.ko,
 * virgo-clouddrecd) over TCP and checks it against docs/protocol.md.
 *
 *   virgo-conformance [--key FILE] [--skip a,b] [--only a,b] [--list]
 *                     [--handshake-timeout SEC] [-v] HOST PORT
 *
 * Every case opens its own connections.  HOST is an IPv4 or IPv6 address.
 * With --key the server must require AUTH (the file holds the key: its
 * bytes, one trailing newline dropped); without it the server must not.
 * --handshake-timeout SEC also checks that a connection that never
 * completes its handshake is closed within SEC + 2 s.  Session
 * resumption (capability RESUME, docs/protocol.md 6.1): the cases run
 * when the server grants the capability, else they are skipped with a
 * note; --orphan-timeout SEC (the server's, at most 30) adds the orphan
 * expiry case.  The last line is
 * "N passed, N failed, N skipped"; the exit status is 1 if any failed.
 *
 * The cases assert what the spec says; the server's other clients, if
 * any, must be idle (the counters case compares global counters).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <virgo_wire.h>

#define IO_TIMEOUT_MS 5000

struct ctx {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	u8 key[64];
	size_t key_len;
	bool have_key;
	bool verbose;
	unsigned int handshake_timeout;
	unsigned int orphan_timeout;
	bool resume; /* the server grants capability RESUME */
	bool discard; /* the server grants capability DISCARD */
	bool queues; /* the server grants capability QUEUES (with RESUME) */
	/* Learnt from the first HELLO. */
	struct virgo_wire_hello_rep hello;
	struct virgo_wire_limits lim; /* server's */
	struct virgo_wire_limits rlim; /* what we accept in replies */
	/* Case bookkeeping. */
	const char *cur;
	bool failed;
	int passed, nfailed, skipped;
};

struct conn {
	int fd;
	u8 cnonce[VIRGO_WIRE_NONCE_LEN];
	u8 snonce[VIRGO_WIRE_NONCE_LEN];
	struct virgo_wire_hello_rep hello;
	u32 hello_len; /* payload bytes of the HELLO reply */
};

static void vfail(struct ctx *c, int line, const char *fmt, va_list ap)
{
	if (c->failed)
		return;
	c->failed = true;
	printf("FAIL %s (line %d): ", c->cur, line);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
}

/* Fail the current case (the first failure is reported); true. */
static bool check_failed(struct ctx *c, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, line, fmt, ap);
	va_end(ap);
	return true;
}

static void fail(struct ctx *c, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, line, fmt, ap);
	va_end(ap);
}

/* A status (or -errno) that is not the one wanted fails the case: true. */
static bool check_status(struct ctx *c, int line, int got, int want,
			 const char *what)
{
	if (got == want)
		return false;
	return check_failed(c, line, "%s: status %s (%d), want %s", what,
			    got < 0 ? strerror(-got) :
				      virgo_wire_status_name((u32)got),
			    got, virgo_wire_status_name((u32)want));
}

/* Usage: if (CHECK(c, cond, "fmt", ...)) goto out; */
#define CHECK(c, cond, ...) \
	(!(cond) && check_failed((c), __LINE__, __VA_ARGS__))
#define CHECK_ST(c, got, want, what) \
	check_status((c), __LINE__, (got), (want), (what))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000 + (u64)ts.tv_nsec / 1000000;
}

static u64 rnd64(void)
{
	u64 v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (u64)random() << 32 ^ (u64)random();
	return v;
}

/* ---- sockets --------------------------------------------------------- */

static int conn_open(struct ctx *c, struct conn *k)
{
	struct timeval tv = { .tv_sec = IO_TIMEOUT_MS / 1000 };
	int one = 1;

	memset(k, 0, sizeof(*k));
	k->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (k->fd < 0)
		return -errno;
	setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(k->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(k->fd, (struct sockaddr *)&c->addr, c->addr_len)) {
		int err = -errno;

		close(k->fd);
		k->fd = -1;
		return err;
	}
	return 0;
}

static void conn_close(struct conn *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const u8 *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 0 when all read, -ECONNRESET on EOF, -EAGAIN on timeout. */
static int read_all(int fd, void *buf, size_t len)
{
	u8 *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EWOULDBLOCK)
				return -EAGAIN;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(int fd, u8 op, u16 flags, u32 status, u64 tag,
		      const void *payload, u32 len)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	int ret;

	virgo_wire_hdr_pack(hdr, op, flags, len, status, tag);
	ret = write_all(fd, hdr, sizeof(hdr));
	if (!ret && len)
		ret = write_all(fd, payload, len);
	return ret;
}

/*
 * Receive one reply into @buf (@cap bytes), checked with the codec.
 * Returns 0, -ECONNRESET (EOF), -EAGAIN (timeout), -EPROTO (bad reply).
 */
static int recv_reply(struct ctx *c, int fd, struct virgo_wire_msg *m, u8 *buf,
		      size_t cap)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	int ret;

	ret = read_all(fd, hdr, sizeof(hdr));
	if (ret)
		return ret;
	ret = virgo_wire_hdr_unpack(hdr, m, &c->rlim);
	if (ret || !virgo_wire_is_reply(m) || m->len > cap)
		return -EPROTO;
	ret = read_all(fd, buf, m->len);
	if (ret)
		return ret;
	if (virgo_wire_check_rep(m, m->len ? buf : NULL, &c->rlim))
		return -EPROTO;
	return 0;
}

static u8 *g_rbuf; /* reply buffer: max_payload bytes */
static size_t g_rbuf_cap;

/*
 * One request, one reply: checks the reply's opcode and tag.  Returns the
 * status (>= 0), or a negative errno from recv_reply()/send.
 */
static int rpc(struct ctx *c, int fd, u8 op, const void *p, u32 len, u32 *rlen)
{
	struct virgo_wire_msg m;
	u64 tag = rnd64();
	int ret;

	ret = send_frame(fd, op, 0, 0, tag, p, len);
	if (ret)
		return ret;
	ret = recv_reply(c, fd, &m, g_rbuf, g_rbuf_cap);
	if (ret)
		return ret;
	if (m.tag != tag || m.opcode != op)
		return -EPROTO;
	if (rlen)
		*rlen = m.len;
	return (int)m.status;
}

/* After a frame that must end the connection: EOF, no reply, in time. */
static bool expect_closed(int fd)
{
	u64 end = now_ms() + IO_TIMEOUT_MS;
	u8 b;

	while (now_ms() < end) {
		ssize_t n = recv(fd, &b, 1, 0);

		if (n == 0)
			return true;
		if (n < 0 && errno == ECONNRESET)
			return true;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EWOULDBLOCK)
			continue;
		return false; /* a byte: some reply was sent */
	}
	return false;
}

/* ---- handshake ------------------------------------------------------- */

static int do_mac(const struct ctx *c, const u8 *key, size_t key_len,
		  enum virgo_wire_auth_role role, const u8 *cn, const u8 *sn,
		  u8 *mac)
{
	u8 in[VIRGO_WIRE_AUTH_INPUT_LEN];
	unsigned int len = 0;

	(void)c;
	virgo_wire_auth_input(in, role, cn, sn);
	if (!HMAC(EVP_sha256(), key, (int)key_len, in, sizeof(in), mac, &len))
		return -EIO;
	return len == VIRGO_WIRE_MAC_LEN ? 0 : -EIO;
}

static int hello_with(struct ctx *c, struct conn *k, u16 vmin, u16 vmax,
		      u32 caps)
{
	struct virgo_wire_hello_req req = {
		.ver_min = vmin,
		.ver_max = vmax,
		.caps = caps,
	};
	u8 buf[VIRGO_WIRE_HELLO_REQ_LEN];
	int st;

	if (getrandom(req.nonce, sizeof(req.nonce), 0) != sizeof(req.nonce))
		return -EIO;
	memcpy(k->cnonce, req.nonce, sizeof(k->cnonce));
	virgo_wire_put_hello_req(buf, sizeof(buf), &req);
	st = rpc(c, k->fd, VIRGO_OP_HELLO, buf, sizeof(buf), &k->hello_len);
	if (st == VIRGO_ST_OK) {
		virgo_wire_get_hello_rep(g_rbuf, &k->hello);
		memcpy(k->snonce, k->hello.nonce, sizeof(k->snonce));
		/* A bit we did not offer: the client closes (section 5.1). */
		if (k->hello.caps & ~caps)
			return -EPROTO;
	}
	return st;
}

static int hello(struct ctx *c, struct conn *k)
{
	return hello_with(c, k, 1, 1, 0);
}

/* AUTH with @key; verifies the server's MAC on success. */
static int auth_with(struct ctx *c, struct conn *k, const u8 *key,
		     size_t key_len)
{
	u8 mac[VIRGO_WIRE_MAC_LEN], want[VIRGO_WIRE_MAC_LEN];
	int st;

	if (do_mac(c, key, key_len, VIRGO_WIRE_AUTH_CLIENT, k->cnonce,
		   k->snonce, mac))
		return -EIO;
	st = rpc(c, k->fd, VIRGO_OP_AUTH, mac, sizeof(mac), NULL);
	if (st != VIRGO_ST_OK)
		return st;
	if (do_mac(c, key, key_len, VIRGO_WIRE_AUTH_SERVER, k->cnonce,
		   k->snonce, want) ||
	    CRYPTO_memcmp(want, g_rbuf, sizeof(want)))
		return -EKEYREJECTED;
	return 0;
}

/* Connect, HELLO, AUTH if we have the key: a ready session, or -errno. */
static int open_ready(struct ctx *c, struct conn *k)
{
	int ret = conn_open(c, k);

	if (ret)
		return ret;
	ret = hello(c, k);
	if (ret == VIRGO_ST_OK && c->have_key)
		ret = auth_with(c, k, c->key, c->key_len);
	if (ret) {
		conn_close(k);
		return ret > 0 ? -EIO : ret;
	}
	return 0;
}

/* ---- request helpers ------------------------------------------------- */

static int do_alloc(struct ctx *c, int fd, const u32 *sizes, u32 count,
		    u64 *handles)
{
	size_t cap = VIRGO_WIRE_BATCH_HDR_LEN + 4 * (size_t)count;
	u8 *buf = malloc(cap);
	u32 rlen = 0, i;
	int st;

	if (!buf)
		return -ENOMEM;
	virgo_wire_put_alloc_req(buf, cap, sizes, count);
	st = rpc(c, fd, VIRGO_OP_ALLOC, buf, (u32)cap, &rlen);
	free(buf);
	if (st == VIRGO_ST_OK) {
		if (rlen != VIRGO_WIRE_BATCH_HDR_LEN + 8 * count ||
		    virgo_wire_batch_count(g_rbuf) != count)
			return -EPROTO;
		for (i = 0; i < count && handles; i++)
			handles[i] = virgo_wire_handle(g_rbuf, i);
	}
	return st;
}

static int do_alloc1(struct ctx *c, int fd, u32 size, u64 *h)
{
	return do_alloc(c, fd, &size, 1, h);
}

/* FREE; *freed is the count the server reports. */
static int do_free(struct ctx *c, int fd, const u64 *h, u32 count, u32 *freed)
{
	size_t cap = VIRGO_WIRE_BATCH_HDR_LEN + 8 * (size_t)count;
	u8 *buf = malloc(cap);
	int st;

	if (!buf)
		return -ENOMEM;
	virgo_wire_put_free_req(buf, cap, h, count);
	st = rpc(c, fd, VIRGO_OP_FREE, buf, (u32)cap, NULL);
	free(buf);
	if (st == VIRGO_ST_OK && freed)
		*freed = virgo_wire_freed(g_rbuf);
	return st;
}

static int do_write(struct ctx *c, int fd, u64 h, u32 off, const void *data,
		    u32 len)
{
	struct virgo_wire_rw rw = { .handle = h, .offset = off, .length = len };
	u8 *buf = malloc(VIRGO_WIRE_RW_REQ_LEN + (size_t)len);
	int st;

	if (!buf)
		return -ENOMEM;
	virgo_wire_put_rw_req(buf, VIRGO_WIRE_RW_REQ_LEN, &rw);
	memcpy(buf + VIRGO_WIRE_RW_REQ_LEN, data, len);
	st = rpc(c, fd, VIRGO_OP_WRITE, buf, VIRGO_WIRE_RW_REQ_LEN + len, NULL);
	free(buf);
	return st;
}

/* READ into @out (len bytes) on success. */
static int do_read(struct ctx *c, int fd, u64 h, u32 off, void *out, u32 len)
{
	struct virgo_wire_rw rw = { .handle = h, .offset = off, .length = len };
	u8 buf[VIRGO_WIRE_RW_REQ_LEN];
	u32 rlen = 0;
	int st;

	virgo_wire_put_rw_req(buf, sizeof(buf), &rw);
	st = rpc(c, fd, VIRGO_OP_READ, buf, sizeof(buf), &rlen);
	if (st == VIRGO_ST_OK) {
		if (rlen != len)
			return -EPROTO;
		memcpy(out, g_rbuf, len);
	}
	return st;
}

static int do_stat(struct ctx *c, int fd, struct virgo_wire_stat *st)
{
	int ret = rpc(c, fd, VIRGO_OP_STAT, NULL, 0, NULL);

	if (ret == VIRGO_ST_OK)
		virgo_wire_get_stat_rep(g_rbuf, st);
	return ret;
}

static int do_ping(struct ctx *c, int fd)
{
	u8 b[8] = "virgo!!";
	u32 rlen = 0;
	int st = rpc(c, fd, VIRGO_OP_PING, b, sizeof(b), &rlen);

	if (st == VIRGO_ST_OK && (rlen != sizeof(b) || memcmp(g_rbuf, b, rlen)))
		return -EPROTO;
	return st;
}

static void fill(u8 *p, size_t len, u64 seed)
{
	size_t i;

	for (i = 0; i < len; i++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (u8)(seed >> 56);
	}
}

static bool all_zero(const u8 *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- cases: handshake ------------------------------------------------ */

/* docs/protocol.md, section 6. */
static const char vector_client_mac[] =
	"f7d3c2f7317149fe1cf56d14e692beab1d6820fd7c870d0bb373d25ee9263ed0";
static const char vector_server_mac[] =
	"648aa42e2e0040f40661933b804e2bc57c9be46a020c0e1c71dde169590a40dd";

static void t_auth_vector(struct ctx *c)
{
	const char *want_c = vector_client_mac;
	const char *want_s = vector_server_mac;
	u8 key[32], cn[32], sn[32], mac[32];
	char hex[65];
	int i;

	for (i = 0; i < 32; i++) {
		key[i] = (u8)i;
		cn[i] = (u8)(0xc0 + i);
		sn[i] = (u8)(0x50 + i);
	}
	if (CHECK(c, !do_mac(c, key, 32, VIRGO_WIRE_AUTH_CLIENT, cn, sn, mac),
		  "HMAC"))
		goto out;
	for (i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	if (CHECK(c, !strcmp(hex, want_c), "client MAC %s", hex))
		goto out;
	if (CHECK(c, !do_mac(c, key, 32, VIRGO_WIRE_AUTH_SERVER, cn, sn, mac),
		  "HMAC"))
		goto out;
	for (i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
	if (CHECK(c, !strcmp(hex, want_s), "server MAC %s", hex))
		goto out;
out:
	return;
}

static void t_hello(struct ctx *c)
{
	struct conn k = { .fd = -1 }, k2 = { .fd = -1 };
	struct virgo_wire_limits adv;
	int st;

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	/* Unknown capability bits are ignored, never echoed. */
	st = hello_with(c, &k, 1, 1, 0xffffffffu);
	if (CHECK_ST(c, st, VIRGO_ST_OK, "HELLO"))
		goto out;
	if (CHECK(c, k.hello.version == 1, "version %u", k.hello.version))
		goto out;
	/* Of all bits offered only known ones come back, those granted. */
	if (CHECK(c, k.hello.caps == ((c->resume ? VIRGO_CAP_RESUME : 0) |
				      (c->discard ? VIRGO_CAP_DISCARD : 0) |
				      (c->queues ? VIRGO_CAP_QUEUES : 0)),
		  "caps %#x offering all bits", k.hello.caps))
		goto out;
	if (CHECK(c, k.hello_len == virgo_wire_hello_rep_len(k.hello.caps),
		  "HELLO reply of %u bytes with caps %#x", k.hello_len,
		  k.hello.caps))
		goto out;
	if (CHECK(c,
		  !!(k.hello.flags & VIRGO_HELLO_AUTH_REQUIRED) == c->have_key,
		  "AUTH_REQUIRED is %d with%s a key",
		  !!(k.hello.flags & VIRGO_HELLO_AUTH_REQUIRED),
		  c->have_key ? "" : "out"))
		goto out;
	adv.max_payload = k.hello.max_payload;
	adv.max_chunk = k.hello.max_chunk;
	adv.max_batch = k.hello.max_batch;
	if (CHECK(c, !virgo_wire_limits_check(&adv), "incoherent limits"))
		goto out;
	if (CHECK(c, k.hello.max_inflight >= 1, "max_inflight 0"))
		goto out;
	if (CHECK(c, k.hello.free <= k.hello.capacity, "free > capacity"))
		goto out;
	if (CHECK(c, !all_zero(k.hello.nonce, 32), "zero server nonce"))
		goto out;
	/* A fresh nonce per connection. */
	if (CHECK(c, !conn_open(c, &k2), "connect"))
		goto out;
	if (CHECK_ST(c, hello(c, &k2), VIRGO_ST_OK, "second HELLO"))
		goto out;
	if (CHECK(c, memcmp(k.hello.nonce, k2.hello.nonce, 32),
		  "two connections got the same server nonce"))
		goto out;
	/* A range with 2.. ending at 1 is malformed; 1..3 picks 1. */
	conn_close(&k2);
	if (CHECK(c, !conn_open(c, &k2), "connect"))
		goto out;
	if (CHECK_ST(c, hello_with(c, &k2, 1, 3, 0), VIRGO_ST_OK, "HELLO 1..3"))
		goto out;
	if (CHECK(c, k2.hello.version == 1, "HELLO 1..3 chose %u",
		  k2.hello.version))
		goto out;
out:
	conn_close(&k);
	conn_close(&k2);
}

static void t_hello_twice(struct ctx *c)
{
	struct conn k = { .fd = -1 };

	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, hello(c, &k), VIRGO_ST_INVAL, "second HELLO"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&k);
}

/* A HELLO refused with PROTO does not count as the one HELLO. */
static void t_hello_proto(struct ctx *c)
{
	struct conn k = { .fd = -1 };

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK_ST(c, hello_with(c, &k, 2, 3, 0), VIRGO_ST_PROTO,
		     "HELLO 2..3"))
		goto out;
	if (CHECK_ST(c, hello_with(c, &k, 7, 65535, 0), VIRGO_ST_PROTO,
		     "HELLO 7..65535"))
		goto out;
	if (CHECK_ST(c, hello(c, &k), VIRGO_ST_OK, "HELLO 1..1 after"))
		goto out;
	if (c->have_key)
		if (CHECK_ST(c, auth_with(c, &k, c->key, c->key_len),
			     VIRGO_ST_OK, "AUTH"))
			goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING"))
		goto out;
out:
	conn_close(&k);
}

static void t_hello_malformed(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u8 p[VIRGO_WIRE_HELLO_REQ_LEN] = { 0 };

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	/* 39 bytes */
	put_unaligned_le16(1, p);
	put_unaligned_le16(1, p + 2);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_HELLO, p, 39, NULL),
		     VIRGO_ST_INVAL, "HELLO of 39 bytes"))
		goto out;
	/* ver_min 0 */
	put_unaligned_le16(0, p);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_HELLO, p, 40, NULL),
		     VIRGO_ST_INVAL, "HELLO ver_min 0"))
		goto out;
	/* ver_min > ver_max */
	put_unaligned_le16(2, p);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_HELLO, p, 40, NULL),
		     VIRGO_ST_INVAL, "HELLO 2..1"))
		goto out;
	/* None of those counted: a good one works. */
	if (CHECK_ST(c, hello(c, &k), VIRGO_ST_OK, "HELLO after"))
		goto out;
out:
	conn_close(&k);
}

/*
 * Before the handshake, PERM comes before any check of the payload: a
 * malformed request (of at most 40 bytes) gets PERM too, not INVAL.
 */
static void t_perm_before_check(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u8 p[40] = { 0 };

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	/* ALLOC count 0, FREE handle 0, READ length 0, STAT with a byte */
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, 8, NULL),
		     VIRGO_ST_PERM, "ALLOC count 0 before HELLO"))
		goto out;
	put_unaligned_le32(1, p);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_FREE, p, 16, NULL),
		     VIRGO_ST_PERM, "FREE of handle 0 before HELLO"))
		goto out;
	put_unaligned_le64(1, p);
	put_unaligned_le32(0, p + 12);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_READ, p, 16, NULL),
		     VIRGO_ST_PERM, "READ length 0 before HELLO"))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_STAT, p, 1, NULL),
		     VIRGO_ST_PERM, "STAT with a payload before HELLO"))
		goto out;
	if (CHECK_ST(c, hello(c, &k), VIRGO_ST_OK, "HELLO after"))
		goto out;
	if (c->have_key &&
	    CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, 8, NULL),
		     VIRGO_ST_PERM, "ALLOC count 0 before AUTH"))
		goto out;
out:
	conn_close(&k);
}

/* Before HELLO every other request is PERM, and the session goes on. */
static void t_perm_before_hello(struct ctx *c)
{
	static const u8 ops[] = {
		VIRGO_OP_AUTH, VIRGO_OP_ALLOC, VIRGO_OP_FREE, VIRGO_OP_WRITE,
		VIRGO_OP_READ, VIRGO_OP_STAT,  VIRGO_OP_PING,
	};
	struct conn k = { .fd = -1 };
	u8 p[40];
	unsigned int i;

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	for (i = 0; i < sizeof(ops); i++) {
		u32 len = 0;

		/* Well-formed small payloads (<= 40 bytes). */
		memset(p, 0, sizeof(p));
		switch (ops[i]) {
		case VIRGO_OP_AUTH:
			len = 32;
			break;
		case VIRGO_OP_ALLOC:
			put_unaligned_le32(1, p);
			put_unaligned_le32(4096, p + 8);
			len = 12;
			break;
		case VIRGO_OP_FREE:
			put_unaligned_le32(1, p);
			put_unaligned_le64(1, p + 8);
			len = 16;
			break;
		case VIRGO_OP_WRITE:
			put_unaligned_le64(1, p);
			put_unaligned_le32(4, p + 12);
			len = 20;
			break;
		case VIRGO_OP_READ:
			put_unaligned_le64(1, p);
			put_unaligned_le32(4, p + 12);
			len = 16;
			break;
		case VIRGO_OP_PING:
			len = 8;
			break;
		}
		if (CHECK_ST(c, rpc(c, k.fd, ops[i], p, len, NULL),
			     VIRGO_ST_PERM, virgo_wire_op_name(ops[i])))
			goto out;
	}
	if (CHECK_ST(c, hello(c, &k), VIRGO_ST_OK, "HELLO after"))
		goto out;
out:
	conn_close(&k);
}

static void t_auth_right(struct ctx *c)
{
	struct conn k = { .fd = -1 };

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK_ST(c, hello(c, &k), VIRGO_ST_OK, "HELLO"))
		goto out;
	if (CHECK_ST(c, auth_with(c, &k, c->key, c->key_len), VIRGO_ST_OK,
		     "AUTH (server MAC checked too)"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING"))
		goto out;
	if (CHECK_ST(c, auth_with(c, &k, c->key, c->key_len), VIRGO_ST_INVAL,
		     "AUTH again"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&k);
}

static void t_auth_wrong(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u8 bad[64];

	memcpy(bad, c->key, c->key_len);
	bad[0] ^= 0x01;
	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK_ST(c, hello(c, &k), VIRGO_ST_OK, "HELLO"))
		goto out;
	if (CHECK_ST(c, auth_with(c, &k, bad, c->key_len), VIRGO_ST_AUTH,
		     "AUTH with a wrong key"))
		goto out;
	if (CHECK(c, expect_closed(k.fd),
		  "connection not closed after AUTH failed"))
		goto out;
out:
	conn_close(&k);
}

static void t_auth_missing(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u64 h;

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK_ST(c, hello(c, &k), VIRGO_ST_OK, "HELLO"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_PERM, "PING without AUTH"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, k.fd, 4096, &h), VIRGO_ST_PERM,
		     "ALLOC without AUTH"))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_STAT, NULL, 0, NULL),
		     VIRGO_ST_PERM, "STAT without AUTH"))
		goto out;
	/* Still allowed to authenticate. */
	if (CHECK_ST(c, auth_with(c, &k, c->key, c->key_len), VIRGO_ST_OK,
		     "AUTH"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING"))
		goto out;
out:
	conn_close(&k);
}

static void t_auth_without_key(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u8 mac[32] = { 0 };

	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_AUTH, mac, 32, NULL),
		     VIRGO_ST_INVAL, "AUTH on a server without a key"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&k);
}

/* Before the handshake, a frame bigger than a HELLO closes the session. */
static void t_preauth_oversize(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u8 p[64] = { 0 };

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK(c, !send_frame(k.fd, VIRGO_OP_PING, 0, 0, 1, p, 64), "send"))
		goto out;
	if (CHECK(c, expect_closed(k.fd),
		  "a 64-byte PING before HELLO did not close the connection"))
		goto out;
out:
	conn_close(&k);
}

static void t_handshake_deadline(struct ctx *c)
{
	struct conn k = { .fd = -1 }, k2 = { .fd = -1 };
	struct timeval tv = { .tv_sec = c->handshake_timeout + 3 };
	u64 t0;
	u8 b;
	ssize_t n;

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK(c, !conn_open(c, &k2), "connect"))
		goto out;
	if (CHECK_ST(c, hello(c, &k2), VIRGO_ST_OK, "HELLO"))
		goto out;
	setsockopt(k.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(k2.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	t0 = now_ms();
	n = recv(k.fd, &b, 1, 0);
	if (CHECK(c, n == 0 || (n < 0 && errno == ECONNRESET),
		  "silent connection still open after %llu ms", now_ms() - t0))
		goto out;
	if (c->have_key) {
		/* HELLO but never AUTH: closed too. */
		n = recv(k2.fd, &b, 1, 0);
		if (CHECK(c, n == 0 || (n < 0 && errno == ECONNRESET),
			  "unauthenticated connection still open"))
			goto out;
	}
	if (CHECK(c, now_ms() - t0 <= (c->handshake_timeout + 2) * 1000ull,
		  "closed after %llu ms", now_ms() - t0))
		goto out;
out:
	conn_close(&k);
	conn_close(&k2);
}

/* ---- cases: opcodes -------------------------------------------------- */

static void t_ping(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u8 p[65];
	u32 rlen = 0;

	fill(p, sizeof(p), 7);
	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_PING, NULL, 0, &rlen),
		     VIRGO_ST_OK, "PING 0"))
		goto out;
	if (CHECK(c, rlen == 0, "PING 0 echoed %u bytes", rlen))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_PING, p, 64, &rlen), VIRGO_ST_OK,
		     "PING 64"))
		goto out;
	if (CHECK(c, rlen == 64 && !memcmp(g_rbuf, p, 64),
		  "PING 64 echo differs"))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_PING, p, 65, NULL),
		     VIRGO_ST_TOOBIG, "PING 65"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&k);
}

static void t_stat(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	struct virgo_wire_stat a, b;
	u8 x = 0;
	int i;

	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, do_stat(c, k.fd, &a), VIRGO_ST_OK, "STAT"))
		goto out;
	if (CHECK(c, a.free <= a.capacity, "free > capacity"))
		goto out;
	if (CHECK(c, a.capacity == k.hello.capacity,
		  "capacity %llu != HELLO's %llu",
		  a.capacity, k.hello.capacity))
		goto out;
	if (CHECK(c, a.sessions >= 1, "sessions 0 while one is open"))
		goto out;
	if (CHECK(c, a.session_bytes == 0 && a.session_chunks == 0,
		  "a new session holds something"))
		goto out;
	for (i = 0; i < 5; i++)
		if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING"))
			goto out;
	if (CHECK_ST(c, do_stat(c, k.fd, &b), VIRGO_ST_OK, "STAT"))
		goto out;
	if (CHECK(c, b.requests >= a.requests + 6,
		  "requests %llu -> %llu after 6",
		  a.requests, b.requests))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_STAT, &x, 1, NULL),
		     VIRGO_ST_INVAL, "STAT with a payload"))
		goto out;
out:
	conn_close(&k);
}

static void t_alloc_free(struct ctx *c)
{
	u32 sizes[3] = { 1, 4096, c->lim.max_chunk };
	struct conn k = { .fd = -1 };
	struct virgo_wire_stat a, b;
	u64 h[3], h2;
	u32 freed = 0;

	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, do_stat(c, k.fd, &a), VIRGO_ST_OK, "STAT"))
		goto out;
	if (CHECK_ST(c, do_alloc(c, k.fd, sizes, 3, h), VIRGO_ST_OK, "ALLOC 3"))
		goto out;
	if (CHECK(c,
		  h[0] && h[1] && h[2] && h[0] != h[1] && h[1] != h[2] &&
			  h[0] != h[2],
		  "handles not distinct non-zero"))
		goto out;
	if (CHECK_ST(c, do_stat(c, k.fd, &b), VIRGO_ST_OK, "STAT"))
		goto out;
	if (CHECK(c, b.session_chunks == 3, "session_chunks %llu",
		  b.session_chunks))
		goto out;
	if (CHECK(c, b.session_bytes == 4097ull + c->lim.max_chunk,
		  "session_bytes %llu", b.session_bytes))
		goto out;
	if (CHECK(c, b.lent_bytes >= a.lent_bytes + b.session_bytes,
		  "lent_bytes %llu -> %llu", a.lent_bytes, b.lent_bytes))
		goto out;
	if (CHECK(c, b.lent_chunks >= a.lent_chunks + 3, "lent_chunks"))
		goto out;
	if (CHECK(c, b.free < a.free, "free did not go down"))
		goto out;
	if (CHECK_ST(c, do_free(c, k.fd, h, 3, &freed), VIRGO_ST_OK, "FREE"))
		goto out;
	if (CHECK(c, freed == 3, "freed %u of 3", freed))
		goto out;
	if (CHECK_ST(c, do_stat(c, k.fd, &b), VIRGO_ST_OK, "STAT"))
		goto out;
	if (CHECK(c, b.session_chunks == 0 && b.session_bytes == 0,
		  "session still holds %llu chunks", b.session_chunks))
		goto out;
	/* A handle is not reused within a session. */
	if (CHECK_ST(c, do_alloc1(c, k.fd, 1, &h2), VIRGO_ST_OK, "ALLOC"))
		goto out;
	if (CHECK(c, h2 != h[0] && h2 != h[1] && h2 != h[2], "handle reused"))
		goto out;
	/* A full batch of 1-byte chunks. */
	{
		u32 n = c->lim.max_batch, i;
		u32 *sz = calloc(n, sizeof(*sz));
		u64 *hh = calloc(n, sizeof(*hh));
		int st;

		for (i = 0; sz && i < n; i++)
			sz[i] = 1;
		st = sz && hh ? do_alloc(c, k.fd, sz, n, hh) : -ENOMEM;
		if (st == VIRGO_ST_OK)
			st = do_free(c, k.fd, hh, n, &freed);
		free(sz);
		free(hh);
		if (CHECK_ST(c, st, VIRGO_ST_OK,
			     "ALLOC+FREE of max_batch chunks"))
			goto out;
		if (CHECK(c, freed == n, "freed %u of %u", freed, n))
			goto out;
	}
out:
	conn_close(&k);
}

static void t_alloc_errors(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u32 mb = c->lim.max_batch, n;
	size_t cap = VIRGO_WIRE_BATCH_HDR_LEN + 4 * ((size_t)mb + 1);
	u8 *p = calloc(1, cap);
	struct virgo_wire_stat st;

	if (CHECK(c, p, "memory"))
		goto out;
	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	/* Fewer than 8 bytes. */
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, 4, NULL),
		     VIRGO_ST_INVAL, "ALLOC of 4 bytes"))
		goto out;
	/* count 0 */
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, 8, NULL),
		     VIRGO_ST_INVAL, "ALLOC count 0"))
		goto out;
	/* reserved != 0 */
	put_unaligned_le32(1, p);
	put_unaligned_le32(1, p + 4);
	put_unaligned_le32(16, p + 8);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, 12, NULL),
		     VIRGO_ST_INVAL, "ALLOC reserved 1"))
		goto out;
	put_unaligned_le32(0, p + 4);
	/* size 0 */
	put_unaligned_le32(0, p + 8);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, 12, NULL),
		     VIRGO_ST_INVAL, "ALLOC size 0"))
		goto out;
	/* size over max_chunk */
	put_unaligned_le32(c->lim.max_chunk + 1, p + 8);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, 12, NULL),
		     VIRGO_ST_TOOBIG, "ALLOC max_chunk + 1"))
		goto out;
	/* length does not match count */
	put_unaligned_le32(16, p + 8);
	put_unaligned_le32(2, p);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, 12, NULL),
		     VIRGO_ST_INVAL, "ALLOC count 2 with one size"))
		goto out;
	put_unaligned_le32(1, p);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, 16, NULL),
		     VIRGO_ST_INVAL, "ALLOC count 1 with 8 bytes of sizes"))
		goto out;
	/* count over max_batch (the frame still fits max_payload) */
	n = mb + 1;
	put_unaligned_le32(n, p);
	for (u32 i = 0; i < n; i++)
		put_unaligned_le32(1, p + 8 + 4 * (size_t)i);
	if (cap <= c->lim.max_payload)
		if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_ALLOC, p, (u32)cap, NULL),
			     VIRGO_ST_TOOBIG, "ALLOC max_batch + 1"))
			goto out;
	/* Nothing was allocated by any of those. */
	if (CHECK_ST(c, do_stat(c, k.fd, &st), VIRGO_ST_OK, "STAT"))
		goto out;
	if (CHECK(c, st.session_chunks == 0,
		  "refused ALLOCs left %llu chunks",
		  st.session_chunks))
		goto out;
out:
	free(p);
	conn_close(&k);
}

/* Past the capacity: NOMEM, all or nothing. */
static void t_alloc_nomem(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u64 fit = c->hello.capacity / c->lim.max_chunk / 8 + 1;
	u32 n = fit < c->lim.max_batch ? (u32)fit : c->lim.max_batch;
	u32 i, rounds = 0, freed;
	u64 batch_bytes = (u64)n * c->lim.max_chunk;
	u32 *sz = calloc(n, sizeof(*sz));
	u64 *all = NULL, held = 0;
	struct virgo_wire_stat before, after;
	int st = VIRGO_ST_OK;

	if (CHECK(c, sz, "memory"))
		goto out;
	if (c->hello.capacity / batch_bytes > 64) {
		printf("# alloc_nomem: capacity %llu %s\n",
		       c->hello.capacity,
		       "is more than 64 full batches; not filled");
		goto out;
	}
	all = calloc((size_t)n * 66, sizeof(*all));
	if (CHECK(c, all, "memory"))
		goto out;
	for (i = 0; i < n; i++)
		sz[i] = c->lim.max_chunk;
	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	while (rounds < 66) {
		st = do_alloc(c, k.fd, sz, n, all + held);
		if (st != VIRGO_ST_OK)
			break;
		held += n;
		rounds++;
	}
	if (CHECK_ST(c, st, VIRGO_ST_NOMEM, "ALLOC past the capacity"))
		goto out;
	if (CHECK_ST(c, do_stat(c, k.fd, &before), VIRGO_ST_OK, "STAT"))
		goto out;
	if (CHECK(c, before.session_chunks == held,
		  "a refused ALLOC left chunks: %llu held, %llu expected",
		  before.session_chunks, held))
		goto out;
	/* Smaller requests still fit or fail whole. */
	st = do_alloc(c, k.fd, sz, 1, all + held);
	if (CHECK(c, st == VIRGO_ST_OK || st == VIRGO_ST_NOMEM, "ALLOC 1: %d",
		  st))
		goto out;
	if (st == VIRGO_ST_OK)
		held++;
	for (i = 0; i < held; i += freed) {
		u32 cnt = held - i > n ? n : (u32)(held - i);

		freed = 0;
		if (CHECK_ST(c, do_free(c, k.fd, all + i, cnt, &freed),
			     VIRGO_ST_OK, "FREE"))
			goto out;
		if (CHECK(c, freed == cnt, "freed %u of %u", freed, cnt))
			goto out;
	}
	if (CHECK_ST(c, do_stat(c, k.fd, &after), VIRGO_ST_OK, "STAT"))
		goto out;
	if (CHECK(c, after.session_chunks == 0, "chunks left"))
		goto out;
	/* Room again. */
	if (CHECK_ST(c, do_alloc(c, k.fd, sz, 1, all), VIRGO_ST_OK,
		     "ALLOC after FREE"))
		goto out;
out:
	free(sz);
	free(all);
	conn_close(&k);
}

static void t_free(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u64 h[2], list[5];
	u32 freed = 9;
	u8 p[16] = { 0 };

	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, k.fd, 100, &h[0]), VIRGO_ST_OK, "ALLOC"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, k.fd, 200, &h[1]), VIRGO_ST_OK, "ALLOC"))
		goto out;
	/* Unknown and duplicate handles are skipped. */
	list[0] = h[0];
	list[1] = h[0] ^ 0x5a5a5a5a00000000ull;
	list[2] = h[0];
	list[3] = h[1];
	list[4] = 0xffffffffffffffffull;
	if (!list[1])
		list[1] = 1;
	if (CHECK_ST(c, do_free(c, k.fd, list, 5, &freed), VIRGO_ST_OK,
		     "FREE with foreign and duplicate handles"))
		goto out;
	if (CHECK(c, freed == 2, "freed %u, want 2", freed))
		goto out;
	if (CHECK_ST(c, do_free(c, k.fd, h, 1, &freed), VIRGO_ST_OK,
		     "FREE freed handle"))
		goto out;
	if (CHECK(c, freed == 0, "freed %u, want 0", freed))
		goto out;
	/* Malformed: count 0, handle 0, short. */
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_FREE, p, 8, NULL), VIRGO_ST_INVAL,
		     "FREE count 0"))
		goto out;
	put_unaligned_le32(1, p);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_FREE, p, 16, NULL),
		     VIRGO_ST_INVAL, "FREE handle 0"))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_FREE, p, 4, NULL), VIRGO_ST_INVAL,
		     "FREE of 4 bytes"))
		goto out;
out:
	conn_close(&k);
}

static void t_write_read(struct ctx *c)
{
	u32 mc = c->lim.max_chunk, size = mc < 65536 ? mc : 65536;
	u8 *w = malloc(mc), *r = malloc(mc), *shadow = calloc(1, mc);
	struct conn k = { .fd = -1 };
	u64 h, hbig;
	int i;

	if (CHECK(c, w && r && shadow, "memory"))
		goto out;
	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, k.fd, size, &h), VIRGO_ST_OK, "ALLOC"))
		goto out;
	/* Never written: zeroes, and the whole chunk is readable. */
	if (CHECK_ST(c, do_read(c, k.fd, h, 0, r, size), VIRGO_ST_OK, "READ"))
		goto out;
	if (CHECK(c, all_zero(r, size), "unwritten chunk is not zero"))
		goto out;
	/* Random writes against a shadow copy. */
	for (i = 0; i < 40; i++) {
		u32 off = (u32)(rnd64() % size);
		u32 len = 1 + (u32)(rnd64() % (size - off));

		fill(w, len, (u64)i);
		if (CHECK_ST(c, do_write(c, k.fd, h, off, w, len), VIRGO_ST_OK,
			     "WRITE"))
			goto out;
		memcpy(shadow + off, w, len);
		off = (u32)(rnd64() % size);
		len = 1 + (u32)(rnd64() % (size - off));
		if (CHECK_ST(c, do_read(c, k.fd, h, off, r, len), VIRGO_ST_OK,
			     "READ"))
			goto out;
		if (CHECK(c, !memcmp(r, shadow + off, len),
			  "READ %u@%u differs from what was written", len, off))
			goto out;
	}
	if (CHECK_ST(c, do_read(c, k.fd, h, 0, r, size), VIRGO_ST_OK,
		     "READ all"))
		goto out;
	if (CHECK(c, !memcmp(r, shadow, size), "chunk differs"))
		goto out;
	/* A max_chunk chunk, written whole in one WRITE, read in one READ. */
	if (CHECK_ST(c, do_alloc1(c, k.fd, mc, &hbig), VIRGO_ST_OK,
		     "ALLOC max_chunk"))
		goto out;
	fill(w, mc, 99);
	if (CHECK_ST(c, do_write(c, k.fd, hbig, 0, w, mc), VIRGO_ST_OK,
		     "WRITE max_chunk"))
		goto out;
	if (CHECK_ST(c, do_read(c, k.fd, hbig, 0, r, mc), VIRGO_ST_OK,
		     "READ max_chunk"))
		goto out;
	if (CHECK(c, !memcmp(r, w, mc), "max_chunk chunk differs"))
		goto out;
	/* The last byte alone. */
	if (CHECK_ST(c, do_read(c, k.fd, hbig, mc - 1, r, 1), VIRGO_ST_OK,
		     "READ last byte"))
		goto out;
	if (CHECK(c, r[0] == w[mc - 1], "last byte differs"))
		goto out;
out:
	free(w);
	free(r);
	free(shadow);
	conn_close(&k);
}

static int rw_raw(struct ctx *c, int fd, u8 op, u64 h, u32 off, u32 length,
		  u32 data_len)
{
	u8 *p = calloc(1, VIRGO_WIRE_RW_REQ_LEN + (size_t)data_len);
	int st;

	if (!p)
		return -ENOMEM;
	put_unaligned_le64(h, p);
	put_unaligned_le32(off, p + 8);
	put_unaligned_le32(length, p + 12);
	st = rpc(c, fd, op, p, VIRGO_WIRE_RW_REQ_LEN + data_len, NULL);
	free(p);
	return st;
}

static void t_rw_errors(struct ctx *c)
{
	static const u8 ops[] = { VIRGO_OP_WRITE, VIRGO_OP_READ };
	u32 mc = c->lim.max_chunk;
	struct conn k = { .fd = -1 };
	u64 h, gone;
	u32 freed;
	unsigned int i;
	u8 b[16] = { 0 };

	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, k.fd, 100, &h), VIRGO_ST_OK, "ALLOC"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, k.fd, 100, &gone), VIRGO_ST_OK, "ALLOC"))
		goto out;
	if (CHECK_ST(c, do_free(c, k.fd, &gone, 1, &freed), VIRGO_ST_OK,
		     "FREE"))
		goto out;
	for (i = 0; i < 2; i++) {
		u8 op = ops[i];
		bool wr = op == VIRGO_OP_WRITE;
		const char *nm = virgo_wire_op_name(op);

#define RW(hh, off, len, data, want, what) \
	CHECK_ST(c, rw_raw(c, k.fd, op, hh, off, len, data), want, what)
		if (RW(0, 0, 4, wr ? 4 : 0, VIRGO_ST_INVAL, "handle 0"))
			goto out;
		if (RW(h, 0, 0, 0, VIRGO_ST_INVAL, "length 0"))
			goto out;
		if (RW(h, 0, mc + 1, 0, VIRGO_ST_TOOBIG,
		       "length max_chunk + 1"))
			goto out;
		if (RW(h, 0xffffffffu, 2, wr ? 2 : 0, VIRGO_ST_RANGE,
		       "offset 0xffffffff length 2"))
			goto out;
		if (RW(h, mc, 1, wr ? 1 : 0, VIRGO_ST_RANGE,
		       "offset max_chunk"))
			goto out;
		if (RW(h, 99, 2, wr ? 2 : 0, VIRGO_ST_RANGE,
		       "past the chunk's end"))
			goto out;
		if (RW(h, 100, 1, wr ? 1 : 0, VIRGO_ST_RANGE,
		       "at the chunk's end"))
			goto out;
		if (RW(h ^ 0x4000000000000000ull, 0, 4, wr ? 4 : 0,
		       VIRGO_ST_NOENT, "unknown handle"))
			goto out;
		if (RW(gone, 0, 4, wr ? 4 : 0, VIRGO_ST_NOENT, "freed handle"))
			goto out;
		/* Length field and payload disagree. */
		if (RW(h, 0, 4, wr ? 5 : 1, VIRGO_ST_INVAL, "payload too long"))
			goto out;
		if (wr)
			if (RW(h, 0, 4, 3, VIRGO_ST_INVAL, "payload too short"))
				goto out;
		if (CHECK_ST(c, rpc(c, k.fd, op, b, 8, NULL), VIRGO_ST_INVAL,
			     "8-byte head"))
			goto out;
		/* A refused WRITE's data is consumed: framing survives. */
		if (wr)
			if (RW(gone, 0, 4096, 4096, VIRGO_ST_NOENT,
			       "4 KiB WRITE to a freed handle"))
				goto out;
		if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, nm))
			goto out;
#undef RW
	}
	/* The good chunk is untouched by all of that. */
	{
		u8 r[100];

		if (CHECK_ST(c, do_read(c, k.fd, h, 0, r, 100), VIRGO_ST_OK,
			     "READ"))
			goto out;
		if (CHECK(c, all_zero(r, 100),
			  "refused WRITEs changed the chunk"))
			goto out;
	}
out:
	conn_close(&k);
}

/* Another session's handle is NOENT, and stays the owner's. */
static void t_cross_session(struct ctx *c)
{
	struct conn a = { .fd = -1 }, b = { .fd = -1 };
	u8 w[64], r[64];
	u64 h, hb;
	u32 freed = 9;

	fill(w, sizeof(w), 3);
	if (CHECK(c, !open_ready(c, &a), "handshake A"))
		goto out;
	if (CHECK(c, !open_ready(c, &b), "handshake B"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, a.fd, 64, &h), VIRGO_ST_OK, "ALLOC on A"))
		goto out;
	if (CHECK_ST(c, do_write(c, a.fd, h, 0, w, 64), VIRGO_ST_OK,
		     "WRITE on A"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, b.fd, 64, &hb), VIRGO_ST_OK, "ALLOC on B"))
		goto out;
	if (CHECK_ST(c, do_read(c, b.fd, h, 0, r, 64), VIRGO_ST_NOENT,
		     "READ A's handle on B"))
		goto out;
	if (CHECK_ST(c, do_write(c, b.fd, h, 0, r, 64), VIRGO_ST_NOENT,
		     "WRITE A's handle on B"))
		goto out;
	if (CHECK_ST(c, do_free(c, b.fd, &h, 1, &freed), VIRGO_ST_OK,
		     "FREE A's handle on B"))
		goto out;
	if (CHECK(c, freed == 0, "B freed A's chunk"))
		goto out;
	/* Handles around A's are not B's either, unless they are. */
	if (CHECK_ST(c, do_read(c, a.fd, h, 0, r, 64), VIRGO_ST_OK,
		     "READ on A"))
		goto out;
	if (CHECK(c, !memcmp(r, w, 64), "A's chunk changed"))
		goto out;
	if (CHECK_ST(c, do_read(c, a.fd, hb, 0, r, 64), VIRGO_ST_NOENT,
		     "READ B's handle on A"))
		goto out;
	/* A's chunks go with A. */
	conn_close(&a);
	if (CHECK_ST(c, do_read(c, b.fd, h, 0, r, 64), VIRGO_ST_NOENT,
		     "READ A's handle on B after A closed"))
		goto out;
out:
	conn_close(&a);
	conn_close(&b);
}

/* ---- cases: framing -------------------------------------------------- */

/* A header the receiver must refuse: EOF, no reply. */
static void t_bad_headers(struct ctx *c)
{
	static const struct {
		const char *what;
		int field; /* magic, version, opcode, flags, status, len */
		u32 val;
	} bad[] = {
		{ "magic", 0, 0x4f475257 },
		{ "version 0", 1, 0 },
		{ "version 2", 1, 2 },
		{ "opcode 0", 2, 0 },
		{ "opcode 12", 2, 12 },
		{ "opcode 255", 2, 255 },
		{ "flag bit 1", 3, 0x0002 },
		{ "flag bit 15", 3, 0x8000 },
		{ "status in a request", 4, 1 },
		{ "status 11", 4, 11 },
		{ "len max_payload + 1", 5, 0 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct conn k = { .fd = -1 };
		u8 hdr[VIRGO_WIRE_HDR_LEN];
		u64 h;

		if (CHECK(c, !open_ready(c, &k), "handshake"))
			goto out;
		/* Something the server must free when it closes. */
		if (CHECK_ST(c, do_alloc1(c, k.fd, 4096, &h), VIRGO_ST_OK,
			     "ALLOC"))
			goto out;
		virgo_wire_hdr_pack(hdr, VIRGO_OP_PING, 0, 0, 0, 1);
		switch (bad[i].field) {
		case 0:
			put_unaligned_le32(bad[i].val, hdr);
			break;
		case 1:
			hdr[4] = (u8)bad[i].val;
			break;
		case 2:
			hdr[5] = (u8)bad[i].val;
			break;
		case 3:
			put_unaligned_le16((u16)bad[i].val, hdr + 6);
			break;
		case 4:
			put_unaligned_le32(bad[i].val, hdr + 12);
			break;
		case 5:
			hdr[5] = VIRGO_OP_WRITE;
			put_unaligned_le32(c->lim.max_payload + 1, hdr + 8);
			break;
		}
		if (CHECK(c, !write_all(k.fd, hdr, sizeof(hdr)), "send"))
			goto out;
		if (CHECK(c, expect_closed(k.fd),
			  "%s: connection not closed, or a reply", bad[i].what))
			goto out;
		conn_close(&k);
		continue;
out:
		conn_close(&k);
		return;
	}
}

/* A frame with the REPLY flag sent to a server: INVAL, stream goes on. */
static void t_reply_flag(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	struct virgo_wire_msg m;
	u8 p[8] = { 1 };

	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK(c,
		  !send_frame(k.fd, VIRGO_OP_PING, VIRGO_WF_REPLY, 0, 77, p, 8),
		  "send"))
		goto out;
	if (CHECK(c, !recv_reply(c, k.fd, &m, g_rbuf, g_rbuf_cap),
		  "no reply to a REPLY-flagged PING"))
		goto out;
	if (CHECK(c, m.tag == 77 && m.opcode == VIRGO_OP_PING, "tag/opcode"))
		goto out;
	if (CHECK_ST(c, m.status, VIRGO_ST_INVAL, "REPLY-flagged PING"))
		goto out;
	/* With an error status too (len 0, as a reply would be). */
	if (CHECK(c,
		  !send_frame(k.fd, VIRGO_OP_STAT, VIRGO_WF_REPLY,
			      VIRGO_ST_NOENT, 78, NULL, 0),
		  "send"))
		goto out;
	if (CHECK(c, !recv_reply(c, k.fd, &m, g_rbuf, g_rbuf_cap),
		  "no reply to a REPLY-flagged STAT with a status"))
		goto out;
	if (CHECK_ST(c, m.status, VIRGO_ST_INVAL, "REPLY-flagged STAT"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&k);
}

/* Frames cut short, then the connection closed: the server goes on. */
static void t_truncated(struct ctx *c)
{
	static const u32 cut[] = { 1, 12, 23, 24, 30, 24 + 4095 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cut); i++) {
		struct conn k = { .fd = -1 };
		u8 *f = calloc(1, 24 + 16 + 4096);
		struct virgo_wire_rw rw = { .offset = 0, .length = 4096 };
		u64 h = 0;

		if (!f || open_ready(c, &k) ||
		    do_alloc1(c, k.fd, 4096, &h) != VIRGO_ST_OK) {
			fail(c, __LINE__, "handshake or ALLOC");
			free(f);
			conn_close(&k);
			return;
		}
		rw.handle = h;
		virgo_wire_hdr_pack(f, VIRGO_OP_WRITE, 0, 16 + 4096, 0, 5);
		virgo_wire_put_rw_req(f + 24, 16, &rw);
		if (write_all(k.fd, f, cut[i])) {
			fail(c, __LINE__, "send");
			free(f);
			conn_close(&k);
			return;
		}
		usleep(20000);
		conn_close(&k);
		free(f);
	}
	/* Byte by byte, a whole frame still works. */
	{
		struct conn k = { .fd = -1 };
		u8 f[24 + 8];
		struct virgo_wire_msg m;
		unsigned int j;

		if (CHECK(c, !open_ready(c, &k),
			  "handshake after truncated frames"))
			goto out;
		virgo_wire_hdr_pack(f, VIRGO_OP_PING, 0, 8, 0, 1234);
		memcpy(f + 24, "12345678", 8);
		for (j = 0; j < sizeof(f); j++) {
			if (CHECK(c, !write_all(k.fd, f + j, 1), "send"))
				goto out;
			if (j % 8 == 0)
				usleep(2000);
		}
		if (CHECK(c,
			  !recv_reply(c, k.fd, &m, g_rbuf, g_rbuf_cap) &&
				  m.tag == 1234 && m.status == 0 &&
				  m.len == 8 && !memcmp(g_rbuf, "12345678", 8),
			  "PING sent byte by byte"))
			goto out;
		conn_close(&k);
	}
out:
	return;
}

static void t_tags(struct ctx *c)
{
	static const u64 tags[] = { 0, 1, 0x8000000000000000ull,
				    0xffffffffffffffffull };
	struct conn k = { .fd = -1 };
	struct virgo_wire_msg m;
	unsigned int i;

	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	for (i = 0; i < 4; i++) {
		if (CHECK(c,
			  !send_frame(k.fd, VIRGO_OP_PING, 0, 0, tags[i], NULL,
				      0),
			  "send"))
			goto out;
		if (CHECK(c, !recv_reply(c, k.fd, &m, g_rbuf, g_rbuf_cap),
			  "reply"))
			goto out;
		if (CHECK(c, m.tag == tags[i],
			  "tag %#llx came back as %#llx",
			  tags[i], m.tag))
			goto out;
	}
out:
	conn_close(&k);
}

/*
 * Many requests in flight: WRITEs, READs, PINGs, STATs with random tags,
 * all sent before reading a reply (poll() both ways so that neither side
 * stalls); every reply matched by tag and checked.
 */
#define PIPE_N 600
#define PIPE_CHUNK 4096
#define PIPE_CHUNKS 8

struct pipe_req {
	u64 tag;
	u8 op;
	u32 chunk, off, len;
	u64 seed;
	bool done;
};

static void t_pipelining(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u32 sizes[PIPE_CHUNKS];
	u64 h[PIPE_CHUNKS];
	struct pipe_req *rq = calloc(PIPE_N, sizeof(*rq));
	u8 *out = NULL, *shadow = calloc(PIPE_CHUNKS, PIPE_CHUNK);
	size_t out_len = 0, out_off = 0, cap = 0;
	u8 *in = malloc(24 + PIPE_CHUNK + 64);
	size_t in_have = 0;
	unsigned int i, got = 0;
	u64 deadline;

	if (CHECK(c, rq && shadow && in, "memory"))
		goto out;
	for (i = 0; i < PIPE_CHUNKS; i++)
		sizes[i] = PIPE_CHUNK;
	if (CHECK(c, !open_ready(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, do_alloc(c, k.fd, sizes, PIPE_CHUNKS, h), VIRGO_ST_OK,
		     "ALLOC"))
		goto out;
	/*
	 * The expected bytes do not depend on the server's order: WRITEs go
	 * to disjoint 64-byte slots of chunks 0..3, READs to chunks 4..7,
	 * never written (zeroes); chunks 0..3 are read back at the end.
	 */
	cap = (size_t)PIPE_N * (24 + 16 + 512 + 64);
	out = malloc(cap);
	if (CHECK(c, out, "memory"))
		goto out;
	for (i = 0; i < PIPE_N; i++) {
		struct pipe_req *r = &rq[i];
		struct virgo_wire_rw rw;
		u8 *f = out + out_len;

		r->tag = rnd64() ^ i;
		r->seed = rnd64();
		switch (i % 4) {
		case 0: /* WRITE of its own disjoint 64-byte slot */
			r->op = VIRGO_OP_WRITE;
			r->chunk = (i / 4) % 4;
			r->off = (u32)(((i / 16) * 64) % PIPE_CHUNK);
			r->len = 64;
			break;
		case 1: /* READ of a never-written chunk */
			r->op = VIRGO_OP_READ;
			r->chunk = 4 + (i / 4) % 4;
			r->off = (u32)(rnd64() % 2048);
			r->len = 1 + (u32)(rnd64() % 2048);
			break;
		case 2:
			r->op = VIRGO_OP_PING;
			r->len = (u32)(rnd64() % 65);
			break;
		default:
			r->op = VIRGO_OP_STAT;
			break;
		}
		if (r->op == VIRGO_OP_WRITE || r->op == VIRGO_OP_READ) {
			rw.handle = h[r->chunk];
			rw.offset = r->off;
			rw.length = r->len;
			u32 plen = 16 + (r->op == VIRGO_OP_WRITE ? r->len : 0);

			virgo_wire_hdr_pack(f, r->op, 0, plen, 0, r->tag);
			virgo_wire_put_rw_req(f + 24, 16, &rw);
			out_len += 40;
			if (r->op == VIRGO_OP_WRITE) {
				fill(out + out_len, r->len, r->seed);
				memcpy(shadow + r->chunk * PIPE_CHUNK + r->off,
				       out + out_len, r->len);
				out_len += r->len;
			}
		} else if (r->op == VIRGO_OP_PING) {
			virgo_wire_hdr_pack(f, r->op, 0, r->len, 0, r->tag);
			fill(f + 24, r->len, r->seed);
			out_len += 24 + r->len;
		} else {
			virgo_wire_hdr_pack(f, r->op, 0, 0, 0, r->tag);
			out_len += 24;
		}
	}
	/* Tags must be distinct. */
	for (i = 1; i < PIPE_N; i++)
		if (rq[i].tag == rq[i - 1].tag)
			rq[i].tag++;
	fcntl(k.fd, F_SETFL, fcntl(k.fd, F_GETFL) | O_NONBLOCK);
	deadline = now_ms() + 30000;
	while (got < PIPE_N) {
		struct pollfd pfd = { .fd = k.fd, .events = POLLIN };
		ssize_t n;

		if (out_off < out_len)
			pfd.events |= POLLOUT;
		if (CHECK(c, now_ms() < deadline, "timeout: %u of %u replies",
			  got, PIPE_N))
			goto out;
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		if (pfd.revents & POLLOUT) {
			n = send(k.fd, out + out_off, out_len - out_off,
				 MSG_NOSIGNAL);
			if (n > 0)
				out_off += (size_t)n;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(k.fd, in + in_have, 24 + PIPE_CHUNK + 64 - in_have, 0);
		if (CHECK(c, n != 0, "EOF after %u replies", got))
			goto out;
		if (n < 0)
			continue;
		in_have += (size_t)n;
		while (in_have >= 24) {
			struct virgo_wire_msg m;
			struct pipe_req *r = NULL;
			size_t flen;

			if (CHECK(c,
				  !virgo_wire_hdr_unpack(in, &m, &c->rlim) &&
					  virgo_wire_is_reply(&m),
				  "bad reply header"))
				goto out;
			flen = 24 + (size_t)m.len;
			if (CHECK(c, flen <= 24 + PIPE_CHUNK + 64,
				  "reply too long"))
				goto out;
			if (in_have < flen)
				break;
			for (i = 0; i < PIPE_N; i++)
				if (rq[i].tag == m.tag && !rq[i].done) {
					r = &rq[i];
					break;
				}
			if (CHECK(c, r, "reply with unknown tag %#llx", m.tag))
				goto out;
			if (CHECK(c, r->op == m.opcode, "opcode %u for a %s",
				  m.opcode, virgo_wire_op_name(r->op)))
				goto out;
			if (CHECK_ST(c, m.status, VIRGO_ST_OK,
				     virgo_wire_op_name(r->op)))
				goto out;
			if (CHECK(c,
				  !virgo_wire_check_rep(&m, in + 24, &c->rlim),
				  "malformed %s reply",
				  virgo_wire_op_name(r->op)))
				goto out;
			if (r->op == VIRGO_OP_READ) {
				if (CHECK(c,
					  m.len == r->len &&
						  all_zero(in + 24, r->len),
					  "READ of an unwritten chunk"))
					goto out;
			} else if (r->op == VIRGO_OP_PING) {
				u8 exp[64];

				fill(exp, r->len, r->seed);
				if (CHECK(c,
					  m.len == r->len &&
						  !memcmp(exp, in + 24, r->len),
					  "PING echo"))
					goto out;
			} else if (r->op == VIRGO_OP_WRITE) {
				if (CHECK(c, m.len == 0, "WRITE reply payload"))
					goto out;
			}
			r->done = true;
			got++;
			memmove(in, in + flen, in_have - flen);
			in_have -= flen;
		}
	}
	fcntl(k.fd, F_SETFL, fcntl(k.fd, F_GETFL) & ~O_NONBLOCK);
	/* Everything written is there. */
	for (i = 0; i < PIPE_CHUNKS; i++) {
		u8 r[PIPE_CHUNK];

		if (CHECK_ST(c, do_read(c, k.fd, h[i], 0, r, PIPE_CHUNK),
			     VIRGO_ST_OK, "READ back"))
			goto out;
		if (CHECK(c, !memcmp(r, shadow + i * PIPE_CHUNK, PIPE_CHUNK),
			  "chunk %u differs after the pipelined WRITEs", i))
			goto out;
	}
out:
	free(rq);
	free(out);
	free(in);
	free(shadow);
	conn_close(&k);
}

/*
 * A client that sends many READs and never reads the replies must not
 * stop the server serving another client.
 */
static void t_deaf_client(struct ctx *c)
{
	struct conn deaf = { .fd = -1 }, k = { .fd = -1 };
	u32 mc = c->lim.max_chunk;
	struct virgo_wire_rw rw;
	u8 f[40];
	u64 h, t0;
	int i, n = 0;

	if (CHECK(c, !open_ready(c, &deaf), "handshake"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, deaf.fd, mc, &h), VIRGO_ST_OK, "ALLOC"))
		goto out;
	rw.handle = h;
	rw.offset = 0;
	rw.length = mc;
	fcntl(deaf.fd, F_SETFL, fcntl(deaf.fd, F_GETFL) | O_NONBLOCK);
	for (i = 0; i < 4096; i++) {
		virgo_wire_hdr_pack(f, VIRGO_OP_READ, 0, 16, 0, (u64)i);
		virgo_wire_put_rw_req(f + 24, 16, &rw);
		if (send(deaf.fd, f, sizeof(f), MSG_NOSIGNAL) != sizeof(f))
			break;
		n++;
	}
	t0 = now_ms();
	if (CHECK(c, !open_ready(c, &k), "handshake beside a deaf client"))
		goto out;
	for (i = 0; i < 20; i++)
		if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK,
			     "PING beside a deaf client"))
			goto out;
	if (CHECK(c, now_ms() - t0 < 3000,
		  "served slowly beside a deaf client"))
		goto out;
	if (c->verbose)
		printf("# deaf client queued %d READs of %u bytes\n", n, mc);
out:
	conn_close(&deaf);
	conn_close(&k);
}

/* ---- cases: session resumption (capability RESUME, section 6.1) ----- */

/* docs/protocol.md 6.1. */
static const char vector_resume_proof[] =
	"e721de4c23fd232f28c58dceb9cc3840fac4d8081cd744a53798f3fdfd4c8bb5";

/* The proof of holding @token on connection @k: section 5.8. */
static int resume_proof(const struct ctx *c, const u8 *key, size_t key_len,
			const struct conn *k, const u8 *token, u8 *proof)
{
	u8 in[VIRGO_WIRE_RESUME_INPUT_LEN];
	unsigned int len = 0;

	(void)c;
	if (!key) {
		memcpy(proof, token, VIRGO_WIRE_TOKEN_LEN);
		return 0;
	}
	virgo_wire_resume_input(in, token, k->cnonce, k->snonce);
	if (!HMAC(EVP_sha256(), key, (int)key_len, in, sizeof(in), proof, &len))
		return -EIO;
	return len == VIRGO_WIRE_MAC_LEN ? 0 : -EIO;
}

/* RESUME with @proof as sent; *chunks, *bytes from an OK reply. */
static int resume_raw(struct ctx *c, struct conn *k, u64 id, const u8 *proof,
		      u64 *chunks, u64 *bytes)
{
	u8 p[VIRGO_WIRE_RESUME_REQ_LEN];
	u32 rlen = 0;
	int st;

	virgo_wire_put_resume_req(p, sizeof(p), id, proof);
	st = rpc(c, k->fd, VIRGO_OP_RESUME, p, sizeof(p), &rlen);
	if (st == VIRGO_ST_OK) {
		if (rlen != VIRGO_WIRE_RESUME_REP_LEN)
			return -EPROTO;
		if (chunks && bytes)
			virgo_wire_get_resume_rep(g_rbuf, chunks, bytes);
	}
	return st;
}

/* RESUME of (@id, @token) with the right proof for this server. */
static int resume_once(struct ctx *c, struct conn *k, u64 id,
		       const u8 *token, u64 *chunks, u64 *bytes)
{
	u8 proof[VIRGO_WIRE_MAC_LEN];

	if (resume_proof(c, c->have_key ? c->key : NULL, c->key_len, k, token,
			 proof))
		return -EIO;
	return resume_raw(c, k, id, proof, chunks, bytes);
}

/*
 * As a client does after its connection broke: RESUME again while BUSY
 * (the server may not have seen the old connection end yet), up to 5 s.
 */
static int resume_retry(struct ctx *c, struct conn *k, u64 id,
			const u8 *token, u64 *chunks, u64 *bytes)
{
	u64 end = now_ms() + 5000;
	int st;

	for (;;) {
		st = resume_once(c, k, id, token, chunks, bytes);
		if (st != VIRGO_ST_BUSY || now_ms() > end)
			return st;
		usleep(20000);
	}
}

/*
 * Connect, HELLO offering @caps (every one granted, in a reply of full
 * length), AUTH with the key if any.
 */
static int open_with_caps(struct ctx *c, struct conn *k, u32 caps)
{
	int ret = conn_open(c, k);

	if (ret)
		return ret;
	ret = hello_with(c, k, 1, 1, caps);
	if (ret == VIRGO_ST_OK &&
	    ((k->hello.caps & caps) != caps ||
	     k->hello_len != VIRGO_WIRE_HELLO_REP_MAX))
		ret = -EPROTO;
	if (ret == VIRGO_ST_OK && c->have_key)
		ret = auth_with(c, k, c->key, c->key_len);
	if (ret) {
		conn_close(k);
		return ret > 0 ? -EIO : ret;
	}
	return 0;
}

static int open_resumable(struct ctx *c, struct conn *k)
{
	return open_with_caps(c, k, VIRGO_CAP_RESUME);
}

/* The client's connection breaks: RST, not a clean close. */
static void conn_abort(struct conn *k)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (k->fd < 0)
		return;
	setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(k);
}

/* Lent bytes and chunks (STAT on a connection of its own). */
static int lent_now(struct ctx *c, struct virgo_wire_stat *st)
{
	struct conn k = { .fd = -1 };
	int ret = open_ready(c, &k);

	if (!ret)
		ret = do_stat(c, k.fd, st);
	conn_close(&k);
	return ret;
}

/* Whether lent bytes and chunks come back to @base within 5 s. */
static bool lent_back(struct ctx *c, const struct virgo_wire_stat *base)
{
	struct virgo_wire_stat st;
	int i;

	for (i = 0; i < 50; i++) {
		if (lent_now(c, &st))
			return false;
		if (st.lent_chunks == base->lent_chunks &&
		    st.lent_bytes == base->lent_bytes)
			return true;
		usleep(100000);
	}
	return false;
}

/* The library HMAC gives the resume proof of the test vector. */
static void t_resume_vector(struct ctx *c)
{
	u8 key[32], token[32], proof[32];
	struct conn k;
	char hex[65];
	int i;

	for (i = 0; i < 32; i++) {
		key[i] = (u8)i;
		token[i] = (u8)(0xa0 + i);
		k.cnonce[i] = (u8)(0xc0 + i);
		k.snonce[i] = (u8)(0x50 + i);
	}
	if (CHECK(c, !resume_proof(c, key, 32, &k, token, proof), "HMAC"))
		return;
	for (i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", proof[i]);
	(void)CHECK(c, !strcmp(hex, vector_resume_proof), "resume proof %s",
		    hex);
}

/*
 * Offered: the bit back, a 112-byte reply, a resume id != 0 and a token,
 * both fresh per connection.  Not offered: 72 bytes, no bit.
 */
static void t_resume_hello(struct ctx *c)
{
	struct conn a = { .fd = -1 }, b = { .fd = -1 }, n = { .fd = -1 };

	if (CHECK(c, !open_resumable(c, &a), "handshake offering RESUME"))
		goto out;
	if (CHECK(c, !open_resumable(c, &b), "second handshake"))
		goto out;
	if (CHECK(c, a.hello.resume_id && b.hello.resume_id, "resume id 0"))
		goto out;
	if (CHECK(c, a.hello.resume_id != b.hello.resume_id,
		  "two sessions with resume id %#llx", a.hello.resume_id))
		goto out;
	if (CHECK(c, !all_zero(a.hello.token, 32) &&
		  memcmp(a.hello.token, b.hello.token, 32),
		  "tokens zero or equal on two connections"))
		goto out;
	if (CHECK(c, !conn_open(c, &n), "connect"))
		goto out;
	if (CHECK_ST(c, hello_with(c, &n, 1, 1, 0), VIRGO_ST_OK, "HELLO"))
		goto out;
	if (CHECK(c, n.hello.caps == 0 &&
		  n.hello_len == VIRGO_WIRE_HELLO_REP_LEN,
		  "not offered: caps %#x, %u bytes", n.hello.caps, n.hello_len))
		goto out;
out:
	conn_close(&a);
	conn_close(&b);
	conn_close(&n);
}

/*
 * RESUME where the capability was not agreed, in the order of 6.1: PERM
 * before the handshake, INVAL when malformed, then PROTO; the stream goes
 * on.  Also runs against a server that does not grant it.
 */
static void t_resume_not_agreed(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u8 proof[32] = { 0 };

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK_ST(c, resume_raw(c, &k, 1, proof, NULL, NULL),
		     VIRGO_ST_PERM, "RESUME before HELLO"))
		goto out;
	if (CHECK_ST(c, hello_with(c, &k, 1, 1, 0), VIRGO_ST_OK,
		     "HELLO without RESUME"))
		goto out;
	if (CHECK(c, k.hello_len == VIRGO_WIRE_HELLO_REP_LEN,
		  "HELLO reply of %u bytes", k.hello_len))
		goto out;
	if (c->have_key) {
		if (CHECK_ST(c, resume_raw(c, &k, 1, proof, NULL, NULL),
			     VIRGO_ST_PERM, "RESUME before AUTH, not agreed"))
			goto out;
		if (CHECK_ST(c, auth_with(c, &k, c->key, c->key_len),
			     VIRGO_ST_OK, "AUTH"))
			goto out;
	}
	if (CHECK_ST(c, resume_raw(c, &k, 0, proof, NULL, NULL),
		     VIRGO_ST_INVAL, "RESUME of id 0, not agreed"))
		goto out;
	if (CHECK_ST(c, resume_raw(c, &k, 1, proof, NULL, NULL),
		     VIRGO_ST_PROTO, "RESUME, not agreed"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&k);
}

/* JOIN on a connection that did not agree on QUEUES: PERM, INVAL, PROTO. */
static int join_raw(struct ctx *c, struct conn *k, u64 id, u32 len)
{
	u8 p[VIRGO_WIRE_JOIN_REQ_LEN + 1] = { 0 };
	u8 proof[VIRGO_WIRE_MAC_LEN] = { 0 };

	virgo_wire_put_join_req(p, sizeof(p), id, proof);
	return rpc(c, k->fd, VIRGO_OP_JOIN, p, len, NULL);
}

static void t_join_not_agreed(struct ctx *c)
{
	struct conn k = { .fd = -1 };

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK_ST(c, join_raw(c, &k, 1, VIRGO_WIRE_JOIN_REQ_LEN),
		     VIRGO_ST_PERM, "JOIN before HELLO"))
		goto out;
	/* Offering QUEUES alone: never granted without RESUME. */
	if (CHECK_ST(c, hello_with(c, &k, 1, 1, VIRGO_CAP_QUEUES), VIRGO_ST_OK,
		     "HELLO offering QUEUES only"))
		goto out;
	if (CHECK(c, k.hello_len == VIRGO_WIRE_HELLO_REP_LEN,
		  "HELLO reply of %u bytes", k.hello_len))
		goto out;
	if (c->have_key &&
	    CHECK_ST(c, auth_with(c, &k, c->key, c->key_len), VIRGO_ST_OK,
		     "AUTH"))
		goto out;
	if (CHECK_ST(c, join_raw(c, &k, 0, VIRGO_WIRE_JOIN_REQ_LEN),
		     VIRGO_ST_INVAL, "JOIN of id 0"))
		goto out;
	if (CHECK_ST(c, join_raw(c, &k, 1, VIRGO_WIRE_JOIN_REQ_LEN - 1),
		     VIRGO_ST_INVAL, "JOIN of 39 bytes"))
		goto out;
	if (CHECK_ST(c, join_raw(c, &k, 1, VIRGO_WIRE_JOIN_REQ_LEN),
		     VIRGO_ST_PROTO, "JOIN, not agreed"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&k);
}

/* Agreed, key set, no AUTH yet: PERM, malformed or not. */
static void t_resume_perm(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u8 p[41] = { 0 };

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK_ST(c, hello_with(c, &k, 1, 1, VIRGO_CAP_RESUME), VIRGO_ST_OK,
		     "HELLO"))
		goto out;
	if (CHECK(c, k.hello.caps == VIRGO_CAP_RESUME, "not granted"))
		goto out;
	if (CHECK_ST(c, resume_raw(c, &k, 7, p, NULL, NULL), VIRGO_ST_PERM,
		     "RESUME before AUTH"))
		goto out;
	if (CHECK_ST(c, resume_raw(c, &k, 0, p, NULL, NULL), VIRGO_ST_PERM,
		     "RESUME of id 0 before AUTH"))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_RESUME, p, 39, NULL),
		     VIRGO_ST_PERM, "RESUME of 39 bytes before AUTH"))
		goto out;
	if (CHECK_ST(c, auth_with(c, &k, c->key, c->key_len), VIRGO_ST_OK,
		     "AUTH after"))
		goto out;
	if (CHECK_ST(c, resume_raw(c, &k, rnd64() | 1, p, NULL, NULL),
		     VIRGO_ST_NOENT, "RESUME of an unknown id after AUTH"))
		goto out;
out:
	conn_close(&k);
}

/* Malformed: id 0, 39 and 41 bytes: INVAL, and the stream goes on. */
static void t_resume_malformed(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u8 p[41] = { 0 };

	if (CHECK(c, !open_resumable(c, &k), "handshake"))
		goto out;
	if (CHECK_ST(c, resume_raw(c, &k, 0, p, NULL, NULL), VIRGO_ST_INVAL,
		     "RESUME of id 0"))
		goto out;
	put_unaligned_le64(k.hello.resume_id ^ 1, p);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_RESUME, p, 39, NULL),
		     VIRGO_ST_INVAL, "RESUME of 39 bytes"))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_RESUME, p, 41, NULL),
		     VIRGO_ST_INVAL, "RESUME of 41 bytes"))
		goto out;
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_RESUME, NULL, 0, NULL),
		     VIRGO_ST_INVAL, "RESUME of 0 bytes"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&k);
}

/*
 * Unknown id, or a known one with a wrong proof: NOENT, not told apart;
 * a wrong proof for a live session is NOENT, not BUSY, and leaves it be.
 */
static void t_resume_noent(struct ctx *c)
{
	struct conn a = { .fd = -1 }, k = { .fd = -1 };
	u8 bad[32];

	if (CHECK(c, !open_resumable(c, &a), "handshake A"))
		goto out;
	if (CHECK(c, !open_resumable(c, &k), "handshake"))
		goto out;
	memcpy(bad, a.hello.token, 32);
	bad[7] ^= 0x10;
	if (CHECK_ST(c, resume_once(c, &k, a.hello.resume_id ^ (rnd64() << 1 |
								  2),
				    a.hello.token, NULL, NULL),
		     VIRGO_ST_NOENT, "RESUME of an unknown id"))
		goto out;
	if (CHECK_ST(c, resume_once(c, &k, a.hello.resume_id, bad, NULL,
				    NULL),
		     VIRGO_ST_NOENT, "RESUME of A with a wrong token"))
		goto out;
	/* A failed RESUME changes nothing: both sessions go on. */
	if (CHECK_ST(c, do_ping(c, a.fd), VIRGO_ST_OK, "PING on A"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&a);
	conn_close(&k);
}

/* Write @n chunks of @size on @k, patterns from @seed, into @h, @w. */
static bool fill_chunks(struct ctx *c, struct conn *k, u32 n, u32 size,
			u64 seed, u64 *h, u8 *w)
{
	u32 i;

	for (i = 0; i < n; i++) {
		fill(w + (size_t)i * size, size, seed + i);
		if (CHECK_ST(c, do_alloc1(c, k->fd, size, &h[i]), VIRGO_ST_OK,
			     "ALLOC"))
			return false;
		if (CHECK_ST(c, do_write(c, k->fd, h[i], 0,
					 w + (size_t)i * size, size),
			     VIRGO_ST_OK, "WRITE"))
			return false;
	}
	return true;
}

/* Every chunk reads back its pattern on @k. */
static bool check_chunks(struct ctx *c, struct conn *k, u32 n, u32 size,
			 const u64 *h, const u8 *w, const char *when)
{
	u8 *r = malloc(size);
	bool ok = true;
	u32 i;

	if (!r)
		return false;
	for (i = 0; ok && i < n; i++) {
		if (CHECK_ST(c, do_read(c, k->fd, h[i], 0, r, size),
			     VIRGO_ST_OK, when) ||
		    CHECK(c, !memcmp(r, w + (size_t)i * size, size),
			  "%s: chunk %u differs", when, i))
			ok = false;
	}
	free(r);
	return ok;
}

/*
 * ALLOC, then RESUME on the same connection: INVAL, even of a real
 * orphan with the right proof, even once the chunk is freed; and a
 * session that resumed cannot resume again.
 */
static void t_resume_after_alloc(struct ctx *c)
{
	struct conn a = { .fd = -1 }, b = { .fd = -1 }, d = { .fd = -1 };
	u64 ha, hb, chunks = 0, bytes = 0;
	u32 freed = 0;
	u8 w[64];

	if (CHECK(c, !open_resumable(c, &a), "handshake A"))
		goto out;
	if (!fill_chunks(c, &a, 1, 64, 11, &ha, w))
		goto out;
	conn_abort(&a);
	if (CHECK(c, !open_resumable(c, &b), "handshake B"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, b.fd, 16, &hb), VIRGO_ST_OK, "ALLOC on B"))
		goto out;
	if (CHECK_ST(c, resume_once(c, &b, a.hello.resume_id, a.hello.token,
				    NULL, NULL),
		     VIRGO_ST_INVAL, "RESUME after an ALLOC"))
		goto out;
	if (CHECK_ST(c, do_free(c, b.fd, &hb, 1, &freed), VIRGO_ST_OK,
		     "FREE on B") || CHECK(c, freed == 1, "freed %u", freed))
		goto out;
	if (CHECK_ST(c, resume_once(c, &b, a.hello.resume_id, a.hello.token,
				    NULL, NULL),
		     VIRGO_ST_INVAL, "RESUME after an ALLOC and its FREE"))
		goto out;
	/* A is still there for a fresh connection. */
	if (CHECK(c, !open_resumable(c, &d), "handshake D"))
		goto out;
	if (CHECK_ST(c, resume_retry(c, &d, a.hello.resume_id, a.hello.token,
				     &chunks, &bytes),
		     VIRGO_ST_OK, "RESUME of A on D"))
		goto out;
	if (CHECK(c, chunks == 1 && bytes == 64, "RESUME: %llu chunks %llu B",
		  chunks, bytes))
		goto out;
	if (CHECK_ST(c, resume_once(c, &d, b.hello.resume_id, b.hello.token,
				    NULL, NULL),
		     VIRGO_ST_INVAL, "a second RESUME on D"))
		goto out;
	if (!check_chunks(c, &d, 1, 64, &ha, w, "READ on D"))
		goto out;
	if (CHECK_ST(c, do_free(c, d.fd, &ha, 1, &freed), VIRGO_ST_OK,
		     "FREE on D") || CHECK(c, freed == 1, "freed %u", freed))
		goto out;
out:
	conn_close(&a);
	conn_close(&b);
	conn_close(&d);
}

#define RS_CHUNKS 3
#define RS_SIZE 8192

/*
 * The client's connection breaks holding chunks; a new connection
 * resumes: same handles, same bytes, ALLOC goes on.  The token of the
 * first connection is void then; the one of the resuming connection's
 * HELLO works for the next resumption.
 */
static void t_resume_basic(struct ctx *c)
{
	struct conn a = { .fd = -1 }, b = { .fd = -1 }, d = { .fd = -1 };
	static u8 w[(RS_CHUNKS + 1) * RS_SIZE];
	u64 h[RS_CHUNKS + 1], chunks = 0, bytes = 0, id;
	struct virgo_wire_stat base, st;
	u32 freed = 0;
	int i;

	if (CHECK_ST(c, lent_now(c, &base), VIRGO_ST_OK, "STAT before"))
		goto out;
	if (CHECK(c, !open_resumable(c, &a), "handshake A"))
		goto out;
	id = a.hello.resume_id;
	if (!fill_chunks(c, &a, RS_CHUNKS, RS_SIZE, 21, h, w))
		goto out;
	conn_abort(&a);
	/* Kept, still charged: an orphan (or not yet seen as broken). */
	if (CHECK_ST(c, lent_now(c, &st), VIRGO_ST_OK, "STAT") ||
	    CHECK(c, st.lent_chunks == base.lent_chunks + RS_CHUNKS &&
		  st.lent_bytes == base.lent_bytes + RS_CHUNKS * RS_SIZE,
		  "after the break: lent %llu chunks %llu B, was %llu %llu",
		  st.lent_chunks, st.lent_bytes, base.lent_chunks,
		  base.lent_bytes))
		goto out;
	if (CHECK(c, !open_resumable(c, &b), "handshake B"))
		goto out;
	if (CHECK_ST(c, resume_retry(c, &b, id, a.hello.token, &chunks,
				     &bytes),
		     VIRGO_ST_OK, "RESUME on B"))
		goto out;
	if (CHECK(c, chunks == RS_CHUNKS && bytes == RS_CHUNKS * RS_SIZE,
		  "RESUME reply: %llu chunks %llu bytes", chunks, bytes))
		goto out;
	if (!check_chunks(c, &b, RS_CHUNKS, RS_SIZE, h, w, "READ on B"))
		goto out;
	if (CHECK_ST(c, do_stat(c, b.fd, &st), VIRGO_ST_OK, "STAT on B") ||
	    CHECK(c, st.session_chunks == RS_CHUNKS &&
		  st.session_bytes == RS_CHUNKS * RS_SIZE,
		  "STAT on B: session %llu chunks %llu B", st.session_chunks,
		  st.session_bytes))
		goto out;
	/* New chunks: handles of their own, never one of the old ones. */
	if (!fill_chunks(c, &b, 1, RS_SIZE, 29, &h[RS_CHUNKS],
			 w + RS_CHUNKS * RS_SIZE))
		goto out;
	for (i = 0; i < RS_CHUNKS; i++)
		if (CHECK(c, h[i] != h[RS_CHUNKS], "ALLOC reused a handle"))
			goto out;
	if (!check_chunks(c, &b, RS_CHUNKS + 1, RS_SIZE, h, w,
			  "READ on B after the ALLOC"))
		goto out;
	/* B breaks too.  A's token is void; B's names the session now. */
	conn_abort(&b);
	if (CHECK(c, !open_resumable(c, &d), "handshake D"))
		goto out;
	if (CHECK_ST(c, resume_retry(c, &d, id, a.hello.token, NULL, NULL),
		     VIRGO_ST_NOENT, "RESUME with the first token"))
		goto out;
	if (CHECK_ST(c, resume_retry(c, &d, b.hello.resume_id, b.hello.token,
				     NULL, NULL),
		     VIRGO_ST_NOENT, "RESUME of B's own (replaced) id"))
		goto out;
	if (CHECK_ST(c, resume_retry(c, &d, id, b.hello.token, &chunks,
				     &bytes),
		     VIRGO_ST_OK, "RESUME with B's token"))
		goto out;
	if (CHECK(c, chunks == RS_CHUNKS + 1, "RESUME: %llu chunks", chunks))
		goto out;
	if (!check_chunks(c, &d, RS_CHUNKS + 1, RS_SIZE, h, w, "READ on D"))
		goto out;
	if (CHECK_ST(c, do_free(c, d.fd, h, RS_CHUNKS + 1, &freed),
		     VIRGO_ST_OK, "FREE") ||
	    CHECK(c, freed == RS_CHUNKS + 1, "freed %u", freed))
		goto out;
	conn_close(&d);
	/* Freed before the close: nothing left behind. */
	for (i = 0; i < 50; i++) {
		if (CHECK_ST(c, lent_now(c, &st), VIRGO_ST_OK, "STAT after"))
			goto out;
		if (st.lent_chunks == base.lent_chunks &&
		    st.lent_bytes == base.lent_bytes)
			break;
		usleep(100000);
	}
	(void)CHECK(c, st.lent_chunks == base.lent_chunks &&
	      st.lent_bytes == base.lent_bytes,
	      "after FREE and close: lent %llu chunks %llu B, was %llu %llu",
	      st.lent_chunks, st.lent_bytes, base.lent_chunks,
	      base.lent_bytes);
out:
	conn_close(&a);
	conn_close(&b);
	conn_close(&d);
}

/*
 * The first connection is still open: BUSY, the server closes it, and
 * the RESUME, sent again, takes the session over.
 */
static void t_resume_busy(struct ctx *c)
{
	struct conn a = { .fd = -1 }, b = { .fd = -1 };
	u64 h, chunks = 0, bytes = 0;
	u32 freed = 0;
	u8 w[256];

	if (CHECK(c, !open_resumable(c, &a), "handshake A"))
		goto out;
	if (!fill_chunks(c, &a, 1, sizeof(w), 31, &h, w))
		goto out;
	if (CHECK(c, !open_resumable(c, &b), "handshake B"))
		goto out;
	if (CHECK_ST(c, resume_once(c, &b, a.hello.resume_id, a.hello.token,
				    NULL, NULL),
		     VIRGO_ST_BUSY, "RESUME while A is open"))
		goto out;
	if (CHECK(c, expect_closed(a.fd), "A not closed after the BUSY"))
		goto out;
	if (CHECK_ST(c, resume_retry(c, &b, a.hello.resume_id, a.hello.token,
				     &chunks, &bytes),
		     VIRGO_ST_OK, "RESUME again"))
		goto out;
	if (CHECK(c, chunks == 1 && bytes == sizeof(w),
		  "RESUME: %llu chunks %llu B", chunks, bytes))
		goto out;
	if (!check_chunks(c, &b, 1, sizeof(w), &h, w, "READ on B"))
		goto out;
	if (CHECK_ST(c, do_free(c, b.fd, &h, 1, &freed), VIRGO_ST_OK,
		     "FREE") || CHECK(c, freed == 1, "freed %u", freed))
		goto out;
out:
	conn_close(&a);
	conn_close(&b);
}

/*
 * With a key: the token alone is refused, so is a proof made for the
 * nonces of another connection; HMAC over this connection's works.
 */
static void t_resume_keyed(struct ctx *c)
{
	struct conn a = { .fd = -1 }, b = { .fd = -1 };
	u8 proof[32], w[128];
	u64 h, chunks = 0, bytes = 0;
	u32 freed = 0;

	if (CHECK(c, !open_resumable(c, &a), "handshake A"))
		goto out;
	if (!fill_chunks(c, &a, 1, sizeof(w), 41, &h, w))
		goto out;
	conn_abort(&a);
	if (CHECK(c, !open_resumable(c, &b), "handshake B"))
		goto out;
	/* Let the server see A's end: a BUSY here would prove nothing. */
	usleep(300000);
	if (CHECK_ST(c, resume_raw(c, &b, a.hello.resume_id, a.hello.token,
				   NULL, NULL),
		     VIRGO_ST_NOENT, "RESUME with the token alone"))
		goto out;
	if (CHECK(c, !resume_proof(c, c->key, c->key_len, &a, a.hello.token,
				   proof), "HMAC") ||
	    CHECK_ST(c, resume_raw(c, &b, a.hello.resume_id, proof, NULL,
				   NULL),
		     VIRGO_ST_NOENT, "RESUME with A's nonces"))
		goto out;
	if (CHECK_ST(c, resume_retry(c, &b, a.hello.resume_id, a.hello.token,
				     &chunks, &bytes),
		     VIRGO_ST_OK, "RESUME with the HMAC"))
		goto out;
	if (!check_chunks(c, &b, 1, sizeof(w), &h, w, "READ on B"))
		goto out;
	if (CHECK_ST(c, do_free(c, b.fd, &h, 1, &freed), VIRGO_ST_OK,
		     "FREE") || CHECK(c, freed == 1, "freed %u", freed))
		goto out;
out:
	conn_close(&a);
	conn_close(&b);
}

/*
 * An orphan nobody resumes is freed after orphan_timeout: the server's
 * lent counters go back to what they were, and its id is NOENT.
 */
static void t_resume_expiry(struct ctx *c)
{
	struct conn a = { .fd = -1 }, b = { .fd = -1 };
	struct virgo_wire_stat base, st;
	u64 h[2], t0, limit;
	u8 w[2 * 4096];

	if (CHECK_ST(c, lent_now(c, &base), VIRGO_ST_OK, "STAT before"))
		goto out;
	if (CHECK(c, !open_resumable(c, &a), "handshake A"))
		goto out;
	if (!fill_chunks(c, &a, 2, 4096, 51, h, w))
		goto out;
	conn_abort(&a);
	t0 = now_ms();
	limit = c->orphan_timeout * 1000ull + 5000;
	/* Half the timeout later it is still there, charged. */
	usleep(c->orphan_timeout * 500000u);
	if (CHECK_ST(c, lent_now(c, &st), VIRGO_ST_OK, "STAT") ||
	    CHECK(c, st.lent_chunks == base.lent_chunks + 2,
		  "%llu ms after the break: lent_chunks %llu, was %llu",
		  now_ms() - t0, st.lent_chunks, base.lent_chunks))
		goto out;
	for (;;) {
		if (CHECK_ST(c, lent_now(c, &st), VIRGO_ST_OK, "STAT"))
			goto out;
		if (st.lent_chunks == base.lent_chunks &&
		    st.lent_bytes == base.lent_bytes && st.free == base.free)
			break;
		if (CHECK(c, now_ms() - t0 < limit,
			  "orphan not freed %llu ms after the break (timeout %u s): lent %llu chunks %llu B free %llu, was %llu %llu %llu",
			  now_ms() - t0, c->orphan_timeout, st.lent_chunks,
			  st.lent_bytes, st.free, base.lent_chunks,
			  base.lent_bytes, base.free))
			goto out;
		usleep(100000);
	}
	if (CHECK(c, now_ms() - t0 >= c->orphan_timeout * 1000ull - 250,
		  "orphan freed after %llu ms, timeout %u s", now_ms() - t0,
		  c->orphan_timeout))
		goto out;
	if (CHECK(c, !open_resumable(c, &b), "handshake B"))
		goto out;
	if (CHECK_ST(c, resume_once(c, &b, a.hello.resume_id, a.hello.token,
				    NULL, NULL),
		     VIRGO_ST_NOENT, "RESUME after expiry"))
		goto out;
out:
	conn_close(&a);
	conn_close(&b);
}

/* ---- DISCARD (docs/protocol.md 5.9) ---------------------------------- */

/* A ready session whose HELLO offered @caps; -errno or a status. */
static int open_caps(struct ctx *c, struct conn *k, u32 caps)
{
	int ret = conn_open(c, k);

	if (ret)
		return ret;
	ret = hello_with(c, k, 1, 1, caps);
	if (ret == VIRGO_ST_OK && c->have_key)
		ret = auth_with(c, k, c->key, c->key_len);
	if (ret) {
		conn_close(k);
		return ret > 0 ? -EIO : ret;
	}
	return 0;
}

/* DISCARD; *done is the count the server reports. */
static int do_discard(struct ctx *c, int fd, const u64 *h, u32 count,
		      u32 *done)
{
	size_t cap = VIRGO_WIRE_BATCH_HDR_LEN + 8 * (size_t)count;
	u8 *buf = malloc(cap);
	int st;

	if (!buf)
		return -ENOMEM;
	virgo_wire_put_discard_req(buf, cap, h, count);
	st = rpc(c, fd, VIRGO_OP_DISCARD, buf, (u32)cap, NULL);
	free(buf);
	if (st == VIRGO_ST_OK && done)
		*done = virgo_wire_discarded(g_rbuf);
	return st;
}

/*
 * The preamble of the DISCARD cases: a session with DISCARD agreed, @n
 * chunks of @size bytes, each written whole with fill(seed i); 0 or -1.
 */
static int discard_setup(struct ctx *c, struct conn *k, u64 *h, u32 n,
			 u32 size, u8 *data)
{
	u32 sizes[8], i;

	if (CHECK(c, n <= ARRAY_SIZE(sizes), "setup of %u chunks", n) ||
	    CHECK_ST(c, open_caps(c, k, VIRGO_CAP_DISCARD), 0,
		     "session offering DISCARD") ||
	    CHECK(c, k->hello.caps == VIRGO_CAP_DISCARD &&
		  k->hello_len == VIRGO_WIRE_HELLO_REP_LEN,
		  "caps %#x, %u bytes", k->hello.caps, k->hello_len))
		return -1;
	for (i = 0; i < n; i++)
		sizes[i] = size;
	if (CHECK_ST(c, do_alloc(c, k->fd, sizes, n, h), VIRGO_ST_OK,
		     "ALLOC"))
		return -1;
	for (i = 0; i < n; i++) {
		fill(data, size, i);
		if (CHECK_ST(c, do_write(c, k->fd, h[i], 0, data, size),
			     VIRGO_ST_OK, "WRITE"))
			return -1;
	}
	return 0;
}

/* Not agreed: PERM before the handshake, INVAL malformed, else PROTO. */
static void t_discard_not_agreed(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	u64 h = 1, zero = 0;

	if (CHECK(c, !conn_open(c, &k), "connect"))
		goto out;
	if (CHECK_ST(c, do_discard(c, k.fd, &h, 1, NULL), VIRGO_ST_PERM,
		     "DISCARD before HELLO"))
		goto out;
	if (CHECK_ST(c, hello_with(c, &k, 1, 1, 0), VIRGO_ST_OK, "HELLO"))
		goto out;
	if (c->have_key &&
	    (CHECK_ST(c, do_discard(c, k.fd, &h, 1, NULL), VIRGO_ST_PERM,
		      "DISCARD before AUTH") ||
	     CHECK_ST(c, auth_with(c, &k, c->key, c->key_len), VIRGO_ST_OK,
		      "AUTH")))
		goto out;
	if (CHECK_ST(c, do_discard(c, k.fd, &zero, 1, NULL), VIRGO_ST_INVAL,
		     "DISCARD of handle 0, not agreed") ||
	    CHECK_ST(c, do_alloc1(c, k.fd, 4096, &h), VIRGO_ST_OK, "ALLOC") ||
	    CHECK_ST(c, do_discard(c, k.fd, &h, 1, NULL), VIRGO_ST_PROTO,
		     "DISCARD, not agreed"))
		goto out;
	if (CHECK_ST(c, do_ping(c, k.fd), VIRGO_ST_OK, "PING after"))
		goto out;
out:
	conn_close(&k);
}

/*
 * Discarded chunks read as zeroes, the others keep their bytes; nothing
 * lent or reserved changes; a discarded chunk is written again as new.
 */
static void t_discard_basic(struct ctx *c)
{
	struct conn k = { .fd = -1 };
	struct virgo_wire_stat before, after;
	u8 data[8192], got[8192];
	u64 h[3], batch[3];
	u32 done = 0;

	if (discard_setup(c, &k, h, 3, sizeof(data), data) ||
	    CHECK_ST(c, do_stat(c, k.fd, &before), VIRGO_ST_OK, "STAT"))
		goto out;
	batch[0] = h[0];
	batch[1] = h[2];
	batch[2] = h[0];
	if (CHECK_ST(c, do_discard(c, k.fd, batch, 3, &done), VIRGO_ST_OK,
		     "DISCARD") ||
	    CHECK(c, done == 3, "discarded %u of 3 (a duplicate counts)", done))
		goto out;
	if (CHECK_ST(c, do_read(c, k.fd, h[0], 0, got, sizeof(got)),
		     VIRGO_ST_OK, "READ discarded") ||
	    CHECK(c, all_zero(got, sizeof(got)), "discarded chunk not zero") ||
	    CHECK_ST(c, do_read(c, k.fd, h[2], 100, got, 50), VIRGO_ST_OK,
		     "READ discarded") ||
	    CHECK(c, all_zero(got, 50), "discarded chunk not zero"))
		goto out;
	fill(data, sizeof(data), 1);
	if (CHECK_ST(c, do_read(c, k.fd, h[1], 0, got, sizeof(got)),
		     VIRGO_ST_OK, "READ kept") ||
	    CHECK(c, !memcmp(got, data, sizeof(got)), "kept chunk changed"))
		goto out;
	if (CHECK_ST(c, do_stat(c, k.fd, &after), VIRGO_ST_OK, "STAT") ||
	    CHECK(c, after.session_bytes == before.session_bytes &&
		  after.session_chunks == before.session_chunks &&
		  after.free == before.free,
		  "session %llu/%llu free %llu, was %llu/%llu %llu",
		  after.session_bytes, after.session_chunks, after.free,
		  before.session_bytes, before.session_chunks, before.free))
		goto out;
	/* Written again: the new bytes amid zeroes. */
	if (CHECK_ST(c, do_write(c, k.fd, h[0], 10, "xyz", 3), VIRGO_ST_OK,
		     "WRITE after DISCARD") ||
	    CHECK_ST(c, do_read(c, k.fd, h[0], 0, got, 20), VIRGO_ST_OK,
		     "READ"))
		goto out;
	if (CHECK(c, all_zero(got, 10) && !memcmp(got + 10, "xyz", 3) &&
		  all_zero(got + 13, 7), "rewritten chunk"))
		goto out;
out:
	conn_close(&k);
}

/* Malformed: nothing discarded; foreign and unknown handles skipped. */
static void t_discard_errors(struct ctx *c)
{
	struct conn k = { .fd = -1 }, o = { .fd = -1 };
	u64 h[2], other, batch[4];
	u8 data[4096], got[4096];
	u32 done = 0, n = c->lim.max_batch + 1;
	u64 *many = calloc(n, sizeof(*many));
	u8 frame[16];

	if (CHECK(c, many, "memory") ||
	    discard_setup(c, &k, h, 2, sizeof(data), data) ||
	    CHECK_ST(c, open_ready(c, &o), 0, "second session") ||
	    CHECK_ST(c, do_alloc1(c, o.fd, 4096, &other), VIRGO_ST_OK,
		     "ALLOC") ||
	    CHECK_ST(c, do_write(c, o.fd, other, 0, "other", 5), VIRGO_ST_OK,
		     "WRITE"))
		goto out;
	/* A handle 0 among valid ones: INVAL, h[0] keeps its bytes. */
	batch[0] = h[0];
	batch[1] = 0;
	if (CHECK_ST(c, do_discard(c, k.fd, batch, 2, NULL), VIRGO_ST_INVAL,
		     "handle 0 in the batch"))
		goto out;
	for (done = 0; done < n; done++)
		many[done] = h[0];
	if (CHECK_ST(c, do_discard(c, k.fd, many, n, NULL), VIRGO_ST_TOOBIG,
		     "max_batch + 1 handles"))
		goto out;
	virgo_wire_put_batch_hdr(frame, sizeof(frame), 0, 8);
	if (CHECK_ST(c, rpc(c, k.fd, VIRGO_OP_DISCARD, frame, 8, NULL),
		     VIRGO_ST_INVAL, "count 0"))
		goto out;
	fill(data, sizeof(data), 0);
	if (CHECK_ST(c, do_read(c, k.fd, h[0], 0, got, sizeof(got)),
		     VIRGO_ST_OK, "READ") ||
	    CHECK(c, !memcmp(got, data, sizeof(got)),
		  "a refused DISCARD changed the chunk"))
		goto out;
	/* Another session's handle and an unknown one are skipped. */
	batch[0] = other;
	batch[1] = h[1];
	batch[2] = h[1] ^ 0x40000000ull;
	if (CHECK_ST(c, do_discard(c, k.fd, batch, 3, &done), VIRGO_ST_OK,
		     "DISCARD with foreign handles") ||
	    CHECK(c, done == 1, "discarded %u, want 1", done) ||
	    CHECK_ST(c, do_read(c, o.fd, other, 0, got, 5), VIRGO_ST_OK,
		     "READ other") ||
	    CHECK(c, !memcmp(got, "other", 5), "another session's chunk"))
		goto out;
	if (CHECK_ST(c, do_read(c, k.fd, h[1], 0, got, 16), VIRGO_ST_OK,
		     "READ discarded") ||
	    CHECK(c, all_zero(got, 16), "discarded chunk not zero"))
		goto out;
out:
	free(many);
	conn_close(&k);
	conn_close(&o);
}

/* ---- the suite ------------------------------------------------------- */

/* ---- cases: several connections per session (QUEUES, 6.2) --------- */

static int open_queued(struct ctx *c, struct conn *k)
{
	return open_with_caps(c, k, VIRGO_CAP_RESUME | VIRGO_CAP_QUEUES);
}

/*
 * JOIN on @k the session (@id, @token), with the proof of section 5.10
 * for this connection (@wrong: of another label, RESUME's); *queues from
 * an OK reply.
 */
static int join_once(struct ctx *c, struct conn *k, u64 id, const u8 *token,
		     bool wrong, u32 *queues)
{
	u8 in[VIRGO_WIRE_JOIN_INPUT_LEN], proof[VIRGO_WIRE_MAC_LEN];
	u8 p[VIRGO_WIRE_JOIN_REQ_LEN];
	unsigned int len = 0;
	u32 rlen = 0;
	int st;

	memcpy(proof, token, sizeof(proof));
	if (c->have_key) {
		if (wrong)
			virgo_wire_resume_input(in, token, k->cnonce,
						k->snonce);
		else
			virgo_wire_join_input(in, token, k->cnonce,
					      k->snonce);
		if (!HMAC(EVP_sha256(), c->key, (int)c->key_len, in,
			  sizeof(in), proof, &len) || len != sizeof(proof))
			return -EIO;
	} else if (wrong) {
		proof[0] ^= 1;
	}
	virgo_wire_put_join_req(p, sizeof(p), id, proof);
	st = rpc(c, k->fd, VIRGO_OP_JOIN, p, sizeof(p), &rlen);
	if (st == VIRGO_ST_OK) {
		if (rlen != VIRGO_WIRE_JOIN_REP_LEN)
			return -EPROTO;
		if (queues)
			*queues = virgo_wire_get_join_rep(g_rbuf);
	}
	return st;
}

/*
 * A second connection JOINs a live session: the session's chunks are
 * read and written on either, ALLOC and FREE on the joined one act on the
 * session; a wrong proof (or RESUME's) is NOENT, a second JOIN or one
 * after an ALLOC INVAL; the session outlives its first connection.
 */
static void t_join_basic(struct ctx *c)
{
	struct conn a = { .fd = -1 }, b = { .fd = -1 }, d = { .fd = -1 };
	static u8 w[(RS_CHUNKS + 1) * RS_SIZE];
	struct virgo_wire_stat base, st;
	u64 h[RS_CHUNKS + 1], hd, id;
	u32 queues = 0, freed = 0;

	if (CHECK_ST(c, lent_now(c, &base), VIRGO_ST_OK, "STAT before"))
		goto out;
	if (CHECK(c, !open_queued(c, &a), "handshake A"))
		goto out;
	id = a.hello.resume_id;
	if (!fill_chunks(c, &a, RS_CHUNKS, RS_SIZE, 41, h, w))
		goto out;
	if (CHECK(c, !open_queued(c, &b), "handshake B"))
		goto out;
	if (CHECK_ST(c, join_once(c, &b, id, a.hello.token, true, NULL),
		     VIRGO_ST_NOENT, "JOIN with a wrong proof"))
		goto out;
	if (CHECK_ST(c, join_once(c, &b, id ^ 2, a.hello.token, false, NULL),
		     VIRGO_ST_NOENT, "JOIN of another id"))
		goto out;
	if (CHECK_ST(c, join_once(c, &b, id, a.hello.token, false, &queues),
		     VIRGO_ST_OK, "JOIN on B") ||
	    CHECK(c, queues == 2, "JOIN reply: %u queues", queues))
		goto out;
	if (CHECK_ST(c, join_once(c, &b, id, a.hello.token, false, NULL),
		     VIRGO_ST_INVAL, "a second JOIN on B"))
		goto out;
	/* A's chunks on B; B's writes on A; an ALLOC on B is the session's. */
	if (!check_chunks(c, &b, RS_CHUNKS, RS_SIZE, h, w, "READ on B"))
		goto out;
	if (!fill_chunks(c, &b, 1, RS_SIZE, 43, &h[RS_CHUNKS],
			 w + RS_CHUNKS * RS_SIZE))
		goto out;
	if (!check_chunks(c, &a, RS_CHUNKS + 1, RS_SIZE, h, w, "READ on A"))
		goto out;
	if (CHECK_ST(c, do_stat(c, b.fd, &st), VIRGO_ST_OK, "STAT on B") ||
	    CHECK(c, st.session_chunks == RS_CHUNKS + 1,
		  "STAT on B: session of %llu chunks", st.session_chunks))
		goto out;
	/* A connection that allocated does not JOIN. */
	if (CHECK(c, !open_queued(c, &d), "handshake D"))
		goto out;
	if (CHECK_ST(c, do_alloc1(c, d.fd, 4096, &hd), VIRGO_ST_OK,
		     "ALLOC on D") ||
	    CHECK_ST(c, join_once(c, &d, id, a.hello.token, false, NULL),
		     VIRGO_ST_INVAL, "JOIN after an ALLOC") ||
	    CHECK_ST(c, do_free(c, d.fd, &hd, 1, &freed), VIRGO_ST_OK,
		     "FREE on D"))
		goto out;
	conn_close(&d);
	/* A goes; the session stays, with B. */
	conn_close(&a);
	usleep(200000);
	if (!check_chunks(c, &b, RS_CHUNKS + 1, RS_SIZE, h, w,
			  "READ on B after A closed"))
		goto out;
	if (CHECK_ST(c, do_free(c, b.fd, h, RS_CHUNKS + 1, &freed),
		     VIRGO_ST_OK, "FREE on B") ||
	    CHECK(c, freed == RS_CHUNKS + 1, "FREE on B: %u freed", freed))
		goto out;
	conn_close(&b);
	(void)CHECK(c, lent_back(c, &base), "lent back to where it was");
out:
	conn_close(&d);
	conn_close(&a);
	conn_close(&b);
}

struct tcase {
	const char *name;
	void (*fn)(struct ctx *c);
	int key; /* 1: needs --key, -1: needs no key, 0: either */
	bool deadline; /* needs --handshake-timeout */
	const char *what;
	/*
	 * 1: needs RESUME granted, 2: and --orphan-timeout;
	 * NEEDS_DISCARD: needs DISCARD granted, NEEDS_QUEUES: QUEUES
	 */
	int resume;
};

#define NEEDS_DISCARD 3
#define NEEDS_QUEUES 4

static const struct tcase cases[] = {
	{ "auth_vector", t_auth_vector, 0, false,
	  "HMAC test vector of docs/protocol.md (local)", 0 },
	{ "hello", t_hello, 0, false,
	  "HELLO reply: version, caps, flags, limits, fresh nonces", 0 },
	{ "hello_twice", t_hello_twice, 0, false,
	  "a second HELLO is INVAL", 0 },
	{ "hello_proto", t_hello_proto, 0, false,
	  "a range without 1 is PROTO and does not count", 0 },
	{ "hello_malformed", t_hello_malformed, 0, false,
	  "short HELLO, ver_min 0, min > max: INVAL", 0 },
	{ "perm_before_hello", t_perm_before_hello, 0, false,
	  "every other opcode before HELLO: PERM", 0 },
	{ "perm_before_check", t_perm_before_check, 0, false,
	  "before the handshake a malformed request is PERM, not INVAL", 0 },
	{ "auth_right", t_auth_right, 1, false,
	  "right key: both MACs; AUTH again INVAL", 0 },
	{ "auth_wrong", t_auth_wrong, 1, false,
	  "wrong key: AUTH status, then closed", 0 },
	{ "auth_missing", t_auth_missing, 1, false,
	  "no AUTH: PERM until AUTH", 0 },
	{ "auth_without_key", t_auth_without_key, -1, false,
	  "AUTH to a server without a key: INVAL", 0 },
	{ "preauth_oversize", t_preauth_oversize, 0, false,
	  "a frame bigger than HELLO before the handshake closes", 0 },
	{ "handshake_deadline", t_handshake_deadline, 0, true,
	  "no handshake in time: closed", 0 },
	{ "ping", t_ping, 0, false,
	  "PING 0 and 64 bytes echoed, 65 TOOBIG", 0 },
	{ "stat", t_stat, 0, false,
	  "STAT fields, requests counter, payload INVAL", 0 },
	{ "alloc_free", t_alloc_free, 0, false,
	  "ALLOC/FREE, counters, handles not reused, full batch", 0 },
	{ "alloc_errors", t_alloc_errors, 0, false,
	  "malformed ALLOCs and limits", 0 },
	{ "alloc_nomem", t_alloc_nomem, 0, false,
	  "past the capacity: NOMEM, all or nothing", 0 },
	{ "free", t_free, 0, false, "FREE best effort; malformed FREEs", 0 },
	{ "write_read", t_write_read, 0, false,
	  "zeroes before WRITE; random WRITE/READ vs a shadow; max_chunk", 0 },
	{ "rw_errors", t_rw_errors, 0, false,
	  "WRITE/READ: INVAL, TOOBIG, RANGE, NOENT; framing survives", 0 },
	{ "cross_session", t_cross_session, 0, false,
	  "another session's handle is NOENT", 0 },
	{ "bad_headers", t_bad_headers, 0, false,
	  "header errors close without a reply", 0 },
	{ "reply_flag", t_reply_flag, 0, false,
	  "a REPLY-flagged request: INVAL, stream goes on", 0 },
	{ "truncated", t_truncated, 0, false,
	  "frames cut short; byte-by-byte frame", 0 },
	{ "tags", t_tags, 0, false, "tags echoed unchanged", 0 },
	{ "pipelining", t_pipelining, 0, false,
	  "600 requests in flight, replies matched by tag", 0 },
	{ "deaf_client", t_deaf_client, 0, false,
	  "a client not reading does not stall another", 0 },
	{ "resume_vector", t_resume_vector, 0, false,
	  "RESUME proof test vector of docs/protocol.md 6.1 (local)", 0 },
	{ "resume_not_agreed", t_resume_not_agreed, 0, false,
	  "RESUME without the capability: PERM, INVAL, then PROTO", 0 },
	{ "join_not_agreed", t_join_not_agreed, 0, false,
	  "JOIN without the capability: PERM, INVAL, then PROTO", 0 },
	{ "join_basic", t_join_basic, 0, false,
	  "a second connection JOINs: one session on both; NOENT, INVAL",
	  NEEDS_QUEUES },
	{ "resume_hello", t_resume_hello, 0, false,
	  "RESUME offered: 112-byte HELLO reply, fresh id and token", 1 },
	{ "resume_perm", t_resume_perm, 1, false,
	  "RESUME agreed, before AUTH: PERM", 1 },
	{ "resume_malformed", t_resume_malformed, 0, false,
	  "RESUME id 0, 39/41/0 bytes: INVAL", 1 },
	{ "resume_noent", t_resume_noent, 0, false,
	  "unknown id, wrong token: NOENT; the live session unharmed", 1 },
	{ "resume_after_alloc", t_resume_after_alloc, 0, false,
	  "RESUME after an ALLOC or a RESUME: INVAL", 1 },
	{ "resume_basic", t_resume_basic, 0, false,
	  "broken connection resumed: same handles and bytes; old token void",
	  1 },
	{ "resume_busy", t_resume_busy, 0, false,
	  "first connection open: BUSY, closed by the server, then OK", 1 },
	{ "resume_keyed", t_resume_keyed, 1, false,
	  "keyed: token alone or another connection's HMAC NOENT, HMAC OK",
	  1 },
	{ "resume_expiry", t_resume_expiry, 0, false,
	  "an orphan expires: lent counters back, id NOENT", 2 },
	{ "discard_not_agreed", t_discard_not_agreed, 0, false,
	  "DISCARD not agreed: PERM, INVAL, PROTO", 0 },
	{ "discard_basic", t_discard_basic, 0, false,
	  "discarded chunks read zero, stay lent; others intact",
	  NEEDS_DISCARD },
	{ "discard_errors", t_discard_errors, 0, false,
	  "malformed DISCARD changes nothing; foreign handles skipped",
	  NEEDS_DISCARD },
};

#define NR_CASES ARRAY_SIZE(cases)

static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	while (p && *p) {
		const char *e = strchr(p, ',');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && !strncmp(p, name, n))
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

static int read_key(const char *path, struct ctx *c)
{
	FILE *f = fopen(path, "re");
	u8 buf[66];
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n && buf[n - 1] == '\n')
		n--;
	if (!n || n > sizeof(c->key))
		return -EINVAL;
	memcpy(c->key, buf, n);
	c->key_len = n;
	c->have_key = true;
	return 0;
}

static int parse_addr(const char *host, const char *port, struct ctx *c)
{
	char *end;
	long p = strtol(port, &end, 10);
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->addr;

	if (*end || p <= 0 || p > 65535)
		return -EINVAL;
	memset(&c->addr, 0, sizeof(c->addr));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((u16)p);
		c->addr_len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((u16)p);
		c->addr_len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

static const char usage_text[] =
	"usage: virgo-conformance [--key FILE] [--skip a,b] [--only a,b]\n"
	"                         [--list] [--handshake-timeout SEC]\n"
	"                         [--orphan-timeout SEC] [-v]\n"
	"                         HOST PORT\n";

static void print_usage(FILE *f)
{
	fputs(usage_text, f);
}

static const char *case_needs(const struct tcase *t)
{
	if (t->key > 0)
		return " [--key]";
	if (t->key < 0)
		return " [no key]";
	if (t->deadline)
		return " [--handshake-timeout]";
	if (t->resume == NEEDS_DISCARD)
		return " [DISCARD]";
	if (t->resume == NEEDS_QUEUES)
		return " [QUEUES]";
	if (t->resume > 1)
		return " [RESUME, --orphan-timeout]";
	if (t->resume)
		return " [RESUME]";
	return "";
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "skip", required_argument, NULL, 's' },
		{ "only", required_argument, NULL, 'o' },
		{ "list", no_argument, NULL, 'l' },
		{ "handshake-timeout", required_argument, NULL, 'd' },
		{ "orphan-timeout", required_argument, NULL, 'O' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct virgo_wire_stat base, end;
	const char *skip = NULL, *only = NULL;
	struct ctx c = { 0 };
	struct conn k = { .fd = -1 };
	unsigned int i;
	u64 t0;
	int opt, st;

	while ((opt = getopt_long(argc, argv, "k:s:o:ld:O:vh", opts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'k':
			if (read_key(optarg, &c)) {
				fprintf(stderr,
					"--key %s: unreadable, empty or over 64 bytes\n",
					optarg);
				return 2;
			}
			break;
		case 's':
			skip = optarg;
			break;
		case 'o':
			only = optarg;
			break;
		case 'l':
			for (i = 0; i < NR_CASES; i++)
				printf("%-20s %s%s\n", cases[i].name,
				       cases[i].what, case_needs(&cases[i]));
			return 0;
		case 'd':
			c.handshake_timeout = (unsigned int)atoi(optarg);
			break;
		case 'O':
			c.orphan_timeout = (unsigned int)atoi(optarg);
			break;
		case 'v':
			c.verbose = true;
			break;
		case 'h':
			print_usage(stdout);
			return 0;
		default:
			print_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 ||
	    parse_addr(argv[optind], argv[optind + 1], &c)) {
		print_usage(stderr);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Learn the server's limits; a reply may be up to max_payload. */
	virgo_wire_limits_default(&c.rlim);
	c.rlim.max_payload = VIRGO_WIRE_MAX_PAYLOAD_LIMIT;
	c.rlim.max_chunk = VIRGO_WIRE_MAX_CHUNK_LIMIT;
	c.rlim.max_batch = VIRGO_WIRE_MAX_BATCH_LIMIT;
	g_rbuf_cap = VIRGO_WIRE_MAX_PAYLOAD_LIMIT;
	g_rbuf = malloc(g_rbuf_cap);
	if (!g_rbuf)
		return 1;
	c.cur = "setup";
	if (conn_open(&c, &k)) {
		printf("FAIL setup: cannot connect to %s %s\n", argv[optind],
		       argv[optind + 1]);
		return 1;
	}
	st = hello(&c, &k);
	if (st) {
		printf("FAIL setup: HELLO: %d\n", st);
		return 1;
	}
	c.hello = k.hello;
	c.lim.max_payload = k.hello.max_payload;
	c.lim.max_chunk = k.hello.max_chunk;
	c.lim.max_batch = k.hello.max_batch;
	c.rlim = c.lim;
	if (!!(k.hello.flags & VIRGO_HELLO_AUTH_REQUIRED) != c.have_key) {
		bool req = k.hello.flags & VIRGO_HELLO_AUTH_REQUIRED;

		printf("FAIL setup: the server %s a key, %s--key given\n",
		       req ? "requires" : "does not require",
		       c.have_key ? "" : "no ");
		return 1;
	}
	if (c.have_key && auth_with(&c, &k, c.key, c.key_len)) {
		printf("FAIL setup: AUTH with --key refused\n");
		return 1;
	}
	if (do_stat(&c, k.fd, &base)) {
		printf("FAIL setup: STAT\n");
		return 1;
	}
	conn_close(&k);
	/* Does it grant RESUME?  (Not granting is conformant.) */
	if (conn_open(&c, &k) ||
	    hello_with(&c, &k, 1, 1, VIRGO_CAP_RESUME) != VIRGO_ST_OK) {
		printf("FAIL setup: HELLO offering RESUME\n");
		return 1;
	}
	c.resume = k.hello.caps & VIRGO_CAP_RESUME;
	conn_close(&k);
	if (conn_open(&c, &k) ||
	    hello_with(&c, &k, 1, 1, VIRGO_CAP_DISCARD) != VIRGO_ST_OK) {
		printf("FAIL setup: HELLO offering DISCARD\n");
		return 1;
	}
	c.discard = k.hello.caps & VIRGO_CAP_DISCARD;
	conn_close(&k);
	/* QUEUES: only ever with RESUME (not granting is conformant). */
	if (conn_open(&c, &k) ||
	    hello_with(&c, &k, 1, 1, VIRGO_CAP_RESUME | VIRGO_CAP_QUEUES) !=
	    VIRGO_ST_OK) {
		printf("FAIL setup: HELLO offering RESUME and QUEUES\n");
		return 1;
	}
	c.queues = k.hello.caps & VIRGO_CAP_QUEUES;
	if (c.queues && !(k.hello.caps & VIRGO_CAP_RESUME)) {
		printf("FAIL setup: QUEUES granted without RESUME\n");
		return 1;
	}
	conn_close(&k);
	if (!c.discard)
		puts("# server does not grant DISCARD: its cases skipped");
	if (!c.resume) {
		puts("# server does not grant RESUME (orphan_timeout 0?)");
		puts("# RESUME cases skipped, but for PROTO without it");
	} else if (!c.orphan_timeout || c.orphan_timeout > 30) {
		puts("# server grants RESUME; no --orphan-timeout 1..30");
		puts("# the expiry case is skipped");
	} else {
		printf("# server grants RESUME, orphan timeout %u s\n",
		       c.orphan_timeout);
	}
	printf("# server: max_payload %u max_chunk %u max_batch %u",
	       c.lim.max_payload, c.lim.max_chunk, c.lim.max_batch);
	printf(" max_inflight %u capacity %llu free %llu%s\n",
	       c.hello.max_inflight, c.hello.capacity, c.hello.free,
	       c.have_key ? ", key" : ", no key");

	for (i = 0; i < NR_CASES; i++) {
		const struct tcase *t = &cases[i];
		const char *why = NULL;

		if (only && !in_list(only, t->name))
			continue;
		if (skip && in_list(skip, t->name))
			why = "--skip";
		else if (t->key > 0 && !c.have_key)
			why = "needs --key";
		else if (t->key < 0 && c.have_key)
			why = "needs a server without a key";
		else if (t->deadline && !c.handshake_timeout)
			why = "needs --handshake-timeout";
		else if (t->resume == NEEDS_DISCARD && !c.discard)
			why = "the server does not grant DISCARD";
		else if (t->resume == NEEDS_DISCARD)
			why = NULL;
		else if (t->resume == NEEDS_QUEUES && !c.queues)
			why = "the server does not grant QUEUES";
		else if (t->resume == NEEDS_QUEUES)
			why = NULL;
		else if (t->resume && !c.resume)
			why = "the server does not grant RESUME";
		else if (t->resume > 1 &&
			 (!c.orphan_timeout || c.orphan_timeout > 30))
			why = "needs --orphan-timeout 1..30, the server's";
		if (why) {
			printf("skip %s (%s)\n", t->name, why);
			c.skipped++;
			continue;
		}
		c.cur = t->name;
		c.failed = false;
		t0 = now_ms();
		t->fn(&c);
		if (c.failed) {
			c.nfailed++;
		} else {
			c.passed++;
			printf("ok %s (%llu ms)\n", t->name, now_ms() - t0);
		}
	}

	/* Every session closed, everything freed: counters as before. */
	c.cur = "counters_baseline";
	c.failed = false;
	t0 = now_ms();
	for (;;) {
		if (open_ready(&c, &k) || do_stat(&c, k.fd, &end)) {
			fail(&c, __LINE__, "STAT");
			break;
		}
		conn_close(&k);
		if (end.lent_bytes == base.lent_bytes &&
		    end.lent_chunks == base.lent_chunks &&
		    end.sessions == base.sessions && end.free == base.free)
			break;
		if (now_ms() - t0 > 5000) {
			fail(&c, __LINE__,
			     "after the suite: lent_bytes %llu (was %llu), lent_chunks %llu (was %llu), sessions %llu (was %llu), free %llu (was %llu)",
			     end.lent_bytes, base.lent_bytes, end.lent_chunks,
			     base.lent_chunks, end.sessions, base.sessions,
			     end.free, base.free);
			break;
		}
		usleep(100000);
	}
	if (c.failed) {
		c.nfailed++;
	} else {
		c.passed++;
		printf("ok counters_baseline (%llu ms)\n", now_ms() - t0);
	}
	printf("%d passed, %d failed, %d skipped\n", c.passed, c.nfailed,
	       c.skipped);
	free(g_rbuf);
	return c.nfailed ? 1 : 0;
}
