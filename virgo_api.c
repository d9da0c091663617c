// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: the in-kernel API other modules call (include/linux/virgo.h).
 *
 * Each function acts on the module's client instance, given once by
 * virgo_api_init().  The plain functions (virgo_malloc() and friends,
 * macros over the __virgo_*() below) pass the calling module as the owner
 * of the allocation; the module notifier frees what a module still holds
 * when it goes away.  The *_owned() functions take an owner cookie the
 * caller manages.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/notifier.h>

#include "virgo_api.h"

/* The module's client: set by virgo_api_init(), cleared by virgo_api_exit(). */
static struct virgo_client *api_client;

/**
 * __virgo_malloc() - allocate memory that lives on the cloud peers
 * @owner: the calling module (virgo_malloc() passes THIS_MODULE)
 * @size: bytes, at least 1
 * @addr: set to the allocation's first VIRGO address (never 0)
 *
 * The memory reads as zeroes until written.  Splits it into chunks of
 * virgo_chunk_size() bytes and places them on the peers, one request per
 * peer in parallel; all or nothing.  May sleep.
 *
 * Return: 0; -EINVAL (size 0, @addr NULL); -ENOMEM (no memory here, or
 * larger than the table allows); -ENODEV (no peers); -ENOSPC (no
 * reachable peer with room); -EIO or -ETIMEDOUT (a peer failed; nothing
 * stays allocated); -EINTR (fatal signal; nothing stays allocated).
 */
int __virgo_malloc(struct module *owner, size_t size, virgo_addr_t *addr)
{
	return vc_malloc(api_client, size, owner, addr);
}
EXPORT_SYMBOL_GPL(__virgo_malloc);

/**
 * __virgo_malloc_replicas() - __virgo_malloc() with a replica count
 * @owner: the calling module (virgo_malloc_replicas() passes THIS_MODULE)
 * @size: bytes, at least 1
 * @replicas: copies of every chunk, 1..3, each on a distinct peer (and on
 *	distinct failure domains while there are enough); 0: the client's
 *	replicas parameter
 * @addr: set to the allocation's first VIRGO address
 *
 * Writes go to every copy; a read is served by one and fails over to the
 * others.  A copy that misses a write another copy got is stale and never
 * read again.
 *
 * Return: as __virgo_malloc(); -EINVAL for @replicas over 3, -ENOSPC when
 * fewer than @replicas peers can take a chunk.
 */
int __virgo_malloc_replicas(struct module *owner, size_t size,
			    unsigned int replicas, virgo_addr_t *addr)
{
	return vc_malloc_replicas(api_client, size, replicas, owner, addr);
}
EXPORT_SYMBOL_GPL(__virgo_malloc_replicas);

/**
 * __virgo_free() - free an allocation
 * @owner: the calling module (virgo_free() passes THIS_MODULE)
 * @addr: the address virgo_malloc() returned
 *
 * Waits for calls in progress on the allocation, then frees its chunks on
 * the peers.  May sleep.
 *
 * Return: 0, -ENOENT (no such allocation), -EINVAL (not its first
 * address), -EPERM (another owner's), -ENOMEM (the table could not be
 * changed; the allocation stays), or a peer's error (the allocation is
 * freed anyway).
 */
int __virgo_free(struct module *owner, virgo_addr_t addr)
{
	return vc_free(api_client, addr, owner);
}
EXPORT_SYMBOL_GPL(__virgo_free);

/**
 * __virgo_set() - write into an allocation
 * @owner: the calling module (virgo_set() passes THIS_MODULE)
 * @addr: any VIRGO address inside an allocation
 * @buf: the bytes to write
 * @len: how many; the range must lie inside the allocation (0: only check
 *	@addr)
 *
 * All pieces are sent before any reply is awaited.  On error some chunks
 * of the range may hold the new bytes and others the old.  May sleep.
 *
 * Return: 0, -ENOENT, -EPERM, -EINVAL (range outside, @buf NULL), -EIO (a
 * peer failed or its chunks were lost), -ETIMEDOUT, -EINTR.
 */
int __virgo_set(struct module *owner, virgo_addr_t addr, const void *buf,
		size_t len)
{
	return vc_set(api_client, addr, owner, buf, len);
}
EXPORT_SYMBOL_GPL(__virgo_set);

/**
 * __virgo_get() - read from an allocation
 * @owner: the calling module (virgo_get() passes THIS_MODULE)
 * @addr: any VIRGO address inside an allocation
 * @buf: where to put the bytes
 * @len: how many; the range must lie inside the allocation (0: only check
 *	@addr)
 *
 * On error @buf holds an unspecified mix of read and untouched bytes.
 * May sleep.
 *
 * Return: as __virgo_set().
 */
