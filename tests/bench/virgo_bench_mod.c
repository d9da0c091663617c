// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_bench_mod: the kernel-API side of `make bench-cluster`
 * (tests/bench/bench-cluster.sh).  It uses virgo's exported API only
 * (include/linux/virgo.h), as any other module would.
 *
 * debugfs virgo_bench/cmd: write a command, then read its result (one
 * line).  Commands:
 *
 *   rw SIZE        virgo_malloc(SIZE); virgo_set() of a fresh pattern
 *                  (cold: the servers allocate the chunks' memory on this
 *                  first write), virgo_set() of another pattern (warm),
 *                  virgo_get() of it, every byte compared; after 1 s
 *                  without traffic (longer than TCP's RTO: the sender's
 *                  congestion window restarts, as it does for the cold
 *                  write, which follows other traffic) virgo_set() of the
 *                  same pattern again (warm after idle); virgo_free().
 *                  Result: "rw SIZE cold_ns set_ns get_ns idle_ns"; a
 *                  byte that differs makes the write fail with -EIO.
 *   malloc SIZE N  N times virgo_malloc(SIZE) (timed) + virgo_free().
 *                  Result: "malloc SIZE N" and the N times in ns.
 *
 * One command at a time (a mutex); the wait for peers is killable as
 * virgo's own calls are.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/virgo.h>

/* Largest transfer and most mallocs per command. */
#define VB_MAX_SIZE	(256ULL << 20)
#define VB_MAX_N	200
/* Room for "malloc SIZE N" and N times. */
#define VB_RESULT_LEN	(64 + VB_MAX_N * 21)

static struct dentry *vb_dir;

/* Serialises commands; protects vb_result. */
static DEFINE_MUTEX(vb_lock);
static char *vb_result;

/* Fill @buf with a pattern that depends on the position and on @seed. */
static void vb_fill(u32 *buf, size_t words, u32 seed)
{
	size_t i;

	for (i = 0; i < words; i++)
		buf[i] = (u32)i * 2654435761U ^ seed;
}

/* Time one virgo_set() or virgo_get() of @len bytes; ns or -errno. */
static s64 vb_time_rw(virgo_addr_t addr, void *buf, size_t len, bool write)
{
	u64 t0 = ktime_get_ns();
	int ret;

	ret = write ? virgo_set(addr, buf, len) : virgo_get(addr, buf, len);
	if (ret)
		return ret;
	return ktime_get_ns() - t0;
}

static int vb_rw(size_t size)
{
	size_t words = DIV_ROUND_UP(size, 4);
	s64 cold, set, get = 0, idle = 0;
	virgo_addr_t addr;
	u32 *a, *b;
	int ret = -ENOMEM;

	a = vmalloc(words * 4);
	b = vmalloc(words * 4);
	if (!a || !b)
		goto out;
	ret = virgo_malloc(size, &addr);
	if (ret)
		goto out;
	vb_fill(a, words, get_random_u32());
	cold = vb_time_rw(addr, a, size, true);
	vb_fill(a, words, get_random_u32());
	set = cold < 0 ? cold : vb_time_rw(addr, a, size, true);
	memset(b, 0, words * 4);
	if (set >= 0)
		get = vb_time_rw(addr, b, size, false);
	ret = cold < 0 ? cold : set < 0 ? set : get < 0 ? get : 0;
	if (!ret && memcmp(a, b, size)) {
		pr_err("rw %zu: the bytes read back differ\n", size);
		ret = -EIO;
	}
	if (!ret) {
		msleep(1000);
		idle = vb_time_rw(addr, a, size, true);
		ret = idle < 0 ? idle : 0;
	}
	if (virgo_free(addr) && !ret)
		ret = -EIO;
	if (!ret)
		snprintf(vb_result, VB_RESULT_LEN,
			 "rw %zu %lld %lld %lld %lld\n", size, cold, set, get,
			 idle);
out:
	vfree(a);
	vfree(b);
	return ret;
}

static int vb_malloc(size_t size, unsigned int n)
{
	size_t at, room = VB_RESULT_LEN;
	virgo_addr_t addr;
	unsigned int i;
	int ret;

	at = scnprintf(vb_result, room, "malloc %zu %u", size, n);
	for (i = 0; i < n; i++) {
		u64 t0 = ktime_get_ns(), t;

		ret = virgo_malloc(size, &addr);
		t = ktime_get_ns() - t0;
		if (ret)
			return ret;
		ret = virgo_free(addr);
		if (ret)
			return ret;
		at += scnprintf(vb_result + at, room - at, " %llu", t);
	}
	scnprintf(vb_result + at, room - at, "\n");
	return 0;
}

static ssize_t vb_cmd_write(struct file *file, const char __user *ubuf,
			    size_t len, loff_t *ppos)
{
	unsigned long long size;
	unsigned int n = 0;
	char cmd[64], op[8];
	int ret;

	if (len >= sizeof(cmd))
		return -EINVAL;
	if (copy_from_user(cmd, ubuf, len))
		return -EFAULT;
	cmd[len] = '\0';
	if (sscanf(cmd, "%7s %llu %u", op, &size, &n) < 2 || !size ||
	    size > VB_MAX_SIZE)
		return -EINVAL;
	if (mutex_lock_killable(&vb_lock))
		return -EINTR;
	vb_result[0] = '\0';
	if (!strcmp(op, "rw"))
		ret = vb_rw(size);
	else if (!strcmp(op, "malloc") && n && n <= VB_MAX_N)
		ret = vb_malloc(size, n);
	else
		ret = -EINVAL;
	if (ret)
		scnprintf(vb_result, VB_RESULT_LEN, "error %d\n", ret);
	mutex_unlock(&vb_lock);
	return ret ? ret : len;
}

static ssize_t vb_cmd_read(struct file *file, char __user *ubuf, size_t len,
			   loff_t *ppos)
{
	ssize_t ret;

	if (mutex_lock_killable(&vb_lock))
		return -EINTR;
	ret = simple_read_from_buffer(ubuf, len, ppos, vb_result,
				      strlen(vb_result));
	mutex_unlock(&vb_lock);
	return ret;
}

static const struct file_operations vb_cmd_fops = {
	.owner = THIS_MODULE,
	.write = vb_cmd_write,
	.read = vb_cmd_read,
	.llseek = default_llseek,
};

static int __init vb_init(void)
{
	vb_result = kzalloc(VB_RESULT_LEN, GFP_KERNEL);
	if (!vb_result)
		return -ENOMEM;
	vb_dir = debugfs_create_dir("virgo_bench", NULL);
	debugfs_create_file("cmd", 0600, vb_dir, NULL, &vb_cmd_fops);
	return 0;
}

static void __exit vb_exit(void)
{
	debugfs_remove(vb_dir);
	kfree(vb_result);
}

module_init(vb_init);
module_exit(vb_exit);
MODULE_DESCRIPTION("virgo cluster benchmark: the kernel-API side");
MODULE_LICENSE("GPL");
