// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_blk: block devices over virgo allocations (docs/blk.md).
 *
 * The module's parameters, the devices made at load (nr_devices of size
 * bytes each, /dev/virgob0..), and init/exit wiring the disks
 * (virgo_blk_dev.c) and the configfs control (virgo_blk_configfs.c).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "virgo_blk.h"

static unsigned int nr_devices;
module_param(nr_devices, uint, 0444);
MODULE_PARM_DESC(nr_devices, "devices to create at load (default 0; configfs makes more)");

static char *size = "64M";
module_param(size, charp, 0444);
MODULE_PARM_DESC(size, "bytes of each device created at load, K/M/G suffixes (default 64M)");

static unsigned int replicas;
module_param(replicas, uint, 0444);
MODULE_PARM_DESC(replicas, "copies of every chunk of those devices, 1..3 (default 0: virgo's replicas)");

unsigned int vblk_io_timeout_ms = 30000;
module_param_named(io_timeout_ms, vblk_io_timeout_ms, uint, 0444);
MODULE_PARM_DESC(io_timeout_ms, "a request that could not complete in this time fails (default 30000)");

unsigned int vblk_queue_depth = 128;
module_param_named(queue_depth, vblk_queue_depth, uint, 0444);
MODULE_PARM_DESC(queue_depth, "requests in flight per hardware queue (default 128)");

unsigned int vblk_hw_queues = 1;
module_param_named(hw_queues, vblk_hw_queues, uint, 0444);
MODULE_PARM_DESC(hw_queues, "hardware queues per device (default 1; 0: one per CPU)");

/* The devices made at load, in order; only init and exit touch it. */
static LIST_HEAD(vblk_load_devs);

/*
 * Remove the devices made at load; true when none is left.  At exit none
 * is open (an opener pins the module); a load that fails may find one
 * already opened (udev's blkid, a user), which then stays.
 */
static bool vblk_remove_load_devs(void)
{
	struct vblk_dev *dev, *next;

	list_for_each_entry_safe_reverse(dev, next, &vblk_load_devs, node) {
		if (vblk_dev_power_off(dev)) {
			pr_warn("%s: open, so it stays\n", dev->name);
			continue;
		}
		list_del(&dev->node);
		kfree(dev);
	}
	return list_empty(&vblk_load_devs);
}

static int vblk_create_load_devs(u64 bytes)
{
	unsigned int i;
	int ret;

	for (i = 0; i < nr_devices; i++) {
		struct vblk_dev *dev = kzalloc(sizeof(*dev), GFP_KERNEL);
		char name[VBLK_NAME_LEN];

		if (!dev)
			return -ENOMEM;
		snprintf(name, sizeof(name), "virgob-load%u", i);
		vblk_dev_init(dev, name, bytes, replicas);
		ret = vblk_dev_power_on(dev);
		if (ret) {
			kfree(dev);
			return ret;
		}
		list_add_tail(&dev->node, &vblk_load_devs);
	}
	return 0;
}

static int vblk_check_params(u64 *bytes)
{
	if (vblk_parse_size(size, bytes)) {
		pr_err("size=%s: want a multiple of 4096 from 4K to 64T\n",
		       size);
		return -EINVAL;
	}
	if (replicas > 3 || !vblk_io_timeout_ms || !vblk_queue_depth ||
	    vblk_queue_depth > BLK_MQ_MAX_DEPTH) {
		pr_err("replicas=%u io_timeout_ms=%u queue_depth=%u: out of range\n",
		       replicas, vblk_io_timeout_ms, vblk_queue_depth);
		return -EINVAL;
	}
	if (!vblk_hw_queues || vblk_hw_queues > nr_cpu_ids)
		vblk_hw_queues = nr_cpu_ids;
	return 0;
}

/* configfs is registered (a load that failed may leave it off). */
static bool vblk_configfs_up;

static int __init vblk_init(void)
{
	u64 bytes;
	int ret;

	ret = vblk_check_params(&bytes);
	if (ret)
		return ret;
	ret = vblk_dev_module_init();
	if (ret)
		return ret;
	ret = vblk_create_load_devs(bytes);
	if (ret) {
		pr_err("cannot create the devices of nr_devices=: %d\n", ret);
		goto remove;
	}
	ret = vblk_configfs_init();
	if (ret)
		goto remove;
	vblk_configfs_up = true;
	pr_info("ready: %u devices at load\n", nr_devices);
	return 0;

remove:
	/*
	 * A disk someone opened meanwhile cannot go, and a failed load
	 * would free the module under its opener: load, with what is left.
	 */
	if (!vblk_remove_load_devs()) {
		pr_err("loaded anyway, with the devices still open (%d)\n",
		       ret);
		return 0;
	}
	vblk_dev_module_exit();
	return ret;
}

static void __exit vblk_exit(void)
{
	/* Each configfs device holds a module reference: none is left. */
	if (vblk_configfs_up)
		vblk_configfs_exit();
	vblk_remove_load_devs();
	vblk_dev_module_exit();
	pr_info("unloaded\n");
}

module_init(vblk_init);
module_exit(vblk_exit);

MODULE_DESCRIPTION("virgo: block devices over remote memory");
MODULE_AUTHOR("The virgo developers");
MODULE_LICENSE("GPL");
