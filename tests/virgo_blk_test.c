// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for virgo_blk: a device over the module's virgo client,
 * lent memory by a virgo_clouddrec server on loopback, driven through the
 * block layer (bios on the opened bdev, the blk-mq request path, the
 * work that moves the data), every byte compared to a shadow copy.
 *
 * The module's client may have peers of its own (kunit.sh gives it the
 * module server for the user-space tests): they are marked draining for
 * each case, so that every chunk lands on the case's server, whose
 * counters the cases read, and which the dead-peer case stops.
 */

#include <kunit/test.h>
#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "virgo_test_net.h"
#include "../virgo_api.h"
#include "../virgo_blk.h"
#include "../virgo_clouddrec.h"

#define VBT_SIZE	(4U << 20)	/* the device: 4 chunks of 1 MiB */
#define VBT_PAGES	(VBT_SIZE / PAGE_SIZE)
#define VBT_BIO_PAGES	64		/* pages per bio: 256 KiB */

struct vbt_ctx {
	struct clouddrec_server *srv;
	struct virgo_peer **others;
	unsigned int nr_others;
	unsigned long was_draining;
	char spec[VIRGO_PEER_SPEC_LEN];
	struct vblk_dev dev;
	struct block_device *bdev;
	struct page *pages[VBT_BIO_PAGES];
	u8 *shadow;
	u8 *got;
	unsigned int io_timeout_ms;
};

static struct vbt_ctx *vbt_of(struct kunit *test)
{
	return test->priv;
}

static int vbt_suite_init(struct kunit_suite *suite)
{
	return virgo_test_lo_up();
}

/* A server on loopback, the module's client using it, a device on. */
static int vbt_init(struct kunit *test)
{
	struct virgo_client *vc = virgo_api_client();
	struct clouddrec_config cfg;
	struct vbt_ctx *ctx;
	int i, ret;

	if (!vc)
		return -ENODEV;
	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	test->priv = ctx;
	ctx->io_timeout_ms = vblk_io_timeout_ms;
	vblk_dev_init(&ctx->dev, "vbt", VBT_SIZE, 1);
	ctx->shadow = vzalloc(VBT_SIZE);
	ctx->got = vzalloc(VBT_SIZE);
	if (!ctx->shadow || !ctx->got)
		return -ENOMEM;
	for (i = 0; i < VBT_BIO_PAGES; i++) {
		ctx->pages[i] = alloc_page(GFP_KERNEL);
		if (!ctx->pages[i])
			return -ENOMEM;
	}
	clouddrec_config_default(&cfg);
	virgo_addr_set_v4(&cfg.addr, htonl(INADDR_LOOPBACK), 0);
	cfg.max_memory = 4 * VBT_SIZE;
	cfg.min_free = 0;
	ctx->srv = clouddrec_server_start(&cfg);
	if (IS_ERR(ctx->srv)) {
		ret = PTR_ERR(ctx->srv);
		ctx->srv = NULL;
		return ret;
	}
	snprintf(ctx->spec, sizeof(ctx->spec), "127.0.0.1:%u",
		 clouddrec_server_port(ctx->srv));
	/* No new chunk on the peers the client had (restored at exit). */
	ctx->others = virgo_peers_snapshot(&vc->peers, &ctx->nr_others);
	if (ctx->nr_others > BITS_PER_LONG)
		return -E2BIG;
	for (i = 0; i < ctx->nr_others; i++) {
		if (READ_ONCE(ctx->others[i]->draining))
			__set_bit(i, &ctx->was_draining);
		WRITE_ONCE(ctx->others[i]->draining, true);
	}
	return virgo_peer_add(&vc->peers, ctx->spec);
}

static void vbt_close(struct vbt_ctx *ctx)
{
	if (ctx->bdev)
		blkdev_put(ctx->bdev, FMODE_READ | FMODE_WRITE);
	ctx->bdev = NULL;
}

static void vbt_exit(struct kunit *test)
{
	struct vbt_ctx *ctx = vbt_of(test);
	int i;

	vbt_close(ctx);
	WARN_ON(vblk_dev_power_off(&ctx->dev));
	vblk_io_timeout_ms = ctx->io_timeout_ms;
	if (ctx->spec[0])
		virgo_peer_del(&virgo_api_client()->peers, ctx->spec);
	for (i = 0; i < ctx->nr_others; i++)
		WRITE_ONCE(ctx->others[i]->draining,
			   test_bit(i, &ctx->was_draining));
	if (ctx->others)
		virgo_peers_snapshot_put(ctx->others, ctx->nr_others);
	if (ctx->srv)
		clouddrec_server_stop(ctx->srv);
	for (i = 0; i < VBT_BIO_PAGES; i++)
		if (ctx->pages[i])
			__free_page(ctx->pages[i]);
	vfree(ctx->shadow);
	vfree(ctx->got);
}

