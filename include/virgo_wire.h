/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * virgo wire protocol, version 1: frame layout, limits and codec.
 *
 * Shared by the kernel modules (virgo.ko, virgo_clouddrec.ko, KUnit) and by
 * user space (tools, fuzzers, tests).  Header only: every function is
 * static inline, nothing allocates, nothing keeps state.  docs/protocol.md
 * is the normative description; this file must agree with it byte by byte.
 *
 * Every integer on the wire is little-endian.  A frame is a 24-byte header
 * (struct virgo_wire_hdr) followed by exactly hdr.len payload bytes.
 *
 * Receiving a frame:
 *  1. read VIRGO_WIRE_HDR_LEN bytes and call virgo_wire_hdr_unpack(); on
 *     error the stream cannot be trusted any more: drop the connection;
 *  2. read exactly msg.len payload bytes (msg.len <= lim->max_payload);
 *  3. virgo_wire_check_req() (server) or virgo_wire_check_rep() (client);
 *     a server answers an error here with virgo_errno_to_status() and goes
 *     on with the next frame;
 *  4. only then read the payload with the getters below, which trust the
 *     checks of step 3 and never look at a length again.
 *
 * Sending: virgo_wire_hdr_pack() plus one virgo_wire_put_*() per payload.
 * The encoders serialise what they are given (they only refuse to write
 * past @cap); the receiver is the one that validates.
 *
 * User space: the header needs <linux/types.h> (linux-libc-dev) and
 * defines u8..u64 and get/put_unaligned_le16/32/64 (byte by byte, so any
 * host byte order and any -std= work) unless the includer defines
 * VIRGO_WIRE_HAVE_KERNEL_COMPAT first (for programs that already have
 * them).  u64 is __u64 (unsigned long long), as in the kernel.
 */
#ifndef _VIRGO_WIRE_H
#define _VIRGO_WIRE_H

#ifdef __KERNEL__
#include <linux/build_bug.h>
#include <linux/errno.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/types.h>
#include <asm/unaligned.h>
#else /* !__KERNEL__ */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <linux/types.h>

#ifndef VIRGO_WIRE_HAVE_KERNEL_COMPAT
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

/**
 * get_unaligned_le16() - user-space stand-in for the kernel helper
 * @p: address of two bytes, any alignment
 *
 * Return: the little-endian 16-bit value at @p in host order.
 */
static inline u16 get_unaligned_le16(const void *p)
{
	const u8 *b = p;

	return (u16)(b[0] | b[1] << 8);
}

/**
 * get_unaligned_le32() - user-space stand-in for the kernel helper
 * @p: address of four bytes, any alignment
 *
 * Return: the little-endian 32-bit value at @p in host order.
 */
static inline u32 get_unaligned_le32(const void *p)
{
	const u8 *b = p;

	return (u32)b[0] | (u32)b[1] << 8 | (u32)b[2] << 16 | (u32)b[3] << 24;
}

/**
 * get_unaligned_le64() - user-space stand-in for the kernel helper
 * @p: address of eight bytes, any alignment
 *
 * Return: the little-endian 64-bit value at @p in host order.
 */
static inline u64 get_unaligned_le64(const void *p)
{
	const u8 *b = p;

	return get_unaligned_le32(b) | (u64)get_unaligned_le32(b + 4) << 32;
}

/**
 * put_unaligned_le16() - user-space stand-in for the kernel helper
 * @val: value in host order
 * @p: destination of two bytes, any alignment
 */
static inline void put_unaligned_le16(u16 val, void *p)
{
	u8 *b = p;

	b[0] = (u8)val;
	b[1] = (u8)(val >> 8);
}

/**
 * put_unaligned_le32() - user-space stand-in for the kernel helper
 * @val: value in host order
 * @p: destination of four bytes, any alignment
 */
static inline void put_unaligned_le32(u32 val, void *p)
{
	u8 *b = p;

	b[0] = (u8)val;
	b[1] = (u8)(val >> 8);
	b[2] = (u8)(val >> 16);
	b[3] = (u8)(val >> 24);
}

/**
 * put_unaligned_le64() - user-space stand-in for the kernel helper
 * @val: value in host order
 * @p: destination of eight bytes, any alignment
 */
static inline void put_unaligned_le64(u64 val, void *p)
{
	u8 *b = p;

	put_unaligned_le32((u32)val, b);
	put_unaligned_le32((u32)(val >> 32), b + 4);
}
#endif /* !VIRGO_WIRE_HAVE_KERNEL_COMPAT */
#endif /* !__KERNEL__ */

/* ---------------------------------------------------------------------- */
/* Constants                                                               */
/* ---------------------------------------------------------------------- */

#define VIRGO_WIRE_MAGIC	0x4f475256U	/* bytes 'V' 'R' 'G' 'O' */
#define VIRGO_WIRE_VERSION	1
#define VIRGO_WIRE_HDR_LEN	24

/* Header flags (hdr.flags); every other bit must be 0. */
#define VIRGO_WF_REPLY		0x0001
#define VIRGO_WF_MASK		VIRGO_WF_REPLY

/**
 * enum virgo_wire_op - opcodes (hdr.opcode); a reply carries its request's
 * @VIRGO_OP_HELLO: version and capability negotiation, limits, nonces
 * @VIRGO_OP_AUTH: mutual HMAC-SHA256 challenge-response
 * @VIRGO_OP_ALLOC: batch of sizes -> batch of handles, all or nothing
 * @VIRGO_OP_FREE: batch of handles
 * @VIRGO_OP_WRITE: handle, offset, length, data
 * @VIRGO_OP_READ: handle, offset, length -> data
 * @VIRGO_OP_STAT: server counters
 * @VIRGO_OP_PING: echo of up to VIRGO_WIRE_PING_MAX opaque bytes
 * @VIRGO_OP_RESUME: take over an earlier session (capability
 *	VIRGO_CAP_RESUME only)
 * @VIRGO_OP_DISCARD: batch of handles whose memory the server drops; they
 *	stay allocated and read as zeroes (capability VIRGO_CAP_DISCARD only)
 * @VIRGO_OP_JOIN: attach this connection to a live session as one more
 *	queue (capability VIRGO_CAP_QUEUES only)
 */
enum virgo_wire_op {
	VIRGO_OP_HELLO = 1,
	VIRGO_OP_AUTH = 2,
	VIRGO_OP_ALLOC = 3,
	VIRGO_OP_FREE = 4,
	VIRGO_OP_WRITE = 5,
	VIRGO_OP_READ = 6,
	VIRGO_OP_STAT = 7,
	VIRGO_OP_PING = 8,
	VIRGO_OP_RESUME = 9,
	VIRGO_OP_DISCARD = 10,
	VIRGO_OP_JOIN = 11,
};

#define VIRGO_OP_MIN		VIRGO_OP_HELLO
#define VIRGO_OP_MAX		VIRGO_OP_JOIN

/**
 * enum virgo_wire_status - wire status codes (hdr.status); not errnos
 * @VIRGO_ST_OK: success
 * @VIRGO_ST_INVAL: malformed request (-EINVAL)
 * @VIRGO_ST_NOMEM: server out of memory or out of lendable bytes (-ENOMEM)
 * @VIRGO_ST_NOENT: unknown handle (-ENOENT)
 * @VIRGO_ST_RANGE: offset/length out of bounds (-ERANGE)
 * @VIRGO_ST_PERM: not authenticated / not allowed yet (-EACCES)
 * @VIRGO_ST_AUTH: authentication failed (-EKEYREJECTED)
 * @VIRGO_ST_TOOBIG: over a limit (-E2BIG)
 * @VIRGO_ST_BUSY: too many requests or sessions (-EBUSY)
 * @VIRGO_ST_PROTO: version or opcode not supported (-EPROTONOSUPPORT)
 * @VIRGO_ST_IO: anything else (-EIO)
 */
enum virgo_wire_status {
	VIRGO_ST_OK = 0,
	VIRGO_ST_INVAL = 1,
	VIRGO_ST_NOMEM = 2,
	VIRGO_ST_NOENT = 3,
	VIRGO_ST_RANGE = 4,
	VIRGO_ST_PERM = 5,
	VIRGO_ST_AUTH = 6,
	VIRGO_ST_TOOBIG = 7,
	VIRGO_ST_BUSY = 8,
	VIRGO_ST_PROTO = 9,
	VIRGO_ST_IO = 10,
};

#define VIRGO_ST_MAX		VIRGO_ST_IO

/* HELLO reply flags; every other bit must be 0. */
#define VIRGO_HELLO_AUTH_REQUIRED	0x0001
#define VIRGO_HELLO_FLAGS_MASK		VIRGO_HELLO_AUTH_REQUIRED

/*
 * Capability bits (HELLO caps).  The base protocol needs none
 * (VIRGO_CAPS_V1); a server ignores bits it does not know and never
 * echoes them.  VIRGO_CAP_RESUME: the HELLO reply carries a resume id and
 * token, and RESUME may follow the handshake (docs/protocol.md 6.1).
 * VIRGO_CAP_DISCARD: DISCARD may follow the handshake (docs/protocol.md
 * 5.9).  VIRGO_CAP_QUEUES: JOIN may follow the handshake, attaching the
 * connection to a live session (docs/protocol.md 6.2); granted only with
 * VIRGO_CAP_RESUME, whose resume id and token name and prove the session.
 */
#define VIRGO_CAPS_V1		0U
#define VIRGO_CAP_RESUME	0x00000001U
#define VIRGO_CAP_DISCARD	0x00000002U
#define VIRGO_CAP_QUEUES	0x00000004U
#define VIRGO_CAPS_KNOWN	\
	(VIRGO_CAP_RESUME | VIRGO_CAP_DISCARD | VIRGO_CAP_QUEUES)

#define VIRGO_WIRE_NONCE_LEN	32
#define VIRGO_WIRE_MAC_LEN	32