int __virgo_get(struct module *owner, virgo_addr_t addr, void *buf,
		size_t len)
{
	return vc_get(api_client, addr, owner, buf, len);
}
EXPORT_SYMBOL_GPL(__virgo_get);

/**
 * __virgo_set_deadline() - __virgo_set() that ends by a deadline
 * @owner: the calling module
 * @addr: any VIRGO address inside an allocation
 * @buf: the bytes to write
 * @len: how many
 * @deadline: jiffies; no request is sent and no reply awaited after it
 *
 * Return: as __virgo_set(); -ETIMEDOUT once @deadline passed (the range
 * may then be partly written).
 */
int __virgo_set_deadline(struct module *owner, virgo_addr_t addr,
			 const void *buf, size_t len, unsigned long deadline)
{
	return vc_rw_deadline(api_client, addr, owner, (void *)buf, len, true,
			      deadline);
}
EXPORT_SYMBOL_GPL(__virgo_set_deadline);

/**
 * __virgo_get_deadline() - __virgo_get() that ends by a deadline
 * @owner: the calling module
 * @addr: any VIRGO address inside an allocation
 * @buf: where to put the bytes
 * @len: how many
 * @deadline: jiffies; no request is sent and no reply awaited after it
 *
 * Return: as __virgo_set_deadline().
 */
int __virgo_get_deadline(struct module *owner, virgo_addr_t addr, void *buf,
			 size_t len, unsigned long deadline)
{
	return vc_rw_deadline(api_client, addr, owner, buf, len, false,
			      deadline);
}
EXPORT_SYMBOL_GPL(__virgo_get_deadline);

/**
 * __virgo_setv_deadline() - write a vector of buffers into an allocation
 * @owner: the calling module (virgo_setv_deadline() passes THIS_MODULE)
 * @addr: any VIRGO address inside an allocation
 * @vec: the buffers; their bytes, one after the other, go to @addr on
 * @nvec: how many buffers (at most UIO_MAXIOV)
 * @deadline: jiffies; no request is sent and no reply awaited after it
 *
 * One call moves what would take @nvec virgo_set() calls, with all the
 * requests in flight together: for a caller whose data is scattered over
 * pages (a block device's request).
 *
 * Return: as __virgo_set_deadline(); -EINVAL for a NULL buffer of
 * non-zero length or too many buffers.
 */
int __virgo_setv_deadline(struct module *owner, virgo_addr_t addr,
			  const struct kvec *vec, unsigned int nvec,
			  unsigned long deadline)
{
	return vc_rwv_deadline(api_client, addr, owner, vec, nvec, true,
			       deadline);
}
EXPORT_SYMBOL_GPL(__virgo_setv_deadline);

/**
 * __virgo_getv_deadline() - read from an allocation into a vector of buffers
 * @owner: the calling module (virgo_getv_deadline() passes THIS_MODULE)
 * @addr: any VIRGO address inside an allocation
 * @vec: the buffers, filled one after the other from @addr on
 * @nvec: how many buffers (at most UIO_MAXIOV)
 * @deadline: jiffies; no request is sent and no reply awaited after it
 *
 * The receive threads write the bytes into the buffers: they must be
 * addressable from any thread (not kmap_local()/kmap_atomic() mappings).
 *
 * Return: as __virgo_setv_deadline().
 */
int __virgo_getv_deadline(struct module *owner, virgo_addr_t addr,
			  const struct kvec *vec, unsigned int nvec,
			  unsigned long deadline)
{
	return vc_rwv_deadline(api_client, addr, owner, vec, nvec, false,
			       deadline);
}
EXPORT_SYMBOL_GPL(__virgo_getv_deadline);

/**
 * __virgo_discard() - make a range of an allocation read as zeroes and give
 *	its memory back to the peers
 * @owner: the calling module (virgo_discard() passes THIS_MODULE)
 * @addr: any VIRGO address inside an allocation
 * @len: how many bytes; the range must lie inside the allocation (0: only
 *	check @addr)
 *
 * After success every byte of the range reads as zero.  Each chunk the
 * range covers whole is discarded on every replica: the peer frees its
 * memory, the chunk stays part of the allocation (and of what the peer
 * reserved for it) and gets memory again when next written.  The pieces
 * of the chunks at the edges of the range, and the chunks on a peer that
 * cannot discard (an older server, or one with discard=0), are written
 * with zeroes instead.  Discarding memory never written costs nothing.
 * Concurrent writes to the range leave either their bytes or zeroes per
 * chunk, unspecified which.  May sleep.
 *
 * Return: 0, -ENOENT, -EPERM, -EINVAL (range outside), -ENOMEM, -EIO (a
 * peer failed or its chunks were lost), -ETIMEDOUT, -EINTR.  On error the
 * range holds an unspecified mix of old bytes and zeroes.
 */