/* Power the device on and open its disk as a user would. */
static void vbt_start(struct kunit *test)
{
	struct vbt_ctx *ctx = vbt_of(test);
	struct block_device *bdev;

	KUNIT_ASSERT_EQ(test, vblk_dev_power_on(&ctx->dev), 0);
	bdev = blkdev_get_by_dev(disk_devt(ctx->dev.disk),
				 FMODE_READ | FMODE_WRITE, NULL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(bdev));
	ctx->bdev = bdev;
	KUNIT_EXPECT_EQ(test, bdev_nr_bytes(bdev), (loff_t)VBT_SIZE);
}

/*
 * One bio of @len bytes (a multiple of 512, at most VBT_BIO_PAGES pages)
 * at byte @pos: written from @buf, or read into it.  Its pages are the
 * context's, so the data path moves them straight; the result errno.
 */
static int vbt_bio(struct kunit *test, enum req_op op, u64 pos, u8 *buf,
		   u32 len)
{
	struct vbt_ctx *ctx = vbt_of(test);
	u32 i, n = DIV_ROUND_UP(len, PAGE_SIZE);
	struct bio *bio;
	int ret;

	KUNIT_ASSERT_LE(test, n, (u32)VBT_BIO_PAGES);
	bio = bio_alloc(ctx->bdev, n, op, GFP_KERNEL);
	bio->bi_iter.bi_sector = pos >> SECTOR_SHIFT;
	for (i = 0; i < n; i++) {
		u32 piece = min_t(u32, len - i * PAGE_SIZE, PAGE_SIZE);

		if (op == REQ_OP_WRITE)
			memcpy(page_address(ctx->pages[i]), buf + i * PAGE_SIZE,
			       piece);
		KUNIT_ASSERT_EQ(test, bio_add_page(bio, ctx->pages[i], piece,
						   0), (int)piece);
	}
	ret = submit_bio_wait(bio);
	bio_put(bio);
	if (!ret && op == REQ_OP_READ)
		for (i = 0; i < n; i++)
			memcpy(buf + i * PAGE_SIZE, page_address(ctx->pages[i]),
			       min_t(u32, len - i * PAGE_SIZE, PAGE_SIZE));
	return ret;
}

/* Write @len bytes of the shadow at @pos through the device. */
static void vbt_write(struct kunit *test, u64 pos, u32 len)
{
	struct vbt_ctx *ctx = vbt_of(test);
	u32 done, n;

	for (done = 0; done < len; done += n) {
		n = min_t(u32, len - done, VBT_BIO_PAGES * PAGE_SIZE);
		KUNIT_ASSERT_EQ(test, vbt_bio(test, REQ_OP_WRITE, pos + done,
					      ctx->shadow + pos + done, n), 0);
	}
}

/* The whole device, read back through it, is the shadow. */
static void vbt_expect_shadow(struct kunit *test)
{
	struct vbt_ctx *ctx = vbt_of(test);
	u32 pos, n = VBT_BIO_PAGES * PAGE_SIZE;

	for (pos = 0; pos < VBT_SIZE; pos += n)
		KUNIT_ASSERT_EQ(test, vbt_bio(test, REQ_OP_READ, pos,
					      ctx->got + pos, n), 0);
	for (pos = 0; pos < VBT_SIZE; pos += PAGE_SIZE)
		KUNIT_EXPECT_EQ_MSG(test, memcmp(ctx->got + pos,
						 ctx->shadow + pos, PAGE_SIZE),
				    0, "bytes %u.. differ from the shadow",
				    pos);
}

/* Random writes of 512 B .. 256 KiB at 512-byte offsets, read back. */
static void virgo_blk_reads_back_every_byte_written(struct kunit *test)
{
	struct vbt_ctx *ctx = vbt_of(test);
	int i;

	vbt_start(test);
	/* A fresh device reads as zeroes (the shadow is zeroed). */
	vbt_expect_shadow(test);
	for (i = 0; i < 40; i++) {
		u32 len = (1 + get_random_u32_below(512)) << SECTOR_SHIFT;
		u64 pos = (u64)get_random_u32_below((VBT_SIZE - len) >>
						    SECTOR_SHIFT) <<
			  SECTOR_SHIFT;

		get_random_bytes(ctx->shadow + pos, len);
		vbt_write(test, pos, len);
	}
	vbt_expect_shadow(test);
}

