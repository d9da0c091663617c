// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: what /dev/virgo and the syscalls share.
 *
 * Who may allocate: callers with CAP_SYS_ADMIN, and members of the group
 * syscall_gid (a parameter; -1, the default, is no group).  Everyone else
 * gets -EACCES from a malloc, through the syscalls and /dev/virgo alike
 * (dev_mode decides who may open the device at all).  Allocations already
 * made stay readable, writable and freeable by their owner.
 *
 * Per-user owners: an allocation made through the syscalls (or with
 * VIRGO_MALLOC_F_USER through the device) belongs to the caller's
 * effective uid.  Its owner cookie in the translation table is a small
 * object per uid, created on the first use and kept until the module goes
 * away, so the same uid always maps to the same cookie.
 *
 * Limits: every live allocation is charged to a uid -- a user-owned one
 * to its owner, one owned by an open /dev/virgo to the uid that opened
 * the file -- and given back when it is freed (or its file released).
 * user_max_bytes and user_max_allocs (parameters, 0 = no limit, the
 * default) bound what one uid holds; a malloc beyond them fails with
 * -EDQUOT.  They bind every uid, root's too, once set.
 *
 * Copies: a range is checked as a whole (owner, bounds) before a byte
 * moves.  Then every user page of the buffer is pinned
 * (pin_user_pages_fast(), FOLL_WRITE for a read) and the pages mapped
 * contiguously into the kernel (vmap()); that mapping goes to one
 * vc_set()/vc_get(),
 * which keeps its whole request window in flight across the chunks and
 * peers of the range: no stop-and-wait per step, no bounce copy.  Every
 * page is pinned before the first request is sent, so a user page that
 * cannot be had (unmapped, read-only for a read, a PFN mapping) is
 * -EFAULT with nothing moved: the allocation and the user buffer are
 * both untouched.  Pinning costs a page pointer per 4 KiB (at most
 * 4 MiB for MAX_RW_COUNT) and keeps the caller's own pages resident for
 * the call.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/user_namespace.h>
#include <linux/vmalloc.h>
#include <linux/xarray.h>

#include "virgo_user.h"

/* Pages pinned per pin_user_pages_fast() call (then a resched point). */
#define VIRGO_USER_PIN_BATCH	512

static int syscall_gid = -1;
module_param(syscall_gid, int, 0644);
MODULE_PARM_DESC(syscall_gid,
		 "group (besides CAP_SYS_ADMIN) that may allocate through the syscalls and /dev/virgo; -1: none (default)");

static unsigned long long user_max_bytes;
module_param(user_max_bytes, ullong, 0644);
MODULE_PARM_DESC(user_max_bytes,
		 "bytes of live allocations one uid may hold; 0: no limit (default)");

static uint user_max_allocs;
module_param(user_max_allocs, uint, 0644);
MODULE_PARM_DESC(user_max_allocs,
		 "live allocations one uid may hold; 0: no limit (default)");

/**
 * struct virgo_user - one user: owner cookie of its allocations, charges
 * @uid: the user, as seen from the initial user namespace
 * @free_lock: held across a free charged to this user, from the size
 *	lookup to the removal, so that no other free of the same owner can
 *	take the allocation (and a new one its address) in between
 * @lock: protects @bytes, @allocs and the counts of the user's files
 * @bytes: bytes of live allocations charged to the user
 * @allocs: live allocations charged to the user
 */
struct virgo_user {
	uid_t uid;
	/* Serialises the frees charged to this user (see above). */
	struct mutex free_lock;
	/* Protects @bytes, @allocs and those of its virgo_user_fd's. */
	spinlock_t lock;
	u64 bytes;
	unsigned int allocs;
};

/*
 * uid -> struct virgo_user.  The xarray's own lock serializes insertions;
 * entries are only erased by virgo_user_owners_release() once no caller
 * can be left (module exit), so a looked-up user stays valid.
 */
static DEFINE_XARRAY(virgo_users);

/**
 * virgo_user_owner() - the owner cookie and account of a user
 * @uid: the user (normally current_euid())
 *
 * The returned pointer is also the owner cookie of the user's
 * allocations in the translation table.
 *
 * Return: the user (never NULL), or ERR_PTR(-ENOMEM).
 */
struct virgo_user *virgo_user_owner(kuid_t uid)
{
	uid_t id = from_kuid(&init_user_ns, uid);
	struct virgo_user *u, *old;

