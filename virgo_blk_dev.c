// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_blk: the disk and its data path.
 *
 * A powered device is one virgo allocation of its size and a blk-mq disk
 * over it.  virgo_set()/virgo_get() sleep, so ->queue_rq() only starts the
 * request and hands it to a work item (one per tag, preallocated in the
 * request's PDU) on a WQ_MEM_RECLAIM workqueue; the work moves each run of
 * the request's pages with one virgo call straight from or into the pages
 * and ends the request.  Many requests of one hardware queue are in
 * flight at once, each on its own worker.
 *
 * Flush: the data lives in the RAM of the cloud nodes, volatile like brd's:
 * a write is complete once every replica acknowledged it, there is no
 * write cache to flush, and the disk does not advertise one (so the block
 * layer sends no flush; one that comes anyway completes at once).
 *
 * Thin: a cloud node gives a chunk memory at its first write, and
 * DISCARD (and WRITE_ZEROES without REQ_NOUNMAP) gives it back through
 * virgo_discard(): whole chunks are discarded on the nodes, the pieces of
 * chunks at the edges of the range written with zeroes.  The discard
 * granularity is the allocation's chunk size, so the block layer splits
 * discards on chunk boundaries.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/bvec.h>
#include <linux/ctype.h>
#include <linux/idr.h>
#include <linux/kstrtox.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include "virgo_blk.h"

/* Bytes of the zeroes WRITE_ZEROES writes at a time. */
#define VBLK_ZERO_LEN		(64 * 1024)
/* Largest request, in 512-byte sectors (1 MiB: one default chunk). */
#define VBLK_MAX_SECTORS	2048
/*
 * Largest DISCARD / WRITE_ZEROES, in sectors: 256 MiB, 256 default chunks,
 * the chunks one virgo_discard() round takes.
 */
#define VBLK_MAX_DISCARD_SECTORS	(256 * 2048)

/* Numbers N of /dev/virgobN. */
static DEFINE_IDA(vblk_ida);
/* Runs the requests (WQ_MEM_RECLAIM: a rescuer keeps swap moving). */
static struct workqueue_struct *vblk_wq;
/* VBLK_ZERO_LEN zero bytes, never written. */
static void *vblk_zeroes;

/* Runs of a request moved by one virgo call (a 1 MiB request of pages). */
#define VBLK_MAX_RUNS		256

/**
 * struct vblk_cmd - the PDU of a request, preallocated per tag: the data
 * path allocates nothing of its own
 * @work: runs the request (vblk_work())
 * @runs: the request's data as runs of contiguous memory
 */
struct vblk_cmd {
	struct work_struct work;
	struct kvec runs[VBLK_MAX_RUNS];
};

/**
 * vblk_errno_to_status() - a virgo errno as a block status
 * @err: 0 or what virgo_set()/virgo_get() returned
 *
 * A peer that failed or did not answer (-EIO, -ETIMEDOUT, -EINTR) is an
 * I/O error; no memory here is a resource shortage, none on the peers
 * (the first write of a chunk under pressure) is no space.
 *
 * Return: the status.
 */
blk_status_t vblk_errno_to_status(int err)
{
	switch (err) {
	case 0:
		return BLK_STS_OK;
	case -ENOMEM:
		return BLK_STS_RESOURCE;
	case -ENOSPC:
		return BLK_STS_NOSPC;
	case -EOPNOTSUPP:
		return BLK_STS_NOTSUPP;
	default:
		return BLK_STS_IOERR;
	}
}

/* Move @n runs at @pos; @pos is advanced past them. */
static int vblk_move(struct vblk_dev *dev, struct vblk_cmd *cmd,
		     unsigned int n, u64 *pos, bool write,
		     unsigned long deadline)
{
	unsigned int i;
	int err;

	if (write)
		err = virgo_setv_deadline(dev->addr + *pos, cmd->runs, n,
					  deadline);
	else
		err = virgo_getv_deadline(dev->addr + *pos, cmd->runs, n,
					  deadline);
	for (i = 0; i < n; i++)
		*pos += cmd->runs[i].iov_len;
	return err;
}

/*
 * Move the request's data straight from or into its pages, as runs of
 * virtually contiguous bytes, all of a request in one virgo call (more
 * only past VBLK_MAX_RUNS runs), so all its requests to the peers are in
 * flight together.  The receive thread of a peer connection writes a
 * READ's bytes into the pages, not this task, so they are addressed
 * through the linear map (bvec_virt()), which every thread shares:
 * Kconfig excludes HIGHMEM (a kmap_local_page() address would be this
 * task's only).
 */
static int vblk_rw(struct vblk_dev *dev, struct request *rq, bool write,
		   unsigned long deadline)
{
	struct vblk_cmd *cmd = blk_mq_rq_to_pdu(rq);
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	struct req_iterator iter;
	unsigned int n = 0;
	struct bio_vec bv;
	int err;

	rq_for_each_bvec(bv, rq, iter) {
		u8 *p = bvec_virt(&bv);

		if (n && (u8 *)cmd->runs[n - 1].iov_base +
		    cmd->runs[n - 1].iov_len == p) {
			cmd->runs[n - 1].iov_len += bv.bv_len;
			continue;
		}
		if (n == VBLK_MAX_RUNS) {
			err = vblk_move(dev, cmd, n, &pos, write, deadline);
			if (err)
				return err;
			n = 0;
		}
		cmd->runs[n].iov_base = p;
		cmd->runs[n].iov_len = bv.bv_len;
		n++;
	}
	if (!n)
		return 0;
	return vblk_move(dev, cmd, n, &pos, write, deadline);
}

static int vblk_write_zeroes(struct vblk_dev *dev, struct request *rq,
			     unsigned long deadline)
{
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;
	u64 left = blk_rq_bytes(rq);
	int err = 0;

	while (left && !err) {
		size_t n = min_t(u64, left, VBLK_ZERO_LEN);

		err = virgo_set_deadline(dev->addr + pos, vblk_zeroes, n,
					 deadline);
		pos += n;
		left -= n;
	}
	return err;
}

/* The range reads as zeroes; the nodes free the chunks it covers. */
static int vblk_discard(struct vblk_dev *dev, struct request *rq,
			unsigned long deadline)
{
	u64 pos = (u64)blk_rq_pos(rq) << SECTOR_SHIFT;

	return virgo_discard_deadline(dev->addr + pos, blk_rq_bytes(rq),
				      deadline);
}

static int vblk_do(struct vblk_dev *dev, struct request *rq,
		   unsigned long deadline)
{
	switch (req_op(rq)) {
	case REQ_OP_READ:
		return vblk_rw(dev, rq, false, deadline);
	case REQ_OP_WRITE:
		return vblk_rw(dev, rq, true, deadline);
	case REQ_OP_DISCARD:
		return vblk_discard(dev, rq, deadline);
	case REQ_OP_WRITE_ZEROES:
		/* NOUNMAP: the caller wants the memory kept allocated. */
		if (rq->cmd_flags & REQ_NOUNMAP)
			return vblk_write_zeroes(dev, rq, deadline);
		return vblk_discard(dev, rq, deadline);
	case REQ_OP_FLUSH:
		return 0;	/* nothing cached: see the top of this file */
	default:
		return -EOPNOTSUPP;
	}
}

static void vblk_work(struct work_struct *work)
{
	struct vblk_cmd *cmd = container_of(work, struct vblk_cmd, work);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct vblk_dev *dev = rq->q->queuedata;
	unsigned long deadline = jiffies +
		msecs_to_jiffies(vblk_io_timeout_ms);
	unsigned int flags;
	int err;

	/*
	 * Swap write-out frees memory, so it may take from the reserves and
	 * never waits for reclaim (PF_MEMALLOC, as nbd's and nvme-tcp's
	 * sends); every other request at least never recurses into I/O.
	 */
	if (rq->cmd_flags & REQ_SWAP) {
		flags = memalloc_noreclaim_save();
		err = vblk_do(dev, rq, deadline);
		memalloc_noreclaim_restore(flags);
	} else {
		flags = memalloc_noio_save();
		err = vblk_do(dev, rq, deadline);
		memalloc_noio_restore(flags);
	}
	if (err)
		pr_err_ratelimited("%s: %s of %u bytes at %llu failed: %d\n",
				   rq->q->disk->disk_name,
				   blk_op_str(req_op(rq)), blk_rq_bytes(rq),
				   (u64)blk_rq_pos(rq) << SECTOR_SHIFT, err);
	blk_mq_end_request(rq, vblk_errno_to_status(err));
}

static blk_status_t vblk_queue_rq(struct blk_mq_hw_ctx *hctx,
				  const struct blk_mq_queue_data *bd)
{
	struct vblk_cmd *cmd = blk_mq_rq_to_pdu(bd->rq);

	blk_mq_start_request(bd->rq);
	queue_work(vblk_wq, &cmd->work);
	return BLK_STS_OK;
}

/*
 * Every virgo call of a request ends by its deadline, so the work always
 * ends the request itself: the block layer's timer only waits for it.
 */
static enum blk_eh_timer_return vblk_timeout(struct request *rq)
{
	return BLK_EH_RESET_TIMER;
}

static int vblk_init_request(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx, unsigned int numa_node)
{
	struct vblk_cmd *cmd = blk_mq_rq_to_pdu(rq);

	INIT_WORK(&cmd->work, vblk_work);
	return 0;
}

static const struct blk_mq_ops vblk_mq_ops = {
	.queue_rq	= vblk_queue_rq,
	.timeout	= vblk_timeout,
	.init_request	= vblk_init_request,
};

/* Called with the disk's open_mutex held. */
static int vblk_open(struct block_device *bdev, fmode_t mode)
{
	struct vblk_dev *dev = bdev->bd_disk->private_data;

	return READ_ONCE(dev->removing) ? -ENXIO : 0;
}

static const struct block_device_operations vblk_fops = {
	.owner	= THIS_MODULE,
	.open	= vblk_open,
};

/**
 * vblk_parse_size() - a device size as configfs and size= take it
 * @str: decimal bytes, with an optional K, M, G, T, P or E suffix (powers
 *	of 1024)
 * @bytes: the size
 *
 * Unlike memparse(), a number or a shift that overflows is an error, not
 * a wrapped size.
 *
 * Return: 0, or -EINVAL (garbage, overflow, outside VBLK_MIN_SIZE ..
 * VBLK_MAX_SIZE, or not a multiple of VBLK_MIN_SIZE).
 */
int vblk_parse_size(const char *str, u64 *bytes)
{
	static const char suffixes[] = "kmgtpe";
	size_t digits = strspn(str, "0123456789");
	unsigned int shift = 0;
	const char *unit;
	char num[24];
	u64 v;

	if (!digits || digits >= sizeof(num))
		return -EINVAL;
	memcpy(num, str, digits);
	num[digits] = 0;
	if (kstrtoull(num, 10, &v))
		return -EINVAL;
	if (str[digits]) {
		unit = strchr(suffixes, tolower(str[digits]));
		if (!unit || str[digits + 1])
			return -EINVAL;
		shift = 10 * (unit - suffixes + 1);
	}
	if (check_shl_overflow(v, shift, &v) || v < VBLK_MIN_SIZE ||
	    v > VBLK_MAX_SIZE || v % VBLK_MIN_SIZE)
		return -EINVAL;
	*bytes = v;
	return 0;
}

/**
 * vblk_dev_init() - set a device up, powered off
 * @dev: the device
 * @name: its name
 * @size: bytes
 * @replicas: copies of every chunk (0: virgo's default)
 */
void vblk_dev_init(struct vblk_dev *dev, const char *name, u64 size,
		   unsigned int replicas)
{
	strscpy(dev->name, name, sizeof(dev->name));
	mutex_init(&dev->lock);
	dev->size = size;
	dev->replicas = replicas;
	dev->index = -1;
	INIT_LIST_HEAD(&dev->node);
}

static int vblk_alloc_tag_set(struct vblk_dev *dev)
{
	struct blk_mq_tag_set *set = &dev->tag_set;

	memset(set, 0, sizeof(*set));
	set->ops = &vblk_mq_ops;
	set->nr_hw_queues = vblk_hw_queues;
	set->queue_depth = vblk_queue_depth;
	set->numa_node = NUMA_NO_NODE;
	set->cmd_size = sizeof(struct vblk_cmd);
	/*
	 * No I/O scheduler unless the user picks one, as for brd and
	 * nvme-tcp: a single hardware queue would get mq-deadline
	 * (elevator_get_default()), which sorts for seeks a remote RAM disk
	 * does not have; with "none" virgo_blk's random 4 KiB IOPS were
	 * 1.5-1.8 x higher in bench-blk (docs/performance.md).
	 */
	set->flags = BLK_MQ_F_SHOULD_MERGE | BLK_MQ_F_NO_SCHED_BY_DEFAULT;
	/* The work's own deadline, and some for the queueing before it. */
	set->timeout = msecs_to_jiffies(vblk_io_timeout_ms) + 30 * HZ;
	set->driver_data = dev;
	return blk_mq_alloc_tag_set(set);
}

static void vblk_set_limits(struct request_queue *q, u32 chunk_size)
{
	blk_queue_logical_block_size(q, SECTOR_SIZE);
	blk_queue_physical_block_size(q, PAGE_SIZE);
	blk_queue_io_min(q, PAGE_SIZE);
	blk_queue_max_hw_sectors(q, VBLK_MAX_SECTORS);
	blk_queue_max_segments(q, USHRT_MAX);
	blk_queue_max_segment_size(q, UINT_MAX);
	blk_queue_max_write_zeroes_sectors(q, VBLK_MAX_DISCARD_SECTORS);
	/* Thin: see the top of this file. */
	blk_queue_max_discard_sectors(q, VBLK_MAX_DISCARD_SECTORS);
	q->limits.discard_granularity = chunk_size;
	/* No write cache: see the top of this file. */
	blk_queue_write_cache(q, false, false);
	blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	blk_queue_flag_clear(QUEUE_FLAG_ADD_RANDOM, q);
}

/* The disk over @dev's allocation, added; 0 or a negative errno. */
static int vblk_add_disk(struct vblk_dev *dev)
{
	struct virgo_alloc_info info;
	struct gendisk *disk;
	int ret;

	ret = virgo_stat(dev->addr, &info);
	if (ret)
		return ret;
	ret = vblk_alloc_tag_set(dev);
	if (ret)
		return ret;
	disk = blk_mq_alloc_disk(&dev->tag_set, dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto free_set;
	}
	vblk_set_limits(disk->queue, info.chunk_size);
	disk->fops = &vblk_fops;
	disk->private_data = dev;
	snprintf(disk->disk_name, sizeof(disk->disk_name), "virgob%d",
		 dev->index);
	set_capacity(disk, dev->size >> SECTOR_SHIFT);
	dev->removing = false;
	/* Also publishes ->addr to the data path. */
	ret = add_disk(disk);
	if (ret)
		goto put;
	dev->disk = disk;
	return 0;

put:
	put_disk(disk);
free_set:
	blk_mq_free_tag_set(&dev->tag_set);
	return ret;
}

/**
 * vblk_dev_power_on() - allocate the memory and add the disk
 * @dev: the device
 *
 * Return: 0 (also when already on), or a negative errno: virgo_malloc()'s
 * (-ENOSPC: the peers cannot lend that much), -ENOMEM, -ENOSPC when no
 * disk number is left.
 */
int vblk_dev_power_on(struct vblk_dev *dev)
{
	int ret = 0;

	mutex_lock(&dev->lock);
	if (dev->disk)
		goto unlock;
	ret = ida_alloc(&vblk_ida, GFP_KERNEL);
	if (ret < 0)
		goto unlock;
	dev->index = ret;
	ret = virgo_malloc_replicas(dev->size, dev->replicas, &dev->addr);
	if (ret)
		goto free_index;
	/* While a disk exists its peer sockets may use the reserves. */
	virgo_memalloc_get();
	ret = vblk_add_disk(dev);
	if (ret)
		goto free_mem;
	pr_info("%s: %s, %llu bytes, replicas %u\n", dev->name,
		dev->disk->disk_name, dev->size, dev->replicas);
	mutex_unlock(&dev->lock);
	return 0;

free_mem:
	virgo_memalloc_put();
	virgo_free(dev->addr);
	dev->addr = 0;
free_index:
	ida_free(&vblk_ida, dev->index);
	dev->index = -1;
unlock:
	mutex_unlock(&dev->lock);
	return ret;
}

/**
 * vblk_dev_power_off() - remove the disk and free the memory
 * @dev: the device
 *
 * Refused while the disk (or a partition of it) is open; once the last
 * opener was checked no new one gets in.  del_gendisk() waits for the
 * requests in flight, which all end by their deadline.
 *
 * Return: 0 (also when already off) or -EBUSY.
 */
int vblk_dev_power_off(struct vblk_dev *dev)
{
	struct gendisk *disk;
	int ret;

	mutex_lock(&dev->lock);
	disk = dev->disk;
	if (!disk) {
		mutex_unlock(&dev->lock);
		return 0;
	}
	mutex_lock(&disk->open_mutex);
	if (disk_openers(disk)) {
		mutex_unlock(&disk->open_mutex);
		mutex_unlock(&dev->lock);
		return -EBUSY;
	}
	WRITE_ONCE(dev->removing, true);
	mutex_unlock(&disk->open_mutex);

	del_gendisk(disk);
	put_disk(disk);
	blk_mq_free_tag_set(&dev->tag_set);
	dev->disk = NULL;
	ret = virgo_free(dev->addr);
	if (ret)
		pr_warn("%s: freeing its memory: %d\n", dev->name, ret);
	virgo_memalloc_put();
	dev->addr = 0;
	ida_free(&vblk_ida, dev->index);
	dev->index = -1;
	pr_info("%s: removed\n", dev->name);
	mutex_unlock(&dev->lock);
	return 0;
}

/**
 * vblk_dev_module_init() - the workqueue and the zeroes
 *
 * Return: 0 or -ENOMEM.
 */
int vblk_dev_module_init(void)
{
	vblk_zeroes = vzalloc(VBLK_ZERO_LEN);
	if (!vblk_zeroes)
		return -ENOMEM;
	vblk_wq = alloc_workqueue("virgo_blk", WQ_MEM_RECLAIM | WQ_HIGHPRI,
				  0);
	if (!vblk_wq) {
		vfree(vblk_zeroes);
		return -ENOMEM;
	}
	return 0;
}

/**
 * vblk_dev_module_exit() - undo vblk_dev_module_init() (every device is
 * powered off)
 */
void vblk_dev_module_exit(void)
{
	destroy_workqueue(vblk_wq);
	vfree(vblk_zeroes);
	ida_destroy(&vblk_ida);
}