/* Written whole, then the whole device read as 16 KiB bios. */
static void virgo_blk_small_reads_see_a_whole_write(struct kunit *test)
{
	struct vbt_ctx *ctx = vbt_of(test);
	u32 pos;

	vbt_start(test);
	get_random_bytes(ctx->shadow, VBT_SIZE);
	vbt_write(test, 0, VBT_SIZE);
	for (pos = 0; pos < VBT_SIZE; pos += 16384)
		KUNIT_ASSERT_EQ(test, vbt_bio(test, REQ_OP_READ, pos,
					      ctx->got + pos, 16384), 0);
	KUNIT_EXPECT_EQ(test, memcmp(ctx->got, ctx->shadow, VBT_SIZE), 0);
}

/*
 * A discard with partial chunks at both ends reads as zeroes, the rest
 * keeps its bytes, and the server gives back the memory of the two chunks
 * it covers whole; the limits say discard works in chunks.
 */
static void virgo_blk_discard_reads_zero_and_frees_chunks(struct kunit *test)
{
	struct vbt_ctx *ctx = vbt_of(test);
	u64 start = (1U << 19) + 512, end = (3U << 20) + 4096;
	struct request_queue *q;

	vbt_start(test);
	q = bdev_get_queue(ctx->bdev);
	KUNIT_EXPECT_EQ(test, bdev_max_discard_sectors(ctx->bdev),
			256U * 2048);
	KUNIT_EXPECT_EQ(test, q->limits.discard_granularity, 1U << 20);
	get_random_bytes(ctx->shadow, VBT_SIZE);
	vbt_write(test, 0, VBT_SIZE);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			(u64)VBT_SIZE);

	KUNIT_ASSERT_EQ(test,
			blkdev_issue_discard(ctx->bdev, start >> SECTOR_SHIFT,
					     (end - start) >> SECTOR_SHIFT,
					     GFP_KERNEL), 0);
	memset(ctx->shadow + start, 0, end - start);
	vbt_expect_shadow(test);
	/* Chunks 1 and 2 are gone from the server; 0 and 3 were zeroed. */
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			2ULL << 20);
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv),
			(u64)VBT_SIZE);
}

/*
 * WRITE_ZEROES frees whole chunks too, unless the caller asks to keep the
 * memory (NOUNMAP): then zeroes are written.
 */
static void virgo_blk_write_zeroes_unmaps_unless_told_not_to(struct kunit *test)
{
	struct vbt_ctx *ctx = vbt_of(test);

	vbt_start(test);
	get_random_bytes(ctx->shadow, VBT_SIZE);
	vbt_write(test, 0, VBT_SIZE);
	KUNIT_ASSERT_EQ(test, blkdev_issue_zeroout(ctx->bdev, 0, 2048,
						   GFP_KERNEL,
						   BLKDEV_ZERO_NOFALLBACK), 0);
	memset(ctx->shadow, 0, 1U << 20);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			3ULL << 20);
	KUNIT_ASSERT_EQ(test, blkdev_issue_zeroout(ctx->bdev, 2048, 2048,
						   GFP_KERNEL,
						   BLKDEV_ZERO_NOUNMAP |
						   BLKDEV_ZERO_NOFALLBACK), 0);
	memset(ctx->shadow + (1U << 20), 0, 1U << 20);
	KUNIT_EXPECT_EQ(test, clouddrec_server_materialised_bytes(ctx->srv),
			3ULL << 20);
	vbt_expect_shadow(test);
}

/*
 * Requests to a peer that died fail with BLK_STS_IOERR (-EIO from the
 * bio) within the device's io_timeout_ms, never hang.
 */
static void virgo_blk_dead_peer_fails_io_within_the_timeout(struct kunit *test)
{
	struct vbt_ctx *ctx = vbt_of(test);
	unsigned long start;

	vblk_io_timeout_ms = 1500;
	vbt_start(test);
	get_random_bytes(ctx->shadow, VBT_SIZE);
	vbt_write(test, 0, 1U << 20);
	clouddrec_server_stop(ctx->srv);
	ctx->srv = NULL;

	start = jiffies;
	KUNIT_EXPECT_EQ(test, vbt_bio(test, REQ_OP_WRITE, 0, ctx->shadow,
				      65536), -EIO);
	KUNIT_EXPECT_EQ(test, vbt_bio(test, REQ_OP_READ, 0, ctx->got, 65536),
			-EIO);
	KUNIT_EXPECT_LT_MSG(test, jiffies - start,
			    2 * msecs_to_jiffies(1500) + HZ,
			    "two requests took %u ms",
			    jiffies_to_msecs(jiffies - start));
}

