/* SPDX-License-Identifier: LGPL-2.1 */
/*
 * libvirgo: user-space access to virgo, kernel memory spread across many
 * machines.
 *
 * Link with -lvirgo (pkg-config --cflags --libs libvirgo).  The library
 * reaches virgo.ko through the virgo system calls (numbers 1000-1003, see
 * <linux/virgo.h>) when the kernel has them, else through /dev/virgo.
 * Either way an allocation belongs to the user: to the effective user id
 * of the caller (as seen from the initial user namespace), checked at
 * every call.  Every process of that user may write, read and free it,
 * every other user, root included, gets EPERM, and it lives until it is
 * freed or virgo.ko is unloaded (like a SysV shared memory segment).
 * Exiting does not free it.
 *
 * Every function is thread-safe and may be called right after fork().
 * The first call chooses the backend (see virgo_backend()); the device,
 * when used, is opened once, O_CLOEXEC, and stays open for the life of
 * the process (so virgo.ko cannot be unloaded meanwhile).
 *
 * Every function that returns int returns 0 on success, or -1 with errno
 * set.  Errors every one of them may report:
 *
 *   ENODEV  no backend: no virgo system calls and no /dev/virgo (virgo.ko
 *           not loaded), or VIRGO_BACKEND names an unknown backend
 *   ENOSYS  the system call backend is in use (or forced with
 *           VIRGO_BACKEND=syscall) and virgo.ko is not loaded, or the
 *           kernel has no virgo system calls
 *   EACCES  /dev/virgo exists but may not be opened by this process (it is
 *           mode 0600, root only, by default)
 */
#ifndef _LIBVIRGO_H
#define _LIBVIRGO_H

#include <stddef.h>
#include <stdint.h>

#include <linux/virgo.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A VIRGO address: a 64-bit number, never a pointer and never 0, that
 * names one byte of an allocation.  The first address of an allocation
 * is page aligned; every byte up to first + size - 1 is addressable.
 */
typedef uint64_t virgo_addr_t;

/*
 * NAME
 *	virgo_malloc - allocate memory on the virgo peers
 *
 * SYNOPSIS
 *	int virgo_malloc(size_t size, virgo_addr_t *addr);
 *
 * DESCRIPTION
 *	Allocates size bytes, cut into chunks placed on the peers of
 *	virgo.ko, and stores the allocation's first VIRGO address in *addr.
 *	The memory reads as zeroes until written.  The allocation belongs to
 *	the caller's effective user id and lives until virgo_free() (by any
 *	process of that user) or until virgo.ko is unloaded.
 *
 * RETURN VALUE
 *	0 on success; -1 with errno set on error, and *addr is unchanged.
 *
 * ERRORS
 *	EINVAL	size is 0, or (device backend) virgo.ko is older than
 *		VIRGO_MALLOC_F_USER and refuses the flag
 *	EFAULT	addr is NULL or not writable
 *	ENOMEM	size is too large, or memory ran out (here or on a peer)
 *	ENOSPC	no reachable peer has room for a chunk
 *	ENODEV	virgo.ko has no peers configured (or no backend, see above)
 *	EIO	a peer failed during the allocation; nothing was allocated
 *	ETIMEDOUT  a peer did not answer in time; nothing was allocated
 */
int virgo_malloc(size_t size, virgo_addr_t *addr);

/* The most copies of a chunk virgo.ko keeps (its replicas parameter). */
#define VIRGO_MAX_REPLICAS	3

/*
 * NAME
 *	virgo_malloc_replicas - allocate with a given number of copies
 *
 * SYNOPSIS
 *	int virgo_malloc_replicas(size_t size, unsigned int replicas,
 *				  virgo_addr_t *addr);
 *
 * DESCRIPTION
 *	As virgo_malloc(), but every chunk of the allocation is kept on
 *	replicas distinct peers (and, where the peers carry failure-domain
 *	labels, on distinct domains first), whatever virgo.ko's replicas
 *	parameter says: a write goes to every copy, a read to one and to
 *	the next when it fails, and a copy lost with its peer is re-created
 *	on another (docs/operations.md, "Replicas").  replicas 0 is
 *	virgo_malloc(): virgo.ko's default.  Every byte is lent replicas
 *	times.  The allocation belongs to the user as with virgo_malloc();
 *	with the system call backend (which has no flags) this one call goes
 *	through /dev/virgo.
 *
 * RETURN VALUE
 *	0 on success; -1 with errno set on error, and *addr is unchanged.
 *
 * ERRORS
 *	As virgo_malloc(), and:
 *	EINVAL	replicas is over VIRGO_MAX_REPLICAS (3), or virgo.ko is
 *		older than per-allocation replicas and refuses the flag
 *	ENOSPC	fewer than replicas reachable peers have room for a chunk
 *	ENODEV, EACCES	(system call backend) /dev/virgo is missing or may
 *		not be opened by this process
 */
