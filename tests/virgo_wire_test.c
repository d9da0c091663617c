// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the virgo wire codec (include/virgo_wire.h).
 *
 * The file also builds as a user-space program over a small KUnit shim
 * (tools/fuzz/kunit_shim, run by "make -C tools/fuzz test"), so it may use
 * only what that shim provides.  Payloads handed to the checkers are copied
 * into buffers of exactly their length, so KASAN (or ASan in user space)
 * catches any read past a payload.
 */
#include <kunit/test.h>
#include <virgo_wire.h>

#define VT_TAG		0x1122334455667788ULL
#define VT_BUF		160

/* Small limits, so that every frame of the table below fits VT_BUF. */
static const struct virgo_wire_limits vt_lim = {
	.max_payload = 96,
	.max_chunk = 64,
	.max_batch = 4,
};

/*
 * Check @len payload bytes at @payload under @lim, from a copy of exactly
 * @len bytes.  Header fields come from @m, @len overrides m->len.
 */
static int vt_check(struct kunit *test, const struct virgo_wire_msg *m,
		    const void *payload, u32 len,
		    const struct virgo_wire_limits *lim)
{
	struct virgo_wire_msg mm = *m;
	u8 *copy = NULL;
	int ret;

	mm.len = len;
	if (len) {
		copy = kunit_kmalloc(test, len, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, copy);
		memcpy(copy, payload, len);
	}
	if (virgo_wire_is_reply(&mm))
		ret = virgo_wire_check_rep(&mm, copy, lim);
	else
		ret = virgo_wire_check_req(&mm, copy, lim);
	if (copy)
		kunit_kfree(test, copy);
	return ret;
}

/*
 * Frame @len payload bytes with a header, decode the header again, check
 * the payload, and return the check's result.
 */
static int vt_frame_check(struct kunit *test, u8 opcode, u16 flags, u32 status,
			  const void *payload, u32 len,
			  const struct virgo_wire_limits *lim)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct virgo_wire_msg m;
	int ret;

	virgo_wire_hdr_pack(hdr, opcode, flags, len, status, VT_TAG);
	ret = virgo_wire_hdr_unpack(hdr, &m, lim);
	KUNIT_ASSERT_EQ(test, ret, 0);
	KUNIT_EXPECT_EQ(test, m.opcode, opcode);
	KUNIT_EXPECT_EQ(test, m.flags, flags);
	KUNIT_EXPECT_EQ(test, m.len, len);
	KUNIT_EXPECT_EQ(test, m.status, status);
	KUNIT_EXPECT_EQ(test, m.tag, VT_TAG);
	return vt_check(test, &m, payload, len, lim);
}

/* Every length below @len must be refused, and @len + 1 too if @longer. */
static void vt_expect_exact_len(struct kunit *test, u8 opcode, u16 flags,
				const u8 *payload, u32 len, bool longer)
{
	struct virgo_wire_msg m = { .opcode = opcode, .flags = flags };
	u8 big[VT_BUF];
	u32 t;

	for (t = 0; t < len; t++)
		KUNIT_EXPECT_NE_MSG(test,
				    vt_check(test, &m, payload, t, &vt_lim), 0,
				    "%s len %u of %u accepted",
				    virgo_wire_op_name(opcode), t, len);
	if (!longer)
		return;
	KUNIT_ASSERT_LT(test, len, (u32)sizeof(big));
	memcpy(big, payload, len);
	big[len] = 0;
	KUNIT_EXPECT_NE_MSG(test, vt_check(test, &m, big, len + 1, &vt_lim), 0,
			    "%s len %u + 1 accepted",
			    virgo_wire_op_name(opcode), len);
}

static void virgo_wire_test_layout(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, sizeof(struct virgo_wire_hdr), (size_t)24);
	KUNIT_EXPECT_EQ(test, sizeof(struct virgo_wire_hello_req_raw),
			(size_t)40);
	KUNIT_EXPECT_EQ(test, sizeof(struct virgo_wire_hello_rep_raw),
			(size_t)72);
	KUNIT_EXPECT_EQ(test, sizeof(struct virgo_wire_rw_raw), (size_t)16);
	KUNIT_EXPECT_EQ(test, sizeof(struct virgo_wire_stat_raw), (size_t)64);
	KUNIT_EXPECT_EQ(test, VIRGO_WIRE_AUTH_INPUT_LEN, 79);
	KUNIT_EXPECT_EQ(test, (int)strlen(VIRGO_WIRE_AUTH_LABEL_CLIENT),
			VIRGO_WIRE_AUTH_LABEL_LEN);
	KUNIT_EXPECT_EQ(test, (int)strlen(VIRGO_WIRE_AUTH_LABEL_SERVER),
			VIRGO_WIRE_AUTH_LABEL_LEN);
}

static void virgo_wire_test_limits(struct kunit *test)
{
	struct virgo_wire_limits l, a, b;

	virgo_wire_limits_default(&l);
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), 0);
	KUNIT_EXPECT_EQ(test, l.max_chunk, 1024U * 1024U);
	KUNIT_EXPECT_EQ(test, l.max_payload, 1024U * 1024U + 4096U);
	KUNIT_EXPECT_EQ(test, l.max_batch, 1024U);
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&vt_lim), 0);

	/* The tightest coherent limits and the loosest. */
	l = (struct virgo_wire_limits){ .max_payload = 72, .max_chunk = 56,
					.max_batch = 8 };
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), 0);
	l = (struct virgo_wire_limits){
		.max_payload = VIRGO_WIRE_MAX_PAYLOAD_LIMIT,
		.max_chunk = VIRGO_WIRE_MAX_CHUNK_LIMIT,
		.max_batch = VIRGO_WIRE_MAX_BATCH_LIMIT };
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), 0);

	l = vt_lim;
	l.max_chunk = 0;
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), -EINVAL);
	l = vt_lim;
	l.max_batch = 0;
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), -EINVAL);
	l = vt_lim;
	l.max_chunk = l.max_payload - 15;	/* WRITE would not fit */
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), -EINVAL);
	l = vt_lim;
	l.max_batch = (l.max_payload - 8) / 8 + 1;	/* handles do not fit */
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), -EINVAL);
	l = vt_lim;
	l.max_payload = 71;
	l.max_chunk = 1;
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), -EINVAL);
	l.max_payload = VIRGO_WIRE_MAX_PAYLOAD_LIMIT + 1;
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), -EINVAL);
	l.max_payload = VIRGO_WIRE_MAX_PAYLOAD_LIMIT;
	l.max_chunk = VIRGO_WIRE_MAX_CHUNK_LIMIT + 1;
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), -EINVAL);
	l.max_chunk = 1;
	l.max_batch = VIRGO_WIRE_MAX_BATCH_LIMIT + 1;
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), -EINVAL);
	l.max_chunk = 0xffffffff;
	l.max_batch = 0xffffffff;
	l.max_payload = 0xffffffff;
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), -EINVAL);

	/* The field-wise minimum of two valid limits is valid. */
	virgo_wire_limits_default(&a);
	b = (struct virgo_wire_limits){ .max_payload = 80, .max_chunk = 64,
					.max_batch = 9 };
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&b), 0);
	l.max_payload = a.max_payload < b.max_payload ? a.max_payload :
							b.max_payload;
	l.max_chunk = a.max_chunk < b.max_chunk ? a.max_chunk : b.max_chunk;
	l.max_batch = a.max_batch < b.max_batch ? a.max_batch : b.max_batch;
	KUNIT_EXPECT_EQ(test, virgo_wire_limits_check(&l), 0);
}

/* docs/protocol.md, "Example": ALLOC of 4096 and 1 MiB, tag 7. */
static const u8 vt_alloc_req_frame[] = {
	0x56, 0x52, 0x47, 0x4f, 0x01, 0x03, 0x00, 0x00,
	0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
};

static const u8 vt_alloc_rep_frame[] = {
	0x56, 0x52, 0x47, 0x4f, 0x01, 0x03, 0x01, 0x00,
	0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
};

