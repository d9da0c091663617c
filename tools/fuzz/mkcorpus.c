// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Write the seed corpus of the wire fuzzer: valid frames of every opcode,
 * requests and replies, alone and as whole sessions, in the input layout
 * of wire_fuzz.c (one limits byte, then frames).  The output is
 * deterministic, so the committed corpus/ can be regenerated identically:
 *
 *   mkcorpus DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <virgo_wire.h>

#define SEED_MAX	2048

struct seed {
	u8 buf[SEED_MAX];
	size_t len;
	struct virgo_wire_limits lim;
};

static const char *outdir;
static unsigned int written;

/* Mode 0: default limits; 1: 96/64/4; 3: set s->lim and write it. */
static void seed_start(struct seed *s, u8 mode)
{
	static const struct virgo_wire_limits small = { 96, 64, 4 };

	s->buf[0] = mode;
	s->len = 1;
	virgo_wire_limits_default(&s->lim);
	if (mode == 1)
		s->lim = small;
}

static void *seed_room(struct seed *s, size_t n)
{
	void *p = s->buf + s->len;

	if (n > SEED_MAX - s->len) {
		fprintf(stderr, "mkcorpus: seed too large\n");
		exit(1);
	}
	s->len += n;
	return p;
}

/* Append a frame whose payload is @len bytes at @payload. */
static void seed_frame(struct seed *s, u8 op, u16 flags, u32 status, u64 tag,
		       const void *payload, u32 len)
{
	u8 *hdr = seed_room(s, VIRGO_WIRE_HDR_LEN);
	struct virgo_wire_msg m;
	int ret;

	virgo_wire_hdr_pack(hdr, op, flags, len, status, tag);
	if (len)
		memcpy(seed_room(s, len), payload, len);

	/* Seeds are valid frames, or they would seed nothing useful. */
	ret = virgo_wire_hdr_unpack(hdr, &m, &s->lim);
	if (!ret && virgo_wire_is_reply(&m))
		ret = virgo_wire_check_rep(&m, hdr + VIRGO_WIRE_HDR_LEN,
					   &s->lim);
	else if (!ret)
		ret = virgo_wire_check_req(&m, hdr + VIRGO_WIRE_HDR_LEN,
					   &s->lim);
	if (ret) {
		fprintf(stderr, "mkcorpus: invalid %s frame: %d\n",
			virgo_wire_op_name(op), ret);
		exit(1);
	}
}

static void seed_write(const struct seed *s, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f)) {
		perror(path);
		exit(1);
	}
	written++;
}

/* One frame alone, default limits. */
static void one(const char *name, u8 op, u16 flags, u32 status,
		const void *payload, u32 len)
{
	struct seed s;

	seed_start(&s, 0);
	seed_frame(&s, op, flags, status, 1, payload, len);
	seed_write(&s, name);
}

