// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_e2e: the user-space half of the qemu cluster scenarios
 * (tests/e2e/scenarios), run on the client node against /dev/virgo.
 * Built static by tests/e2e/virgo.sh and shipped in the initramfs.
 *
 *   virgo_e2e integrity [-s SEED] [-S SIZE] [-n OPS]
 *	random writes and reads at random offsets and lengths (chunk
 *	boundaries on purpose) over a few allocations, checked against a
 *	shadow copy after every write, then every byte read back.
 *   virgo_e2e threads [-s SEED] [-t THREADS] [-n ITERS] [-m MAX]
 *	THREADS threads (half with a descriptor of their own, half sharing
 *	one) each allocate (1..MAX bytes), write, read back, rewrite part,
 *	read back and free ITERS times, and keep one long-lived allocation
 *	(up to 2 MAX) they write and check all along.
 *   virgo_e2e load [-s SEED] [-t THREADS] [-d SECS] [-x STOPFILE]
 *		    [-r READYFILE] [-e]
 *	malloc/write/read/verify/free in a loop until SECS pass or STOPFILE
 *	exists; with -e, I/O errors (a server going away) are counted, not
 *	fatal.  Wrong data is always fatal.
 *   virgo_e2e shell IN OUT
 *	reads "SEQ COMMAND ARGS" lines from the FIFO IN (created if
 *	missing), runs them on one open /dev/virgo, and appends
 *	"#begin SEQ", the output and "#end SEQ STATUS" to OUT: a scenario
 *	holds allocations across many steps with it.  Commands:
 *	  malloc NAME SIZE	   allocate (SIZE may end in K, M or G)
 *	  fill NAME SEED	   write the pattern SEED over all of it
 *	  set1 NAME SEED	   the same in one VIRGO_IOC_SET call, timed
 *	  mtime N SIZE [GAP_MS]	   N mallocs of SIZE (each freed), GAP_MS
 *				   apart: every time, median and maximum
 *				   in ms
 *	  touch NAME SEED	   write it only around every chunk boundary
 *				   (every chunk gets written to)
 *	  check NAME [SAMPLES]	   read all of it (or SAMPLES random ranges
 *				   plus every chunk boundary) and compare;
 *				   after touch: every boundary, and SAMPLES
 *				   places never written must read zeroes
 *	  where NAME		   chunks and bytes per peer (debugfs table)
 *	  avoid NAME PEER	   status 1 if a chunk of NAME is on PEER
 *	  probe NAME PEER N fail|any MS
 *				   read up to N chunks of NAME that live on
 *				   PEER, one by one: each must fail with EIO
 *				   or ETIMEDOUT ("any": or return the right
 *				   data), within MS milliseconds
 *	  others NAME PEER	   read and check every chunk not on PEER
 *	  free NAME		   free it
 *	  rename NAME NEW	   call NAME NEW from now on
 *	  forget NAME		   drop NAME without freeing (close frees)
 *	  stat			   VIRGO_IOC_STAT
 *	  quit
 *
 * Every random choice comes from the seed printed at the start, so a
 * failure can be replayed with -s.  Exit (and command) status: 0 pass,
 * an errno when a call failed, 250 wrong data, 251 an expectation
 * failed, 252 too slow, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>
#include <linux/virgo.h>

#define E2E_MISMATCH	250
#define E2E_EXPECT	251
#define E2E_SLOW	252

#define E2E_NOMEM	ENOMEM
#define E2E_AGAIN	EAGAIN

#define MIB		(1024ULL * 1024ULL)
#define IO_STEP		(4 * MIB)

static const char *dev_path = "/dev/virgo";
static const char *table_path = "/sys/kernel/debug/virgo/table";

/* fprintf(), named like a log function for checkpatch's sake. */
static void file_info(FILE *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
}

#define e2e_info(...)	file_info(stdout, __VA_ARGS__)

/* ---- helpers -------------------------------------------------------- */

static __u64 mix64(__u64 z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* splitmix64: small, fast, and the same everywhere. */
static __u64 rnd(__u64 *state)
{
	*state += 0x9e3779b97f4a7c15ULL;
	return mix64(*state);
}

/* Uniform in [0, n), n > 0. */
static __u64 rnd_below(__u64 *state, __u64 n)
{
	return rnd(state) % n;
}

static void rnd_fill(__u64 *state, unsigned char *p, size_t n)
{
	while (n >= 8) {
		__u64 w = rnd(state);

		memcpy(p, &w, 8);
		p += 8;
		n -= 8;
	}
	if (n) {
		__u64 w = rnd(state);

		memcpy(p, &w, n);
	}
}

/*
 * The pattern @seed: byte @off of an allocation is a function of @seed and
 * @off only, so any range can be generated (and checked) on its own.
 */
static void pattern(unsigned char *buf, __u64 off, size_t len, __u64 seed)
{
	__u64 key = mix64(seed + 1);

	while (len) {
		__u64 w = mix64(key ^ ((off >> 3) * 0x2545f4914f6cdd1dULL));
		unsigned int b = off & 7;
		size_t n = 8 - b < len ? 8 - b : len;
		size_t i;

		if (!b && n == 8) {
			memcpy(buf, &w, 8);
		} else {
			for (i = 0; i < n; i++)
				buf[i] = w >> (8 * (b + i));
		}
		buf += n;
		off += n;
		len -= n;
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double mb_per_s(__u64 bytes, double ms)
{
	return ms > 0 ? bytes / MIB / (ms / 1e3) : 0;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "out of memory (%zu bytes)\n", n);
		exit(ENOMEM);
	}
	return p;
}

/* "123", "64K", "256M", "1G"; 0 on error. */
static __u64 parse_size(const char *s)
{
	char *end;
	__u64 v = strtoull(s, &end, 0);

	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	return *end ? 0 : v;
}

static __u64 default_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return mix64(ts.tv_sec ^ ((__u64)ts.tv_nsec << 20) ^ getpid());
}

/* Index of the first byte where @a and @b differ, or -1. */
static long long first_diff(const unsigned char *a, const unsigned char *b,
			    size_t n)
{
	size_t i;

	if (!memcmp(a, b, n))
		return -1;
	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return i;
	return -1;
}

