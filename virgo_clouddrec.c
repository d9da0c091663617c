// SPDX-License-Identifier: GPL-2.0
/*
 * virgo_clouddrec: lends this node's kernel memory to virgo clients.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

static int __init clouddrec_init(void)
{
	pr_info("server loaded\n");
	return 0;
}

static void __exit clouddrec_exit(void)
{
	pr_info("server unloaded\n");
}

module_init(clouddrec_init);
module_exit(clouddrec_exit);

MODULE_DESCRIPTION("virgo: kernel memory spread across many machines (server)");
MODULE_AUTHOR("The virgo developers");
MODULE_LICENSE("GPL");
