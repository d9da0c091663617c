// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client module: its parameters, and init/exit wiring the parts
 * (client instance, exported API, sysfs admin, /dev/virgo, syscalls).
 * The parts get the client from here and never call back up.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpumask.h>
#include <linux/module.h>
#include <linux/string.h>

#include "virgo_admin.h"
#include "virgo_api.h"
#include "virgo_client.h"
#include "virgo_dev.h"
#include "virgo_sys.h"
#include "virgo_user.h"

static char *peers;
module_param(peers, charp, 0444);
MODULE_PARM_DESC(peers, "comma-separated list of virgo_clouddrec peers: a.b.c.d:port or [ipv6]:port, each with an optional @domain");

static char psk[65];
module_param_string(psk, psk, sizeof(psk), 0);
MODULE_PARM_DESC(psk, "pre-shared key for the peers, up to 64 bytes");

static uint chunk_size = VIRGO_CHUNK_DEFAULT;
module_param(chunk_size, uint, 0444);
MODULE_PARM_DESC(chunk_size, "bytes per chunk (default 1 MiB)");

static uint connect_timeout_ms = 3000;
module_param(connect_timeout_ms, uint, 0444);
MODULE_PARM_DESC(connect_timeout_ms, "bound on connecting to a peer (default 3000)");

static uint rpc_timeout_ms = 10000;
module_param(rpc_timeout_ms, uint, 0444);
MODULE_PARM_DESC(rpc_timeout_ms, "bound on each request round (default 10000)");

static uint replicas = 1;
module_param(replicas, uint, 0444);
MODULE_PARM_DESC(replicas, "copies of every chunk, on distinct peers (and failure domains), 1..3 (default 1)");

static uint peer_dead_ms = 60000;
module_param(peer_dead_ms, uint, 0444);
MODULE_PARM_DESC(peer_dead_ms, "a peer unreachable this long has its replicas re-created elsewhere (default 60000)");

static uint queues;
module_param(queues, uint, 0444);
MODULE_PARM_DESC(queues, "connections to each peer, with servers that grant QUEUES (default 0: one per online CPU; at most 16)");

static uint repair_kbps;
module_param(repair_kbps, uint, 0444);
MODULE_PARM_DESC(repair_kbps, "bound on repair bandwidth in KiB/s (default 0: none)");

/* The module's client: set up at init, torn down at exit. */
static struct virgo_client virgo_client;

static int __init virgo_init(void)
{
	struct virgo_client_config cfg = {
		.peers = peers,
		.psk = (const u8 *)psk,
		.psk_len = strnlen(psk, sizeof(psk)),
		.chunk_size = chunk_size,
		.connect_timeout_ms = connect_timeout_ms,
		.rpc_timeout_ms = rpc_timeout_ms,
		.replicas = replicas,
		.peer_dead_ms = peer_dead_ms,
		.repair_kbps = repair_kbps,
		.queues = queues ? queues :
			  min(num_online_cpus(), VIRGO_QUEUES_MAX),
	};
	int ret;

	if (cfg.psk_len > 64)
		return -EINVAL;
	ret = virgo_client_init(&virgo_client, &cfg);
	memzero_explicit(psk, sizeof(psk));
	if (ret) {
		pr_err("cannot start: %d (check peers=, chunk_size= and replicas=)\n",
		       ret);
		return ret;
	}
	ret = virgo_api_init(&virgo_client);
	if (ret)
		goto destroy;
	ret = virgo_admin_init(&virgo_client);
	if (ret)
		goto api;
	ret = virgo_dev_init(&virgo_client);
	if (ret)
		goto admin;
	virgo_sys_init(&virgo_client);
	pr_info("client ready: %u peers, %u-byte chunks%s\n",
		virgo_client.peers.nr, chunk_size,
		cfg.psk_len ? ", key set" : "");
	return 0;

admin:
	virgo_admin_exit();
api:
	virgo_api_exit();
destroy:
	virgo_client_destroy(&virgo_client);
	return ret;
}

static void __exit virgo_exit(void)
{
	virgo_sys_exit();
	virgo_dev_exit();
	virgo_admin_exit();
	virgo_api_exit();
	virgo_client_destroy(&virgo_client);
	virgo_user_owners_release();
	pr_info("client unloaded\n");
}

module_init(virgo_init);
module_exit(virgo_exit);

MODULE_DESCRIPTION("virgo: kernel memory spread across many machines (client)");
MODULE_AUTHOR("The virgo developers");
MODULE_LICENSE("GPL");