static const u8 vt_alloc_err_frame[] = {
	0x56, 0x52, 0x47, 0x4f, 0x01, 0x03, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
	0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void virgo_wire_test_known_bytes(struct kunit *test)
{
	static const u32 sizes[] = { 4096, 1024 * 1024 };
	static const u64 handles[] = { 0x100000005ULL, 0x100000006ULL };
	struct virgo_wire_limits lim;
	struct virgo_wire_msg m;
	const u8 *p;
	u8 buf[64];
	int n;

	virgo_wire_limits_default(&lim);

	memset(buf, 0xee, sizeof(buf));
	n = virgo_wire_put_alloc_req(buf + VIRGO_WIRE_HDR_LEN,
				     sizeof(buf) - VIRGO_WIRE_HDR_LEN,
				     sizes, 2);
	KUNIT_ASSERT_EQ(test, n, 16);
	virgo_wire_hdr_pack(buf, VIRGO_OP_ALLOC, 0, n, 0, 7);
	KUNIT_EXPECT_EQ(test, memcmp(buf, vt_alloc_req_frame,
				     sizeof(vt_alloc_req_frame)), 0);

	memset(buf, 0xee, sizeof(buf));
	n = virgo_wire_put_alloc_rep(buf + VIRGO_WIRE_HDR_LEN,
				     sizeof(buf) - VIRGO_WIRE_HDR_LEN,
				     handles, 2);
	KUNIT_ASSERT_EQ(test, n, 24);
	virgo_wire_hdr_pack(buf, VIRGO_OP_ALLOC, VIRGO_WF_REPLY, n, 0, 7);
	KUNIT_EXPECT_EQ(test, memcmp(buf, vt_alloc_rep_frame,
				     sizeof(vt_alloc_rep_frame)), 0);

	virgo_wire_hdr_pack(buf, VIRGO_OP_ALLOC, VIRGO_WF_REPLY, 0,
			    VIRGO_ST_NOMEM, 7);
	KUNIT_EXPECT_EQ(test, memcmp(buf, vt_alloc_err_frame,
				     sizeof(vt_alloc_err_frame)), 0);

	/* And back. */
	p = vt_alloc_req_frame;
	KUNIT_ASSERT_EQ(test, virgo_wire_hdr_unpack(p, &m, &lim), 0);
	KUNIT_ASSERT_EQ(test, vt_check(test, &m, p + 24, m.len, &lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_batch_count(p + 24), 2U);
	KUNIT_EXPECT_EQ(test, virgo_wire_alloc_size(p + 24, 1), 1024U * 1024U);
	p = vt_alloc_rep_frame;
	KUNIT_ASSERT_EQ(test, virgo_wire_hdr_unpack(p, &m, &lim), 0);
	KUNIT_ASSERT_EQ(test, vt_check(test, &m, p + 24, m.len, &lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_handle(p + 24, 0), 0x100000005ULL);
	p = vt_alloc_err_frame;
	KUNIT_ASSERT_EQ(test, virgo_wire_hdr_unpack(p, &m, &lim), 0);
	KUNIT_EXPECT_EQ(test, vt_check(test, &m, NULL, 0, &lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_status_to_errno(m.status), -ENOMEM);
}

static void virgo_wire_test_hdr_roundtrip(struct kunit *test)
{
	static const struct {
		u8 opcode;
		u16 flags;
		u32 len;
		u32 status;
		u64 tag;
	} hdrs[] = {
		{ VIRGO_OP_HELLO, 0, 40, 0, 0 },
		{ VIRGO_OP_PING, 0, 0, 0, ~0ULL },
		{ VIRGO_OP_READ, VIRGO_WF_REPLY, 96, 0, 0x8000000000000001ULL },
		{ VIRGO_OP_WRITE, VIRGO_WF_REPLY, 0, VIRGO_ST_IO, 1 },
		{ VIRGO_OP_STAT, VIRGO_WF_REPLY, 0, VIRGO_ST_PERM, VT_TAG },
	};
	u8 raw[VIRGO_WIRE_HDR_LEN + 1];
	struct virgo_wire_msg m;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(hdrs); i++) {
		/* Odd address: the codec must not assume alignment. */
		u8 *h = raw + 1;

		virgo_wire_hdr_pack(h, hdrs[i].opcode, hdrs[i].flags,
				    hdrs[i].len, hdrs[i].status, hdrs[i].tag);
		KUNIT_EXPECT_EQ(test, h[0], 'V');
		KUNIT_EXPECT_EQ(test, h[1], 'R');
		KUNIT_EXPECT_EQ(test, h[2], 'G');
		KUNIT_EXPECT_EQ(test, h[3], 'O');
		KUNIT_EXPECT_EQ(test, h[4], 1);
		KUNIT_EXPECT_EQ(test, h[5], hdrs[i].opcode);
		KUNIT_EXPECT_EQ(test, h[8], (u8)hdrs[i].len);
		KUNIT_EXPECT_EQ(test, h[23], (u8)(hdrs[i].tag >> 56));
		KUNIT_ASSERT_EQ(test, virgo_wire_hdr_unpack(h, &m, &vt_lim), 0);
		KUNIT_EXPECT_EQ(test, m.opcode, hdrs[i].opcode);
		KUNIT_EXPECT_EQ(test, m.flags, hdrs[i].flags);
		KUNIT_EXPECT_EQ(test, m.len, hdrs[i].len);
		KUNIT_EXPECT_EQ(test, m.status, hdrs[i].status);
		KUNIT_EXPECT_EQ(test, m.tag, hdrs[i].tag);
	}
}

static void virgo_wire_test_hello(struct kunit *test)
{
	struct virgo_wire_hello_req rq = { .ver_min = 1, .ver_max = 3,
					   .caps = 0x80000001 }, rq2;
	struct virgo_wire_hello_rep rp = {
		.version = 1, .flags = VIRGO_HELLO_AUTH_REQUIRED,
		.caps = 0, .max_payload = 96, .max_chunk = 64,
		.max_batch = 4, .max_inflight = 7,
		.capacity = 1ULL << 40, .free = (1ULL << 40) - 4096,
	}, rp2;
	/*
	 * Room for the RESUME part too: without it GCC (KCSAN build) warns
	 * that the reader's RESUME branch, not taken for caps 0, would read
	 * past the buffer.
	 */
	u8 buf[VIRGO_WIRE_HELLO_REP_MAX];
	unsigned int i;

	for (i = 0; i < VIRGO_WIRE_NONCE_LEN; i++) {
		rq.nonce[i] = (u8)i;
		rp.nonce[i] = (u8)(0xff - i);
	}

	KUNIT_EXPECT_EQ(test, virgo_wire_put_hello_req(buf, 39, &rq),
			-EMSGSIZE);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_hello_req(buf, sizeof(buf), &rq),
			VIRGO_WIRE_HELLO_REQ_LEN);
	KUNIT_EXPECT_EQ(test, buf[2], 3);
	KUNIT_EXPECT_EQ(test, buf[7], 0x80);
	KUNIT_EXPECT_EQ(test, buf[8], 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_HELLO, 0, 0, buf,
					     VIRGO_WIRE_HELLO_REQ_LEN, &vt_lim),
			0);
	memset(&rq2, 0, sizeof(rq2));
	virgo_wire_get_hello_req(buf, &rq2);
	KUNIT_EXPECT_EQ(test, memcmp(&rq, &rq2, sizeof(rq)), 0);
	vt_expect_exact_len(test, VIRGO_OP_HELLO, 0, buf,
			    VIRGO_WIRE_HELLO_REQ_LEN, true);

	KUNIT_EXPECT_EQ(test, virgo_wire_put_hello_rep(buf, 71, &rp),
			-EMSGSIZE);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_hello_rep(buf, sizeof(buf), &rp),
			VIRGO_WIRE_HELLO_REP_LEN);
	KUNIT_EXPECT_EQ(test, buf[24 + 5], 1);	/* capacity, byte 5: 1 << 40 */
	KUNIT_EXPECT_EQ(test, buf[40], 0xff);	/* nonce[0] */
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_HELLO,
					     VIRGO_WF_REPLY, 0, buf,
					     VIRGO_WIRE_HELLO_REP_LEN, &vt_lim),
			0);
	memset(&rp2, 0, sizeof(rp2));
	virgo_wire_get_hello_rep(buf, &rp2);
	KUNIT_EXPECT_EQ(test, memcmp(&rp, &rp2, sizeof(rp)), 0);
	vt_expect_exact_len(test, VIRGO_OP_HELLO, VIRGO_WF_REPLY, buf,
			    VIRGO_WIRE_HELLO_REP_LEN, true);
}

static void virgo_wire_test_auth(struct kunit *test)
{
	u8 cn[VIRGO_WIRE_NONCE_LEN], sn[VIRGO_WIRE_NONCE_LEN];
	u8 in[VIRGO_WIRE_AUTH_INPUT_LEN], mac[VIRGO_WIRE_MAC_LEN];
	u8 buf[VIRGO_WIRE_AUTH_LEN];
	unsigned int i;

	for (i = 0; i < VIRGO_WIRE_NONCE_LEN; i++) {
		cn[i] = (u8)(0x10 + i);
		sn[i] = (u8)(0x80 + i);
	}
	for (i = 0; i < VIRGO_WIRE_MAC_LEN; i++)
		mac[i] = (u8)(3 * i + 1);

	virgo_wire_auth_input(in, VIRGO_WIRE_AUTH_CLIENT, cn, sn);
	KUNIT_EXPECT_EQ(test, memcmp(in, "virgo-v1-client", 15), 0);
	KUNIT_EXPECT_EQ(test, memcmp(in + 15, cn, 32), 0);
	KUNIT_EXPECT_EQ(test, memcmp(in + 47, sn, 32), 0);
	virgo_wire_auth_input(in, VIRGO_WIRE_AUTH_SERVER, cn, sn);
	KUNIT_EXPECT_EQ(test, memcmp(in, "virgo-v1-server", 15), 0);
	KUNIT_EXPECT_EQ(test, memcmp(in + 15, sn, 32), 0);
	KUNIT_EXPECT_EQ(test, memcmp(in + 47, cn, 32), 0);

	KUNIT_EXPECT_EQ(test, virgo_wire_put_auth(buf, 31, mac), -EMSGSIZE);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_auth(buf, sizeof(buf), mac),
			VIRGO_WIRE_AUTH_LEN);
	KUNIT_EXPECT_EQ(test, memcmp(buf, mac, sizeof(mac)), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_AUTH, 0, 0, buf,
					     sizeof(buf), &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_AUTH,
					     VIRGO_WF_REPLY, 0, buf,
					     sizeof(buf), &vt_lim), 0);
	vt_expect_exact_len(test, VIRGO_OP_AUTH, 0, buf, sizeof(buf), true);
	vt_expect_exact_len(test, VIRGO_OP_AUTH, VIRGO_WF_REPLY, buf,
			    sizeof(buf), true);
}