/* HMAC-SHA256 input labels: 15 ASCII bytes each, no NUL on the wire. */
#define VIRGO_WIRE_AUTH_LABEL_CLIENT	"virgo-v1-client"
#define VIRGO_WIRE_AUTH_LABEL_SERVER	"virgo-v1-server"
#define VIRGO_WIRE_AUTH_LABEL_LEN	15
#define VIRGO_WIRE_AUTH_INPUT_LEN	\
	(VIRGO_WIRE_AUTH_LABEL_LEN + 2 * VIRGO_WIRE_NONCE_LEN)	/* 79 */

/* RESUME: the token of a session, and the keyed proof of holding it. */
#define VIRGO_WIRE_TOKEN_LEN		32
#define VIRGO_WIRE_RESUME_LABEL		"virgo-v1-resume"
#define VIRGO_WIRE_RESUME_INPUT_LEN	\
	(VIRGO_WIRE_AUTH_LABEL_LEN + VIRGO_WIRE_TOKEN_LEN + \
	 2 * VIRGO_WIRE_NONCE_LEN)				/* 111 */

/* JOIN: the keyed proof of holding a session's token, for a new queue. */
#define VIRGO_WIRE_JOIN_LABEL		"virgo-v1-queues"
#define VIRGO_WIRE_JOIN_INPUT_LEN	VIRGO_WIRE_RESUME_INPUT_LEN

/* Payload sizes. */
#define VIRGO_WIRE_HELLO_REQ_LEN	40
#define VIRGO_WIRE_HELLO_REP_LEN	72	/* without VIRGO_CAP_RESUME */
#define VIRGO_WIRE_HELLO_RESUME_LEN	40	/* resume_id, token */
#define VIRGO_WIRE_HELLO_REP_MAX	\
	(VIRGO_WIRE_HELLO_REP_LEN + VIRGO_WIRE_HELLO_RESUME_LEN) /* 112 */
#define VIRGO_WIRE_RESUME_REQ_LEN	40	/* resume_id, proof */
#define VIRGO_WIRE_RESUME_REP_LEN	16	/* chunks, bytes */
#define VIRGO_WIRE_JOIN_REQ_LEN		40	/* session id, proof */
#define VIRGO_WIRE_JOIN_REP_LEN		8	/* queues, reserved */
#define VIRGO_WIRE_AUTH_LEN		VIRGO_WIRE_MAC_LEN
#define VIRGO_WIRE_BATCH_HDR_LEN	8	/* count, reserved */
#define VIRGO_WIRE_SIZE_LEN		4	/* one ALLOC size */
#define VIRGO_WIRE_HANDLE_LEN		8	/* one handle */
#define VIRGO_WIRE_FREE_REP_LEN		8
#define VIRGO_WIRE_DISCARD_REP_LEN	8	/* discarded, reserved */
#define VIRGO_WIRE_RW_REQ_LEN		16	/* WRITE/READ head */
#define VIRGO_WIRE_STAT_REP_LEN		64
#define VIRGO_WIRE_PING_MAX		64

/*
 * Limits.  max_payload must hold the largest frame the other limits allow:
 * a WRITE request (VIRGO_WIRE_RW_REQ_LEN + max_chunk), a full batch of
 * handles (VIRGO_WIRE_BATCH_HDR_LEN + 8 * max_batch) and the largest fixed
 * payload (VIRGO_WIRE_MIN_PAYLOAD); see virgo_wire_limits_check().
 */
#define VIRGO_WIRE_DEF_MAX_CHUNK	(1024U * 1024U)
#define VIRGO_WIRE_DEF_MAX_PAYLOAD	(VIRGO_WIRE_DEF_MAX_CHUNK + 4096U)
#define VIRGO_WIRE_DEF_MAX_BATCH	1024U
#define VIRGO_WIRE_DEF_MAX_INFLIGHT	128U

#define VIRGO_WIRE_MAX_PAYLOAD_LIMIT	(64U * 1024U * 1024U)
#define VIRGO_WIRE_MAX_CHUNK_LIMIT	(32U * 1024U * 1024U)
#define VIRGO_WIRE_MAX_BATCH_LIMIT	65536U
#define VIRGO_WIRE_MIN_PAYLOAD		VIRGO_WIRE_HELLO_REP_LEN

/* ---------------------------------------------------------------------- */
/* On-wire layouts (little-endian, naturally aligned, no padding)          */
/* ---------------------------------------------------------------------- */

/**
 * struct virgo_wire_hdr - frame header as it is on the wire
 * @magic: VIRGO_WIRE_MAGIC
 * @version: VIRGO_WIRE_VERSION
 * @opcode: an &enum virgo_wire_op
 * @flags: VIRGO_WF_* bits
 * @len: number of payload bytes after the header
 * @status: 0 in requests; an &enum virgo_wire_status in replies
 * @tag: chosen by the requester, echoed in the reply
 */
struct virgo_wire_hdr {
	__le32 magic;
	u8 version;
	u8 opcode;
	__le16 flags;
	__le32 len;
	__le32 status;
	__le64 tag;
};

/**
 * struct virgo_wire_hello_req_raw - HELLO request payload on the wire
 * @ver_min: lowest protocol version the client speaks (>= 1)
 * @ver_max: highest protocol version the client speaks (>= @ver_min)
 * @caps: capability bits the client supports
 * @nonce: fresh random client nonce
 */
struct virgo_wire_hello_req_raw {
	__le16 ver_min;
	__le16 ver_max;
	__le32 caps;
	u8 nonce[VIRGO_WIRE_NONCE_LEN];
};

/**
 * struct virgo_wire_hello_rep_raw - HELLO reply payload on the wire
 * @version: the version chosen by the server
 * @flags: VIRGO_HELLO_* bits
 * @caps: capability bits in use (a subset of the client's)
 * @max_payload: largest payload the server accepts
 * @max_chunk: largest chunk the server lends
 * @max_batch: largest ALLOC/FREE batch the server accepts
 * @max_inflight: requests the client may have outstanding (>= 1)
 * @capacity: bytes the server may lend in total
 * @free: bytes the server can still lend (<= @capacity)
 * @nonce: fresh random server nonce
 */
struct virgo_wire_hello_rep_raw {
	__le16 version;
	__le16 flags;
	__le32 caps;
	__le32 max_payload;
	__le32 max_chunk;
	__le32 max_batch;
	__le32 max_inflight;
	__le64 capacity;
	__le64 free;
	u8 nonce[VIRGO_WIRE_NONCE_LEN];
};

/**
 * struct virgo_wire_resume_raw - HELLO reply extension (VIRGO_CAP_RESUME)
 * @resume_id: names this session in a later RESUME (never 0)
 * @token: the session's secret: a later RESUME proves it holds it
 *
 * Follows struct virgo_wire_hello_rep_raw when the reply's caps have
 * VIRGO_CAP_RESUME.
 */
struct virgo_wire_resume_raw {
	__le64 resume_id;
	u8 token[VIRGO_WIRE_TOKEN_LEN];
};

/**
 * struct virgo_wire_resume_req_raw - RESUME request payload on the wire
 * @resume_id: the session to take over (never 0)
 * @proof: its token (no key), or HMAC-SHA256(key, resume input)
 */
struct virgo_wire_resume_req_raw {
	__le64 resume_id;
	u8 proof[VIRGO_WIRE_MAC_LEN];
};

/**
 * struct virgo_wire_resume_rep_raw - RESUME reply payload on the wire
 * @chunks: chunks the resumed session holds
 * @bytes: bytes in them
 */
struct virgo_wire_resume_rep_raw {
	__le64 chunks;
	__le64 bytes;
};

/**
 * struct virgo_wire_join_req_raw - JOIN request payload on the wire
 * @session_id: the live session to attach to: its resume id (never 0)
 * @proof: its token (no key), or HMAC-SHA256(key, join input)
 */
struct virgo_wire_join_req_raw {
	__le64 session_id;
	u8 proof[VIRGO_WIRE_MAC_LEN];
};

/**
 * struct virgo_wire_join_rep_raw - JOIN reply payload on the wire
 * @queues: connections the session has now, this one included (>= 2)
 * @reserved: must be 0
 */
struct virgo_wire_join_rep_raw {
	__le32 queues;
	__le32 reserved;
};

/**
 * struct virgo_wire_batch_raw - head of ALLOC/FREE/DISCARD payloads and
 *	of FREE/DISCARD replies
 * @count: number of elements that follow (FREE reply: handles freed;
 *	DISCARD reply: handles discarded)
 * @reserved: must be 0
 *
 * Followed by @count little-endian elements: __le32 sizes in an ALLOC
 * request, __le64 handles in an ALLOC reply and a FREE or DISCARD request,
 * nothing in a FREE or DISCARD reply.
 */
struct virgo_wire_batch_raw {
	__le32 count;
	__le32 reserved;
};

/**
 * struct virgo_wire_rw_raw - head of WRITE and READ request payloads
 * @handle: chunk handle (never 0)
 * @offset: byte offset inside the chunk
 * @length: bytes to write or read (1..max_chunk); WRITE data follows
 */
struct virgo_wire_rw_raw {
	__le64 handle;
	__le32 offset;
	__le32 length;
};

/**
 * struct virgo_wire_stat_raw - STAT reply payload on the wire
 * @capacity: bytes the server may lend in total
 * @free: bytes still lendable (<= @capacity)
 * @lent_bytes: bytes lent to all sessions
 * @lent_chunks: chunks lent to all sessions
 * @sessions: open sessions
 * @session_bytes: bytes lent to the asking session
 * @session_chunks: chunks lent to the asking session
 * @requests: requests served since the server started
 */
struct virgo_wire_stat_raw {
	__le64 capacity;
	__le64 free;
	__le64 lent_bytes;
	__le64 lent_chunks;
	__le64 sessions;
	__le64 session_bytes;
	__le64 session_chunks;
	__le64 requests;
};

