// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: virgo_malloc(), virgo_free(), virgo_set(), virgo_get().
 *
 * This file holds the module glue and the allocation table of the client.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>

#include "virgo_xlat.h"

/* The VIRGO address translation table of this node; has its own lock. */
static struct virgo_xlat virgo_table;

static int __init virgo_init(void)
{
	virgo_xlat_init(&virgo_table);
	pr_info("client loaded\n");
	return 0;
}

static void __exit virgo_exit(void)
{
	virgo_xlat_destroy(&virgo_table);
	pr_info("client unloaded\n");
}

module_init(virgo_init);
module_exit(virgo_exit);

MODULE_DESCRIPTION("virgo: kernel memory spread across many machines (client)");
MODULE_AUTHOR("The virgo developers");
MODULE_LICENSE("GPL");
