// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_hostile: a hostile virgo client for the qemu cluster scenarios.
 * It connects to a virgo_clouddrec port and misbehaves:
 *
 *   garbage     random bytes, now and then starting with a valid magic
 *   truncated   HELLO, then a frame cut off in its header or payload
 *   mutated     HELLO, ALLOC, then a stream of frames (WRITE, READ, FREE,
 *               ALLOC, STAT, PING, AUTH, HELLO) to real and made-up
 *               handles, a third of them with bytes changed
 *   abandoned   a valid session that allocates and writes, then vanishes
 *               (half of them with a TCP reset)
 *   deaf        pipelines PINGs and never reads a reply
 *   deaf reader (-R N, on top of the others) a valid session that
 *               allocates a chunk, writes it, then pipelines READs of it
 *               with a 4 KiB receive buffer and never reads a reply: the
 *               server must keep serving everyone else (issue 10 item 3)
 *   half-open   sends part of a header, or nothing at all, and keeps the
 *               connection open; the server must close them all, within
 *               -w SECS of the start
 *
 * Deaf and half-open connections are held open until the end: with -r
 * READY -W GO, READY is created once the half-open ones are closed and
 * the program waits (up to 120 s) for GO to exist before letting go of
 * the rest, so that a scenario can check that the server dropped every
 * session by itself (a deaf connection may not see the server's FIN:
 * it sits behind replies the client never reads).
 *
 * Frames are built with include/virgo_wire.h.  Against a server with a
 * key, everything after HELLO is refused (PERM) and AUTH gets a random
 * MAC.  At the end one clean session must still work (HELLO, ALLOC, WRITE,
 * READ of the same bytes, FREE, STAT showing nothing lent to it), unless
 * the server wants a key.
 *
 *   virgo_hostile -a ADDR -p PORT [-s SEED] [-n CONNECTIONS]
 *                 [-H HALF_OPEN] [-R DEAF_READERS] [-w SECS]
 *                 [-r READY -W GO]
 *
 * Exit status: 0; 1 the clean session failed; 3 a half-open connection
 * was still open after SECS; 2 usage or a local error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <virgo_wire.h>

#define MAX_FRAME	(64 * 1024)
#define MAX_HANDLES	64

static struct sockaddr_in target;
static u64 rng;
static bool auth_required;
static bool small_rcvbuf;

static struct {
	unsigned long conns[6];
	unsigned long frames;
	unsigned long mutated;
	unsigned long bytes_out;
	unsigned long bytes_in;
	unsigned long closed_by_server;
	unsigned long connect_failed;
} st;

static const char *const kind_names[] = {
	"garbage", "truncated", "mutated", "abandoned", "deaf", "half-open",
};

/* fprintf(), named like a log function for checkpatch's sake. */
static void file_info(FILE *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
}

#define hostile_info(...)	file_info(stdout, __VA_ARGS__)

