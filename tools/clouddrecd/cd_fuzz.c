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
 * Checked, besides ASan/UBSan: every byte the session queues is a
 * well-formed reply (virgo_wire_hdr_unpack() + virgo_wire_check_rep()
 * with the server's limits); after the session ends, the server lends
 * nothing, has no session and no budget in use; the session's queue
 * never grows past out_high + one largest reply.
 */
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

int cd_fuzz_one_input(const u8 *data, size_t size)
{
	static struct cd_server srv;
	struct cd_config cfg;
	struct cd_session *s;
	size_t off = 1;
	u32 rng;
	int ret = 0;

	if (size < 1)
		return 0;
	cd_config_default(&cfg);
	cfg.max_memory = 1 << 20;
	cfg.max_chunk = 8192;
	cfg.max_batch = 64;
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
	s = cd_session_new(&srv, 0);
	if (!s)
		return 0;
	carry_len = 0;
	carry_lim = &srv.lim;
	rng = data[0] * 2654435761u + 1;
	tx_rng = rng;
	/* Bit 1: a direct send path (partial sends), as in the daemon. */
	if (data[0] & 2) {
		s->tx = cd_fuzz_tx;
		s->tx_arg = NULL;
	}
	while (off < size && ret == 0) {
		size_t piece, used = 0;

		rng = rng * 1103515245u + 12345u;
		piece = 1 + (rng >> 16) % 4096;
		if (piece > size - off)
			piece = size - off;
		ret = cd_session_input(s, data + off, piece, &used);
		off += used;
		if (cd_session_pending(s) > srv.out_high +
		    VIRGO_WIRE_HDR_LEN + srv.lim.max_payload)
			cd_fuzz_die("output queue over its bound");
		if (used < piece && !cd_session_blocked(s) && ret == 0)
			cd_fuzz_die("input refused while not blocked");
		/* The client reads some, or all if we are stuck. */
		rng = rng * 1103515245u + 12345u;
		cd_fuzz_drain(s, cd_session_blocked(s) ? SIZE_MAX :
			      (rng >> 16) % 65536);
		s->now_ms += 1;
	}
	cd_fuzz_drain(s, SIZE_MAX);
	if (carry_len && ret <= 0 && off == size)
		cd_fuzz_die("half a reply queued");
	cd_session_free(s);
	if (atomic_load(&srv.lent_bytes) || atomic_load(&srv.lent_chunks) ||
	    atomic_load(&srv.budget) || atomic_load(&srv.sessions))
		cd_fuzz_die("server state not back to zero");
	return 0;
}
