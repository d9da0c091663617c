// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_example: a module that uses virgo's in-kernel API, and only that
 * (include/linux/virgo.h).  At load it allocates @size bytes of remote
 * memory, writes a pattern at a few offsets and all over, reads every
 * byte back and compares, and checks the contract: the unwritten memory
 * reads as zeroes, len 0 checks the address, ranges outside fail.  Load
 * fails (-EIO) if anything differs, so `insmod` itself is the test.
 *
 * With keep=1 the allocation is kept and its address shown in
 * /sys/module/virgo_example/parameters/addr; unloading without freeing it
 * then shows virgo freeing it for the departed module.
 *
 * Build it against virgo like any out-of-tree module: see Kbuild here and
 * docs/kernel-api.md.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/virgo.h>

static ulong size = 3 * 1024 * 1024 + 123;
module_param(size, ulong, 0444);
MODULE_PARM_DESC(size, "bytes to allocate (default 3 MiB + 123)");

static bool keep;
module_param(keep, bool, 0444);
MODULE_PARM_DESC(keep, "keep the allocation until unload (default: free it)");

static unsigned long long addr;
module_param(addr, ullong, 0444);
MODULE_PARM_DESC(addr, "the VIRGO address of the kept allocation (read only)");

/* Byte @i of the pattern: depends on the position, not only its low bits. */
static u8 pattern(u64 i)
{
	return (u8)(i * 131 + (i >> 8) * 7 + (i >> 16));
}

/* Read all of [va, va + len) and compare with @ref. */
static int check_range(virgo_addr_t va, const u8 *ref, u8 *buf, size_t len)
{
	int ret;

	memset(buf, 0xa5, len);
	ret = virgo_get(va, buf, len);
	if (ret)
		return ret;
	return memcmp(buf, ref, len) ? -EIO : 0;
}

static int exercise(virgo_addr_t va, u8 *ref, u8 *buf)
{
	u64 got = 0;
	size_t i;
	int ret;

	/* New memory reads as zeroes. */
	ret = check_range(va, ref, buf, size);
	if (ret)
		return ret;
	/* A few bytes across the first chunk boundary. */
	for (i = virgo_chunk_size() - 5; i < virgo_chunk_size() + 5 &&
	     i < size; i++)
		ref[i] = pattern(i);
	i = min_t(size_t, virgo_chunk_size() - 5, size - 1);
	ret = virgo_set(va + i, ref + i, min_t(size_t, 10, size - i));
	if (ret)
		return ret;
	ret = check_range(va, ref, buf, size);
	if (ret)
		return ret;
	/* All of it. */
	for (i = 0; i < size; i++)
		ref[i] = pattern(i);
	ret = virgo_set(va, ref, size);
	if (ret)
		return ret;
	ret = check_range(va, ref, buf, size);
	if (ret)
		return ret;
	/* The contract's edges. */
	if (virgo_get(va + size - 1, NULL, 0) ||
	    virgo_size(va + size / 2, &got) ||
	    got != size || virgo_get(va + size - 1, buf, 2) != -EINVAL ||
	    (size > 1 && virgo_free(va + 1) != -EINVAL))
		return -EIO;
	return 0;
}

static int __init virgo_example_init(void)
{
	virgo_addr_t va;
	u8 *ref, *buf;
	int ret;

	if (!size)
		return -EINVAL;
	ref = kvzalloc(size, GFP_KERNEL);
	buf = kvmalloc(size, GFP_KERNEL);
	ret = -ENOMEM;
	if (!ref || !buf)
		goto out;
	ret = virgo_malloc(size, &va);
	if (ret) {
		pr_err("virgo_malloc(%lu): %d\n", size, ret);
		goto out;
	}
	ret = exercise(va, ref, buf);
	if (ret) {
		pr_err("round trip over %lu bytes failed: %d\n", size, ret);
		virgo_free(va);
		goto out;
	}
	pr_info("%lu bytes at 0x%llx written and read back intact\n", size,
		va);
	if (keep)
		addr = va;
	else
		ret = virgo_free(va);
out:
	kvfree(ref);
	kvfree(buf);
	return ret;
}

static void __exit virgo_example_exit(void)
{
	/* With keep=1 nothing is freed here: virgo does it, and says so. */
}

module_init(virgo_example_init);
module_exit(virgo_example_exit);

MODULE_DESCRIPTION("virgo: example user of the in-kernel API");
MODULE_LICENSE("GPL");
