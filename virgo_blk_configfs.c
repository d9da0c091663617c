// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_blk: the configfs control, as null_blk and nvmet have it.
 *
 *   mkdir /sys/kernel/config/virgo_blk/NAME     a device, powered off
 *   echo 1G > .../NAME/size                     bytes (K/M/G/T suffixes)
 *   echo 2  > .../NAME/replicas                 0 (virgo's default) .. 3
 *   echo 1  > .../NAME/power                    allocate, add /dev/virgobN
 *   cat .../NAME/disk                           virgobN while powered
 *   echo 0  > .../NAME/power                    remove it (EBUSY if open)
 *   rmdir .../NAME                              EBUSY while powered
 *
 * A powered device pins its directory (configfs_depend_item()), so rmdir
 * cannot take a disk away under its users: power off first, which is
 * refused while the disk is open.  Each directory holds a module
 * reference (configfs does that), so rmmod waits for every rmdir.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/configfs.h>
#include <linux/kstrtox.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "virgo_blk.h"

/**
 * struct vblk_item - a device made through configfs
 * @item: its configfs directory
 * @power_lock: serialises power changes; protects @pinned
 * @pinned: powered on, and the directory is pinned for it
 * @dev: the device
 */
struct vblk_item {
	struct config_item item;
	/* Serialises power on/off with the pin of the directory. */
	struct mutex power_lock;
	bool pinned;
	struct vblk_dev dev;
};

static struct configfs_subsystem vblk_subsys;

static struct vblk_item *to_vblk_item(struct config_item *item)
{
	return container_of(item, struct vblk_item, item);
}

static ssize_t vblk_item_size_show(struct config_item *item, char *page)
{
	struct vblk_dev *dev = &to_vblk_item(item)->dev;
	u64 size;

	mutex_lock(&dev->lock);
	size = dev->size;
	mutex_unlock(&dev->lock);
	return sysfs_emit(page, "%llu\n", size);
}

static ssize_t vblk_item_size_store(struct config_item *item,
				    const char *page, size_t count)
{
	struct vblk_dev *dev = &to_vblk_item(item)->dev;
	char buf[32];
	ssize_t ret = count;
	u64 size;

	if (count >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, page, count);
	buf[count] = 0;
	if (vblk_parse_size(strim(buf), &size))
		return -EINVAL;
	mutex_lock(&dev->lock);
	if (dev->disk)
		ret = -EBUSY;
	else
		dev->size = size;
	mutex_unlock(&dev->lock);
	return ret;
}

static ssize_t vblk_item_replicas_show(struct config_item *item, char *page)
{
	struct vblk_dev *dev = &to_vblk_item(item)->dev;
	unsigned int replicas;

	mutex_lock(&dev->lock);
	replicas = dev->replicas;
	mutex_unlock(&dev->lock);
	return sysfs_emit(page, "%u\n", replicas);
}

static ssize_t vblk_item_replicas_store(struct config_item *item,
					const char *page, size_t count)
{
	struct vblk_dev *dev = &to_vblk_item(item)->dev;
	ssize_t ret = count;
	unsigned int v;

	if (kstrtouint(page, 0, &v) || v > 3)
		return -EINVAL;
	mutex_lock(&dev->lock);
	if (dev->disk)
		ret = -EBUSY;
	else
		dev->replicas = v;
	mutex_unlock(&dev->lock);
	return ret;
}

static ssize_t vblk_item_power_show(struct config_item *item, char *page)
{
	struct vblk_item *vi = to_vblk_item(item);
	bool on;

	mutex_lock(&vi->power_lock);
	on = vi->pinned;
	mutex_unlock(&vi->power_lock);
	return sysfs_emit(page, "%d\n", on);
}

/*
 * Pinned first, then powered: an rmdir racing the store fails the pin
 * (-ENOENT) before any disk exists, so a disk never outlives its
 * directory, whoever opens it meanwhile.
 */
static int vblk_item_power_on(struct vblk_item *vi)
{
	int ret;

	/* Called from a callback of this same subsystem: the unlocked one. */
	ret = configfs_depend_item_unlocked(&vblk_subsys, &vi->item);
	if (ret)
		return ret;
	ret = vblk_dev_power_on(&vi->dev);
	if (ret) {
		configfs_undepend_item(&vi->item);
		return ret;
	}
	vi->pinned = true;
	return 0;
}

static int vblk_item_power_off(struct vblk_item *vi)
{
	int ret = vblk_dev_power_off(&vi->dev);

	if (ret)
		return ret;
	configfs_undepend_item(&vi->item);
	vi->pinned = false;
	return 0;
}

static ssize_t vblk_item_power_store(struct config_item *item,
				     const char *page, size_t count)
{
	struct vblk_item *vi = to_vblk_item(item);
	bool on;
	int ret = 0;

	if (kstrtobool(page, &on))
		return -EINVAL;
	mutex_lock(&vi->power_lock);
	if (on && !vi->pinned)
		ret = vblk_item_power_on(vi);
	else if (!on && vi->pinned)
		ret = vblk_item_power_off(vi);
	mutex_unlock(&vi->power_lock);
	return ret ? ret : count;
}

static ssize_t vblk_item_disk_show(struct config_item *item, char *page)
{
	struct vblk_dev *dev = &to_vblk_item(item)->dev;
	ssize_t ret;

	mutex_lock(&dev->lock);
	ret = sysfs_emit(page, "%s\n", dev->disk ? dev->disk->disk_name : "");
	mutex_unlock(&dev->lock);
	return ret;
}

CONFIGFS_ATTR(vblk_item_, size);
CONFIGFS_ATTR(vblk_item_, replicas);
CONFIGFS_ATTR(vblk_item_, power);
CONFIGFS_ATTR_RO(vblk_item_, disk);

static struct configfs_attribute *vblk_item_attrs[] = {
	&vblk_item_attr_size,
	&vblk_item_attr_replicas,
	&vblk_item_attr_power,
	&vblk_item_attr_disk,
	NULL,
};

static void vblk_item_release(struct config_item *item)
{
	kfree(to_vblk_item(item));
}

static struct configfs_item_operations vblk_item_ops = {
	.release	= vblk_item_release,
};

static const struct config_item_type vblk_item_type = {
	.ct_item_ops	= &vblk_item_ops,
	.ct_attrs	= vblk_item_attrs,
	.ct_owner	= THIS_MODULE,
};

static struct config_item *vblk_make_item(struct config_group *group,
					  const char *name)
{
	struct vblk_item *vi;

	if (strlen(name) >= VBLK_NAME_LEN)
		return ERR_PTR(-ENAMETOOLONG);
	vi = kzalloc(sizeof(*vi), GFP_KERNEL);
	if (!vi)
		return ERR_PTR(-ENOMEM);
	mutex_init(&vi->power_lock);
	vblk_dev_init(&vi->dev, name, 64ULL << 20, 0);
	config_item_init_type_name(&vi->item, name, &vblk_item_type);
	return &vi->item;
}

/* rmdir: never powered here (a powered directory is pinned). */
static void vblk_drop_item(struct config_group *group,
			   struct config_item *item)
{
	struct vblk_item *vi = to_vblk_item(item);

	WARN_ON(vblk_dev_power_off(&vi->dev));
	config_item_put(item);
}

static struct configfs_group_operations vblk_group_ops = {
	.make_item	= vblk_make_item,
	.drop_item	= vblk_drop_item,
};

static ssize_t vblk_group_features_show(struct config_item *item,
					char *page)
{
	return sysfs_emit(page, "size,replicas,power,disk\n");
}

CONFIGFS_ATTR_RO(vblk_group_, features);

static struct configfs_attribute *vblk_group_attrs[] = {
	&vblk_group_attr_features,
	NULL,
};

static const struct config_item_type vblk_group_type = {
	.ct_group_ops	= &vblk_group_ops,
	.ct_attrs	= vblk_group_attrs,
	.ct_owner	= THIS_MODULE,
};

static struct configfs_subsystem vblk_subsys = {
	.su_group = {
		.cg_item = {
			.ci_namebuf = "virgo_blk",
			.ci_type = &vblk_group_type,
		},
	},
};

/**
 * vblk_configfs_init() - register /sys/kernel/config/virgo_blk
 *
 * Return: 0 or a negative errno.
 */
int vblk_configfs_init(void)
{
	config_group_init(&vblk_subsys.su_group);
	mutex_init(&vblk_subsys.su_mutex);
	return configfs_register_subsystem(&vblk_subsys);
}

/**
 * vblk_configfs_exit() - unregister it (no directory is left: each held a
 * module reference)
 */
void vblk_configfs_exit(void)
{
	configfs_unregister_subsystem(&vblk_subsys);
}
