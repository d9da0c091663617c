// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libFuzzer harness for the virgo wire codec (include/virgo_wire.h, built
 * for user space).
 *
 * Input layout:
 *   byte 0        limits selector: 0 default, 1 small (96/64/4),
 *                 2 tightest coherent (72/56/8), 3 raw: the next 12 bytes
 *                 are max_payload, max_chunk, max_batch (little-endian, not
 *                 necessarily coherent: the codec must stay memory-safe)
 *   then          a stream of frames, decoded like a peer does: a header
 *                 error ends the stream (framing is lost), a missing
 *                 payload ends it, a payload error goes on to the next
 *                 frame.
 *
 * Every header and payload is copied into a buffer of exactly its size, so
 * AddressSanitizer sees any read past it.  For each frame:
 *  - error codes must be among those documented;
 *  - a frame that validates must obey the rules of docs/protocol.md,
 *    checked here independently of the codec;
 *  - it is decoded with the getters and encoded again with the encoders
 *    (into a buffer of exactly its size) and must come out byte for byte
 *    identical; the encoders must refuse a buffer one byte short;
 *  - the payload is checked once more under limits of 0xffffffff, where no
 *    count or size limit hides an overflowing length computation (a count
 *    of 0x20000001 handles "fits" 16 bytes in 32-bit arithmetic), with the
 *    same rules and round trip if it passes.
 * Any violation abort()s.
 *
 * The entry point is spelled virgo_fuzz_one_input() here and renamed to
 * the name libFuzzer calls by -D in the Makefile (checkpatch refuses the
 * CamelCase name).
 */
#include <stdio.h>
#include <stdlib.h>
#include <virgo_wire.h>

#define FUZZ_CHECK(cond)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "%s:%d: check failed: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/* Exactly @n bytes (malloc(0) too: ASan flags any access to it). */
static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p && n)
		abort();
	return p;
}

static const struct virgo_wire_limits loose = {
	0xffffffff, 0xffffffff, 0xffffffff
};

/* Read the limits selector; return the bytes it used. */
static size_t fuzz_limits(const u8 *data, size_t size,
			  struct virgo_wire_limits *lim)
{
	virgo_wire_limits_default(lim);
	if (!size)
		return 0;
	switch (data[0] & 3) {
	case 1:
		*lim = (struct virgo_wire_limits){ 96, 64, 4 };
		break;
	case 2:
		*lim = (struct virgo_wire_limits){ 72, 56, 8 };
		break;
	case 3:
		if (size < 13)
			return 1;
		lim->max_payload = get_unaligned_le32(data + 1);
		lim->max_chunk = get_unaligned_le32(data + 5);
		lim->max_batch = get_unaligned_le32(data + 9);
		return 13;
	}
	return 1;
}

/* The coherence rules, restated. */
static void check_limits(const struct virgo_wire_limits *lim)
{
	u64 p = lim->max_payload;
	bool ok = lim->max_chunk >= 1 &&
		  lim->max_chunk <= VIRGO_WIRE_MAX_CHUNK_LIMIT &&
		  lim->max_batch >= 1 &&
		  lim->max_batch <= VIRGO_WIRE_MAX_BATCH_LIMIT &&
		  p <= VIRGO_WIRE_MAX_PAYLOAD_LIMIT && p >= 72 &&
		  p >= (u64)lim->max_chunk + 16 &&
		  p >= 8 + 8 * (u64)lim->max_batch;

	FUZZ_CHECK(ok == !virgo_wire_limits_check(lim));
}

/*
 * The rules of docs/protocol.md for a payload the codec accepted, and its
 * re-encoding.  @frame holds the header and @m->len payload bytes.
 */
