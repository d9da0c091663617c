// SPDX-License-Identifier: GPL-2.0
/*
 * virgo-cdbench: what a virgo server (virgo_clouddrec.ko or
 * virgo-clouddrecd) delivers to one client connection, over the wire.
 *
 *   virgo-cdbench [--key FILE] [-c CHUNK] [-d DEPTH] [-m MIB] [-n N]
 *                 HOST PORT
 *
 * Prints, one "name value unit" line each:
 *   ping_us      mean round trip of an empty PING (N of them)
 *   alloc_us     mean round trip of an ALLOC of one CHUNK chunk (N, each
 *                freed again), and its median and 99th percentile
 *   write_mibs   MIB MiB of CHUNK-byte WRITEs, DEPTH in flight
 *   read_mibs    the same with READs (of written chunks)
 * Every reply is checked (status OK, tag, length); READ data is compared
 * with what was written.  Exit 1 on any error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <virgo_wire.h>

#define BENCH_CHUNKS	16

static const char usage[] =
	"usage: virgo-cdbench [--key FILE] [-c CHUNK] [-d DEPTH] [-m MIB]\n"
	"                     [-n N] HOST PORT";

static int fd = -1;
static u8 *rbuf;
static u32 rbuf_cap;
static struct virgo_wire_limits lim;
static u64 next_tag = 1;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int die(const char *what)
{
	fprintf(stderr, "virgo-cdbench: %s\n", what);
	exit(1);
}

static void send_all(const struct iovec *iov_in, int nr)
{
	struct iovec iov[3];
	int i = 0;

	memcpy(iov, iov_in, sizeof(*iov) * (size_t)nr);
	while (i < nr) {
		ssize_t n = writev(fd, iov + i, nr - i);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("send");
		while (i < nr && (size_t)n >= iov[i].iov_len) {
			n -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < nr) {
			iov[i].iov_base = (u8 *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
}

static void recv_all(void *buf, size_t len)
{
	u8 *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("connection closed");
		p += n;
		len -= (size_t)n;
	}
}

/* Send a request; its tag. */
static u64 send_req(u8 op, const void *head, u32 head_len,
		    const void *data, u32 data_len)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct iovec iov[3] = {
		{ hdr, sizeof(hdr) },
		{ (void *)head, head_len },
		{ (void *)data, data_len },
	};
	u64 tag = next_tag++;

	virgo_wire_hdr_pack(hdr, op, 0, head_len + data_len, 0, tag);
	send_all(iov, data_len ? 3 : head_len ? 2 : 1);
	return tag;
}

/* Receive a reply (payload in rbuf); dies unless OK and of @op. */
static struct virgo_wire_msg recv_rep(u8 op)
{
	u8 hdr[VIRGO_WIRE_HDR_LEN];
	struct virgo_wire_msg m;

	recv_all(hdr, sizeof(hdr));
	if (virgo_wire_hdr_unpack(hdr, &m, &lim) || !virgo_wire_is_reply(&m) ||
	    m.len > rbuf_cap)
		die("bad reply header");
	recv_all(rbuf, m.len);
	if (virgo_wire_check_rep(&m, m.len ? rbuf : NULL, &lim))
		die("malformed reply");
	if (m.opcode != op || m.status != VIRGO_ST_OK) {
		fprintf(stderr, "virgo-cdbench: %s: %s\n",
			virgo_wire_op_name(op),
			virgo_wire_status_name(m.status));
		exit(1);
	}
	return m;
}

static void handshake(const u8 *key, size_t key_len)
{
	struct virgo_wire_hello_req req = { .ver_min = 1, .ver_max = 1 };
	struct virgo_wire_hello_rep rep;
	u8 buf[VIRGO_WIRE_AUTH_INPUT_LEN], mac[32];
	unsigned int mac_len;

	if (getrandom(req.nonce, sizeof(req.nonce), 0) != sizeof(req.nonce))
		die("getrandom");
	virgo_wire_put_hello_req(buf, sizeof(buf), &req);
	send_req(VIRGO_OP_HELLO, buf, VIRGO_WIRE_HELLO_REQ_LEN, NULL, 0);
	recv_rep(VIRGO_OP_HELLO);
	virgo_wire_get_hello_rep(rbuf, &rep);
	lim.max_payload = rep.max_payload;
	lim.max_chunk = rep.max_chunk;
	lim.max_batch = rep.max_batch;
	if (!(rep.flags & VIRGO_HELLO_AUTH_REQUIRED))
		return;
	if (!key_len)
		die("the server wants a key: --key FILE");
	virgo_wire_auth_input(buf, VIRGO_WIRE_AUTH_CLIENT, req.nonce,
			      rep.nonce);
	if (!HMAC(EVP_sha256(), key, (int)key_len, buf, sizeof(buf), mac,
		  &mac_len))
		die("HMAC");
	send_req(VIRGO_OP_AUTH, mac, sizeof(mac), NULL, 0);
	recv_rep(VIRGO_OP_AUTH);
}

static u64 alloc1(u32 size)
{
	u8 req[VIRGO_WIRE_BATCH_HDR_LEN + 4];

	virgo_wire_put_alloc_req(req, sizeof(req), &size, 1);
	send_req(VIRGO_OP_ALLOC, req, sizeof(req), NULL, 0);
	recv_rep(VIRGO_OP_ALLOC);
	return virgo_wire_handle(rbuf, 0);
}

