// SPDX-License-Identifier: GPL-2.0
/*
 * virgo-clouddrecd: the protocol of one session, without sockets.
 *
 * A session is fed the bytes its client sent (cd_session_input()), checks
 * every frame with the shared codec (include/virgo_wire.h), executes it
 * and appends the reply to its output queue, one request at a time in
 * arrival order, like virgo_clouddrec.ko.  It stops taking input while
 * the queue holds srv->out_high bytes: a client that does not read its
 * replies gets no more of them executed, and its session's memory stays
 * bounded (a frame's payload, at most max_payload, plus the queue).
 *
 * Chunks live in a per-session hash table keyed by handle; handles start
 * at a random per-session base and never repeat within the session, so a
 * handle of another session is NOENT.  ALLOC only reserves budget; the
 * first WRITE gives a chunk memory (zeroed), a READ before it sends zeroes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cd.h"

const char *const cd_stat_names[CD_STAT_NR] = {
	[CD_STAT_SESSIONS_ACCEPTED]	= "sessions_accepted",
	[CD_STAT_SESSIONS_REFUSED]	= "sessions_refused",
	[CD_STAT_SESSIONS_CLOSED]	= "sessions_closed",
	[CD_STAT_REQUESTS]		= "requests",
	[CD_STAT_CHUNKS_ALLOCATED]	= "chunks_allocated",
	[CD_STAT_CHUNKS_FREED]		= "chunks_freed",
	[CD_STAT_BYTES_WRITTEN]		= "bytes_written",
	[CD_STAT_BYTES_READ]		= "bytes_read",
	[CD_STAT_ERR_HEADER]		= "err_header",
	[CD_STAT_ERR_PAYLOAD]		= "err_payload",
	[CD_STAT_ERR_SEQUENCE]		= "err_sequence",
	[CD_STAT_ERR_PERM]		= "err_perm",
	[CD_STAT_ERR_AUTH]		= "err_auth",
	[CD_STAT_ERR_HANDLE]		= "err_handle",
	[CD_STAT_ERR_RANGE]		= "err_range",
	[CD_STAT_ERR_NOMEM]		= "err_nomem",
	[CD_STAT_ERR_TIMEOUT]		= "err_timeout",
	[CD_STAT_SESSIONS_ORPHANED]	= "sessions_orphaned",
	[CD_STAT_SESSIONS_RESUMED]	= "sessions_resumed",
	[CD_STAT_ORPHANS_EXPIRED]	= "orphans_expired",
	[CD_STAT_ERR_RESUME]		= "err_resume",
	[CD_STAT_CHUNKS_DISCARDED]	= "chunks_discarded",
};

/* Replies with this much data may be sent straight from the chunk. */
#define CD_TX_DIRECT_MIN	4096
/* Chunks of at least this many bytes are mmap()ed: given back on free. */
#define CD_MMAP_MIN	(128u * 1024u)
#define CD_HUGE_SIZE	(2u * 1024u * 1024u)

/**
 * cd_random() - fill a buffer from the kernel's CSPRNG
 * @buf: destination
 * @len: bytes
 *
 * Return: 0, or -errno.
 */