	u = xa_load(&virgo_users, id);
	if (u)
		return u;
	u = kzalloc(sizeof(*u), GFP_KERNEL);
	if (!u)
		return ERR_PTR(-ENOMEM);
	u->uid = id;
	mutex_init(&u->free_lock);
	spin_lock_init(&u->lock);
	old = xa_cmpxchg(&virgo_users, id, NULL, u, GFP_KERNEL);
	if (!old)
		return u;
	mutex_destroy(&u->free_lock);
	kfree(u);
	return xa_is_err(old) ? ERR_PTR(xa_err(old)) : old;
}

/**
 * virgo_user_owners_release() - forget every user
 *
 * Only when no allocation and no caller can refer to one any more.
 */
void virgo_user_owners_release(void)
{
	struct virgo_user *u;
	unsigned long id;

	xa_for_each(&virgo_users, id, u) {
		xa_erase(&virgo_users, id);
		mutex_destroy(&u->free_lock);
		kfree(u);
	}
}

/* May the caller allocate at all? */
static bool virgo_user_allowed(void)
{
	int gid = READ_ONCE(syscall_gid);

	if (gid >= 0) {
		kgid_t kgid = make_kgid(&init_user_ns, gid);

		if (gid_valid(kgid) && in_egroup_p(kgid))
			return true;
	}
	return capable(CAP_SYS_ADMIN);
}

/* Charge @size bytes and one allocation to @u (and @fd), within limits. */
static int virgo_user_charge(struct virgo_user *u, struct virgo_user_fd *fd,
			     u64 size)
{
	u64 max_bytes = READ_ONCE(user_max_bytes);
	unsigned int max_allocs = READ_ONCE(user_max_allocs);
	int ret = 0;

	spin_lock(&u->lock);
	if ((max_allocs && u->allocs >= max_allocs) ||
	    (max_bytes && (u->bytes > max_bytes ||
			   size > max_bytes - u->bytes))) {
		ret = -EDQUOT;
	} else {
		u->bytes += size;
		u->allocs++;
		if (fd) {
			fd->bytes += size;
			fd->allocs++;
		}
	}
	spin_unlock(&u->lock);
	return ret;
}

/* Give back @allocs allocations of @bytes bytes in all. */
static void virgo_user_uncharge(struct virgo_user *u, struct virgo_user_fd *fd,
				u64 bytes, unsigned int allocs)
{
	spin_lock(&u->lock);
	if (WARN_ON_ONCE(u->bytes < bytes || u->allocs < allocs)) {
		bytes = u->bytes;
		allocs = u->allocs;
	}
	u->bytes -= bytes;
	u->allocs -= allocs;
	if (fd) {
		fd->bytes -= min(fd->bytes, bytes);
		fd->allocs -= min(fd->allocs, allocs);
	}
	spin_unlock(&u->lock);
}

/* Largest allocation a client makes: VIRGO_XLAT_MAX_CHUNKS chunks. */
static u64 virgo_user_max_size(const struct virgo_client *vc)
{
	return min_t(u64, VIRGO_XLAT_MAX_SIZE,
		     (u64)VIRGO_XLAT_MAX_CHUNKS * vc->chunk_size);
}

/* The owner cookie: the file's for @fd, else the user's. */
static const void *virgo_user_cookie(struct virgo_user *user,
				     struct virgo_user_fd *fd)
{
	return fd ? (const void *)fd : (const void *)user;
}

/* virgo_user_free() with @user->free_lock held. */
static int virgo_user_free_locked(struct virgo_client *vc, u64 addr,
				  struct virgo_user *user,
				  struct virgo_user_fd *fd)
{
	const void *owner = virgo_user_cookie(user, fd);
	struct virgo_xlat_entry *e;
	u64 size = 0;
	int ret;

	lockdep_assert_held(&user->free_lock);
	e = virgo_xlat_get(&vc->table, addr);
	if (e) {
		if (e->va == addr && e->owner == owner)
			size = e->size;
		virgo_xlat_put(e);
	}
	ret = vc_free(vc, addr, owner);
	/* -ENOMEM: the table could not be changed, the allocation stays. */
	if (size && ret != -ENOMEM)
		virgo_user_uncharge(user, fd, size, 1);
	return ret;
}

/**
 * virgo_user_free() - free an allocation for user space
 * @vc: the client
 * @addr: the allocation's first VIRGO address
 * @user: the user it is charged to, and its owner unless @fd is given
 * @fd: the open /dev/virgo owning it, or NULL for one owned by @user
 *
 * Return: 0, -EINTR (a fatal signal while waiting for another free of
 * the same user; nothing was freed) or a negative errno of vc_free(); the
 * charge is given back whenever the allocation left the table, even if a
 * peer failed to free its chunks.
 */