static void roundtrip(const struct virgo_wire_msg *m, const u8 *frame,
		      const struct virgo_wire_limits *lim)
{
	const u8 *pl = frame + VIRGO_WIRE_HDR_LEN;
	bool reply = virgo_wire_is_reply(m);
	size_t total = VIRGO_WIRE_HDR_LEN + (size_t)m->len;
	u8 *out = xmalloc(total);
	u8 *p = out + VIRGO_WIRE_HDR_LEN;
	u32 len = m->len, count, i;
	int n = 0, short_n = -EMSGSIZE;

	FUZZ_CHECK(virgo_wire_op_valid(m->opcode));
	FUZZ_CHECK(!(m->flags & ~VIRGO_WF_MASK));
	FUZZ_CHECK(m->len <= lim->max_payload);
	FUZZ_CHECK(m->status <= VIRGO_ST_MAX);
	FUZZ_CHECK(!m->status || (reply && !m->len));
	FUZZ_CHECK(virgo_errno_to_status(virgo_status_to_errno(m->status)) ==
		   m->status);
	virgo_wire_hdr_pack(out, m->opcode, m->flags, m->len, m->status,
			    m->tag);

	if (m->status)
		goto compare;

	switch (m->opcode | (reply ? 0x100 : 0)) {
	case VIRGO_OP_HELLO: {
		struct virgo_wire_hello_req h;

		FUZZ_CHECK(len == 40);
		virgo_wire_get_hello_req(pl, &h);
		FUZZ_CHECK(h.ver_min >= 1 && h.ver_min <= h.ver_max);
		n = virgo_wire_put_hello_req(p, len, &h);
		short_n = virgo_wire_put_hello_req(p, len - 1, &h);
		break;
	}
	case VIRGO_OP_HELLO | 0x100: {
		struct virgo_wire_hello_rep h;
		struct virgo_wire_limits adv;

		virgo_wire_get_hello_rep(pl, &h);
		FUZZ_CHECK(len == (h.caps & VIRGO_CAP_RESUME ? 112 : 72));
		FUZZ_CHECK(!(h.caps & VIRGO_CAP_RESUME) || h.resume_id);
		FUZZ_CHECK(h.version == 1 && h.flags <= 1);
		FUZZ_CHECK(h.max_inflight >= 1 && h.free <= h.capacity);
		adv.max_payload = h.max_payload;
		adv.max_chunk = h.max_chunk;
		adv.max_batch = h.max_batch;
		FUZZ_CHECK(!virgo_wire_limits_check(&adv));
		n = virgo_wire_put_hello_rep(p, len, &h);
		short_n = virgo_wire_put_hello_rep(p, len - 1, &h);
		break;
	}
	case VIRGO_OP_AUTH:
	case VIRGO_OP_AUTH | 0x100:
		FUZZ_CHECK(len == 32);
		n = virgo_wire_put_auth(p, len, pl);
		short_n = virgo_wire_put_auth(p, len - 1, pl);
		break;
	case VIRGO_OP_ALLOC: {
		u32 *sizes;

		count = virgo_wire_batch_count(pl);
		FUZZ_CHECK(count >= 1 && count <= lim->max_batch);
		FUZZ_CHECK(len == 8 + 4 * (u64)count);
		FUZZ_CHECK(get_unaligned_le32(pl + 4) == 0);
		sizes = xmalloc(count * sizeof(*sizes));
		for (i = 0; i < count; i++) {
			sizes[i] = virgo_wire_alloc_size(pl, i);
			FUZZ_CHECK(sizes[i] >= 1 && sizes[i] <= lim->max_chunk);
		}
		n = virgo_wire_put_alloc_req(p, len, sizes, count);
		short_n = virgo_wire_put_alloc_req(p, len - 1, sizes, count);
		free(sizes);
		break;
	}
	case VIRGO_OP_ALLOC | 0x100:
	case VIRGO_OP_FREE:
	case VIRGO_OP_DISCARD: {
		u64 *handles;

		count = virgo_wire_batch_count(pl);
		FUZZ_CHECK(count >= 1 && count <= lim->max_batch);
		FUZZ_CHECK(len == 8 + 8 * (u64)count);
		FUZZ_CHECK(get_unaligned_le32(pl + 4) == 0);
		handles = xmalloc(count * sizeof(*handles));
		for (i = 0; i < count; i++) {
			handles[i] = virgo_wire_handle(pl, i);
			FUZZ_CHECK(handles[i] != 0);
		}
		if (reply) {
			n = virgo_wire_put_alloc_rep(p, len, handles, count);
			short_n = virgo_wire_put_alloc_rep(p, len - 1, handles,
							   count);
		} else if (m->opcode == VIRGO_OP_DISCARD) {
			n = virgo_wire_put_discard_req(p, len, handles, count);
			short_n = virgo_wire_put_discard_req(p, len - 1,
							     handles, count);
		} else {
			n = virgo_wire_put_free_req(p, len, handles, count);
			short_n = virgo_wire_put_free_req(p, len - 1, handles,
							  count);
		}
		free(handles);
		break;
	}
	case VIRGO_OP_FREE | 0x100:
		FUZZ_CHECK(len == 8 && get_unaligned_le32(pl + 4) == 0);
		FUZZ_CHECK(virgo_wire_freed(pl) <= lim->max_batch);
		n = virgo_wire_put_free_rep(p, len, virgo_wire_freed(pl));
		short_n = virgo_wire_put_free_rep(p, len - 1,
						  virgo_wire_freed(pl));
		break;
	case VIRGO_OP_DISCARD | 0x100:
		count = virgo_wire_discarded(pl);
		FUZZ_CHECK(len == 8 && get_unaligned_le32(pl + 4) == 0);
		FUZZ_CHECK(count <= lim->max_batch);
		n = virgo_wire_put_discard_rep(p, len, count);
		short_n = virgo_wire_put_discard_rep(p, len - 1, count);
		break;
	case VIRGO_OP_WRITE:
	case VIRGO_OP_READ: {
		struct virgo_wire_rw rw;

		virgo_wire_get_rw(pl, &rw);
		FUZZ_CHECK(rw.handle != 0);
		FUZZ_CHECK(rw.length >= 1 && rw.length <= lim->max_chunk);
		FUZZ_CHECK((u64)rw.offset + rw.length <= lim->max_chunk);
		FUZZ_CHECK(len == 16 + (m->opcode == VIRGO_OP_WRITE ?
					(u64)rw.length : 0));
		n = virgo_wire_put_rw_req(p, len, &rw);
		short_n = virgo_wire_put_rw_req(p, 15, &rw);
		if (m->opcode == VIRGO_OP_WRITE) {
			memcpy(p + n, virgo_wire_rw_data(pl), rw.length);
			n += rw.length;
		}
		break;
	}
	case VIRGO_OP_STAT | 0x100: {
		struct virgo_wire_stat st;

		FUZZ_CHECK(len == 64);
		virgo_wire_get_stat_rep(pl, &st);
		FUZZ_CHECK(st.free <= st.capacity);
		n = virgo_wire_put_stat_rep(p, len, &st);
		short_n = virgo_wire_put_stat_rep(p, len - 1, &st);
		break;
	}
	case VIRGO_OP_READ | 0x100:
		FUZZ_CHECK(len >= 1 && len <= lim->max_chunk);
		memcpy(p, pl, len);
		n = len;
		break;
	case VIRGO_OP_PING:
	case VIRGO_OP_PING | 0x100:
		FUZZ_CHECK(len <= VIRGO_WIRE_PING_MAX);
		memcpy(p, pl, len);
		n = len;
		break;
	case VIRGO_OP_RESUME: {
		u8 proof[VIRGO_WIRE_MAC_LEN];
		u64 id;

		FUZZ_CHECK(len == 40);
		id = virgo_wire_get_resume_req(pl, proof);
		FUZZ_CHECK(id != 0);
		n = virgo_wire_put_resume_req(p, len, id, proof);
		short_n = virgo_wire_put_resume_req(p, len - 1, id, proof);
		break;
	}
	case VIRGO_OP_RESUME | 0x100: {
		u64 chunks, bytes;

		FUZZ_CHECK(len == 16);
		virgo_wire_get_resume_rep(pl, &chunks, &bytes);
		n = virgo_wire_put_resume_rep(p, len, chunks, bytes);
		short_n = virgo_wire_put_resume_rep(p, len - 1, chunks, bytes);
		break;
	}
	case VIRGO_OP_JOIN: {
		u8 proof[VIRGO_WIRE_MAC_LEN];
		u64 id;

		FUZZ_CHECK(len == 40);
		id = virgo_wire_get_join_req(pl, proof);
		FUZZ_CHECK(id != 0);
		n = virgo_wire_put_join_req(p, len, id, proof);
		short_n = virgo_wire_put_join_req(p, len - 1, id, proof);
		break;
	}
	case VIRGO_OP_JOIN | 0x100: {
		u32 queues;

		FUZZ_CHECK(len == 8);
		queues = virgo_wire_get_join_rep(pl);
		FUZZ_CHECK(queues >= 2);
		n = virgo_wire_put_join_rep(p, len, queues);
		short_n = virgo_wire_put_join_rep(p, len - 1, queues);
		break;
	}
	case VIRGO_OP_WRITE | 0x100:
	case VIRGO_OP_STAT:
		FUZZ_CHECK(len == 0);
		break;
	default:
		FUZZ_CHECK(0);	/* the codec accepted an unknown opcode */
	}
	FUZZ_CHECK(n >= 0 && (u32)n == len);
	FUZZ_CHECK(short_n == -EMSGSIZE);

compare:
	if (memcmp(out, frame, total)) {
		fprintf(stderr, "round trip differs: %s%s len %u\n",
			virgo_wire_op_name(m->opcode), reply ? " reply" : "",
			len);
		abort();
	}
	free(out);
}