/* ---- /dev/virgo ----------------------------------------------------- */

static int dev_open(void)
{
	int fd = open(dev_path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "cannot open %s: %s\n", dev_path,
			strerror(errno));
		exit(errno);
	}
	return fd;
}

/* The ioctls and pread/pwrite: 0 or a positive errno. */
static int v_malloc(int fd, __u64 size, __u64 *addr)
{
	struct virgo_ioc_malloc m = { .size = size };

	if (ioctl(fd, VIRGO_IOC_MALLOC, &m))
		return errno;
	*addr = m.addr;
	return 0;
}

static int v_free(int fd, __u64 addr)
{
	struct virgo_ioc_free f = { .addr = addr };

	return ioctl(fd, VIRGO_IOC_FREE, &f) ? errno : 0;
}

static int v_rw(int fd, bool write, bool use_ioctl, __u64 addr, void *buf,
		size_t len)
{
	struct virgo_ioc_rw rw = {
		.addr = addr, .buf = (unsigned long)buf, .len = len,
	};
	ssize_t n;

	if (use_ioctl)
		return ioctl(fd, write ? VIRGO_IOC_SET : VIRGO_IOC_GET, &rw) ?
			errno : 0;
	if (write)
		n = pwrite(fd, buf, len, addr);
	else
		n = pread(fd, buf, len, addr);
	if (n < 0)
		return errno;
	return (size_t)n == len ? 0 : EIO;
}

static int v_chunk_size(int fd, __u32 *chunk)
{
	struct virgo_ioc_stat st;

	if (ioctl(fd, VIRGO_IOC_STAT, &st))
		return errno;
	*chunk = st.chunk_size;
	return 0;
}

/* Write the pattern @seed over [off, off + len) of @addr, in steps. */
static int fill_range(int fd, __u64 addr, __u64 off, __u64 len, __u64 seed,
		      unsigned char *buf)
{
	while (len) {
		size_t n = len < IO_STEP ? len : IO_STEP;
		int ret;

		pattern(buf, off, n, seed);
		ret = v_rw(fd, true, false, addr + off, buf, n);
		if (ret)
			return ret;
		off += n;
		len -= n;
	}
	return 0;
}

/* Read [off, off + len) of @addr and compare with the pattern @seed. */
static int check_range(int fd, __u64 addr, __u64 off, __u64 len, __u64 seed,
		       unsigned char *buf, unsigned char *want, FILE *log)
{
	while (len) {
		size_t n = len < IO_STEP ? len : IO_STEP;
		long long d;
		int ret;

		ret = v_rw(fd, false, false, addr + off, buf, n);
		if (ret)
			return ret;
		pattern(want, off, n, seed);
		d = first_diff(want, buf, n);
		if (d >= 0) {
			file_info(log,
				  "WRONG DATA at offset %llu: got 0x%02x, want 0x%02x (pattern %llu)\n",
				  (unsigned long long)(off + d), buf[d],
				  want[d], (unsigned long long)seed);
			return E2E_MISMATCH;
		}
		off += n;
		len -= n;
	}
	return 0;
}

/* ---- the translation table (debugfs) -------------------------------- */

struct chunk_loc {
	__u64 off;
	__u32 len;
	char peer[32];
};

/*
 * The chunks of the allocation at @addr, from debugfs virgo/table:
 *   0x<va> size <n> owner <o> chunks <n>
 *     chunk <i> offset <o> len <l> peer <id> <a.b.c.d:port> epoch <e> ...
 * Return: the number of chunks (*@out to free()), or -1.
 */
static long table_chunks(__u64 addr, struct chunk_loc **out)
{
	struct chunk_loc *c = NULL;
	char *line = NULL, head[40];
	size_t cap = 0;
	long n = -1, have = 0;
	bool in = false;
	FILE *f;

	f = fopen(table_path, "r");
	if (!f) {
		fprintf(stderr, "%s: %s\n", table_path, strerror(errno));
		return -1;
	}
	snprintf(head, sizeof(head), "0x%llx size ", (unsigned long long)addr);
	while (getline(&line, &cap, f) > 0) {
		unsigned long long off, size;
		unsigned int idx, len, id, nr;
		char peer[32];

		if (!in) {
			if (strncmp(line, head, strlen(head)))
				continue;
			if (sscanf(line + strlen(head),
				   "%llu owner %*s chunks %u", &size, &nr) != 2)
				break;
			c = xmalloc(sizeof(*c) * (nr ? nr : 1));
			n = nr;
			in = true;
			continue;
		}
		if (sscanf(line,
			   " chunk %u offset %llu len %u peer %u %31s epoch",
			   &idx, &off, &len, &id, peer) != 5)
			break;
		if (idx >= n)
			break;
		c[idx].off = off;
		c[idx].len = len;
		snprintf(c[idx].peer, sizeof(c[idx].peer), "%s", peer);
		have++;
	}
	free(line);
	fclose(f);
	if (n >= 0 && have != n) {
		fprintf(stderr, "table: %ld of %ld chunk lines for 0x%llx\n",
			have, n, (unsigned long long)addr);
		free(c);
		return -1;
	}
	if (n < 0)
		fprintf(stderr, "table: no allocation 0x%llx\n",
			(unsigned long long)addr);
	*out = c;
	return n;
}

/* ---- integrity ------------------------------------------------------ */

struct ialloc {
	__u64 addr;
	__u64 size;
	unsigned char *shadow;
};

static int integrity_fail(__u64 seed, unsigned int op, const char *what,
			  __u64 off, __u64 len, int ret)
{
	e2e_info("FAIL op %u: %s at offset %llu, %llu bytes: %s\n", op, what,
		 (unsigned long long)off, (unsigned long long)len,
		 ret == E2E_MISMATCH ? "wrong data" : strerror(ret));
	e2e_info("reproduce: virgo_e2e integrity -s %llu ...\n",
		 (unsigned long long)seed);
	return ret;
}

/* Read [off, off + len) and compare it with the shadow. */
static int integrity_read(int fd, struct ialloc *a, __u64 off, __u64 len,
			  bool use_ioctl, unsigned char *buf)
{
	long long d;
	int ret;

	ret = v_rw(fd, false, use_ioctl, a->addr + off, buf, len);
	if (ret)
		return ret;
	d = first_diff(a->shadow + off, buf, len);
	if (d < 0)
		return 0;
	e2e_info("WRONG DATA at offset %llu: got 0x%02x, want 0x%02x\n",
		 (unsigned long long)(off + d), buf[d], a->shadow[off + d]);
	return E2E_MISMATCH;
}

