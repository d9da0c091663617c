// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: /dev/virgo, the way in for user space.
 *
 * ioctls (include/uapi/linux/virgo.h) allocate, free, write, read and
 * report; pread()/pwrite() at a VIRGO address read and write.  Every
 * allocation made through an open file belongs to it (the file's
 * struct virgo_dev_file is the owner cookie in the translation table) and
 * is freed when the file is released.  User buffers are moved through a
 * bounded kernel buffer, so a huge length never means a huge allocation.
 */

#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <uapi/linux/virgo.h>

#include "virgo_dev.h"

/* Bytes moved between user space and the peers per step. */
#define VIRGO_DEV_STEP	(1024 * 1024)

static uint dev_mode = 0600;
module_param(dev_mode, uint, 0444);
MODULE_PARM_DESC(dev_mode, "permissions of /dev/virgo (default 0600)");

/* The client behind the device; set while it is registered. */
static struct virgo_client *dev_client;

/**
 * struct virgo_dev_file - one open /dev/virgo
 * @unused: keeps the structure non-empty; its address is the owner
 */
struct virgo_dev_file {
	int unused;
};

static int virgo_dev_open(struct inode *inode, struct file *file)
{
	struct virgo_dev_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	file->private_data = f;
	return 0;
}

static int virgo_dev_release(struct inode *inode, struct file *file)
{
	struct virgo_dev_file *f = file->private_data;

	vc_free_all(dev_client, f, false);
	kfree(f);
	return 0;
}

/* Check the whole range before moving a byte: no partial writes. */
static int virgo_dev_check(struct virgo_dev_file *f, u64 addr, u64 len)
{
	struct virgo_xlat_entry *e;
	int ret = 0;

	if (!len)
		return 0;
	e = virgo_xlat_get(&dev_client->table, addr);
	if (!e)
		return -ENOENT;
	if (e->owner != f)
		ret = -EPERM;
	else if (len > e->size - (addr - e->va))
		ret = -EINVAL;
	virgo_xlat_put(e);
	return ret;
}

/* Move @len bytes between user memory at @ubuf and VIRGO address @addr. */
static ssize_t virgo_dev_rw(struct virgo_dev_file *f, u64 addr,
			    void __user *ubuf, u64 len, bool write)
{
	u64 done = 0;
	void *buf;
	int ret;

	ret = virgo_dev_check(f, addr, len);
	if (ret || !len)
		return ret;
	if (len > MAX_RW_COUNT)
		return -EINVAL;
	buf = kvmalloc(min_t(u64, len, VIRGO_DEV_STEP), GFP_KERNEL);
	if (!buf)
		return -ENOMEM;

	while (done < len) {
		size_t n = min_t(u64, len - done, VIRGO_DEV_STEP);

		if (write) {
			ret = -EFAULT;
			if (copy_from_user(buf, ubuf + done, n))
				break;
			ret = vc_set(dev_client, addr + done, f, buf, n);
		} else {
			ret = vc_get(dev_client, addr + done, f, buf, n);
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

static long virgo_dev_malloc(struct virgo_dev_file *f, void __user *arg)
{
	struct virgo_ioc_malloc req;
	virgo_addr_t addr;
	int ret;

	if (copy_from_user(&req, arg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.pad || !req.size)
		return -EINVAL;
	if (req.size > SIZE_MAX)
		return -ENOMEM;
	ret = vc_malloc(dev_client, req.size, f, &addr);
	if (ret)
		return ret;
	req.addr = addr;
	if (copy_to_user(arg, &req, sizeof(req))) {
		vc_free(dev_client, addr, f);
		return -EFAULT;
	}
	return 0;
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
		if (e->owner == f) {
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
	struct virgo_ioc_free fr;
	struct virgo_ioc_rw rw;
	ssize_t ret;

	switch (cmd) {
	case VIRGO_IOC_MALLOC:
		return virgo_dev_malloc(f, uarg);
	case VIRGO_IOC_FREE:
		if (copy_from_user(&fr, uarg, sizeof(fr)))
			return -EFAULT;
		return vc_free(dev_client, fr.addr, f);
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