/* Check the payload of @m under @lim; round-trip it if it passes. */
static int check_payload(const struct virgo_wire_msg *m, const u8 *payload,
			 const u8 *frame, const struct virgo_wire_limits *lim)
{
	int ret;

	if (virgo_wire_is_reply(m)) {
		ret = virgo_wire_check_rep(m, payload, lim);
		FUZZ_CHECK(ret == 0 || ret == -EINVAL ||
			   ret == -E2BIG || ret == -EPROTONOSUPPORT);
		/* Only a HELLO reply may pick an unknown version. */
		FUZZ_CHECK(ret != -EPROTONOSUPPORT ||
			   m->opcode == VIRGO_OP_HELLO);
		FUZZ_CHECK(virgo_wire_check_req(m, payload, lim) == -EINVAL);
	} else {
		ret = virgo_wire_check_req(m, payload, lim);
		FUZZ_CHECK(ret == 0 || ret == -EINVAL ||
			   ret == -E2BIG || ret == -ERANGE);
		/* The error reply a server sends is well formed. */
		FUZZ_CHECK(virgo_errno_to_status(ret) != VIRGO_ST_IO);
	}
	if (!ret)
		roundtrip(m, frame, lim);
	return ret;
}

int virgo_fuzz_one_input(const u8 *data, size_t size);