int __virgo_discard(struct module *owner, virgo_addr_t addr, size_t len)
{
	return vc_discard(api_client, addr, owner, len, 0);
}
EXPORT_SYMBOL_GPL(__virgo_discard);

/**
 * __virgo_discard_deadline() - __virgo_discard() that ends by a deadline
 * @owner: the calling module (virgo_discard_deadline() passes THIS_MODULE)
 * @addr: any VIRGO address inside an allocation
 * @len: how many bytes
 * @deadline: jiffies; no request is sent and no reply awaited after it
 *
 * Return: as __virgo_discard(); -ETIMEDOUT once @deadline passed (the
 * range may then hold old bytes and zeroes).
 */
int __virgo_discard_deadline(struct module *owner, virgo_addr_t addr,
			     size_t len, unsigned long deadline)
{
	return vc_discard(api_client, addr, owner, len,
			  deadline ? deadline : 1);
}
EXPORT_SYMBOL_GPL(__virgo_discard_deadline);

/**
 * __virgo_stat() - describe the allocation containing an address
 * @owner: the calling module
 * @addr: any VIRGO address inside an allocation
 * @info: filled in: first address, size, chunk size, chunks, peers
 *
 * Return: 0, -EINVAL (@info NULL), -ENOENT, -EPERM, -ENOMEM, or -EINTR
 * (a fatal signal).
 */
int __virgo_stat(struct module *owner, virgo_addr_t addr,
		 struct virgo_alloc_info *info)
{
	might_sleep();
	if (!info)
		return -EINVAL;
	return vc_stat(api_client, addr, owner, info, true);
}
EXPORT_SYMBOL_GPL(__virgo_stat);

/**
 * __virgo_size() - the size of the allocation containing an address
 * @owner: the calling module
 * @addr: any VIRGO address inside an allocation
 * @size: set to its size in bytes
 *
 * Return: 0, -EINVAL (@size NULL), -ENOENT, or -EPERM.
 */
int __virgo_size(struct module *owner, virgo_addr_t addr, u64 *size)
{
	struct virgo_alloc_info info;
	int ret;

	might_sleep();
	if (!size)
		return -EINVAL;
	ret = vc_stat(api_client, addr, owner, &info, false);
	if (!ret)
		*size = info.size;
	return ret;
}
EXPORT_SYMBOL_GPL(__virgo_size);

/**
 * __virgo_free_all() - free every allocation of a module
 * @owner: the calling module
 *
 * Return: the number of allocations freed.
 */
unsigned int __virgo_free_all(struct module *owner)
{
	might_sleep();
	return vc_free_all(api_client, owner, false);
}
EXPORT_SYMBOL_GPL(__virgo_free_all);

/**
 * virgo_chunk_size() - bytes per chunk of new allocations
 *
 * Return: the client's chunk_size.
 */
u32 virgo_chunk_size(void)
{
	return api_client->chunk_size;
}
EXPORT_SYMBOL_GPL(virgo_chunk_size);

/* Serialises api_memalloc_users and the sockets' switch with it. */
static DEFINE_MUTEX(api_memalloc_lock);
static unsigned int api_memalloc_users;

/**
 * virgo_memalloc_get() - let the peer connections use the memory reserves
 *
 * For a caller that writes pages out to free memory through virgo (a swap
 * device on virgo_blk): while at least one caller holds this, every peer
 * socket, and each one connected later, has SOCK_MEMALLOC
 * (sk_set_memalloc()), so its sends may allocate from the emergency
 * reserves and the replies it receives are accepted even when the network
 * driver had to allocate them from the reserves.  Pair each call with
 * virgo_memalloc_put().  May sleep.
 */
void virgo_memalloc_get(void)
{
	mutex_lock(&api_memalloc_lock);
	if (!api_memalloc_users++)
		virgo_peers_set_memalloc(&api_client->peers, true);
	mutex_unlock(&api_memalloc_lock);
}
EXPORT_SYMBOL_GPL(virgo_memalloc_get);

/**
 * virgo_memalloc_put() - drop what virgo_memalloc_get() took
 *
 * The last one clears SOCK_MEMALLOC from the peer sockets.  May sleep.
 */
void virgo_memalloc_put(void)
{
	mutex_lock(&api_memalloc_lock);
	if (!WARN_ON(!api_memalloc_users) && !--api_memalloc_users)
		virgo_peers_set_memalloc(&api_client->peers, false);
	mutex_unlock(&api_memalloc_lock);
}
EXPORT_SYMBOL_GPL(virgo_memalloc_put);

