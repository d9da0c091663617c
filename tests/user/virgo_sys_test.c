// SPDX-License-Identifier: GPL-2.0
/*
 * User-space test of libvirgo: malloc/set/get/free through the virgo
 * system calls (the default: required when the kernel has them) or, with
 * VIRGO_BACKEND=device, through /dev/virgo with per-user ownership.  Run
 * as root on a kernel with virgo.ko loaded and at least one reachable
 * peer.  Prints "PASS name" or "FAIL name: ..." per check and ends with
 * "virgo_sys_test: N passed, N failed"; exits non-zero on any failure.
 *
 *   virgo_sys_test [--seed N]	every check
 *   virgo_sys_test --backend	print the backend libvirgo chooses
 *   virgo_sys_test --expect-enosys
 *				only: each raw system call fails with
 *				ENOSYS (virgo.ko not loaded)
 *
 * The other-user checks run this program again (exec, so libvirgo starts
 * afresh) as uid 1000: --child-other ADDR FD, --child-free ADDR,
 * --child-limits FD and --child-noaccess ADDR.  Who may allocate and the
 * per-uid limits are virgo.ko parameters (/sys/module/virgo/parameters);
 * the checks set them and put them back.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libvirgo.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define OTHER_UID	1000
#define DEV		"/dev/virgo"
#define PARAMS		"/sys/module/virgo/parameters/"

static int passed, failed;
static const char *prefix = "";
static char *self;
static unsigned long long seed;

/* Count and print one check; @fmt says what went wrong if it failed. */
static void check(int ok, const char *name, const char *fmt, ...)
{
	int err = errno;
	va_list ap;

	if (ok) {
		passed++;
		printf("PASS %s%s\n", prefix, name);
		errno = err;
		return;
	}
	failed++;
	printf("FAIL %s%s: ", prefix, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" (errno %d %s)\n", err, strerror(err));
	fflush(stdout);
	errno = err;
}

/* A call that must fail with @want. */
#define EXPECT_ERR(call, want, name) \
	check((call) == -1 && errno == (want), name, "want %s", #want)

static unsigned long long rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return seed;
}

static void fill(unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = rnd() >> 24;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		printf("FAIL %sout of memory\n", prefix);
		exit(2);
	}
	return p;
}

static unsigned int chunk_size = 256 * 1024;

/* ---- round trips ------------------------------------------------------ */

/*
 * Allocate @size bytes, check they read as zeroes, write them all, read
 * them back, then write and read @rounds random ranges (odd offsets and
 * lengths, across chunk boundaries on purpose) against a shadow copy.
 */
static void do_roundtrip(size_t size, int rounds)
{
	unsigned char *shadow = xmalloc(size), *buf = xmalloc(size);
	size_t i, zero_len = size < 65536 ? size : 65536;
	virgo_addr_t addr = 0;
	char name[64];
	int ok, r;

	snprintf(name, sizeof(name), "roundtrip %zu: malloc", size);
	check(!virgo_malloc(size, &addr) && addr, name, "addr 0x%llx",
	      (unsigned long long)addr);
	if (!addr)
		goto out;
	check(!(addr & 4095), "first address page aligned", "0x%llx",
	      (unsigned long long)addr);

	memset(buf, 0xa5, zero_len);
	ok = !virgo_get(addr, buf, zero_len);
	for (i = 0; ok && i < zero_len; i++)
		ok = !buf[i];
	snprintf(name, sizeof(name), "roundtrip %zu: reads zeroes first", size);
	check(ok, name, "byte %zu is 0x%02x", i, buf[i ? i - 1 : 0]);

	fill(shadow, size);
	snprintf(name, sizeof(name), "roundtrip %zu: set all", size);
	check(!virgo_set(addr, shadow, size), name, "virgo_set");
	memset(buf, 0, size);
	snprintf(name, sizeof(name), "roundtrip %zu: get all", size);
	check(!virgo_get(addr, buf, size) && !memcmp(buf, shadow, size), name,
	      "data differs");

	ok = 1;
	for (r = 0; r < rounds && ok; r++) {
		size_t off, len;

		if (r % 3 == 0 && size > chunk_size) {
			/* straddle a chunk boundary */
			size_t nr = size / chunk_size;
			size_t b = chunk_size * (1 + rnd() % nr);

			off = b - 1 - rnd() % (b < 4097 ? b : 4097);
			if (off >= size)
				off = size - 1;
		} else {
			off = rnd() % size;
		}
		len = 1 + rnd() % (size - off);
		fill(shadow + off, len);
		if (virgo_set(addr + off, shadow + off, len)) {
			ok = 0;
			check(0, "roundtrip: random set", "%zu bytes at +%zu",
			      len, off);
			break;
		}
		off = rnd() % size;
		len = 1 + rnd() % (size - off);
		memset(buf, 0, len);
		if (virgo_get(addr + off, buf, len) ||
		    memcmp(buf, shadow + off, len)) {
			ok = 0;
			check(0, "roundtrip: random get", "%zu bytes at +%zu",
			      len, off);
		}
	}
	snprintf(name, sizeof(name), "roundtrip %zu: %d random ranges", size,
		 rounds);
	check(ok, name, "see above");

	memset(buf, 0, size);
	snprintf(name, sizeof(name), "roundtrip %zu: get all again", size);
	check(!virgo_get(addr, buf, size) && !memcmp(buf, shadow, size), name,
	      "data differs");
	snprintf(name, sizeof(name), "roundtrip %zu: free", size);
	check(!virgo_free(addr), name, "virgo_free");
out:
	free(shadow);
	free(buf);
}

