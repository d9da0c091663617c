// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_netbench: the user-space side of `make bench-cluster`, linked
 * static into the cluster nodes' initramfs.  Every mode prints one line
 * of integers (times in ns) on stdout and exits 0, or says why not on
 * stderr and exits 1.
 *
 *   server PORT              serve the modes below on TCP PORT (forks per
 *                            connection; runs until killed)
 *   send HOST PORT SIZE      stream SIZE bytes to the server, which checks
 *                            every byte; the time from the server's
 *                            "ready" to its ack of the last byte
 *   recv HOST PORT SIZE      SIZE bytes from the server, every byte
 *                            checked; the time from the server's "ready"
 *                            to the last byte
 *   (the buffers of both sides are touched, and the patterns made, before
 *   "ready"; the bytes are checked after the timed part)
 *   rtt N PORT HOST...       N rounds of a 16-byte ping-pong with every
 *                            HOST at once (one host: the TCP RTT; three:
 *                            a parallel ping); the N round times
 *   dev SIZE [STEP]          /dev/virgo: VIRGO_IOC_MALLOC, pwrite() of a
 *                            pattern (cold), pwrite() of another (warm),
 *                            pread() into a zeroed buffer, every byte
 *                            compared, VIRGO_IOC_FREE: "cold set get";
 *                            one call each, or calls of STEP bytes one
 *                            after the other (1 MiB: what the user path
 *                            did inside one call before it pinned)
 *   nvme DEV SIZE            O_DIRECT pwrite() of SIZE bytes of a pattern
 *                            at offset 0 of block device DEV in one call
 *                            (the block layer keeps it all in flight),
 *                            then pread() into a zeroed buffer, compared:
 *                            "write read"
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/virgo.h>

#include "bench_pattern.h"

#define MSG_LEN		16
#define MAX_HOSTS	8

static void die(const char *what)
{
	fprintf(stderr, "virgo_netbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t r = write(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("write");
		p += r;
		n -= r;
	}
}

static void read_all(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read");
		if (!r) {
			errno = EPIPE;
			die("read: connection closed");
		}
		p += r;
		n -= r;
	}
}

struct req {
	char op;
	char pad[3];
	__u32 seed;
	__u64 size;
};

/*
 * 'S' and 'R': get one buffer of the whole size ready (touched, so no
 * page fault lands in the timed part; for 'R' filled with the pattern),
 * say ready (the client's clock starts), then receive all of it and ack
 * (the clock stops), or send it.  Then 'S' checks and sends the verdict.
 * Neither side's pattern work or first touch is inside the time measured.
 */
static void serve(int c)
{
	unsigned char *buf;
	struct req rq;
	char ok = '1';

	read_all(c, &rq, sizeof(rq));
	switch (rq.op) {
	case 'S':
	case 'R':
		buf = malloc(rq.size ? rq.size : 1);
		if (!buf)
			die("malloc");
		if (rq.op == 'S')
			memset(buf, 0, rq.size);
		else
			fill(buf, rq.size, 0, rq.seed);
		write_all(c, &ok, 1);
		if (rq.op == 'S') {
			read_all(c, buf, rq.size);
			write_all(c, &ok, 1);
			if (check(buf, rq.size, 0, rq.seed))
				ok = '0';
			write_all(c, &ok, 1);
		} else {
			write_all(c, buf, rq.size);
		}
		free(buf);
		break;
	case 'P':
		buf = malloc(MSG_LEN);
		if (!buf)
			die("malloc");
		for (;;) {
			ssize_t r = read(c, buf, MSG_LEN);

			if (r <= 0)
				break;
			write_all(c, buf, r);
		}
		free(buf);
		break;
	}
}

static int server(int port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(port),
	};
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (s < 0)
		die("socket");
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 16))
		die("bind/listen");
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		int c = accept(s, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!fork()) {
			close(s);
			serve(c);
			_exit(0);
		}
		close(c);
	}
}

static int dial(const char *host, int port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET, .sin_port = htons(port),
	};
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (s < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		die("socket/address");
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect");
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return s;
}

/* One stream of @size bytes; the pattern is made and checked untimed. */
static int stream(const char *host, int port, __u64 size, int to_server)
{
	struct req rq = { .op = to_server ? 'S' : 'R', .size = size };
	unsigned char *buf = malloc(size ? size : 1);
	int s = dial(host, port);
	__u64 t;
	char ok;

	if (!buf)
		die("malloc");
	rq.seed = (__u32)now_ns();
	if (to_server)
		fill(buf, size, 0, rq.seed);
	else
		memset(buf, 0, size);
	write_all(s, &rq, sizeof(rq));
	read_all(s, &ok, 1);
	t = now_ns();
	if (to_server) {
		write_all(s, buf, size);
		read_all(s, &ok, 1);
		t = now_ns() - t;
		read_all(s, &ok, 1);
		if (ok != '1') {
			fprintf(stderr, "virgo_netbench: server: bad byte\n");
			return 1;
		}
	} else {
		read_all(s, buf, size);
		t = now_ns() - t;
		if (check(buf, size, 0, rq.seed)) {
			fprintf(stderr, "virgo_netbench: bad byte\n");
			return 1;
		}
	}
	printf("%llu\n", (unsigned long long)t);
	free(buf);
	close(s);
	return 0;
}

