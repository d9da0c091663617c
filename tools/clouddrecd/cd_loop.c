// SPDX-License-Identifier: GPL-2.0
/*
 * virgo-clouddrecd: the event loops.
 *
 * Each thread owns an epoll instance, its own listening socket per
 * address (SO_REUSEPORT: the kernel spreads new connections over the
 * threads) and the connections it accepted; nothing but the server's
 * atomic counters is shared.  Sockets are non-blocking and level
 * triggered.  A connection's replies wait in its session's output queue
 * until the socket takes them; while that queue is full the session
 * executes nothing more and the connection is not read (TCP flow control
 * then stops its client), so a client that does not read costs a bounded
 * amount of memory and never blocks any other connection.
 *
 * Timers (checked every CD_TICK_MS): the handshake must be done within
 * handshake_timeout; a frame begun, or replies not taken by the client,
 * must complete within io_timeout; a session holding no chunk and quiet
 * for idle_timeout is closed (one holding chunks stays: TCP keepalive and
 * the user timeout find a dead client).
 *
 * Resumption (docs/protocol.md 6.1): a connection that ends while its
 * session (capability RESUME) holds chunks leaves it as an orphan
 * (cd_session_end()); every tick, each loop frees the orphans whose
 * orphan_timeout has passed.  A RESUME on any thread that names a session
 * whose connection is still open kicks that connection: it sets the
 * session's flag and wakes the owning loop's eventfd, which closes it.
 *
 * Stop (SIGTERM): listeners close, no more input is read, replies
 * already queued are sent for up to CD_DRAIN_MS, then every connection
 * closes and its chunks are freed (no orphans: cd_server_fini() frees
 * those left from before).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cd.h"

#define CD_TICK_MS	200
#define CD_DRAIN_MS	5000
#define CD_EVENTS	64
#define CD_RECV_ROUNDS	16	/* recv() calls per connection per wakeup */

#define CD_KEEPIDLE_S	30
#define CD_KEEPINTVL_S	10
#define CD_KEEPCNT	6

struct cd_conn {
	struct cd_conn *prev, *next;	/* the thread's connections */
	int fd;
	struct cd_session *s;
	u32 events;		/* registered with epoll */
	bool close_after_flush;		/* failed AUTH, or draining */
	u64 out_since_ms;		/* output pending and stuck since */
	u8 *left;			/* input not fed yet (blocked) */
	size_t left_len;
};

struct cd_thread {
	struct cd_daemon *d;
	pthread_t tid;
	bool started;
	int epfd;
	int evfd;			/* woken by cd_loop_stop() */
	int lfd[CD_MAX_LISTEN];
	struct cd_conn head;		/* list of connections */
	unsigned int nr_conns;
	bool accept_paused;		/* out of descriptors: listeners off */
	u8 rxbuf[CD_RXBUF];
};

/* epoll data of the listening sockets and the eventfd. */
#define CD_TAG_LISTEN(i)	((u64)(i) + 1)
#define CD_TAG_EVENT		((u64)CD_MAX_LISTEN + 1)

static u64 cd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000 + (u64)ts.tv_nsec / 1000000;
}

/* Close a connection; its session is freed, or kept as an orphan. */
static void cd_conn_close(struct cd_thread *t, struct cd_conn *c)
{
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	t->nr_conns--;
	cd_session_end(c->s, !atomic_load(&t->d->stopping), cd_now_ms());
	free(c->left);
	free(c);
}