static_assert(sizeof(struct virgo_wire_hdr) == VIRGO_WIRE_HDR_LEN,
	      "virgo_wire_hdr");
static_assert(offsetof(struct virgo_wire_hdr, version) == 4, "hdr.version");
static_assert(offsetof(struct virgo_wire_hdr, opcode) == 5, "hdr.opcode");
static_assert(offsetof(struct virgo_wire_hdr, flags) == 6, "hdr.flags");
static_assert(offsetof(struct virgo_wire_hdr, len) == 8, "hdr.len");
static_assert(offsetof(struct virgo_wire_hdr, status) == 12, "hdr.status");
static_assert(offsetof(struct virgo_wire_hdr, tag) == 16, "hdr.tag");
static_assert(sizeof(struct virgo_wire_hello_req_raw) ==
	      VIRGO_WIRE_HELLO_REQ_LEN, "hello req");
static_assert(sizeof(struct virgo_wire_hello_rep_raw) ==
	      VIRGO_WIRE_HELLO_REP_LEN, "hello rep");
static_assert(offsetof(struct virgo_wire_hello_rep_raw, capacity) == 24,
	      "hello rep capacity");
static_assert(sizeof(struct virgo_wire_batch_raw) == VIRGO_WIRE_BATCH_HDR_LEN,
	      "batch head");
static_assert(sizeof(struct virgo_wire_rw_raw) == VIRGO_WIRE_RW_REQ_LEN,
	      "rw head");
static_assert(sizeof(struct virgo_wire_stat_raw) == VIRGO_WIRE_STAT_REP_LEN,
	      "stat rep");
static_assert(VIRGO_WIRE_AUTH_INPUT_LEN == 79, "auth input");
static_assert(sizeof(struct virgo_wire_resume_raw) ==
	      VIRGO_WIRE_HELLO_RESUME_LEN, "hello resume extension");
static_assert(sizeof(struct virgo_wire_resume_req_raw) ==
	      VIRGO_WIRE_RESUME_REQ_LEN, "resume req");
static_assert(sizeof(struct virgo_wire_resume_rep_raw) ==
	      VIRGO_WIRE_RESUME_REP_LEN, "resume rep");
static_assert(VIRGO_WIRE_RESUME_INPUT_LEN == 111, "resume input");
static_assert(sizeof(struct virgo_wire_join_req_raw) ==
	      VIRGO_WIRE_JOIN_REQ_LEN, "join req");
static_assert(sizeof(struct virgo_wire_join_rep_raw) ==
	      VIRGO_WIRE_JOIN_REP_LEN, "join rep");

/* Field offsets, for the codec below only (#undef'd at the end). */
#define __VW_HDR(f)	offsetof(struct virgo_wire_hdr, f)
#define __VW_HREQ(f)	offsetof(struct virgo_wire_hello_req_raw, f)
#define __VW_HREP(f)	offsetof(struct virgo_wire_hello_rep_raw, f)
#define __VW_BATCH(f)	offsetof(struct virgo_wire_batch_raw, f)
#define __VW_RW(f)	offsetof(struct virgo_wire_rw_raw, f)
#define __VW_STAT(f)	offsetof(struct virgo_wire_stat_raw, f)
#define __VW_HRES(f)	(VIRGO_WIRE_HELLO_REP_LEN + \
			 offsetof(struct virgo_wire_resume_raw, f))
#define __VW_RREQ(f)	offsetof(struct virgo_wire_resume_req_raw, f)
#define __VW_RREP(f)	offsetof(struct virgo_wire_resume_rep_raw, f)
#define __VW_JREQ(f)	offsetof(struct virgo_wire_join_req_raw, f)
#define __VW_JREP(f)	offsetof(struct virgo_wire_join_rep_raw, f)

/* ---------------------------------------------------------------------- */
/* Host-order views                                                        */
/* ---------------------------------------------------------------------- */

/**
 * struct virgo_wire_limits - what a receiver accepts
 * @max_payload: largest hdr.len accepted
 * @max_chunk: largest ALLOC size and READ/WRITE length; offset + length of
 *	a READ/WRITE must not exceed it either
 * @max_batch: largest ALLOC/FREE/DISCARD count
 *
 * Check a filled-in struct with virgo_wire_limits_check().  The
 * field-by-field minimum of two valid limits is valid, which is how a
 * client combines its own limits with those a server advertises in HELLO.
 */
struct virgo_wire_limits {
	u32 max_payload;
	u32 max_chunk;
	u32 max_batch;
};

/**
 * struct virgo_wire_msg - a decoded header, host order
 * @opcode: an &enum virgo_wire_op
 * @flags: VIRGO_WF_* bits
 * @len: payload bytes that follow the header
 * @status: an &enum virgo_wire_status (0 in requests)
 * @tag: requester's tag
 */
struct virgo_wire_msg {
	u8 opcode;
	u16 flags;
	u32 len;
	u32 status;
	u64 tag;
};

/**
 * struct virgo_wire_hello_req - HELLO request, host order
 * @ver_min: lowest version the client speaks
 * @ver_max: highest version the client speaks
 * @caps: capability bits the client supports
 * @nonce: client nonce
 */
struct virgo_wire_hello_req {
	u16 ver_min;
	u16 ver_max;
	u32 caps;
	u8 nonce[VIRGO_WIRE_NONCE_LEN];
};

/**
 * struct virgo_wire_hello_rep - HELLO reply, host order
 * @version: version chosen by the server
 * @flags: VIRGO_HELLO_* bits
 * @caps: capability bits in use
 * @max_payload: largest payload the server accepts
 * @max_chunk: largest chunk the server lends
 * @max_batch: largest batch the server accepts
 * @max_inflight: requests a client may have outstanding
 * @capacity: bytes the server may lend in total
 * @free: bytes the server can still lend
 * @nonce: server nonce
 * @resume_id: with VIRGO_CAP_RESUME in @caps: names the session (never 0)
 * @token: with VIRGO_CAP_RESUME in @caps: the session's resume token
 */
struct virgo_wire_hello_rep {
	u16 version;
	u16 flags;
	u32 caps;
	u32 max_payload;
	u32 max_chunk;
	u32 max_batch;
	u32 max_inflight;
	u64 capacity;
	u64 free;
	u8 nonce[VIRGO_WIRE_NONCE_LEN];
	u64 resume_id;
	u8 token[VIRGO_WIRE_TOKEN_LEN];
};

/**
 * struct virgo_wire_rw - WRITE/READ request head, host order
 * @handle: chunk handle
 * @offset: byte offset inside the chunk
 * @length: bytes to write or read
 */
struct virgo_wire_rw {
	u64 handle;
	u32 offset;
	u32 length;
};

/**
 * struct virgo_wire_stat - STAT reply, host order
 * @capacity: bytes the server may lend in total
 * @free: bytes still lendable
 * @lent_bytes: bytes lent to all sessions
 * @lent_chunks: chunks lent to all sessions
 * @sessions: open sessions
 * @session_bytes: bytes lent to the asking session
 * @session_chunks: chunks lent to the asking session
 * @requests: requests served since the server started
 */
struct virgo_wire_stat {
	u64 capacity;
	u64 free;
	u64 lent_bytes;
	u64 lent_chunks;
	u64 sessions;
	u64 session_bytes;
	u64 session_chunks;
	u64 requests;
};

/**
 * enum virgo_wire_auth_role - whose MAC virgo_wire_auth_input() prepares
 * @VIRGO_WIRE_AUTH_CLIENT: the AUTH request MAC (client proves the key)
 * @VIRGO_WIRE_AUTH_SERVER: the AUTH reply MAC (server proves the key)
 */
enum virgo_wire_auth_role {
	VIRGO_WIRE_AUTH_CLIENT = 0,
	VIRGO_WIRE_AUTH_SERVER = 1,
};

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */
/* ---------------------------------------------------------------------- */

/**
 * virgo_wire_op_valid() - is @op a v1 opcode?
 * @op: opcode from a header
 *
 * Return: true for VIRGO_OP_HELLO..VIRGO_OP_JOIN.
 */
static inline bool virgo_wire_op_valid(u32 op)
{
	return op >= VIRGO_OP_MIN && op <= VIRGO_OP_MAX;
}

/**
 * virgo_wire_op_name() - printable name of an opcode
 * @op: opcode
 *
 * Return: a static string such as "ALLOC", or "?" for an unknown opcode.
 */
static inline const char *virgo_wire_op_name(u32 op)
{
	static const char * const names[] = {
		[VIRGO_OP_HELLO] = "HELLO", [VIRGO_OP_AUTH] = "AUTH",
		[VIRGO_OP_ALLOC] = "ALLOC", [VIRGO_OP_FREE] = "FREE",
		[VIRGO_OP_WRITE] = "WRITE", [VIRGO_OP_READ] = "READ",
		[VIRGO_OP_STAT] = "STAT", [VIRGO_OP_PING] = "PING",
		[VIRGO_OP_RESUME] = "RESUME", [VIRGO_OP_DISCARD] = "DISCARD",
		[VIRGO_OP_JOIN] = "JOIN",
	};

	return virgo_wire_op_valid(op) ? names[op] : "?";
}

/**
 * virgo_wire_status_name() - printable name of a wire status
 * @status: wire status code
 *
 * Return: a static string such as "NOENT", or "?" for an unknown code.
 */
static inline const char *virgo_wire_status_name(u32 status)
{
	static const char * const names[] = {
		[VIRGO_ST_OK] = "OK", [VIRGO_ST_INVAL] = "INVAL",
		[VIRGO_ST_NOMEM] = "NOMEM", [VIRGO_ST_NOENT] = "NOENT",
		[VIRGO_ST_RANGE] = "RANGE", [VIRGO_ST_PERM] = "PERM",
		[VIRGO_ST_AUTH] = "AUTH", [VIRGO_ST_TOOBIG] = "TOOBIG",
		[VIRGO_ST_BUSY] = "BUSY", [VIRGO_ST_PROTO] = "PROTO",
		[VIRGO_ST_IO] = "IO",
	};

	return status <= VIRGO_ST_MAX ? names[status] : "?";
}