static void test_roundtrips(void)
{
	size_t sizes[] = {
		1, 4095, 4097, chunk_size - 1, chunk_size, chunk_size + 1,
		1024 * 1024 + 17, 3 * (size_t)chunk_size + 12345,
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++)
		do_roundtrip(sizes[i], sizes[i] > 4096 ? 30 : 5);
}

/* ---- bad input -------------------------------------------------------- */

static void test_bad_input(int syscalls)
{
	unsigned char byte = 0, buf[16];
	virgo_addr_t addr = 0, gone = 0;
	long page = sysconf(_SC_PAGESIZE);
	unsigned char *ro, *half;

	EXPECT_ERR(virgo_malloc(0, &addr), EINVAL, "malloc size 0");
	EXPECT_ERR(virgo_malloc((size_t)1 << 50, &addr), ENOMEM,
		   "malloc 1 PiB");
	/*
	 * 64 TiB is within the table's address limit, but its chunk array
	 * alone would be a multi-GiB kvzalloc() (a WARN in the kernel log,
	 * which fails kunit.sh): refused before it is tried.
	 */
	EXPECT_ERR(virgo_malloc((size_t)1 << 46, &addr), ENOMEM,
		   "malloc 64 TiB refused cleanly");
	/* One chunk more than an allocation may have (2^20 chunks). */
	EXPECT_ERR(virgo_malloc(((size_t)1 << 20) * chunk_size + 1, &addr),
		   ENOMEM, "malloc of 2^20 chunks + 1 byte");
	EXPECT_ERR(virgo_malloc(100, NULL), EFAULT, "malloc NULL addr");
	EXPECT_ERR(virgo_free(0), ENOENT, "free 0");
	EXPECT_ERR(virgo_get(0, &byte, 1), ENOENT, "get at 0");
	EXPECT_ERR(virgo_set(12345, &byte, 1), ENOENT, "set at 12345");

	check(!virgo_malloc(100, &gone), "malloc 100", "for a freed address");
	check(!virgo_free(gone), "free it", "virgo_free");
	EXPECT_ERR(virgo_free(gone), ENOENT, "double free");
	EXPECT_ERR(virgo_get(gone, &byte, 1), ENOENT, "get freed");

	if (virgo_malloc(100, &addr)) {
		check(0, "malloc 100", "no allocation for the checks below");
		return;
	}
	check(!virgo_get(addr + 99, &byte, 1), "get last byte", "failed");
	EXPECT_ERR(virgo_get(addr + 99, buf, 2), EINVAL, "get past the end");
	EXPECT_ERR(virgo_set(addr + 50, buf, 51), EINVAL, "set past the end");
	EXPECT_ERR(virgo_get(addr + 100, &byte, 1), ENOENT,
		   "get one past the end");
	EXPECT_ERR(virgo_free(addr + 1), EINVAL, "free not-first address");
	EXPECT_ERR(virgo_free(addr + 99), EINVAL, "free last address");
	check(!virgo_get(addr, buf, 0) && !virgo_set(addr, buf, 0),
	      "length 0", "failed");
	EXPECT_ERR(virgo_set(addr, (void *)16, 10), EFAULT, "set bad buffer");
	EXPECT_ERR(virgo_get(addr, (void *)16, 10), EFAULT, "get bad buffer");

	ro = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro == MAP_FAILED) {
		check(0, "mmap", "for the EFAULT checks");
	} else {
		half = ro + page;
		/* second page unmapped: the range ends in a hole */
		munmap(half, page);
		EXPECT_ERR(virgo_set(addr, half - 40, 80), EFAULT,
			   "set buffer running into a hole");
		mprotect(ro, page, PROT_READ);
		EXPECT_ERR(virgo_get(addr, ro, 64), EFAULT,
			   "get into read-only memory");
		munmap(ro, page);
	}