static u64 rnd(void)
{
	u64 z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static u32 rnd_below(u32 n)
{
	return n ? rnd() % n : 0;
}

static void rnd_fill(u8 *p, size_t n)
{
	while (n--)
		*p++ = rnd();
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- sockets -------------------------------------------------------- */

static int conn_open(void)
{
	struct pollfd p;
	int fd, one = 1, err = 0;
	socklen_t len = sizeof(err);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (small_rcvbuf) {
		int rcvbuf = 4096;

		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	}
	if (connect(fd, (struct sockaddr *)&target, sizeof(target)) &&
	    errno != EINPROGRESS)
		goto fail;
	p.fd = fd;
	p.events = POLLOUT;
	if (poll(&p, 1, 3000) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err)
		goto fail;
	return fd;
fail:
	st.connect_failed++;
	close(fd);
	return -1;
}

/* Close with a reset instead of a FIN. */
static void conn_reset(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* Read whatever is there (up to @wait_ms for the first byte). */
static int conn_drain(int fd, int wait_ms, u8 *buf, size_t cap,
		      size_t *got)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	u8 scratch[4096];
	ssize_t n;

	if (got)
		*got = 0;
	if (poll(&p, 1, wait_ms) < 0)
		return -1;
	for (;;) {
		u8 *dst = buf ? buf + (got ? *got : 0) : scratch;
		size_t room = buf ? cap - (got ? *got : 0) : sizeof(scratch);

		if (!room) {
			dst = scratch;
			room = sizeof(scratch);
		}
		n = recv(fd, dst, room, MSG_DONTWAIT);
		if (n > 0) {
			st.bytes_in += n;
			if (buf && got && dst != scratch)
				*got += n;
			continue;
		}
		if (n == 0) {
			st.closed_by_server++;
			return 1;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == EINTR)
			continue;
		st.closed_by_server++;
		return 1;
	}
}

/* Send all of it (bounded wait); 1 when the server closed, -1 stuck. */
static int conn_send(int fd, const void *buf, size_t len)
{
	const u8 *p = buf;

	while (len) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			p += n;
			len -= n;
			st.bytes_out += n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* Make room: the server may be waiting for us. */
			if (conn_drain(fd, 0, NULL, 0, NULL) > 0)
				return 1;
			if (poll(&pf, 1, 2000) != 1)
				return -1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		st.closed_by_server++;
		return 1;
	}
	return 0;
}

/* Receive exactly @len bytes within @ms; 0, or -1. */
static int conn_recv(int fd, void *buf, size_t len, int ms)
{
	double end = now_s() + ms / 1e3;
	u8 *p = buf;

	while (len) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int left = (end - now_s()) * 1e3;
		ssize_t n;

		if (left <= 0 || poll(&pf, 1, left) != 1)
			return -1;
		n = recv(fd, p, len, MSG_DONTWAIT);
		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			return -1;
		}
		st.bytes_in += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* ---- frames --------------------------------------------------------- */

struct frame {
	u8 buf[MAX_FRAME];
	size_t len;
};

static void frame_put(struct frame *f, u8 op, const void *payload, u32 len,
		      u64 tag)
{
	virgo_wire_hdr_pack(f->buf, op, 0, len, 0, tag);
	if (len)
		memcpy(f->buf + VIRGO_WIRE_HDR_LEN, payload, len);
	f->len = VIRGO_WIRE_HDR_LEN + len;
}

static void frame_hello(struct frame *f)
{
	struct virgo_wire_hello_req h = { .ver_min = 1, .ver_max = 1 };
	u8 p[VIRGO_WIRE_HELLO_REQ_LEN];

	rnd_fill(h.nonce, sizeof(h.nonce));
	virgo_wire_put_hello_req(p, sizeof(p), &h);
	frame_put(f, VIRGO_OP_HELLO, p, sizeof(p), rnd());
}

/* A valid (or nearly valid) request of a random kind. */
static void frame_random(struct frame *f, const u64 *handles, u32 nr)
{
	u8 p[VIRGO_WIRE_RW_REQ_LEN + 8192];
	u64 h = nr && rnd_below(4) ? handles[rnd_below(nr)] : 1 + rnd_below(99);
	struct virgo_wire_rw rw;
	u32 sizes[4], n, i, len;
	u64 hs[4];

	switch (rnd_below(9)) {
	case 0:
		frame_hello(f);
		return;
	case 1:
		rnd_fill(p, VIRGO_WIRE_MAC_LEN);
		frame_put(f, VIRGO_OP_AUTH, p, VIRGO_WIRE_MAC_LEN, rnd());
		return;
	case 2:
		n = 1 + rnd_below(4);
		for (i = 0; i < n; i++)
			sizes[i] = 1 + rnd_below(64 * 1024);
		len = virgo_wire_put_alloc_req(p, sizeof(p), sizes, n);
		frame_put(f, VIRGO_OP_ALLOC, p, len, rnd());
		return;
	case 3:
		n = 1 + rnd_below(4);
		for (i = 0; i < n; i++)
			hs[i] = nr && rnd_below(2) ? handles[rnd_below(nr)] :
				1 + rnd_below(99);
		len = virgo_wire_put_free_req(p, sizeof(p), hs, n);
		frame_put(f, VIRGO_OP_FREE, p, len, rnd());
		return;
	case 4:
	case 5:
		rw.handle = h;
		rw.length = 1 + rnd_below(8192);
		rw.offset = rnd_below(4) ? rnd_below(8192) : rnd();
		virgo_wire_put_rw_req(p, sizeof(p), &rw);
		rnd_fill(p + VIRGO_WIRE_RW_REQ_LEN, rw.length);
		frame_put(f, VIRGO_OP_WRITE, p,
			  VIRGO_WIRE_RW_REQ_LEN + rw.length, rnd());
		return;
	case 6:
		rw.handle = h;
		rw.length = 1 + rnd_below(8192);
		rw.offset = rnd_below(4) ? rnd_below(8192) : rnd();
		virgo_wire_put_rw_req(p, sizeof(p), &rw);
		frame_put(f, VIRGO_OP_READ, p, VIRGO_WIRE_RW_REQ_LEN, rnd());
		return;
	case 7:
		frame_put(f, VIRGO_OP_STAT, NULL, 0, rnd());
		return;
	default:
		len = rnd_below(VIRGO_WIRE_PING_MAX + 1);
		rnd_fill(p, len);
		frame_put(f, VIRGO_OP_PING, p, len, rnd());
		return;
	}
}

/* Change a few bytes: anywhere, or in the header fields that matter. */
static void frame_mutate(struct frame *f)
{
	u32 n = 1 + rnd_below(4), i, at;

	st.mutated++;
	for (i = 0; i < n; i++) {
		switch (rnd_below(6)) {
		case 0:
			f->buf[rnd_below(f->len)] = rnd();
			break;
		case 1:
			f->buf[rnd_below(f->len)] ^= 1 << rnd_below(8);
			break;
		case 2:		/* len */
			put_unaligned_le32(rnd_below(2) ? (u32)rnd() :
					   f->len - VIRGO_WIRE_HDR_LEN +
					   rnd_below(9) - 4, f->buf + 8);
			break;
		case 3:		/* opcode, flags, version */
			at = 4 + rnd_below(4);
			f->buf[at] = rnd_below(2) ? rnd_below(12) : rnd();
			break;
		case 4:		/* status */
			put_unaligned_le32(rnd_below(14), f->buf + 12);
			break;
		default:	/* a count or a size in the payload */
			if (f->len >= VIRGO_WIRE_HDR_LEN + 8)
				put_unaligned_le32(rnd_below(2) ? (u32)rnd() :
						   rnd_below(70000),
						   f->buf + VIRGO_WIRE_HDR_LEN +
						   4 * rnd_below(2));
			break;
		}
	}
}

/*
 * HELLO and, for a server without a key, ALLOC: fills @handles with what
 * the server gave.  Return: handles got, or -1 if the session broke.
 */
static int session_start(int fd, u64 *handles, u32 want)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN], rep[8 + 8 * MAX_HANDLES];
	struct virgo_wire_limits lim;
	struct virgo_wire_hello_rep hr;
	struct virgo_wire_msg m;
	struct frame *f = malloc(sizeof(*f));
	u32 sizes[MAX_HANDLES], i;
	int ret = -1, len;

	if (!f)
		return -1;
	virgo_wire_limits_default(&lim);
	frame_hello(f);
	if (conn_send(fd, f->buf, f->len) ||
	    conn_recv(fd, hdr, sizeof(hdr), 3000) ||
	    virgo_wire_hdr_unpack(hdr, &m, &lim) || m.status ||
	    m.len != VIRGO_WIRE_HELLO_REP_LEN ||
	    conn_recv(fd, rep, m.len, 3000) ||
	    virgo_wire_check_rep(&m, rep, &lim))
		goto out;
	st.frames++;
	virgo_wire_get_hello_rep(rep, &hr);
	auth_required = hr.flags & VIRGO_HELLO_AUTH_REQUIRED;
	ret = 0;
	if (auth_required || !want)
		goto out;

	want = want > MAX_HANDLES ? MAX_HANDLES : want;
	for (i = 0; i < want; i++)
		sizes[i] = 4096 + rnd_below(60 * 1024);
	len = virgo_wire_put_alloc_req(rep, sizeof(rep), sizes, want);
	frame_put(f, VIRGO_OP_ALLOC, rep, len, 7);
	ret = -1;
	if (conn_send(fd, f->buf, f->len) ||
	    conn_recv(fd, hdr, sizeof(hdr), 3000) ||
	    virgo_wire_hdr_unpack(hdr, &m, &lim) || m.status ||
	    m.len != 8 + 8 * want || conn_recv(fd, rep, m.len, 3000) ||
	    virgo_wire_check_rep(&m, rep, &lim))
		goto out;
	st.frames++;
	for (i = 0; i < want; i++)
		handles[i] = virgo_wire_handle(rep, i);
	ret = want;
