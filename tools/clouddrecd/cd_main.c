// SPDX-License-Identifier: GPL-2.0
/*
 * virgo-clouddrecd: lends this host's memory to virgo clients, in user
 * space, over wire protocol v1 (docs/protocol.md), byte-compatible with
 * virgo_clouddrec.ko.  See virgo-clouddrecd(8) and docs/clouddrecd.md.
 *
 * The main thread parses options, reads the key file, starts the event
 * loops (cd_loop.c) and then only waits for signals: SIGTERM/SIGINT
 * drain and stop, SIGHUP reopens the log file, and once a second it
 * rewrites the stats file.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cd.h"

#define CD_VERSION	"1.0"
#define CD_DEF_PORT	7707

static const char *cd_log_path;

/**
 * cd_log() - one line on stderr (the journal, or the --log-file)
 * @fmt: printf format
 */
void cd_log(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write: lines of several threads do not interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

static int cd_log_reopen(void)
{
	int fd;

	if (!cd_log_path)
		return 0;
	fd = open(cd_log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
		  0640);
	if (fd < 0)
		return -errno;
	if (dup2(fd, STDERR_FILENO) < 0) {
		close(fd);
		return -errno;
	}
	close(fd);
	return 0;
}

static const char cd_usage_text[] =
"Usage: virgo-clouddrecd [OPTION]...\n"
"Lend this host's memory to virgo clients (wire protocol v1, the same as\n"
"virgo_clouddrec.ko), from user space.\n"
"\n"
"  -l, --listen ADDR:PORT     address to listen on, IPv4 (1.2.3.4:7707) or\n"
"                             IPv6 ([::]:7707, which takes IPv4 too);\n"
"                             repeatable (up to %d); PORT 0 picks one\n"
"                             (default 0.0.0.0:%d)\n"
"  -t, --threads N            event loops (default: online CPUs, max 64)\n"
"  -m, --max-memory SIZE      bytes lent in total, chunks plus %d bytes of\n"
"                             bookkeeping each (default 1G)\n"
"      --max-chunk SIZE       largest chunk (default 1M, at most 32M)\n"
"      --max-batch N          most chunks per ALLOC/FREE (default 1024)\n"
"      --max-sessions N       most connections at once (default 1024)\n"
"      --max-inflight N       requests a client may pipeline (default 128)\n"
"      --idle-timeout SEC     close a session holding no chunk that is\n"
"                             quiet this long (default 300)\n"
"      --io-timeout SEC       a frame, or replies the client does not read,\n"
"                             may take this long (default 30)\n"
"      --handshake-timeout SEC  HELLO/AUTH must be done in this (default 10)\n"
"      --orphan-timeout SEC   a session of a client that offers resumption\n"
"                             and loses its connection holding chunks is\n"
"                             kept this long for it (default 120); 0: never\n"
"                             offer resumption, free at once\n"
"      --no-discard           do not grant DISCARD: clients write zeroes\n"
"                             instead of giving chunk memory back\n"
"  -k, --psk-file PATH        pre-shared key: the file's bytes (one trailing\n"
"                             newline dropped), 1..%d; the file must not be\n"
"                             accessible by group or others.  No key: any\n"
"                             host that reaches the port may use the memory\n"
"      --mlock                lock lent memory in RAM (mlockall)\n"
"      --hugepages            huge pages for chunks of 2 MiB and more, best\n"
"                             effort (MAP_HUGETLB, else MADV_HUGEPAGE)\n"
"  -s, --stats-file PATH      rewrite counters there every second\n"
"      --log-file PATH        log there instead of stderr; SIGHUP reopens it\n"
"  -h, --help                 this help\n"
"  -V, --version              version\n"
"\n"
"SIZE takes a K, M or G suffix (powers of 1024).  Signals: SIGTERM or SIGINT\n"
"stop accepting, send the replies already queued, free everything and exit\n"
"0; SIGHUP reopens the log file.\n";

static void cd_usage(FILE *f)
{
	fprintf(f, cd_usage_text, CD_MAX_LISTEN, CD_DEF_PORT, CD_CHUNK_META,
		CD_PSK_MAX);
}

static int cd_parse_u64(const char *s, u64 *out, bool size)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (!*s || *s == '-')
		return -EINVAL;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	if (size && *end) {
		unsigned int shift;

		switch (*end) {
		case 'k': case 'K':
			shift = 10;
			break;
		case 'm': case 'M':
			shift = 20;
			break;
		case 'g': case 'G':
			shift = 30;
			break;
		default:
			return -EINVAL;
		}
		if (v > (ULLONG_MAX >> shift))
			return -EINVAL;
		v <<= shift;
		end++;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int cd_parse_u32(const char *s, u32 *out, bool size,
			u32 min, u32 max)
{
	u64 v;

	if (cd_parse_u64(s, &v, size) || v < min || v > max)
		return -EINVAL;
	*out = (u32)v;
	return 0;
}

/* "1.2.3.4:7707" or "[::1]:7707" (the brackets are required for IPv6). */
static int cd_parse_listen(const char *arg, struct sockaddr_storage *ss,
			   socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	u32 port;
	size_t hl;

	memset(ss, 0, sizeof(*ss));
	if (arg[0] == '[') {
		const char *rb = strchr(arg, ']');
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		if (!rb || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - arg - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, arg + 1, hl);
		host[hl] = 0;
		if (cd_parse_u32(rb + 2, &port, false, 0, 65535))
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((u16)port);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return -EINVAL;
		*len = sizeof(*sin6);
		return 0;
	}
	colon = strrchr(arg, ':');
	if (!colon)
		return -EINVAL;
	hl = (size_t)(colon - arg);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, arg, hl);
	host[hl] = 0;
	if (cd_parse_u32(colon + 1, &port, false, 0, 65535))
		return -EINVAL;
	{
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((u16)port);
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return -EINVAL;
		*len = sizeof(*sin);
	}
	return 0;
}

/*
 * The key file: refused unless a regular file that neither group nor
 * others may access (as ssh does with private keys).
 */
static int cd_read_psk(const char *path, struct cd_config *cfg)
{
	u8 buf[CD_PSK_MAX + 2];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		cd_log("--psk-file %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		cd_log("--psk-file %s: not a regular file", path);
		ret = -EINVAL;
		goto out;
	}
	if (st.st_mode & 0077) {
		cd_log("--psk-file %s: mode %04o: %s", path,
		       (unsigned int)(st.st_mode & 07777),
		       "group or others may access it; chmod 600 it");
		ret = -EPERM;
		goto out;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len && buf[len - 1] == '\n')
		len--;
	if (len == 0 || len > CD_PSK_MAX) {
		cd_log("--psk-file %s: the key must be 1..%d bytes", path,
		       CD_PSK_MAX);
		ret = -EINVAL;
		goto out;
	}
	memcpy(cfg->psk, buf, len);
	cfg->psk_len = len;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return ret;
}

static const char *cd_addr_str(const struct sockaddr_storage *ss, int port,
			       char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr,
			  host, sizeof(host));
		snprintf(buf, len, "%s:%d", host, port);
	} else {
		inet_ntop(AF_INET6,
			  &((const struct sockaddr_in6 *)ss)->sin6_addr,
			  host, sizeof(host));
		snprintf(buf, len, "[%s]:%d", host, port);
	}
	return buf;
}