/* VIRGO_CAP_RESUME: the HELLO reply's extension, RESUME and its input. */
static void virgo_wire_test_resume(struct kunit *test)
{
	struct virgo_wire_hello_rep rp = {
		.version = 1, .caps = VIRGO_CAP_RESUME, .max_payload = 96,
		.max_chunk = 64, .max_batch = 4, .max_inflight = 1,
		.capacity = 4096, .free = 4096,
		.resume_id = 0x1122334455667788ULL,
	}, rp2;
	u8 buf[VIRGO_WIRE_HELLO_REP_MAX], proof[VIRGO_WIRE_MAC_LEN];
	u8 cn[VIRGO_WIRE_NONCE_LEN], sn[VIRGO_WIRE_NONCE_LEN];
	u8 in[VIRGO_WIRE_RESUME_INPUT_LEN], got[VIRGO_WIRE_MAC_LEN];
	/* Room for the 112-byte reply (vt_lim takes 96). */
	const struct virgo_wire_limits lim = { .max_payload = 128,
					       .max_chunk = 64,
					       .max_batch = 4 };
	u64 chunks, bytes;
	unsigned int i;

	for (i = 0; i < VIRGO_WIRE_TOKEN_LEN; i++) {
		rp.token[i] = (u8)(0xa0 + i);
		proof[i] = (u8)(7 * i);
		cn[i] = (u8)(0xc0 + i);
		sn[i] = (u8)(0x50 + i);
	}

	/* HELLO reply: 112 bytes with the capability, id then token. */
	KUNIT_EXPECT_EQ(test, virgo_wire_put_hello_rep(buf, 111, &rp),
			-EMSGSIZE);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_hello_rep(buf, sizeof(buf), &rp),
			VIRGO_WIRE_HELLO_REP_MAX);
	KUNIT_EXPECT_EQ(test, buf[72], 0x88);
	KUNIT_EXPECT_EQ(test, buf[79], 0x11);
	KUNIT_EXPECT_EQ(test, buf[80], 0xa0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_HELLO,
					     VIRGO_WF_REPLY, 0, buf,
					     VIRGO_WIRE_HELLO_REP_MAX, &lim),
			0);
	memset(&rp2, 0, sizeof(rp2));
	virgo_wire_get_hello_rep(buf, &rp2);
	KUNIT_EXPECT_EQ(test, memcmp(&rp, &rp2, sizeof(rp)), 0);
	/* The 72-byte form is refused when caps say RESUME, and vice versa. */
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_HELLO,
					     VIRGO_WF_REPLY, 0, buf,
					     VIRGO_WIRE_HELLO_REP_LEN, &lim),
			-EINVAL);
	buf[4] = 0;
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_HELLO,
					     VIRGO_WF_REPLY, 0, buf,
					     VIRGO_WIRE_HELLO_REP_MAX, &lim),
			-EINVAL);
	/* A resume id of 0 names nothing. */
	rp.resume_id = 0;
	virgo_wire_put_hello_rep(buf, sizeof(buf), &rp);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_HELLO,
					     VIRGO_WF_REPLY, 0, buf,
					     VIRGO_WIRE_HELLO_REP_MAX, &lim),
			-EINVAL);

	/* RESUME request: id, proof; exactly 40 bytes; id 0 is malformed. */
	KUNIT_EXPECT_EQ(test, virgo_wire_put_resume_req(buf, 39, 5, proof),
			-EMSGSIZE);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_resume_req(buf, sizeof(buf),
							0x0102030405060708ULL,
							proof),
			VIRGO_WIRE_RESUME_REQ_LEN);
	KUNIT_EXPECT_EQ(test, buf[0], 0x08);
	KUNIT_EXPECT_EQ(test, buf[9], 7);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_RESUME, 0, 0, buf,
					     VIRGO_WIRE_RESUME_REQ_LEN,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_get_resume_req(buf, got),
			0x0102030405060708ULL);
	KUNIT_EXPECT_EQ(test, memcmp(got, proof, sizeof(got)), 0);
	vt_expect_exact_len(test, VIRGO_OP_RESUME, 0, buf,
			    VIRGO_WIRE_RESUME_REQ_LEN, true);
	memset(buf, 0, 8);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_RESUME, 0, 0, buf,
					     VIRGO_WIRE_RESUME_REQ_LEN,
					     &vt_lim), -EINVAL);

	/* RESUME reply: chunks, bytes; exactly 16 bytes. */
	KUNIT_EXPECT_EQ(test, virgo_wire_put_resume_rep(buf, 15, 3, 4),
			-EMSGSIZE);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_resume_rep(buf, sizeof(buf), 3,
							1ULL << 33),
			VIRGO_WIRE_RESUME_REP_LEN);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_RESUME,
					     VIRGO_WF_REPLY, 0, buf,
					     VIRGO_WIRE_RESUME_REP_LEN,
					     &vt_lim), 0);
	virgo_wire_get_resume_rep(buf, &chunks, &bytes);
	KUNIT_EXPECT_EQ(test, chunks, 3ULL);
	KUNIT_EXPECT_EQ(test, bytes, 1ULL << 33);
	vt_expect_exact_len(test, VIRGO_OP_RESUME, VIRGO_WF_REPLY, buf,
			    VIRGO_WIRE_RESUME_REP_LEN, true);

	/* The keyed proof's input: label, token, client nonce, server's. */
	virgo_wire_resume_input(in, rp.token, cn, sn);
	KUNIT_EXPECT_EQ(test, memcmp(in, "virgo-v1-resume", 15), 0);
	KUNIT_EXPECT_EQ(test, memcmp(in + 15, rp.token, 32), 0);
	KUNIT_EXPECT_EQ(test, memcmp(in + 47, cn, 32), 0);
	KUNIT_EXPECT_EQ(test, memcmp(in + 79, sn, 32), 0);
	KUNIT_EXPECT_EQ(test, strcmp(virgo_wire_op_name(VIRGO_OP_RESUME),
				     "RESUME"), 0);
}

/*
 * VIRGO_CAP_QUEUES: JOIN request and reply, the proof's input, and a
 * HELLO reply granting QUEUES without RESUME (nothing names the session).
 */
static void virgo_wire_test_join(struct kunit *test)
{
	struct virgo_wire_hello_rep rp = {
		.version = 1, .caps = VIRGO_CAP_RESUME | VIRGO_CAP_QUEUES,
		.max_payload = 96, .max_chunk = 64, .max_batch = 4,
		.max_inflight = 1, .capacity = 4096, .free = 4096,
		.resume_id = 0x1122334455667788ULL,
	};
	static const u8 req[] = {
		0x56, 0x52, 0x47, 0x4f, 0x01, 0x0b, 0x00, 0x00,
		0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
	};
	static const u8 rep[] = {
		0x56, 0x52, 0x47, 0x4f, 0x01, 0x0b, 0x01, 0x00,
		0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	const struct virgo_wire_limits lim = { .max_payload = 128,
					       .max_chunk = 64,
					       .max_batch = 4 };
	u8 buf[VIRGO_WIRE_HDR_LEN + VIRGO_WIRE_HELLO_REP_MAX];
	u8 proof[VIRGO_WIRE_MAC_LEN], got[VIRGO_WIRE_MAC_LEN];
	u8 cn[VIRGO_WIRE_NONCE_LEN], sn[VIRGO_WIRE_NONCE_LEN];
	u8 in[VIRGO_WIRE_JOIN_INPUT_LEN], rin[VIRGO_WIRE_RESUME_INPUT_LEN];
	u8 *p = buf + VIRGO_WIRE_HDR_LEN;
	unsigned int i;
	int n;

	KUNIT_EXPECT_EQ(test, VIRGO_CAP_QUEUES, 0x4U);
	KUNIT_EXPECT_EQ(test, VIRGO_CAPS_KNOWN & VIRGO_CAP_QUEUES, 0x4U);
	KUNIT_EXPECT_EQ(test, VIRGO_OP_JOIN, 11);
	KUNIT_EXPECT_EQ(test, strcmp(virgo_wire_op_name(VIRGO_OP_JOIN),
				     "JOIN"), 0);
	for (i = 0; i < VIRGO_WIRE_TOKEN_LEN; i++) {
		rp.token[i] = (u8)(0xa0 + i);
		proof[i] = (u8)(7 * i);
		cn[i] = (u8)(0xc0 + i);
		sn[i] = (u8)(0x50 + i);
	}

	/* HELLO reply: QUEUES rides on RESUME's id and token, never alone. */
	n = virgo_wire_put_hello_rep(p, VIRGO_WIRE_HELLO_REP_MAX, &rp);
	KUNIT_ASSERT_EQ(test, n, VIRGO_WIRE_HELLO_REP_MAX);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_HELLO,
					     VIRGO_WF_REPLY, 0, p, n, &lim),
			0);
	rp.caps = VIRGO_CAP_QUEUES;
	n = virgo_wire_put_hello_rep(p, VIRGO_WIRE_HELLO_REP_MAX, &rp);
	KUNIT_ASSERT_EQ(test, n, VIRGO_WIRE_HELLO_REP_LEN);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_HELLO,
					     VIRGO_WF_REPLY, 0, p, n, &lim),
			-EINVAL);

	/* JOIN request: session id, proof; exactly 40 bytes; id 0 refused. */
	virgo_wire_hdr_pack(buf, VIRGO_OP_JOIN, 0, VIRGO_WIRE_JOIN_REQ_LEN, 0,
			    3);
	KUNIT_EXPECT_EQ(test, virgo_wire_put_join_req(p, 39, 5, proof),
			-EMSGSIZE);
	n = virgo_wire_put_join_req(p, VIRGO_WIRE_HELLO_REP_MAX,
				    0x0102030405060708ULL, proof);
	KUNIT_ASSERT_EQ(test, n, VIRGO_WIRE_JOIN_REQ_LEN);
	KUNIT_EXPECT_EQ(test, memcmp(buf, req, sizeof(req)), 0);
	KUNIT_EXPECT_EQ(test, memcmp(p + 8, proof, sizeof(proof)), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_JOIN, 0, 0, p, n,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_get_join_req(p, got),
			0x0102030405060708ULL);
	KUNIT_EXPECT_EQ(test, memcmp(got, proof, sizeof(got)), 0);
	vt_expect_exact_len(test, VIRGO_OP_JOIN, 0, p, n, true);
	memset(p, 0, 8);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_JOIN, 0, 0, p, n,
					     &vt_lim), -EINVAL);

	/* JOIN reply: queues (>= 2: the session's first and this), 0. */
	virgo_wire_hdr_pack(buf, VIRGO_OP_JOIN, VIRGO_WF_REPLY,
			    VIRGO_WIRE_JOIN_REP_LEN, 0, 3);
	KUNIT_EXPECT_EQ(test, virgo_wire_put_join_rep(p, 7, 4), -EMSGSIZE);
	n = virgo_wire_put_join_rep(p, 8, 4);
	KUNIT_ASSERT_EQ(test, n, VIRGO_WIRE_JOIN_REP_LEN);
	KUNIT_EXPECT_EQ(test, memcmp(buf, rep, sizeof(rep)), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_JOIN,
					     VIRGO_WF_REPLY, 0, p, n, &vt_lim),
			0);
	KUNIT_EXPECT_EQ(test, virgo_wire_get_join_rep(p), 4U);
	vt_expect_exact_len(test, VIRGO_OP_JOIN, VIRGO_WF_REPLY, p, n, true);
	virgo_wire_put_join_rep(p, 8, 1);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_JOIN,
					     VIRGO_WF_REPLY, 0, p, n, &vt_lim),
			-EINVAL);
	virgo_wire_put_join_rep(p, 8, 2);
	p[4] = 1;
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_JOIN,
					     VIRGO_WF_REPLY, 0, p, n, &vt_lim),
			-EINVAL);

	/* Its proof's input: RESUME's layout under a label of its own. */
	virgo_wire_join_input(in, rp.token, cn, sn);
	virgo_wire_resume_input(rin, rp.token, cn, sn);
	KUNIT_EXPECT_EQ(test, memcmp(in, "virgo-v1-queues", 15), 0);
	KUNIT_EXPECT_EQ(test, memcmp(in + 15, rin + 15, sizeof(in) - 15), 0);
	KUNIT_EXPECT_NE(test, memcmp(in, rin, 15), 0);
}