/* A random length: mostly small, some across a chunk, a few of MiBs. */
static __u64 integrity_len(__u64 *st, __u64 max, __u32 chunk)
{
	__u64 r = rnd_below(st, 100), len;

	if (r < 45)
		len = 1 + rnd_below(st, 4096);
	else if (r < 85)
		len = 1 + rnd_below(st, 2ULL * chunk);
	else
		len = 1 + rnd_below(st, MIB + 2ULL * chunk);
	return len < max ? len : max;
}

/* An offset for @len bytes; often just before a chunk boundary. */
static __u64 integrity_off(__u64 *st, __u64 size, __u64 len, __u32 chunk)
{
	__u64 off;

	if (size > chunk && rnd_below(st, 100) < 30) {
		__u64 b = chunk * (1 + rnd_below(st, (size - 1) / chunk));
		__u64 back = rnd_below(st, len < 64 ? len + 1 : 64);

		off = b - (back < b ? back : b);
		if (off + len > size)
			off = size - len;
		return off;
	}
	return rnd_below(st, size - len + 1);
}

static int cmd_integrity(int argc, char **argv)
{
	__u64 seed = default_seed(), size = 24 * MIB + 4097, st, bytes_w = 0;
	__u64 bytes_r = 0;
	unsigned int ops = 400, op, i, nr = 4;
	struct ialloc a[4];
	unsigned char *buf;
	__u32 chunk = 0;
	double t0;
	int fd, c, ret;

	while ((c = getopt(argc, argv, "s:S:n:")) != -1) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'S':
			size = parse_size(optarg);
			break;
		case 'n':
			ops = strtoul(optarg, NULL, 0);
			break;
		default:
			return 2;
		}
	}
	if (!size)
		return 2;
	e2e_info("integrity: seed %llu size %llu ops %u\n",
		 (unsigned long long)seed, (unsigned long long)size, ops);
	e2e_info("reproduce: virgo_e2e integrity -s %llu -S %llu -n %u\n",
		 (unsigned long long)seed, (unsigned long long)size, ops);
	fflush(stdout);
	st = seed;
	fd = dev_open();
	ret = v_chunk_size(fd, &chunk);
	if (ret)
		return integrity_fail(seed, 0, "STAT", 0, 0, ret);

	/* Big and odd, exactly one chunk, a few chunks and odd, one byte. */
	a[0].size = size;
	a[1].size = chunk;
	a[2].size = 2ULL * chunk + 1 + rnd_below(&st, chunk);
	a[3].size = 1;
	buf = xmalloc(size > 4 * MIB ? size : 4 * MIB);
	t0 = now_ms();
	for (i = 0; i < nr; i++) {
		a[i].shadow = calloc(1, a[i].size);
		if (!a[i].shadow)
			return E2E_NOMEM;
		ret = v_malloc(fd, a[i].size, &a[i].addr);
		if (ret)
			return integrity_fail(seed, 0, "MALLOC", 0, a[i].size,
					      ret);
		/* Never written: reads as zeroes. */
		ret = integrity_read(fd, &a[i], 0, a[i].size, i & 1, buf);
		if (ret)
			return integrity_fail(seed, 0, "zeroes", 0,
					      a[i].size, ret);
		bytes_r += a[i].size;
	}

	for (op = 1; op <= ops; op++) {
		struct ialloc *x = &a[rnd_below(&st, 100) < 70 ? 0 :
				     1 + rnd_below(&st, nr - 1)];
		__u64 len = integrity_len(&st, x->size, chunk);
		__u64 off = integrity_off(&st, x->size, len, chunk);
		bool ioc = rnd(&st) & 1;

		rnd_fill(&st, x->shadow + off, len);
		ret = v_rw(fd, true, ioc, x->addr + off, x->shadow + off, len);
		if (ret)
			return integrity_fail(seed, op, ioc ? "SET" : "pwrite",
					      off, len, ret);
		bytes_w += len;
		/* The range just written, or any other. */
		if (rnd(&st) & 1) {
			len = integrity_len(&st, x->size, chunk);
			off = integrity_off(&st, x->size, len, chunk);
		}
		ioc = rnd(&st) & 1;
		ret = integrity_read(fd, x, off, len, ioc, buf);
		if (ret)
			return integrity_fail(seed, op, ioc ? "GET" : "pread",
					      off, len, ret);
		bytes_r += len;
	}

	for (i = 0; i < nr; i++) {
		ret = integrity_read(fd, &a[i], 0, a[i].size, false, buf);
		if (ret)
			return integrity_fail(seed, ops, "final read", 0,
					      a[i].size, ret);
		bytes_r += a[i].size;
		ret = v_free(fd, a[i].addr);
		if (ret)
			return integrity_fail(seed, ops, "FREE", 0, a[i].size,
					      ret);
		free(a[i].shadow);
	}
	close(fd);
	free(buf);
	e2e_info("integrity: PASS %u ops, %llu bytes written, %llu bytes read and compared, %.0f ms\n",
		 ops, (unsigned long long)bytes_w, (unsigned long long)bytes_r,
		 now_ms() - t0);
	return 0;
}

/* ---- threads -------------------------------------------------------- */

struct worker {
	pthread_t thread;
	unsigned int id;
	int fd;
	__u64 seed;
	unsigned int iters;
	__u64 max;
	__u64 bytes;
	unsigned int ops;
	int ret;
	char why[160];
};

static int worker_check(struct worker *w, __u64 addr, __u64 off, __u64 len,
			const unsigned char *want, unsigned char *buf,
			const char *what)
{
	long long d;
	int ret;

	ret = v_rw(w->fd, false, w->ops & 1, addr + off, buf, len);
	w->ops++;
	if (ret) {
		snprintf(w->why, sizeof(w->why), "%s: read %llu@%llu: %s",
			 what, (unsigned long long)len,
			 (unsigned long long)off, strerror(ret));
		return ret;
	}
	d = first_diff(want, buf, len);
	if (d >= 0) {
		snprintf(w->why, sizeof(w->why),
			 "%s: WRONG DATA at offset %llu: got 0x%02x, want 0x%02x",
			 what, (unsigned long long)(off + d), buf[d], want[d]);
		return E2E_MISMATCH;
	}
	w->bytes += len;
	return 0;
}