int virgo_user_free(struct virgo_client *vc, u64 addr,
		    struct virgo_user *user, struct virgo_user_fd *fd)
{
	int ret;

	/*
	 * Only frees of this owner remove its allocations, and they all take
	 * this lock: what is found here is what vc_free() removes.
	 */
	if (mutex_lock_killable(&user->free_lock))
		return -EINTR;
	ret = virgo_user_free_locked(vc, addr, user, fd);
	mutex_unlock(&user->free_lock);
	return ret;
}

/**
 * virgo_user_malloc() - allocate for user space
 * @vc: the client
 * @size: bytes (at least 1)
 * @replicas: copies of every chunk, 1..3, or 0 for the client's default
 * @user: the user to charge, and the owner unless @fd is given
 * @fd: the open /dev/virgo that owns the allocation (@fd->user is @user),
 *	or NULL for an allocation owned by @user
 * @uaddr: where the first VIRGO address goes, in user memory
 *
 * The caller must be allowed to allocate (CAP_SYS_ADMIN or a member of
 * syscall_gid).  The allocation is freed again if the address cannot be
 * stored.
 *
 * Return: 0 or a negative errno: -EINVAL (size 0), -EACCES (not
 * allowed), -ENOMEM (larger than the client's largest allocation, or no
 * memory), -EDQUOT (beyond user_max_bytes or user_max_allocs), -EFAULT,
 * or one of vc_malloc().
 */
int virgo_user_malloc(struct virgo_client *vc, u64 size,
		      unsigned int replicas, struct virgo_user *user,
		      struct virgo_user_fd *fd, u64 __user *uaddr)
{
	const void *owner = virgo_user_cookie(user, fd);
	virgo_addr_t addr;
	int ret;

	if (!size)
		return -EINVAL;
	if (!virgo_user_allowed())
		return -EACCES;
	if (size > SIZE_MAX || size > virgo_user_max_size(vc))
		return -ENOMEM;
	ret = virgo_user_charge(user, fd, size);
	if (ret)
		return ret;
	ret = vc_malloc_replicas(vc, size, replicas, owner, &addr);
	if (ret) {
		virgo_user_uncharge(user, fd, size, 1);
		return ret;
	}
	if (put_user(addr, uaddr)) {
		/*
		 * Gives the charge back unless another free was faster; not
		 * killable: the caller never learns the address.
		 */
		mutex_lock(&user->free_lock);
		virgo_user_free_locked(vc, addr, user, fd);
		mutex_unlock(&user->free_lock);
		return -EFAULT;
	}
	return 0;
}

/**
 * virgo_user_fd_release() - free everything an open /dev/virgo owns
 * @vc: the client
 * @fd: the file's account; no call on the file may still be running
 */
void virgo_user_fd_release(struct virgo_client *vc, struct virgo_user_fd *fd)
{
	struct virgo_user *user = fd->user;
	u64 bytes;
	unsigned int allocs;

	vc_free_all(vc, fd, false);
	spin_lock(&user->lock);
	bytes = fd->bytes;
	allocs = fd->allocs;
	spin_unlock(&user->lock);
	virgo_user_uncharge(user, fd, bytes, allocs);
}

/* Check the whole range before moving a byte: no partial writes. */
static int virgo_user_check(struct virgo_client *vc, const void *owner,
			    u64 addr, u64 len)
{
	struct virgo_xlat_entry *e;
	int ret = 0;

	e = virgo_xlat_get(&vc->table, addr);
	if (!e)
		return -ENOENT;
	if (e->owner != owner)
		ret = -EPERM;
	else if (len > e->size - (addr - e->va))
		ret = -EINVAL;
	virgo_xlat_put(e);
	return ret;
}

/**
 * struct virgo_user_pin - user pages pinned and mapped for one transfer
 * @pages: the pinned pages
 * @nr: how many are pinned
 * @map: their contiguous kernel mapping (vmap()), or NULL
 */
struct virgo_user_pin {
	struct page **pages;
	unsigned int nr;
	void *map;
};

static void virgo_user_unpin(struct virgo_user_pin *pin, bool dirty)
{
	if (pin->map)
		vunmap(pin->map);
	if (pin->nr)
		unpin_user_pages_dirty_lock(pin->pages, pin->nr, dirty);
	kvfree(pin->pages);
}