/**
 * virgo_malloc_owned() - virgo_malloc() on behalf of an owner cookie
 * @size: bytes
 * @owner: the owner cookie (see include/linux/virgo.h)
 * @addr: set to the allocation's first VIRGO address
 *
 * Return: as __virgo_malloc().
 */
int virgo_malloc_owned(size_t size, const void *owner, virgo_addr_t *addr)
{
	return vc_malloc(api_client, size, owner, addr);
}
EXPORT_SYMBOL_GPL(virgo_malloc_owned);

/**
 * virgo_free_owned() - virgo_free() on behalf of an owner cookie
 * @addr: the allocation's first VIRGO address
 * @owner: the owner cookie
 *
 * Return: as __virgo_free().
 */
int virgo_free_owned(virgo_addr_t addr, const void *owner)
{
	return vc_free(api_client, addr, owner);
}
EXPORT_SYMBOL_GPL(virgo_free_owned);

/**
 * virgo_set_owned() - virgo_set() on behalf of an owner cookie
 * @addr: any VIRGO address inside the allocation
 * @owner: the owner cookie
 * @buf: the bytes
 * @len: how many
 *
 * Return: as __virgo_set().
 */
int virgo_set_owned(virgo_addr_t addr, const void *owner, const void *buf,
		    size_t len)
{
	return vc_set(api_client, addr, owner, buf, len);
}
EXPORT_SYMBOL_GPL(virgo_set_owned);

/**
 * virgo_get_owned() - virgo_get() on behalf of an owner cookie
 * @addr: any VIRGO address inside the allocation
 * @owner: the owner cookie
 * @buf: where to put the bytes
 * @len: how many
 *
 * Return: as __virgo_set().
 */
int virgo_get_owned(virgo_addr_t addr, const void *owner, void *buf,
		    size_t len)
{
	return vc_get(api_client, addr, owner, buf, len);
}
EXPORT_SYMBOL_GPL(virgo_get_owned);

/**
 * virgo_free_all_owned() - free every allocation of an owner cookie
 * @owner: the owner cookie
 *
 * Return: the number of allocations freed.
 */
unsigned int virgo_free_all_owned(const void *owner)
{
	might_sleep();
	return vc_free_all(api_client, owner, false);
}
EXPORT_SYMBOL_GPL(virgo_free_all_owned);

/**
 * virgo_api_owner_gone() - free what a departing module still holds
 * @vc: the client
 * @owner: the module's owner cookie (its struct module)
 * @name: its name, for the warning
 *
 * Return: the number of allocations freed (each unload reports it once).
 */
unsigned int virgo_api_owner_gone(struct virgo_client *vc, const void *owner,
				  const char *name)
{
	unsigned int n = vc_free_all(vc, owner, false);

	if (n)
		pr_warn("module %s unloaded holding %u allocations: freed\n",
			name, n);
	return n;
}

#ifdef CONFIG_MODULES
static int virgo_api_module_event(struct notifier_block *nb,
				  unsigned long state, void *data)
{
	struct module *mod = data;

	if (state == MODULE_STATE_GOING && api_client)
		virgo_api_owner_gone(api_client, mod, module_name(mod));
	return NOTIFY_DONE;
}

static struct notifier_block virgo_api_module_nb = {
	.notifier_call = virgo_api_module_event,
};

static int virgo_api_watch_modules(void)
{
	return register_module_notifier(&virgo_api_module_nb);
}

static void virgo_api_unwatch_modules(void)
{
	unregister_module_notifier(&virgo_api_module_nb);
}
#else
/* No loadable modules: every caller is built in (owner NULL). */
static int virgo_api_watch_modules(void)
{
	return 0;
}

static void virgo_api_unwatch_modules(void)
{
}
#endif

/**
 * virgo_api_client() - the client the exported API serves
 *
 * Return: the client (the KUnit suites of its users, virgo_blk's, give it
 * peers), or NULL when none is served.
 */
struct virgo_client *virgo_api_client(void)
{
	return api_client;
}

/**
 * virgo_api_init() - serve the exported API from a client
 * @vc: the client
 *
 * Return: 0 or a negative errno.
 */
int virgo_api_init(struct virgo_client *vc)
{
	api_client = vc;
	return virgo_api_watch_modules();
}

/**
 * virgo_api_exit() - stop serving it (no module can be calling in: each
 * one that uses the API holds a reference on this one)
 */
void virgo_api_exit(void)
{
	virgo_api_unwatch_modules();
	api_client = NULL;
}
