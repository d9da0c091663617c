/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo: kernel memory spread across many machines.
 *
 * The in-kernel interface of the virgo client module (virgo.ko).  Memory
 * from virgo_malloc() lives on remote peers; it is reached only through
 * virgo_set() and virgo_get(), at any VIRGO address inside an allocation,
 * any length, binary-safe.  All functions may sleep.
 */
#ifndef _LINUX_VIRGO_H
#define _LINUX_VIRGO_H

#include <linux/types.h>

/*
 * A VIRGO address: a 64-bit number handed out by the VIRGO address
 * translation table.  It is never a kernel pointer and never 0; the first
 * byte of every allocation is page aligned.
 */
typedef u64 virgo_addr_t;

int virgo_malloc(size_t size, virgo_addr_t *addr);
int virgo_free(virgo_addr_t addr);
int virgo_set(virgo_addr_t addr, const void *buf, size_t len);
int virgo_get(virgo_addr_t addr, void *buf, size_t len);

/*
 * The same operations on behalf of an owner (an open file of /dev/virgo, a
 * user for the syscalls): an allocation made with an owner can be freed,
 * written and read only with the same owner (-EPERM otherwise).  The plain
 * functions above use the kernel's owner, NULL.
 */
int virgo_malloc_owned(size_t size, const void *owner, virgo_addr_t *addr);
int virgo_free_owned(virgo_addr_t addr, const void *owner);
int virgo_set_owned(virgo_addr_t addr, const void *owner, const void *buf,
		    size_t len);
int virgo_get_owned(virgo_addr_t addr, const void *owner, void *buf,
		    size_t len);
unsigned int virgo_free_all_owned(const void *owner);

#endif /* _LINUX_VIRGO_H */