/* The counters, as virgo_clouddrec's debugfs stats, plus where we listen. */
static int cd_write_stats(struct cd_daemon *d, const char *path)
{
	struct cd_server *srv = &d->srv;
	char tmp[PATH_MAX], addr[INET6_ADDRSTRLEN + 16];
	FILE *f;
	int i;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "capacity %llu\n",
		srv->cfg.max_memory);
	fprintf(f, "budget_used %llu\n", atomic_load(&srv->budget));
	fprintf(f, "lent_bytes %llu\n", atomic_load(&srv->lent_bytes));
	fprintf(f, "lent_chunks %llu\n",
		atomic_load(&srv->lent_chunks));
	fprintf(f, "materialised_bytes %llu\n",
		atomic_load(&srv->materialised));
	fprintf(f, "sessions %llu\n", atomic_load(&srv->sessions));
	fprintf(f, "orphans %llu\n", atomic_load(&srv->orphans));
	for (i = 0; i < CD_STAT_NR; i++)
		fprintf(f, "%s %llu\n", cd_stat_names[i],
			atomic_load(&srv->stats[i]));
	for (i = 0; i < d->nr_listen; i++) {
		int port = cd_loop_port(d, i);

		if (port < 0)
			continue;
		cd_addr_str(&d->listen[i], port, addr, sizeof(addr));
		fprintf(f, "listen %s\n", addr);
		if (i == 0)
			fprintf(f, "port %d\n", port);
	}
	if (fclose(f))
		return -errno;
	if (rename(tmp, path))
		return -errno;
	return 0;
}

enum {
	OPT_MAX_CHUNK = 256,
	OPT_MAX_BATCH,
	OPT_MAX_SESSIONS,
	OPT_MAX_INFLIGHT,
	OPT_IDLE,
	OPT_IO,
	OPT_HANDSHAKE,
	OPT_ORPHAN,
	OPT_NO_DISCARD,
	OPT_MLOCK,
	OPT_HUGEPAGES,
	OPT_LOG_FILE,
};

