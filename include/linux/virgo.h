/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo: kernel memory spread across many machines.
 *
 * The in-kernel interface of the virgo client module.
 */
#ifndef _LINUX_VIRGO_H
#define _LINUX_VIRGO_H

#include <linux/types.h>

/*
 * A VIRGO address: a 64-bit number handed out by the VIRGO address
 * translation table.  It is never a kernel pointer and never 0; the first
 * byte of every allocation is page aligned.
 */
typedef u64 virgo_addr_t;

#endif /* _LINUX_VIRGO_H */