#ifdef __NR_virgo_malloc
	if (syscalls) {
		struct virgo_ioc_stat a, b;
		int have = !virgo_stat(&a);

		EXPECT_ERR(syscall(__NR_virgo_malloc, 100UL, (void *)16),
			   EFAULT, "raw malloc to a bad address");
		check(!have || (!virgo_stat(&b) &&
				b.allocations == a.allocations),
		      "nothing left by the failed malloc", "%llu -> %llu",
		      (unsigned long long)a.allocations,
		      (unsigned long long)b.allocations);
		EXPECT_ERR(syscall(__NR_virgo_get, addr, (void *)16, 10UL),
			   EFAULT, "raw get to a bad buffer");
	}
#else
	(void)syscalls;
#endif
	check(!virgo_free(addr), "free", "virgo_free");
}

/* ---- per-allocation replicas ------------------------------------------ */

/*
 * The replica count of every chunk of the allocation at @addr, from
 * debugfs virgo/table: that count if all chunks agree, 0 if they do not,
 * -1 if the table cannot be read or lacks the allocation.
 */
static int table_replicas(virgo_addr_t addr)
{
	char line[512], head[32];
	int in = 0, want = -1, r;
	FILE *f = fopen("/sys/kernel/debug/virgo/table", "re");
	char *p;

	if (!f)
		return -1;
	snprintf(head, sizeof(head), "0x%llx ", (unsigned long long)addr);
	while (fgets(line, sizeof(line), f)) {
		if (line[0] != ' ') {
			in = !strncmp(line, head, strlen(head));
			continue;
		}
		p = strstr(line, " replicas ");
		if (!in || strncmp(line, "  chunk ", 8) || !p)
			continue;
		r = atoi(p + 10);
		want = want < 0 || want == r ? r : 0;
	}
	fclose(f);
	return want;
}

/* virgo_malloc_replicas(): bounds, and the count the table records. */
static void test_replicas(unsigned int nr_peers, unsigned int peers_up)
{
	size_t size = 2 * chunk_size + 77;
	unsigned char *a = xmalloc(size), *b = xmalloc(size);
	virgo_addr_t addr = 0;
	unsigned int n;
	int r;

	EXPECT_ERR(virgo_malloc_replicas(100, 4, &addr), EINVAL,
		   "malloc_replicas 4 (over VIRGO_MAX_REPLICAS)");
	EXPECT_ERR(virgo_malloc_replicas(100, 1, NULL), EFAULT,
		   "malloc_replicas NULL addr");
	EXPECT_ERR(virgo_malloc_replicas(0, 1, &addr), EINVAL,
		   "malloc_replicas size 0");
	/* As many copies as there are peers, or one more when that fits. */
	for (n = 1; n <= VIRGO_MAX_REPLICAS; n++) {
		char name[64];

		snprintf(name, sizeof(name), "malloc_replicas %u (%u peers up)",
			 n, peers_up);
		if (n > nr_peers) {
			EXPECT_ERR(virgo_malloc_replicas(size, n, &addr),
				   ENOSPC, name);
			continue;
		}
		/* A peer down: either outcome would be right. */
		if (n > peers_up)
			continue;
		if (virgo_malloc_replicas(size, n, &addr)) {
			check(0, name, "failed");
			continue;
		}
		check(1, name, "");
		fill(a, size);
		check(!virgo_set(addr, a, size) && !virgo_get(addr, b, size) &&
		      !memcmp(a, b, size), "... round trip", "%zu bytes",
		      size);
		r = table_replicas(addr);
		if (r < 0)
			printf("%s\n",
			       "note: no debugfs virgo/table: copies not counted");
		else
			check(r == (int)n, "... every chunk has n copies",
			      "table says %d", r);
		check(!virgo_free(addr), "... free", "virgo_free");
	}
	free(a);
	free(b);
}

