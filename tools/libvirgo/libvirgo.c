// SPDX-License-Identifier: LGPL-2.1
/*
 * libvirgo: virgo_malloc(), virgo_free(), virgo_set() and virgo_get() for
 * user space, over the virgo system calls or /dev/virgo (libvirgo.h).
 *
 * The backend is chosen at the first call without a lock: racing threads
 * may each probe and open the device, one of them publishes its choice
 * with a compare-and-exchange and the others adopt it (closing a
 * descriptor they opened in vain).  Nothing is held across fork(), so a
 * child may call in at once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libvirgo.h"

#define LV_DEVICE_PATH	"/dev/virgo"

enum lv_backend {
	LV_NONE,
	LV_SYSCALL,
	LV_DEVICE,
};

/* The chosen backend, LV_NONE until a choice succeeded; then fixed. */
static int lv_state = LV_NONE;
/* /dev/virgo, open for the device backend (or left by a lost race). */
static int lv_fd = -1;

static int lv_load(int *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Open /dev/virgo; a missing device means virgo.ko is not loaded. */
static int lv_open_device(void)
{
	int fd = open(LV_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	if (fd < 0 && (errno == ENOENT || errno == ENXIO || errno == ENODEV))
		errno = ENODEV;
	return fd;
}

#ifdef __NR_virgo_free
/*
 * Does the kernel have the virgo system calls, with virgo.ko loaded?
 * Freeing address 0 fails with ENOENT if so (0 is never an address).
 * ENOSYS: no system call, or no module behind it.  EPERM cannot come from
 * virgo (ENOENT is checked first) but from a seccomp filter or an LSM
 * that blocks unknown system calls: unusable too.
 */
static int lv_have_syscalls(void)
{
	int saved = errno, ret;

	ret = syscall(__NR_virgo_free, (virgo_addr_t)0) == 0 ||
	      (errno != ENOSYS && errno != EPERM);
	errno = saved;
	return ret;
}
#else
static int lv_have_syscalls(void)
{
	return 0;
}
#endif

/* Make the choice; on failure return LV_NONE with errno set. */
static int lv_select(int *fd)
{
	const char *env = getenv("VIRGO_BACKEND");
	int force_device = 0;

	*fd = -1;
	if (env && !strcmp(env, "syscall"))
		return LV_SYSCALL;
	if (env && !strcmp(env, "device")) {
		force_device = 1;
	} else if (env && *env && strcmp(env, "auto")) {
		errno = ENODEV;
		return LV_NONE;
	}
	if (!force_device && lv_have_syscalls())
		return LV_SYSCALL;
	*fd = lv_open_device();
	return *fd < 0 ? LV_NONE : LV_DEVICE;
}

/* The backend to use now; LV_NONE with errno set if there is none. */
static int lv_backend(void)
{
	int state = lv_load(&lv_state), want, fd, none = -1;

	if (state != LV_NONE)
		return state;
	want = lv_select(&fd);
	if (want == LV_NONE)
		return LV_NONE;
	if (want == LV_DEVICE &&
	    !__atomic_compare_exchange_n(&lv_fd, &none, fd, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		close(fd);	/* another thread's descriptor is in place */
	state = LV_NONE;
	if (__atomic_compare_exchange_n(&lv_state, &state, want, 0,
					__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return want;
	return state;		/* another thread chose first */
}

static int lv_ioctl(unsigned long cmd, void *arg)
{
	return ioctl(lv_load(&lv_fd), cmd, arg) ? -1 : 0;
}

/* The system calls, by index. */
enum lv_call {
	LV_MALLOC,
	LV_FREE,
	LV_SET,
	LV_GET,
};

static int lv_syscall(enum lv_call call, unsigned long a, unsigned long b,
		      unsigned long c)
{
#ifdef __NR_virgo_malloc
	static const long nr[] = {
		[LV_MALLOC] = __NR_virgo_malloc,
		[LV_FREE] = __NR_virgo_free,
		[LV_SET] = __NR_virgo_set,
		[LV_GET] = __NR_virgo_get,
	};

	return syscall(nr[call], a, b, c) ? -1 : 0;
#else
	(void)call;
	(void)a;
	(void)b;
	(void)c;
	errno = ENOSYS;
	return -1;
#endif
}

int virgo_malloc(size_t size, virgo_addr_t *addr)
{
	struct virgo_ioc_malloc m = {
		.size = size,
		.flags = VIRGO_MALLOC_F_USER,
	};

	if (!addr) {
		errno = EFAULT;
		return -1;
	}
	switch (lv_backend()) {
	case LV_SYSCALL:
		return lv_syscall(LV_MALLOC, size,
				  (unsigned long)addr, 0);
	case LV_DEVICE:
		if (lv_ioctl(VIRGO_IOC_MALLOC, &m))
			return -1;
		*addr = m.addr;
		return 0;
	}
	return -1;
}

int virgo_malloc_replicas(size_t size, unsigned int replicas,
			  virgo_addr_t *addr)
{
	struct virgo_ioc_malloc m = {
		.size = size,
		.flags = VIRGO_MALLOC_F_USER | VIRGO_MALLOC_REPLICAS(replicas),
	};
	int fd, ret, saved;

	if (!replicas)
		return virgo_malloc(size, addr);
	if (replicas > VIRGO_MAX_REPLICAS) {
		errno = EINVAL;
		return -1;
	}
	if (!addr) {
		errno = EFAULT;
		return -1;
	}
	switch (lv_backend()) {
	case LV_DEVICE:
		if (lv_ioctl(VIRGO_IOC_MALLOC, &m))
			return -1;
		*addr = m.addr;
		return 0;
	case LV_SYSCALL:
		/*
		 * The system call has no flags: this one allocation goes
		 * through the device, owned by the user all the same.
		 */
		fd = lv_open_device();
		if (fd < 0)
			return -1;
		ret = ioctl(fd, VIRGO_IOC_MALLOC, &m) ? -1 : 0;
		saved = errno;
		close(fd);
		errno = saved;
		if (!ret)
			*addr = m.addr;
		return ret;
	}
	return -1;
}

int virgo_free(virgo_addr_t addr)
{
	struct virgo_ioc_free f = { .addr = addr };

	switch (lv_backend()) {
	case LV_SYSCALL:
		return lv_syscall(LV_FREE, addr, 0, 0);
	case LV_DEVICE:
		return lv_ioctl(VIRGO_IOC_FREE, &f);
	}
	return -1;
}

static int lv_rw(int write, virgo_addr_t addr, const void *buf, size_t len)
{
	struct virgo_ioc_rw rw = {
		.addr = addr,
		.buf = (uintptr_t)buf,
		.len = len,
	};

	switch (lv_backend()) {
	case LV_SYSCALL:
		return lv_syscall(write ? LV_SET : LV_GET,
				  addr, (unsigned long)buf, len);
	case LV_DEVICE:
		return lv_ioctl(write ? VIRGO_IOC_SET : VIRGO_IOC_GET, &rw);
	}
	return -1;
}

int virgo_set(virgo_addr_t addr, const void *buf, size_t len)
{
	return lv_rw(1, addr, buf, len);
}

int virgo_get(virgo_addr_t addr, void *buf, size_t len)
{
	return lv_rw(0, addr, buf, len);
}

const char *virgo_backend(void)
{
	int saved = errno;
	int state = lv_backend();

	errno = saved;
	switch (state) {
	case LV_SYSCALL:
		return "syscall";
	case LV_DEVICE:
		return "device";
	}
	return "none";
}

int virgo_stat(struct virgo_ioc_stat *st)
{
	int fd = lv_load(&lv_fd), ret, saved;

	if (!st) {
		errno = EFAULT;
		return -1;
	}
	if (fd >= 0)
		return ioctl(fd, VIRGO_IOC_STAT, st) ? -1 : 0;
	/*
	 * Not using the device: open it just for this, so that the library
	 * never pins virgo.ko for the system call backend.
	 */
	fd = lv_open_device();
	if (fd < 0)
		return -1;
	ret = ioctl(fd, VIRGO_IOC_STAT, st) ? -1 : 0;
	saved = errno;
	close(fd);
	errno = saved;
	return ret;
}