static int worker_write(struct worker *w, __u64 addr, __u64 off, __u64 len,
			const unsigned char *src, const char *what)
{
	int ret = v_rw(w->fd, true, w->ops & 1, addr + off, (void *)src, len);

	w->ops++;
	if (ret)
		snprintf(w->why, sizeof(w->why), "%s: write %llu@%llu: %s",
			 what, (unsigned long long)len,
			 (unsigned long long)off, strerror(ret));
	return ret;
}

static int worker_run(struct worker *w)
{
	const __u64 max = w->max, lsize = 1 + (w->seed % (2 * max));
	unsigned char *shadow, *tmp, *buf;
	__u64 st = w->seed, laddr = 0, addr = 0;
	unsigned int it;
	int ret;

	shadow = calloc(1, lsize);
	tmp = xmalloc(max);
	buf = xmalloc(lsize > max ? lsize : max);
	if (!shadow)
		return E2E_NOMEM;
	ret = v_malloc(w->fd, lsize, &laddr);
	if (ret) {
		snprintf(w->why, sizeof(w->why), "MALLOC %llu: %s",
			 (unsigned long long)lsize, strerror(ret));
		return ret;
	}
	for (it = 0; it < w->iters; it++) {
		__u64 size = 1 + rnd_below(&st, max), off, len;

		/* A short-lived allocation, written, read, rewritten. */
		ret = v_malloc(w->fd, size, &addr);
		w->ops++;
		if (ret) {
			snprintf(w->why, sizeof(w->why),
				 "iteration %u: MALLOC %llu: %s", it,
				 (unsigned long long)size, strerror(ret));
			return ret;
		}
		rnd_fill(&st, tmp, size);
		ret = worker_write(w, addr, 0, size, tmp, "short-lived");
		if (!ret)
			ret = worker_check(w, addr, 0, size, tmp, buf,
					   "short-lived");
		off = rnd_below(&st, size);
		len = 1 + rnd_below(&st, size - off);
		rnd_fill(&st, tmp + off, len);
		if (!ret)
			ret = worker_write(w, addr, off, len, tmp + off,
					   "short-lived");
		if (!ret)
			ret = worker_check(w, addr, 0, size, tmp, buf,
					   "short-lived");
		if (ret)
			return ret;
		ret = v_free(w->fd, addr);
		w->ops++;
		if (ret) {
			snprintf(w->why, sizeof(w->why), "FREE: %s",
				 strerror(ret));
			return ret;
		}

		/* The long-lived one: a random write, a random read. */
		off = rnd_below(&st, lsize);
		len = 1 + rnd_below(&st, lsize - off);
		rnd_fill(&st, shadow + off, len);
		ret = worker_write(w, laddr, off, len, shadow + off,
				   "long-lived");
		if (ret)
			return ret;
		off = rnd_below(&st, lsize);
		len = 1 + rnd_below(&st, lsize - off);
		ret = worker_check(w, laddr, off, len, shadow + off, buf,
				   "long-lived");
		if (ret)
			return ret;
	}
	ret = worker_check(w, laddr, 0, lsize, shadow, buf, "long-lived");
	if (!ret)
		ret = v_free(w->fd, laddr);
	free(shadow);
	free(tmp);
	free(buf);
	return ret;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	w->ret = worker_run(w);
	return NULL;
}

static int cmd_threads(int argc, char **argv)
{
	__u64 seed = default_seed(), bytes = 0, max = MIB;
	unsigned int threads = 4, iters = 40, i, ops = 0;
	struct worker *w;
	int shared, c, ret = 0;
	double t0, ms;

	while ((c = getopt(argc, argv, "s:t:n:m:")) != -1) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'm':
			max = parse_size(optarg);
			break;
		case 't':
			threads = strtoul(optarg, NULL, 0);
			break;
		case 'n':
			iters = strtoul(optarg, NULL, 0);
			break;
		default:
			return 2;
		}
	}
	if (!threads || threads > 256 || !max)
		return 2;
	e2e_info("threads: seed %llu, %u threads x %u iterations, up to %llu bytes\n",
		 (unsigned long long)seed, threads, iters,
		 (unsigned long long)max);
	e2e_info("reproduce: virgo_e2e threads -s %llu -t %u -n %u -m %llu\n",
		 (unsigned long long)seed, threads, iters,
		 (unsigned long long)max);
	fflush(stdout);
	w = calloc(threads, sizeof(*w));
	if (!w)
		return E2E_NOMEM;
	shared = dev_open();
	t0 = now_ms();
	for (i = 0; i < threads; i++) {
		w[i].id = i;
		w[i].fd = i & 1 ? dev_open() : shared;
		w[i].seed = mix64(seed + i);
		w[i].iters = iters;
		w[i].max = max;
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i])) {
			fprintf(stderr, "pthread_create failed\n");
			return E2E_AGAIN;
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		bytes += w[i].bytes;
		ops += w[i].ops;
		if (w[i].ret) {
			e2e_info("FAIL thread %u (%s fd): %s\n", i,
				 i & 1 ? "own" : "shared", w[i].why);
			if (!ret)
				ret = w[i].ret;
		}
		if (w[i].fd != shared)
			close(w[i].fd);
	}
	close(shared);
	ms = now_ms() - t0;
	e2e_info("threads: %s %u ops, %llu bytes read back and compared, %.0f ms (%.1f MiB/s compared)\n",
		 ret ? "FAIL" : "PASS", ops, (unsigned long long)bytes, ms,
		 mb_per_s(bytes, ms));
	free(w);
	return ret;
}

/* ---- load ----------------------------------------------------------- */

struct loader {
	pthread_t thread;
	__u64 seed;
	double deadline;
	const char *stop;
	const char *ready;
	bool tolerate;
	unsigned long ops;
	unsigned long errors[256];
	unsigned long mismatches;
	double max_op_ms;
	int fatal;
};