/**
 * virgo_status_to_errno() - map a wire status to a negative errno
 * @status: wire status code from a reply
 *
 * Return: 0 for VIRGO_ST_OK, the matching negative errno for a known code,
 * -EIO for VIRGO_ST_IO and for any unknown code.
 */
static inline int virgo_status_to_errno(u32 status)
{
	switch (status) {
	case VIRGO_ST_OK:
		return 0;
	case VIRGO_ST_INVAL:
		return -EINVAL;
	case VIRGO_ST_NOMEM:
		return -ENOMEM;
	case VIRGO_ST_NOENT:
		return -ENOENT;
	case VIRGO_ST_RANGE:
		return -ERANGE;
	case VIRGO_ST_PERM:
		return -EACCES;
	case VIRGO_ST_AUTH:
		return -EKEYREJECTED;
	case VIRGO_ST_TOOBIG:
		return -E2BIG;
	case VIRGO_ST_BUSY:
		return -EBUSY;
	case VIRGO_ST_PROTO:
		return -EPROTONOSUPPORT;
	default:
		return -EIO;
	}
}

/**
 * virgo_errno_to_status() - map a negative errno to a wire status
 * @err: 0 or a negative errno
 *
 * Inverse of virgo_status_to_errno() on the errnos it produces; any other
 * value (positive ones included) becomes VIRGO_ST_IO.
 *
 * Return: an &enum virgo_wire_status value.
 */
static inline u32 virgo_errno_to_status(int err)
{
	switch (err) {
	case 0:
		return VIRGO_ST_OK;
	case -EINVAL:
		return VIRGO_ST_INVAL;
	case -ENOMEM:
		return VIRGO_ST_NOMEM;
	case -ENOENT:
		return VIRGO_ST_NOENT;
	case -ERANGE:
		return VIRGO_ST_RANGE;
	case -EACCES:
		return VIRGO_ST_PERM;
	case -EKEYREJECTED:
		return VIRGO_ST_AUTH;
	case -E2BIG:
		return VIRGO_ST_TOOBIG;
	case -EBUSY:
		return VIRGO_ST_BUSY;
	case -EPROTONOSUPPORT:
		return VIRGO_ST_PROTO;
	default:
		return VIRGO_ST_IO;
	}
}

/**
 * virgo_wire_limits_default() - fill @lim with the default limits
 * @lim: limits to fill
 */
static inline void virgo_wire_limits_default(struct virgo_wire_limits *lim)
{
	lim->max_payload = VIRGO_WIRE_DEF_MAX_PAYLOAD;
	lim->max_chunk = VIRGO_WIRE_DEF_MAX_CHUNK;
	lim->max_batch = VIRGO_WIRE_DEF_MAX_BATCH;
}

/**
 * virgo_wire_limits_check() - are these limits coherent?
 * @lim: limits to check
 *
 * Requires 1 <= max_chunk <= VIRGO_WIRE_MAX_CHUNK_LIMIT,
 * 1 <= max_batch <= VIRGO_WIRE_MAX_BATCH_LIMIT,
 * max_payload <= VIRGO_WIRE_MAX_PAYLOAD_LIMIT, and max_payload large enough
 * for every frame the other two allow: >= max_chunk + 16 (a WRITE request),
 * >= 8 + 8 * max_batch (an ALLOC reply, a FREE request) and
 * >= VIRGO_WIRE_MIN_PAYLOAD (a HELLO reply).
 *
 * Return: 0 if coherent, -EINVAL otherwise.
 */
static inline int virgo_wire_limits_check(const struct virgo_wire_limits *lim)
{
	u64 payload = lim->max_payload;

	if (lim->max_chunk == 0 || lim->max_chunk > VIRGO_WIRE_MAX_CHUNK_LIMIT)
		return -EINVAL;
	if (lim->max_batch == 0 || lim->max_batch > VIRGO_WIRE_MAX_BATCH_LIMIT)
		return -EINVAL;
	if (payload > VIRGO_WIRE_MAX_PAYLOAD_LIMIT ||
	    payload < VIRGO_WIRE_MIN_PAYLOAD)
		return -EINVAL;
	if (payload < (u64)lim->max_chunk + VIRGO_WIRE_RW_REQ_LEN)
		return -EINVAL;
	if (payload < VIRGO_WIRE_BATCH_HDR_LEN +
		      (u64)lim->max_batch * VIRGO_WIRE_HANDLE_LEN)
		return -EINVAL;
	return 0;
}

/**
 * virgo_wire_is_reply() - does @m carry the reply flag?
 * @m: decoded header
 *
 * Return: true for a reply, false for a request.
 */
static inline bool virgo_wire_is_reply(const struct virgo_wire_msg *m)
{
	return m->flags & VIRGO_WF_REPLY;
}

/**
 * virgo_wire_auth_input() - build the 79-byte HMAC-SHA256 input
 * @out: VIRGO_WIRE_AUTH_INPUT_LEN bytes to fill
 * @role: VIRGO_WIRE_AUTH_CLIENT for the AUTH request MAC,
 *	VIRGO_WIRE_AUTH_SERVER for the AUTH reply MAC
 * @client_nonce: the nonce of the HELLO request (VIRGO_WIRE_NONCE_LEN bytes)
 * @server_nonce: the nonce of the HELLO reply (VIRGO_WIRE_NONCE_LEN bytes)
 *
 * Client: "virgo-v1-client" || client_nonce || server_nonce.
 * Server: "virgo-v1-server" || server_nonce || client_nonce.
 * The caller computes HMAC-SHA256(key, @out) and must compare MACs in
 * constant time (crypto_memneq() in the kernel).
 */
static inline void virgo_wire_auth_input(u8 *out,
					 enum virgo_wire_auth_role role,
					 const u8 *client_nonce,
					 const u8 *server_nonce)
{
	bool server = role == VIRGO_WIRE_AUTH_SERVER;

	memcpy(out, server ? VIRGO_WIRE_AUTH_LABEL_SERVER :
			     VIRGO_WIRE_AUTH_LABEL_CLIENT,
	       VIRGO_WIRE_AUTH_LABEL_LEN);
	out += VIRGO_WIRE_AUTH_LABEL_LEN;
	memcpy(out, server ? server_nonce : client_nonce, VIRGO_WIRE_NONCE_LEN);
	out += VIRGO_WIRE_NONCE_LEN;
	memcpy(out, server ? client_nonce : server_nonce, VIRGO_WIRE_NONCE_LEN);
}

/**
 * virgo_wire_resume_input() - build the 111-byte HMAC input of a RESUME
 * @out: VIRGO_WIRE_RESUME_INPUT_LEN bytes to fill
 * @token: the token of the session to resume (VIRGO_WIRE_TOKEN_LEN bytes)
 * @client_nonce: the nonce of this connection's HELLO request
 * @server_nonce: the nonce of this connection's HELLO reply
 *
 * "virgo-v1-resume" || token || client_nonce || server_nonce.  With a key,
 * a RESUME's proof is HMAC-SHA256(key, @out): it binds the token to the
 * key and to this connection, so a proof seen on the wire is worth
 * nothing on another connection.
 */
static inline void virgo_wire_resume_input(u8 *out, const u8 *token,
					   const u8 *client_nonce,
					   const u8 *server_nonce)
{
	memcpy(out, VIRGO_WIRE_RESUME_LABEL, VIRGO_WIRE_AUTH_LABEL_LEN);
	out += VIRGO_WIRE_AUTH_LABEL_LEN;
	memcpy(out, token, VIRGO_WIRE_TOKEN_LEN);
	out += VIRGO_WIRE_TOKEN_LEN;
	memcpy(out, client_nonce, VIRGO_WIRE_NONCE_LEN);
	out += VIRGO_WIRE_NONCE_LEN;
	memcpy(out, server_nonce, VIRGO_WIRE_NONCE_LEN);
}

/**
 * virgo_wire_join_input() - build the 111-byte HMAC input of a JOIN
 * @out: VIRGO_WIRE_JOIN_INPUT_LEN bytes to fill
 * @token: the token of the session to join (VIRGO_WIRE_TOKEN_LEN bytes)
 * @client_nonce: the nonce of this connection's HELLO request
 * @server_nonce: the nonce of this connection's HELLO reply
 *
 * "virgo-v1-queues" || token || client_nonce || server_nonce: as
 * virgo_wire_resume_input() with its own label, so that a JOIN proof is
 * never a RESUME proof of the same connection, nor the other way round.
 */
static inline void virgo_wire_join_input(u8 *out, const u8 *token,
					 const u8 *client_nonce,
					 const u8 *server_nonce)
{
	virgo_wire_resume_input(out, token, client_nonce, server_nonce);
	memcpy(out, VIRGO_WIRE_JOIN_LABEL, VIRGO_WIRE_AUTH_LABEL_LEN);
}

/* ---------------------------------------------------------------------- */
/* Header                                                                  */
/* ---------------------------------------------------------------------- */

/**
 * virgo_wire_hdr_pack() - write a frame header
 * @buf: VIRGO_WIRE_HDR_LEN bytes, any alignment
 * @opcode: an &enum virgo_wire_op
 * @flags: VIRGO_WF_* bits (VIRGO_WF_REPLY for a reply)
 * @len: payload bytes that will follow
 * @status: 0 for a request; for a reply a status (then @len must be 0
 *	unless @status is VIRGO_ST_OK)
 * @tag: the request's tag
 */
