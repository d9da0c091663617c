// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: /dev/virgo, the way in for user space.
 *
 * ioctls (include/uapi/linux/virgo.h) allocate, free, write, read and
 * report; pread()/pwrite() at a VIRGO address read and write.  An
 * allocation made through an open file belongs to it (the file's
 * struct virgo_user_fd is the owner cookie in the translation table), is
 * charged to the uid that opened the file and is freed when the file is
 * released; one made with VIRGO_MALLOC_F_USER belongs, and is charged, to
 * the caller's user instead (virgo_user.c), as the syscalls' are.  Who may
 * allocate, the per-uid limits and the transfers between user memory and
 * the peers are virgo_user.c's.
 */

#include <linux/compat.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <uapi/linux/virgo.h>

#include "virgo_dev.h"
#include "virgo_user.h"

static uint dev_mode = 0600;
module_param(dev_mode, uint, 0444);
MODULE_PARM_DESC(dev_mode, "permissions of /dev/virgo (default 0600)");

/* The client behind the device; set while it is registered. */
static struct virgo_client *dev_client;

/**
 * struct virgo_dev_file - one open /dev/virgo
 * @acct: its allocations and the user they are charged to; its address
 *	is the owner cookie of the file's allocations
 */
struct virgo_dev_file {
	struct virgo_user_fd acct;
};

static int virgo_dev_open(struct inode *inode, struct file *file)
{
	struct virgo_dev_file *f = kzalloc(sizeof(*f), GFP_KERNEL);
	struct virgo_user *user;

	if (!f)
		return -ENOMEM;
	user = virgo_user_owner(file->f_cred->euid);
	if (IS_ERR(user)) {
		kfree(f);
		return PTR_ERR(user);
	}
	f->acct.user = user;
	file->private_data = f;
	return 0;
}

static int virgo_dev_release(struct inode *inode, struct file *file)
{
	struct virgo_dev_file *f = file->private_data;

	virgo_user_fd_release(dev_client, &f->acct);
	kfree(f);
	return 0;
}

/*
 * Is the allocation holding @addr the file's?  If not, the caller acts as
 * its user (allocations made with VIRGO_MALLOC_F_USER or through the
 * syscalls).  The client checks the owner again under its own rules.
 */
static bool virgo_dev_owns(struct virgo_dev_file *f, u64 addr)
{
	struct virgo_xlat_entry *e;
	bool mine = true;

	e = virgo_xlat_get(&dev_client->table, addr);
	if (e) {
		mine = e->owner == &f->acct;
		virgo_xlat_put(e);
	}
	return mine;
}

/* The owner cookie to act as on the allocation holding @addr. */
static const void *virgo_dev_owner(struct virgo_dev_file *f, u64 addr)
{
	if (virgo_dev_owns(f, addr))
		return &f->acct;
	return virgo_user_owner(current_euid());
}

static ssize_t virgo_dev_rw(struct virgo_dev_file *f, u64 addr,
			    void __user *ubuf, u64 len, bool write)
{
	const void *owner = virgo_dev_owner(f, addr);

	if (IS_ERR(owner))
		return PTR_ERR(owner);
	return virgo_user_rw(dev_client, owner, addr, ubuf, len, write);
}

static long virgo_dev_malloc(struct virgo_dev_file *f, void __user *arg)
{
	struct virgo_ioc_malloc __user *ureq = arg;
	struct virgo_ioc_malloc req;
	struct virgo_user *user;
	unsigned int replicas;

	if (copy_from_user(&req, ureq, sizeof(req)))
		return -EFAULT;
	if ((req.flags & ~VIRGO_MALLOC_FLAGS) || req.pad)
		return -EINVAL;
	replicas = (req.flags & VIRGO_MALLOC_REPLICAS_MASK) >>
		VIRGO_MALLOC_REPLICAS_SHIFT;
	if (!(req.flags & VIRGO_MALLOC_F_USER))
		return virgo_user_malloc(dev_client, req.size, replicas,
					 f->acct.user, &f->acct, &ureq->addr);
	user = virgo_user_owner(current_euid());
	if (IS_ERR(user))
		return PTR_ERR(user);
	return virgo_user_malloc(dev_client, req.size, replicas, user, NULL,
				 &ureq->addr);
}