static bool load_stop(struct loader *l)
{
	return now_ms() >= l->deadline || (l->stop && !access(l->stop, F_OK));
}

/* One timed operation; returns its status. */
static int load_op(struct loader *l, int ret, double t0)
{
	double ms = now_ms() - t0;

	if (ms > l->max_op_ms)
		l->max_op_ms = ms;
	l->ops++;
	if (ret) {
		l->errors[ret & 255]++;
		if (!l->tolerate && !l->fatal)
			l->fatal = ret;
	}
	return ret;
}

static void *load_main(void *arg)
{
	struct loader *l = arg;
	unsigned char *buf = xmalloc(MIB), *want = xmalloc(MIB);
	__u64 st = l->seed;
	int fd = dev_open();

	while (!load_stop(l) && !l->fatal) {
		__u64 size = 64 * 1024 + rnd_below(&st, MIB - 64 * 1024);
		__u64 seed = rnd(&st), addr = 0;
		double t0 = now_ms();
		long long d;
		int ret;

		if (load_op(l, v_malloc(fd, size, &addr), t0)) {
			usleep(10000);
			continue;
		}
		pattern(want, 0, size, seed);
		t0 = now_ms();
		ret = load_op(l, v_rw(fd, true, st & 1, addr, want, size), t0);
		if (!ret) {
			t0 = now_ms();
			ret = load_op(l, v_rw(fd, false, st & 2, addr, buf,
					      size), t0);
		}
		if (!ret) {
			d = first_diff(want, buf, size);
			if (d >= 0) {
				e2e_info("WRONG DATA at offset %lld of %llu bytes\n",
					 d, (unsigned long long)size);
				l->mismatches++;
				l->fatal = E2E_MISMATCH;
			}
		}
		t0 = now_ms();
		load_op(l, v_free(fd, addr), t0);
		if (l->ready && l->ops >= 4) {
			close(open(l->ready, O_WRONLY | O_CREAT | O_CLOEXEC,
				   0644));
			l->ready = NULL;
		}
	}
	close(fd);
	free(buf);
	free(want);
	return NULL;
}

static int cmd_load(int argc, char **argv)
{
	__u64 seed = default_seed();
	unsigned int threads = 2, secs = 30, i, e;
	const char *stop = NULL, *ready = NULL;
	unsigned long ops = 0, errors = 0, mism = 0;
	bool tolerate = false;
	struct loader *l;
	double max_ms = 0, t0 = now_ms();
	int c, ret = 0;

	while ((c = getopt(argc, argv, "s:t:d:x:r:e")) != -1) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 't':
			threads = strtoul(optarg, NULL, 0);
			break;
		case 'd':
			secs = strtoul(optarg, NULL, 0);
			break;
		case 'x':
			stop = optarg;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'e':
			tolerate = true;
			break;
		default:
			return 2;
		}
	}
	if (!threads || threads > 64)
		return 2;
	e2e_info("load: seed %llu, %u threads, up to %u s%s\n",
		 (unsigned long long)seed, threads, secs,
		 tolerate ? ", I/O errors tolerated" : "");
	fflush(stdout);
	l = calloc(threads, sizeof(*l));
	if (!l)
		return E2E_NOMEM;
	for (i = 0; i < threads; i++) {
		l[i].seed = mix64(seed + i);
		l[i].deadline = t0 + secs * 1e3;
		l[i].stop = stop;
		l[i].ready = i ? NULL : ready;
		l[i].tolerate = tolerate;
		if (pthread_create(&l[i].thread, NULL, load_main, &l[i]))
			return E2E_AGAIN;
	}
	for (i = 0; i < threads; i++)
		pthread_join(l[i].thread, NULL);
	for (i = 0; i < threads; i++) {
		ops += l[i].ops;
		mism += l[i].mismatches;
		if (l[i].max_op_ms > max_ms)
			max_ms = l[i].max_op_ms;
		for (e = 1; e < 256; e++)
			errors += l[i].errors[e];
		if (l[i].fatal && !ret)
			ret = l[i].fatal;
	}
	e2e_info("load: %lu ops, %lu errors, %lu wrong data, longest op %.0f ms, %.0f ms\n",
		 ops, errors, mism, max_ms, now_ms() - t0);
	for (e = 1; e < 256; e++) {
		unsigned long n = 0;

		for (i = 0; i < threads; i++)
			n += l[i].errors[e];
		if (n)
			e2e_info("load: errno %u (%s): %lu\n", e, strerror(e),
				 n);
	}
	free(l);
	return ret;
}

/* ---- shell ---------------------------------------------------------- */

#define SH_MAX	16

struct sh_alloc {
	char name[32];
	__u64 addr;
	__u64 size;
	__u64 seed;
	bool filled;
	bool sparse;
};

static struct sh_alloc sh_allocs[SH_MAX];
static int sh_fd = -1;
static unsigned char *sh_buf, *sh_want;
static FILE *sh_out;

#define sh_info(...)	file_info(sh_out, __VA_ARGS__)

static struct sh_alloc *sh_find(const char *name)
{
	int i;

	for (i = 0; i < SH_MAX; i++)
		if (sh_allocs[i].size && !strcmp(sh_allocs[i].name, name))
			return &sh_allocs[i];
	sh_info("no allocation named %s\n", name);
	return NULL;
}

static int sh_malloc(const char *name, const char *size_s)
{
	__u64 size = parse_size(size_s);
	struct sh_alloc *a = NULL;
	double t0;
	int i, ret;

	for (i = 0; i < SH_MAX && !a; i++)
		if (!sh_allocs[i].size)
			a = &sh_allocs[i];
	if (!a || !size || strlen(name) >= sizeof(a->name))
		return 2;
	t0 = now_ms();
	ret = v_malloc(sh_fd, size, &a->addr);
	sh_info("malloc %s %llu: %s, %.0f ms\n", name, (unsigned long long)size,
		ret ? strerror(ret) : "ok", now_ms() - t0);
	if (ret)
		return ret;
	sh_info("addr 0x%llx\n", (unsigned long long)a->addr);
	snprintf(a->name, sizeof(a->name), "%s", name);
	a->size = size;
	a->filled = false;
	return 0;
}