int cd_random(void *buf, size_t len)
{
	u8 *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/**
 * cd_config_default() - the defaults, those of virgo_clouddrec.ko
 * @cfg: filled in (max_memory 1 GiB: the daemon does not guess)
 */
void cd_config_default(struct cd_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_memory = 1ull << 30;
	cfg->max_chunk = VIRGO_WIRE_DEF_MAX_CHUNK;
	cfg->max_batch = VIRGO_WIRE_DEF_MAX_BATCH;
	cfg->max_sessions = 1024;
	cfg->max_inflight = VIRGO_WIRE_DEF_MAX_INFLIGHT;
	cfg->idle_timeout_ms = 300 * 1000;
	cfg->io_timeout_ms = 30 * 1000;
	cfg->handshake_timeout_ms = 10 * 1000;
	cfg->orphan_timeout_ms = 120 * 1000;
	cfg->discard = true;
}

/**
 * cd_server_init() - check a configuration and derive the wire limits
 * @srv: zeroed server
 * @cfg: configuration (copied)
 *
 * Return: 0, -EINVAL or -ENOMEM.  cd_server_fini() undoes it.
 */
int cd_server_init(struct cd_server *srv, const struct cd_config *cfg)
{
	struct virgo_wire_limits *lim = &srv->lim;
	size_t buckets = 16;
	u32 batch_bytes;
	int i;

	if (!cfg->max_memory || !cfg->max_sessions || !cfg->max_inflight ||
	    !cfg->idle_timeout_ms || !cfg->io_timeout_ms ||
	    !cfg->handshake_timeout_ms || cfg->psk_len > CD_PSK_MAX)
		return -EINVAL;
	if (cfg->max_sessions > CD_MAX_SESSIONS)
		return -EINVAL;
	if (!cfg->max_chunk || cfg->max_chunk > VIRGO_WIRE_MAX_CHUNK_LIMIT ||
	    !cfg->max_batch || cfg->max_batch > VIRGO_WIRE_MAX_BATCH_LIMIT)
		return -EINVAL;
	srv->cfg = *cfg;
	lim->max_chunk = cfg->max_chunk;
	lim->max_batch = cfg->max_batch;
	batch_bytes = VIRGO_WIRE_BATCH_HDR_LEN +
		      VIRGO_WIRE_HANDLE_LEN * cfg->max_batch;
	lim->max_payload = cfg->max_chunk + VIRGO_WIRE_RW_REQ_LEN;
	if (lim->max_payload < batch_bytes)
		lim->max_payload = batch_bytes;
	if (lim->max_payload < VIRGO_WIRE_MIN_PAYLOAD)
		lim->max_payload = VIRGO_WIRE_MIN_PAYLOAD;
	if (virgo_wire_limits_check(lim))
		return -EINVAL;
	/* Room for a few replies in flight; at least one of the largest. */
	srv->out_high = 256 * 1024;
	if (srv->out_high < (size_t)lim->max_payload + VIRGO_WIRE_HDR_LEN)
		srv->out_high = (size_t)lim->max_payload + VIRGO_WIRE_HDR_LEN;
	atomic_init(&srv->budget, 0);
	atomic_init(&srv->lent_bytes, 0);
	atomic_init(&srv->lent_chunks, 0);
	atomic_init(&srv->sessions, 0);
	atomic_init(&srv->orphans, 0);
	for (i = 0; i < CD_STAT_NR; i++)
		atomic_init(&srv->stats[i], 0);
	/* Live sessions and orphans: at most 2 x max_sessions entries. */
	while (buckets < 2 * (size_t)cfg->max_sessions)
		buckets *= 2;
	srv->reg = calloc(buckets, sizeof(*srv->reg));
	if (!srv->reg)
		return -ENOMEM;
	srv->reg_mask = buckets - 1;
	srv->orphan_head = NULL;
	srv->orphan_tail = NULL;
#ifdef CD_FUZZ_HANDLES
	srv->next_resume_id = 0;	/* resume ids 1, 2, 3, ... */
#else
	/* A restarted server names its sessions elsewhere. */
	if (cd_random(&srv->next_resume_id, sizeof(srv->next_resume_id))) {
		free(srv->reg);
		srv->reg = NULL;
		return -EIO;
	}
	srv->next_resume_id >>= 1;	/* 2^63 ids before a wrap */
#endif
	if (pthread_mutex_init(&srv->reg_lock, NULL)) {
		free(srv->reg);
		srv->reg = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* ---- budget ---------------------------------------------------------- */

static bool cd_reserve(struct cd_server *srv, u64 bytes)
{
	u64 old = atomic_load(&srv->budget);

	do {
		if (bytes > srv->cfg.max_memory ||
		    old > srv->cfg.max_memory - bytes)
			return false;
	} while (!atomic_compare_exchange_weak(&srv->budget, &old,
					       old + bytes));
	return true;
}

static void cd_unreserve(struct cd_server *srv, u64 bytes)
{
	atomic_fetch_sub(&srv->budget, bytes);
}

static u64 cd_chunk_cost(u32 size)
{
	return (u64)size + CD_CHUNK_META;
}

/* ---- chunk table ----------------------------------------------------- */

static size_t cd_slot(const struct cd_session *s, u64 handle)
{
	return (size_t)((handle * 0x9e3779b97f4a7c15ull) >> 17) &
	       (s->tab_cap - 1);
}

static struct cd_chunk *cd_chunk_find(struct cd_session *s, u64 handle)
{
	size_t i;

	if (!s->tab_cap || !handle)
		return NULL;
	for (i = cd_slot(s, handle); s->tab[i].handle;
	     i = (i + 1) & (s->tab_cap - 1))
		if (s->tab[i].handle == handle)
			return &s->tab[i];
	return NULL;
}

static void cd_tab_put(struct cd_chunk *tab, size_t cap,
		       const struct cd_chunk *c, const struct cd_session *s)
{
	size_t i = (size_t)((c->handle * 0x9e3779b97f4a7c15ull) >> 17) &
		   (cap - 1);

	(void)s;
	while (tab[i].handle)
		i = (i + 1) & (cap - 1);
	tab[i] = *c;
}

/* Make room for @more entries (load factor at most 1/2). */
static int cd_tab_grow(struct cd_session *s, size_t more)
{
	size_t need = s->nr_chunks + more, cap = s->tab_cap ? s->tab_cap : 16;
	struct cd_chunk *tab;
	size_t i;

	if (need <= s->tab_cap / 2)
		return 0;
	while (cap / 2 < need)
		cap *= 2;
	tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -ENOMEM;
	for (i = 0; i < s->tab_cap; i++)
		if (s->tab[i].handle)
			cd_tab_put(tab, cap, &s->tab[i], s);
	free(s->tab);
	s->tab = tab;
	s->tab_cap = cap;
	return 0;
}

/* Remove the entry at @c, keeping every probe chain whole. */
static void cd_tab_del(struct cd_session *s, struct cd_chunk *c)
{
	size_t mask = s->tab_cap - 1, i = (size_t)(c - s->tab), j = i;

	s->tab[i].handle = 0;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!s->tab[j].handle)
			break;
		home = cd_slot(s, s->tab[j].handle);
		/* Move j back to i unless its home lies in (i, j]. */
		if (i <= j ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		s->tab[i] = s->tab[j];
		s->tab[j].handle = 0;
		i = j;
	}
}

static void cd_data_free(struct cd_server *srv, struct cd_chunk *c)
{
	if (!c->data)
		return;
	atomic_fetch_sub(&srv->materialised, c->size);
	if (c->mapped)
		munmap(c->data, c->mapped_len);
	else
		free(c->data);
	c->data = NULL;
	c->mapped = 0;
}

/*
 * Give a chunk its memory, zeroed.  A mapping is populated at once
 * (MAP_POPULATE): the kernel allocates and zeroes its pages in one call
 * instead of one page fault per page during the first WRITE's copy, which
 * was most of what a cold write cost more than a warm one.
 */
static int __cd_data_alloc(struct cd_server *srv, struct cd_chunk *c)
{
	size_t len = c->size;
	bool thp;
	void *p;

	if (len < CD_MMAP_MIN) {
		c->data = calloc(1, len);
		return c->data ? 0 : -ENOMEM;
	}
	if (srv->cfg.hugepages && len >= CD_HUGE_SIZE) {
		size_t hlen = (len + CD_HUGE_SIZE - 1) &
			      ~(size_t)(CD_HUGE_SIZE - 1);

		p = mmap(NULL, hlen, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB |
			 MAP_POPULATE, -1, 0);
		if (p != MAP_FAILED) {
			c->data = p;
			c->mapped = 1;
			c->mapped_len = hlen;
			return 0;
		}
	}
	thp = srv->cfg.hugepages && len >= CD_HUGE_SIZE;
	/* With transparent huge pages: populated after the advice. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | (thp ? 0 : MAP_POPULATE), -1, 0);
	if (p == MAP_FAILED)
		return -ENOMEM;
	if (thp) {
		/* Best effort, both. */
		(void)madvise(p, len, MADV_HUGEPAGE);
		(void)madvise(p, len, MADV_POPULATE_WRITE);
	}
	c->data = p;
	c->mapped = 1;
	c->mapped_len = len;
	return 0;
}

/* Give a chunk its memory, zeroed (again, after a DISCARD). */
static int cd_data_alloc(struct cd_server *srv, struct cd_chunk *c)
{
	int ret = __cd_data_alloc(srv, c);

	if (!ret)
		atomic_fetch_add(&srv->materialised, c->size);
	return ret;
}

/* Free the chunk at @c (a table entry) and give its budget back. */
static void cd_chunk_release(struct cd_session *s, struct cd_chunk *c)
{
	struct cd_server *srv = s->srv;
	u32 size = c->size;

	cd_data_free(srv, c);
	cd_tab_del(s, c);
	s->nr_chunks--;
	s->bytes -= size;
	atomic_fetch_sub(&srv->lent_bytes, size);
	atomic_fetch_sub(&srv->lent_chunks, 1);
	cd_unreserve(srv, cd_chunk_cost(size));
	cd_count(srv, CD_STAT_CHUNKS_FREED);
}

/* ---- sessions -------------------------------------------------------- */

/**
 * cd_session_new() - a session for a new connection
 * @srv: the server
 * @now_ms: monotonic time in ms
 *
 * Return: the session, or NULL with errno EBUSY (max_sessions reached)
 * or ENOMEM.
 */
struct cd_session *cd_session_new(struct cd_server *srv, u64 now_ms)
{
	struct cd_session *s;
	u64 base;

	if (atomic_fetch_add(&srv->sessions, 1) >= srv->cfg.max_sessions) {
		atomic_fetch_sub(&srv->sessions, 1);
		errno = EBUSY;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s || cd_random(&base, sizeof(base))) {
		free(s);
		atomic_fetch_sub(&srv->sessions, 1);
		errno = ENOMEM;
		return NULL;
	}
	s->srv = srv;
#ifdef CD_FUZZ_HANDLES
	/* The fuzzer's streams name handles 2, 3, ... (seeds do). */
	base = 0;
#endif
	/* Below 2^62 and not 0: base + counter never wraps, never 0. */
	s->handle_base = (base >> 2) | 1;
	s->authed = srv->cfg.psk_len == 0;
	s->now_ms = now_ms;
	s->last_rx_ms = now_ms;
	s->start_ms = now_ms;
	return s;
}

/* ---- the registry of resumable sessions (srv->reg_lock held) --------- */

static size_t cd_reg_bucket(const struct cd_server *srv, u64 id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 20) & srv->reg_mask;
}