static const struct option cd_options[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "threads", required_argument, NULL, 't' },
	{ "max-memory", required_argument, NULL, 'm' },
	{ "max-chunk", required_argument, NULL, OPT_MAX_CHUNK },
	{ "max-batch", required_argument, NULL, OPT_MAX_BATCH },
	{ "max-sessions", required_argument, NULL, OPT_MAX_SESSIONS },
	{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "io-timeout", required_argument, NULL, OPT_IO },
	{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE },
	{ "orphan-timeout", required_argument, NULL, OPT_ORPHAN },
	{ "no-discard", no_argument, NULL, OPT_NO_DISCARD },
	{ "psk-file", required_argument, NULL, 'k' },
	{ "mlock", no_argument, NULL, OPT_MLOCK },
	{ "hugepages", no_argument, NULL, OPT_HUGEPAGES },
	{ "stats-file", required_argument, NULL, 's' },
	{ "log-file", required_argument, NULL, OPT_LOG_FILE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct cd_args {
	const char *psk_file;
	const char *stats_file;
	u32 threads;
};

static int cd_bad(const char *opt, const char *arg)
{
	fprintf(stderr, "virgo-clouddrecd: bad %s '%s' (see --help)\n", opt,
		arg);
	return -EINVAL;
}

static int cd_parse_args(int argc, char **argv, struct cd_daemon *d,
			 struct cd_config *cfg, struct cd_args *a)
{
	u32 secs;
	long ncpu;
	int c;

	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	a->threads = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (u32)ncpu;
	while ((c = getopt_long(argc, argv, "l:t:m:k:s:hV", cd_options,
				NULL)) != -1) {
		switch (c) {
		case 'l':
			if (d->nr_listen == CD_MAX_LISTEN)
				return cd_bad("--listen (too many)", optarg);
			if (cd_parse_listen(optarg, &d->listen[d->nr_listen],
					    &d->listen_len[d->nr_listen]))
				return cd_bad("--listen", optarg);
			d->nr_listen++;
			break;
		case 't':
			if (cd_parse_u32(optarg, &a->threads, false, 1, 64))
				return cd_bad("--threads (1..64)", optarg);
			break;
		case 'm':
			if (cd_parse_u64(optarg, &cfg->max_memory, true) ||
			    !cfg->max_memory)
				return cd_bad("--max-memory", optarg);
			break;
		case OPT_MAX_CHUNK:
			if (cd_parse_u32(optarg, &cfg->max_chunk, true, 1,
					 VIRGO_WIRE_MAX_CHUNK_LIMIT))
				return cd_bad("--max-chunk (1..32M)", optarg);
			break;
		case OPT_MAX_BATCH:
			if (cd_parse_u32(optarg, &cfg->max_batch, false, 1,
					 VIRGO_WIRE_MAX_BATCH_LIMIT))
				return cd_bad("--max-batch (1..65536)", optarg);
			break;
		case OPT_MAX_SESSIONS:
			if (cd_parse_u32(optarg, &cfg->max_sessions, false, 1,
					 CD_MAX_SESSIONS))
				return cd_bad("--max-sessions (1..65536)",
					      optarg);
			break;
		case OPT_MAX_INFLIGHT:
			if (cd_parse_u32(optarg, &cfg->max_inflight, false, 1,
					 65536))
				return cd_bad("--max-inflight", optarg);
			break;
		case OPT_IDLE:
		case OPT_IO:
		case OPT_HANDSHAKE:
			if (cd_parse_u32(optarg, &secs, false, 1, 86400))
				return cd_bad("timeout (1..86400 s)", optarg);
			if (c == OPT_IDLE)
				cfg->idle_timeout_ms = secs * 1000;
			else if (c == OPT_IO)
				cfg->io_timeout_ms = secs * 1000;
			else
				cfg->handshake_timeout_ms = secs * 1000;
			break;
		case OPT_ORPHAN:
			if (cd_parse_u32(optarg, &secs, false, 0, 86400))
				return cd_bad("--orphan-timeout (0..86400 s)",
					      optarg);
			cfg->orphan_timeout_ms = secs * 1000;
			break;
		case OPT_NO_DISCARD:
			cfg->discard = false;
			break;
		case 'k':
			a->psk_file = optarg;
			break;
		case OPT_MLOCK:
			cfg->mlock = true;
			break;
		case OPT_HUGEPAGES:
			cfg->hugepages = true;
			break;
		case 's':
			a->stats_file = optarg;
			break;
		case OPT_LOG_FILE:
			cd_log_path = optarg;
			break;
		case 'h':
			cd_usage(stdout);
			exit(0);
		case 'V':
			printf("virgo-clouddrecd %s (wire protocol %d)\n",
			       CD_VERSION, VIRGO_WIRE_VERSION);
			exit(0);
		default:
			cd_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc)
		return cd_bad("argument", argv[optind]);
	if (!d->nr_listen) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&d->listen[0];

		sin->sin_family = AF_INET;
		sin->sin_port = htons(CD_DEF_PORT);
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		d->listen_len[0] = sizeof(*sin);
		d->nr_listen = 1;
	}
	return 0;
}

/* A descriptor per session: take all the kernel allows us. */
static void cd_raise_nofile(u32 max_sessions)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < (rlim_t)max_sessions + 64)
		cd_log("RLIMIT_NOFILE %llu < --max-sessions %u + 64: %s",
		       (unsigned long long)rl.rlim_cur, max_sessions,
		       "connections past it wait in the backlog");
}