static int rtt(int n, int port, int nh, char **hosts)
{
	struct req rq = { .op = 'P' };
	char msg[MSG_LEN] = "virgo-netbench";
	int s[MAX_HOSTS], i, h;

	if (nh > MAX_HOSTS)
		nh = MAX_HOSTS;
	for (h = 0; h < nh; h++) {
		s[h] = dial(hosts[h], port);
		write_all(s[h], &rq, sizeof(rq));
	}
	for (i = 0; i < n; i++) {
		__u64 t0 = now_ns();

		for (h = 0; h < nh; h++)
			write_all(s[h], msg, sizeof(msg));
		for (h = 0; h < nh; h++)
			read_all(s[h], msg, sizeof(msg));
		printf("%s%llu", i ? " " : "",
		       (unsigned long long)(now_ns() - t0));
	}
	printf("\n");
	return 0;
}

/* pwrite()/pread() of @size bytes in calls of at most @step bytes. */
static int dev_io(int fd, unsigned char *buf, __u64 size, __u64 addr,
		  __u64 step, int write)
{
	__u64 done, n;

	for (done = 0; done < size; done += n) {
		n = size - done < step ? size - done : step;
		if ((write ? pwrite(fd, buf + done, n, addr + done) :
		     pread(fd, buf + done, n, addr + done)) != (ssize_t)n)
			return -1;
	}
	return 0;
}

static int dev_rw(__u64 size, __u64 step)
{
	struct virgo_ioc_malloc m = { .size = size };
	struct virgo_ioc_free f;
	unsigned char *a = malloc(size), *b = malloc(size);
	__u64 t[3];
	int fd = open("/dev/virgo", O_RDWR);

	if (fd < 0 || !a || !b)
		die("open /dev/virgo / malloc");
	if (ioctl(fd, VIRGO_IOC_MALLOC, &m))
		die("VIRGO_IOC_MALLOC");
	fill(a, size, 0, (__u32)now_ns());
	t[0] = now_ns();
	if (dev_io(fd, a, size, m.addr, step, 1))
		die("pwrite (cold)");
	t[0] = now_ns() - t[0];
	fill(a, size, 0, (__u32)now_ns() ^ 0x5a5a5a5a);
	t[1] = now_ns();
	if (dev_io(fd, a, size, m.addr, step, 1))
		die("pwrite");
	t[1] = now_ns() - t[1];
	memset(b, 0, size);
	t[2] = now_ns();
	if (dev_io(fd, b, size, m.addr, step, 0))
		die("pread");
	t[2] = now_ns() - t[2];
	if (memcmp(a, b, size)) {
		fprintf(stderr, "virgo_netbench: /dev/virgo: other bytes\n");
		return 1;
	}
	f.addr = m.addr;
	if (ioctl(fd, VIRGO_IOC_FREE, &f))
		die("VIRGO_IOC_FREE");
	printf("%llu %llu %llu\n", (unsigned long long)t[0],
	       (unsigned long long)t[1], (unsigned long long)t[2]);
	close(fd);
	return 0;
}

static int nvme(const char *dev, __u64 size)
{
	unsigned char *a, *b;
	__u64 tw, tr;
	int fd = open(dev, O_RDWR | O_DIRECT);

	if (fd < 0)
		die(dev);
	if (posix_memalign((void **)&a, 4096, size) ||
	    posix_memalign((void **)&b, 4096, size))
		die("posix_memalign");
	fill(a, size, 0, (__u32)now_ns());
	memset(b, 0, size);
	tw = now_ns();
	if (pwrite(fd, a, size, 0) != (ssize_t)size)
		die("pwrite");
	tw = now_ns() - tw;
	tr = now_ns();
	if (pread(fd, b, size, 0) != (ssize_t)size)
		die("pread");
	tr = now_ns() - tr;
	if (memcmp(a, b, size)) {
		fprintf(stderr, "virgo_netbench: %s: other bytes\n", dev);
		return 1;
	}
	printf("%llu %llu\n", (unsigned long long)tw, (unsigned long long)tr);
	close(fd);
	return 0;
}

static void bad_usage(void)
{
	fprintf(stderr, "%s",
		"usage: virgo_netbench server PORT | send|recv HOST PORT SIZE |\n"
		"       rtt N PORT HOST... | dev SIZE [STEP] | nvme DEV SIZE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		bad_usage();
	if (!strcmp(argv[1], "server") && argc == 3)
		return server(atoi(argv[2]));
	if ((!strcmp(argv[1], "send") || !strcmp(argv[1], "recv")) &&
	    argc == 5)
		return stream(argv[2], atoi(argv[3]),
			      strtoull(argv[4], NULL, 0),
			      !strcmp(argv[1], "send"));
	if (!strcmp(argv[1], "rtt") && argc >= 5)
		return rtt(atoi(argv[2]), atoi(argv[3]), argc - 4, argv + 4);
	if (!strcmp(argv[1], "dev") && (argc == 3 || argc == 4))
		return dev_rw(strtoull(argv[2], NULL, 0),
			      argc == 4 ? strtoull(argv[3], NULL, 0) : ~0ULL);
	if (!strcmp(argv[1], "nvme") && argc == 4)
		return nvme(argv[2], strtoull(argv[3], NULL, 0));
	bad_usage();
	return 2;
}
