/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client: the virgo_* system calls, on kernels carrying the
 * project's patch (patches/).  Kbuild builds virgo_sys.c only when the
 * kernel headers have <linux/virgo_syscall.h>.
 */
#ifndef _VIRGO_SYS_H
#define _VIRGO_SYS_H

#include "virgo_client.h"

#ifdef VIRGO_HAVE_SYSCALLS
void virgo_sys_init(struct virgo_client *vc);
void virgo_sys_exit(void);
#else
static inline void virgo_sys_init(struct virgo_client *vc)
{
}

static inline void virgo_sys_exit(void)
{
}
#endif

#endif /* _VIRGO_SYS_H */
