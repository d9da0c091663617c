// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_blkbench: the block-device side of `make bench-blk`, linked static
 * into the cluster nodes' initramfs (a small fio: Debian's fio links
 * librbd, librados, libgfapi and more, too much for the initramfs).
 * O_DIRECT, Linux AIO (io_submit/io_getevents, raw syscalls), QD requests
 * in flight.  Prints one line of integers (times in ns) on stdout and
 * exits 0, or says why not on stderr and exits 1 (2: usage); a byte read
 * back that is not the one written is an error (exit 1).
 *
 *   seq DEV SIZE BS QD       write [0, SIZE) of DEV in BS-byte requests,
 *                            then read it back into a zeroed buffer, then
 *                            compare: "write_ns read_ns"
 *   rand DEV SPAN N BS QD SEED
 *                            N writes of BS bytes at distinct random
 *                            BS-aligned offsets of [0, SPAN), then N reads
 *                            of the same blocks in another random order,
 *                            then compare: "write_ns w_p50 w_p99 read_ns
 *                            r_p50 r_p99" (per-request latency from
 *                            submission to completion, nearest rank)
 *
 * The data is made before the clock starts and checked after it stops.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/aio_abi.h>

#include "bench_pattern.h"

#define MAX_QD	256

static void die(const char *what)
{
	fprintf(stderr, "virgo_blkbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* One pass: N requests of @bs bytes, each with its offset and buffer. */
struct pass {
	int fd;
	int write;
	__u64 n;
	__u64 bs;
	const __u64 *off;		/* byte offset of request i */
	unsigned char *buf;		/* request i at buf + i * bs */
	__u64 *lat;			/* ns of request i, or NULL */
};

/*
 * Run @p with @qd requests in flight; returns its wall time in ns.  A
 * request that completes short or with an error fails the program.
 */
static __u64 run_pass(const struct pass *p, unsigned int qd)
{
	struct iocb cb[MAX_QD], *cbp[MAX_QD];
	struct io_event ev[MAX_QD];
	__u64 t_sub[MAX_QD], next = 0, done = 0, t0;
	unsigned int free_slot[MAX_QD], nfree = qd, i;
	aio_context_t ctx = 0;

	if (syscall(SYS_io_setup, qd, &ctx))
		die("io_setup");
	for (i = 0; i < qd; i++)
		free_slot[i] = i;
	t0 = now_ns();
	while (done < p->n) {
		unsigned int nsub = 0;
		long got, k;

		while (nfree && next < p->n) {
			unsigned int s = free_slot[--nfree];

			memset(&cb[s], 0, sizeof(cb[s]));
			cb[s].aio_fildes = p->fd;
			cb[s].aio_lio_opcode = p->write ? IOCB_CMD_PWRITE :
							  IOCB_CMD_PREAD;
			cb[s].aio_buf = (__u64)(unsigned long)(p->buf +
							      next * p->bs);
			cb[s].aio_nbytes = p->bs;
			cb[s].aio_offset = p->off[next];
			cb[s].aio_data = next;
			cbp[nsub++] = &cb[s];
			next++;
		}
		if (nsub) {
			__u64 t = now_ns();
			long r = syscall(SYS_io_submit, ctx, nsub, cbp);

			if (r != (long)nsub)
				die(r < 0 ? "io_submit" : "io_submit: short");
			for (i = 0; i < nsub; i++)
				t_sub[cbp[i] - cb] = t;
		}
		got = syscall(SYS_io_getevents, ctx, 1, MAX_QD, ev, NULL);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			die("io_getevents");
		}
		for (k = 0; k < got; k++) {
			unsigned long obj = ev[k].obj;
			unsigned int s = (struct iocb *)obj - cb;

			if (ev[k].res != (__s64)p->bs) {
				errno = ev[k].res < 0 ? -ev[k].res : EIO;
				die(p->write ? "write" : "read");
			}
			if (p->lat)
				p->lat[ev[k].data] = now_ns() - t_sub[s];
			free_slot[nfree++] = s;
			done++;
		}
	}
	t0 = now_ns() - t0;
	syscall(SYS_io_destroy, ctx);
	return t0;
}

static int cmp_u64(const void *a, const void *b)
{
	__u64 x = *(const __u64 *)a, y = *(const __u64 *)b;

	return x < y ? -1 : x > y;
}

/* The @p-th percentile of @n values (nearest rank); sorts @v. */
static __u64 pct(__u64 *v, __u64 n, unsigned int p)
{
	__u64 k = (p * n + 99) / 100;

	qsort(v, n, sizeof(*v), cmp_u64);
	return v[k ? k - 1 : 0];
}

static void *alloc_aligned(__u64 size)
{
	void *p;

	if (posix_memalign(&p, 4096, size ? size : 4096))
		die("posix_memalign");
	return p;
}

static int open_dev(const char *dev)
{
	int fd = open(dev, O_RDWR | O_DIRECT);

	if (fd < 0)
		die(dev);
	return fd;
}

static int seq(const char *dev, __u64 size, __u64 bs, unsigned int qd)
{
	__u64 n = size / bs, i, *off = malloc(n * sizeof(*off)), tw, tr;
	unsigned char *a = alloc_aligned(size), *b = alloc_aligned(size);
	__u32 seed = (__u32)now_ns();
	struct pass p = { .fd = open_dev(dev), .n = n, .bs = bs, .off = off };

	if (!off)
		die("malloc");
	for (i = 0; i < n; i++)
		off[i] = i * bs;
	fill(a, size, 0, seed);
	memset(b, 0, size);
	p.write = 1;
	p.buf = a;
	tw = run_pass(&p, qd);
	p.write = 0;
	p.buf = b;
	tr = run_pass(&p, qd);
	if (memcmp(a, b, size)) {
		fprintf(stderr, "virgo_blkbench: %s: other bytes read back\n",
			dev);
		return 1;
	}
	printf("%llu %llu\n", (unsigned long long)tw, (unsigned long long)tr);
	close(p.fd);
	return 0;
}

static __u64 xorshift(__u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The first @n of a random permutation of the @nblk blocks, as offsets. */
static void pick_blocks(__u64 *off, __u64 n, __u64 nblk, __u64 bs,
			__u64 *rng)
{
	__u64 *perm = malloc(nblk * sizeof(*perm)), i;

	if (!perm)
		die("malloc");
	for (i = 0; i < nblk; i++)
		perm[i] = i;
	for (i = 0; i < n; i++) {
		__u64 j = i + xorshift(rng) % (nblk - i), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
		off[i] = perm[i] * bs;
	}
	free(perm);
}

static void shuffle(__u64 *v, __u64 n, __u64 *rng)
{
	__u64 i;

	for (i = n; i > 1; i--) {
		__u64 j = xorshift(rng) % i, t = v[i - 1];

		v[i - 1] = v[j];
		v[j] = t;
	}
}

static int rnd(const char *dev, __u64 span, __u64 n, __u64 bs,
	       unsigned int qd, __u64 rng)
{
	__u64 *off = malloc(n * sizeof(*off)), *lat = malloc(n * sizeof(*lat));
	unsigned char *a = alloc_aligned(n * bs), *b = alloc_aligned(n * bs);
	__u32 seed = (__u32)now_ns();
	struct pass p = { .fd = open_dev(dev), .n = n, .bs = bs, .off = off,
			  .lat = lat };
	__u64 t[6], i;

	if (!off || !lat)
		die("malloc");
	if (n > span / bs) {
		fprintf(stderr, "virgo_blkbench: %llu blocks do not fit\n",
			(unsigned long long)n);
		return 2;
	}
	rng = rng ? rng : 1;
	pick_blocks(off, n, span / bs, bs, &rng);
	for (i = 0; i < n; i++)
		fill(a + i * bs, bs, off[i], seed);
	p.write = 1;
	p.buf = a;
	t[0] = run_pass(&p, qd);
	t[1] = pct(lat, n, 50);
	t[2] = pct(lat, n, 99);
	/* Read the same blocks in another order; each lands at its index. */
	shuffle(off, n, &rng);
	memset(b, 0, n * bs);
	p.write = 0;
	p.buf = b;
	t[3] = run_pass(&p, qd);
	t[4] = pct(lat, n, 50);
	t[5] = pct(lat, n, 99);
	for (i = 0; i < n; i++) {
		if (check(b + i * bs, bs, off[i], seed)) {
			fprintf(stderr,
				"virgo_blkbench: %s: other bytes at %llu\n",
				dev, (unsigned long long)off[i]);
			return 1;
		}
	}
	for (i = 0; i < 6; i++)
		printf("%s%llu", i ? " " : "", (unsigned long long)t[i]);
	printf("\n");
	close(p.fd);
	return 0;
}

static void bad_usage(void)
{
	fprintf(stderr, "%s",
		"usage: virgo_blkbench seq DEV SIZE BS QD |\n"
		"       virgo_blkbench rand DEV SPAN N BS QD SEED\n");
	exit(2);
}

static __u64 num(const char *s)
{
	char *end;
	__u64 v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end)
		bad_usage();
	return v;
}

int main(int argc, char **argv)
{
	__u64 size, bs, qd;

	if (argc == 6 && !strcmp(argv[1], "seq")) {
		size = num(argv[3]);
		bs = num(argv[4]);
		qd = num(argv[5]);
		if (!bs || bs % 512 || size % bs || !size || !qd ||
		    qd > MAX_QD)
			bad_usage();
		return seq(argv[2], size, bs, qd);
	}
	if (argc == 8 && !strcmp(argv[1], "rand")) {
		size = num(argv[3]);
		bs = num(argv[5]);
		qd = num(argv[6]);
		if (!bs || bs % 512 || !num(argv[4]) || !qd || qd > MAX_QD)
			bad_usage();
		return rnd(argv[2], size, num(argv[4]), bs, qd, num(argv[7]));
	}
	bad_usage();
	return 2;
}
