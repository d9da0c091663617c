// SPDX-License-Identifier: GPL-2.0
/*
 * virgoctl status --peer: one short session with a cloud node (see
 * vc_remote.h and docs/protocol.md sections 5.1, 5.2, 5.6 and 6).
 *
 * Blocking socket with send and receive timeouts, one request at a time:
 * each reply is read whole (header, then at most VC_REPLY_MAX payload
 * bytes), checked with virgo_wire_hdr_unpack() and virgo_wire_check_rep()
 * and only then read with the getters.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
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
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "virgo_wire.h"
#include "vc_remote.h"

/*
 * The largest reply payload this client takes: a HELLO reply (it offers
 * no capability, so a server must send the 72-byte one; room for the
 * longest keeps the getter in bounds whatever the server claims).
 */
#define VC_REPLY_MAX	VIRGO_WIRE_HELLO_REP_MAX

/**
 * struct vc_conn - one connection to a server
 * @fd: the socket
 * @tag: the tag of the next request
 * @spec: the address, for messages
 * @err: where a message goes
 * @errlen: room at @err
 */
struct vc_conn {
	int fd;
	u64 tag;
	const char *spec;
	char *err;
	size_t errlen;
};

static int vc_fail(struct vc_conn *c, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	n = (size_t)snprintf(c->err, c->errlen, "%s: ", c->spec);
	if (n >= c->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- the key file ------------------------------------------------------ */

void vc_key_wipe(struct vc_key *key)
{
	OPENSSL_cleanse(key, sizeof(*key));
}

int vc_key_read(const char *path, struct vc_key *key, char *err,
		size_t errlen)
{
	uint8_t buf[VC_PSK_MAX + 2];
	size_t len = 0;
	struct stat st;
	int fd, ret = -1;
	ssize_t n;

	memset(key, 0, sizeof(*key));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "--psk-file %s: %s", path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st)) {
		snprintf(err, errlen, "--psk-file %s: %s", path,
			 strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "--psk-file %s: not a regular file",
			 path);
		goto out;
	}
	if (st.st_mode & 0077) {
		snprintf(err, errlen,
			 "--psk-file %s: mode %04o: group or others may access it; chmod 600 it",
			 path, (unsigned int)(st.st_mode & 07777));
		goto out;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "--psk-file %s: %s", path,
				 strerror(errno));
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	if (len && buf[len - 1] == '\n')
		len--;
	if (!len || len > VC_PSK_MAX) {
		snprintf(err, errlen,
			 "--psk-file %s: the key must be 1..%d bytes", path,
			 VC_PSK_MAX);
		goto out;
	}
	memcpy(key->bytes, buf, len);
	key->len = len;
	ret = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return ret;
}

/* ---- the address ------------------------------------------------------- */

/* "a.b.c.d:port" or "[v6]:port" into @ss; 0 or -1. */
static int vc_parse_spec(const char *spec, struct sockaddr_storage *ss,
			 socklen_t *sslen)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h = spec, *end;
	unsigned long port;
	size_t hlen;
	char *pend;

	memset(ss, 0, sizeof(*ss));
	if (spec[0] == '[') {
		end = strchr(spec, ']');
		if (!end || end[1] != ':')
			return -1;
		h = spec + 1;
		hlen = (size_t)(end - h);
		colon = end + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -1;
		hlen = (size_t)(colon - spec);
	}
	if (!hlen || hlen >= sizeof(host))
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (colon[1] < '1' || colon[1] > '9' || strlen(colon + 1) > 5)
		return -1;
	errno = 0;
	port = strtoul(colon + 1, &pend, 10);
	if (errno || *pend || !port || port > 65535)
		return -1;
	if (spec[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*sslen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*sslen = sizeof(*s4);
	}
	return 0;
}

bool vc_remote_valid_spec(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;

	return !vc_parse_spec(spec, &ss, &len);
}

/* ---- the connection ---------------------------------------------------- */

