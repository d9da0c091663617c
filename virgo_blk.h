/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo_blk: a block device over one virgo allocation (docs/blk.md).
 */
#ifndef _VIRGO_BLK_H
#define _VIRGO_BLK_H

#include <linux/bits.h>
#include <linux/blk-mq.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/virgo.h>

/* Name of a device's disk, "virgob<N>", with its NUL. */
#define VBLK_DISK_NAME_LEN	DISK_NAME_LEN
/* Name of a device (its configfs directory), with its NUL. */
#define VBLK_NAME_LEN		32

/* Bounds of a device's size, bytes: one page .. what virgo allows. */
#define VBLK_MIN_SIZE		4096ULL
#define VBLK_MAX_SIZE		BIT_ULL(46)

/**
 * struct vblk_dev - one virgo block device
 * @name: its name (the configfs directory, or "virgob<N>" for a device
 *	made at module load)
 * @lock: serialises configuring, powering on and off; protects @size,
 *	@replicas, @disk, @addr and @index
 * @size: bytes (a multiple of 4096)
 * @replicas: copies of every chunk (0: the virgo client's default)
 * @index: N of /dev/virgobN while powered, else -1
 * @addr: the virgo allocation behind the disk while powered, else 0
 * @disk: the disk while powered, else NULL
 * @tag_set: its blk-mq tag set while powered
 * @removing: set under the disk's open_mutex when it goes away: no new
 *	opener gets in after the last one was checked
 * @node: entry in the list of devices made at load (virgo_blk_main.c)
 */
struct vblk_dev {
	char name[VBLK_NAME_LEN];
	/* Serialises configuration and power; protects the fields above. */
	struct mutex lock;
	u64 size;
	unsigned int replicas;
	int index;
	virgo_addr_t addr;
	struct gendisk *disk;
	struct blk_mq_tag_set tag_set;
	bool removing;
	struct list_head node;
};

/* virgo_blk_main.c: settings and shared objects of the module */
extern unsigned int vblk_io_timeout_ms;
extern unsigned int vblk_queue_depth;
extern unsigned int vblk_hw_queues;

/* virgo_blk_dev.c: disks */
void vblk_dev_init(struct vblk_dev *dev, const char *name, u64 size,
		   unsigned int replicas);
int vblk_dev_power_on(struct vblk_dev *dev);
int vblk_dev_power_off(struct vblk_dev *dev);
int vblk_dev_module_init(void);
void vblk_dev_module_exit(void);
blk_status_t vblk_errno_to_status(int err);
int vblk_parse_size(const char *str, u64 *bytes);

/* virgo_blk_configfs.c: /sys/kernel/config/virgo_blk */
int vblk_configfs_init(void);
void vblk_configfs_exit(void);

#endif /* _VIRGO_BLK_H */
