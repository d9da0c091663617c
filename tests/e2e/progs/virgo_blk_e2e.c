// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_blk_e2e: guest-side checks of the e2e scenario blk.
 *
 *   virgo_blk_e2e rw DEV SEED N    N random O_DIRECT writes (512 B ..
 *                                  1 MiB, 512-aligned) at random offsets,
 *                                  each followed by a read of a random
 *                                  range compared with a shadow copy; at
 *                                  the end the whole device read back and
 *                                  compared (never-written bytes: zeroes)
 *   virgo_blk_e2e zeroes DEV OFF LEN   BLKZEROOUT of a written range:
 *                                  reads back as zeroes, the bytes around
 *                                  it unchanged
 *   virgo_blk_e2e fill DEV SEED    write the whole device with a pattern
 *                                  of SEED (1 MiB O_DIRECT writes)
 *   virgo_blk_e2e verify DEV SEED OFF LEN   read the whole device back:
 *                                  [OFF, OFF + LEN) zeroes, every other
 *                                  byte the pattern of fill DEV SEED
 *   virgo_blk_e2e readall DEV      O_DIRECT read of the whole device in
 *                                  1 MiB pieces; prints the first errno
 *                                  and the seconds it took; exit 0 only
 *                                  if everything read
 *   virgo_blk_e2e pressure MIB SEED    touch MIB MiB of anonymous memory,
 *                                  a pattern per page, print the swap in
 *                                  use (/proc/swaps), then verify every
 *                                  page twice; exit 0 only if all match
 *   virgo_blk_e2e hold DEV SECS    keep DEV open for SECS seconds
 *
 * Exit status: 0 success, 1 a check failed, 2 usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

typedef unsigned long long u64;
typedef unsigned char u8;

#define SECT		512u
#define MAX_IO		(1024u * 1024)
#define PAGE		4096u

static u64 rng_state;