static void virgo_wire_test_alloc(struct kunit *test)
{
	static const u32 sizes[] = { 1, 64, 17, 0x40 };
	static const u64 handles[] = { 1, ~0ULL, 0x0123456789abcdefULL, 42 };
	u8 buf[8 + 4 * 8];
	unsigned int i;
	int n;

	KUNIT_EXPECT_EQ(test, virgo_wire_put_alloc_req(buf, 23, sizes, 4),
			-EMSGSIZE);
	n = virgo_wire_put_alloc_req(buf, sizeof(buf), sizes, 4);
	KUNIT_ASSERT_EQ(test, n, 24);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_ALLOC, 0, 0, buf, n,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_batch_count(buf), 4U);
	for (i = 0; i < 4; i++)
		KUNIT_EXPECT_EQ(test, virgo_wire_alloc_size(buf, i), sizes[i]);
	vt_expect_exact_len(test, VIRGO_OP_ALLOC, 0, buf, n, true);

	KUNIT_EXPECT_EQ(test, virgo_wire_put_alloc_rep(buf, 39, handles, 4),
			-EMSGSIZE);
	n = virgo_wire_put_alloc_rep(buf, sizeof(buf), handles, 4);
	KUNIT_ASSERT_EQ(test, n, 40);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_ALLOC,
					     VIRGO_WF_REPLY, 0, buf, n,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_batch_count(buf), 4U);
	for (i = 0; i < 4; i++)
		KUNIT_EXPECT_EQ(test, virgo_wire_handle(buf, i), handles[i]);
	vt_expect_exact_len(test, VIRGO_OP_ALLOC, VIRGO_WF_REPLY, buf, n, true);

	/* Built element by element: same bytes. */
	{
		u8 buf2[sizeof(buf)];

		memset(buf2, 0xee, sizeof(buf2));
		n = virgo_wire_put_batch_hdr(buf2, sizeof(buf2), 4, 8);
		KUNIT_ASSERT_EQ(test, n, 40);
		for (i = 0; i < 4; i++)
			virgo_wire_set_handle(buf2, i, handles[i]);
		KUNIT_EXPECT_EQ(test, memcmp(buf, buf2, 40), 0);
	}
}

static void virgo_wire_test_free(struct kunit *test)
{
	static const u64 handles[] = { 7, 8 };
	u8 buf[8 + 2 * 8];
	int n;

	n = virgo_wire_put_free_req(buf, sizeof(buf), handles, 2);
	KUNIT_ASSERT_EQ(test, n, 24);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_FREE, 0, 0, buf, n,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_batch_count(buf), 2U);
	KUNIT_EXPECT_EQ(test, virgo_wire_handle(buf, 1), 8ULL);
	vt_expect_exact_len(test, VIRGO_OP_FREE, 0, buf, n, true);

	KUNIT_EXPECT_EQ(test, virgo_wire_put_free_rep(buf, 7, 2), -EMSGSIZE);
	n = virgo_wire_put_free_rep(buf, sizeof(buf), 2);
	KUNIT_ASSERT_EQ(test, n, VIRGO_WIRE_FREE_REP_LEN);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_FREE,
					     VIRGO_WF_REPLY, 0, buf, n,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_freed(buf), 2U);
	vt_expect_exact_len(test, VIRGO_OP_FREE, VIRGO_WF_REPLY, buf, n, true);
	/* freed == 0 is fine: nothing of the batch was known. */
	n = virgo_wire_put_free_rep(buf, sizeof(buf), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_FREE,
					     VIRGO_WF_REPLY, 0, buf, n,
					     &vt_lim), 0);
}

/* DISCARD: FREE's layout, its own opcode; the bytes of protocol.md 5.9. */
static void virgo_wire_test_discard(struct kunit *test)
{
	static const u8 req[] = {
		0x56, 0x52, 0x47, 0x4f, 0x01, 0x0a, 0x00, 0x00,
		0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x05, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	};
	static const u8 rep[] = {
		0x56, 0x52, 0x47, 0x4f, 0x01, 0x0a, 0x01, 0x00,
		0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};
	static const u64 handles[] = { 0x0000000100000005ULL, 0, 8, 9, 10 };
	u8 buf[VIRGO_WIRE_HDR_LEN + 8 + 5 * 8];
	int n;

	KUNIT_EXPECT_EQ(test, VIRGO_CAPS_KNOWN & VIRGO_CAP_DISCARD, 0x2U);
	KUNIT_EXPECT_EQ(test, strcmp(virgo_wire_op_name(VIRGO_OP_DISCARD),
				     "DISCARD"), 0);
	virgo_wire_hdr_pack(buf, VIRGO_OP_DISCARD, 0, 16, 0, 9);
	n = virgo_wire_put_discard_req(buf + VIRGO_WIRE_HDR_LEN,
				       sizeof(buf) - VIRGO_WIRE_HDR_LEN,
				       handles, 1);
	KUNIT_ASSERT_EQ(test, n, 16);
	KUNIT_EXPECT_EQ(test, memcmp(buf, req, sizeof(req)), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_DISCARD, 0, 0,
					     buf + VIRGO_WIRE_HDR_LEN, n,
					     &vt_lim), 0);
	vt_expect_exact_len(test, VIRGO_OP_DISCARD, 0,
			    buf + VIRGO_WIRE_HDR_LEN, n, true);
	/* A handle 0 anywhere, or more than max_batch handles: refused. */
	n = virgo_wire_put_discard_req(buf, sizeof(buf), handles, 2);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_DISCARD, 0, 0,
					     buf, n, &vt_lim), -EINVAL);
	n = virgo_wire_put_discard_req(buf, sizeof(buf), handles + 2, 3);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_DISCARD, 0, 0,
					     buf, n, &vt_lim), 0);
	virgo_wire_put_batch_hdr(buf, sizeof(buf), 5, VIRGO_WIRE_HANDLE_LEN);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_DISCARD, 0, 0,
					     buf, 8 + 5 * 8, &vt_lim), -E2BIG);

	virgo_wire_hdr_pack(buf, VIRGO_OP_DISCARD, VIRGO_WF_REPLY, 8, 0, 9);
	KUNIT_EXPECT_EQ(test, virgo_wire_put_discard_rep(buf, 7, 1),
			-EMSGSIZE);
	n = virgo_wire_put_discard_rep(buf + VIRGO_WIRE_HDR_LEN, 8, 1);
	KUNIT_ASSERT_EQ(test, n, VIRGO_WIRE_DISCARD_REP_LEN);
	KUNIT_EXPECT_EQ(test, memcmp(buf, rep, sizeof(rep)), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_DISCARD,
					     VIRGO_WF_REPLY, 0,
					     buf + VIRGO_WIRE_HDR_LEN, n,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_discarded(buf + VIRGO_WIRE_HDR_LEN),
			1U);
	vt_expect_exact_len(test, VIRGO_OP_DISCARD, VIRGO_WF_REPLY,
			    buf + VIRGO_WIRE_HDR_LEN, n, true);
	/* More discarded than a batch can hold is a lie. */
	n = virgo_wire_put_discard_rep(buf, 8, vt_lim.max_batch + 1);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_DISCARD,
					     VIRGO_WF_REPLY, 0, buf, n,
					     &vt_lim), -E2BIG);
}