int virgo_fuzz_one_input(const u8 *data, size_t size)
{
	struct virgo_wire_limits lim;
	size_t used = fuzz_limits(data, size, &lim);

	check_limits(&lim);
	data += used;
	size -= used;

	while (size >= VIRGO_WIRE_HDR_LEN) {
		struct virgo_wire_msg m;
		u8 *hdr, *payload;
		int ret;

		hdr = xmalloc(VIRGO_WIRE_HDR_LEN);
		memcpy(hdr, data, VIRGO_WIRE_HDR_LEN);
		ret = virgo_wire_hdr_unpack(hdr, &m, &lim);
		free(hdr);
		FUZZ_CHECK(ret == 0 || ret == -EPROTO ||
			   ret == -EPROTONOSUPPORT || ret == -EINVAL ||
			   ret == -EMSGSIZE);
		if (ret)
			break;
		FUZZ_CHECK(m.len <= lim.max_payload);
		if (m.len > size - VIRGO_WIRE_HDR_LEN)
			break;

		payload = xmalloc(m.len);
		if (m.len)
			memcpy(payload, data + VIRGO_WIRE_HDR_LEN, m.len);
		ret = check_payload(&m, payload, data, &lim);
		/* Looser limits never refuse what tighter ones accept. */
		FUZZ_CHECK(check_payload(&m, payload, data, &loose) == 0 ||
			   ret != 0);
		free(payload);

		data += VIRGO_WIRE_HDR_LEN + (size_t)m.len;
		size -= VIRGO_WIRE_HDR_LEN + (size_t)m.len;
	}
	return 0;
}