/* Power off is refused while the disk is open, done once it is closed. */
static void virgo_blk_removing_an_open_device_is_busy(struct kunit *test)
{
	struct vbt_ctx *ctx = vbt_of(test);

	vbt_start(test);
	KUNIT_EXPECT_EQ(test, vblk_dev_power_off(&ctx->dev), -EBUSY);
	KUNIT_EXPECT_NOT_NULL(test, ctx->dev.disk);
	vbt_write(test, 0, 4096);
	vbt_close(ctx);
	KUNIT_EXPECT_EQ(test, vblk_dev_power_off(&ctx->dev), 0);
	KUNIT_EXPECT_NULL(test, ctx->dev.disk);
	/* Its memory went back to the server. */
	KUNIT_EXPECT_EQ(test, clouddrec_server_lent_bytes(ctx->srv), 0ULL);
}

/* What each virgo errno becomes for the block layer. */
static void virgo_blk_errnos_map_to_block_statuses(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, vblk_errno_to_status(0), BLK_STS_OK);
	KUNIT_EXPECT_EQ(test, vblk_errno_to_status(-EIO), BLK_STS_IOERR);
	KUNIT_EXPECT_EQ(test, vblk_errno_to_status(-ETIMEDOUT),
			BLK_STS_IOERR);
	KUNIT_EXPECT_EQ(test, vblk_errno_to_status(-EINTR), BLK_STS_IOERR);
	KUNIT_EXPECT_EQ(test, vblk_errno_to_status(-ENOMEM),
			BLK_STS_RESOURCE);
	KUNIT_EXPECT_EQ(test, vblk_errno_to_status(-ENOSPC), BLK_STS_NOSPC);
	KUNIT_EXPECT_EQ(test, vblk_errno_to_status(-EOPNOTSUPP),
			BLK_STS_NOTSUPP);
}

/*
 * Sizes as configfs and size= take them: a number or a suffix shift that
 * overflows is refused, never wrapped to a small size (memparse() took
 * 16777217T as 1 TiB and 2^64 + 4096 as 4096).
 */
static void virgo_blk_size_parser_refuses_what_overflows(struct kunit *test)
{
	u64 v = 0;

	KUNIT_EXPECT_EQ(test, vblk_parse_size("4096", &v), 0);
	KUNIT_EXPECT_EQ(test, v, 4096ULL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("64M", &v), 0);
	KUNIT_EXPECT_EQ(test, v, 64ULL << 20);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("8g", &v), 0);
	KUNIT_EXPECT_EQ(test, v, 8ULL << 30);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("64T", &v), 0);
	KUNIT_EXPECT_EQ(test, v, 64ULL << 40);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("16777217T", &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("18446744073709555712", &v),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("65T", &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("4095", &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("6000", &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("", &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("M", &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("64MB", &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("64X", &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, vblk_parse_size("-4096", &v), -EINVAL);
	KUNIT_EXPECT_EQ(test, v, 64ULL << 40);
}

static struct kunit_case virgo_blk_test_cases[] = {
	KUNIT_CASE(virgo_blk_reads_back_every_byte_written),
	KUNIT_CASE(virgo_blk_small_reads_see_a_whole_write),
	KUNIT_CASE(virgo_blk_discard_reads_zero_and_frees_chunks),
	KUNIT_CASE(virgo_blk_write_zeroes_unmaps_unless_told_not_to),
	KUNIT_CASE(virgo_blk_dead_peer_fails_io_within_the_timeout),
	KUNIT_CASE(virgo_blk_removing_an_open_device_is_busy),
	KUNIT_CASE(virgo_blk_errnos_map_to_block_statuses),
	KUNIT_CASE(virgo_blk_size_parser_refuses_what_overflows),
	{}
};

static struct kunit_suite virgo_blk_test_suite = {
	.name = "virgo_blk",
	.suite_init = vbt_suite_init,
	.init = vbt_init,
	.exit = vbt_exit,
	.test_cases = virgo_blk_test_cases,
};

kunit_test_suite(virgo_blk_test_suite);

MODULE_LICENSE("GPL");
