/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client: what /dev/virgo and the syscalls share -- per-user owner
 * cookies and bounded copies between user memory and the peers.
 */
#ifndef _VIRGO_USER_H
#define _VIRGO_USER_H

#include <linux/uidgid.h>

#include "virgo_client.h"

const void *virgo_user_owner(kuid_t uid);
void virgo_user_owners_release(void);
int virgo_user_malloc(struct virgo_client *vc, u64 size, const void *owner,
		      u64 __user *uaddr);
ssize_t virgo_user_rw(struct virgo_client *vc, const void *owner, u64 addr,
		      void __user *ubuf, u64 len, bool write);

#endif /* _VIRGO_USER_H */
