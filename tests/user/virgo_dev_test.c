// SPDX-License-Identifier: GPL-2.0
/*
 * User-space test of /dev/virgo: run as root on a kernel with virgo.ko
 * loaded and at least one reachable peer.  Prints one line per case and
 * ends with "N passed, N failed"; exits non-zero on any failure.  The
 * access and limit cases set virgo.ko's parameters (syscall_gid,
 * user_max_bytes, user_max_allocs) and put them back.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/virgo.h>

static int passed, failed;

#define CHECK(cond, ...) do {						\
	if (cond) {							\
		passed++;						\
	} else {							\
		failed++;						\
		printf("FAIL %s:%d: %s: ", __func__, __LINE__, #cond);	\
		printf(__VA_ARGS__);					\
		printf(" (errno %d %s)\n", errno, strerror(errno));	\
	}								\
} while (0)

static const char *dev = "/dev/virgo";

static int xopen(void)
{
	int fd = open(dev, O_RDWR);

	if (fd < 0) {
		printf("cannot open %s: %s\n", dev, strerror(errno));
		exit(2);
	}
	return fd;
}

static int vmalloc_(int fd, __u64 size, __u64 *addr)
{
	struct virgo_ioc_malloc m = { .size = size };
	int ret = ioctl(fd, VIRGO_IOC_MALLOC, &m);

	*addr = m.addr;
	return ret;
}

static int vfree_(int fd, __u64 addr)
{
	struct virgo_ioc_free f = { .addr = addr };

	return ioctl(fd, VIRGO_IOC_FREE, &f);
}

static int vrw(int fd, unsigned long cmd, __u64 addr, void *buf,
	       __u64 len)
{
	struct virgo_ioc_rw rw = {
		.addr = addr, .buf = (unsigned long)buf, .len = len,
	};

	return ioctl(fd, cmd, &rw);
}

static void fill(unsigned char *p, size_t n, unsigned int seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		p[i] = seed >> 16;
	}
}

static void test_roundtrip(void)
{
	const size_t size = 3 * 1024 * 1024 + 17;
	unsigned char *a = malloc(size), *b = malloc(size);
	struct virgo_ioc_stat st;
	__u64 addr;
	int fd = xopen(), round;

	CHECK(a && b, "malloc");
	CHECK(vmalloc_(fd, size, &addr) == 0 && addr, "MALLOC");
	CHECK(ioctl(fd, VIRGO_IOC_STAT, &st) == 0, "STAT");
	CHECK(st.abi_version == VIRGO_ABI_VERSION && st.fd_allocations == 1 &&
	      st.fd_bytes == size, "stat %llu %llu",
	      (unsigned long long)st.fd_allocations,
	      (unsigned long long)st.fd_bytes);
	fill(a, size, 1);
	CHECK(vrw(fd, VIRGO_IOC_SET, addr, a, size) == 0, "SET all");
	memset(b, 0, size);
	CHECK(vrw(fd, VIRGO_IOC_GET, addr, b, size) == 0, "GET all");
	CHECK(!memcmp(a, b, size), "data differs");
	for (round = 0; round < 20; round++) {
		size_t off = (size_t)rand() % size;
		size_t len = 1 + (size_t)rand() % (size - off);

		fill(a + off, len, round + 7);
		CHECK(pwrite(fd, a + off, len, addr + off) == (ssize_t)len,
		      "pwrite %zu@%zu", len, off);
		off = (size_t)rand() % size;
		len = 1 + (size_t)rand() % (size - off);
		CHECK(pread(fd, b, len, addr + off) == (ssize_t)len,
		      "pread %zu@%zu", len, off);
		CHECK(!memcmp(a + off, b, len), "pread data %zu@%zu", len, off);
	}
	CHECK(vfree_(fd, addr) == 0, "FREE");
	close(fd);
	free(a);
	free(b);
}

/*
 * A fault on a user page moves nothing: a SET from, or a GET into, a
 * buffer with a hole (or read-only pages) is EFAULT, and afterwards the
 * allocation still holds what it held and the buffer's mapped pages are
 * unchanged.  The hole lies past the first MiB, so a transfer that moved
 * the buffer in steps would have written (or copied out) a prefix.
 */