out:
	free(f);
	return ret;
}

/* ---- connection kinds ----------------------------------------------- */

static void do_garbage(int fd)
{
	struct frame *f = malloc(sizeof(*f));
	size_t len = 1 + rnd_below(rnd_below(4) ? 64 : 8192);

	if (!f)
		return;
	rnd_fill(f->buf, len);
	/* A good magic now and then gets the parser one step further. */
	if (len >= 4 && rnd_below(2))
		put_unaligned_le32(VIRGO_WIRE_MAGIC, f->buf);
	if (len >= 5 && rnd_below(2))
		f->buf[4] = VIRGO_WIRE_VERSION;
	if (!conn_send(fd, f->buf, len))
		st.frames++;
	conn_drain(fd, 100, NULL, 0, NULL);
	free(f);
	close(fd);
}

static void do_truncated(int fd)
{
	struct frame *f = malloc(sizeof(*f));
	u64 handles[4];
	int nr;

	if (!f)
		return;
	nr = session_start(fd, handles, rnd_below(2) ? 4 : 0);
	if (nr >= 0) {
		frame_random(f, handles, nr);
		/* Cut in the header or in the payload. */
		conn_send(fd, f->buf, rnd_below(f->len));
		st.frames++;
	}
	if (rnd_below(2))
		conn_reset(fd);
	else
		close(fd);
	free(f);
}