int main(int argc, char **argv)
{
	static const u32 sizes[] = { 4096, 65536, VIRGO_WIRE_DEF_MAX_CHUNK };
	static const u64 handles[] = { 0x100000001ULL, 0x100000002ULL,
				       0x100000003ULL };
	struct virgo_wire_hello_req hq = { .ver_min = 1, .ver_max = 1 };
	struct virgo_wire_hello_rep hp = {
		.version = 1, .flags = VIRGO_HELLO_AUTH_REQUIRED,
		.max_payload = VIRGO_WIRE_DEF_MAX_PAYLOAD,
		.max_chunk = VIRGO_WIRE_DEF_MAX_CHUNK,
		.max_batch = VIRGO_WIRE_DEF_MAX_BATCH,
		.max_inflight = VIRGO_WIRE_DEF_MAX_INFLIGHT,
		.capacity = 1ULL << 30, .free = 1ULL << 29,
	};
	struct virgo_wire_stat st = {
		.capacity = 1ULL << 30, .free = 1ULL << 29,
		.lent_bytes = 1ULL << 29, .lent_chunks = 512, .sessions = 2,
		.session_bytes = 1 << 20, .session_chunks = 1, .requests = 99,
	};
	struct virgo_wire_rw rw = { .handle = 0x100000001ULL, .offset = 100,
				    .length = 32 };
	u8 mac[VIRGO_WIRE_MAC_LEN], data[64], buf[256];
	struct seed s;
	unsigned int i;
	int n;

	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus DIR\n");
		return 2;
	}
	outdir = argv[1];
	for (i = 0; i < VIRGO_WIRE_NONCE_LEN; i++) {
		hq.nonce[i] = (u8)(0xc0 + i);
		hp.nonce[i] = (u8)(0x50 + i);
		mac[i] = (u8)(i * 7);
	}
	for (i = 0; i < sizeof(data); i++)
		data[i] = (u8)i;

	/* Each message alone. */
	n = virgo_wire_put_hello_req(buf, sizeof(buf), &hq);
	one("req-hello", VIRGO_OP_HELLO, 0, 0, buf, n);
	n = virgo_wire_put_hello_rep(buf, sizeof(buf), &hp);
	one("rep-hello", VIRGO_OP_HELLO, VIRGO_WF_REPLY, 0, buf, n);
	n = virgo_wire_put_auth(buf, sizeof(buf), mac);
	one("req-auth", VIRGO_OP_AUTH, 0, 0, buf, n);
	one("rep-auth", VIRGO_OP_AUTH, VIRGO_WF_REPLY, 0, buf, n);
	n = virgo_wire_put_alloc_req(buf, sizeof(buf), sizes, 3);
	one("req-alloc", VIRGO_OP_ALLOC, 0, 0, buf, n);
	n = virgo_wire_put_alloc_rep(buf, sizeof(buf), handles, 3);
	one("rep-alloc", VIRGO_OP_ALLOC, VIRGO_WF_REPLY, 0, buf, n);
	n = virgo_wire_put_free_req(buf, sizeof(buf), handles, 3);
	one("req-free", VIRGO_OP_FREE, 0, 0, buf, n);
	n = virgo_wire_put_free_rep(buf, sizeof(buf), 3);
	one("rep-free", VIRGO_OP_FREE, VIRGO_WF_REPLY, 0, buf, n);
	n = virgo_wire_put_rw_req(buf, sizeof(buf), &rw);
	memcpy(buf + n, data, rw.length);
	one("req-write", VIRGO_OP_WRITE, 0, 0, buf, n + rw.length);
	one("rep-write", VIRGO_OP_WRITE, VIRGO_WF_REPLY, 0, NULL, 0);
	one("req-read", VIRGO_OP_READ, 0, 0, buf, n);
	one("rep-read", VIRGO_OP_READ, VIRGO_WF_REPLY, 0, data, rw.length);
	one("req-stat", VIRGO_OP_STAT, 0, 0, NULL, 0);
	n = virgo_wire_put_stat_rep(buf, sizeof(buf), &st);
	one("rep-stat", VIRGO_OP_STAT, VIRGO_WF_REPLY, 0, buf, n);
	one("req-ping", VIRGO_OP_PING, 0, 0, data, 8);
	one("rep-ping", VIRGO_OP_PING, VIRGO_WF_REPLY, 0, data, 8);
	one("rep-error-nomem", VIRGO_OP_ALLOC, VIRGO_WF_REPLY, VIRGO_ST_NOMEM,
	    NULL, 0);
	one("rep-error-perm", VIRGO_OP_READ, VIRGO_WF_REPLY, VIRGO_ST_PERM,
	    NULL, 0);

	/* Capability RESUME: HELLO offering it, 112-byte reply, RESUME. */
	hq.caps = VIRGO_CAP_RESUME;
	hp.caps = VIRGO_CAP_RESUME;
	hp.resume_id = 0x1234abcdULL;
	for (i = 0; i < VIRGO_WIRE_TOKEN_LEN; i++)
		hp.token[i] = (u8)(0xa0 + i);
	n = virgo_wire_put_hello_req(buf, sizeof(buf), &hq);
	one("req-hello-resume", VIRGO_OP_HELLO, 0, 0, buf, n);
	n = virgo_wire_put_hello_rep(buf, sizeof(buf), &hp);
	one("rep-hello-resume", VIRGO_OP_HELLO, VIRGO_WF_REPLY, 0, buf, n);
	n = virgo_wire_put_resume_req(buf, sizeof(buf), hp.resume_id, mac);
	one("req-resume", VIRGO_OP_RESUME, 0, 0, buf, n);
	n = virgo_wire_put_resume_rep(buf, sizeof(buf), 3, 3ULL << 20);
	one("rep-resume", VIRGO_OP_RESUME, VIRGO_WF_REPLY, 0, buf, n);
	one("rep-error-busy", VIRGO_OP_RESUME, VIRGO_WF_REPLY, VIRGO_ST_BUSY,
	    NULL, 0);

	/* A resumed session: the client's side, then the server's. */
	seed_start(&s, 0);
	n = virgo_wire_put_hello_req(buf, sizeof(buf), &hq);
	seed_frame(&s, VIRGO_OP_HELLO, 0, 0, 1, buf, n);
	seed_frame(&s, VIRGO_OP_AUTH, 0, 0, 2, mac, sizeof(mac));
	n = virgo_wire_put_resume_req(buf, sizeof(buf), hp.resume_id, mac);
	seed_frame(&s, VIRGO_OP_RESUME, 0, 0, 3, buf, n);
	n = virgo_wire_put_rw_req(buf, sizeof(buf), &rw);
	seed_frame(&s, VIRGO_OP_READ, 0, 0, 4, buf, n);
	seed_write(&s, "session-resume-client");

	seed_start(&s, 0);
	n = virgo_wire_put_hello_rep(buf, sizeof(buf), &hp);
	seed_frame(&s, VIRGO_OP_HELLO, VIRGO_WF_REPLY, 0, 1, buf, n);
	seed_frame(&s, VIRGO_OP_AUTH, VIRGO_WF_REPLY, 0, 2, mac, sizeof(mac));
	seed_frame(&s, VIRGO_OP_RESUME, VIRGO_WF_REPLY, VIRGO_ST_BUSY, 3,
		   NULL, 0);
	n = virgo_wire_put_resume_rep(buf, sizeof(buf), 3, 3ULL << 20);
	seed_frame(&s, VIRGO_OP_RESUME, VIRGO_WF_REPLY, 0, 3, buf, n);
	seed_frame(&s, VIRGO_OP_READ, VIRGO_WF_REPLY, 0, 4, data, rw.length);
	seed_write(&s, "session-resume-server");
	hq.caps = 0;
	hp.caps = 0;

	/* Capability DISCARD: HELLO offering it, DISCARD and its reply. */
	hq.caps = VIRGO_CAP_DISCARD;
	hp.caps = VIRGO_CAP_DISCARD;
	n = virgo_wire_put_hello_req(buf, sizeof(buf), &hq);
	one("req-hello-discard", VIRGO_OP_HELLO, 0, 0, buf, n);
	n = virgo_wire_put_hello_rep(buf, sizeof(buf), &hp);
	one("rep-hello-discard", VIRGO_OP_HELLO, VIRGO_WF_REPLY, 0, buf, n);
	n = virgo_wire_put_discard_req(buf, sizeof(buf), handles, 3);
	one("req-discard", VIRGO_OP_DISCARD, 0, 0, buf, n);
	n = virgo_wire_put_discard_rep(buf, sizeof(buf), 2);
	one("rep-discard", VIRGO_OP_DISCARD, VIRGO_WF_REPLY, 0, buf, n);
	one("rep-error-proto", VIRGO_OP_DISCARD, VIRGO_WF_REPLY,
	    VIRGO_ST_PROTO, NULL, 0);
	hq.caps = 0;
	hp.caps = 0;

	/* Capability QUEUES (with RESUME): HELLO offering it, JOIN. */
	hq.caps = VIRGO_CAP_RESUME | VIRGO_CAP_QUEUES;
	hp.caps = VIRGO_CAP_RESUME | VIRGO_CAP_QUEUES;
	n = virgo_wire_put_hello_req(buf, sizeof(buf), &hq);
	one("req-hello-queues", VIRGO_OP_HELLO, 0, 0, buf, n);
	n = virgo_wire_put_hello_rep(buf, sizeof(buf), &hp);
	one("rep-hello-queues", VIRGO_OP_HELLO, VIRGO_WF_REPLY, 0, buf, n);
	n = virgo_wire_put_join_req(buf, sizeof(buf), hp.resume_id, mac);
	one("req-join", VIRGO_OP_JOIN, 0, 0, buf, n);
	n = virgo_wire_put_join_rep(buf, sizeof(buf), 2);
	one("rep-join", VIRGO_OP_JOIN, VIRGO_WF_REPLY, 0, buf, n);
	hq.caps = 0;
	hp.caps = 0;

	/* A client's side of a session, then the server's. */
	seed_start(&s, 0);
	n = virgo_wire_put_hello_req(buf, sizeof(buf), &hq);
	seed_frame(&s, VIRGO_OP_HELLO, 0, 0, 1, buf, n);
	seed_frame(&s, VIRGO_OP_AUTH, 0, 0, 2, mac, sizeof(mac));
	n = virgo_wire_put_alloc_req(buf, sizeof(buf), sizes, 3);
	seed_frame(&s, VIRGO_OP_ALLOC, 0, 0, 3, buf, n);
	n = virgo_wire_put_rw_req(buf, sizeof(buf), &rw);
	memcpy(buf + n, data, rw.length);
	seed_frame(&s, VIRGO_OP_WRITE, 0, 0, 4, buf, n + rw.length);
	seed_frame(&s, VIRGO_OP_READ, 0, 0, 5, buf, n);
	n = virgo_wire_put_free_req(buf, sizeof(buf), handles, 3);
	seed_frame(&s, VIRGO_OP_FREE, 0, 0, 6, buf, n);
	seed_frame(&s, VIRGO_OP_STAT, 0, 0, 7, NULL, 0);
	seed_frame(&s, VIRGO_OP_PING, 0, 0, 8, data, 4);
	seed_write(&s, "session-client");

	seed_start(&s, 0);
	n = virgo_wire_put_hello_rep(buf, sizeof(buf), &hp);
	seed_frame(&s, VIRGO_OP_HELLO, VIRGO_WF_REPLY, 0, 1, buf, n);
	seed_frame(&s, VIRGO_OP_AUTH, VIRGO_WF_REPLY, 0, 2, mac, sizeof(mac));
	n = virgo_wire_put_alloc_rep(buf, sizeof(buf), handles, 3);
	seed_frame(&s, VIRGO_OP_ALLOC, VIRGO_WF_REPLY, 0, 3, buf, n);
	/* replies out of order, as the protocol allows */
	seed_frame(&s, VIRGO_OP_READ, VIRGO_WF_REPLY, 0, 5, data, rw.length);
	seed_frame(&s, VIRGO_OP_WRITE, VIRGO_WF_REPLY, 0, 4, NULL, 0);
	n = virgo_wire_put_free_rep(buf, sizeof(buf), 3);
	seed_frame(&s, VIRGO_OP_FREE, VIRGO_WF_REPLY, 0, 6, buf, n);
	n = virgo_wire_put_stat_rep(buf, sizeof(buf), &st);
	seed_frame(&s, VIRGO_OP_STAT, VIRGO_WF_REPLY, 0, 7, buf, n);
	seed_frame(&s, VIRGO_OP_PING, VIRGO_WF_REPLY, VIRGO_ST_BUSY, 8,
		   NULL, 0);
	seed_write(&s, "session-server");

	/* Small limits (96/64/4): frames right at them. */
	seed_start(&s, 1);
	rw.offset = 0;
	rw.length = 64;
	n = virgo_wire_put_rw_req(buf, sizeof(buf), &rw);
	memcpy(buf + n, data, rw.length);
	seed_frame(&s, VIRGO_OP_WRITE, 0, 0, 1, buf, n + rw.length);
	n = virgo_wire_put_alloc_req(buf, sizeof(buf), (const u32[]){
		1, 2, 63, 64 }, 4);
	seed_frame(&s, VIRGO_OP_ALLOC, 0, 0, 2, buf, n);
	seed_frame(&s, VIRGO_OP_PING, 0, 0, 3, data, 64);
	seed_frame(&s, VIRGO_OP_READ, VIRGO_WF_REPLY, 0, 4, data, 64);
	seed_write(&s, "small-limits");

	/* Raw limits 4096/1024/16, then a batch of 16. */
	seed_start(&s, 3);
	s.lim = (struct virgo_wire_limits){ 4096, 1024, 16 };
	put_unaligned_le32(s.lim.max_payload, seed_room(&s, 4));
	put_unaligned_le32(s.lim.max_chunk, seed_room(&s, 4));
	put_unaligned_le32(s.lim.max_batch, seed_room(&s, 4));
	n = virgo_wire_put_batch_hdr(buf, sizeof(buf), 16, 8);
	for (i = 0; i < 16; i++)
		virgo_wire_set_handle(buf, i, 1000 + i);
	seed_frame(&s, VIRGO_OP_FREE, 0, 0, 1, buf, n);
	seed_write(&s, "raw-limits");

	printf("mkcorpus: %u seeds in %s\n", written, outdir);
	return 0;
}
