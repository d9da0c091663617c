/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * virgo: kernel memory spread across many machines -- the user ABI.
 *
 * /dev/virgo (a misc device of virgo.ko) takes the ioctls below;
 * pread()/pwrite() at a VIRGO address read and write an allocation.
 * Every structure has the same layout for 32- and 64-bit callers: only
 * fixed-size types, user pointers carried in __u64, explicit padding
 * that must be zero.
 *
 * Ownership.  An allocation made through a file descriptor belongs to
 * it: another descriptor (or process) gets EPERM, and it is freed when
 * the last reference to the open file goes away.  With
 * VIRGO_MALLOC_F_USER, and always through the syscalls, an allocation
 * belongs to the caller's effective user id (as seen from the initial
 * user namespace) instead: any process of that user may write, read and
 * free it, through the syscalls or any /dev/virgo descriptor, every other
 * user (root included) gets EPERM, and it lives until it is freed or
 * virgo.ko is unloaded, like a SysV shared memory segment.
 */
#ifndef _UAPI_LINUX_VIRGO_H
#define _UAPI_LINUX_VIRGO_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VIRGO_ABI_VERSION	1

/*
 * System calls, on x86_64 kernels carrying patches/ of the virgo tree
 * (elsewhere: ENOSYS).  They fail with ENOSYS while virgo.ko is not
 * loaded.  Numbers 548 and up are free for native x86_64 use; 1000 keeps
 * well clear of the numbers upstream hands out (450 in Linux 6.1).
 *
 *   long virgo_malloc(unsigned long size, __u64 *addr);
 *	allocates size bytes, stores the first VIRGO address at *addr
 *   long virgo_free(__u64 addr);
 *   long virgo_set(__u64 addr, const void *buf, unsigned long len);
 *   long virgo_get(__u64 addr, void *buf, unsigned long len);
 *
 * All return 0 or -1 with errno set, as the ioctls below.  A malloc,
 * through the syscalls or VIRGO_IOC_MALLOC, also fails with EACCES when
 * the caller has neither CAP_SYS_ADMIN nor membership of virgo.ko's
 * syscall_gid group, with EDQUOT when the caller's uid would hold more
 * than the user_max_bytes or user_max_allocs parameters allow, and with
 * ENOMEM when the size needs more than 2^20 chunks.
 */
#if defined(__x86_64__) && !defined(__ILP32__)
#define __NR_virgo_malloc	1000
#define __NR_virgo_free		1001
#define __NR_virgo_set		1002
#define __NR_virgo_get		1003
#endif

/* virgo_ioc_malloc.flags: owned by the caller's user, not the descriptor */
#define VIRGO_MALLOC_F_USER	0x1U
/*
 * Copies of every chunk, on distinct peers: 1..3 in bits 8-9 of flags;
 * 0 means virgo.ko's replicas parameter.
 */
#define VIRGO_MALLOC_REPLICAS_SHIFT	8
#define VIRGO_MALLOC_REPLICAS_MASK	(0x3U << VIRGO_MALLOC_REPLICAS_SHIFT)
#define VIRGO_MALLOC_REPLICAS(n)	\
	(((__u32)(n) << VIRGO_MALLOC_REPLICAS_SHIFT) &	\
	 VIRGO_MALLOC_REPLICAS_MASK)
#define VIRGO_MALLOC_FLAGS	\
	(VIRGO_MALLOC_F_USER | VIRGO_MALLOC_REPLICAS_MASK)

/*
 * 0xB8 is free in Documentation/userspace-api/ioctl/ioctl-number.rst of
 * Linux 6.1.
 */
#define VIRGO_IOC_MAGIC		0xB8

/**
 * struct virgo_ioc_malloc - VIRGO_IOC_MALLOC
 * @size: in: bytes to allocate (at least 1)
 * @addr: out: the allocation's first VIRGO address (never 0)
 * @flags: in: VIRGO_MALLOC_F_USER and/or VIRGO_MALLOC_REPLICAS(n), or 0
 * @pad: must be 0
 */
struct virgo_ioc_malloc {
	__u64 size;
	__u64 addr;
	__u32 flags;
	__u32 pad;
};

/**
 * struct virgo_ioc_free - VIRGO_IOC_FREE
 * @addr: in: the allocation's first VIRGO address
 */
struct virgo_ioc_free {
	__u64 addr;
};

/**
 * struct virgo_ioc_rw - VIRGO_IOC_SET and VIRGO_IOC_GET
 * @addr: in: any VIRGO address inside an allocation
 * @buf: in: user buffer, as an integer
 * @len: in: bytes; [addr, addr + len) must lie inside the allocation
 */
struct virgo_ioc_rw {
	__u64 addr;
	__u64 buf;
	__u64 len;
};

/**
 * struct virgo_ioc_stat - VIRGO_IOC_STAT
 * @abi_version: out: VIRGO_ABI_VERSION
 * @nr_peers: out: peers configured
 * @peers_up: out: peers with a live connection
 * @chunk_size: out: bytes per chunk
 * @allocations: out: live allocations, all owners
 * @bytes: out: bytes in them
 * @fd_allocations: out: live allocations of this file descriptor
 * @fd_bytes: out: bytes in them
 */
struct virgo_ioc_stat {
	__u32 abi_version;
	__u32 nr_peers;
	__u32 peers_up;
	__u32 chunk_size;
	__u64 allocations;
	__u64 bytes;
	__u64 fd_allocations;
	__u64 fd_bytes;
};

#define VIRGO_IOC_MALLOC \
	_IOWR(VIRGO_IOC_MAGIC, 1, struct virgo_ioc_malloc)
#define VIRGO_IOC_FREE		_IOW(VIRGO_IOC_MAGIC, 2, struct virgo_ioc_free)
#define VIRGO_IOC_SET		_IOW(VIRGO_IOC_MAGIC, 3, struct virgo_ioc_rw)
#define VIRGO_IOC_GET		_IOW(VIRGO_IOC_MAGIC, 4, struct virgo_ioc_rw)
#define VIRGO_IOC_STAT		_IOR(VIRGO_IOC_MAGIC, 5, struct virgo_ioc_stat)

#endif /* _UAPI_LINUX_VIRGO_H */
