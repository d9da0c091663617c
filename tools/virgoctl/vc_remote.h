/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgoctl: a cloud node's counters over the wire (virgoctl status --peer).
 *
 * One TCP connection to a server of wire protocol v1 (virgo_clouddrec.ko
 * or virgo-clouddrecd): HELLO, AUTH when the server asks for the key,
 * STAT, close.  The frames are built and checked with
 * include/virgo_wire.h; HMAC-SHA256 comes from libcrypto, as in the
 * daemon.  Nothing here prints: errors come back as a message.
 */
#ifndef _VC_REMOTE_H
#define _VC_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest key, as virgo_clouddrec's psk= and the daemon's key file. */
#define VC_PSK_MAX	64

/**
 * struct vc_key - a pre-shared key read from a file
 * @len: bytes in @bytes (0: no key)
 * @bytes: the key
 */
struct vc_key {
	size_t len;
	uint8_t bytes[VC_PSK_MAX];
};

/**
 * struct vc_remote - what a server said, host order
 * @version: protocol version it chose
 * @auth_required: its HELLO reply asked for the key
 * @max_payload: its limits, from the HELLO reply
 * @max_chunk: largest chunk
 * @max_batch: largest ALLOC/FREE batch
 * @max_inflight: requests a client may pipeline
 * @capacity: STAT: bytes it may lend in total
 * @free: STAT: bytes still lendable
 * @lent_bytes: STAT: bytes lent to all sessions
 * @lent_chunks: STAT: chunks lent to all sessions
 * @sessions: STAT: open sessions (this one included)
 * @session_bytes: STAT: bytes lent to this session (0)
 * @session_chunks: STAT: chunks lent to this session (0)
 * @requests: STAT: requests served since the server started
 * @rtt_us: the STAT round trip, microseconds
 */
struct vc_remote {
	unsigned int version;
	bool auth_required;
	uint32_t max_payload, max_chunk, max_batch, max_inflight;
	uint64_t capacity, free, lent_bytes, lent_chunks, sessions;
	uint64_t session_bytes, session_chunks, requests;
	uint64_t rtt_us;
};

/**
 * vc_key_read() - read a key file as virgo-clouddrecd does
 * @path: the file: regular, no permission for group or others, 1..64
 *	bytes after one trailing newline is dropped
 * @key: filled in
 * @err: a message on failure
 * @errlen: room at @err
 *
 * Return: 0, or -1 with @err set.
 */
int vc_key_read(const char *path, struct vc_key *key, char *err,
		size_t errlen);

/**
 * vc_key_wipe() - clear a key from memory
 * @key: the key
 */
void vc_key_wipe(struct vc_key *key);

/**
 * vc_remote_valid_spec() - is @spec "a.b.c.d:port" or "[v6]:port"?
 * @spec: the address as given
 *
 * Return: true when vc_remote_stat() can parse it.
 */
bool vc_remote_valid_spec(const char *spec);

/**
 * vc_remote_stat() - HELLO, AUTH if asked, STAT
 * @spec: "a.b.c.d:port" or "[ipv6]:port"
 * @key: the key, or NULL (or len 0) for none
 * @timeout_ms: for the connect and for each reply
 * @out: filled in on success
 * @err: a message on failure (what failed and why)
 * @errlen: room at @err
 *
 * With a key, a server that does not ask for it is refused (protocol.md
 * section 6: no downgrade), and the server's AUTH reply MAC is checked.
 *
 * Return: 0, or -1 with @err set.
 */
int vc_remote_stat(const char *spec, const struct vc_key *key,
		   int timeout_ms, struct vc_remote *out, char *err,
		   size_t errlen);

#endif /* _VC_REMOTE_H */