static void cd_reg_add(struct cd_server *srv, struct cd_session *s)
{
	size_t b = cd_reg_bucket(srv, s->resume_id);

	s->reg_next = srv->reg[b];
	srv->reg[b] = s;
}

static void cd_reg_del(struct cd_server *srv, struct cd_session *s)
{
	struct cd_session **pp = &srv->reg[cd_reg_bucket(srv, s->resume_id)];

	while (*pp && *pp != s)
		pp = &(*pp)->reg_next;
	if (*pp)
		*pp = s->reg_next;
	s->reg_next = NULL;
}

static struct cd_session *cd_reg_find(struct cd_server *srv, u64 id)
{
	struct cd_session *s = srv->reg[cd_reg_bucket(srv, id)];

	while (s && s->resume_id != id)
		s = s->reg_next;
	return s;
}

/* A resume id nobody holds: the counter, skipping 0 and ids in use. */
static u64 cd_reg_new_id(struct cd_server *srv)
{
	do {
		srv->next_resume_id++;
	} while (!srv->next_resume_id ||
		 cd_reg_find(srv, srv->next_resume_id));
	return srv->next_resume_id;
}

static void cd_orphan_unlink(struct cd_server *srv, struct cd_session *o)
{
	if (o->orphan_prev)
		o->orphan_prev->orphan_next = o->orphan_next;
	else
		srv->orphan_head = o->orphan_next;
	if (o->orphan_next)
		o->orphan_next->orphan_prev = o->orphan_prev;
	else
		srv->orphan_tail = o->orphan_prev;
	o->orphan_prev = NULL;
	o->orphan_next = NULL;
	o->orphan = false;
	atomic_fetch_sub(&srv->orphans, 1);
}

/* ---- ending sessions -------------------------------------------------- */

/* Free a session's chunks, buffers and itself; no counter but chunks'. */
static void cd_session_release(struct cd_session *s)
{
	size_t i;

	for (i = 0; s->nr_chunks && i < s->tab_cap; ) {
		/* Deleting shifts later entries back into slot i. */
		if (s->tab[i].handle)
			cd_chunk_release(s, &s->tab[i]);
		else
			i++;
	}
	free(s->tab);
	free(s->payload);
	free(s->out);
	OPENSSL_cleanse(s->server_nonce, sizeof(s->server_nonce));
	OPENSSL_cleanse(s->token, sizeof(s->token));
	free(s);
}

/* The connection is gone: a session no more (orphans are not counted). */
static void cd_session_closed(struct cd_session *s)
{
	atomic_fetch_sub(&s->srv->sessions, 1);
	cd_count(s->srv, CD_STAT_SESSIONS_CLOSED);
}

/**
 * cd_session_free() - end a session: free its chunks and buffers
 * @s: the session (not an orphan), or NULL
 */
void cd_session_free(struct cd_session *s)
{
	if (!s)
		return;
	if (s->resume) {
		pthread_mutex_lock(&s->srv->reg_lock);
		cd_reg_del(s->srv, s);
		pthread_mutex_unlock(&s->srv->reg_lock);
	}
	cd_session_closed(s);
	cd_session_release(s);
}