int virgo_malloc_replicas(size_t size, unsigned int replicas,
			  virgo_addr_t *addr);

/*
 * NAME
 *	virgo_free - free an allocation
 *
 * SYNOPSIS
 *	int virgo_free(virgo_addr_t addr);
 *
 * DESCRIPTION
 *	Frees the allocation whose first VIRGO address is addr and releases
 *	its chunks on the peers.
 *
 * RETURN VALUE
 *	0 on success; -1 with errno set on error.
 *
 * ERRORS
 *	ENOENT	no allocation at addr (never allocated, already freed, 0)
 *	EINVAL	addr lies inside an allocation but is not its first address
 *	EPERM	the allocation belongs to another user
 */
int virgo_free(virgo_addr_t addr);

/*
 * NAME
 *	virgo_set, virgo_get - write and read an allocation
 *
 * SYNOPSIS
 *	int virgo_set(virgo_addr_t addr, const void *buf, size_t len);
 *	int virgo_get(virgo_addr_t addr, void *buf, size_t len);
 *
 * DESCRIPTION
 *	virgo_set() copies len bytes from buf to the VIRGO addresses
 *	[addr, addr + len); virgo_get() copies len bytes from there to buf.
 *	addr may be any address inside an allocation; the whole range must
 *	lie inside that one allocation.  The data is binary: no terminator,
 *	no alignment.  The range is checked before any byte moves; on an
 *	EIO or ETIMEDOUT some of the bytes may have been written (virgo_set)
 *	or buf may hold partial data (virgo_get).  A len of 0 does nothing.
 *
 * RETURN VALUE
 *	0 on success; -1 with errno set on error.
 *
 * ERRORS
 *	ENOENT	addr is not inside any allocation
 *	EINVAL	[addr, addr + len) runs past the end of the allocation, or
 *		len is larger than the kernel moves in one call (about 2 GiB)
 *	EPERM	the allocation belongs to another user
 *	EFAULT	buf is not a readable (virgo_set) or writable (virgo_get)
 *		buffer of len bytes
 *	EIO	a peer holding part of the range failed or was lost
 *	ETIMEDOUT  a peer did not answer in time
 *	ENOMEM	a peer or the local kernel ran out of memory
 */
int virgo_set(virgo_addr_t addr, const void *buf, size_t len);
int virgo_get(virgo_addr_t addr, void *buf, size_t len);

/*
 * NAME
 *	virgo_backend - the way the library reaches virgo.ko
 *
 * SYNOPSIS
 *	const char *virgo_backend(void);
 *
 * DESCRIPTION
 *	Chooses the backend if no call has yet, and names it:
 *
 *	"syscall"  the virgo system calls: the kernel has them and virgo.ko
 *		   is loaded (a probe, virgo_free(0) as a system call, failed
 *		   with something other than ENOSYS)
 *	"device"   /dev/virgo, opened O_RDWR | O_CLOEXEC, allocations made
 *		   with VIRGO_MALLOC_F_USER (owned by the user, as above)
 *	"none"	   neither: the calls fail (ENODEV, EACCES, ...) and the
 *		   choice is made again at the next call
 *
 *	Once "syscall" or "device" has been chosen, it is kept for the life
 *	of the process.  The environment variable VIRGO_BACKEND forces one:
 *	"syscall" (no probe; the calls fail with ENOSYS where the system
 *	calls are missing) or "device"; "auto" or empty is the default
 *	choice; anything else makes every call fail with ENODEV.
 *
 * RETURN VALUE
 *	A static string: "syscall", "device" or "none".  Never NULL.
 */
const char *virgo_backend(void);

/*
 * NAME
 *	virgo_stat - state of the virgo client
 *
 * SYNOPSIS
 *	int virgo_stat(struct virgo_ioc_stat *st);
 *
 * DESCRIPTION
 *	Fills *st (see <linux/virgo.h>) with VIRGO_IOC_STAT of /dev/virgo:
 *	ABI version, peers configured and connected, chunk size, and the
 *	number of live allocations and their bytes, all owners.  The
 *	fd_allocations and fd_bytes fields describe allocations owned by
 *	the library's descriptor; allocations of this library are owned by
 *	the user, not the descriptor, so expect them to be 0.  This works
 *	with either backend: it opens /dev/virgo (once) if the library has
 *	not yet.
 *
 * RETURN VALUE
 *	0 on success; -1 with errno set on error.
 *
 * ERRORS
 *	EFAULT	st is NULL or not writable
 *	ENODEV	/dev/virgo does not exist (virgo.ko not loaded)
 *	EACCES	/dev/virgo may not be opened by this process
 */
int virgo_stat(struct virgo_ioc_stat *st);

#ifdef __cplusplus
}
#endif

#endif /* _LIBVIRGO_H */
