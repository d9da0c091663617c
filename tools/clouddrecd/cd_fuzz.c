// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer over virgo-clouddrecd's frame handling (cd_proto.c), in
 * process, no sockets: the input is a byte stream from one client.
 *
 * Byte 0 picks the setup: bit 0 a server with a key (only the pre-AUTH
 * paths are reachable then: the nonces are random), bit 1 a direct send
 * path that takes a random part of each large reply (the rest is
 * queued), and all of it seeds how the stream is cut into pieces and
 * when the output queue is drained.
 * The rest is fed to a session exactly as the event loop would.
 *
 * Bit 2 makes the stream several connections, some of which end while
 * others are open, so orphans, RESUME (OK, BUSY, NOENT), eviction and
 * expiry are reached (see CD_FUZZ_CUT below).
 *
 * Bit 4: a client that reads nothing until the session stops executing
 * its requests.
 *
 * Checked, besides ASan/UBSan: every byte a session queues is a
 * well-formed reply (virgo_wire_hdr_unpack() + virgo_wire_check_rep()
 * with the server's limits); once every connection has ended, no
 * session is left and at most max_sessions orphans; after
 * cd_server_fini() the server lends nothing and has no budget in use;
 * a session's queue never grows past out_high + one largest reply, nor
 * past CD_OUT_PREAUTH + one HELLO reply before its handshake is done.
 */
#define _GNU_SOURCE	/* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cd.h"

static void cd_fuzz_die(const char *what)
{
	fprintf(stderr, "cd_fuzz: check failed: %s\n", what);
	abort();
}

/* What "went out" so far, not yet a whole frame; replies are checked. */
static u8 *carry;
static size_t carry_len;
static const struct virgo_wire_limits *carry_lim;
static u32 tx_rng;

/* Bytes leave the server, in order: check every whole reply. */
static void cd_fuzz_out(const u8 *p, size_t n)
{
	const struct virgo_wire_limits *lim = carry_lim;

	while (n) {
		size_t room = VIRGO_WIRE_HDR_LEN + lim->max_payload - carry_len;
		size_t k = n < room ? n : room;
		struct virgo_wire_msg m;

		memcpy(carry + carry_len, p, k);
		carry_len += k;
		p += k;
		n -= k;
		while (carry_len >= VIRGO_WIRE_HDR_LEN) {
			const u8 *pl;
			size_t flen;

			if (virgo_wire_hdr_unpack(carry, &m, lim) ||
			    !virgo_wire_is_reply(&m))
				cd_fuzz_die("reply header");
			flen = VIRGO_WIRE_HDR_LEN + (size_t)m.len;
			if (carry_len < flen)
				break;
			pl = m.len ? carry + VIRGO_WIRE_HDR_LEN : NULL;
			if (virgo_wire_check_rep(&m, pl, lim))
				cd_fuzz_die("reply payload");
			memmove(carry, carry + flen, carry_len - flen);
			carry_len -= flen;
		}
	}
}

/* The session's direct send: the "socket" takes a random prefix. */
static ssize_t cd_fuzz_tx(void *arg, const struct iovec *iov, int nr)
{
	size_t total = 0, take;
	ssize_t sent = 0;
	int i;

	(void)arg;
	for (i = 0; i < nr; i++)
		total += iov[i].iov_len;
	tx_rng = tx_rng * 1103515245u + 12345u;
	take = (tx_rng >> 8) % 3 ? (tx_rng >> 8) % (total + 1) : total;
	for (i = 0; i < nr && take; i++) {
		size_t k = iov[i].iov_len < take ? iov[i].iov_len : take;

		cd_fuzz_out(iov[i].iov_base, k);
		take -= k;
		sent += (ssize_t)k;
	}
	return sent;
}

/* The client reads @n queued bytes (all with SIZE_MAX). */
static void cd_fuzz_drain(struct cd_session *s, size_t n)
{
	while (n && cd_session_pending(s)) {
		size_t take = cd_session_pending(s);

		if (take > n)
			take = n;
		n -= take;
		cd_fuzz_out(s->out + s->out_off, take);
		cd_session_sent(s, take);
	}
}

/*
 * Bit 2 of byte 0: several connections.  The stream is cut at every
 * CD_FUZZ_CUT; the byte after a cut says what happens before the next
 * connection starts: bit 0 the current one ends (its session may become
 * an orphan), else it stays open (at most CD_FUZZ_CONNS; the oldest ends
 * beyond); bit 1 the clock jumps past orphan_timeout (orphans expire).
 * Resume ids are 1, 2, 3, ... and tokens zeroes (CD_FUZZ_HANDLES), so a
 * stream can RESUME an earlier connection's session.
 */
#define CD_FUZZ_CUT	"~CUT"
#define CD_FUZZ_CUT_LEN	4
#define CD_FUZZ_CONNS	3	/* = max_sessions */

/* Feed @n bytes to @s as the loop would.  Returns cd_session_input()'s. */
static int cd_fuzz_feed(struct cd_server *srv, struct cd_session *s,
			const u8 *data, size_t n, u32 *rng, bool deaf)
{
	size_t off = 0;
	int ret = 0;

	while (off < n && ret == 0) {
		size_t piece, used = 0;

		*rng = *rng * 1103515245u + 12345u;
		piece = 1 + (*rng >> 16) % 4096;
		if (piece > n - off)
			piece = n - off;
		ret = cd_session_input(s, data + off, piece, &used);
		off += used;
		if (cd_session_pending(s) > srv->out_high +
		    VIRGO_WIRE_HDR_LEN + srv->lim.max_payload)
			cd_fuzz_die("output queue over its bound");
		if (!cd_session_ready(s) &&
		    cd_session_pending(s) > CD_OUT_PREAUTH +
		    VIRGO_WIRE_HDR_LEN + VIRGO_WIRE_HELLO_REP_MAX)
			cd_fuzz_die("pre-auth output queue over its bound");
		if (used < piece && !cd_session_blocked(s) && ret == 0)
			cd_fuzz_die("input refused while not blocked");
		/* The client reads some, or all if we are stuck. */
		*rng = *rng * 1103515245u + 12345u;
		cd_fuzz_drain(s, cd_session_blocked(s) ? SIZE_MAX :
			      deaf ? 0 : (*rng >> 16) % 65536);
		s->now_ms += 1;
	}
	cd_fuzz_drain(s, SIZE_MAX);
	if (carry_len && ret <= 0 && off == n)
		cd_fuzz_die("half a reply queued");
	carry_len = 0;	/* the next connection's replies start afresh */
	return ret;
}

int cd_fuzz_one_input(const u8 *data, size_t size)
{
	static struct cd_server srv;
	struct cd_session *conns[CD_FUZZ_CONNS];
	struct cd_config cfg;
	size_t off = 1;
	int nr = 0, i, ret;
	u64 now = 0;
	u32 rng;

	if (size < 1)
		return 0;
	cd_config_default(&cfg);
	cfg.max_memory = 1 << 20;
	cfg.max_chunk = 8192;
	cfg.max_batch = 64;
	cfg.max_sessions = 3;	/* orphans past it evict the oldest */
	if (data[0] & 1) {
		memcpy(cfg.psk, "fuzz-key", 8);
		cfg.psk_len = 8;
	}
	memset(&srv, 0, sizeof(srv));
	if (cd_server_init(&srv, &cfg))
		cd_fuzz_die("config");
	if (!carry)
		carry = malloc(VIRGO_WIRE_HDR_LEN +
			       VIRGO_WIRE_MAX_PAYLOAD_LIMIT);
	carry_len = 0;
	carry_lim = &srv.lim;
	rng = data[0] * 2654435761u + 1;
	tx_rng = rng;
	while (off < size) {
		const u8 *cut = NULL;
		size_t n = size - off;
		struct cd_session *s;
		u8 ctl = 1;

		if (data[0] & 4) {
			cut = memmem(data + off, n, CD_FUZZ_CUT,
				     CD_FUZZ_CUT_LEN);
			if (cut)
				n = (size_t)(cut - (data + off));
		}
		if (nr == CD_FUZZ_CONNS) {
			cd_session_end(conns[0], true, now);
			memmove(conns, conns + 1, sizeof(conns[0]) * --nr);
		}
		s = cd_session_new(&srv, now);
		if (!s)
			break;	/* max_sessions open */
		conns[nr++] = s;
		/* Bit 1: a direct send path (partial sends), as the daemon. */
		if (data[0] & 2) {
			s->tx = cd_fuzz_tx;
			s->tx_arg = NULL;
		}
		ret = cd_fuzz_feed(&srv, s, data + off, n, &rng,
				   data[0] & 0x10);
		now = s->now_ms;
		if (ret) {
			/* The session asked to be closed. */
			cd_session_end(s, true, now);
			nr--;
			s = NULL;
		}
		off += n;
		if (cut) {
			off += CD_FUZZ_CUT_LEN;
			if (off < size)
				ctl = data[off++];
		}
		/* Sessions a RESUME kicked close, as the loop does. */
		for (i = 0; i < nr; i++) {
			if (!atomic_load(&conns[i]->kicked))
				continue;
			if (conns[i] == s)
				s = NULL;
			cd_session_end(conns[i], true, now);
			memmove(conns + i, conns + i + 1,
				sizeof(conns[0]) * (size_t)(nr - i - 1));
			nr--;
			i--;
		}
		if ((ctl & 1) && s && nr && conns[nr - 1] == s) {
			cd_session_end(s, true, now);
			nr--;
		}
		if (ctl & 2)
			now += cfg.orphan_timeout_ms;
		cd_orphans_expire(&srv, now);
		for (i = 0; i < nr; i++)
			conns[i]->now_ms = now;
	}
	for (i = 0; i < nr; i++)
		cd_session_end(conns[i], true, now);
	/* CD_FUZZ_STATS=1 ./cd_fuzz SEED: what a seed reaches. */
	if (getenv("CD_FUZZ_STATS"))
		for (i = 0; i < CD_STAT_NR; i++)
			if (atomic_load(&srv.stats[i]))
				fprintf(stderr, "%s %llu\n", cd_stat_names[i],
					atomic_load(&srv.stats[i]));
	if (atomic_load(&srv.sessions))
		cd_fuzz_die("a session left after every connection ended");
	if (atomic_load(&srv.orphans) > cfg.max_sessions)
		cd_fuzz_die("more orphans than max_sessions");
	cd_server_fini(&srv);
	if (atomic_load(&srv.lent_bytes) || atomic_load(&srv.lent_chunks) ||
	    atomic_load(&srv.budget) || atomic_load(&srv.orphans))
		cd_fuzz_die("server state not back to zero");
	return 0;
}