/**
 * cd_session_end() - the connection of a session ended
 * @s: the session, or NULL
 * @keep: false when the server stops: free everything
 * @now_ms: monotonic time in ms
 *
 * A session of capability RESUME that holds chunks becomes an orphan for
 * orphan_timeout (docs/protocol.md 6.1): its chunks stay, charged to the
 * budget, until a RESUME takes it over or it expires.  Beyond
 * max_sessions orphans the oldest is freed.  Any other session is freed.
 */
void cd_session_end(struct cd_session *s, bool keep, u64 now_ms)
{
	struct cd_server *srv;
	struct cd_session *evict = NULL;

	if (!s)
		return;
	srv = s->srv;
	if (!keep || !s->resume || !s->nr_chunks) {
		cd_session_free(s);
		return;
	}
	/* Only the chunks and the names stay. */
	free(s->payload);
	s->payload = NULL;
	s->payload_cap = 0;
	free(s->out);
	s->out = NULL;
	s->out_cap = 0;
	s->out_off = 0;
	s->out_len = 0;
	s->tx = NULL;
	s->kick = NULL;
	pthread_mutex_lock(&srv->reg_lock);
	s->orphan = true;
	s->orphan_deadline_ms = now_ms + srv->cfg.orphan_timeout_ms;
	s->orphan_next = NULL;
	s->orphan_prev = srv->orphan_tail;
	if (srv->orphan_tail)
		srv->orphan_tail->orphan_next = s;
	else
		srv->orphan_head = s;
	srv->orphan_tail = s;
	if (atomic_fetch_add(&srv->orphans, 1) + 1 > srv->cfg.max_sessions) {
		evict = srv->orphan_head;
		cd_orphan_unlink(srv, evict);
		cd_reg_del(srv, evict);
	}
	pthread_mutex_unlock(&srv->reg_lock);
	cd_session_closed(s);
	cd_count(srv, CD_STAT_SESSIONS_ORPHANED);
	if (evict) {
		cd_count(srv, CD_STAT_ORPHANS_EXPIRED);
		cd_session_release(evict);
	}
}

/**
 * cd_orphans_expire() - free the orphans whose time is up
 * @srv: the server
 * @now_ms: monotonic time in ms
 */
void cd_orphans_expire(struct cd_server *srv, u64 now_ms)
{
	for (;;) {
		struct cd_session *o;

		if (!atomic_load(&srv->orphans))
			return;
		pthread_mutex_lock(&srv->reg_lock);
		o = srv->orphan_head;
		/* Same timeout for all: the oldest expires first. */
		if (o && now_ms >= o->orphan_deadline_ms) {
			cd_orphan_unlink(srv, o);
			cd_reg_del(srv, o);
		} else {
			o = NULL;
		}
		pthread_mutex_unlock(&srv->reg_lock);
		if (!o)
			return;
		cd_count(srv, CD_STAT_ORPHANS_EXPIRED);
		cd_session_release(o);
	}
}

/**
 * cd_server_fini() - free every orphan and the registry
 * @srv: the server, no session left but orphans (every loop stopped)
 */
void cd_server_fini(struct cd_server *srv)
{
	struct cd_session *o;

	if (!srv->reg)
		return;
	while ((o = srv->orphan_head)) {
		cd_orphan_unlink(srv, o);
		cd_reg_del(srv, o);
		cd_session_release(o);
	}
	pthread_mutex_destroy(&srv->reg_lock);
	free(srv->reg);
	srv->reg = NULL;
}

/**
 * cd_session_ready() - HELLO (and AUTH if a key is set) done
 * @s: the session
 *
 * Return: true once the session may ALLOC..PING.
 */
bool cd_session_ready(const struct cd_session *s)
{
	return s->hello_done && s->authed;
}

/**
 * cd_session_in_frame() - part of a frame received, not all of it
 * @s: the session
 *
 * Return: true between the first byte of a frame and its last.
 */
bool cd_session_in_frame(const struct cd_session *s)
{
	return s->stage != CD_RX_HDR || s->rx_have;
}

/**
 * cd_session_sent() - @n bytes of the output queue went out
 * @s: the session
 * @n: bytes, at most cd_session_pending()
 */
void cd_session_sent(struct cd_session *s, size_t n)
{
	s->out_off += n;
	if (s->out_off == s->out_len) {
		s->out_off = 0;
		s->out_len = 0;
	}
}

/* Room for @len more bytes at the end of the output queue. */
static u8 *cd_out_reserve(struct cd_session *s, size_t len)
{
	size_t pend = cd_session_pending(s), cap;
	u8 *out;

	if (s->out_len + len <= s->out_cap)
		return s->out + s->out_len;
	if (s->out_off >= pend && pend + len <= s->out_cap) {
		memmove(s->out, s->out + s->out_off, pend);
		s->out_off = 0;
		s->out_len = pend;
		return s->out + s->out_len;
	}
	cap = s->out_cap ? s->out_cap : 4096;
	while (cap < pend + len)
		cap *= 2;
	out = malloc(cap);
	if (!out)
		return NULL;
	if (pend)
		memcpy(out, s->out + s->out_off, pend);
	free(s->out);
	s->out = out;
	s->out_cap = cap;
	s->out_off = 0;
	s->out_len = pend;
	return s->out + s->out_len;
}

/*
 * Queue a reply to @m: @status, and @len payload bytes from @data (or
 * zeroes if @data is NULL).  Returns 0 or -ENOMEM (ends the session).
 */
static int cd_reply(struct cd_session *s, const struct virgo_wire_msg *m,
		    u32 status, const void *data, u32 len)
{
	u8 *p;

	u8 hdr[VIRGO_WIRE_HDR_LEN];
	size_t sent = 0, total;

	if (status)
		len = 0;
	total = VIRGO_WIRE_HDR_LEN + (size_t)len;
	virgo_wire_hdr_pack(hdr, m->opcode, VIRGO_WF_REPLY, len, status,
			    m->tag);
	/* Nothing queued: the socket takes what it can from where it is. */
	if (s->tx && data && len >= CD_TX_DIRECT_MIN &&
	    !cd_session_pending(s)) {
		struct iovec iov[2] = {
			{ .iov_base = hdr, .iov_len = sizeof(hdr) },
			{ .iov_base = (void *)data, .iov_len = len },
		};
		ssize_t n = s->tx(s->tx_arg, iov, 2);

		if (n < 0)
			return (int)n;
		sent = (size_t)n;
		if (sent == total)
			return 0;
	}
	p = cd_out_reserve(s, total - sent);
	if (!p)
		return -ENOMEM;
	s->out_len += total - sent;
	if (sent < sizeof(hdr)) {
		memcpy(p, hdr + sent, sizeof(hdr) - sent);
		p += sizeof(hdr) - sent;
		sent = sizeof(hdr);
	}
	if (data)
		memcpy(p, (const u8 *)data + (sent - sizeof(hdr)),
		       total - sent);
	else
		memset(p, 0, total - sent);
	return 0;
}