/* Connect within @timeout_ms; then blocking I/O with that timeout. */
static int vc_connect(struct vc_conn *c, int timeout_ms)
{
	struct timeval tv = {
		.tv_sec = timeout_ms / 1000,
		.tv_usec = (timeout_ms % 1000) * 1000,
	};
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t sslen, elen = sizeof(int);
	int one = 1, soerr = 0, flags, n;

	if (vc_parse_spec(c->spec, &ss, &sslen))
		return vc_fail(c, "not an address (a.b.c.d:port or [v6]:port)");
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return vc_fail(c, "socket: %s", strerror(errno));
	flags = fcntl(c->fd, F_GETFL);
	if (flags < 0 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK))
		return vc_fail(c, "fcntl: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&ss, sslen) &&
	    errno != EINPROGRESS)
		return vc_fail(c, "connect: %s", strerror(errno));
	pfd.fd = c->fd;
	pfd.events = POLLOUT;
	do {
		n = poll(&pfd, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return vc_fail(c, "poll: %s", strerror(errno));
	if (!n)
		return vc_fail(c, "connect: no answer within %d ms",
			       timeout_ms);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &elen))
		return vc_fail(c, "connect: %s", strerror(errno));
	if (soerr)
		return vc_fail(c, "connect: %s", strerror(soerr));
	if (fcntl(c->fd, F_SETFL, flags) ||
	    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return vc_fail(c, "socket options: %s", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int vc_io_error(struct vc_conn *c, const char *what, ssize_t n)
{
	if (!n)
		return vc_fail(c, "%s: the server closed the connection", what);
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return vc_fail(c, "%s: no answer in time", what);
	return vc_fail(c, "%s: %s", what, strerror(errno));
}

static int vc_send_all(struct vc_conn *c, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vc_io_error(c, "send", n);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int vc_recv_all(struct vc_conn *c, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = recv(c->fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return vc_io_error(c, "receive", n);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send one request: header and @len payload bytes. */
static int vc_send(struct vc_conn *c, u8 op, const void *payload, u32 len)
{
	uint8_t frame[VIRGO_WIRE_HDR_LEN + VIRGO_WIRE_HELLO_REQ_LEN];

	if (len > sizeof(frame) - VIRGO_WIRE_HDR_LEN)
		return vc_fail(c, "internal: request too long");
	virgo_wire_hdr_pack(frame, op, 0, len, 0, ++c->tag);
	if (len)
		memcpy(frame + VIRGO_WIRE_HDR_LEN, payload, len);
	return vc_send_all(c, frame, VIRGO_WIRE_HDR_LEN + len);
}

/*
 * Receive the reply to the request just sent: checked, of @op, with our
 * tag.  Its status goes to *@status; the payload (status OK) to @payload.
 */
static int vc_recv(struct vc_conn *c, u8 op, u32 *status,
		   uint8_t payload[VC_REPLY_MAX])
{
	struct virgo_wire_limits lim;
	struct virgo_wire_msg m;
	uint8_t hdr[VIRGO_WIRE_HDR_LEN];
	int ret;

	virgo_wire_limits_default(&lim);
	lim.max_payload = VC_REPLY_MAX;
	if (vc_recv_all(c, hdr, sizeof(hdr)))
		return -1;
	ret = virgo_wire_hdr_unpack(hdr, &m, &lim);
	if (ret)
		return vc_fail(c, "%s reply: bad header (%s)",
			       virgo_wire_op_name(op), strerror(-ret));
	if (!virgo_wire_is_reply(&m) || m.opcode != op || m.tag != c->tag)
		return vc_fail(c, "%s reply: got %s tag %llu instead",
			       virgo_wire_op_name(op),
			       virgo_wire_op_name(m.opcode),
			       (unsigned long long)m.tag);
	if (vc_recv_all(c, payload, m.len))
		return -1;
	ret = virgo_wire_check_rep(&m, m.len ? payload : NULL, &lim);
	if (ret)
		return vc_fail(c, "%s reply: malformed (%s)",
			       virgo_wire_op_name(op), strerror(-ret));
	*status = m.status;
	return 0;
}

/* HMAC-SHA256 of the AUTH input of @role. */
static int vc_mac(const struct vc_key *key, enum virgo_wire_auth_role role,
		  const u8 *client_nonce, const u8 *server_nonce,
		  u8 mac[VIRGO_WIRE_MAC_LEN])
{
	u8 in[VIRGO_WIRE_AUTH_INPUT_LEN];
	unsigned int len = 0;

	virgo_wire_auth_input(in, role, client_nonce, server_nonce);
	if (!HMAC(EVP_sha256(), key->bytes, (int)key->len, in, sizeof(in),
		  mac, &len) || len != VIRGO_WIRE_MAC_LEN)
		return -1;
	return 0;
}

static int vc_auth(struct vc_conn *c, const struct vc_key *key,
		   const u8 *client_nonce, const u8 *server_nonce)
{
	u8 mac[VIRGO_WIRE_MAC_LEN], rep[VC_REPLY_MAX];
	u32 status;
	int ret = -1;

	if (vc_mac(key, VIRGO_WIRE_AUTH_CLIENT, client_nonce, server_nonce,
		   mac)) {
		vc_fail(c, "HMAC-SHA256 failed");
		goto out;
	}
	if (vc_send(c, VIRGO_OP_AUTH, mac, sizeof(mac)) ||
	    vc_recv(c, VIRGO_OP_AUTH, &status, rep))
		goto out;
	if (status == VIRGO_ST_AUTH) {
		vc_fail(c, "the server refused the key (AUTH): not its key");
		goto out;
	}
	if (status != VIRGO_ST_OK) {
		vc_fail(c, "AUTH: status %s", virgo_wire_status_name(status));
		goto out;
	}
	if (vc_mac(key, VIRGO_WIRE_AUTH_SERVER, client_nonce, server_nonce,
		   mac)) {
		vc_fail(c, "HMAC-SHA256 failed");
		goto out;
	}
	if (CRYPTO_memcmp(mac, rep, VIRGO_WIRE_MAC_LEN)) {
		vc_fail(c, "%s",
			"the server's AUTH reply does not prove the key: refusing it");
		goto out;
	}
	ret = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	return ret;
}

static int vc_hello(struct vc_conn *c, const struct vc_key *key,
		    struct vc_remote *out)
{
	struct virgo_wire_hello_req req = { .ver_min = 1, .ver_max = 1 };
	struct virgo_wire_hello_rep rep;
	u8 buf[VIRGO_WIRE_HELLO_REQ_LEN], p[VC_REPLY_MAX];
	u32 status;

	if (getrandom(req.nonce, sizeof(req.nonce), 0) !=
	    (ssize_t)sizeof(req.nonce))
		return vc_fail(c, "getrandom: %s", strerror(errno));
	virgo_wire_put_hello_req(buf, sizeof(buf), &req);
	if (vc_send(c, VIRGO_OP_HELLO, buf, sizeof(buf)) ||
	    vc_recv(c, VIRGO_OP_HELLO, &status, p))
		return -1;
	if (status == VIRGO_ST_PROTO)
		return vc_fail(c,
			       "the server does not speak protocol version 1");
	if (status != VIRGO_ST_OK)
		return vc_fail(c, "HELLO: status %s",
			       virgo_wire_status_name(status));
	virgo_wire_get_hello_rep(p, &rep);
	if (rep.caps & ~req.caps)
		return vc_fail(c, "HELLO: capabilities 0x%x never offered",
			       rep.caps & ~req.caps);
	out->version = rep.version;
	out->auth_required = rep.flags & VIRGO_HELLO_AUTH_REQUIRED;
	out->max_payload = rep.max_payload;
	out->max_chunk = rep.max_chunk;
	out->max_batch = rep.max_batch;
	out->max_inflight = rep.max_inflight;
	if (!out->auth_required && key && key->len)
		return vc_fail(c, "%s",
			       "the server does not ask for the key: refusing it (no downgrade to an unauthenticated server)");
	if (!out->auth_required)
		return 0;
	if (!key || !key->len)
		return vc_fail(c, "%s",
			       "the server asks for the key: give it with --psk-file FILE");
	return vc_auth(c, key, req.nonce, rep.nonce);
}

static uint64_t vc_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int vc_stat(struct vc_conn *c, struct vc_remote *out)
{
	struct virgo_wire_stat st;
	u8 p[VC_REPLY_MAX];
	uint64_t t0;
	u32 status;

	t0 = vc_now_us();
	if (vc_send(c, VIRGO_OP_STAT, NULL, 0) ||
	    vc_recv(c, VIRGO_OP_STAT, &status, p))
		return -1;
	out->rtt_us = vc_now_us() - t0;
	if (status != VIRGO_ST_OK)
		return vc_fail(c, "STAT: status %s",
			       virgo_wire_status_name(status));
	virgo_wire_get_stat_rep(p, &st);
	out->capacity = st.capacity;
	out->free = st.free;
	out->lent_bytes = st.lent_bytes;
	out->lent_chunks = st.lent_chunks;
	out->sessions = st.sessions;
	out->session_bytes = st.session_bytes;
	out->session_chunks = st.session_chunks;
	out->requests = st.requests;
	return 0;
}

int vc_remote_stat(const char *spec, const struct vc_key *key,
		   int timeout_ms, struct vc_remote *out, char *err,
		   size_t errlen)
{
	struct vc_conn c = {
		.fd = -1,
		.spec = spec,
		.err = err,
		.errlen = errlen,
	};
	int ret;

	memset(out, 0, sizeof(*out));
	ret = vc_connect(&c, timeout_ms);
	if (!ret)
		ret = vc_hello(&c, key, out);
	if (!ret)
		ret = vc_stat(&c, out);
	if (c.fd >= 0)
		close(c.fd);
	return ret;
}