static int sh_fill(struct sh_alloc *a, __u64 seed)
{
	double t0 = now_ms(), ms;
	int ret;

	ret = fill_range(sh_fd, a->addr, 0, a->size, seed, sh_buf);
	ms = now_ms() - t0;
	sh_info("fill %s pattern %llu: %s, %llu bytes in %.0f ms, %.1f MiB/s\n",
		a->name, (unsigned long long)seed, ret ? strerror(ret) : "ok",
		(unsigned long long)a->size, ms, mb_per_s(a->size, ms));
	if (!ret) {
		a->seed = seed;
		a->filled = true;
		a->sparse = false;
	}
	return ret;
}

/*
 * One VIRGO_IOC_SET of the whole allocation (fill writes IO_STEP at a
 * time): the time of a single large call, e.g. right after a node died.
 */
static int sh_set1(struct sh_alloc *a, __u64 seed)
{
	unsigned char *buf = xmalloc(a->size);
	double t0, ms;
	int ret;

	pattern(buf, 0, a->size, seed);
	t0 = now_ms();
	ret = v_rw(sh_fd, true, true, a->addr, buf, a->size);
	ms = now_ms() - t0;
	sh_info("set1 %s pattern %llu: %s, %llu bytes in one call, %.0f ms\n",
		a->name, (unsigned long long)seed, ret ? strerror(ret) : "ok",
		(unsigned long long)a->size, ms);
	/* A failed write leaves the contents unknown. */
	a->filled = !ret;
	a->seed = seed;
	a->sparse = false;
	free(buf);
	return ret;
}

static int cmp_ms(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

/*
 * "mtime N SIZE [GAP_MS]": N mallocs of SIZE, each freed at once, GAP_MS
 * apart; every time, the median and the maximum, in ms.
 */
static int sh_mtime(const char *n_s, const char *size_s, const char *gap_s)
{
	unsigned long n = strtoul(n_s, NULL, 0), i;
	unsigned long gap_ms = gap_s ? strtoul(gap_s, NULL, 0) : 0;
	__u64 size = parse_size(size_s), addr = 0;
	double ms[100], t0;
	int ret;

	if (!n || n > 100 || !size || gap_ms > 10000)
		return 2;
	for (i = 0; i < n; i++) {
		if (i && gap_ms)
			usleep(gap_ms * 1000);
		t0 = now_ms();
		ret = v_malloc(sh_fd, size, &addr);
		ms[i] = now_ms() - t0;
		if (ret) {
			sh_info("mtime: malloc %lu of %lu: %s\n", i + 1, n,
				strerror(ret));
			return ret;
		}
		sh_info("mtime %lu: %.1f ms\n", i + 1, ms[i]);
		ret = v_free(sh_fd, addr);
		if (ret)
			return ret;
	}
	qsort(ms, n, sizeof(ms[0]), cmp_ms);
	sh_info("mtime %lu x %llu: median %.0f ms max %.0f ms\n", n,
		(unsigned long long)size, ms[n / 2], ms[n - 1]);
	return 0;
}

/* Bytes written on each side of a chunk boundary by "touch". */
#define TOUCH_HALF	32

struct toucher {
	pthread_t thread;
	struct sh_alloc *a;
	const struct chunk_loc *c;
	long nr;
	long first;
	long step;
	bool write;
	__u64 bytes;
	int ret;
	unsigned char buf[4 * TOUCH_HALF];
	unsigned char want[4 * TOUCH_HALF];
};

/* [*off, *off + *len) around the start of chunk @i (0: the start). */
static void touch_range(const struct sh_alloc *a, const struct chunk_loc *c,
			long i, __u64 *off, __u64 *len)
{
	__u64 b = c[i].off, end;

	*off = b >= TOUCH_HALF ? b - TOUCH_HALF : 0;
	end = b + TOUCH_HALF < a->size ? b + TOUCH_HALF : a->size;
	*len = end - *off;
}

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;
	long i;

	for (i = t->first; i <= t->nr && !t->ret; i += t->step) {
		__u64 off, len;

		if (i == t->nr) {
			/* The last bytes of the allocation. */
			off = t->a->size > TOUCH_HALF ?
			      t->a->size - TOUCH_HALF : 0;
			len = t->a->size - off;
		} else {
			touch_range(t->a, t->c, i, &off, &len);
		}
		pattern(t->want, off, len, t->a->seed);
		if (t->write) {
			t->ret = v_rw(sh_fd, true, false, t->a->addr + off,
				      t->want, len);
		} else {
			t->ret = v_rw(sh_fd, false, false, t->a->addr + off,
				      t->buf, len);
			if (!t->ret && memcmp(t->want, t->buf, len)) {
				sh_info("WRONG DATA around offset %llu\n",
					(unsigned long long)off);
				t->ret = E2E_MISMATCH;
			}
		}
		t->bytes += len;
	}
	return NULL;
}

/*
 * Write (or check) the pattern on both sides of every chunk boundary and
 * at both ends, with 4 threads: a few bytes in every chunk, so that every
 * cloud node materialises every chunk it lends, at a fraction of the cost
 * of writing everything.
 */
static int sh_touch_all(struct sh_alloc *a, bool write, __u64 *bytes)
{
	struct toucher t[4];
	struct chunk_loc *c;
	long nr, i;
	int ret = 0;

	nr = table_chunks(a->addr, &c);
	if (nr < 0)
		return E2E_EXPECT;
	for (i = 0; i < 4; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].a = a;
		t[i].c = c;
		t[i].nr = nr;
		t[i].first = i;
		t[i].step = 4;
		t[i].write = write;
		if (pthread_create(&t[i].thread, NULL, toucher_main, &t[i]))
			return E2E_AGAIN;
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i].thread, NULL);
		*bytes += t[i].bytes;
		if (t[i].ret && !ret)
			ret = t[i].ret;
	}
	free(c);
	return ret;
}

static int sh_touch(struct sh_alloc *a, __u64 seed)
{
	double t0 = now_ms(), ms;
	__u64 bytes = 0;
	int ret;

	a->seed = seed;
	ret = sh_touch_all(a, true, &bytes);
	ms = now_ms() - t0;
	sh_info("touch %s pattern %llu: %s, %llu bytes around every chunk boundary in %.0f ms\n",
		a->name, (unsigned long long)seed,
		ret ? strerror(ret) : "ok", (unsigned long long)bytes, ms);
	a->filled = !ret;
	a->sparse = true;
	return ret;
}