static int cd_reply_err(struct cd_session *s, const struct virgo_wire_msg *m,
			int err)
{
	return cd_reply(s, m, virgo_errno_to_status(err), NULL, 0);
}

/* ---- requests -------------------------------------------------------- */

static int cd_mac(const struct cd_session *s, enum virgo_wire_auth_role role,
		  u8 *mac)
{
	u8 input[VIRGO_WIRE_AUTH_INPUT_LEN];
	unsigned int mac_len = 0;

	virgo_wire_auth_input(input, role, s->client_nonce, s->server_nonce);
	if (!HMAC(EVP_sha256(), s->srv->cfg.psk, (int)s->srv->cfg.psk_len,
		  input, sizeof(input), mac, &mac_len) ||
	    mac_len != VIRGO_WIRE_MAC_LEN)
		return -EIO;
	return 0;
}

static int cd_do_hello(struct cd_session *s, const struct virgo_wire_msg *m,
		       const u8 *p)
{
	struct cd_server *srv = s->srv;
	struct virgo_wire_hello_rep rep;
	struct virgo_wire_hello_req req;
	u8 buf[VIRGO_WIRE_HELLO_REP_MAX];
	u64 used;
	int len;

	if (s->hello_done) {
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EINVAL);
	}
	virgo_wire_get_hello_req(p, &req);
	if (req.ver_min > VIRGO_WIRE_VERSION ||
	    req.ver_max < VIRGO_WIRE_VERSION) {
		/* Not the one HELLO of the connection: another may follow. */
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EPROTONOSUPPORT);
	}
	memcpy(s->client_nonce, req.nonce, sizeof(s->client_nonce));
	if (cd_random(s->server_nonce, sizeof(s->server_nonce)))
		return -EIO;

	memset(&rep, 0, sizeof(rep));
	used = atomic_load(&srv->budget);
	rep.version = VIRGO_WIRE_VERSION;
	rep.flags = srv->cfg.psk_len ? VIRGO_HELLO_AUTH_REQUIRED : 0;
	rep.caps = req.caps & VIRGO_CAPS_V1;
	rep.max_payload = srv->lim.max_payload;
	rep.max_chunk = srv->lim.max_chunk;
	rep.max_batch = srv->lim.max_batch;
	rep.max_inflight = srv->cfg.max_inflight;
	rep.capacity = srv->cfg.max_memory;
	rep.free = used < rep.capacity ? rep.capacity - used : 0;
	memcpy(rep.nonce, s->server_nonce, sizeof(rep.nonce));
	if ((req.caps & VIRGO_CAP_DISCARD) && srv->cfg.discard) {
		rep.caps |= VIRGO_CAP_DISCARD;
		s->discard = true;
	}
	if ((req.caps & VIRGO_CAP_RESUME) && srv->cfg.orphan_timeout_ms) {
		rep.caps |= VIRGO_CAP_RESUME;
#ifndef CD_FUZZ_HANDLES
		if (cd_random(s->token, sizeof(s->token)))
			return -EIO;
#endif	/* the fuzzer's streams know the token: zeroes */
		pthread_mutex_lock(&srv->reg_lock);
		s->resume_id = cd_reg_new_id(srv);
		cd_reg_add(srv, s);
		pthread_mutex_unlock(&srv->reg_lock);
		s->resume = true;
		rep.resume_id = s->resume_id;
		memcpy(rep.token, s->token, sizeof(rep.token));
	}
	len = virgo_wire_put_hello_rep(buf, sizeof(buf), &rep);
	OPENSSL_cleanse(rep.token, sizeof(rep.token));
	if (len < 0)
		return -EIO;
	s->hello_done = true;
	return cd_reply(s, m, 0, buf, (u32)len);
}

/* ---- DISCARD (docs/protocol.md 5.9) ---------------------------------- */

/*
 * PROTO unless agreed; then each handle in order: the session's go back
 * to the never-written state (memory freed, budget kept, reads zeroes)
 * and are counted, a duplicate as often as it comes; others are skipped.
 * A READ reply already queued carries a copy: it keeps its bytes.
 */
static int cd_do_discard(struct cd_session *s, const struct virgo_wire_msg *m,
			 const u8 *p)
{
	u32 count = virgo_wire_batch_count(p), i, done = 0;
	u8 rep[VIRGO_WIRE_DISCARD_REP_LEN];

	if (!s->discard) {
		cd_count(s->srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EPROTONOSUPPORT);
	}
	for (i = 0; i < count; i++) {
		struct cd_chunk *c = cd_chunk_find(s, virgo_wire_handle(p, i));

		if (!c) {
			cd_count(s->srv, CD_STAT_ERR_HANDLE);
			continue;
		}
		cd_data_free(s->srv, c);
		cd_count(s->srv, CD_STAT_CHUNKS_DISCARDED);
		done++;
	}
	virgo_wire_put_discard_rep(rep, sizeof(rep), done);
	return cd_reply(s, m, 0, rep, sizeof(rep));
}