static u64 rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_dev(const char *dev, u64 *size)
{
	int fd = open(dev, O_RDWR | O_DIRECT);

	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", dev, strerror(errno));
		return -1;
	}
	if (ioctl(fd, BLKGETSIZE64, size)) {
		fprintf(stderr, "BLKGETSIZE64: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void *xalign(size_t len)
{
	void *p;

	if (posix_memalign(&p, PAGE, len)) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

static int pio(int fd, void *buf, size_t len, u64 off, int write)
{
	ssize_t n;

	n = write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
	if (n != (ssize_t)len) {
		fprintf(stderr, "%s %zu at %llu: %s\n",
			write ? "write" : "read", len, off,
			n < 0 ? strerror(errno) : "short");
		return -1;
	}
	return 0;
}

static int compare(const u8 *got, const u8 *want, size_t len,
		   u64 off)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (got[i] != want[i]) {
			fprintf(stderr, "byte %llu: read %02x, wrote %02x\n",
				(off + i), got[i], want[i]);
			return -1;
		}
	return 0;
}

/* A random 512-aligned range of 512 B .. 1 MiB inside @size. */
static void range(u64 size, u64 *off, size_t *len)
{
	u64 sects = size / SECT;
	size_t n = 1 + rnd() % (MAX_IO / SECT);

	if (n > sects)
		n = sects;
	*off = (rnd() % (sects - n + 1)) * SECT;
	*len = n * SECT;
}

static int cmd_rw(const char *dev, u64 seed, unsigned int nops)
{
	u8 *shadow, *buf;
	u64 size, off;
	unsigned int i;
	double t0 = now();
	size_t len, j;
	int fd;

	rng_state = seed | 1;
	fd = open_dev(dev, &size);
	if (fd < 0)
		return 2;
	shadow = calloc(1, size);
	buf = xalign(size < MAX_IO ? MAX_IO : size);
	if (!shadow)
		return 2;
	for (i = 0; i < nops; i++) {
		range(size, &off, &len);
		for (j = 0; j < len; j++) {
			buf[j] = rnd() >> 56;
			shadow[off + j] = buf[j];
		}
		if (pio(fd, buf, len, off, 1))
			return 1;
		range(size, &off, &len);
		if (pio(fd, buf, len, off, 0) ||
		    compare(buf, shadow + off, len, off))
			return 1;
	}
	for (off = 0; off < size; off += MAX_IO) {
		len = size - off < MAX_IO ? size - off : MAX_IO;
		if (pio(fd, buf, len, off, 0) ||
		    compare(buf, shadow + off, len, off))
			return 1;
	}
	printf("rw: %u writes and reads, %llu bytes read back, %s (%.1f s)\n",
	       nops, size, "all match", now() - t0);
	close(fd);
	return 0;
}

static int cmd_zeroes(const char *dev, u64 off, u64 len)
{
	u64 size, r[2] = { off, len };
	u64 from = off >= PAGE ? off - PAGE : 0;
	u64 span = len + 2 * PAGE;
	u8 *buf, *want;
	u64 i;
	int fd;

	fd = open_dev(dev, &size);
	if (fd < 0)
		return 2;
	if (from + span > size)
		span = size - from;
	buf = xalign(span);
	want = xalign(span);
	for (i = 0; i < span; i++)
		want[i] = 0xa5 ^ (u8)i;
	if (pio(fd, want, span, from, 1))
		return 1;
	if (ioctl(fd, BLKZEROOUT, r)) {
		fprintf(stderr, "BLKZEROOUT: %s\n", strerror(errno));
		return 1;
	}
	memset(want + (off - from), 0, len);
	if (pio(fd, buf, span, from, 0) || compare(buf, want, span, from))
		return 1;
	printf("zeroes: %llu bytes at %llu read back as zeroes, %s\n",
	       len, off, "neighbours intact");
	close(fd);
	return 0;
}

/* The pattern of fill: 8 bytes of a hash of @seed and the offset. */
static void fill_pattern(u8 *buf, size_t len, u64 off, u64 seed)
{
	size_t i;

	for (i = 0; i < len; i += 8) {
		u64 z = seed + (off + i) / 8 * 0x9e3779b97f4a7c15ULL;

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		memcpy(buf + i, &z, len - i < 8 ? len - i : 8);
	}
}

static int cmd_fill(const char *dev, u64 seed)
{
	u64 size, off;
	size_t len;
	u8 *buf;
	int fd;

	fd = open_dev(dev, &size);
	if (fd < 0)
		return 2;
	buf = xalign(MAX_IO);
	for (off = 0; off < size; off += len) {
		len = size - off < MAX_IO ? size - off : MAX_IO;
		fill_pattern(buf, len, off, seed);
		if (pio(fd, buf, len, off, 1))
			return 1;
	}
	printf("fill: %llu bytes written\n", size);
	close(fd);
	return 0;
}

static int cmd_verify(const char *dev, u64 seed, u64 zoff, u64 zlen)
{
	u8 *buf, *want;
	u64 size, off, i;
	size_t len;
	int fd;

	fd = open_dev(dev, &size);
	if (fd < 0)
		return 2;
	buf = xalign(MAX_IO);
	want = xalign(MAX_IO);
	for (off = 0; off < size; off += len) {
		len = size - off < MAX_IO ? size - off : MAX_IO;
		fill_pattern(want, len, off, seed);
		for (i = off; i < off + len; i++)
			if (i >= zoff && i < zoff + zlen)
				want[i - off] = 0;
		if (pio(fd, buf, len, off, 0) || compare(buf, want, len, off))
			return 1;
	}
	printf("verify: %llu bytes, %llu zero at %llu, all match\n", size,
	       zlen, zoff);
	close(fd);
	return 0;
}

static int cmd_readall(const char *dev)
{
	u64 size, off;
	double t0 = now();
	u8 *buf;
	int fd, err = 0;

	fd = open(dev, O_RDONLY | O_DIRECT);
	if (fd < 0 || ioctl(fd, BLKGETSIZE64, &size)) {
		fprintf(stderr, "open %s: %s\n", dev, strerror(errno));
		return 2;
	}
	buf = xalign(MAX_IO);
	for (off = 0; off < size; off += MAX_IO) {
		size_t len = size - off < MAX_IO ? size - off : MAX_IO;
		ssize_t n = pread(fd, buf, len, off);

		if (n != (ssize_t)len) {
			err = n < 0 ? errno : EIO;
			break;
		}
	}
	printf("readall: %s at %llu after %.1f s\n",
	       err ? strerror(err) : "ok", off,
	       now() - t0);
	close(fd);
	return err ? 1 : 0;
}

static long swap_used_kb(void)
{
	FILE *f = fopen("/proc/swaps", "r");
	char line[256];
	long used = 0, u;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %ld", &u) == 1)
			used += u;
	fclose(f);
	return used;
}

/* What word @j of page @i holds. */
static u64 pattern(u64 seed, size_t i, size_t j)
{
	return seed ^ (i * 4099 + j) * 0x9e3779b97f4a7c15ULL;
}

static int cmd_pressure(u64 mib, u64 seed)
{
	size_t pages = mib * (1u << 20) / PAGE, i, bad = 0;
	double t0 = now();
	u64 *mem;
	int pass;

	mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		fprintf(stderr, "mmap: %s\n", strerror(errno));
		return 2;
	}
	for (i = 0; i < pages; i++) {
		u64 *p = mem + i * (PAGE / 8);
		size_t j;

		for (j = 0; j < PAGE / 8; j++)
			p[j] = pattern(seed, i, j);
	}
	printf("pressure: %llu MiB written in %.1f s, swap in use %ld kB\n",
	       mib, now() - t0, swap_used_kb());
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < pages; i++) {
			u64 *p = mem + i * (PAGE / 8);
			size_t j;

			for (j = 0; j < PAGE / 8; j++)
				if (p[j] != pattern(seed, i, j))
					break;
			if (j < PAGE / 8 && !bad++)
				fprintf(stderr, "page %zu word %zu wrong\n",
					i, j);
		}
		printf("pressure: pass %d verified %zu pages, %zu wrong ",
		       pass + 1, pages, bad);
		printf("(%.1f s), swap in use %ld kB\n", now() - t0,
		       swap_used_kb());
	}
	return bad ? 1 : 0;
}

static int cmd_hold(const char *dev, unsigned int secs)
{
	int fd = open(dev, O_RDONLY);

	if (fd < 0) {
		fprintf(stderr, "open %s: %s\n", dev, strerror(errno));
		return 2;
	}
	sleep(secs);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	/* Progress lines reach a file at once (the scenario watches it). */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "rw"))
		return cmd_rw(argv[2], strtoull(argv[3], NULL, 0),
			      strtoul(argv[4], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "zeroes"))
		return cmd_zeroes(argv[2], strtoull(argv[3], NULL, 0),
				  strtoull(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "fill"))
		return cmd_fill(argv[2], strtoull(argv[3], NULL, 0));
	if (argc == 6 && !strcmp(argv[1], "verify"))
		return cmd_verify(argv[2], strtoull(argv[3], NULL, 0),
				  strtoull(argv[4], NULL, 0),
				  strtoull(argv[5], NULL, 0));
	if (argc == 3 && !strcmp(argv[1], "readall"))
		return cmd_readall(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "pressure"))
		return cmd_pressure(strtoull(argv[2], NULL, 0),
				    strtoull(argv[3], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "hold"))
		return cmd_hold(argv[2], strtoul(argv[3], NULL, 0));
	fprintf(stderr, "usage: see the top of virgo_blk_e2e.c\n");
	return 2;
}