static void virgo_wire_test_rw(struct kunit *test)
{
	struct virgo_wire_rw rw = { .handle = 0xabcdef0123456789ULL,
				    .offset = 60, .length = 4 }, rw2;
	u8 buf[VIRGO_WIRE_RW_REQ_LEN + 64];
	int n;

	KUNIT_EXPECT_EQ(test, virgo_wire_put_rw_req(buf, 15, &rw), -EMSGSIZE);
	n = virgo_wire_put_rw_req(buf, sizeof(buf), &rw);
	KUNIT_ASSERT_EQ(test, n, VIRGO_WIRE_RW_REQ_LEN);
	memcpy(buf + n, "data", 4);

	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_WRITE, 0, 0, buf,
					     n + 4, &vt_lim), 0);
	memset(&rw2, 0, sizeof(rw2));
	virgo_wire_get_rw(buf, &rw2);
	KUNIT_EXPECT_EQ(test, rw2.handle, rw.handle);
	KUNIT_EXPECT_EQ(test, rw2.offset, rw.offset);
	KUNIT_EXPECT_EQ(test, rw2.length, rw.length);
	KUNIT_EXPECT_PTR_EQ(test, virgo_wire_rw_data(buf),
			    (const void *)(buf + 16));
	vt_expect_exact_len(test, VIRGO_OP_WRITE, 0, buf, n + 4, true);

	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_READ, 0, 0, buf, n,
					     &vt_lim), 0);
	vt_expect_exact_len(test, VIRGO_OP_READ, 0, buf, n, true);

	/* A whole chunk in one go. */
	rw.offset = 0;
	rw.length = vt_lim.max_chunk;
	n = virgo_wire_put_rw_req(buf, sizeof(buf), &rw);
	memset(buf + n, 0x5a, rw.length);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_WRITE, 0, 0, buf,
					     n + rw.length, &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_READ, 0, 0, buf, n,
					     &vt_lim), 0);

	/* Replies: WRITE empty, READ the data. */
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_WRITE,
					     VIRGO_WF_REPLY, 0, NULL, 0,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_READ,
					     VIRGO_WF_REPLY, 0, buf + n,
					     vt_lim.max_chunk, &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_READ,
					     VIRGO_WF_REPLY, 0, buf + n, 1,
					     &vt_lim), 0);
}

static void virgo_wire_test_stat_ping(struct kunit *test)
{
	struct virgo_wire_stat st = {
		.capacity = 1ULL << 33, .free = 1ULL << 32, .lent_bytes = 3,
		.lent_chunks = 4, .sessions = 5, .session_bytes = 6,
		.session_chunks = 7, .requests = ~0ULL,
	}, st2;
	u8 buf[VIRGO_WIRE_STAT_REP_LEN + 1];

	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_STAT, 0, 0, NULL, 0,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_put_stat_rep(buf, 63, &st), -EMSGSIZE);
	KUNIT_ASSERT_EQ(test, virgo_wire_put_stat_rep(buf, sizeof(buf), &st),
			VIRGO_WIRE_STAT_REP_LEN);
	KUNIT_EXPECT_EQ(test, buf[63], 0xff);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_STAT,
					     VIRGO_WF_REPLY, 0, buf,
					     VIRGO_WIRE_STAT_REP_LEN, &vt_lim),
			0);
	memset(&st2, 0, sizeof(st2));
	virgo_wire_get_stat_rep(buf, &st2);
	KUNIT_EXPECT_EQ(test, memcmp(&st, &st2, sizeof(st)), 0);
	vt_expect_exact_len(test, VIRGO_OP_STAT, VIRGO_WF_REPLY, buf,
			    VIRGO_WIRE_STAT_REP_LEN, true);

	memset(buf, 0x42, sizeof(buf));
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_PING, 0, 0, NULL, 0,
					     &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_PING, 0, 0, buf,
					     VIRGO_WIRE_PING_MAX, &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, vt_frame_check(test, VIRGO_OP_PING,
					     VIRGO_WF_REPLY, 0, buf,
					     VIRGO_WIRE_PING_MAX, &vt_lim), 0);
}

/* A reply with an error status is well formed for every opcode. */
static void virgo_wire_test_error_replies(struct kunit *test)
{
	struct virgo_wire_msg m;
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	u32 op, st;
	int ret;

	for (op = VIRGO_OP_MIN; op <= VIRGO_OP_MAX; op++) {
		for (st = VIRGO_ST_INVAL; st <= VIRGO_ST_MAX; st++) {
			virgo_wire_hdr_pack(hdr, (u8)op, VIRGO_WF_REPLY, 0, st,
					    op);
			ret = virgo_wire_hdr_unpack(hdr, &m, &vt_lim);
			KUNIT_EXPECT_EQ(test, ret, 0);
			ret = virgo_wire_check_rep(&m, NULL, &vt_lim);
			KUNIT_EXPECT_EQ(test, ret, 0);
			virgo_wire_hdr_pack(hdr, (u8)op, VIRGO_WF_REPLY, 1, st,
					    op);
			ret = virgo_wire_hdr_unpack(hdr, &m, &vt_lim);
			KUNIT_EXPECT_EQ(test, ret, -EINVAL);
		}
	}
}