static void do_mutated(int fd)
{
	struct frame *f = malloc(sizeof(*f));
	u64 handles[16];
	int nr, i, frames = 5 + rnd_below(40);

	if (!f)
		return;
	nr = session_start(fd, handles, 1 + rnd_below(16));
	for (i = 0; nr >= 0 && i < frames; i++) {
		frame_random(f, handles, nr);
		if (rnd_below(3) == 0)
			frame_mutate(f);
		if (conn_send(fd, f->buf, f->len))
			break;
		st.frames++;
		if (conn_drain(fd, 0, NULL, 0, NULL) > 0)
			break;
	}
	conn_drain(fd, 50, NULL, 0, NULL);
	close(fd);
	free(f);
}

static void do_abandoned(int fd)
{
	struct frame *f = malloc(sizeof(*f));
	u64 handles[32];
	int nr, i;

	if (!f)
		return;
	nr = session_start(fd, handles, 1 + rnd_below(32));
	for (i = 0; i < nr; i++) {
		u8 p[VIRGO_WIRE_RW_REQ_LEN + 4096];
		struct virgo_wire_rw rw = {
			.handle = handles[i], .offset = 0, .length = 4096,
		};

		virgo_wire_put_rw_req(p, sizeof(p), &rw);
		rnd_fill(p + VIRGO_WIRE_RW_REQ_LEN, 4096);
		frame_put(f, VIRGO_OP_WRITE, p, sizeof(p), i);
		if (conn_send(fd, f->buf, f->len))
			break;
		st.frames++;
	}
	if (rnd_below(2))
		conn_reset(fd);
	else
		close(fd);
	free(f);
}