/*
 * Pin every page of [@ubuf, @ubuf + @len) and map them: all of them or
 * none (-EFAULT for a page that cannot be had, -ENOMEM, -EINTR).
 */
static int virgo_user_pin(void __user *ubuf, size_t len, bool to_user,
			  struct virgo_user_pin *pin)
{
	unsigned long first = (unsigned long)ubuf & PAGE_MASK;
	unsigned int gup = to_user ? FOLL_WRITE : 0;
	unsigned long nr;
	int ret;

	memset(pin, 0, sizeof(*pin));
	if (!access_ok(ubuf, len))
		return -EFAULT;
	nr = (PAGE_ALIGN((unsigned long)ubuf + len) - first) >> PAGE_SHIFT;
	pin->pages = kvmalloc_array(nr, sizeof(*pin->pages), GFP_KERNEL);
	if (!pin->pages)
		return -ENOMEM;
	while (pin->nr < nr) {
		int n = min_t(unsigned long, nr - pin->nr,
			      VIRGO_USER_PIN_BATCH);

		ret = pin_user_pages_fast(first + pin->nr * PAGE_SIZE, n, gup,
					  pin->pages + pin->nr);
		if (ret <= 0) {
			/* Not mapped, not writable, not pinnable: -EFAULT. */
			if (ret != -ENOMEM && ret != -EINTR)
				ret = -EFAULT;
			goto fail;
		}
		pin->nr += ret;
		ret = -EINTR;
		if (fatal_signal_pending(current))
			goto fail;
		cond_resched();
	}
	ret = -ENOMEM;
	pin->map = vmap(pin->pages, nr, VM_MAP, PAGE_KERNEL);
	if (!pin->map)
		goto fail;
	return 0;
fail:
	virgo_user_unpin(pin, false);
	memset(pin, 0, sizeof(*pin));
	return ret;
}

/* The whole range pinned, then one vc_set()/vc_get() with all in flight. */
static int virgo_user_pinned(struct virgo_client *vc, const void *owner,
			     u64 addr, void __user *ubuf, size_t len,
			     bool write)
{
	struct virgo_user_pin pin;
	void *buf;
	int ret;

	ret = virgo_user_pin(ubuf, len, !write, &pin);
	if (ret)
		return ret;
	buf = pin.map + offset_in_page(ubuf);
	if (write) {
		flush_kernel_vmap_range(buf, len);
		ret = vc_set(vc, addr, owner, buf, len);
	} else {
		ret = vc_get(vc, addr, owner, buf, len);
		invalidate_kernel_vmap_range(buf, len);
	}
	/* A read may have written any of the pages, even if it failed. */
	virgo_user_unpin(&pin, !write);
	return ret;
}

/**
 * virgo_user_rw() - move bytes between user memory and an allocation
 * @vc: the client
 * @owner: the caller's owner cookie
 * @addr: any VIRGO address inside the allocation
 * @ubuf: user buffer
 * @len: bytes; [@addr, @addr + @len) must lie inside the allocation, and
 *	at most MAX_RW_COUNT
 * @write: true: user memory to the allocation; false: the other way
 *
 * The range is checked, and then every user page of the buffer pinned
 * and mapped, before the first request is sent; the transfer then keeps
 * the client's whole request window in flight across chunks and peers.
 *
 * What the caller is told:
 *
 * * -EFAULT: part of the user buffer could not be had (unmapped, not
 *   writable for a read, not pinnable); nothing moved: neither the
 *   allocation nor the user buffer was changed.  Once pinned, the pages
 *   cannot fault: an munmap() racing the call leaves them to the call.
 * * -ENOENT, -EPERM, -EINVAL (range, length), -ENOMEM, -EINTR before any
 *   request: nothing moved.
 * * a peer's error (-EIO, -ETIMEDOUT, -EINTR on a fatal signal while
 *   waiting): a write may have written any part of the range, a read any
 *   part of the buffer; as for vc_set()/vc_get().
 *
 * Return: @len, or a negative errno as above.
 */
ssize_t virgo_user_rw(struct virgo_client *vc, const void *owner, u64 addr,
		      void __user *ubuf, u64 len, bool write)
{
	int ret;

	if (!len)
		return 0;
	ret = virgo_user_check(vc, owner, addr, len);
	if (ret)
		return ret;
	if (len > MAX_RW_COUNT)
		return -EINVAL;
	ret = virgo_user_pinned(vc, owner, addr, ubuf, len, write);
	return ret ? ret : len;
}
