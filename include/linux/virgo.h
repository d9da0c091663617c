/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo: kernel memory spread across many machines.
 *
 * The in-kernel interface of the virgo client module (virgo.ko), exported
 * GPL-only.  Memory from virgo_malloc() lives on remote peers; it is
 * reached only through virgo_set() and virgo_get(), at any VIRGO address
 * inside an allocation, any length, binary-safe.  docs/kernel-api.md is
 * the contract; in short:
 *
 *  - Context: every function may sleep (might_sleep()); never call one
 *    from atomic context or with a spinlock held.  Waits for peers are
 *    bounded by rpc_timeout_ms per round of requests and end early, with
 *    -EINTR, on a fatal signal.
 *  - Owners: an allocation belongs to the module that made it.  The plain
 *    functions below are macros that pass THIS_MODULE: another module
 *    cannot free, read or write it (-EPERM).  Allocations a module still
 *    holds when it unloads are freed then, with one warning.
 *  - New memory reads as zeroes until written.
 *  - virgo_set()/virgo_get() with len 0 only check that @addr lies inside
 *    an allocation of the caller (0, -ENOENT or -EPERM).
 *  - A failed virgo_set() may have written some chunks of the range and
 *    not others: the range holds old and new bytes until rewritten.
 *  - virgo_discard() makes a range read as zeroes and gives the memory of
 *    the chunks it covers whole back to the peers (the allocation keeps
 *    its size; a chunk gets memory again when written).  A failed one
 *    leaves old bytes and zeroes.
 *  - Concurrent calls on one allocation are safe; overlapping concurrent
 *    writes leave either one's bytes per chunk piece, unspecified which.
 *    virgo_free() waits for calls in progress on the allocation to end.
 */
#ifndef _LINUX_VIRGO_H
#define _LINUX_VIRGO_H

#include <linux/export.h>
#include <linux/types.h>

struct kvec;
struct module;

/*
 * A VIRGO address: a 64-bit number handed out by the VIRGO address
 * translation table.  It is never a kernel pointer and never 0; the first
 * byte of every allocation is page aligned.
 */
typedef u64 virgo_addr_t;

/**
 * struct virgo_alloc_info - what virgo_stat() tells about an allocation
 * @addr: its first VIRGO address
 * @size: its size in bytes
 * @chunk_size: bytes per chunk (the last chunk may be shorter)
 * @nr_chunks: number of chunks
 * @nr_peers: distinct peers holding a replica of one of its chunks
 */
struct virgo_alloc_info {
	virgo_addr_t addr;
	u64 size;
	u32 chunk_size;
	u32 nr_chunks;
	u32 nr_peers;
};

int __virgo_malloc(struct module *owner, size_t size, virgo_addr_t *addr);
int __virgo_malloc_replicas(struct module *owner, size_t size,
			    unsigned int replicas, virgo_addr_t *addr);
int __virgo_free(struct module *owner, virgo_addr_t addr);
int __virgo_set(struct module *owner, virgo_addr_t addr, const void *buf,
		size_t len);
int __virgo_get(struct module *owner, virgo_addr_t addr, void *buf,
		size_t len);
int __virgo_set_deadline(struct module *owner, virgo_addr_t addr,
			 const void *buf, size_t len, unsigned long deadline);
int __virgo_get_deadline(struct module *owner, virgo_addr_t addr, void *buf,
			 size_t len, unsigned long deadline);
int __virgo_setv_deadline(struct module *owner, virgo_addr_t addr,
			  const struct kvec *vec, unsigned int nvec,
			  unsigned long deadline);
int __virgo_getv_deadline(struct module *owner, virgo_addr_t addr,
			  const struct kvec *vec, unsigned int nvec,
			  unsigned long deadline);
int __virgo_discard(struct module *owner, virgo_addr_t addr, size_t len);
int __virgo_discard_deadline(struct module *owner, virgo_addr_t addr,
			     size_t len, unsigned long deadline);
int __virgo_stat(struct module *owner, virgo_addr_t addr,
		 struct virgo_alloc_info *info);
int __virgo_size(struct module *owner, virgo_addr_t addr, u64 *size);
unsigned int __virgo_free_all(struct module *owner);
u32 virgo_chunk_size(void);
void virgo_memalloc_get(void);
void virgo_memalloc_put(void);

/* The calling module's allocations; see the functions above. */
#define virgo_malloc(size, addr)	__virgo_malloc(THIS_MODULE, size, addr)
#define virgo_malloc_replicas(size, replicas, addr) \
	__virgo_malloc_replicas(THIS_MODULE, size, replicas, addr)
#define virgo_free(addr)		__virgo_free(THIS_MODULE, addr)
#define virgo_set(addr, buf, len)	__virgo_set(THIS_MODULE, addr, buf, len)
#define virgo_get(addr, buf, len)	__virgo_get(THIS_MODULE, addr, buf, len)
#define virgo_set_deadline(addr, buf, len, deadline) \
	__virgo_set_deadline(THIS_MODULE, addr, buf, len, deadline)
#define virgo_get_deadline(addr, buf, len, deadline) \
	__virgo_get_deadline(THIS_MODULE, addr, buf, len, deadline)
#define virgo_setv_deadline(addr, vec, nvec, deadline) \
	__virgo_setv_deadline(THIS_MODULE, addr, vec, nvec, deadline)
#define virgo_getv_deadline(addr, vec, nvec, deadline) \
	__virgo_getv_deadline(THIS_MODULE, addr, vec, nvec, deadline)
#define virgo_discard(addr, len)	__virgo_discard(THIS_MODULE, addr, len)
#define virgo_discard_deadline(addr, len, deadline) \
	__virgo_discard_deadline(THIS_MODULE, addr, len, deadline)
#define virgo_stat(addr, info)		__virgo_stat(THIS_MODULE, addr, info)
#define virgo_size(addr, size)		__virgo_size(THIS_MODULE, addr, size)
#define virgo_free_all()		__virgo_free_all(THIS_MODULE)

/*
 * The same operations on behalf of an owner cookie the caller manages (an
 * open file, a user): an allocation made with a cookie can be freed,
 * written and read only with the same cookie (-EPERM otherwise).  The
 * cookie must be the address of an object the caller owns for as long as
 * its allocations live, so that no one else can use the same value; the
 * caller frees them (virgo_free_all_owned()) before the object goes.
 */
int virgo_malloc_owned(size_t size, const void *owner, virgo_addr_t *addr);
int virgo_free_owned(virgo_addr_t addr, const void *owner);
int virgo_set_owned(virgo_addr_t addr, const void *owner, const void *buf,
		    size_t len);
int virgo_get_owned(virgo_addr_t addr, const void *owner, void *buf,
		    size_t len);
unsigned int virgo_free_all_owned(const void *owner);

#endif /* _LINUX_VIRGO_H */