static int cd_do_auth(struct cd_session *s, const struct virgo_wire_msg *m,
		      const u8 *p)
{
	struct cd_server *srv = s->srv;
	u8 mac[VIRGO_WIRE_MAC_LEN];
	int ret;

	if (!srv->cfg.psk_len || s->authed) {
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EINVAL);
	}
	ret = cd_mac(s, VIRGO_WIRE_AUTH_CLIENT, mac);
	if (ret)
		return ret;
	if (CRYPTO_memcmp(mac, p, sizeof(mac))) {
		cd_count(srv, CD_STAT_ERR_AUTH);
		ret = cd_reply(s, m, VIRGO_ST_AUTH, NULL, 0);
		/* One guess per connection: close once the reply is out. */
		return ret ? ret : 1;
	}
	s->authed = true;
	ret = cd_mac(s, VIRGO_WIRE_AUTH_SERVER, mac);
	if (ret)
		return ret;
	ret = cd_reply(s, m, 0, mac, sizeof(mac));
	OPENSSL_cleanse(mac, sizeof(mac));
	return ret;
}

/*
 * What a RESUME must carry to take over a session whose token is @token:
 * the token itself without a key; with one, HMAC-SHA256(key, "virgo-v1-
 * resume" || token || this connection's client and server nonces).
 */
static int cd_resume_proof(const struct cd_session *s, const u8 *token,
			   u8 *proof)
{
	u8 input[VIRGO_WIRE_RESUME_INPUT_LEN];
	unsigned int mac_len = 0;
	int ret = 0;

	if (!s->srv->cfg.psk_len) {
		memcpy(proof, token, VIRGO_WIRE_TOKEN_LEN);
		return 0;
	}
	virgo_wire_resume_input(input, token, s->client_nonce,
				s->server_nonce);
	if (!HMAC(EVP_sha256(), s->srv->cfg.psk, (int)s->srv->cfg.psk_len,
		  input, sizeof(input), proof, &mac_len) ||
	    mac_len != VIRGO_WIRE_MAC_LEN)
		ret = -EIO;
	OPENSSL_cleanse(input, sizeof(input));
	return ret;
}

/* Take the orphan @o's chunks and names; @s has none (never allocated). */
static void cd_session_adopt(struct cd_session *s, struct cd_session *o)
{
	free(s->tab);
	s->tab = o->tab;
	s->tab_cap = o->tab_cap;
	s->nr_chunks = o->nr_chunks;
	s->bytes = o->bytes;
	s->handle_base = o->handle_base;
	s->next_handle = o->next_handle;
	o->tab = NULL;
	o->tab_cap = 0;
	o->nr_chunks = 0;
	o->bytes = 0;
}

/*
 * RESUME (docs/protocol.md 6.1), handshake done and payload checked:
 * PROTO unless the capability was agreed, INVAL if this session allocated
 * or resumed already, NOENT for an unknown id (this session's own
 * included) or a wrong proof (not told apart), BUSY if that session still
 * has its connection (which is told to close), else this session becomes
 * the orphan: its handles, its id, this connection's token.
 */
static int cd_do_resume(struct cd_session *s, const struct virgo_wire_msg *m,
			const u8 *p)
{
	static const u8 no_token[VIRGO_WIRE_TOKEN_LEN];
	struct cd_server *srv = s->srv;
	u8 proof[VIRGO_WIRE_MAC_LEN], want[VIRGO_WIRE_MAC_LEN] = { 0 };
	u8 rep[VIRGO_WIRE_RESUME_REP_LEN];
	struct cd_session *o;
	int err = 0, ret;
	u64 id;

	if (!s->resume) {
		err = -EPROTONOSUPPORT;
		goto refuse;
	}
	if (s->allocated || s->resumed) {
		err = -EINVAL;
		goto refuse;
	}
	id = virgo_wire_get_resume_req(p, proof);
	pthread_mutex_lock(&srv->reg_lock);
	o = cd_reg_find(srv, id);
	if (o == s)
		o = NULL;	/* not another session */
	/* The same work whether the id is known or not. */
	ret = cd_resume_proof(s, o ? o->token : no_token, want);
	if (ret) {
		pthread_mutex_unlock(&srv->reg_lock);
		return ret;
	}
	if (CRYPTO_memcmp(want, proof, sizeof(want)) || !o) {
		pthread_mutex_unlock(&srv->reg_lock);
		err = -ENOENT;
		goto refuse;
	}
	if (!o->orphan) {
		/* Its connection has not broken yet, as far as we know. */
		atomic_store(&o->kicked, true);
		if (o->kick)
			o->kick(o->kick_arg);
		pthread_mutex_unlock(&srv->reg_lock);
		err = -EBUSY;
		goto refuse;
	}
	cd_orphan_unlink(srv, o);
	cd_reg_del(srv, o);
	cd_reg_del(srv, s);
	s->resume_id = o->resume_id;
	cd_reg_add(srv, s);
	pthread_mutex_unlock(&srv->reg_lock);

	cd_session_adopt(s, o);
	cd_session_release(o);
	s->resumed = true;
	cd_count(srv, CD_STAT_SESSIONS_RESUMED);
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(proof, sizeof(proof));
	virgo_wire_put_resume_rep(rep, sizeof(rep), s->nr_chunks, s->bytes);
	return cd_reply(s, m, 0, rep, sizeof(rep));
refuse:
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(proof, sizeof(proof));
	cd_count(srv, CD_STAT_ERR_RESUME);
	return cd_reply_err(s, m, err);
}