/* ---- threads ---------------------------------------------------------- */

#define THREADS		4
#define THREAD_ITERS	8

/**
 * struct thread_arg - one thread's work
 * @id: its number
 * @size: bytes per allocation
 * @a: data to write, @size bytes
 * @b: room to read back into, @size bytes
 * @stack: its stack
 */
struct thread_arg {
	unsigned int id;
	size_t size;
	unsigned char *a, *b;
	void *stack;
};

#define THREAD_STACK	(256 * 1024)

static pthread_barrier_t barrier;

/*
 * Allocate, write, read back, free; all threads start at once.  Buffers
 * and stacks come from the main thread, so that no memory is mapped while
 * a thread starts: UML's fork_handler() takes the mmap lock, and may not
 * sleep on it.
 */
static void *thread_fn(void *arg)
{
	struct thread_arg *t = arg;
	virgo_addr_t addr;
	unsigned int i;
	size_t j;
	long bad = 0;

	pthread_barrier_wait(&barrier);
	for (i = 0; i < THREAD_ITERS && !bad; i++) {
		for (j = 0; j < t->size; j++)
			t->a[j] = (unsigned char)(t->id * 31 + i * 7 + j);
		if (virgo_malloc(t->size, &addr)) {
			bad = 1;
			break;
		}
		if (virgo_set(addr, t->a, t->size) ||
		    virgo_get(addr, t->b, t->size) ||
		    memcmp(t->a, t->b, t->size))
			bad = 2;
		if (virgo_free(addr))
			bad = 3;
	}
	return (void *)bad;
}

static void test_threads(void)
{
	struct thread_arg args[THREADS];
	pthread_t t[THREADS];
	pthread_attr_t attr;
	unsigned int i;
	int ok = 1;
	void *ret;

	for (i = 0; i < THREADS; i++) {
		args[i].id = i;
		args[i].size = chunk_size + 4096 * (i + 1) + i;
		args[i].a = xmalloc(args[i].size);
		args[i].b = xmalloc(args[i].size);
		memset(args[i].a, 0, args[i].size);
		memset(args[i].b, 0, args[i].size);
		args[i].stack = xmalloc(THREAD_STACK);
		memset(args[i].stack, 0, THREAD_STACK);
	}
	pthread_barrier_init(&barrier, NULL, THREADS);
	for (i = 0; i < THREADS; i++) {
		pthread_attr_init(&attr);
		if (pthread_attr_setstack(&attr, args[i].stack, THREAD_STACK) ||
		    pthread_create(&t[i], &attr, thread_fn, &args[i])) {
			check(0, "threads", "pthread_create");
			exit(1);
		}
		pthread_attr_destroy(&attr);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], &ret);
		if (ret)
			ok = 0;
	}
	pthread_barrier_destroy(&barrier);
	for (i = 0; i < THREADS; i++) {
		free(args[i].a);
		free(args[i].b);
		free(args[i].stack);
	}
	check(ok, "4 threads malloc/set/get/free from the first call",
	      "a thread failed");
}

/* Write @val to the virgo.ko parameter @name; 0 or -1. */
static int param_set(const char *name, const char *val)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

/* Read the virgo.ko parameter @name into @buf (newline dropped). */
static int param_get(const char *name, char *buf, size_t len)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* ---- another user ------------------------------------------------------- */