int main(int argc, char **argv)
{
	static struct cd_daemon d;
	struct cd_config cfg;
	struct cd_args a = { 0 };
	struct timespec tick = { .tv_sec = 1 };
	sigset_t sigs;
	char addr[INET6_ADDRSTRLEN + 16];
	int ret, i;

	cd_config_default(&cfg);
	if (cd_parse_args(argc, argv, &d, &cfg, &a))
		return 2;
	if (cd_log_reopen()) {
		fprintf(stderr, "virgo-clouddrecd: --log-file %s: %s\n",
			cd_log_path, strerror(errno));
		return 1;
	}
	if (a.psk_file && cd_read_psk(a.psk_file, &cfg))
		return 1;
	if (cd_server_init(&d.srv, &cfg)) {
		cd_log("invalid configuration");
		return 2;
	}
	OPENSSL_cleanse(cfg.psk, sizeof(cfg.psk));
	if (cfg.mlock && mlockall(MCL_CURRENT | MCL_FUTURE)) {
		cd_log("--mlock: mlockall: %s (%s)", strerror(errno),
		       "RLIMIT_MEMLOCK, CAP_IPC_LOCK, LimitMEMLOCK=");
		return 1;
	}

	cd_raise_nofile(cfg.max_sessions);

	/* Signals go to this thread only: the loops inherit the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	d.nr_threads = (int)a.threads;
	ret = cd_loop_start(&d);
	if (ret) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&d.listen[0];
		int port = ntohs(sin->sin_port);

		cd_addr_str(&d.listen[0], port, addr, sizeof(addr));
		cd_log("cannot listen on %s: %s", addr, strerror(-ret));
		return 1;
	}
	for (i = 0; i < d.nr_listen; i++)
		cd_log("lending up to %llu MiB on %s, %d thread%s%s%s",
		       cfg.max_memory >> 20,
		       cd_addr_str(&d.listen[i], cd_loop_port(&d, i), addr,
				   sizeof(addr)),
		       d.nr_threads, d.nr_threads == 1 ? "" : "s",
		       d.srv.cfg.psk_len ? ", key required" : "",
		       cfg.orphan_timeout_ms ? ", resumable" : "");
	if (!d.srv.cfg.psk_len)
		cd_log("no key (--psk-file): %s",
		       "any host that reaches the port can use this memory");

	for (;;) {
		int sig;

		ret = a.stats_file ? cd_write_stats(&d, a.stats_file) : 0;
		if (ret)
			cd_log("--stats-file %s: %s", a.stats_file,
			       strerror(-ret));
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGHUP) {
			if (cd_log_reopen())
				cd_log("--log-file %s: %s", cd_log_path,
				       strerror(errno));
			else
				cd_log("log reopened");
		} else if (sig == SIGTERM || sig == SIGINT) {
			cd_log("signal %d: draining", sig);
			break;
		}
	}
	cd_loop_stop(&d);
	cd_loop_join(&d);
	cd_server_fini(&d.srv);	/* the orphans */
	ret = a.stats_file ? cd_write_stats(&d, a.stats_file) : 0;
	if (ret)
		cd_log("--stats-file %s: %s", a.stats_file, strerror(-ret));
	cd_log("stopped: %llu sessions served, %llu bytes lent now",
	       atomic_load(&d.srv.stats[CD_STAT_SESSIONS_ACCEPTED]),
	       atomic_load(&d.srv.lent_bytes));
	OPENSSL_cleanse(d.srv.cfg.psk, sizeof(d.srv.cfg.psk));
	return atomic_load(&d.srv.lent_bytes) ? 1 : 0;
}