/* Touched: every boundary again, and @samples untouched places read 0. */
static int sh_check_sparse(struct sh_alloc *a, unsigned long samples,
			   __u64 *bytes)
{
	__u64 st = a->seed ^ a->addr;
	struct chunk_loc *c;
	unsigned long i;
	long nr;
	int ret;

	ret = sh_touch_all(a, false, bytes);
	if (ret)
		return ret;
	nr = table_chunks(a->addr, &c);
	if (nr < 0)
		return E2E_EXPECT;
	for (i = 0; i < samples && !ret; i++) {
		const struct chunk_loc *x = &c[rnd_below(&st, nr)];
		__u64 len = 512, off;

		if (x->len < 2 * TOUCH_HALF + len)
			continue;
		off = x->off + TOUCH_HALF +
		      rnd_below(&st, x->len - 2 * TOUCH_HALF - len + 1);
		ret = v_rw(sh_fd, false, false, a->addr + off, sh_buf, len);
		memset(sh_want, 0, len);
		if (!ret && memcmp(sh_buf, sh_want, len)) {
			sh_info("NOT ZERO: never written bytes at offset %llu\n",
				(unsigned long long)off);
			ret = E2E_MISMATCH;
		}
		*bytes += len;
	}
	free(c);
	return ret;
}

/* Everything, or @samples random ranges plus each chunk boundary. */
static int sh_check(struct sh_alloc *a, unsigned long samples)
{
	__u64 st = a->seed ^ a->addr, bytes = 0;
	struct chunk_loc *c = NULL;
	double t0 = now_ms(), ms;
	long nr = 0, i;
	int ret = 0;

	if (!a->filled) {
		sh_info("%s was never filled\n", a->name);
		return E2E_EXPECT;
	}
	if (a->sparse) {
		ret = sh_check_sparse(a, samples, &bytes);
		goto out;
	}
	if (!samples) {
		ret = check_range(sh_fd, a->addr, 0, a->size, a->seed, sh_buf,
				  sh_want, sh_out);
		bytes = a->size;
		goto out;
	}
	nr = table_chunks(a->addr, &c);
	if (nr < 0)
		return E2E_EXPECT;
	/* Across every chunk boundary: the last and first 8 bytes. */
	for (i = 1; i < nr && !ret; i++) {
		__u64 off = c[i].off >= 8 ? c[i].off - 8 : 0;
		__u64 len = off + 16 <= a->size ? 16 : a->size - off;

		ret = check_range(sh_fd, a->addr, off, len, a->seed, sh_buf,
				  sh_want, sh_out);
		bytes += len;
	}
	if (!ret)
		ret = check_range(sh_fd, a->addr, a->size - 1, 1, a->seed,
				  sh_buf, sh_want, sh_out);
	for (i = 0; i < (long)samples && !ret; i++) {
		__u64 len = 1 + rnd_below(&st, 65536), off;

		if (len > a->size)
			len = a->size;
		off = rnd_below(&st, a->size - len + 1);
		ret = check_range(sh_fd, a->addr, off, len, a->seed, sh_buf,
				  sh_want, sh_out);
		bytes += len;
	}
out:
	ms = now_ms() - t0;
	sh_info("check %s (%s): %s, %llu bytes compared in %.0f ms, %.1f MiB/s\n",
		a->name, a->sparse ? "chunk boundaries, zeroes elsewhere" :
		samples ? "samples, chunk boundaries" : "every byte",
		ret == E2E_MISMATCH ? "WRONG DATA" : ret ? strerror(ret) : "ok",
		(unsigned long long)bytes, ms, mb_per_s(bytes, ms));
	free(c);
	return ret;
}

static int sh_where(struct sh_alloc *a)
{
	struct chunk_loc *c;
	long nr, i, j;

	nr = table_chunks(a->addr, &c);
	if (nr < 0)
		return E2E_EXPECT;
	for (i = 0; i < nr; i++) {
		unsigned long n = 0;
		__u64 bytes = 0;

		for (j = 0; j < i; j++)
			if (!strcmp(c[j].peer, c[i].peer))
				break;
		if (j < i)
			continue;
		for (j = i; j < nr; j++) {
			if (strcmp(c[j].peer, c[i].peer))
				continue;
			n++;
			bytes += c[j].len;
		}
		sh_info("peer %s chunks %lu bytes %llu\n", c[i].peer, n,
			(unsigned long long)bytes);
	}
	free(c);
	return 0;
}

static int sh_avoid(struct sh_alloc *a, const char *peer)
{
	struct chunk_loc *c;
	long nr, i, n = 0;

	nr = table_chunks(a->addr, &c);
	if (nr < 0)
		return E2E_EXPECT;
	for (i = 0; i < nr; i++)
		n += !strcmp(c[i].peer, peer);
	free(c);
	sh_info("%s: %ld of %ld chunks on %s\n", a->name, n, nr, peer);
	return n ? 1 : 0;
}

/*
 * Read chunks one by one: those on @peer (at most @max, each must fail
 * with EIO/ETIMEDOUT, or with @any also succeed with the right data, in
 * at most @limit ms), or with @peer_is_other every chunk not on @peer
 * (each must return the right data).
 */
static int sh_probe(struct sh_alloc *a, const char *peer, bool others,
		    long max, bool any, double limit)
{
	struct chunk_loc *c;
	long nr, i, done = 0;
	int status = 0;

	nr = table_chunks(a->addr, &c);
	if (nr < 0)
		return E2E_EXPECT;
	for (i = 0; i < nr && (others || done < max); i++) {
		bool on = !strcmp(c[i].peer, peer);
		double t0, ms;
		int ret;

		if (on == others)
			continue;
		done++;
		t0 = now_ms();
		ret = check_range(sh_fd, a->addr, c[i].off, c[i].len, a->seed,
				  sh_buf, sh_want, sh_out);
		ms = now_ms() - t0;
		sh_info("chunk %ld (%s, offset %llu): %s in %.0f ms\n", i,
			c[i].peer, (unsigned long long)c[i].off,
			ret == E2E_MISMATCH ? "WRONG DATA" :
			ret ? strerror(ret) : "ok", ms);
		if (ret == E2E_MISMATCH) {
			status = E2E_MISMATCH;
		} else if (others) {
			if (ret && !status)
				status = ret;
		} else {
			if (ret != EIO && ret != ETIMEDOUT && !(any && !ret) &&
			    !status)
				status = E2E_EXPECT;
			if (ms > limit && !status)
				status = E2E_SLOW;
		}
	}
	free(c);
	sh_info("%ld chunks read%s\n", done, status == E2E_SLOW ?
		", SLOWER than allowed" : "");
	if (!others && !done) {
		sh_info("no chunk of %s on %s\n", a->name, peer);
		return E2E_EXPECT;
	}
	return status;
}