/* Run this program again as OTHER_UID with @args; its exit status. */
static int run_as_other(char *const args[])
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		execv("/proc/self/exe", args);
		execv(self, args);
		printf("FAIL cannot run %s again: %s\n", self, strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int become_other(void)
{
	if (setresgid(OTHER_UID, OTHER_UID, OTHER_UID) ||
	    setresuid(OTHER_UID, OTHER_UID, OTHER_UID)) {
		printf("FAIL %ssetresuid(%d): %s\n", prefix, OTHER_UID,
		       strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * As uid 1000: root's allocation at @addr is out of reach; an allocation
 * of our own works, and its address goes to @fd for root to try.
 */
static int child_other(virgo_addr_t addr, int fd)
{
	unsigned char in[300], out[300];
	virgo_addr_t mine = 0;
	char line[32];
	int n;

	prefix = "uid 1000: ";
	if (become_other())
		return 1;
	EXPECT_ERR(virgo_get(addr, out, 10), EPERM, "get root's allocation");
	EXPECT_ERR(virgo_set(addr, out, 10), EPERM, "set root's allocation");
	EXPECT_ERR(virgo_free(addr), EPERM, "free root's allocation");
	fill(in, sizeof(in));
	check(!virgo_malloc(sizeof(in), &mine), "malloc own", "virgo_malloc");
	check(!virgo_set(mine, in, sizeof(in)) &&
	      !virgo_get(mine, out, sizeof(out)) &&
	      !memcmp(in, out, sizeof(in)), "own round trip", "failed");
	n = snprintf(line, sizeof(line), "0x%llx\n", (unsigned long long)mine);
	if (write(fd, line, n) != n)
		check(0, "report own address", "write");
	return failed ? 1 : 0;
}

/* As uid 1000: free @addr, made by another process of this uid. */
static int child_free(virgo_addr_t addr)
{
	prefix = "uid 1000: ";
	if (become_other())
		return 1;
	check(!virgo_free(addr), "free own allocation made by another process",
	      "virgo_free");
	return failed ? 1 : 0;
}

static void test_other_user(int device)
{
	unsigned char in[5000], out[5000];
	char arg_addr[32], arg_fd[16], line[64] = "", gid[32] = "-1";
	virgo_addr_t addr = 0, theirs = 0;
	mode_t old_mode = 0;
	int p[2], rc, n;
	struct stat st;

	/* uid 1000 may allocate: a member of syscall_gid */
	if (param_get("syscall_gid", gid, sizeof(gid)) ||
	    param_set("syscall_gid", "1000"))
		check(0, "syscall_gid 1000", "cannot set %ssyscall_gid",
		      PARAMS);

	if (device) {
		/* The child opens /dev/virgo itself, as uid 1000. */
		if (stat(DEV, &st) || chmod(DEV, 0666)) {
			printf("SKIP other-user checks: chmod %s: %s\n", DEV,
			       strerror(errno));
			param_set("syscall_gid", gid);
			return;
		}
		old_mode = st.st_mode & 07777;
	}
	fill(in, sizeof(in));
	if (virgo_malloc(sizeof(in), &addr) ||
	    virgo_set(addr, in, sizeof(in))) {
		check(0, "malloc for the other user", "failed");
		goto out;
	}
	if (pipe(p)) {
		check(0, "pipe", "failed");
		goto out;
	}
	snprintf(arg_addr, sizeof(arg_addr), "0x%llx",
		 (unsigned long long)addr);
	snprintf(arg_fd, sizeof(arg_fd), "%d", p[1]);
	{
		char *const args[] = { self, "--child-other", arg_addr, arg_fd,
				       NULL };

		rc = run_as_other(args);
	}
	close(p[1]);
	n = read(p[0], line, sizeof(line) - 1);
	close(p[0]);
	line[n > 0 ? n : 0] = '\0';
	check(rc == 0, "uid 1000 child", "exit %d", rc);
	theirs = strtoull(line, NULL, 16);
	check(theirs != 0, "uid 1000 child's allocation", "got '%s'", line);

	if (theirs) {
		EXPECT_ERR(virgo_get(theirs, out, 10), EPERM,
			   "root gets uid 1000's allocation");
		EXPECT_ERR(virgo_set(theirs, out, 10), EPERM,
			   "root sets uid 1000's allocation");
		EXPECT_ERR(virgo_free(theirs), EPERM,
			   "root frees uid 1000's allocation");
		snprintf(arg_addr, sizeof(arg_addr), "0x%llx",
			 (unsigned long long)theirs);
		{
			char *const args[] = { self, "--child-free", arg_addr,
					       NULL };

			rc = run_as_other(args);
		}
		check(rc == 0, "another uid 1000 process frees it", "exit %d",
		      rc);
		EXPECT_ERR(virgo_get(theirs, out, 10), ENOENT,
			   "uid 1000's allocation is gone");
	}
	check(!virgo_get(addr, out, sizeof(out)) &&
	      !memcmp(in, out, sizeof(in)), "root's data intact", "failed");
out:
	if (addr)
		check(!virgo_free(addr), "free root's allocation", "failed");
	if (param_set("syscall_gid", gid))
		check(0, "restore syscall_gid", "to %s", gid);
	if (device && chmod(DEV, old_mode))
		printf("FAIL cannot restore the mode of %s: %s\n", DEV,
		       strerror(errno));
}

/* ---- who may allocate, per-uid limits ---------------------------------- */

static const char *const limit_params[] = {
	"syscall_gid", "user_max_bytes", "user_max_allocs",
};

/* Set the three parameters; a failure is a failed check. */
static void set_limits(const char *gid, const char *bytes, const char *allocs)
{
	if (param_set(limit_params[0], gid) ||
	    param_set(limit_params[1], bytes) ||
	    param_set(limit_params[2], allocs))
		check(0, "set parameters", "%s = %s, %s, %s", PARAMS, gid,
		      bytes, allocs);
}

/*
 * As uid 1000, allowed through syscall_gid 1000, with user_max_allocs 2
 * and user_max_bytes 1 MiB: the limits hold and come back on free.  One
 * allocation is left for the no-access check; its address goes to @fd.
 */
static int child_limits(int fd)
{
	virgo_addr_t a = 0, b = 0, c = 0, d = 0;
	char line[32];
	int n;

	prefix = "uid 1000: ";
	if (become_other())
		return 1;
	check(!virgo_malloc(100, &a) && !virgo_malloc(100, &b),
	      "2 allocations within user_max_allocs 2", "virgo_malloc");
	EXPECT_ERR(virgo_malloc(100, &c), EDQUOT,
		   "3rd allocation over user_max_allocs");
	check(!virgo_free(b), "free one", "virgo_free");
	check(!virgo_malloc(100, &c), "allocation count released after free",
	      "virgo_malloc");
	check(!virgo_free(c), "free it", "virgo_free");
	EXPECT_ERR(virgo_malloc((1 << 20) - 99, &d), EDQUOT,
		   "bytes over user_max_bytes");
	check(!virgo_malloc((1 << 20) - 100, &d), "bytes up to user_max_bytes",
	      "virgo_malloc");
	check(!virgo_free(d), "free them", "virgo_free");
	check(!virgo_malloc((1 << 20) - 100, &d),
	      "bytes released after free", "virgo_malloc");
	check(!virgo_free(d), "free again", "virgo_free");
	n = snprintf(line, sizeof(line), "0x%llx\n", (unsigned long long)a);
	if (write(fd, line, n) != n)
		check(0, "report the address", "write");
	return failed ? 1 : 0;
}

/*
 * As uid 1000, outside syscall_gid: no new allocation, but the one made
 * while allowed (@addr) is still ours to read and free.
 */
static int child_noaccess(virgo_addr_t addr)
{
	unsigned char byte = 1;
	virgo_addr_t x = 0;

	prefix = "uid 1000: ";
	if (become_other())
		return 1;
	EXPECT_ERR(virgo_malloc(100, &x), EACCES, "malloc outside syscall_gid");
	if (!addr)
		return failed ? 1 : 0;
	check(!virgo_get(addr, &byte, 1) && !byte,
	      "own allocation still readable", "virgo_get");
	check(!virgo_free(addr), "own allocation still freeable",
	      "virgo_free");
	return failed ? 1 : 0;
}

static void test_limits(int device)
{
	char saved[ARRAY_SIZE(limit_params)][32], arg[32], line[64] = "";
	virgo_addr_t a = 0, b = 0, c = 0, left = 0;
	mode_t old_mode = 0;
	struct stat st;
	int p[2], rc, n;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(limit_params); i++) {
		if (param_get(limit_params[i], saved[i], sizeof(saved[i]))) {
			check(0, "read parameter", "%s%s", PARAMS,
			      limit_params[i]);
			return;
		}
	}
	check(!strcmp(saved[0], "-1") && !strcmp(saved[1], "0") &&
	      !strcmp(saved[2], "0"), "defaults: no group, no limits",
	      "syscall_gid %s, user_max_bytes %s, user_max_allocs %s",
	      saved[0], saved[1], saved[2]);
	if (device) {
		if (stat(DEV, &st) || chmod(DEV, 0666)) {
			check(0, "chmod " DEV, "for uid 1000");
			return;
		}
		old_mode = st.st_mode & 07777;
	}

	/* Not in the group (none, then another): nothing to allocate. */
	{
		char *const args[] = { self, "--child-noaccess", "0", NULL };

		set_limits("-1", "0", "0");
		rc = run_as_other(args);
		check(rc == 0, "uid 1000 without syscall_gid: EACCES",
		      "child exit %d", rc);
		set_limits("2000", "0", "0");
		rc = run_as_other(args);
		check(rc == 0, "uid 1000 outside syscall_gid 2000: EACCES",
		      "child exit %d", rc);
	}

	/* In the group: limited, and the limits come back on free. */
	set_limits("1000", "1048576", "2");
	if (pipe(p)) {
		check(0, "pipe", "failed");
		goto out;
	}
	snprintf(arg, sizeof(arg), "%d", p[1]);
	{
		char *const args[] = { self, "--child-limits", arg, NULL };

		rc = run_as_other(args);
	}
	close(p[1]);
	n = read(p[0], line, sizeof(line) - 1);
	close(p[0]);
	line[n > 0 ? n : 0] = '\0';
	check(rc == 0, "uid 1000 within syscall_gid: limits", "child exit %d",
	      rc);
	left = strtoull(line, NULL, 16);

	/* Root's uid is bound too once they are set. */
	check(!virgo_malloc(100, &a), "root: 1st allocation", "virgo_malloc");
	check(!virgo_malloc(100, &b), "root: 2nd allocation", "virgo_malloc");
	EXPECT_ERR(virgo_malloc(100, &c), EDQUOT,
		   "root: 3rd over user_max_allocs once set");
	set_limits("1000", "0", "0");

	/* Out of the group again: the allocation left is still its. */
	if (left) {
		snprintf(arg, sizeof(arg), "0x%llx", (unsigned long long)left);
		set_limits("-1", "0", "0");
		{
			char *const args[] = { self, "--child-noaccess", arg,
					       NULL };

			rc = run_as_other(args);
		}
		check(rc == 0, "uid 1000 without access frees its own",
		      "child exit %d", rc);
	} else {
		check(0, "uid 1000's allocation", "got '%s'", line);
	}
out:
	if (a)
		check(!virgo_free(a), "root: free", "virgo_free");
	if (b)
		check(!virgo_free(b), "root: free", "virgo_free");
	set_limits(saved[0], saved[1], saved[2]);
	if (device && chmod(DEV, old_mode))
		printf("FAIL cannot restore the mode of %s: %s\n", DEV,
		       strerror(errno));
}

/* ---- modes ------------------------------------------------------------ */

/* Each raw system call fails with ENOSYS: nothing serves them. */
static int expect_enosys(void)
{
#ifdef __NR_virgo_malloc
	unsigned long long addr = 0;
	unsigned char byte = 0;

	EXPECT_ERR(syscall(__NR_virgo_malloc, 1UL, &addr), ENOSYS,
		   "raw virgo_malloc");
	EXPECT_ERR(syscall(__NR_virgo_free, 0x100000000ULL), ENOSYS,
		   "raw virgo_free");
	EXPECT_ERR(syscall(__NR_virgo_set, 0x100000000ULL, &byte, 1UL),
		   ENOSYS, "raw virgo_set");
	EXPECT_ERR(syscall(__NR_virgo_get, 0x100000000ULL, &byte, 1UL),
		   ENOSYS, "raw virgo_get");
	check(strcmp(virgo_backend(), "syscall"), "libvirgo avoids them",
	      "backend %s", virgo_backend());
#else
	printf("SKIP no virgo system call numbers on this architecture\n");
#endif
	printf("virgo_sys_test: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

/* Does this kernel have the virgo system calls (loaded or not)? */
static int kernel_has_syscalls(void)
{
	char line[256];
	int found = 0;
	FILE *f;

#ifdef __NR_virgo_free
	if (syscall(__NR_virgo_free, 0ULL) == 0 || errno != ENOSYS)
		return 1;
#endif
	f = fopen("/proc/kallsyms", "re");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = !!strstr(line, "sys_virgo_malloc");
	fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	const char *env = getenv("VIRGO_BACKEND"), *want, *backend;
	struct virgo_ioc_stat st0 = { 0 }, st1 = { 0 };
	int has_syscalls, have_stat;

	self = argv[0];
	seed = 0x9e3779b97f4a7c15ULL ^ (unsigned long long)time(NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "--expect-enosys"))
		return expect_enosys();
	if (argc == 2 && !strcmp(argv[1], "--backend")) {
		printf("%s\n", virgo_backend());
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "--child-other"))
		return child_other(strtoull(argv[2], NULL, 16),
				   atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "--child-free"))
		return child_free(strtoull(argv[2], NULL, 16));
	if (argc == 3 && !strcmp(argv[1], "--child-limits"))
		return child_limits(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "--child-noaccess"))
		return child_noaccess(strtoull(argv[2], NULL, 16));
	if (argc == 3 && !strcmp(argv[1], "--seed")) {
		seed = strtoull(argv[2], NULL, 0);
	} else if (argc != 1) {
		fprintf(stderr, "usage: %s %s\n", argv[0],
			"[--seed N | --backend | --expect-enosys]");
		return 2;
	}
	if (!seed)
		seed = 1;
	printf("virgo_sys_test: seed %llu\n", seed);

	/* Before anything else: the lazy backend choice under a race. */
	test_threads();

	has_syscalls = kernel_has_syscalls();
	if (env && *env)
		want = env;
	else
		want = has_syscalls ? "syscall" : "device";
	backend = virgo_backend();
	printf("virgo_sys_test: backend %s, kernel %s the virgo syscalls\n",
	       backend, has_syscalls ? "has" : "lacks");
	check(!strcmp(backend, want), "backend", "is %s, want %s", backend,
	      want);
	if (!strcmp(backend, "none")) {
		printf("virgo_sys_test: %d passed, %d failed\n", passed,
		       failed);
		return 1;
	}

	have_stat = !virgo_stat(&st0);
	check(have_stat, "virgo_stat", "failed");
	if (have_stat && st0.chunk_size)
		chunk_size = st0.chunk_size;
	printf("virgo_sys_test: chunk size %u, %u peers (%u up), %llu live\n",
	       chunk_size, st0.nr_peers, st0.peers_up,
	       (unsigned long long)st0.allocations);

	test_roundtrips();
	test_bad_input(!strcmp(backend, "syscall"));
	test_replicas(st0.nr_peers, st0.peers_up);
	test_other_user(!strcmp(backend, "device"));
	test_limits(!strcmp(backend, "device"));

	if (have_stat) {
		check(!virgo_stat(&st1) && st1.allocations == st0.allocations &&
		      st1.bytes == st0.bytes, "everything freed",
		      "allocations %llu -> %llu, bytes %llu -> %llu",
		      (unsigned long long)st0.allocations,
		      (unsigned long long)st1.allocations,
		      (unsigned long long)st0.bytes,
		      (unsigned long long)st1.bytes);
	}
	printf("virgo_sys_test: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