static void free1(u64 h)
{
	u8 req[VIRGO_WIRE_BATCH_HDR_LEN + 8];

	virgo_wire_put_free_req(req, sizeof(req), &h, 1);
	send_req(VIRGO_OP_FREE, req, sizeof(req), NULL, 0);
	recv_rep(VIRGO_OP_FREE);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* WRITE or READ @total bytes in @chunk pieces, @depth in flight. */
static double rw_mibs(u8 op, const u64 *h, u32 chunk, u32 depth, u64 total,
		      u8 *data)
{
	u64 sent = 0, done = 0, nreq = total / chunk, i;
	double t0 = now_s();

	for (i = 0; done < nreq; ) {
		while (sent < nreq && sent - done < depth) {
			struct virgo_wire_rw rw = {
				.handle = h[sent % BENCH_CHUNKS],
				.offset = 0,
				.length = chunk,
			};
			u8 head[VIRGO_WIRE_RW_REQ_LEN];

			virgo_wire_put_rw_req(head, sizeof(head), &rw);
			send_req(op, head, sizeof(head),
				 op == VIRGO_OP_WRITE ? data : NULL,
				 op == VIRGO_OP_WRITE ? chunk : 0);
			sent++;
		}
		recv_rep(op);
		if (op == VIRGO_OP_READ &&
		    (rbuf[0] != data[0] || rbuf[chunk - 1] != data[chunk - 1] ||
		     memcmp(rbuf, data, chunk)))
			die("READ returned other bytes than written");
		done++;
		i++;
	}
	return (double)(nreq * chunk) / (1 << 20) / (now_s() - t0);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	u32 chunk = 1 << 20, depth = 4, mib = 256, n = 500, i;
	struct sockaddr_storage ss = { 0 };
	u8 key[66];
	size_t key_len = 0;
	double *lat, sum = 0, t;
	u64 h[BENCH_CHUNKS];
	u8 *data;
	int opt, one = 1;
	socklen_t sl;

	while ((opt = getopt_long(argc, argv, "k:c:d:m:n:", opts, NULL)) >= 0) {
		switch (opt) {
		case 'k': {
			FILE *f = fopen(optarg, "re");

			if (!f)
				die("--key: cannot open");
			key_len = fread(key, 1, sizeof(key), f);
			fclose(f);
			if (key_len && key[key_len - 1] == '\n')
				key_len--;
			if (!key_len || key_len > 64)
				die("--key: 1..64 bytes");
			break;
		}
		case 'c':
			chunk = (u32)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			depth = (u32)strtoul(optarg, NULL, 0);
			break;
		case 'm':
			mib = (u32)strtoul(optarg, NULL, 0);
			break;
		case 'n':
			n = (u32)strtoul(optarg, NULL, 0);
			break;
		default:
			die(usage);
		}
	}
	if (argc - optind != 2 || !chunk || !depth || !mib || !n)
		die(usage);
	if (inet_pton(AF_INET, argv[optind],
		      &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port =
			htons((u16)atoi(argv[optind + 1]));
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, argv[optind],
			     &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port =
			htons((u16)atoi(argv[optind + 1]));
		sl = sizeof(struct sockaddr_in6);
	} else {
		die("HOST: an IPv4 or IPv6 address");
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl))
		die("connect");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	virgo_wire_limits_default(&lim);
	rbuf_cap = VIRGO_WIRE_MAX_PAYLOAD_LIMIT;
	rbuf = malloc(rbuf_cap);
	lat = calloc(n, sizeof(*lat));
	if (!rbuf || !lat)
		die("memory");
	handshake(key, key_len);
	OPENSSL_cleanse(key, sizeof(key));
	if (chunk > lim.max_chunk)
		die("CHUNK over the server's max_chunk");
	data = malloc(chunk);
	if (!data)
		die("memory");
	for (i = 0; i < chunk; i++)
		data[i] = (u8)(i * 131 + 7);

	for (i = 0; i < n; i++) {
		t = now_s();
		send_req(VIRGO_OP_PING, NULL, 0, NULL, 0);
		recv_rep(VIRGO_OP_PING);
		sum += now_s() - t;
	}
	printf("ping_us %.1f\n", sum / n * 1e6);

	sum = 0;
	for (i = 0; i < n; i++) {
		u64 hh;

		t = now_s();
		hh = alloc1(chunk);
		lat[i] = now_s() - t;
		sum += lat[i];
		free1(hh);
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("alloc_us %.1f p50 %.1f p99 %.1f\n", sum / n * 1e6,
	       lat[n / 2] * 1e6, lat[(size_t)n * 99 / 100] * 1e6);

	for (i = 0; i < BENCH_CHUNKS; i++)
		h[i] = alloc1(chunk);
	printf("write_mibs %.1f\n", rw_mibs(VIRGO_OP_WRITE, h, chunk, depth,
					    (u64)mib << 20, data));
	printf("read_mibs %.1f\n", rw_mibs(VIRGO_OP_READ, h, chunk, depth,
					   (u64)mib << 20, data));
	for (i = 0; i < BENCH_CHUNKS; i++)
		free1(h[i]);
	close(fd);
	free(data);
	free(rbuf);
	free(lat);
	return 0;
}