static int cd_conn_update(struct cd_thread *t, struct cd_conn *c)
{
	struct epoll_event ev = { .data.ptr = c };
	u32 want = 0;

	if (!c->close_after_flush && !c->left &&
	    !cd_session_blocked(c->s))
		want |= EPOLLIN;
	if (cd_session_pending(c->s))
		want |= EPOLLOUT;
	if (want == c->events)
		return 0;
	ev.events = want;
	c->events = want;
	return epoll_ctl(t->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send what the session has queued.  Returns 1 on progress, 0, or -1. */
static int cd_conn_flush(struct cd_conn *c, u64 now)
{
	struct cd_session *s = c->s;
	int progress = 0;

	while (cd_session_pending(s)) {
		ssize_t n = send(c->fd, s->out + s->out_off,
				 cd_session_pending(s),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		cd_session_sent(s, (size_t)n);
		c->out_since_ms = now;
		progress = 1;
	}
	return progress;
}

/* The session's direct send (struct cd_session.tx). */
static ssize_t cd_conn_tx(void *arg, const struct iovec *iov, int nr)
{
	struct cd_conn *c = arg;
	struct msghdr msg = {
		.msg_iov = (struct iovec *)iov,
		.msg_iovlen = nr,
	};
	ssize_t n;

	do {
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	return n;
}

/* Feed bytes to the session; keep what it could not take yet. */
static int cd_conn_feed(struct cd_conn *c, const u8 *p, size_t n)
{
	size_t used = 0;
	int ret;

	ret = cd_session_input(c->s, p, n, &used);
	if (ret < 0)
		return ret;
	if (ret > 0)
		c->close_after_flush = true;
	if (used < n && !c->close_after_flush) {
		u8 *left = malloc(n - used);

		if (!left)
			return -ENOMEM;
		memcpy(left, p + used, n - used);
		c->left = left;
		c->left_len = n - used;
	}
	return 0;
}

/* Read from the socket and feed the session.  1 on progress, 0, or <0. */
static int cd_conn_recv(struct cd_thread *t, struct cd_conn *c)
{
	size_t len = 0;
	u8 *win = cd_session_rx_window(c->s, &len);
	ssize_t n;

	if (!win) {
		win = t->rxbuf;
		len = sizeof(t->rxbuf);
	}
	n = recv(c->fd, win, len, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -errno;
	}
	if (n == 0)
		return -ECONNRESET;
	if (win != t->rxbuf) {
		int ret = cd_session_rx_commit(c->s, (size_t)n);

		if (ret > 0)
			c->close_after_flush = true;
		return ret < 0 ? ret : 1;
	}
	return cd_conn_feed(c, t->rxbuf, (size_t)n) < 0 ? -1 : 1;
}

/* Make all the progress a connection allows now; may close it. */
static void cd_conn_service(struct cd_thread *t, struct cd_conn *c,
			    u64 now)
{
	int rounds = 0, ret;
	bool progress;

	c->s->now_ms = now;
	do {
		bool was_empty = !cd_session_pending(c->s);

		progress = false;
		ret = cd_conn_flush(c, now);
		if (ret < 0)
			goto close;
		progress |= ret > 0;
		if (c->close_after_flush) {
			if (!cd_session_pending(c->s))
				goto close;
			break;
		}
		if (c->left && !cd_session_blocked(c->s)) {
			u8 *left = c->left;
			size_t len = c->left_len;

			c->left = NULL;
			c->left_len = 0;
			ret = cd_conn_feed(c, left, len);
			free(left);
			if (ret < 0)
				goto close;
			progress = true;
		} else if (!c->left && !cd_session_blocked(c->s) &&
			   rounds < CD_RECV_ROUNDS) {
			rounds++;
			ret = cd_conn_recv(t, c);
			if (ret < 0)
				goto close;
			progress |= ret > 0;
		}
		if (was_empty && cd_session_pending(c->s))
			c->out_since_ms = now;
	} while (progress);
	if (cd_conn_update(t, c) == 0)
		return;
close:
	cd_conn_close(t, c);
}

/* struct cd_session.kick: wake the loop that owns the session. */
static void cd_thread_kick(void *arg)
{
	struct cd_thread *t = arg;
	u64 one = 1;

	if (write(t->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		cd_log("eventfd: %s", strerror(errno));
}

/* Close the connections a RESUME elsewhere asked to be closed. */
static void cd_close_kicked(struct cd_thread *t)
{
	struct cd_conn *c, *next;

	for (c = t->head.next; c != &t->head; c = next) {
		next = c->next;
		if (atomic_load(&c->s->kicked))
			cd_conn_close(t, c);
	}
}

static void cd_sock_setup(int fd, const struct cd_config *cfg)
{
	int one = 1, idle = CD_KEEPIDLE_S, intvl = CD_KEEPINTVL_S;
	int cnt = CD_KEEPCNT;
	unsigned int user_timeout = cfg->io_timeout_ms;

	/* Best effort, as in the kernel server: TCP finds dead clients. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
		   sizeof(user_timeout));
}

/*
 * Out of file descriptors: a level-triggered listener would wake us for
 * ever.  Take the listeners off epoll until the next tick (connections
 * wait in the backlog meanwhile).
 */
static void cd_accept_pause(struct cd_thread *t, bool pause)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int i;

	if (t->accept_paused == pause)
		return;
	t->accept_paused = pause;
	for (i = 0; i < t->d->nr_listen; i++) {
		if (t->lfd[i] < 0)
			continue;
		ev.data.u64 = CD_TAG_LISTEN(i);
		epoll_ctl(t->epfd, pause ? EPOLL_CTL_DEL : EPOLL_CTL_ADD,
			  t->lfd[i], &ev);
	}
}

static void cd_accept(struct cd_thread *t, int lfd, u64 now)
{
	struct cd_server *srv = &t->d->srv;
	int i;

	for (i = 0; i < 64; i++) {
		struct epoll_event ev;
		struct cd_conn *c;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				cd_log("accept: %s: not accepting for %d ms",
				       strerror(errno), CD_TICK_MS);
				cd_accept_pause(t, true);
			}
			return;
		}
		c = calloc(1, sizeof(*c));
		if (c)
			c->s = cd_session_new(srv, now);
		if (!c || !c->s) {
			/* Too many sessions: closed before any frame. */
			cd_count(srv, CD_STAT_SESSIONS_REFUSED);
			free(c);
			close(fd);
			continue;
		}
		cd_sock_setup(fd, &srv->cfg);
		c->fd = fd;
		c->s->tx = cd_conn_tx;
		c->s->tx_arg = c;
		c->s->kick = cd_thread_kick;
		c->s->kick_arg = t;
		c->events = EPOLLIN;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			cd_count(srv, CD_STAT_SESSIONS_REFUSED);
			cd_session_free(c->s);
			free(c);
			close(fd);
			continue;
		}
		c->next = t->head.next;
		c->prev = &t->head;
		t->head.next->prev = c;
		t->head.next = c;
		t->nr_conns++;
		cd_count(srv, CD_STAT_SESSIONS_ACCEPTED);
	}
}

/* Close connections past a deadline. */
static void cd_timers(struct cd_thread *t, u64 now)
{
	const struct cd_config *cfg = &t->d->srv.cfg;
	struct cd_conn *c, *next;

	for (c = t->head.next; c != &t->head; c = next) {
		struct cd_session *s = c->s;
		bool expired;

		next = c->next;
		expired = !cd_session_ready(s) &&
			  now - s->start_ms >= cfg->handshake_timeout_ms;
		if (cd_session_in_frame(s) &&
		    now - s->frame_start_ms >= cfg->io_timeout_ms)
			expired = true;
		if (cd_session_pending(s) &&
		    now - c->out_since_ms >= cfg->io_timeout_ms)
			expired = true;
		if (!cd_session_in_frame(s) && !cd_session_pending(s) &&
		    !s->nr_chunks &&
		    now - s->last_rx_ms >= cfg->idle_timeout_ms)
			expired = true;
		if (expired) {
			cd_count(&t->d->srv, CD_STAT_ERR_TIMEOUT);
			cd_conn_close(t, c);
		}
	}
	cd_close_kicked(t);
	cd_orphans_expire(&t->d->srv, now);
}

/* SIGTERM: stop listening and reading; send what is queued, then close. */
static void cd_begin_drain(struct cd_thread *t, u64 now)
{
	struct cd_conn *c, *next;
	int i;

	for (i = 0; i < t->d->nr_listen; i++) {
		if (t->lfd[i] >= 0) {
			epoll_ctl(t->epfd, EPOLL_CTL_DEL, t->lfd[i], NULL);
			close(t->lfd[i]);
			t->lfd[i] = -1;
		}
	}
	for (c = t->head.next; c != &t->head; c = next) {
		next = c->next;
		c->close_after_flush = true;
		cd_conn_service(t, c, now);
	}
}

static void *cd_thread_main(void *arg)
{
	struct cd_thread *t = arg;
	struct epoll_event evs[CD_EVENTS];
	u64 last_tick = cd_now_ms(), drain_until = 0;

	for (;;) {
		bool kicked = false;
		u64 now;
		int n, i;

		if (drain_until && !t->nr_conns)
			break;
		n = epoll_wait(t->epfd, evs, CD_EVENTS, CD_TICK_MS);
		if (n < 0 && errno != EINTR) {
			cd_log("epoll_wait: %s", strerror(errno));
			break;
		}
		now = cd_now_ms();
		for (i = 0; i < n; i++) {
			u64 tag = evs[i].data.u64;

			if (tag == CD_TAG_EVENT) {
				u64 v;

				if (read(t->evfd, &v, sizeof(v)) < 0 &&
				    errno != EAGAIN)
					cd_log("eventfd: %s", strerror(errno));
				/* After the batch: it may name them. */
				kicked = true;
				continue;
			}
			if (tag >= CD_TAG_LISTEN(0) &&
			    tag < CD_TAG_LISTEN(t->d->nr_listen)) {
				int l = (int)(tag - CD_TAG_LISTEN(0));

				if (t->lfd[l] >= 0)
					cd_accept(t, t->lfd[l], now);
				continue;
			}
			cd_conn_service(t, evs[i].data.ptr, now);
		}
		if (kicked)
			cd_close_kicked(t);
		if (!drain_until && atomic_load(&t->d->stopping)) {
			drain_until = now + CD_DRAIN_MS;
			cd_begin_drain(t, now);
		}
		if (drain_until && now >= drain_until) {
			while (t->head.next != &t->head)
				cd_conn_close(t, t->head.next);
			break;
		}
		if (now - last_tick >= CD_TICK_MS) {
			last_tick = now;
			cd_timers(t, now);
			if (!drain_until)
				cd_accept_pause(t, false);
		}
	}
	return NULL;
}

static int cd_listen_one(struct cd_daemon *d, int i)
{
	const struct sockaddr *sa = (const struct sockaddr *)&d->listen[i];
	int one = 1, zero = 0;
	int fd;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	/* [::] takes IPv4 too, as sshd and friends do by default. */
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, sa, d->listen_len[i]) || listen(fd, 512))
		goto fail;
	return fd;
fail:
	i = -errno;
	close(fd);
	return i;
}

/**
 * cd_loop_port() - the port a listening address ended up on
 * @d: the daemon, started
 * @i: index of the address
 *
 * Return: the port (useful after --listen ADDR:0), or -1.
 */
int cd_loop_port(struct cd_daemon *d, int i)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (!d->threads || d->threads[0].lfd[i] < 0 ||
	    getsockname(d->threads[0].lfd[i], (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void cd_set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((u16)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((u16)port);
}

static int cd_thread_init(struct cd_daemon *d, struct cd_thread *t)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int i;

	t->d = d;
	t->head.next = &t->head;
	t->head.prev = &t->head;
	for (i = 0; i < CD_MAX_LISTEN; i++)
		t->lfd[i] = -1;
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->epfd < 0 || t->evfd < 0)
		return -errno;
	ev.data.u64 = CD_TAG_EVENT;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev))
		return -errno;
	for (i = 0; i < d->nr_listen; i++) {
		int fd = cd_listen_one(d, i);

		if (fd < 0)
			return fd;
		t->lfd[i] = fd;
		/* Port 0: the first thread's port is everybody's. */
		if (t == &d->threads[0]) {
			int port = cd_loop_port(d, i);

			if (port > 0)
				cd_set_port(&d->listen[i], port);
		}
		ev.data.u64 = CD_TAG_LISTEN(i);
		if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev))
			return -errno;
	}
	return 0;
}