static void test_efault_moves_nothing(void)
{
	const size_t size = 4 * 1024 * 1024 + 333;
	const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	const size_t map_len = size + 4 * pg, off = 5;
	const size_t hole = ((3 * 1024 * 1024) / pg) * pg;
	unsigned char *shadow = malloc(size), *b = malloc(size), *m;
	unsigned char *pat = malloc(map_len);
	__u64 addr;
	int fd = xopen();

	CHECK(shadow && b && pat, "malloc");
	m = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap");
	if (!shadow || !b || !pat || m == MAP_FAILED)
		goto out;
	fill(pat, map_len, 12);
	CHECK(vmalloc_(fd, size, &addr) == 0, "MALLOC");
	fill(shadow, size, 11);
	CHECK(vrw(fd, VIRGO_IOC_SET, addr, shadow, size) == 0, "SET shadow");

	/* A hole 3 MiB into the source buffer. */
	fill(m, map_len, 12);
	CHECK(munmap(m + hole, pg) == 0, "munmap");
	errno = 0;
	CHECK(vrw(fd, VIRGO_IOC_SET, addr, m + off, size) < 0 &&
	      errno == EFAULT, "SET across a hole");
	errno = 0;
	CHECK(pwrite(fd, m + off, size, addr) < 0 && errno == EFAULT,
	      "pwrite across a hole");
	memset(b, 0, size);
	CHECK(vrw(fd, VIRGO_IOC_GET, addr, b, size) == 0, "GET after");
	CHECK(!memcmp(b, shadow, size), "a failed SET wrote something");

	/* The same hole as a destination: the mapped pages stay as they are. */
	errno = 0;
	CHECK(vrw(fd, VIRGO_IOC_GET, addr, m + off, size) < 0 &&
	      errno == EFAULT, "GET across a hole");
	errno = 0;
	CHECK(pread(fd, m + off, size, addr) < 0 && errno == EFAULT,
	      "pread across a hole");
	CHECK(!memcmp(m, pat, hole) &&
	      !memcmp(m + hole + pg, pat + hole + pg, map_len - hole - pg),
	      "a failed GET copied something out");
	munmap(m, hole);
	munmap(m + hole + pg, map_len - hole - pg);

	/* Read-only pages are no destination either. */
	m = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "mmap read-only");
	if (m != MAP_FAILED) {
		errno = 0;
		CHECK(vrw(fd, VIRGO_IOC_GET, addr, m + off, size) < 0 &&
		      errno == EFAULT, "GET into read-only pages");
		CHECK(vrw(fd, VIRGO_IOC_GET, addr, m, 100) < 0 &&
		      errno == EFAULT, "small GET into a read-only page");
		munmap(m, map_len);
	}
	CHECK(vfree_(fd, addr) == 0, "FREE");
out:
	close(fd);
	free(shadow);
	free(b);
	free(pat);
}

/*
 * Large transfers at odd offsets of both the allocation and the user
 * buffer, compared with a shadow copy: pieces of several chunks, starting
 * and ending inside pages and chunks.
 */
static void test_large_unaligned(void)
{
	const size_t size = 9 * 1024 * 1024 + 123;
	unsigned char *shadow = calloc(1, size), *a = malloc(size + 8);
	unsigned char *b = malloc(size + 8);
	__u64 addr;
	int fd = xopen(), round;

	CHECK(shadow && a && b, "malloc");
	if (!shadow || !a || !b)
		goto out;
	CHECK(vmalloc_(fd, size, &addr) == 0, "MALLOC");
	for (round = 0; round < 6; round++) {
		size_t off = (size_t)rand() % (size / 2);
		size_t len = 1024 * 1024 + (size_t)rand() % (size - off -
							      1024 * 1024);
		size_t ua = 1 + round % 7;

		fill(a + ua, len, round + 100);
		memcpy(shadow + off, a + ua, len);
		if (round & 1)
			CHECK(pwrite(fd, a + ua, len, addr + off) ==
			      (ssize_t)len, "pwrite %zu@%zu", len, off);
		else
			CHECK(vrw(fd, VIRGO_IOC_SET, addr + off, a + ua, len) ==
			      0, "SET %zu@%zu", len, off);
		off = (size_t)rand() % (size / 2);
		len = 1 + (size_t)rand() % (size - off);
		ua = 7 - round % 7;
		if (round & 2)
			CHECK(pread(fd, b + ua, len, addr + off) ==
			      (ssize_t)len, "pread %zu@%zu", len, off);
		else
			CHECK(vrw(fd, VIRGO_IOC_GET, addr + off, b + ua, len) ==
			      0, "GET %zu@%zu", len, off);
		CHECK(!memcmp(b + ua, shadow + off, len), "data %zu@%zu",
		      len, off);
	}
	CHECK(vrw(fd, VIRGO_IOC_GET, addr, b + 3, size) == 0, "GET all");
	CHECK(!memcmp(b + 3, shadow, size), "data of the whole allocation");
	CHECK(vfree_(fd, addr) == 0, "FREE");
out:
	close(fd);
	free(shadow);
	free(a);
	free(b);
}