static long virgo_dev_free(struct virgo_dev_file *f, void __user *arg)
{
	struct virgo_ioc_free req;
	struct virgo_user *user;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (virgo_dev_owns(f, req.addr))
		return virgo_user_free(dev_client, req.addr, f->acct.user,
				       &f->acct);
	user = virgo_user_owner(current_euid());
	if (IS_ERR(user))
		return PTR_ERR(user);
	return virgo_user_free(dev_client, req.addr, user, NULL);
}

static long virgo_dev_stat(struct virgo_dev_file *f, void __user *arg)
{
	struct virgo_ioc_stat st = {
		.abi_version = VIRGO_ABI_VERSION,
		.chunk_size = dev_client->chunk_size,
		.allocations = virgo_xlat_count(&dev_client->table),
		.bytes = virgo_xlat_bytes(&dev_client->table),
	};
	struct virgo_xlat_entry *e;
	struct virgo_peer **peers;
	virgo_addr_t from = 0;
	unsigned int nr, i;

	peers = virgo_peers_snapshot(&dev_client->peers, &nr);
	st.nr_peers = nr;
	for (i = 0; i < nr; i++)
		if (READ_ONCE(peers[i]->state) == VIRGO_PEER_UP)
			st.peers_up++;
	virgo_peers_snapshot_put(peers, nr);

	while ((e = virgo_xlat_find_next(&dev_client->table, &from))) {
		if (e->owner == &f->acct) {
			st.fd_allocations++;
			st.fd_bytes += e->size;
		}
		virgo_xlat_put(e);
	}
	return copy_to_user(arg, &st, sizeof(st)) ? -EFAULT : 0;
}

static long virgo_dev_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	struct virgo_dev_file *f = file->private_data;
	void __user *uarg = (void __user *)arg;
	struct virgo_ioc_rw rw;
	ssize_t ret;

	switch (cmd) {
	case VIRGO_IOC_MALLOC:
		return virgo_dev_malloc(f, uarg);
	case VIRGO_IOC_FREE:
		return virgo_dev_free(f, uarg);
	case VIRGO_IOC_SET:
	case VIRGO_IOC_GET:
		if (copy_from_user(&rw, uarg, sizeof(rw)))
			return -EFAULT;
		ret = virgo_dev_rw(f, rw.addr, u64_to_user_ptr(rw.buf), rw.len,
				   cmd == VIRGO_IOC_SET);
		return ret < 0 ? ret : 0;
	case VIRGO_IOC_STAT:
		return virgo_dev_stat(f, uarg);
	}
	return -ENOTTY;
}

static ssize_t virgo_dev_read(struct file *file, char __user *ubuf,
			      size_t len, loff_t *pos)
{
	ssize_t ret;

	if (*pos < 0)
		return -EINVAL;
	ret = virgo_dev_rw(file->private_data, *pos, ubuf, len, false);
	if (ret > 0)
		*pos += ret;
	return ret;
}

static ssize_t virgo_dev_write(struct file *file, const char __user *ubuf,
			       size_t len, loff_t *pos)
{
	ssize_t ret;

	if (*pos < 0)
		return -EINVAL;
	ret = virgo_dev_rw(file->private_data, *pos, (void __user *)ubuf, len,
			   true);
	if (ret > 0)
		*pos += ret;
	return ret;
}

static const struct file_operations virgo_dev_fops = {
	.owner = THIS_MODULE,
	.open = virgo_dev_open,
	.release = virgo_dev_release,
	.unlocked_ioctl = virgo_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.read = virgo_dev_read,
	.write = virgo_dev_write,
	.llseek = default_llseek,
};

static struct miscdevice virgo_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "virgo",
	.fops = &virgo_dev_fops,
};

/**
 * virgo_dev_init() - register /dev/virgo
 * @vc: the client it serves (the module's)
 *
 * Return: 0 or a negative errno.
 */
int virgo_dev_init(struct virgo_client *vc)
{
	if (dev_mode & ~0666U)
		return -EINVAL;
	dev_client = vc;
	virgo_miscdev.mode = dev_mode;
	return misc_register(&virgo_miscdev);
}

/**
 * virgo_dev_exit() - unregister /dev/virgo
 *
 * No file can be open: each holds a reference to the module.
 */
void virgo_dev_exit(void)
{
	misc_deregister(&virgo_miscdev);
}