static inline void virgo_wire_hdr_pack(void *buf, u8 opcode, u16 flags,
				       u32 len, u32 status, u64 tag)
{
	u8 *p = buf;

	put_unaligned_le32(VIRGO_WIRE_MAGIC, p + __VW_HDR(magic));
	p[__VW_HDR(version)] = VIRGO_WIRE_VERSION;
	p[__VW_HDR(opcode)] = opcode;
	put_unaligned_le16(flags, p + __VW_HDR(flags));
	put_unaligned_le32(len, p + __VW_HDR(len));
	put_unaligned_le32(status, p + __VW_HDR(status));
	put_unaligned_le64(tag, p + __VW_HDR(tag));
}

/**
 * __virgo_wire_check_msg() - header rules shared by unpack and the checks
 * @m: decoded header
 * @lim: receiver's limits
 *
 * Return: 0, -EPROTONOSUPPORT (unknown opcode), -EINVAL (unknown flag,
 * status out of range, status in a request, status with a payload) or
 * -EMSGSIZE (len over max_payload).
 */
static inline int __virgo_wire_check_msg(const struct virgo_wire_msg *m,
					 const struct virgo_wire_limits *lim)
{
	if (!virgo_wire_op_valid(m->opcode))
		return -EPROTONOSUPPORT;
	if (m->flags & ~VIRGO_WF_MASK)
		return -EINVAL;
	if (m->status > VIRGO_ST_MAX)
		return -EINVAL;
	if (m->status != VIRGO_ST_OK &&
	    (!virgo_wire_is_reply(m) || m->len != 0))
		return -EINVAL;
	if (m->len > lim->max_payload)
		return -EMSGSIZE;
	return 0;
}

/**
 * virgo_wire_hdr_unpack() - decode and check a frame header
 * @buf: the VIRGO_WIRE_HDR_LEN header bytes, any alignment
 * @m: filled with the decoded header (also on most errors, for logging;
 *	never act on it unless 0 is returned)
 * @lim: receiver's limits
 *
 * Any error means the byte stream can no longer be trusted: the caller
 * drops the connection (it cannot even skip the payload safely).
 *
 * Return: 0; -EPROTO if the magic is wrong; -EPROTONOSUPPORT if the
 * version is not VIRGO_WIRE_VERSION or the opcode is unknown; -EINVAL for
 * an unknown flag bit, a status above VIRGO_ST_MAX, a status in a request
 * or an error status with a non-empty payload; -EMSGSIZE if len exceeds
 * @lim->max_payload.
 */