static void test_bad_input(void)
{
	struct virgo_ioc_malloc m = {
		.size = 100, .flags = ~VIRGO_MALLOC_FLAGS,
	};
	unsigned char byte = 0;
	__u64 addr;
	int fd = xopen();

	CHECK(ioctl(fd, VIRGO_IOC_MALLOC, &m) < 0 && errno == EINVAL,
	      "flags");
	CHECK(vmalloc_(fd, 0, &addr) < 0 && errno == EINVAL, "size 0");
	CHECK(ioctl(fd, VIRGO_IOC_MALLOC, (void *)16) < 0 && errno == EFAULT,
	      "bad pointer");
	CHECK(ioctl(fd, _IO(VIRGO_IOC_MAGIC, 99)) < 0 && errno == ENOTTY,
	      "unknown ioctl");
	CHECK(vfree_(fd, 0) < 0 && errno == ENOENT, "free 0");
	CHECK(vrw(fd, VIRGO_IOC_GET, 12345, &byte, 1) < 0 && errno == ENOENT,
	      "get nowhere");
	CHECK(vmalloc_(fd, 100, &addr) == 0, "MALLOC");
	CHECK(vrw(fd, VIRGO_IOC_GET, addr + 99, &byte, 2) < 0 &&
	      errno == EINVAL, "past the end");
	CHECK(vrw(fd, VIRGO_IOC_SET, addr, (void *)16, 10) < 0 &&
	      errno == EFAULT, "bad buffer");
	CHECK(vrw(fd, VIRGO_IOC_GET, addr, &byte, (__u64)~0ULL) < 0 &&
	      errno == EINVAL, "huge length");
	CHECK(pread(fd, &byte, 1, addr + 100) < 0 && errno == ENOENT,
	      "pread past");
	CHECK(vfree_(fd, addr + 1) < 0 && errno == EINVAL, "free inside");
	CHECK(vfree_(fd, addr) == 0, "FREE");
	CHECK(vfree_(fd, addr) < 0 && errno == ENOENT, "double free");
	close(fd);
}

