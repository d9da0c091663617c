/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo: a helper both modules' send loops share (header-only: kbuild
 * links an object into one module only).
 */
#ifndef _VIRGO_KVEC_H
#define _VIRGO_KVEC_H

#include <linux/minmax.h>
#include <linux/uio.h>

/**
 * virgo_kvec_advance() - drop @done bytes from the front of a kvec array
 * @iov: in/out: the first element still holding bytes
 * @nr: in/out: elements left
 * @done: bytes a partial kernel_sendmsg() sent
 */
static inline void virgo_kvec_advance(struct kvec **iov, int *nr,
				      size_t done)
{
	while (done && *nr) {
		size_t n = min(done, (*iov)->iov_len);

		(*iov)->iov_base += n;
		(*iov)->iov_len -= n;
		done -= n;
		if (!(*iov)->iov_len) {
			(*iov)++;
			(*nr)--;
		}
	}
}

#endif /* _VIRGO_KVEC_H */
