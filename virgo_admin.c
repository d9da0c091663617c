// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: what an administrator sees and changes at run time.
 *
 *   /sys/kernel/virgo/peers    read: one line per peer;
 *                              write: "add ADDR:PORT[@domain]",
 *                              "del ADDR:PORT" or "drain ADDR:PORT",
 *                              ADDR a.b.c.d or [ipv6] (virgo_addr.h)
 *   /sys/kernel/debug/virgo/table   the VIRGO address translation table:
 *                              every allocation and where each chunk lives
 *   /sys/kernel/debug/virgo/peers   the peers with their connection state
 *
 * No kernel address is ever printed: owners show as "kernel" (built-in
 * callers) or "user" (any other owner: user space, or a module).
 */

#include <linux/debugfs.h>
#include <linux/kobject.h>
#include <linux/seq_file.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "virgo_admin.h"

/* The client the files describe; set while they exist. */
static struct virgo_client *admin_client;
static struct dentry *admin_dir;
static struct kobject *admin_kobj;

/* Longest peers line: 11 numbers of up to 20 digits, "[ipv6]:port", label. */
#define ADMIN_PEER_LINE_LEN \
	(11 * 21 + VIRGO_ADDR_STRLEN + VIRGO_PEER_DOMAIN_LEN)

static void admin_peer_line(struct seq_file *m, char *buf, size_t size,
			    struct virgo_peer *peer)
{
	int state = READ_ONCE(peer->state);
	bool suspect = state == VIRGO_PEER_UP && atomic_read(&peer->suspect);
	int n = scnprintf(buf, size,
			  "%u %s %s %u %llu %lld %llu %llu %d %s %d %d\n",
			  peer->id, peer->name,
			  suspect ? "suspect" : virgo_peer_state_name(state),
			  READ_ONCE(peer->epoch),
			  div_u64(atomic64_read(&peer->rtt_ns), 1000),
			  (long long)atomic64_read(&peer->free),
			  peer->capacity, atomic64_read(&peer->placed),
			  atomic_read(&peer->inflight),
			  peer->domain[0] ? peer->domain : "-",
			  atomic_read(&peer->resumed),
			  atomic_read(&peer->sessions_lost));

	if (m)
		seq_write(m, buf, n);
}

#define ADMIN_PEERS_HEADER \
	"id address state epoch rtt_us free capacity placed inflight domain resumed lost\n"