static void test_other_fd_and_process(void)
{
	int a = xopen(), b = xopen(), status;
	unsigned char byte = 1;
	__u64 addr;
	pid_t pid;

	CHECK(vmalloc_(a, 4096, &addr) == 0, "MALLOC");
	CHECK(vrw(b, VIRGO_IOC_SET, addr, &byte, 1) < 0 && errno == EPERM,
	      "other fd writes");
	CHECK(pread(b, &byte, 1, addr) < 0 && errno == EPERM,
	      "other fd reads");
	CHECK(vfree_(b, addr) < 0 && errno == EPERM, "other fd frees");

	pid = fork();
	if (pid == 0) {
		int c = xopen();

		_exit(vfree_(c, addr) < 0 && errno == EPERM ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
	      WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "other process frees");
	CHECK(vfree_(a, addr) == 0, "owner frees");
	close(a);
	close(b);
}

static void test_close_frees(void)
{
	struct virgo_ioc_stat st;
	__u64 addr;
	int fd = xopen(), probe;
	int i;

	for (i = 0; i < 5; i++)
		CHECK(vmalloc_(fd, 100000, &addr) == 0, "MALLOC %d", i);
	close(fd);
	probe = xopen();
	CHECK(ioctl(probe, VIRGO_IOC_STAT, &st) == 0, "STAT");
	CHECK(st.allocations == 0 && st.bytes == 0,
	      "left after close: %llu", (unsigned long long)st.allocations);
	close(probe);
}

/* VIRGO_MALLOC_F_USER: owned by the user, not the fd; outlives it. */
static void test_user_owned(void)
{
	struct virgo_ioc_malloc m = {
		.size = 300000, .flags = VIRGO_MALLOC_F_USER,
	};
	struct virgo_ioc_rw rw;
	char in[64] = "owned by the user", out[64] = "";
	int a = xopen(), b;

	CHECK(ioctl(a, VIRGO_IOC_MALLOC, &m) == 0 && m.addr, "F_USER MALLOC");
	rw = (struct virgo_ioc_rw){ .addr = m.addr + 262140,
				    .buf = (uintptr_t)in, .len = sizeof(in) };
	CHECK(ioctl(a, VIRGO_IOC_SET, &rw) == 0, "F_USER SET");
	close(a);
	b = xopen();
	rw.buf = (uintptr_t)out;
	CHECK(ioctl(b, VIRGO_IOC_GET, &rw) == 0 && !memcmp(in, out, 64),
	      "F_USER data survives close, read from another fd");
	CHECK(vfree_(b, m.addr) == 0, "F_USER freed from another fd");
	CHECK(vfree_(b, m.addr) < 0 && errno == ENOENT, "F_USER gone");
	close(b);
}

/* Nothing that cannot be allocated gets near the allocator. */
static void test_huge(void)
{
	struct virgo_ioc_malloc m = { .size = 1ULL << 46 };
	struct virgo_ioc_stat st;
	int fd = xopen();

	CHECK(ioctl(fd, VIRGO_IOC_MALLOC, &m) < 0 && errno == ENOMEM,
	      "64 TiB refused");
	m = (struct virgo_ioc_malloc){ .size = 1ULL << 46,
				       .flags = VIRGO_MALLOC_F_USER };
	CHECK(ioctl(fd, VIRGO_IOC_MALLOC, &m) < 0 && errno == ENOMEM,
	      "64 TiB F_USER refused");
	CHECK(ioctl(fd, VIRGO_IOC_STAT, &st) == 0 && st.fd_allocations == 0,
	      "nothing left");
	close(fd);
}

/*
 * Replicas per allocation: 1 always works; 2 works with two peers or more
 * (every byte then reads back) and is ENOSPC with one; unknown flag bits
 * are EINVAL.
 */
static void test_replicas(void)
{
	struct virgo_ioc_malloc m = { .size = 3 * 65536 + 5,
				      .flags = VIRGO_MALLOC_REPLICAS(1) };
	unsigned char in[4096], out[4096];
	int fd = xopen(), r;

	CHECK(ioctl(fd, VIRGO_IOC_MALLOC, &m) == 0, "replicas 1");
	CHECK(vfree_(fd, m.addr) == 0, "free replicas 1");
	for (r = 2; r <= 3; r++) {
		m = (struct virgo_ioc_malloc){
			.size = 3 * 65536 + 5,
			.flags = VIRGO_MALLOC_REPLICAS(r) | VIRGO_MALLOC_F_USER,
		};
		if (ioctl(fd, VIRGO_IOC_MALLOC, &m) < 0) {
			CHECK(errno == ENOSPC, "replicas %d: only ENOSPC", r);
			continue;
		}
		fill(in, sizeof(in), r);
		CHECK(vrw(fd, VIRGO_IOC_SET, m.addr + 65536 - 100, in,
			  sizeof(in)) == 0, "write, replicas %d", r);
		CHECK(vrw(fd, VIRGO_IOC_GET, m.addr + 65536 - 100, out,
			  sizeof(out)) == 0 && !memcmp(in, out, sizeof(in)),
		      "read back, replicas %d", r);
		CHECK(vfree_(fd, m.addr) == 0, "free replicas %d", r);
	}
	m = (struct virgo_ioc_malloc){ .size = 10, .flags = 1U << 10 };
	CHECK(ioctl(fd, VIRGO_IOC_MALLOC, &m) < 0 && errno == EINVAL,
	      "unknown flag bit");
	close(fd);
}

#define PARAMS "/sys/module/virgo/parameters/"

static int param_set(const char *name, const char *val)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), PARAMS "%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

static void set_limits(const char *gid, const char *bytes, const char *allocs)
{
	CHECK(!param_set("syscall_gid", gid) &&
	      !param_set("user_max_bytes", bytes) &&
	      !param_set("user_max_allocs", allocs),
	      "set parameters %s %s %s", gid, bytes, allocs);
}