static int sh_stat(void)
{
	struct virgo_ioc_stat st;

	if (ioctl(sh_fd, VIRGO_IOC_STAT, &st))
		return errno;
	sh_info("peers %u up %u chunk_size %u allocations %llu bytes %llu fd_allocations %llu fd_bytes %llu\n",
		st.nr_peers, st.peers_up, st.chunk_size,
		(unsigned long long)st.allocations,
		(unsigned long long)st.bytes,
		(unsigned long long)st.fd_allocations,
		(unsigned long long)st.fd_bytes);
	return 0;
}

static int sh_free(struct sh_alloc *a, bool really)
{
	double t0 = now_ms();
	int ret = really ? v_free(sh_fd, a->addr) : 0;

	if (really)
		sh_info("free %s: %s, %.0f ms\n", a->name,
			ret ? strerror(ret) : "ok", now_ms() - t0);
	/* Gone either way (see vc_free()). */
	memset(a, 0, sizeof(*a));
	return ret;
}

/* Another name for @a (e2e helpers keep misses of a placement aside). */
static int sh_rename(struct sh_alloc *a, const char *name)
{
	if (strlen(name) >= sizeof(a->name))
		return 2;
	for (int i = 0; i < SH_MAX; i++)
		if (sh_allocs[i].size && !strcmp(sh_allocs[i].name, name))
			return 2;
	strcpy(a->name, name);
	return 0;
}

static int sh_run(int argc, char **argv)
{
	struct sh_alloc *a = NULL;
	const char *cmd = argv[0];

	if (!strcmp(cmd, "mtime") && (argc == 3 || argc == 4))
		return sh_mtime(argv[1], argv[2], argc == 4 ? argv[3] : NULL);
	if (argc >= 2 && strcmp(cmd, "malloc"))
		a = sh_find(argv[1]);
	if (argc >= 2 && strcmp(cmd, "malloc") && !a)
		return E2E_EXPECT;

	if (!strcmp(cmd, "malloc") && argc == 3)
		return sh_malloc(argv[1], argv[2]);
	if (!strcmp(cmd, "fill") && argc == 3)
		return sh_fill(a, strtoull(argv[2], NULL, 0));
	if (!strcmp(cmd, "set1") && argc == 3)
		return sh_set1(a, strtoull(argv[2], NULL, 0));
	if (!strcmp(cmd, "touch") && argc == 3)
		return sh_touch(a, strtoull(argv[2], NULL, 0));
	if (!strcmp(cmd, "check") && (argc == 2 || argc == 3))
		return sh_check(a, argc == 3 ? strtoul(argv[2], NULL, 0) : 0);
	if (!strcmp(cmd, "where") && argc == 2)
		return sh_where(a);
	if (!strcmp(cmd, "avoid") && argc == 3)
		return sh_avoid(a, argv[2]);
	if (!strcmp(cmd, "probe") && argc == 6)
		return sh_probe(a, argv[2], false, strtol(argv[3], NULL, 0),
				!strcmp(argv[4], "any"), strtod(argv[5], NULL));
	if (!strcmp(cmd, "others") && argc == 3)
		return sh_probe(a, argv[2], true, 0, false, 0);
	if (!strcmp(cmd, "free") && argc == 2)
		return sh_free(a, true);
	if (!strcmp(cmd, "rename") && argc == 3)
		return sh_rename(a, argv[2]);
	if (!strcmp(cmd, "forget") && argc == 2)
		return sh_free(a, false);
	if (!strcmp(cmd, "stat") && argc == 1)
		return sh_stat();
	sh_info("unknown command or wrong arguments: %s\n", cmd);
	return 2;
}

static int cmd_shell(int argc, char **argv)
{
	char *line = NULL, *args[8], *save;
	size_t cap = 0;
	FILE *in;
	int fd;

	if (argc != 3)
		return 2;
	if (mkfifo(argv[1], 0600) && errno != EEXIST)
		return errno;
	/* Read-write: no EOF when a writer closes. */
	fd = open(argv[1], O_RDWR | O_CLOEXEC);
	in = fd >= 0 ? fdopen(fd, "r") : NULL;
	sh_out = fopen(argv[2], "a");
	if (!in || !sh_out)
		return errno;
	setvbuf(sh_out, NULL, _IOLBF, 0);
	sh_fd = dev_open();
	sh_buf = xmalloc(IO_STEP);
	sh_want = xmalloc(IO_STEP);
	e2e_info("shell: reading %s, answers in %s\n", argv[1], argv[2]);
	fflush(stdout);

	while (getline(&line, &cap, in) > 0) {
		char *seq = strtok_r(line, " \t\n", &save);
		int n = 0, ret;

		if (!seq)
			continue;
		while (n < 8 && (args[n] = strtok_r(NULL, " \t\n", &save)))
			n++;
		if (!n)
			continue;
		sh_info("#begin %s\n", seq);
		if (!strcmp(args[0], "quit")) {
			sh_info("#end %s 0\n", seq);
			break;
		}
		ret = sh_run(n, args);
		sh_info("#end %s %d\n", seq, ret);
	}
	free(line);
	close(sh_fd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "integrity"))
		return cmd_integrity(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "threads"))
		return cmd_threads(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "load"))
		return cmd_load(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "shell"))
		return cmd_shell(argc - 1, argv + 1);
	fprintf(stderr,
		"usage: virgo_e2e integrity|threads|load|shell ... (see the source)\n");
	return 2;
}
