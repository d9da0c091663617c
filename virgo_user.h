/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client: what /dev/virgo and the syscalls share -- who may
 * allocate, per-user owner cookies and limits, and transfers between
 * pinned user memory and the peers.
 */
#ifndef _VIRGO_USER_H
#define _VIRGO_USER_H

#include <linux/uidgid.h>

#include "virgo_client.h"

struct virgo_user;

/**
 * struct virgo_user_fd - the allocations an open /dev/virgo holds
 * @user: the user they are charged to (the file's opener)
 * @bytes: bytes in them (under @user's lock)
 * @allocs: how many (under @user's lock)
 *
 * A part of @user's charge, given back as a whole when the file's
 * allocations are freed on release.
 */
struct virgo_user_fd {
	struct virgo_user *user;
	u64 bytes;
	unsigned int allocs;
};

struct virgo_user *virgo_user_owner(kuid_t uid);
void virgo_user_owners_release(void);
int virgo_user_malloc(struct virgo_client *vc, u64 size,
		      unsigned int replicas,
		      struct virgo_user *user, struct virgo_user_fd *fd,
		      u64 __user *uaddr);
int virgo_user_free(struct virgo_client *vc, u64 addr,
		    struct virgo_user *user, struct virgo_user_fd *fd);
void virgo_user_fd_release(struct virgo_client *vc, struct virgo_user_fd *fd);
ssize_t virgo_user_rw(struct virgo_client *vc, const void *owner, u64 addr,
		      void __user *ubuf, u64 len, bool write);

#endif /* _VIRGO_USER_H */
