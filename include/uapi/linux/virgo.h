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
 * Allocations made through a file descriptor belong to it: another
 * descriptor (or process) gets EPERM, and they are freed when the last
 * reference to the open file goes away.
 */
#ifndef _UAPI_LINUX_VIRGO_H
#define _UAPI_LINUX_VIRGO_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VIRGO_ABI_VERSION	1

/*
 * 0xB8 is free in Documentation/userspace-api/ioctl/ioctl-number.rst of
 * Linux 6.1.
 */
#define VIRGO_IOC_MAGIC		0xB8

/**
 * struct virgo_ioc_malloc - VIRGO_IOC_MALLOC
 * @size: in: bytes to allocate (at least 1)
 * @addr: out: the allocation's first VIRGO address (never 0)
 * @flags: in: must be 0
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