/*
 * Pipelined PINGs, no reply ever read, connection kept open: the server
 * blocks sending replies, and must give up after its io_timeout.
 * Returns the descriptor to hold.
 */
static int do_deaf(int fd)
{
	struct frame *f = malloc(sizeof(*f));
	int i, n = 20000;

	if (!f)
		return fd;
	if (session_start(fd, NULL, 0) >= 0) {
		for (i = 0; i < n; i++) {
			u8 p[VIRGO_WIRE_PING_MAX];

			rnd_fill(p, sizeof(p));
			frame_put(f, VIRGO_OP_PING, p, sizeof(p), i);
			if (send(fd, f->buf, f->len,
				 MSG_NOSIGNAL | MSG_DONTWAIT) !=
			    (ssize_t)f->len)
				break;
			st.bytes_out += f->len;
			st.frames++;
		}
	}
	free(f);
	return fd;
}

/*
 * A session with one chunk, written, then READs of it pipelined until the
 * socket takes no more (at most 256), no reply ever read.  Returns the
 * descriptor to hold, or -1.
 */
static int do_deaf_reader(int fd)
{
	u8 p[VIRGO_WIRE_RW_REQ_LEN + 4096];
	struct virgo_wire_rw rw = { .length = 4096 };
	struct frame *f = malloc(sizeof(*f));
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct virgo_wire_limits lim;
	struct virgo_wire_msg m;
	u64 handle;
	int i;

	virgo_wire_limits_default(&lim);
	if (!f || session_start(fd, &handle, 1) != 1)
		goto fail;
	rw.handle = handle;
	virgo_wire_put_rw_req(p, sizeof(p), &rw);
	rnd_fill(p + VIRGO_WIRE_RW_REQ_LEN, 4096);
	frame_put(f, VIRGO_OP_WRITE, p, sizeof(p), 1);
	if (conn_send(fd, f->buf, f->len) ||
	    conn_recv(fd, hdr, sizeof(hdr), 3000) ||
	    virgo_wire_hdr_unpack(hdr, &m, &lim) || m.status)
		goto fail;
	st.frames++;
	frame_put(f, VIRGO_OP_READ, p, VIRGO_WIRE_RW_REQ_LEN, 2);
	for (i = 0; i < 256; i++) {
		if (send(fd, f->buf, f->len, MSG_NOSIGNAL | MSG_DONTWAIT) !=
		    (ssize_t)f->len)
			break;
		st.bytes_out += f->len;
		st.frames++;
	}
	free(f);
	return fd;
fail:
	free(f);
	close(fd);
	return -1;
}

/* Did the server close (FIN or reset) a connection we do not read? */
static bool conn_closed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) == 1 &&
	       (p.revents & (POLLERR | POLLHUP | POLLRDHUP));
}

/* ---- the clean session at the end ----------------------------------- */