static void cd_thread_fini(struct cd_thread *t)
{
	int i;

	while (t->head.next && t->head.next != &t->head)
		cd_conn_close(t, t->head.next);
	for (i = 0; i < CD_MAX_LISTEN; i++)
		if (t->lfd[i] >= 0)
			close(t->lfd[i]);
	if (t->evfd >= 0)
		close(t->evfd);
	if (t->epfd >= 0)
		close(t->epfd);
}

/**
 * cd_loop_start() - listen and start the event loops
 * @d: the daemon, configured
 *
 * Return: 0, or -errno (nothing left running).
 */
int cd_loop_start(struct cd_daemon *d)
{
	int i, ret = 0;

	d->threads = calloc((size_t)d->nr_threads, sizeof(*d->threads));
	if (!d->threads)
		return -ENOMEM;
	for (i = 0; i < d->nr_threads; i++) {
		d->threads[i].epfd = -1;
		d->threads[i].evfd = -1;
		ret = cd_thread_init(d, &d->threads[i]);
		if (ret)
			goto fail;
	}
	for (i = 0; i < d->nr_threads; i++) {
		ret = -pthread_create(&d->threads[i].tid, NULL, cd_thread_main,
				      &d->threads[i]);
		if (ret)
			goto fail;
		d->threads[i].started = true;
	}
	return 0;
fail:
	cd_loop_stop(d);
	cd_loop_join(d);
	return ret;
}

/**
 * cd_loop_stop() - ask every loop to drain and exit
 * @d: the daemon
 */
void cd_loop_stop(struct cd_daemon *d)
{
	u64 one = 1;
	int i;

	atomic_store(&d->stopping, true);
	for (i = 0; d->threads && i < d->nr_threads; i++)
		if (d->threads[i].evfd >= 0 &&
		    write(d->threads[i].evfd, &one, sizeof(one)) < 0)
			cd_log("eventfd: %s", strerror(errno));
}

/**
 * cd_loop_join() - wait for the loops, free them and every session
 * @d: the daemon, stopped
 */
void cd_loop_join(struct cd_daemon *d)
{
	int i;

	for (i = 0; d->threads && i < d->nr_threads; i++) {
		if (d->threads[i].started)
			pthread_join(d->threads[i].tid, NULL);
		cd_thread_fini(&d->threads[i]);
	}
	free(d->threads);
	d->threads = NULL;
}