/*
 * A file's allocations are charged to the uid that opened it (here root,
 * bound once the limits are set), with VIRGO_MALLOC_F_USER ones of the
 * same uid; a free, and closing the file, give them back.
 */
static void test_limits(void)
{
	struct virgo_ioc_malloc m = { .size = 100,
				      .flags = VIRGO_MALLOC_F_USER };
	__u64 a1, a2, a3;
	int a = xopen(), b;

	set_limits("-1", "1048576", "2");
	CHECK(vmalloc_(a, 100, &a1) == 0 && vmalloc_(a, 100, &a2) == 0,
	      "2 allocations within user_max_allocs 2");
	CHECK(vmalloc_(a, 100, &a3) < 0 && errno == EDQUOT,
	      "3rd over user_max_allocs");
	CHECK(ioctl(a, VIRGO_IOC_MALLOC, &m) < 0 && errno == EDQUOT,
	      "F_USER counts for the same uid");
	CHECK(vfree_(a, a2) == 0, "FREE");
	CHECK(vmalloc_(a, 100, &a2) == 0, "count released after free");
	CHECK(vfree_(a, a2) == 0, "FREE");
	CHECK(vmalloc_(a, 1048576 - 99, &a2) < 0 && errno == EDQUOT,
	      "bytes over user_max_bytes");
	CHECK(vmalloc_(a, 1048576 - 100, &a2) == 0,
	      "bytes up to user_max_bytes");
	close(a);
	b = xopen();
	CHECK(vmalloc_(b, 1048576 - 100, &a1) == 0 &&
	      vmalloc_(b, 100, &a2) == 0, "everything released on close");
	close(b);
	set_limits("-1", "0", "0");
}

/*
 * Outside syscall_gid, without CAP_SYS_ADMIN: EACCES, even on a
 * descriptor root opened; inside: allowed.  The child inherits the
 * descriptor, so the device's mode does not matter.
 */
static void test_access(void)
{
	struct virgo_ioc_stat st;
	int status, i, fd;
	pid_t pid;

	for (i = 0; i < 3; i++) {
		/* syscall_gid: none, another group, the child's group */
		set_limits(i == 0 ? "-1" : i == 1 ? "2000" : "1000", "0", "0");
		fd = xopen();
		pid = fork();
		if (pid == 0) {
			struct virgo_ioc_malloc m = {
				.size = 100, .flags = VIRGO_MALLOC_F_USER,
			};
			int want = i == 2 ? 0 : EACCES, e1, e2;
			__u64 addr;

			if (setresgid(1000, 1000, 1000) ||
			    setresuid(1000, 1000, 1000))
				_exit(2);
			e1 = vmalloc_(fd, 100, &addr) ? errno : 0;
			e2 = ioctl(fd, VIRGO_IOC_MALLOC, &m) ? errno : 0;
			if (!e2 && vfree_(fd, m.addr))
				e2 = -1;
			_exit(e1 == want && e2 == want ? 0 : 1);
		}
		CHECK(pid > 0 && waitpid(pid, &status, 0) == pid &&
		      WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "uid 1000, syscall_gid case %d (want %s)", i,
		      i == 2 ? "allowed" : "EACCES");
		CHECK(ioctl(fd, VIRGO_IOC_STAT, &st) == 0 &&
		      st.fd_allocations == (i == 2), "fd allocations %llu",
		      (unsigned long long)st.fd_allocations);
		close(fd);
	}
	set_limits("-1", "0", "0");
}

/*
 * Right after boot the peers may not be reachable yet (in the UML kernel
 * the built-in client starts before the built-in server and backs off):
 * wait up to 30 s for a malloc to succeed before testing anything.
 */
static void wait_for_peers(void)
{
	int fd = xopen(), i;
	__u64 addr;

	for (i = 0; i < 300; i++) {
		if (!vmalloc_(fd, 1, &addr)) {
			vfree_(fd, addr);
			break;
		}
		usleep(100 * 1000);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		dev = argv[1];
	srand(42);
	wait_for_peers();
	test_roundtrip();
	test_bad_input();
	test_efault_moves_nothing();
	test_large_unaligned();
	test_other_fd_and_process();
	test_user_owned();
	test_huge();
	test_replicas();
	test_limits();
	test_access();
	test_close_frees();
	printf("virgo_dev_test: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