static inline int virgo_wire_hdr_unpack(const void *buf,
					struct virgo_wire_msg *m,
					const struct virgo_wire_limits *lim)
{
	const u8 *p = buf;

	if (get_unaligned_le32(p + __VW_HDR(magic)) !=
	    VIRGO_WIRE_MAGIC)
		return -EPROTO;
	m->opcode = p[__VW_HDR(opcode)];
	m->flags = get_unaligned_le16(p + __VW_HDR(flags));
	m->len = get_unaligned_le32(p + __VW_HDR(len));
	m->status = get_unaligned_le32(p + __VW_HDR(status));
	m->tag = get_unaligned_le64(p + __VW_HDR(tag));
	if (p[__VW_HDR(version)] != VIRGO_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	return __virgo_wire_check_msg(m, lim);
}

/* ---------------------------------------------------------------------- */
/* Payload checks                                                          */
/* ---------------------------------------------------------------------- */

/**
 * __virgo_wire_check_batch() - check an ALLOC/FREE/DISCARD batch payload
 * @p: payload
 * @len: payload length
 * @elem: element size (VIRGO_WIRE_SIZE_LEN or VIRGO_WIRE_HANDLE_LEN)
 * @lim: receiver's limits
 *
 * Checks the head and every element: sizes must be 1..max_chunk, handles
 * must not be 0.
 *
 * Return: 0; -EINVAL if truncated, reserved is not 0, count is 0, len is
 * not exactly 8 + count * @elem, a size or a handle is 0; -E2BIG if count
 * exceeds max_batch or a size exceeds max_chunk.
 */
static inline int __virgo_wire_check_batch(const u8 *p, u32 len, u32 elem,
					   const struct virgo_wire_limits *lim)
{
	u32 count, i;

	if (len < VIRGO_WIRE_BATCH_HDR_LEN)
		return -EINVAL;
	count = get_unaligned_le32(p + __VW_BATCH(count));
	if (get_unaligned_le32(p + __VW_BATCH(reserved)))
		return -EINVAL;
	if (count == 0)
		return -EINVAL;
	if (count > lim->max_batch)
		return -E2BIG;
	if ((u64)len != VIRGO_WIRE_BATCH_HDR_LEN + (u64)count * elem)
		return -EINVAL;
	p += VIRGO_WIRE_BATCH_HDR_LEN;
	for (i = 0; i < count; i++, p += elem) {
		if (elem == VIRGO_WIRE_SIZE_LEN) {
			u32 size = get_unaligned_le32(p);

			if (size == 0)
				return -EINVAL;
			if (size > lim->max_chunk)
				return -E2BIG;
		} else if (get_unaligned_le64(p) == 0) {
			return -EINVAL;
		}
	}
	return 0;
}

/**
 * __virgo_wire_check_rw() - check a WRITE or READ request payload
 * @p: payload
 * @len: payload length
 * @write: true for WRITE (data follows the head), false for READ
 * @lim: receiver's limits
 *
 * Return: 0; -EINVAL if shorter than the head, the handle is 0, length is
 * 0, or len is not exactly 16 (+ length for WRITE); -E2BIG if length
 * exceeds max_chunk; -ERANGE if offset + length (in 64 bits) exceeds
 * max_chunk.
 */
static inline int __virgo_wire_check_rw(const u8 *p, u32 len, bool write,
					const struct virgo_wire_limits *lim)
{
	u32 offset, length;

	if (len < VIRGO_WIRE_RW_REQ_LEN)
		return -EINVAL;
	if (get_unaligned_le64(p + __VW_RW(handle)) == 0)
		return -EINVAL;
	offset = get_unaligned_le32(p + __VW_RW(offset));
	length = get_unaligned_le32(p + __VW_RW(length));
	if (length == 0)
		return -EINVAL;
	if (length > lim->max_chunk)
		return -E2BIG;
	if ((u64)offset + length > lim->max_chunk)
		return -ERANGE;
	if ((u64)len != VIRGO_WIRE_RW_REQ_LEN + (write ? (u64)length : 0))
		return -EINVAL;
	return 0;
}

/**
 * __virgo_wire_check_hello_req() - check a HELLO request payload
 * @p: payload
 * @len: payload length
 *
 * Return: 0; -EINVAL if @len is not VIRGO_WIRE_HELLO_REQ_LEN, ver_min is
 * 0 or ver_min > ver_max.  A range without VIRGO_WIRE_VERSION is well
 * formed: the server answers it with VIRGO_ST_PROTO.
 */
static inline int __virgo_wire_check_hello_req(const u8 *p, u32 len)
{
	u16 vmin, vmax;

	if (len != VIRGO_WIRE_HELLO_REQ_LEN)
		return -EINVAL;
	vmin = get_unaligned_le16(p + __VW_HREQ(ver_min));
	vmax = get_unaligned_le16(p + __VW_HREQ(ver_max));
	if (vmin == 0 || vmin > vmax)
		return -EINVAL;
	return 0;
}

/**
 * virgo_wire_check_req() - check a request's payload
 * @m: header decoded by virgo_wire_hdr_unpack()
 * @payload: the @m->len payload bytes (may be NULL if @m->len is 0)
 * @lim: receiver's (the server's) limits
 *
 * Validates the shape of the payload for @m->opcode: exact sizes, counts
 * that match the length, reserved fields zero, and every limit.  Never
 * reads outside @payload[0..@m->len).  Whether handles exist and whether
 * offset + length fit the actual chunk is for the server to check.
 *
 * Return: 0; -EINVAL for a malformed payload (or a reply passed in);
 * -E2BIG for a count, size, length or PING payload over its limit;
 * -ERANGE for offset + length beyond max_chunk; -EPROTONOSUPPORT or
 * -EMSGSIZE for a header virgo_wire_hdr_unpack() would have refused.
 * virgo_errno_to_status() turns each into the status of the error reply.
 */
static inline int virgo_wire_check_req(const struct virgo_wire_msg *m,
				       const void *payload,
				       const struct virgo_wire_limits *lim)
{
	const u8 *p = payload;
	u32 len = m->len;
	int ret;

	if (virgo_wire_is_reply(m))
		return -EINVAL;
	ret = __virgo_wire_check_msg(m, lim);
	if (ret)
		return ret;
	if (len && !p)
		return -EINVAL;

	switch (m->opcode) {
	case VIRGO_OP_HELLO:
		return __virgo_wire_check_hello_req(p, len);
	case VIRGO_OP_AUTH:
		return len == VIRGO_WIRE_AUTH_LEN ? 0 : -EINVAL;
	case VIRGO_OP_ALLOC:
		return __virgo_wire_check_batch(p, len, VIRGO_WIRE_SIZE_LEN,
						lim);
	case VIRGO_OP_FREE:
	case VIRGO_OP_DISCARD:
		return __virgo_wire_check_batch(p, len, VIRGO_WIRE_HANDLE_LEN,
						lim);
	case VIRGO_OP_WRITE:
		return __virgo_wire_check_rw(p, len, true, lim);
	case VIRGO_OP_READ:
		return __virgo_wire_check_rw(p, len, false, lim);
	case VIRGO_OP_STAT:
		return len == 0 ? 0 : -EINVAL;
	case VIRGO_OP_PING:
		return len <= VIRGO_WIRE_PING_MAX ? 0 : -E2BIG;
	case VIRGO_OP_RESUME:
		if (len != VIRGO_WIRE_RESUME_REQ_LEN ||
		    !get_unaligned_le64(p + __VW_RREQ(resume_id)))
			return -EINVAL;
		return 0;
	case VIRGO_OP_JOIN:
		if (len != VIRGO_WIRE_JOIN_REQ_LEN ||
		    !get_unaligned_le64(p + __VW_JREQ(session_id)))
			return -EINVAL;
		return 0;
	default:
		return -EPROTONOSUPPORT;
	}
}

/**
 * virgo_wire_hello_rep_len() - payload length of a HELLO reply
 * @caps: the capability bits of the reply
 *
 * Return: VIRGO_WIRE_HELLO_REP_MAX with VIRGO_CAP_RESUME in @caps (the
 * resume extension follows), else VIRGO_WIRE_HELLO_REP_LEN.
 */
static inline u32 virgo_wire_hello_rep_len(u32 caps)
{
	return caps & VIRGO_CAP_RESUME ? VIRGO_WIRE_HELLO_REP_MAX :
					 VIRGO_WIRE_HELLO_REP_LEN;
}

/**
 * __virgo_wire_check_hello_rep() - check a HELLO reply payload
 * @p: virgo_wire_hello_rep_len(caps) payload bytes
 *
 * Return: 0; -EPROTONOSUPPORT if the version is not VIRGO_WIRE_VERSION;
 * -EINVAL for unknown flags, incoherent advertised limits (see
 * virgo_wire_limits_check()), max_inflight 0, free > capacity, with
 * VIRGO_CAP_RESUME a resume id 0, VIRGO_CAP_QUEUES without
 * VIRGO_CAP_RESUME.
 */
static inline int __virgo_wire_check_hello_rep(const u8 *p)
{
	struct virgo_wire_limits adv;
	u16 flags;
	u32 caps;

	if (get_unaligned_le16(p + __VW_HREP(version)) !=
	    VIRGO_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	flags = get_unaligned_le16(p + __VW_HREP(flags));
	if (flags & ~VIRGO_HELLO_FLAGS_MASK)
		return -EINVAL;
	adv.max_payload = get_unaligned_le32(p + __VW_HREP(max_payload));
	adv.max_chunk = get_unaligned_le32(p + __VW_HREP(max_chunk));
	adv.max_batch = get_unaligned_le32(p + __VW_HREP(max_batch));
	if (virgo_wire_limits_check(&adv))
		return -EINVAL;
	if (get_unaligned_le32(p + __VW_HREP(max_inflight)) == 0)
		return -EINVAL;
	if (get_unaligned_le64(p + __VW_HREP(free)) >
	    get_unaligned_le64(p + __VW_HREP(capacity)))
		return -EINVAL;
	caps = get_unaligned_le32(p + __VW_HREP(caps));
	if ((caps & VIRGO_CAP_RESUME) &&
	    !get_unaligned_le64(p + __VW_HRES(resume_id)))
		return -EINVAL;
	if ((caps & VIRGO_CAP_QUEUES) && !(caps & VIRGO_CAP_RESUME))
		return -EINVAL;
	return 0;
}

/**
 * virgo_wire_check_rep() - check a reply's payload
 * @m: header decoded by virgo_wire_hdr_unpack()
 * @payload: the @m->len payload bytes (may be NULL if @m->len is 0)
 * @lim: receiver's (the client's) limits
 *
 * Shape only: the client still checks that the reply matches its request
 * (same opcode and tag, ALLOC count equal to the count asked for, FREE
 * freed and DISCARD discarded <= count sent, READ length equal to the
 * length asked for, PING
 * bytes equal to those sent).  A reply with an error status has no
 * payload and is well formed.
 *
 * Return: 0; -EINVAL for a malformed payload (or a request passed in);
 * -E2BIG for a count or length over its limit; -EPROTONOSUPPORT for a
 * HELLO reply choosing a version other than VIRGO_WIRE_VERSION (or an
 * unknown opcode); -EMSGSIZE for len over max_payload.
 */
static inline int virgo_wire_check_rep(const struct virgo_wire_msg *m,
				       const void *payload,
				       const struct virgo_wire_limits *lim)
{
	const u8 *p = payload;
	u32 len = m->len;
	int ret;

	if (!virgo_wire_is_reply(m))
		return -EINVAL;
	ret = __virgo_wire_check_msg(m, lim);
	if (ret)
		return ret;
	if (m->status != VIRGO_ST_OK)
		return 0;	/* len is 0, checked above */
	if (len && !p)
		return -EINVAL;

	switch (m->opcode) {
	case VIRGO_OP_HELLO:
		if (len < VIRGO_WIRE_HELLO_REP_LEN ||
		    len != virgo_wire_hello_rep_len(get_unaligned_le32(p +
						     __VW_HREP(caps))))
			return -EINVAL;
		return __virgo_wire_check_hello_rep(p);
	case VIRGO_OP_AUTH:
		return len == VIRGO_WIRE_AUTH_LEN ? 0 : -EINVAL;
	case VIRGO_OP_ALLOC:
		return __virgo_wire_check_batch(p, len, VIRGO_WIRE_HANDLE_LEN,
						lim);
	case VIRGO_OP_FREE:
	case VIRGO_OP_DISCARD:
		/* Same layout: a count (<= max_batch) and reserved. */
		if (len != VIRGO_WIRE_FREE_REP_LEN ||
		    get_unaligned_le32(p + __VW_BATCH(reserved)))
			return -EINVAL;
		if (get_unaligned_le32(p + __VW_BATCH(count)) >
		    lim->max_batch)
			return -E2BIG;
		return 0;
	case VIRGO_OP_WRITE:
		return len == 0 ? 0 : -EINVAL;
	case VIRGO_OP_STAT:
		if (len != VIRGO_WIRE_STAT_REP_LEN)
			return -EINVAL;
		if (get_unaligned_le64(p + __VW_STAT(free)) >
		    get_unaligned_le64(p + __VW_STAT(capacity)))
			return -EINVAL;
		return 0;
	case VIRGO_OP_READ:
		if (len == 0)
			return -EINVAL;
		return len <= lim->max_chunk ? 0 : -E2BIG;
	case VIRGO_OP_PING:
		return len <= VIRGO_WIRE_PING_MAX ? 0 : -E2BIG;
	case VIRGO_OP_RESUME:
		return len == VIRGO_WIRE_RESUME_REP_LEN ? 0 : -EINVAL;
	case VIRGO_OP_JOIN:
		if (len != VIRGO_WIRE_JOIN_REP_LEN ||
		    get_unaligned_le32(p + __VW_JREP(reserved)) ||
		    get_unaligned_le32(p + __VW_JREP(queues)) < 2)
			return -EINVAL;
		return 0;
	default:
		return -EPROTONOSUPPORT;
	}
}

/* ---------------------------------------------------------------------- */
/* Getters: only on payloads that passed virgo_wire_check_req/_rep()       */
/* ---------------------------------------------------------------------- */

/**
 * virgo_wire_get_hello_req() - read a checked HELLO request
 * @payload: VIRGO_WIRE_HELLO_REQ_LEN checked bytes
 * @h: filled in host order
 */
static inline void virgo_wire_get_hello_req(const void *payload,
					    struct virgo_wire_hello_req *h)
{
	const u8 *p = payload;

	h->ver_min = get_unaligned_le16(p + __VW_HREQ(ver_min));
	h->ver_max = get_unaligned_le16(p + __VW_HREQ(ver_max));
	h->caps = get_unaligned_le32(p + __VW_HREQ(caps));
	memcpy(h->nonce, p + __VW_HREQ(nonce),
	       VIRGO_WIRE_NONCE_LEN);
}

/**
 * virgo_wire_get_hello_rep() - read a checked HELLO reply
 * @payload: virgo_wire_hello_rep_len() checked bytes
 * @h: filled in host order (@h->resume_id 0 and @h->token zeroes without
 *	VIRGO_CAP_RESUME)
 */
static inline void virgo_wire_get_hello_rep(const void *payload,
					    struct virgo_wire_hello_rep *h)
{
	const u8 *p = payload;

	h->version = get_unaligned_le16(p + __VW_HREP(version));
	h->flags = get_unaligned_le16(p + __VW_HREP(flags));
	h->caps = get_unaligned_le32(p + __VW_HREP(caps));
	h->max_payload = get_unaligned_le32(p + __VW_HREP(max_payload));
	h->max_chunk = get_unaligned_le32(p + __VW_HREP(max_chunk));
	h->max_batch = get_unaligned_le32(p + __VW_HREP(max_batch));
	h->max_inflight = get_unaligned_le32(p + __VW_HREP(max_inflight));
	h->capacity = get_unaligned_le64(p + __VW_HREP(capacity));
	h->free = get_unaligned_le64(p + __VW_HREP(free));
	memcpy(h->nonce, p + __VW_HREP(nonce), VIRGO_WIRE_NONCE_LEN);
	h->resume_id = 0;
	memset(h->token, 0, VIRGO_WIRE_TOKEN_LEN);
	if (h->caps & VIRGO_CAP_RESUME) {
		h->resume_id = get_unaligned_le64(p + __VW_HRES(resume_id));
		memcpy(h->token, p + __VW_HRES(token), VIRGO_WIRE_TOKEN_LEN);
	}
}

/**
 * virgo_wire_get_resume_req() - read a checked RESUME request
 * @payload: VIRGO_WIRE_RESUME_REQ_LEN checked bytes
 * @proof: VIRGO_WIRE_MAC_LEN bytes to fill
 *
 * Return: the resume id (never 0).
 */
static inline u64 virgo_wire_get_resume_req(const void *payload, u8 *proof)
{
	const u8 *p = payload;

	memcpy(proof, p + __VW_RREQ(proof), VIRGO_WIRE_MAC_LEN);
	return get_unaligned_le64(p + __VW_RREQ(resume_id));
}

/**
 * virgo_wire_get_resume_rep() - read a checked RESUME reply
 * @payload: VIRGO_WIRE_RESUME_REP_LEN checked bytes
 * @chunks: set to the chunks the resumed session holds
 * @bytes: set to the bytes in them
 */
static inline void virgo_wire_get_resume_rep(const void *payload, u64 *chunks,
					     u64 *bytes)
{
	const u8 *p = payload;

	*chunks = get_unaligned_le64(p + __VW_RREP(chunks));
	*bytes = get_unaligned_le64(p + __VW_RREP(bytes));
}

/**
 * virgo_wire_get_join_req() - read a checked JOIN request
 * @payload: VIRGO_WIRE_JOIN_REQ_LEN checked bytes
 * @proof: VIRGO_WIRE_MAC_LEN bytes to fill
 *
 * Return: the session id (never 0).
 */
static inline u64 virgo_wire_get_join_req(const void *payload, u8 *proof)
{
	const u8 *p = payload;

	memcpy(proof, p + __VW_JREQ(proof), VIRGO_WIRE_MAC_LEN);
	return get_unaligned_le64(p + __VW_JREQ(session_id));
}

/**
 * virgo_wire_get_join_rep() - read a checked JOIN reply
 * @payload: VIRGO_WIRE_JOIN_REP_LEN checked bytes
 *
 * Return: the connections the session has now (>= 2).
 */
static inline u32 virgo_wire_get_join_rep(const void *payload)
{
	const u8 *p = payload;

	return get_unaligned_le32(p + __VW_JREP(queues));
}

/**
 * virgo_wire_batch_count() - element count of a checked batch payload
 * @payload: checked ALLOC request/reply or FREE request payload
 *
 * Return: the count (1..max_batch).
 */
static inline u32 virgo_wire_batch_count(const void *payload)
{
	return get_unaligned_le32((const u8 *)payload +
				  __VW_BATCH(count));
}

/**
 * virgo_wire_alloc_size() - one size of a checked ALLOC request
 * @payload: checked ALLOC request payload
 * @i: index, below virgo_wire_batch_count()
 *
 * Return: the size in bytes (1..max_chunk).
 */
static inline u32 virgo_wire_alloc_size(const void *payload, u32 i)
{
	const u8 *p = payload;

	return get_unaligned_le32(p + VIRGO_WIRE_BATCH_HDR_LEN +
				  (size_t)i * VIRGO_WIRE_SIZE_LEN);
}

/**
 * virgo_wire_handle() - one handle of a checked ALLOC reply or FREE request
 * @payload: checked payload
 * @i: index, below virgo_wire_batch_count()
 *
 * Return: the handle (never 0).
 */
static inline u64 virgo_wire_handle(const void *payload, u32 i)
{
	const u8 *p = payload;

	return get_unaligned_le64(p + VIRGO_WIRE_BATCH_HDR_LEN +
				  (size_t)i * VIRGO_WIRE_HANDLE_LEN);
}

/**
 * virgo_wire_freed() - the count of a checked FREE reply
 * @payload: checked FREE reply payload
 *
 * Return: the number of handles the server freed.
 */
static inline u32 virgo_wire_freed(const void *payload)
{
	return get_unaligned_le32((const u8 *)payload +
				  __VW_BATCH(count));
}

/**
 * virgo_wire_discarded() - the count of a checked DISCARD reply
 * @payload: checked DISCARD reply payload
 *
 * Return: the number of handles whose chunks the server discarded.
 */
static inline u32 virgo_wire_discarded(const void *payload)
{
	return get_unaligned_le32((const u8 *)payload +
				  __VW_BATCH(count));
}

/**
 * virgo_wire_get_rw() - read the head of a checked WRITE or READ request
 * @payload: checked WRITE/READ request payload
 * @rw: filled in host order
 */
static inline void virgo_wire_get_rw(const void *payload,
				     struct virgo_wire_rw *rw)
{
	const u8 *p = payload;

	rw->handle = get_unaligned_le64(p + __VW_RW(handle));
	rw->offset = get_unaligned_le32(p + __VW_RW(offset));
	rw->length = get_unaligned_le32(p + __VW_RW(length));
}

/**
 * virgo_wire_rw_data() - the data of a checked WRITE request
 * @payload: checked WRITE request payload
 *
 * Return: pointer to the rw.length data bytes after the head.
 */
static inline const void *virgo_wire_rw_data(const void *payload)
{
	return (const u8 *)payload + VIRGO_WIRE_RW_REQ_LEN;
}

/**
 * virgo_wire_get_stat_rep() - read a checked STAT reply
 * @payload: VIRGO_WIRE_STAT_REP_LEN checked bytes
 * @st: filled in host order
 */
static inline void virgo_wire_get_stat_rep(const void *payload,
					   struct virgo_wire_stat *st)
{
	const u8 *p = payload;

	st->capacity = get_unaligned_le64(p + __VW_STAT(capacity));
	st->free = get_unaligned_le64(p + __VW_STAT(free));
	st->lent_bytes = get_unaligned_le64(p + __VW_STAT(lent_bytes));
	st->lent_chunks = get_unaligned_le64(p + __VW_STAT(lent_chunks));
	st->sessions = get_unaligned_le64(p + __VW_STAT(sessions));
	st->session_bytes = get_unaligned_le64(p + __VW_STAT(session_bytes));
	st->session_chunks = get_unaligned_le64(p + __VW_STAT(session_chunks));
	st->requests = get_unaligned_le64(p + __VW_STAT(requests));
}

/* ---------------------------------------------------------------------- */
/* Encoders: return the payload bytes written, or -EMSGSIZE if @cap is     */
/* too small (nothing is written then).  They do not validate contents.    */
/* ---------------------------------------------------------------------- */

/**
 * virgo_wire_put_batch_hdr() - write the head of a batch payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @count: number of elements
 * @elem: element size (VIRGO_WIRE_SIZE_LEN or VIRGO_WIRE_HANDLE_LEN)
 *
 * Writes count and reserved (0) and checks that the @count elements fit;
 * fill them with virgo_wire_set_alloc_size() or virgo_wire_set_handle().
 *
 * Return: the full payload length 8 + @count * @elem, or -EMSGSIZE if it
 * exceeds @cap or VIRGO_WIRE_MAX_PAYLOAD_LIMIT.
 */
static inline int virgo_wire_put_batch_hdr(void *buf, size_t cap, u32 count,
					   u32 elem)
{
	u8 *p = buf;
	u32 need;

	/* Bound count first: need then fits 32 bits (and an int). */
	if (elem && count > (VIRGO_WIRE_MAX_PAYLOAD_LIMIT -
			     VIRGO_WIRE_BATCH_HDR_LEN) / elem)
		return -EMSGSIZE;
	need = VIRGO_WIRE_BATCH_HDR_LEN + count * elem;
	if (need > cap)
		return -EMSGSIZE;
	put_unaligned_le32(count, p + __VW_BATCH(count));
	put_unaligned_le32(0, p + __VW_BATCH(reserved));
	return need;
}

/**
 * virgo_wire_set_alloc_size() - store one size of an ALLOC request
 * @payload: batch payload started with virgo_wire_put_batch_hdr()
 * @i: index, below the count given there
 * @size: size in bytes
 */
static inline void virgo_wire_set_alloc_size(void *payload, u32 i, u32 size)
{
	put_unaligned_le32(size, (u8 *)payload + VIRGO_WIRE_BATCH_HDR_LEN +
			   (size_t)i * VIRGO_WIRE_SIZE_LEN);
}

/**
 * virgo_wire_set_handle() - store one handle of an ALLOC reply/FREE request
 * @payload: batch payload started with virgo_wire_put_batch_hdr()
 * @i: index, below the count given there
 * @handle: handle
 */
static inline void virgo_wire_set_handle(void *payload, u32 i, u64 handle)
{
	put_unaligned_le64(handle, (u8 *)payload + VIRGO_WIRE_BATCH_HDR_LEN +
			   (size_t)i * VIRGO_WIRE_HANDLE_LEN);
}

/**
 * virgo_wire_put_alloc_req() - encode an ALLOC request payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @sizes: @count chunk sizes
 * @count: number of chunks
 *
 * Return: bytes written (8 + 4 * @count) or -EMSGSIZE.
 */
static inline int virgo_wire_put_alloc_req(void *buf, size_t cap,
					   const u32 *sizes, u32 count)
{
	int len;
	u32 i;

	len = virgo_wire_put_batch_hdr(buf, cap, count, VIRGO_WIRE_SIZE_LEN);
	for (i = 0; len > 0 && i < count; i++)
		virgo_wire_set_alloc_size(buf, i, sizes[i]);
	return len;
}

/**
 * __virgo_wire_put_handles() - encode a batch of handles
 * @buf: destination
 * @cap: bytes available at @buf
 * @handles: @count handles
 * @count: number of handles
 *
 * Return: bytes written (8 + 8 * @count) or -EMSGSIZE.
 */
static inline int __virgo_wire_put_handles(void *buf, size_t cap,
					   const u64 *handles, u32 count)
{
	int len;
	u32 i;

	len = virgo_wire_put_batch_hdr(buf, cap, count,
				       VIRGO_WIRE_HANDLE_LEN);
	for (i = 0; len > 0 && i < count; i++)
		virgo_wire_set_handle(buf, i, handles[i]);
	return len;
}

/**
 * virgo_wire_put_alloc_rep() - encode an ALLOC reply payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @handles: @count handles, in the order of the request's sizes
 * @count: number of handles (equal to the request's count)
 *
 * Return: bytes written (8 + 8 * @count) or -EMSGSIZE.
 */
static inline int virgo_wire_put_alloc_rep(void *buf, size_t cap,
					   const u64 *handles, u32 count)
{
	return __virgo_wire_put_handles(buf, cap, handles, count);
}

/**
 * virgo_wire_put_free_req() - encode a FREE request payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @handles: @count handles to free
 * @count: number of handles
 *
 * Return: bytes written (8 + 8 * @count) or -EMSGSIZE.
 */
static inline int virgo_wire_put_free_req(void *buf, size_t cap,
					  const u64 *handles, u32 count)
{
	return __virgo_wire_put_handles(buf, cap, handles, count);
}

/**
 * virgo_wire_put_free_rep() - encode a FREE reply payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @freed: number of handles freed
 *
 * Return: VIRGO_WIRE_FREE_REP_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_free_rep(void *buf, size_t cap, u32 freed)
{
	u8 *p = buf;

	if (cap < VIRGO_WIRE_FREE_REP_LEN)
		return -EMSGSIZE;
	put_unaligned_le32(freed, p + __VW_BATCH(count));
	put_unaligned_le32(0, p + __VW_BATCH(reserved));
	return VIRGO_WIRE_FREE_REP_LEN;
}

/**
 * virgo_wire_put_discard_req() - encode a DISCARD request payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @handles: @count handles whose chunks' memory the server drops
 * @count: number of handles
 *
 * Return: bytes written (8 + 8 * @count) or -EMSGSIZE.
 */
static inline int virgo_wire_put_discard_req(void *buf, size_t cap,
					     const u64 *handles, u32 count)
{
	return __virgo_wire_put_handles(buf, cap, handles, count);
}

/**
 * virgo_wire_put_discard_rep() - encode a DISCARD reply payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @discarded: number of handles discarded
 *
 * Return: VIRGO_WIRE_DISCARD_REP_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_discard_rep(void *buf, size_t cap,
					     u32 discarded)
{
	return virgo_wire_put_free_rep(buf, cap, discarded);
}

/**
 * virgo_wire_put_rw_req() - encode the head of a WRITE or READ request
 * @buf: destination
 * @cap: bytes available at @buf
 * @rw: handle, offset and length
 *
 * A WRITE request's payload is this head followed by @rw->length data
 * bytes (hdr.len = VIRGO_WIRE_RW_REQ_LEN + length); the caller sends the
 * data from where it is.
 *
 * Return: VIRGO_WIRE_RW_REQ_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_rw_req(void *buf, size_t cap,
					const struct virgo_wire_rw *rw)
{
	u8 *p = buf;

	if (cap < VIRGO_WIRE_RW_REQ_LEN)
		return -EMSGSIZE;
	put_unaligned_le64(rw->handle, p + __VW_RW(handle));
	put_unaligned_le32(rw->offset, p + __VW_RW(offset));
	put_unaligned_le32(rw->length, p + __VW_RW(length));
	return VIRGO_WIRE_RW_REQ_LEN;
}

/**
 * virgo_wire_put_hello_req() - encode a HELLO request payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @h: the request, host order
 *
 * Return: VIRGO_WIRE_HELLO_REQ_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_hello_req(void *buf, size_t cap,
					   const struct virgo_wire_hello_req *h)
{
	u8 *p = buf;

	if (cap < VIRGO_WIRE_HELLO_REQ_LEN)
		return -EMSGSIZE;
	put_unaligned_le16(h->ver_min, p + __VW_HREQ(ver_min));
	put_unaligned_le16(h->ver_max, p + __VW_HREQ(ver_max));
	put_unaligned_le32(h->caps, p + __VW_HREQ(caps));
	memcpy(p + __VW_HREQ(nonce), h->nonce,
	       VIRGO_WIRE_NONCE_LEN);
	return VIRGO_WIRE_HELLO_REQ_LEN;
}

/**
 * virgo_wire_put_hello_rep() - encode a HELLO reply payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @h: the reply, host order
 *
 * With VIRGO_CAP_RESUME in @h->caps the resume extension (@h->resume_id,
 * @h->token) follows the fixed part.
 *
 * Return: virgo_wire_hello_rep_len(@h->caps) or -EMSGSIZE.
 */
static inline int virgo_wire_put_hello_rep(void *buf, size_t cap,
					   const struct virgo_wire_hello_rep *h)
{
	u32 len = virgo_wire_hello_rep_len(h->caps);
	u8 *p = buf;

	if (cap < len)
		return -EMSGSIZE;
	put_unaligned_le16(h->version, p + __VW_HREP(version));
	put_unaligned_le16(h->flags, p + __VW_HREP(flags));
	put_unaligned_le32(h->caps, p + __VW_HREP(caps));
	put_unaligned_le32(h->max_payload, p + __VW_HREP(max_payload));
	put_unaligned_le32(h->max_chunk, p + __VW_HREP(max_chunk));
	put_unaligned_le32(h->max_batch, p + __VW_HREP(max_batch));
	put_unaligned_le32(h->max_inflight, p + __VW_HREP(max_inflight));
	put_unaligned_le64(h->capacity, p + __VW_HREP(capacity));
	put_unaligned_le64(h->free, p + __VW_HREP(free));
	memcpy(p + __VW_HREP(nonce), h->nonce, VIRGO_WIRE_NONCE_LEN);
	if (h->caps & VIRGO_CAP_RESUME) {
		put_unaligned_le64(h->resume_id, p + __VW_HRES(resume_id));
		memcpy(p + __VW_HRES(token), h->token, VIRGO_WIRE_TOKEN_LEN);
	}
	return len;
}

/**
 * virgo_wire_put_resume_req() - encode a RESUME request payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @resume_id: the session to take over (from its HELLO reply)
 * @proof: VIRGO_WIRE_MAC_LEN bytes: the token, or its HMAC with a key
 *
 * Return: VIRGO_WIRE_RESUME_REQ_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_resume_req(void *buf, size_t cap,
					    u64 resume_id, const u8 *proof)
{
	u8 *p = buf;

	if (cap < VIRGO_WIRE_RESUME_REQ_LEN)
		return -EMSGSIZE;
	put_unaligned_le64(resume_id, p + __VW_RREQ(resume_id));
	memcpy(p + __VW_RREQ(proof), proof, VIRGO_WIRE_MAC_LEN);
	return VIRGO_WIRE_RESUME_REQ_LEN;
}

/**
 * virgo_wire_put_resume_rep() - encode a RESUME reply payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @chunks: chunks the resumed session holds
 * @bytes: bytes in them
 *
 * Return: VIRGO_WIRE_RESUME_REP_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_resume_rep(void *buf, size_t cap, u64 chunks,
					    u64 bytes)
{
	u8 *p = buf;

	if (cap < VIRGO_WIRE_RESUME_REP_LEN)
		return -EMSGSIZE;
	put_unaligned_le64(chunks, p + __VW_RREP(chunks));
	put_unaligned_le64(bytes, p + __VW_RREP(bytes));
	return VIRGO_WIRE_RESUME_REP_LEN;
}

/**
 * virgo_wire_put_join_req() - encode a JOIN request payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @session_id: the session to attach to (its resume id)
 * @proof: VIRGO_WIRE_MAC_LEN bytes: the token, or its HMAC with a key
 *
 * Return: VIRGO_WIRE_JOIN_REQ_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_join_req(void *buf, size_t cap,
					  u64 session_id, const u8 *proof)
{
	u8 *p = buf;

	if (cap < VIRGO_WIRE_JOIN_REQ_LEN)
		return -EMSGSIZE;
	put_unaligned_le64(session_id, p + __VW_JREQ(session_id));
	memcpy(p + __VW_JREQ(proof), proof, VIRGO_WIRE_MAC_LEN);
	return VIRGO_WIRE_JOIN_REQ_LEN;
}

/**
 * virgo_wire_put_join_rep() - encode a JOIN reply payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @queues: connections the session has now, this one included
 *
 * Return: VIRGO_WIRE_JOIN_REP_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_join_rep(void *buf, size_t cap, u32 queues)
{
	u8 *p = buf;

	if (cap < VIRGO_WIRE_JOIN_REP_LEN)
		return -EMSGSIZE;
	put_unaligned_le32(queues, p + __VW_JREP(queues));
	put_unaligned_le32(0, p + __VW_JREP(reserved));
	return VIRGO_WIRE_JOIN_REP_LEN;
}

/**
 * virgo_wire_put_auth() - encode an AUTH request or reply payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @mac: the VIRGO_WIRE_MAC_LEN byte HMAC-SHA256
 *
 * Return: VIRGO_WIRE_AUTH_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_auth(void *buf, size_t cap, const u8 *mac)
{
	if (cap < VIRGO_WIRE_AUTH_LEN)
		return -EMSGSIZE;
	memcpy(buf, mac, VIRGO_WIRE_AUTH_LEN);
	return VIRGO_WIRE_AUTH_LEN;
}

/**
 * virgo_wire_put_stat_rep() - encode a STAT reply payload
 * @buf: destination
 * @cap: bytes available at @buf
 * @st: the counters, host order
 *
 * Return: VIRGO_WIRE_STAT_REP_LEN or -EMSGSIZE.
 */
static inline int virgo_wire_put_stat_rep(void *buf, size_t cap,
					  const struct virgo_wire_stat *st)
{
	u8 *p = buf;

	if (cap < VIRGO_WIRE_STAT_REP_LEN)
		return -EMSGSIZE;
	put_unaligned_le64(st->capacity, p + __VW_STAT(capacity));
	put_unaligned_le64(st->free, p + __VW_STAT(free));
	put_unaligned_le64(st->lent_bytes, p + __VW_STAT(lent_bytes));
	put_unaligned_le64(st->lent_chunks, p + __VW_STAT(lent_chunks));
	put_unaligned_le64(st->sessions, p + __VW_STAT(sessions));
	put_unaligned_le64(st->session_bytes, p + __VW_STAT(session_bytes));
	put_unaligned_le64(st->session_chunks, p + __VW_STAT(session_chunks));
	put_unaligned_le64(st->requests, p + __VW_STAT(requests));
	return VIRGO_WIRE_STAT_REP_LEN;
}

#undef __VW_HDR
#undef __VW_HREQ
#undef __VW_HREP
#undef __VW_BATCH
#undef __VW_RW
#undef __VW_STAT
#undef __VW_HRES
#undef __VW_RREQ
#undef __VW_RREP
#undef __VW_JREQ
#undef __VW_JREP

#endif /* _VIRGO_WIRE_H */
