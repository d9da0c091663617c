/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the KUnit suites that use loopback sockets.
 */
#ifndef _VIRGO_TEST_NET_H
#define _VIRGO_TEST_NET_H

#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <net/net_namespace.h>

/* Inside a KUnit kernel nobody brought lo up: binding 127.0.0.1 fails. */
static inline int virgo_test_lo_up(void)
{
	struct net_device *lo = init_net.loopback_dev;
	int ret;

	rtnl_lock();
	ret = dev_change_flags(lo, lo->flags | IFF_UP, NULL);
	rtnl_unlock();
	return ret;
}

#endif /* _VIRGO_TEST_NET_H */