static int admin_peers_show(struct seq_file *m, void *v)
{
	struct virgo_peer **peers;
	unsigned int nr, i;
	char line[ADMIN_PEER_LINE_LEN];

	seq_puts(m, ADMIN_PEERS_HEADER);
	peers = virgo_peers_snapshot(&admin_client->peers, &nr);
	for (i = 0; i < nr; i++)
		admin_peer_line(m, line, sizeof(line), peers[i]);
	virgo_peers_snapshot_put(peers, nr);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(admin_peers);

/*
 * A chunk: its first replica on the chunk line (with the number of
 * replicas and the stale mask), the others on "replica" lines below.
 */
static void admin_chunk_lines(struct seq_file *m, u32 i,
			      const struct virgo_chunk *c)
{
	u16 stale = READ_ONCE(c->stale);
	unsigned int r;

	for (r = 0; r < c->nr_replicas; r++) {
		const struct virgo_replica *rep = &c->replicas[r];
		struct virgo_peer *peer;
		const char *name;

		peer = virgo_peer_get(&admin_client->peers, rep->peer_id);
		name = peer ? peer->name : "(removed)";
		if (!r)
			seq_printf(m, "  chunk %u offset %llu len %u peer %u %s epoch %u handle %llu replicas %u stale 0x%x\n",
				   i, c->offset, c->len, rep->peer_id, name,
				   rep->epoch, rep->handle, c->nr_replicas,
				   stale);
		else
			seq_printf(m, "    replica %u peer %u %s epoch %u handle %llu%s\n",
				   r, rep->peer_id, name, rep->epoch,
				   rep->handle,
				   stale & BIT(r) ? " stale" : "");
		if (peer)
			virgo_peer_put(peer);
	}
}

static int admin_table_show(struct seq_file *m, void *v)
{
	struct virgo_xlat *xl = &admin_client->table;
	struct virgo_xlat_entry *e;
	virgo_addr_t from = 0;
	u32 i;

	seq_printf(m, "allocations %lu bytes %llu stale_replicas %lld repaired_chunks %lld repaired_bytes %lld\n",
		   virgo_xlat_count(xl), virgo_xlat_bytes(xl),
		   (long long)atomic64_read(&admin_client->stale_replicas),
		   (long long)atomic64_read(&admin_client->repaired_chunks),
		   (long long)atomic64_read(&admin_client->repaired_bytes));
	while ((e = virgo_xlat_find_next(xl, &from))) {
		seq_printf(m, "0x%llx size %llu owner %s chunks %u\n", e->va,
			   e->size, e->owner ? "user" : "kernel", e->nr_chunks);
		for (i = 0; i < e->nr_chunks; i++)
			admin_chunk_lines(m, i, &e->chunks[i]);
		virgo_xlat_put(e);
		if (seq_has_overflowed(m))
			break;
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(admin_table);

static ssize_t peers_show(struct kobject *kobj, struct kobj_attribute *attr,
			  char *buf)
{
	struct virgo_peer **peers;
	unsigned int nr, i;
	ssize_t len;

	len = sysfs_emit(buf, "%s", ADMIN_PEERS_HEADER);
	peers = virgo_peers_snapshot(&admin_client->peers, &nr);
	for (i = 0; i < nr && len < PAGE_SIZE - ADMIN_PEER_LINE_LEN; i++) {
		char line[ADMIN_PEER_LINE_LEN];

		admin_peer_line(NULL, line, sizeof(line), peers[i]);
		len += sysfs_emit_at(buf, len, "%s", line);
	}
	virgo_peers_snapshot_put(peers, nr);
	return len;
}

static ssize_t peers_store(struct kobject *kobj, struct kobj_attribute *attr,
			   const char *buf, size_t count)
{
	char cmd[sizeof("drain ") + VIRGO_PEER_SPEC_LEN];
	int ret;

	if (count >= sizeof(cmd))
		return -EINVAL;
	memcpy(cmd, buf, count);
	cmd[count] = '\0';
	if (str_has_prefix(cmd, "add "))
		ret = virgo_peer_add(&admin_client->peers, cmd + 4);
	else if (str_has_prefix(cmd, "del "))
		ret = virgo_peer_del(&admin_client->peers, cmd + 4);
	else if (str_has_prefix(cmd, "drain "))
		ret = virgo_peer_drain(&admin_client->peers, cmd + 6);
	else
		ret = -EINVAL;
	return ret ? ret : count;
}

static struct kobj_attribute peers_attr = __ATTR(peers, 0644, peers_show,
						 peers_store);

/* Redundancy: default replicas, what is degraded, what repair did. */
static ssize_t replicas_show(struct kobject *kobj,
			     struct kobj_attribute *attr, char *buf)
{
	struct virgo_client *vc = admin_client;

	return sysfs_emit(buf,
			  "replicas %u\nstale_replicas %lld\nstale_bytes %lld\nrepaired_chunks %lld\nrepaired_bytes %lld\nrepair_rate_bps %lld\n",
			  vc->replicas,
			  (long long)atomic64_read(&vc->stale_replicas),
			  (long long)atomic64_read(&vc->stale_bytes),
			  (long long)atomic64_read(&vc->repaired_chunks),
			  (long long)atomic64_read(&vc->repaired_bytes),
			  (long long)atomic64_read(&vc->repair_rate_bps));
}

static struct kobj_attribute replicas_attr = __ATTR_RO(replicas);

static struct attribute *admin_attrs[] = {
	&peers_attr.attr,
	&replicas_attr.attr,
	NULL,
};

static const struct attribute_group admin_group = {
	.attrs = admin_attrs,
};

/**
 * virgo_admin_init() - publish the admin files of a client
 * @vc: the client (the module's)
 *
 * Return: 0 or a negative errno (debugfs failures are not fatal).
 */
int virgo_admin_init(struct virgo_client *vc)
{
	int ret;

	admin_client = vc;
	admin_kobj = kobject_create_and_add("virgo", kernel_kobj);
	if (!admin_kobj)
		return -ENOMEM;
	ret = sysfs_create_group(admin_kobj, &admin_group);
	if (ret) {
		kobject_put(admin_kobj);
		admin_kobj = NULL;
		return ret;
	}
	admin_dir = debugfs_create_dir("virgo", NULL);
	debugfs_create_file("table", 0400, admin_dir, NULL, &admin_table_fops);
	debugfs_create_file("peers", 0400, admin_dir, NULL, &admin_peers_fops);
	return 0;
}

/**
 * virgo_admin_exit() - remove the admin files
 */
void virgo_admin_exit(void)
{
	debugfs_remove_recursive(admin_dir);
	admin_dir = NULL;
	if (admin_kobj) {
		sysfs_remove_group(admin_kobj, &admin_group);
		kobject_put(admin_kobj);
		admin_kobj = NULL;
	}
}