/* Each checker refuses the other direction. */
static void virgo_wire_test_direction(struct kunit *test)
{
	struct virgo_wire_msg req = { .opcode = VIRGO_OP_PING };
	struct virgo_wire_msg rep = { .opcode = VIRGO_OP_PING,
				      .flags = VIRGO_WF_REPLY };
	struct virgo_wire_msg bad = { .opcode = 0 };

	KUNIT_EXPECT_EQ(test, virgo_wire_check_req(&req, NULL, &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_check_rep(&rep, NULL, &vt_lim), 0);
	KUNIT_EXPECT_EQ(test, virgo_wire_check_req(&rep, NULL, &vt_lim),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_wire_check_rep(&req, NULL, &vt_lim),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_wire_check_req(&bad, NULL, &vt_lim),
			-EPROTONOSUPPORT);
	/* Length without a buffer. */
	req.len = 1;
	KUNIT_EXPECT_EQ(test, virgo_wire_check_req(&req, NULL, &vt_lim),
			-EINVAL);
	/* Checkers repeat the header's length check. */
	req.len = vt_lim.max_payload + 1;
	KUNIT_EXPECT_EQ(test, virgo_wire_check_req(&req, NULL, &vt_lim),
			-EMSGSIZE);
}

/*
 * Counts whose byte length wraps 32 bits, under limits too loose to catch
 * them first: the length must be compared in 64 bits, or the checker would
 * walk 2^30 elements of a 16-byte payload.
 */
static void virgo_wire_test_wrap(struct kunit *test)
{
	static const struct virgo_wire_limits loose = {
		.max_payload = 0xffffffff,
		.max_chunk = 0xffffffff,
		.max_batch = 0xffffffff,
	};
	struct virgo_wire_msg m = { .opcode = VIRGO_OP_ALLOC };
	u8 p[16] = { 0 };

	/* 8 + 4 * 0x40000002 = 2^32 + 16 */
	put_unaligned_le32(0x40000002, p);
	put_unaligned_le32(1, p + 8);
	put_unaligned_le32(1, p + 12);
	KUNIT_EXPECT_EQ(test, vt_check(test, &m, p, 16, &loose), -EINVAL);

	/* 8 + 8 * 0x20000001 = 2^32 + 16 */
	m.opcode = VIRGO_OP_FREE;
	put_unaligned_le32(0x20000001, p);
	put_unaligned_le64(1, p + 8);
	KUNIT_EXPECT_EQ(test, vt_check(test, &m, p, 16, &loose), -EINVAL);
	m.flags = VIRGO_WF_REPLY;
	m.opcode = VIRGO_OP_ALLOC;
	KUNIT_EXPECT_EQ(test, vt_check(test, &m, p, 16, &loose), -EINVAL);

	/* offset + length = 2^32 + 1 must not pass as 1 */
	m.flags = 0;
	m.opcode = VIRGO_OP_READ;
	put_unaligned_le64(1, p);
	put_unaligned_le32(0xffffffff, p + 8);
	put_unaligned_le32(2, p + 12);
	KUNIT_EXPECT_EQ(test, vt_check(test, &m, p, 16, &loose), -ERANGE);
}

static void virgo_wire_test_encoder_bounds(struct kunit *test)
{
	static const u64 h[1] = { 1 };
	u32 big = VIRGO_WIRE_MAX_PAYLOAD_LIMIT;
	u8 buf[16];

	/* Sizes that do not fit an int nor the hard limit. */
	KUNIT_EXPECT_EQ(test, virgo_wire_put_batch_hdr(buf, (size_t)-1,
						       0xffffffff, 8),
			-EMSGSIZE);
	KUNIT_EXPECT_EQ(test, virgo_wire_put_batch_hdr(buf, (size_t)-1,
						       0xffffffff, 0xffffffff),
			-EMSGSIZE);
	KUNIT_EXPECT_EQ(test, virgo_wire_put_batch_hdr(buf, (size_t)-1,
						       big / 4, 4),
			-EMSGSIZE);
	KUNIT_EXPECT_EQ(test, virgo_wire_put_batch_hdr(buf, 7, 0, 8),
			-EMSGSIZE);
	KUNIT_EXPECT_EQ(test, virgo_wire_put_free_req(buf, 15, h, 1),
			-EMSGSIZE);
	KUNIT_EXPECT_EQ(test, virgo_wire_put_free_req(buf, 16, h, 1), 16);
}

static void virgo_wire_test_status_errno(struct kunit *test)
{
	static const struct {
		u32 status;
		int err;
		const char *name;
	} map[] = {
		{ VIRGO_ST_OK, 0, "OK" },
		{ VIRGO_ST_INVAL, -EINVAL, "INVAL" },
		{ VIRGO_ST_NOMEM, -ENOMEM, "NOMEM" },
		{ VIRGO_ST_NOENT, -ENOENT, "NOENT" },
		{ VIRGO_ST_RANGE, -ERANGE, "RANGE" },
		{ VIRGO_ST_PERM, -EACCES, "PERM" },
		{ VIRGO_ST_AUTH, -EKEYREJECTED, "AUTH" },
		{ VIRGO_ST_TOOBIG, -E2BIG, "TOOBIG" },
		{ VIRGO_ST_BUSY, -EBUSY, "BUSY" },
		{ VIRGO_ST_PROTO, -EPROTONOSUPPORT, "PROTO" },
		{ VIRGO_ST_IO, -EIO, "IO" },
	};
	unsigned int i;

	KUNIT_EXPECT_EQ(test, (unsigned int)ARRAY_SIZE(map), VIRGO_ST_MAX + 1U);
	for (i = 0; i < ARRAY_SIZE(map); i++) {
		KUNIT_EXPECT_EQ(test, map[i].status, (u32)i);
		KUNIT_EXPECT_EQ(test, virgo_status_to_errno(map[i].status),
				map[i].err);
		KUNIT_EXPECT_EQ(test, virgo_errno_to_status(map[i].err),
				map[i].status);
		KUNIT_EXPECT_EQ(test, strcmp(virgo_wire_status_name(i),
					     map[i].name), 0);
	}
	KUNIT_EXPECT_EQ(test, virgo_status_to_errno(VIRGO_ST_MAX + 1), -EIO);
	KUNIT_EXPECT_EQ(test, virgo_status_to_errno(0xffffffff), -EIO);
	KUNIT_EXPECT_EQ(test, virgo_errno_to_status(-EPERM), (u32)VIRGO_ST_IO);
	KUNIT_EXPECT_EQ(test, virgo_errno_to_status(-EPROTO), (u32)VIRGO_ST_IO);
	KUNIT_EXPECT_EQ(test, virgo_errno_to_status(EINVAL), (u32)VIRGO_ST_IO);
	KUNIT_EXPECT_EQ(test, strcmp(virgo_wire_status_name(VIRGO_ST_MAX + 1),
				     "?"), 0);

	/* Every checker error maps to the status a server replies with. */
	KUNIT_EXPECT_EQ(test, virgo_errno_to_status(-E2BIG),
			(u32)VIRGO_ST_TOOBIG);
	KUNIT_EXPECT_EQ(test, virgo_errno_to_status(-ERANGE),
			(u32)VIRGO_ST_RANGE);

	KUNIT_EXPECT_EQ(test, strcmp(virgo_wire_op_name(VIRGO_OP_ALLOC),
				     "ALLOC"), 0);
	KUNIT_EXPECT_EQ(test, strcmp(virgo_wire_op_name(VIRGO_OP_PING),
				     "PING"), 0);
	KUNIT_EXPECT_EQ(test, strcmp(virgo_wire_op_name(0), "?"), 0);
	KUNIT_EXPECT_EQ(test,
			strcmp(virgo_wire_op_name(VIRGO_OP_MAX + 1), "?"), 0);
}

/*
 * The frame table.  Payloads are lists of little-endian fields; every
 * frame is checked against vt_lim (max_payload 96, max_chunk 64,
 * max_batch 4).
 */
struct vt_field {
	u8 size;	/* bytes of one little-endian integer: 1, 2, 4 or 8 */
	u8 count;	/* how often it repeats; 0 ends the list */
	u64 val;
};

struct vt_frame {
	const char *name;
	int expect;
	u32 magic;
	u8 version;
	u8 opcode;
	u16 flags;
	bool fixed_len;	/* use .len, not the length of .fields */
	u32 len;
	u32 status;
	struct vt_field fields[12];
};

#define VT_U8(v)	{ .size = 1, .count = 1, .val = (v) }
#define VT_LE16(v)	{ .size = 2, .count = 1, .val = (v) }
#define VT_LE32(v)	{ .size = 4, .count = 1, .val = (v) }
#define VT_LE64(v)	{ .size = 8, .count = 1, .val = (v) }
#define VT_BYTES(n, v)	{ .size = 1, .count = (n), .val = (v) }

#define VT_REQ(_name, _err, _op, ...)					\
	{ .name = _name, .expect = _err, .magic = VIRGO_WIRE_MAGIC,	\
	  .version = VIRGO_WIRE_VERSION, .opcode = _op,		\
	  .fields = { __VA_ARGS__ } }
#define VT_REP(_name, _err, _op, ...)					\
	{ .name = _name, .expect = _err, .magic = VIRGO_WIRE_MAGIC,	\
	  .version = VIRGO_WIRE_VERSION, .opcode = _op,		\
	  .flags = VIRGO_WF_REPLY, .fields = { __VA_ARGS__ } }
#define VT_HDR(_name, _err, _magic, _ver, _op, _flags, _len, _status)	\
	{ .name = _name, .expect = _err, .magic = _magic,		\
	  .version = _ver, .opcode = _op, .flags = _flags,		\
	  .fixed_len = true, .len = _len, .status = _status }

#define VT_M		VIRGO_WIRE_MAGIC
#define VT_V		VIRGO_WIRE_VERSION
#define VT_R		VIRGO_WF_REPLY
#define VT_NONCE	VT_BYTES(32, 0x5a)

static const struct vt_frame vt_frames[] = {
	/* Header: framing is lost, the connection is dropped. */
	VT_HDR("bad magic", -EPROTO, 0x4f475257, VT_V, VIRGO_OP_PING, 0, 0, 0),
	VT_HDR("magic byte-swapped", -EPROTO, 0x5652474f, VT_V,
	       VIRGO_OP_PING, 0, 0, 0),
	VT_HDR("zero magic", -EPROTO, 0, 0, 0, 0, 0, 0),
	VT_HDR("version 0", -EPROTONOSUPPORT, VT_M, 0, VIRGO_OP_PING, 0, 0, 0),
	VT_HDR("version 2", -EPROTONOSUPPORT, VT_M, 2, VIRGO_OP_PING, 0, 0, 0),
	VT_HDR("version 255", -EPROTONOSUPPORT, VT_M, 255, VIRGO_OP_HELLO,
	       0, 40, 0),
	VT_HDR("opcode 0", -EPROTONOSUPPORT, VT_M, VT_V, 0, 0, 0, 0),
	VT_HDR("opcode 12", -EPROTONOSUPPORT, VT_M, VT_V, 12, 0, 0, 0),
	VT_HDR("opcode 255 reply", -EPROTONOSUPPORT, VT_M, VT_V, 255, VT_R,
	       0, 0),
	VT_HDR("unknown flag 0x2", -EINVAL, VT_M, VT_V, VIRGO_OP_PING, 0x2,
	       0, 0),
	VT_HDR("unknown flag 0x8000 reply", -EINVAL, VT_M, VT_V,
	       VIRGO_OP_PING, VT_R | 0x8000, 0, 0),
	VT_HDR("status in request", -EINVAL, VT_M, VT_V, VIRGO_OP_PING, 0, 0,
	       VIRGO_ST_INVAL),
	VT_HDR("status out of range", -EINVAL, VT_M, VT_V, VIRGO_OP_PING, VT_R,
	       0, VIRGO_ST_MAX + 1),
	VT_HDR("status 0xffffffff", -EINVAL, VT_M, VT_V, VIRGO_OP_READ, VT_R,
	       0, 0xffffffff),
	VT_HDR("error status with payload", -EINVAL, VT_M, VT_V,
	       VIRGO_OP_READ, VT_R, 4, VIRGO_ST_NOENT),
	VT_HDR("len over max_payload", -EMSGSIZE, VT_M, VT_V, VIRGO_OP_WRITE,
	       0, 97, 0),
	VT_HDR("len 0xffffffff", -EMSGSIZE, VT_M, VT_V, VIRGO_OP_READ, VT_R,
	       0xffffffff, 0),
	VT_HDR("error reply, empty", 0, VT_M, VT_V, VIRGO_OP_ALLOC, VT_R, 0,
	       VIRGO_ST_NOMEM),
	VT_HDR("len == max_payload", -EINVAL, VT_M, VT_V, VIRGO_OP_WRITE, 0,
	       96, 0),	/* header fine; the zero handle fails the payload */

	/* HELLO request */
	VT_REQ("hello req ok", 0, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(1), VT_LE32(0), VT_NONCE),
	VT_REQ("hello req range without v1 is well formed", 0, VIRGO_OP_HELLO,
	       VT_LE16(2), VT_LE16(7), VT_LE32(0), VT_NONCE),
	VT_REQ("hello req truncated", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(1), VT_LE32(0), VT_BYTES(31, 0x5a)),
	VT_REQ("hello req too long", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(1), VT_LE32(0), VT_BYTES(33, 0x5a)),
	VT_REQ("hello req ver_min 0", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(0), VT_LE16(1), VT_LE32(0), VT_NONCE),
	VT_REQ("hello req ver_min > ver_max", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(2), VT_LE16(1), VT_LE32(0), VT_NONCE),
	VT_HDR("hello req empty", -EINVAL, VT_M, VT_V, VIRGO_OP_HELLO, 0, 0, 0),

	/* AUTH request */
	VT_REQ("auth req ok", 0, VIRGO_OP_AUTH, VT_BYTES(32, 0xa5)),
	VT_REQ("auth req truncated", -EINVAL, VIRGO_OP_AUTH,
	       VT_BYTES(31, 0xa5)),
	VT_REQ("auth req too long", -EINVAL, VIRGO_OP_AUTH, VT_BYTES(33, 0xa5)),
	VT_HDR("auth req empty", -EINVAL, VT_M, VT_V, VIRGO_OP_AUTH, 0, 0, 0),

	/* ALLOC request */
	VT_REQ("alloc req ok", 0, VIRGO_OP_ALLOC,
	       VT_LE32(2), VT_LE32(0), VT_LE32(1), VT_LE32(64)),
	VT_REQ("alloc req max_batch", 0, VIRGO_OP_ALLOC,
	       VT_LE32(4), VT_LE32(0), VT_LE32(1), VT_LE32(2), VT_LE32(3),
	       VT_LE32(4)),
	VT_HDR("alloc req empty", -EINVAL, VT_M, VT_V, VIRGO_OP_ALLOC, 0, 0, 0),
	VT_REQ("alloc req truncated head", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(1), VT_LE16(0), VT_U8(0)),
	VT_REQ("alloc req count 0", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(0), VT_LE32(0)),
	VT_REQ("alloc req count over max_batch", -E2BIG, VIRGO_OP_ALLOC,
	       VT_LE32(5), VT_LE32(0), VT_LE32(1), VT_LE32(1), VT_LE32(1),
	       VT_LE32(1), VT_LE32(1)),
	VT_REQ("alloc req count 0xffffffff", -E2BIG, VIRGO_OP_ALLOC,
	       VT_LE32(0xffffffff), VT_LE32(0), VT_LE32(1)),
	VT_REQ("alloc req count 0x40000002 (wraps 32 bits)", -E2BIG,
	       VIRGO_OP_ALLOC, VT_LE32(0x40000002), VT_LE32(0)),
	VT_REQ("alloc req reserved", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(1), VT_LE32(1), VT_LE32(1)),
	VT_REQ("alloc req count 2, one size", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(2), VT_LE32(0), VT_LE32(1)),
	VT_REQ("alloc req count 1, two sizes", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(1), VT_LE32(0), VT_LE32(1), VT_LE32(1)),
	VT_REQ("alloc req partial size", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(1), VT_LE32(0), VT_LE16(1)),
	VT_REQ("alloc req size 0", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(2), VT_LE32(0), VT_LE32(1), VT_LE32(0)),
	VT_REQ("alloc req size over max_chunk", -E2BIG, VIRGO_OP_ALLOC,
	       VT_LE32(1), VT_LE32(0), VT_LE32(65)),
	VT_REQ("alloc req size 0xffffffff", -E2BIG, VIRGO_OP_ALLOC,
	       VT_LE32(2), VT_LE32(0), VT_LE32(8), VT_LE32(0xffffffff)),

	/* FREE request */
	VT_REQ("free req ok", 0, VIRGO_OP_FREE,
	       VT_LE32(1), VT_LE32(0), VT_LE64(~0ULL)),
	VT_HDR("free req empty", -EINVAL, VT_M, VT_V, VIRGO_OP_FREE, 0, 0, 0),
	VT_REQ("free req count 0", -EINVAL, VIRGO_OP_FREE,
	       VT_LE32(0), VT_LE32(0)),
	VT_REQ("free req count over max_batch", -E2BIG, VIRGO_OP_FREE,
	       VT_LE32(5), VT_LE32(0), VT_LE64(1), VT_LE64(2), VT_LE64(3),
	       VT_LE64(4), VT_LE64(5)),
	VT_REQ("free req count 0x20000001 (wraps 32 bits)", -E2BIG,
	       VIRGO_OP_FREE, VT_LE32(0x20000001), VT_LE32(0), VT_LE64(1)),
	VT_REQ("free req reserved", -EINVAL, VIRGO_OP_FREE,
	       VT_LE32(1), VT_LE32(0x80000000), VT_LE64(1)),
	VT_REQ("free req count 2, one handle", -EINVAL, VIRGO_OP_FREE,
	       VT_LE32(2), VT_LE32(0), VT_LE64(1)),
	VT_REQ("free req half a handle", -EINVAL, VIRGO_OP_FREE,
	       VT_LE32(1), VT_LE32(0), VT_LE32(1)),
	VT_REQ("free req handle 0", -EINVAL, VIRGO_OP_FREE,
	       VT_LE32(2), VT_LE32(0), VT_LE64(1), VT_LE64(0)),

	/* WRITE request */
	VT_REQ("write req ok", 0, VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(62), VT_LE32(2), VT_BYTES(2, 0x33)),
	VT_REQ("write req truncated head", -EINVAL, VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(0), VT_LE16(1), VT_U8(0)),
	VT_REQ("write req handle 0", -EINVAL, VIRGO_OP_WRITE,
	       VT_LE64(0), VT_LE32(0), VT_LE32(1), VT_U8(0)),
	VT_REQ("write req length 0", -EINVAL, VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(0), VT_LE32(0)),
	VT_REQ("write req length over max_chunk", -E2BIG, VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(0), VT_LE32(65), VT_BYTES(65, 0)),
	VT_REQ("write req offset+length overflows 32 bits", -ERANGE,
	       VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(0xffffffff), VT_LE32(2), VT_BYTES(2, 0)),
	VT_REQ("write req offset+length over max_chunk", -ERANGE,
	       VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(63), VT_LE32(2), VT_BYTES(2, 0)),
	VT_REQ("write req offset == max_chunk", -ERANGE, VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(64), VT_LE32(1), VT_U8(0)),
	VT_REQ("write req data shorter than length", -EINVAL, VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(0), VT_LE32(4), VT_BYTES(3, 0)),
	VT_REQ("write req data longer than length", -EINVAL, VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(0), VT_LE32(4), VT_BYTES(5, 0)),
	VT_REQ("write req no data", -EINVAL, VIRGO_OP_WRITE,
	       VT_LE64(1), VT_LE32(0), VT_LE32(4)),

	/* READ request */
	VT_REQ("read req ok", 0, VIRGO_OP_READ,
	       VT_LE64(2), VT_LE32(0), VT_LE32(64)),
	VT_REQ("read req truncated", -EINVAL, VIRGO_OP_READ,
	       VT_LE64(2), VT_LE32(0), VT_LE16(1), VT_U8(0)),
	VT_REQ("read req with data", -EINVAL, VIRGO_OP_READ,
	       VT_LE64(2), VT_LE32(0), VT_LE32(1), VT_U8(0)),
	VT_REQ("read req handle 0", -EINVAL, VIRGO_OP_READ,
	       VT_LE64(0), VT_LE32(0), VT_LE32(1)),
	VT_REQ("read req length 0", -EINVAL, VIRGO_OP_READ,
	       VT_LE64(2), VT_LE32(0), VT_LE32(0)),
	VT_REQ("read req length over max_chunk", -E2BIG, VIRGO_OP_READ,
	       VT_LE64(2), VT_LE32(0), VT_LE32(65)),
	VT_REQ("read req length 0xffffffff", -E2BIG, VIRGO_OP_READ,
	       VT_LE64(2), VT_LE32(1), VT_LE32(0xffffffff)),
	VT_REQ("read req offset+length overflows 32 bits", -ERANGE,
	       VIRGO_OP_READ, VT_LE64(2), VT_LE32(0xffffffff), VT_LE32(2)),
	VT_REQ("read req offset == max_chunk", -ERANGE, VIRGO_OP_READ,
	       VT_LE64(2), VT_LE32(64), VT_LE32(1)),

	/* STAT and PING requests */
	VT_HDR("stat req ok", 0, VT_M, VT_V, VIRGO_OP_STAT, 0, 0, 0),
	VT_REQ("stat req with payload", -EINVAL, VIRGO_OP_STAT, VT_U8(0)),
	VT_HDR("ping req empty", 0, VT_M, VT_V, VIRGO_OP_PING, 0, 0, 0),
	VT_REQ("ping req 64", 0, VIRGO_OP_PING, VT_BYTES(64, 0xab)),
	VT_REQ("ping req 65", -E2BIG, VIRGO_OP_PING, VT_BYTES(65, 0xab)),

	/* HELLO reply */
	VT_REP("hello rep ok", 0, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(0), VT_LE32(0), VT_LE32(96), VT_LE32(64),
	       VT_LE32(4), VT_LE32(1), VT_LE64(100), VT_LE64(100), VT_NONCE),
	VT_REP("hello rep truncated", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(0), VT_LE32(0), VT_LE32(96), VT_LE32(64),
	       VT_LE32(4), VT_LE32(1), VT_LE64(100), VT_LE64(100),
	       VT_BYTES(31, 0)),
	VT_REP("hello rep too long", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(0), VT_LE32(0), VT_LE32(96), VT_LE32(64),
	       VT_LE32(4), VT_LE32(1), VT_LE64(100), VT_LE64(100),
	       VT_BYTES(33, 0)),
	VT_REP("hello rep version 2", -EPROTONOSUPPORT, VIRGO_OP_HELLO,
	       VT_LE16(2), VT_LE16(0), VT_LE32(0), VT_LE32(96), VT_LE32(64),
	       VT_LE32(4), VT_LE32(1), VT_LE64(100), VT_LE64(100), VT_NONCE),
	VT_REP("hello rep unknown flag", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(2), VT_LE32(0), VT_LE32(96), VT_LE32(64),
	       VT_LE32(4), VT_LE32(1), VT_LE64(100), VT_LE64(100), VT_NONCE),
	VT_REP("hello rep max_chunk 0", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(1), VT_LE32(0), VT_LE32(96), VT_LE32(0),
	       VT_LE32(4), VT_LE32(1), VT_LE64(100), VT_LE64(100), VT_NONCE),
	VT_REP("hello rep max_payload < max_chunk + 16", -EINVAL,
	       VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(1), VT_LE32(0), VT_LE32(96), VT_LE32(81),
	       VT_LE32(4), VT_LE32(1), VT_LE64(100), VT_LE64(100), VT_NONCE),
	VT_REP("hello rep max_batch 0", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(1), VT_LE32(0), VT_LE32(96), VT_LE32(64),
	       VT_LE32(0), VT_LE32(1), VT_LE64(100), VT_LE64(100), VT_NONCE),
	VT_REP("hello rep max_inflight 0", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(0), VT_LE32(0), VT_LE32(96), VT_LE32(64),
	       VT_LE32(4), VT_LE32(0), VT_LE64(100), VT_LE64(100),
	       VT_NONCE),
	VT_REP("hello rep free > capacity", -EINVAL, VIRGO_OP_HELLO,
	       VT_LE16(1), VT_LE16(0), VT_LE32(0), VT_LE32(96), VT_LE32(64),
	       VT_LE32(4), VT_LE32(1), VT_LE64(100), VT_LE64(101),
	       VT_NONCE),

	/* AUTH, ALLOC, FREE replies */
	VT_REP("auth rep ok", 0, VIRGO_OP_AUTH, VT_BYTES(32, 1)),
	VT_REP("auth rep truncated", -EINVAL, VIRGO_OP_AUTH, VT_BYTES(31, 1)),
	VT_REP("alloc rep ok", 0, VIRGO_OP_ALLOC,
	       VT_LE32(1), VT_LE32(0), VT_LE64(0x8000000000000000ULL)),
	VT_HDR("alloc rep empty", -EINVAL, VT_M, VT_V, VIRGO_OP_ALLOC, VT_R,
	       0, 0),
	VT_REP("alloc rep count 0", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(0), VT_LE32(0)),
	VT_REP("alloc rep count over max_batch", -E2BIG, VIRGO_OP_ALLOC,
	       VT_LE32(5), VT_LE32(0), VT_LE64(1)),
	VT_REP("alloc rep count/len mismatch", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(2), VT_LE32(0), VT_LE64(1), VT_LE32(1)),
	VT_REP("alloc rep reserved", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(1), VT_LE32(1), VT_LE64(1)),
	VT_REP("alloc rep handle 0", -EINVAL, VIRGO_OP_ALLOC,
	       VT_LE32(1), VT_LE32(0), VT_LE64(0)),
	VT_REP("free rep ok", 0, VIRGO_OP_FREE, VT_LE32(4), VT_LE32(0)),
	VT_REP("free rep truncated", -EINVAL, VIRGO_OP_FREE, VT_LE32(1)),
	VT_REP("free rep too long", -EINVAL, VIRGO_OP_FREE,
	       VT_LE32(1), VT_LE32(0), VT_U8(0)),
	VT_REP("free rep reserved", -EINVAL, VIRGO_OP_FREE,
	       VT_LE32(1), VT_LE32(1)),
	VT_REP("free rep freed over max_batch", -E2BIG, VIRGO_OP_FREE,
	       VT_LE32(5), VT_LE32(0)),

	/* WRITE, READ, STAT, PING replies */
	VT_HDR("write rep ok", 0, VT_M, VT_V, VIRGO_OP_WRITE, VT_R, 0, 0),
	VT_REP("write rep with payload", -EINVAL, VIRGO_OP_WRITE, VT_U8(0)),
	VT_REP("read rep ok", 0, VIRGO_OP_READ, VT_BYTES(64, 0x77)),
	VT_HDR("read rep empty", -EINVAL, VT_M, VT_V, VIRGO_OP_READ, VT_R, 0,
	       0),
	VT_REP("read rep over max_chunk", -E2BIG, VIRGO_OP_READ,
	       VT_BYTES(65, 0x77)),
	VT_REP("stat rep ok", 0, VIRGO_OP_STAT,
	       VT_LE64(10), VT_LE64(10), VT_LE64(0), VT_LE64(0), VT_LE64(1),
	       VT_LE64(0), VT_LE64(0), VT_LE64(~0ULL)),
	VT_REP("stat rep truncated", -EINVAL, VIRGO_OP_STAT,
	       VT_LE64(10), VT_LE64(10), VT_LE64(0), VT_LE64(0), VT_LE64(1),
	       VT_LE64(0), VT_LE64(0), VT_BYTES(7, 0)),
	VT_REP("stat rep free > capacity", -EINVAL, VIRGO_OP_STAT,
	       VT_LE64(10), VT_LE64(11), VT_LE64(0), VT_LE64(0), VT_LE64(1),
	       VT_LE64(0), VT_LE64(0), VT_LE64(0)),
	VT_HDR("stat rep empty", -EINVAL, VT_M, VT_V, VIRGO_OP_STAT, VT_R, 0,
	       0),
	VT_HDR("ping rep empty", 0, VT_M, VT_V, VIRGO_OP_PING, VT_R, 0, 0),
	VT_REP("ping rep 65", -E2BIG, VIRGO_OP_PING, VT_BYTES(65, 0)),
};

static void vt_frame_desc(const struct vt_frame *f, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", f->name);
}

KUNIT_ARRAY_PARAM(vt_frames, vt_frames, vt_frame_desc);

/* Lay out @f's header and payload in @buf; return the payload bytes. */
static u32 vt_build(struct kunit *test, const struct vt_frame *f, u8 *buf)
{
	u32 off = VIRGO_WIRE_HDR_LEN, len;
	unsigned int i, j, k;

	for (i = 0; i < ARRAY_SIZE(f->fields) && f->fields[i].count; i++) {
		const struct vt_field *fl = &f->fields[i];

		for (j = 0; j < fl->count; j++) {
			KUNIT_ASSERT_LE(test, off + fl->size, (u32)VT_BUF);
			for (k = 0; k < fl->size; k++)
				buf[off++] = (u8)(fl->val >> (8 * k));
		}
	}
	len = f->fixed_len ? f->len : off - VIRGO_WIRE_HDR_LEN;

	/* By hand, so the table does not depend on virgo_wire_hdr_pack(). */
	buf[0] = (u8)f->magic;
	buf[1] = (u8)(f->magic >> 8);
	buf[2] = (u8)(f->magic >> 16);
	buf[3] = (u8)(f->magic >> 24);
	buf[4] = f->version;
	buf[5] = f->opcode;
	buf[6] = (u8)f->flags;
	buf[7] = (u8)(f->flags >> 8);
	for (k = 0; k < 4; k++) {
		buf[8 + k] = (u8)(len >> (8 * k));
		buf[12 + k] = (u8)(f->status >> (8 * k));
	}
	for (k = 0; k < 8; k++)
		buf[16 + k] = (u8)(VT_TAG >> (8 * k));
	return off - VIRGO_WIRE_HDR_LEN;
}

static void virgo_wire_test_frames(struct kunit *test)
{
	const struct vt_frame *f = test->param_value;
	struct virgo_wire_msg m;
	u32 built;
	u8 *buf;
	int ret;

	buf = kunit_kzalloc(test, VT_BUF, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	built = vt_build(test, f, buf);

	ret = virgo_wire_hdr_unpack(buf, &m, &vt_lim);
	if (ret) {
		KUNIT_EXPECT_EQ_MSG(test, ret, f->expect, "%s (header)",
				    f->name);
		return;
	}
	KUNIT_EXPECT_EQ(test, m.tag, VT_TAG);
	/* The payload the header announces must be in the buffer. */
	KUNIT_ASSERT_LE(test, m.len, (u32)(VT_BUF - VIRGO_WIRE_HDR_LEN));
	if (!f->fixed_len)
		KUNIT_EXPECT_EQ(test, m.len, built);
	ret = vt_check(test, &m, buf + VIRGO_WIRE_HDR_LEN, m.len, &vt_lim);
	KUNIT_EXPECT_EQ_MSG(test, ret, f->expect, "%s (payload)", f->name);
}

static struct kunit_case virgo_wire_test_cases[] = {
	KUNIT_CASE(virgo_wire_test_layout),
	KUNIT_CASE(virgo_wire_test_limits),
	KUNIT_CASE(virgo_wire_test_known_bytes),
	KUNIT_CASE(virgo_wire_test_hdr_roundtrip),
	KUNIT_CASE(virgo_wire_test_hello),
	KUNIT_CASE(virgo_wire_test_auth),
	KUNIT_CASE(virgo_wire_test_resume),
	KUNIT_CASE(virgo_wire_test_join),
	KUNIT_CASE(virgo_wire_test_alloc),
	KUNIT_CASE(virgo_wire_test_free),
	KUNIT_CASE(virgo_wire_test_discard),
	KUNIT_CASE(virgo_wire_test_rw),
	KUNIT_CASE(virgo_wire_test_stat_ping),
	KUNIT_CASE(virgo_wire_test_error_replies),
	KUNIT_CASE(virgo_wire_test_direction),
	KUNIT_CASE(virgo_wire_test_wrap),
	KUNIT_CASE(virgo_wire_test_encoder_bounds),
	KUNIT_CASE(virgo_wire_test_status_errno),
	KUNIT_CASE_PARAM(virgo_wire_test_frames, vt_frames_gen_params),
	{}
};

static struct kunit_suite virgo_wire_test_suite = {
	.name = "virgo_wire",
	.test_cases = virgo_wire_test_cases,
};

kunit_test_suite(virgo_wire_test_suite);

MODULE_DESCRIPTION("KUnit tests for the virgo wire codec");
MODULE_LICENSE("GPL");