static int cd_do_alloc(struct cd_session *s, const struct virgo_wire_msg *m,
		       const u8 *p)
{
	struct cd_server *srv = s->srv;
	u32 count = virgo_wire_batch_count(p), i;
	u64 total = 0, cost;
	u8 *rep;
	int len;

	for (i = 0; i < count; i++)
		total += virgo_wire_alloc_size(p, i);
	cost = total + (u64)count * CD_CHUNK_META;
	if (!cd_reserve(srv, cost)) {
		cd_count(srv, CD_STAT_ERR_NOMEM);
		return cd_reply_err(s, m, -ENOMEM);
	}
	if (cd_tab_grow(s, count)) {
		cd_unreserve(srv, cost);
		cd_count(srv, CD_STAT_ERR_NOMEM);
		return cd_reply_err(s, m, -ENOMEM);
	}
	len = VIRGO_WIRE_BATCH_HDR_LEN + VIRGO_WIRE_HANDLE_LEN * count;
	rep = cd_out_reserve(s, VIRGO_WIRE_HDR_LEN + (size_t)len);
	if (!rep) {
		cd_unreserve(srv, cost);
		return -ENOMEM;
	}
	/* Nothing below can fail: all or nothing is all. */
	virgo_wire_hdr_pack(rep, m->opcode, VIRGO_WF_REPLY, (u32)len, 0,
			    m->tag);
	rep += VIRGO_WIRE_HDR_LEN;
	virgo_wire_put_batch_hdr(rep, (size_t)len, count,
				 VIRGO_WIRE_HANDLE_LEN);
	for (i = 0; i < count; i++) {
		struct cd_chunk c = {
			.handle = s->handle_base + ++s->next_handle,
			.size = virgo_wire_alloc_size(p, i),
		};

		cd_tab_put(s->tab, s->tab_cap, &c, s);
		s->nr_chunks++;
		s->bytes += c.size;
		virgo_wire_set_handle(rep, i, c.handle);
	}
	s->out_len += VIRGO_WIRE_HDR_LEN + (size_t)len;
	s->allocated = true;
	atomic_fetch_add(&srv->lent_bytes, total);
	atomic_fetch_add(&srv->lent_chunks, count);
	atomic_fetch_add(&srv->stats[CD_STAT_CHUNKS_ALLOCATED], count);
	return 0;
}

static int cd_do_free(struct cd_session *s, const struct virgo_wire_msg *m,
		      const u8 *p)
{
	u32 count = virgo_wire_batch_count(p), i, freed = 0;
	u8 rep[VIRGO_WIRE_FREE_REP_LEN];

	for (i = 0; i < count; i++) {
		struct cd_chunk *c = cd_chunk_find(s, virgo_wire_handle(p, i));

		if (!c) {
			cd_count(s->srv, CD_STAT_ERR_HANDLE);
			continue;
		}
		cd_chunk_release(s, c);
		freed++;
	}
	virgo_wire_put_free_rep(rep, sizeof(rep), freed);
	return cd_reply(s, m, 0, rep, sizeof(rep));
}

/* The chunk of a checked WRITE/READ, its range checked against it. */
static struct cd_chunk *cd_rw_chunk(struct cd_session *s,
				    const struct virgo_wire_rw *rw, int *err)
{
	struct cd_chunk *c = cd_chunk_find(s, rw->handle);

	if (!c) {
		cd_count(s->srv, CD_STAT_ERR_HANDLE);
		*err = -ENOENT;
		return NULL;
	}
	if ((u64)rw->offset + rw->length > c->size) {
		cd_count(s->srv, CD_STAT_ERR_RANGE);
		*err = -ERANGE;
		return NULL;
	}
	return c;
}

static int cd_do_write(struct cd_session *s, const struct virgo_wire_msg *m,
		       const u8 *p)
{
	struct virgo_wire_rw rw;
	struct cd_chunk *c;
	int err;

	virgo_wire_get_rw(p, &rw);
	c = cd_rw_chunk(s, &rw, &err);
	if (!c)
		return cd_reply_err(s, m, err);
	if (!c->data && cd_data_alloc(s->srv, c)) {
		cd_count(s->srv, CD_STAT_ERR_NOMEM);
		return cd_reply_err(s, m, -ENOMEM);
	}
	memcpy(c->data + rw.offset, virgo_wire_rw_data(p), rw.length);
	atomic_fetch_add_explicit(&s->srv->stats[CD_STAT_BYTES_WRITTEN],
				  rw.length, memory_order_relaxed);
	return cd_reply(s, m, 0, NULL, 0);
}

static int cd_do_read(struct cd_session *s, const struct virgo_wire_msg *m,
		      const u8 *p)
{
	struct virgo_wire_rw rw;
	struct cd_chunk *c;
	int err;

	virgo_wire_get_rw(p, &rw);
	c = cd_rw_chunk(s, &rw, &err);
	if (!c)
		return cd_reply_err(s, m, err);
	atomic_fetch_add_explicit(&s->srv->stats[CD_STAT_BYTES_READ],
				  rw.length, memory_order_relaxed);
	/* Never written: zeroes. */
	return cd_reply(s, m, 0, c->data ? c->data + rw.offset : NULL,
			rw.length);
}

static int cd_do_stat(struct cd_session *s, const struct virgo_wire_msg *m)
{
	struct cd_server *srv = s->srv;
	u8 buf[VIRGO_WIRE_STAT_REP_LEN];
	struct virgo_wire_stat st;
	u64 used = atomic_load(&srv->budget);

	memset(&st, 0, sizeof(st));
	st.capacity = srv->cfg.max_memory;
	st.free = used < st.capacity ? st.capacity - used : 0;
	st.lent_bytes = atomic_load(&srv->lent_bytes);
	st.lent_chunks = atomic_load(&srv->lent_chunks);
	st.sessions = atomic_load(&srv->sessions);
	st.session_bytes = s->bytes;
	st.session_chunks = s->nr_chunks;
	st.requests = atomic_load(&srv->stats[CD_STAT_REQUESTS]);
	virgo_wire_put_stat_rep(buf, sizeof(buf), &st);
	return cd_reply(s, m, 0, buf, sizeof(buf));
}

/*
 * Execute one whole frame.  Returns 0, 1 to close once the output queue
 * is sent (failed AUTH), or a negative errno to close now.
 */