static int clean_session(void)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN], p[VIRGO_WIRE_RW_REQ_LEN + 4096];
	u8 data[4096], back[4096], rep[64];
	struct virgo_wire_limits lim;
	struct virgo_wire_stat sr;
	struct virgo_wire_msg m;
	struct virgo_wire_rw rw;
	struct frame *f = malloc(sizeof(*f));
	u64 handle;
	int fd, ret = 1, len;

	virgo_wire_limits_default(&lim);
	fd = conn_open();
	if (fd < 0 || !f || session_start(fd, &handle, 1) != 1) {
		hostile_info("clean session: %s\n", auth_required ?
			     "the server wants a key: skipped" :
			     "HELLO or ALLOC failed");
		ret = auth_required ? 0 : 1;
		goto out;
	}
	rnd_fill(data, sizeof(data));
	rw.handle = handle;
	rw.offset = 0;
	rw.length = sizeof(data);
	virgo_wire_put_rw_req(p, sizeof(p), &rw);
	memcpy(p + VIRGO_WIRE_RW_REQ_LEN, data, sizeof(data));
	frame_put(f, VIRGO_OP_WRITE, p, sizeof(p), 1);
	if (conn_send(fd, f->buf, f->len) ||
	    conn_recv(fd, hdr, sizeof(hdr), 3000) ||
	    virgo_wire_hdr_unpack(hdr, &m, &lim) || m.status || m.len)
		goto fail;
	frame_put(f, VIRGO_OP_READ, p, VIRGO_WIRE_RW_REQ_LEN, 2);
	if (conn_send(fd, f->buf, f->len) ||
	    conn_recv(fd, hdr, sizeof(hdr), 3000) ||
	    virgo_wire_hdr_unpack(hdr, &m, &lim) || m.status ||
	    m.len != sizeof(back) || conn_recv(fd, back, sizeof(back), 3000) ||
	    memcmp(data, back, sizeof(back)))
		goto fail;
	len = virgo_wire_put_free_req(p, sizeof(p), &handle, 1);
	frame_put(f, VIRGO_OP_FREE, p, len, 3);
	if (conn_send(fd, f->buf, f->len) ||
	    conn_recv(fd, hdr, sizeof(hdr), 3000) ||
	    virgo_wire_hdr_unpack(hdr, &m, &lim) || m.status ||
	    m.len != VIRGO_WIRE_FREE_REP_LEN ||
	    conn_recv(fd, rep, m.len, 3000) || virgo_wire_freed(rep) != 1)
		goto fail;
	frame_put(f, VIRGO_OP_STAT, NULL, 0, 4);
	if (conn_send(fd, f->buf, f->len) ||
	    conn_recv(fd, hdr, sizeof(hdr), 3000) ||
	    virgo_wire_hdr_unpack(hdr, &m, &lim) || m.status ||
	    m.len != VIRGO_WIRE_STAT_REP_LEN ||
	    conn_recv(fd, rep, m.len, 3000) ||
	    virgo_wire_check_rep(&m, rep, &lim))
		goto fail;
	virgo_wire_get_stat_rep(rep, &sr);
	hostile_info("clean session: ALLOC, WRITE, READ (same bytes), FREE ok; server lends %llu bytes in %llu chunks, %llu sessions\n",
		     (unsigned long long)sr.lent_bytes,
		     (unsigned long long)sr.lent_chunks,
		     (unsigned long long)sr.sessions);
	ret = sr.session_bytes || sr.session_chunks;
	goto out;
fail:
	hostile_info("clean session: a request failed\n");
