// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: what /dev/virgo and the syscalls share.
 *
 * Per-user owners: an allocation made through the syscalls (or with
 * VIRGO_MALLOC_F_USER through the device) belongs to the caller's
 * effective uid.  Its owner cookie in the translation table is a small
 * object per uid, created on the first use and kept until the module goes
 * away, so the same uid always maps to the same cookie.
 *
 * Copies: user buffers move through a bounded kernel buffer, so a huge
 * length never means a huge allocation, and a range is checked as a
 * whole before a byte moves.
 */

#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/user_namespace.h>
#include <linux/xarray.h>

#include "virgo_user.h"

/* Bytes moved between user space and the peers per step. */
#define VIRGO_USER_STEP	(1024 * 1024)

/**
 * struct virgo_user_owner - the owner cookie of one user's allocations
 * @uid: the user, as seen from the initial user namespace
 */
struct virgo_user_owner {
	uid_t uid;
};

/*
 * uid -> struct virgo_user_owner.  The xarray's own lock serializes
 * insertions; entries are only erased by virgo_user_owners_release() once
 * no caller can be left (module exit), so a looked-up cookie stays valid.
 */
static DEFINE_XARRAY(virgo_user_owners);

/**
 * virgo_user_owner() - the owner cookie of a user's allocations
 * @uid: the user (normally current_euid())
 *
 * Return: the cookie (never NULL), or ERR_PTR(-ENOMEM).
 */
const void *virgo_user_owner(kuid_t uid)
{
	uid_t id = from_kuid(&init_user_ns, uid);
	struct virgo_user_owner *o, *old;

	o = xa_load(&virgo_user_owners, id);
	if (o)
		return o;
	o = kmalloc(sizeof(*o), GFP_KERNEL);
	if (!o)
		return ERR_PTR(-ENOMEM);
	o->uid = id;
	old = xa_cmpxchg(&virgo_user_owners, id, NULL, o, GFP_KERNEL);
	if (!old)
		return o;
	kfree(o);
	return xa_is_err(old) ? ERR_PTR(xa_err(old)) : old;
}

/**
 * virgo_user_owners_release() - forget every per-user cookie
 *
 * Only when no allocation and no caller can refer to one any more.
 */
void virgo_user_owners_release(void)
{
	struct virgo_user_owner *o;
	unsigned long id;

	xa_for_each(&virgo_user_owners, id, o) {
		xa_erase(&virgo_user_owners, id);
		kfree(o);
	}
}

/**
 * virgo_user_malloc() - allocate for user space
 * @vc: the client
 * @size: bytes (at least 1)
 * @owner: the owner cookie
 * @uaddr: where the first VIRGO address goes, in user memory
 *
 * The allocation is freed again if the address cannot be stored.
 *
 * Return: 0 or a negative errno.
 */
int virgo_user_malloc(struct virgo_client *vc, u64 size, const void *owner,
		      u64 __user *uaddr)
{
	virgo_addr_t addr;
	int ret;

	if (!size)
		return -EINVAL;
	if (size > SIZE_MAX)
		return -ENOMEM;
	ret = vc_malloc(vc, size, owner, &addr);
	if (ret)
		return ret;
	if (put_user(addr, uaddr)) {
		vc_free(vc, addr, owner);
		return -EFAULT;
	}
	return 0;
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
 * virgo_user_rw() - move bytes between user memory and an allocation
 * @vc: the client
 * @owner: the caller's owner cookie
 * @addr: any VIRGO address inside the allocation
 * @ubuf: user buffer
 * @len: bytes; [@addr, @addr + @len) must lie inside the allocation
 * @write: true: user memory to the allocation; false: the other way
 *
 * Return: @len, or a negative errno (-ENOENT, -EPERM, -EINVAL, -EFAULT,
 * -ENOMEM, or a peer's error); a failed write may have written a prefix.
 */
ssize_t virgo_user_rw(struct virgo_client *vc, const void *owner, u64 addr,
		      void __user *ubuf, u64 len, bool write)
{
	u64 done = 0;
	void *buf;
	int ret;

	if (!len)
		return 0;
	ret = virgo_user_check(vc, owner, addr, len);
	if (ret)
		return ret;
	if (len > MAX_RW_COUNT)
		return -EINVAL;
	buf = kvmalloc(min_t(u64, len, VIRGO_USER_STEP), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	while (done < len) {
		size_t n = min_t(u64, len - done, VIRGO_USER_STEP);

		if (write) {
			ret = -EFAULT;
			if (copy_from_user(buf, ubuf + done, n))
				break;
			ret = vc_set(vc, addr + done, owner, buf, n);
		} else {
			ret = vc_get(vc, addr + done, owner, buf, n);
			if (!ret && copy_to_user(ubuf + done, buf, n))
				ret = -EFAULT;
		}
		if (ret)
			break;
		done += n;
		cond_resched();
	}
	kvfree(buf);
	return ret ? ret : len;
}