static int cd_execute(struct cd_session *s, const struct virgo_wire_msg *m,
		      const u8 *p)
{
	struct cd_server *srv = s->srv;
	int ret;

	/* A reply sent to a server is no request: INVAL, stream goes on. */
	if (virgo_wire_is_reply(m)) {
		cd_count(srv, CD_STAT_ERR_PAYLOAD);
		return cd_reply_err(s, m, -EINVAL);
	}
	/* HELLO first, then AUTH if there is a key, then the rest. */
	if ((m->opcode != VIRGO_OP_HELLO && !s->hello_done) ||
	    (m->opcode != VIRGO_OP_HELLO && m->opcode != VIRGO_OP_AUTH &&
	     !s->authed)) {
		cd_count(srv, CD_STAT_ERR_PERM);
		return cd_reply_err(s, m, -EACCES);
	}
	ret = virgo_wire_check_req(m, m->len ? p : NULL, &srv->lim);
	if (ret) {
		cd_count(srv, CD_STAT_ERR_PAYLOAD);
		return cd_reply_err(s, m, ret);
	}
	switch (m->opcode) {
	case VIRGO_OP_HELLO:
		return cd_do_hello(s, m, p);
	case VIRGO_OP_AUTH:
		return cd_do_auth(s, m, p);
	case VIRGO_OP_ALLOC:
		return cd_do_alloc(s, m, p);
	case VIRGO_OP_FREE:
		return cd_do_free(s, m, p);
	case VIRGO_OP_WRITE:
		return cd_do_write(s, m, p);
	case VIRGO_OP_READ:
		return cd_do_read(s, m, p);
	case VIRGO_OP_STAT:
		return cd_do_stat(s, m);
	case VIRGO_OP_PING:
		return cd_reply(s, m, 0, p, m->len);
	case VIRGO_OP_DISCARD:
		return cd_do_discard(s, m, p);
	case VIRGO_OP_RESUME:
		return cd_do_resume(s, m, p);
	case VIRGO_OP_JOIN:
		/* QUEUES is never granted here: one connection per session. */
		cd_count(srv, CD_STAT_ERR_SEQUENCE);
		return cd_reply_err(s, m, -EPROTONOSUPPORT);
	}
	return -EPROTO;	/* virgo_wire_hdr_unpack() refuses the rest */
}

/* A header is in: check it, get room for its payload. */
static int cd_rx_header(struct cd_session *s)
{
	struct cd_server *srv = s->srv;
	struct virgo_wire_msg *m = &s->rx_msg;
	int ret;

	ret = virgo_wire_hdr_unpack(s->rx_hdr, m, &srv->lim);
	if (ret) {
		/* Framing is lost: no reply, close. */
		cd_count(srv, CD_STAT_ERR_HEADER);
		return ret;
	}
	/*
	 * Before the handshake is done nothing bigger than a HELLO is
	 * accepted: an unauthenticated peer never makes us allocate.
	 */
	if (!cd_session_ready(s) && m->len > VIRGO_WIRE_HELLO_REQ_LEN) {
		cd_count(srv, CD_STAT_ERR_PERM);
		return -EACCES;
	}
	cd_count(srv, CD_STAT_REQUESTS);
	if (m->len > s->payload_cap) {
		u8 *buf = malloc(m->len);

		if (!buf)
			return -ENOMEM;
		free(s->payload);
		s->payload = buf;
		s->payload_cap = m->len;
	}
	s->stage = CD_RX_PAYLOAD;
	s->rx_have = 0;
	return 0;
}

/* The current frame is complete: execute it, start the next one. */
static int cd_rx_done(struct cd_session *s)
{
	s->stage = CD_RX_HDR;
	s->rx_have = 0;
	return cd_execute(s, &s->rx_msg, s->payload);
}

/**
 * cd_session_input() - feed bytes received from the client
 * @s: the session
 * @p: the bytes
 * @n: how many
 * @used: set to the bytes consumed; fewer than @n when the session is
 *	blocked (cd_session_blocked(): its output queue is full); feed the
 *	rest once it has drained
 *
 * Return: 0; 1 when the session must close once its output is sent; a
 * negative errno when it must close now (header error, oversized frame
 * before the handshake, out of memory).
 */
int cd_session_input(struct cd_session *s, const u8 *p, size_t n,
		     size_t *used)
{
	size_t off = 0;
	int ret = 0;

	if (n)
		s->last_rx_ms = s->now_ms;
	while (!ret && !cd_session_blocked(s)) {
		size_t take;

		if (s->stage == CD_RX_HDR) {
			if (off == n)
				break;
			if (!s->rx_have)
				s->frame_start_ms = s->now_ms;
			take = VIRGO_WIRE_HDR_LEN - s->rx_have;
			if (take > n - off)
				take = n - off;
			memcpy(s->rx_hdr + s->rx_have, p + off, take);
			s->rx_have += (u32)take;
			off += take;
			if (s->rx_have < VIRGO_WIRE_HDR_LEN)
				break;
			ret = cd_rx_header(s);
			if (ret)
				break;
		}
		take = s->rx_msg.len - s->rx_have;
		if (take > n - off)
			take = n - off;
		if (take)
			memcpy(s->payload + s->rx_have, p + off, take);
		s->rx_have += (u32)take;
		off += take;
		if (s->rx_have < s->rx_msg.len)
			break;
		ret = cd_rx_done(s);
	}
	*used = off;
	return ret;
}

/**
 * cd_session_rx_window() - where a large payload can be received directly
 * @s: the session
 * @len: set to the bytes still missing of the current payload
 *
 * Saves a copy for big WRITEs: the caller receives straight into the
 * payload buffer, then calls cd_session_rx_commit().
 *
 * Return: the place, or NULL when the session is not in the middle of a
 * payload of at least 16 KiB still to come, or is blocked.
 */
u8 *cd_session_rx_window(struct cd_session *s, size_t *len)
{
	if (s->stage != CD_RX_PAYLOAD || cd_session_blocked(s) ||
	    s->rx_msg.len - s->rx_have < 16384)
		return NULL;
	*len = s->rx_msg.len - s->rx_have;
	return s->payload + s->rx_have;
}

/**
 * cd_session_rx_commit() - @n bytes arrived in cd_session_rx_window()
 * @s: the session
 * @n: bytes, at most the window's length
 *
 * Return: as cd_session_input().
 */
int cd_session_rx_commit(struct cd_session *s, size_t n)
{
	s->last_rx_ms = s->now_ms;
	s->rx_have += (u32)n;
	if (s->rx_have < s->rx_msg.len)
		return 0;
	return cd_rx_done(s);
}