out:
	if (fd >= 0)
		close(fd);
	free(f);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned int conns = 200, half = 16, wait_s = 0, readers = 0, nheld, i;
	const char *addr = NULL, *ready = NULL, *go = NULL;
	int *held, c, port = 0, open_left, ret = 0;
	u64 seed = time(NULL) ^ getpid();
	double t0 = now_s(), t_half;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt(argc, argv, "a:p:s:n:H:w:r:W:R:")) != -1) {
		switch (c) {
		case 'R':
			readers = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			ready = optarg;
			break;
		case 'W':
			go = optarg;
			break;
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = atoi(optarg);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'n':
			conns = strtoul(optarg, NULL, 0);
			break;
		case 'H':
			half = strtoul(optarg, NULL, 0);
			break;
		case 'w':
			wait_s = strtoul(optarg, NULL, 0);
			break;
		default:
			return 2;
		}
	}
	target.sin_family = AF_INET;
	target.sin_port = htons(port);
	if (!addr || !port || inet_pton(AF_INET, addr, &target.sin_addr) != 1) {
		file_info(stderr,
			  "usage: virgo_hostile -a ADDR -p PORT [-s SEED] [-n CONNS] [-H HALF_OPEN] [-R DEAF_READERS] [-w SECS] [-r READY -W GO]\n");
		return 2;
	}
	rng = seed;
	hostile_info("hostile: seed %llu, %u connections, %u half-open, against %s:%d\n",
		     (unsigned long long)seed, conns, half, addr, port);

	/* Half-open first, so that they sit there through everything else. */
	held = calloc(half + conns + readers + 1, sizeof(*held));
	if (!held)
		return 2;
	nheld = half;
	for (i = 0; i < half; i++) {
		u8 part[VIRGO_WIRE_HDR_LEN];

		held[i] = conn_open();
		if (held[i] < 0)
			continue;
		st.conns[5]++;
		/* Nothing, part of a header, or a header without payload. */
		virgo_wire_hdr_pack(part, VIRGO_OP_PING, 0, 16, 0, i);
		if (i % 3 == 1)
			conn_send(held[i], part, 1 + rnd_below(23));
		else if (i % 3 == 2)
			conn_send(held[i], part, sizeof(part));
	}

	/* Deaf readers next: held to the end like the deaf ones. */
	small_rcvbuf = true;
	for (i = 0; i < readers; i++) {
		int fd = conn_open();

		if (fd >= 0)
			fd = do_deaf_reader(fd);
		if (fd < 0) {
			hostile_info("hostile: deaf reader %u could not start its session\n",
				     i);
			return 2;
		}
		held[nheld++] = fd;
	}
	small_rcvbuf = false;
	if (readers)
		hostile_info("hostile: %u deaf readers hold their READ replies\n",
			     readers);

	for (i = 0; i < conns; i++) {
		unsigned int kind = rnd_below(100);
		int fd = conn_open();

		if (fd < 0)
			continue;
		kind = kind < 20 ? 0 : kind < 40 ? 1 : kind < 80 ? 2 :
		       kind < 95 ? 3 : 4;
		st.conns[kind]++;
		switch (kind) {
		case 0:
			do_garbage(fd);
			break;
		case 1:
			do_truncated(fd);
			break;
		case 2:
			do_mutated(fd);
			break;
		case 3:
			do_abandoned(fd);
			break;
		default:
			held[nheld++] = do_deaf(fd);
			break;
		}
	}
	hostile_info("hostile: %.1f s, frames %lu (%lu mutated), %lu bytes out, %lu bytes in, %lu closes seen, %lu connects failed\n",
		     now_s() - t0, st.frames, st.mutated, st.bytes_out,
		     st.bytes_in, st.closed_by_server, st.connect_failed);
	for (i = 0; i < 6; i++)
		hostile_info("hostile: %-10s %lu\n", kind_names[i],
			     st.conns[i]);

	/* The server must close every half-open connection by itself. */
	t_half = now_s();
	do {
		open_left = 0;
		for (i = 0; i < half; i++) {
			if (held[i] < 0)
				continue;
			if (conn_closed(held[i])) {
				close(held[i]);
				held[i] = -1;
				continue;
			}
			open_left++;
		}
		if (open_left && now_s() - t0 < wait_s)
			usleep(200 * 1000);
	} while (open_left && now_s() - t0 < wait_s);
	if (wait_s)
		hostile_info("hostile: half-open: %d of %u still open, %.1f s after the fuzzing, %.1f s after the start\n",
			     open_left, half, now_s() - t_half, now_s() - t0);
	if (wait_s && open_left)
		ret = 3;

	/* Hold the rest (deaf ones) while the scenario looks. */
	if (ready && go) {
		close(open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
		t_half = now_s();
		while (access(go, F_OK) && now_s() - t_half < 120)
			usleep(100 * 1000);
	}
	for (i = 0; i < nheld; i++)
		if (held[i] >= 0)
			close(held[i]);
	free(held);

	if (clean_session())
		ret = 1;
	return ret;
}
