// SPDX-License-Identifier: GPL-2.0
/*
 * virgoctl: the administration tool of virgo, kernel memory spread across
 * many machines.
 *
 *   virgoctl [--json] status [--peer ADDR:PORT [--psk-file FILE]] |
 *	      table [--chunks] | alloc SIZE [--replicas N] | free ADDR |
 *	      read ADDR LEN [-o FILE] | write ADDR [-i FILE] |
 *	      peers list | peers add ADDR:PORT[@DOMAIN] | peers del ADDR:PORT |
 *	      peers drain ADDR:PORT |
 *	      blk create SIZE [--replicas N] [--name NAME] | blk list |
 *	      blk remove NAME
 *
 * Allocations go through libvirgo (system calls or /dev/virgo), so they
 * belong to the user and outlive the command.  Everything else comes from
 * the files of the modules:
 *
 *   /sys/kernel/virgo/peers			peers (read), add/del (write)
 *   /sys/kernel/debug/virgo/{peers,table}	peers, translation table
 *   /sys/kernel/debug/virgo_clouddrec/{stats,sessions}  the local server
 *   /sys/kernel/config/virgo_blk/NAME/{size,replicas,power,disk}  blk devices
 *
 * They are parsed defensively: columns are found by the names in a header
 * line, unknown keys and columns are skipped, a value that is not a number
 * shows as "?" (null in JSON), and malformed lines are ignored.
 * VIRGOCTL_SYSROOT, if set, is put in front of every one of those paths
 * (tests point it at a fake tree).  status --peer asks a cloud node itself,
 * over TCP (vc_remote.c).
 *
 * Exit status: 0 success, 1 the operation failed, 2 usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libvirgo.h"
#include "vc_remote.h"

#define VIRGOCTL_VERSION	"1.0"

typedef unsigned long long u64;
typedef long long s64;

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#define HINT_NO_CLIENT \
	"virgo.ko is not loaded: insmod virgo.ko peers=ADDR:PORT[,...]"
#define HINT_NO_PEERS \
	"virgo.ko has no peers: virgoctl peers add ADDR:PORT"
#define HINT_EACCES \
	"/dev/virgo is root-only unless virgo.ko has dev_mode=0666: run as root"
#define HINT_NOSYSCALL \
	"this kernel has no virgo system calls: unset VIRGO_BACKEND=syscall"

#define EXIT_OK		0
#define EXIT_FAIL	1
#define EXIT_USAGE	2

/* Bytes moved per virgo_set()/virgo_get() by read and write. */
#define IO_STEP		(1024 * 1024)

#define SYSFS_PEERS	"/sys/kernel/virgo/peers"
#define SYSFS_REPLICAS	"/sys/kernel/virgo/replicas"
#define SYSFS_CLIENT	"/sys/kernel/virgo"
#define DEBUGFS		"/sys/kernel/debug"
#define DBG_PEERS	DEBUGFS "/virgo/peers"
#define DBG_TABLE	DEBUGFS "/virgo/table"
#define DBG_CD_STATS	DEBUGFS "/virgo_clouddrec/stats"
#define DBG_CD_SESSIONS	DEBUGFS "/virgo_clouddrec/sessions"
#define MOD_CLOUDDREC	"/sys/module/virgo_clouddrec"
#define CFS_ROOT	"/sys/kernel/config"
#define CFS_BLK		CFS_ROOT "/virgo_blk"

static const char *prog = "virgoctl";
static const char *sysroot = "";
static bool json;

/* ---- messages --------------------------------------------------------- */

static void error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void note(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: hint: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- paths and what exists -------------------------------------------- */

static const char *kpath(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s%s", sysroot, rel);
	return buf;
}

static bool kexists(const char *rel)
{
	char p[PATH_MAX];
	struct stat st;

	return !stat(kpath(p, sizeof(p), rel), &st);
}

static bool client_loaded(void)
{
	return kexists(SYSFS_CLIENT);
}

static bool server_loaded(void)
{
	return kexists(MOD_CLOUDDREC) || kexists(DBG_CD_STATS);
}

/* debugfs is mounted if its directory is on another device than /sys. */
static bool debugfs_mounted(void)
{
	char p[PATH_MAX];
	struct stat d, s;

	if (stat(kpath(p, sizeof(p), DEBUGFS), &d) ||
	    stat(kpath(p, sizeof(p), "/sys/kernel"), &s))
		return false;
	return d.st_dev != s.st_dev;
}

/* Why could the kernel file @rel not be opened (errno @err)? */
static void file_hint(const char *rel, int err)
{
	bool dbg = !strncmp(rel, DEBUGFS "/", strlen(DEBUGFS "/"));
	bool server = strstr(rel, "virgo_clouddrec");

	if (err == EACCES || err == EPERM) {
		note("%s needs root", dbg ? "debugfs" : rel);
	} else if (err == ENOENT) {
		if (dbg && !debugfs_mounted())
			note("debugfs is not mounted: mount -t debugfs none %s",
			     DEBUGFS);
		if (server && !server_loaded())
			note("virgo_clouddrec.ko is not loaded");
		else if (!server && !client_loaded())
			note(HINT_NO_CLIENT);
	}
}

static FILE *kopen(const char *rel, bool report)
{
	char p[PATH_MAX];
	FILE *f = fopen(kpath(p, sizeof(p), rel), "re");

	if (!f && report) {
		int err = errno;

		error("cannot read %s: %s", p, strerror(err));
		file_hint(rel, err);
		errno = err;
	}
	return f;
}

/* ---- numbers ------------------------------------------------------------ */

/* A whole decimal, or 0x hexadecimal, number; no sign, no blanks. */
static int parse_u64(const char *s, u64 *v)
{
	int base = 10;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		if (!isxdigit((unsigned char)s[2]))
			return -1;
	}
	errno = 0;
	*v = strtoull(s, &end, base);
	return errno || *end ? -1 : 0;
}

static int parse_s64(const char *s, s64 *v)
{
	char *end;

	if (!s || !(isdigit((unsigned char)s[0]) ||
		    (s[0] == '-' && isdigit((unsigned char)s[1]))))
		return -1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/*
 * A size: a number (decimal or 0x hex) with an optional suffix K, M, G or
 * T (powers of 1024), which may be followed by "iB" or "B": 4096, 64K,
 * 1MiB, 2G.
 */
static int parse_size(const char *s, u64 *v)
{
	static const char units[] = "KMGT";
	char num[32], *u;
	const char *p;
	size_t n;
	int shift = 0;

	if (!s)
		return -1;
	n = strspn(s, "0123456789abcdefABCDEFxX");
	/* A hex number eats B as a digit: 0x10B is 267, 10B is 10 bytes. */
	if (!(s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
		n = strspn(s, "0123456789");
	if (!n || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (parse_u64(num, v))
		return -1;
	p = s + n;
	if (*p) {
		u = strchr(units, toupper((unsigned char)*p));
		if (u) {
			shift = 10 * (int)(u - units + 1);
			p++;
			if (!strcmp(p, "iB") || !strcmp(p, "ib"))
				p += 2;
		}
		if (!strcmp(p, "B") || !strcmp(p, "b"))
			p++;
		if (*p)
			return -1;
	}
	if (shift && *v > (ULLONG_MAX >> shift))
		return -1;
	*v <<= shift;
	return 0;
}

/* 1536 -> "1.5 KiB"; exact below 1 KiB. */
static const char *human(char *buf, size_t size, u64 v)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB", "EiB" };
	double d = (double)v;
	int i = -1;

	if (v < 1024) {
		snprintf(buf, size, "%llu B", v);
		return buf;
	}
	while (d >= 1024 && i < 5) {
		d /= 1024;
		i++;
	}
	snprintf(buf, size, "%.1f %s", d, units[i]);
	return buf;
}

/* ---- aligned tables ----------------------------------------------------- */

/**
 * struct tab - a table printed with aligned columns
 * @ncol: columns
 * @align: 'l' or 'r' for each column
 * @cell: the cells, row by row, the header first
 * @n: cells so far
 * @cap: room in @cell
 */
struct tab {
	int ncol;
	const char *align;
	char **cell;
	size_t n;
	size_t cap;
};

static void *xrealloc(void *p, size_t size)
{
	p = realloc(p, size ? size : 1);
	if (!p) {
		error("out of memory");
		exit(EXIT_FAIL);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	if (!d) {
		error("out of memory");
		exit(EXIT_FAIL);
	}
	return d;
}

/* Add one cell, printf-style; rows fill up left to right. */
static void tab_add(struct tab *t, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		error("out of memory");
		exit(EXIT_FAIL);
	}
	va_end(ap);
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->cell = xrealloc(t->cell, t->cap * sizeof(*t->cell));
	}
	t->cell[t->n++] = s;
}

static size_t tab_rows(const struct tab *t)
{
	return t->n / t->ncol;
}

static void tab_print(const struct tab *t, const char *indent)
{
	size_t w[16] = { 0 }, i;
	int c;

	for (i = 0; i < t->n; i++) {
		size_t l = strlen(t->cell[i]);

		c = i % t->ncol;
		if (c < 16 && l > w[c])
			w[c] = l;
	}
	for (i = 0; i + t->ncol <= t->n; i += t->ncol) {
		fputs(indent, stdout);
		for (c = 0; c < t->ncol; c++) {
			const char *s = t->cell[i + c];
			bool last = c == t->ncol - 1;
			int width = c < 16 ? (int)w[c] : 0;

			if (t->align[c] == 'r')
				printf("%*s", width, s);
			else
				printf("%-*s", last ? 0 : width, s);
			fputs(last ? "\n" : "  ", stdout);
		}
	}
}

static void tab_free(struct tab *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->cell[i]);
	free(t->cell);
	t->cell = NULL;
	t->n = 0;
	t->cap = 0;
}

/* ---- JSON output -------------------------------------------------------- */

/*
 * A small emitter: j_open() and j_close() nest objects and arrays, every
 * value function takes the member name (NULL inside an array) and puts the
 * commas where they belong.
 */
static bool j_first[32] = { true };
static int j_depth;

static void j_str_raw(const char *s)
{
	const unsigned char *p;

	putchar('"');
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void j_key(const char *key)
{
	if (!j_first[j_depth])
		putchar(',');
	j_first[j_depth] = false;
	if (key) {
		j_str_raw(key);
		putchar(':');
	}
}

static void j_open(const char *key, char c)
{
	j_key(key);
	putchar(c);
	if (j_depth < 31)
		j_depth++;
	j_first[j_depth] = true;
}

static void j_close(char c)
{
	putchar(c);
	if (j_depth > 0)
		j_depth--;
	if (!j_depth)
		putchar('\n');
}

static void j_str(const char *key, const char *v)
{
	j_key(key);
	if (v)
		j_str_raw(v);
	else
		fputs("null", stdout);
}

static void j_u64(const char *key, u64 v)
{
	j_key(key);
	printf("%llu", v);
}

static void j_bool(const char *key, bool v)
{
	j_key(key);
	fputs(v ? "true" : "false", stdout);
}

static void j_null(const char *key)
{
	j_key(key);
	fputs("null", stdout);
}

/* A number as read from a kernel file, or null if it is not one. */
static void j_num(const char *key, const char *s, bool is_signed)
{
	u64 u;
	s64 v;

	j_key(key);
	if (is_signed ? !parse_s64(s, &v) : !parse_u64(s, &u))
		fputs(s, stdout);
	else
		fputs("null", stdout);
}

/* A VIRGO address as JSON: a string, "0x..." (it may exceed 2^53). */
static void j_addr(const char *key, u64 addr)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%llx", addr);
	j_str(key, buf);
}

/* ---- kernel files: lines and records ------------------------------------ */

#define MAX_TOK	32

static int split(char *line, char **tok, int max)
{
	char *save = NULL, *t;
	int n = 0;

	for (t = strtok_r(line, " \t\n", &save); t && n < max;
	     t = strtok_r(NULL, " \t\n", &save))
		tok[n++] = t;
	return n;
}

/* Peers: the columns of /sys/kernel/virgo/peers and debugfs virgo/peers. */
enum {
	PF_ID, PF_ADDR, PF_STATE, PF_EPOCH, PF_RTT, PF_FREE, PF_CAP,
	PF_PLACED, PF_INFLIGHT, PF_RESUMED, PF_LOST, PF_NR
};

static const char *const peer_cols[PF_NR] = {
	"id", "address", "state", "epoch", "rtt_us", "free", "capacity",
	"placed", "inflight", "resumed", "lost",
};

/**
 * struct peers - the peers of the client, as read
 * @f: per peer, PF_NR strings (NULL where the file had none)
 * @nr: peers
 * @source: the file they came from
 */
struct peers {
	char *(*f)[PF_NR];
	size_t nr;
	const char *source;
};

static void peers_free(struct peers *p)
{
	size_t i;
	int c;

	for (i = 0; i < p->nr; i++)
		for (c = 0; c < PF_NR; c++)
			free(p->f[i][c]);
	free(p->f);
	p->f = NULL;
	p->nr = 0;
}

static int peers_parse(FILE *f, struct peers *p)
{
	int pos[PF_NR], ntok, c, i;
	char *line = NULL, *tok[MAX_TOK];
	u64 id;
	bool header = false;
	size_t cap = 0;

	for (c = 0; c < PF_NR; c++)
		pos[c] = c;	/* the layout of virgo_admin.c, until told */
	while (getline(&line, &cap, f) > 0) {
		ntok = split(line, tok, MAX_TOK);
		if (!ntok)
			continue;
		if (!header && !isdigit((unsigned char)tok[0][0])) {
			/* The header: find each column by its name. */
			header = true;
			for (c = 0; c < PF_NR; c++) {
				pos[c] = -1;
				for (i = 0; i < ntok; i++)
					if (!strcmp(tok[i], peer_cols[c]))
						pos[c] = i;
			}
			continue;
		}
		/* A peer line has an address and a numeric id. */
		if (pos[PF_ADDR] < 0 || pos[PF_ADDR] >= ntok ||
		    !strchr(tok[pos[PF_ADDR]], ':'))
			continue;
		if (pos[PF_ID] >= 0 &&
		    (pos[PF_ID] >= ntok || parse_u64(tok[pos[PF_ID]], &id)))
			continue;
		p->f = xrealloc(p->f, (p->nr + 1) * sizeof(*p->f));
		for (c = 0; c < PF_NR; c++)
			p->f[p->nr][c] = pos[c] >= 0 && pos[c] < ntok ?
					 xstrdup(tok[pos[c]]) : NULL;
		p->nr++;
	}
	free(line);
	return ferror(f) ? -1 : 0;
}

/* Read the peers from debugfs, else from sysfs; report failures. */
static int peers_read(struct peers *p)
{
	FILE *f = kopen(DBG_PEERS, false);
	int ret, err;

	p->source = "debugfs";
	if (!f) {
		p->source = "sysfs";
		f = kopen(SYSFS_PEERS, true);
		if (!f)
			return -1;
	}
	ret = peers_parse(f, p);
	err = errno;
	fclose(f);
	if (ret)
		error("reading the %s peers file: %s", p->source,
		      strerror(err));
	return ret;
}

static const char *or_q(const char *s)
{
	return s ? s : "?";
}

/* A byte count from a kernel file, human-readable, or "?". */
static const char *hbytes(char *buf, size_t size, const char *s,
			  bool is_signed)
{
	u64 u;
	s64 v;

	if (is_signed && !parse_s64(s, &v)) {
		char abs[32];

		if (v >= 0)
			return human(buf, size, v);
		snprintf(buf, size, "-%s", human(abs, sizeof(abs), -(u64)v));
		return buf;
	}
	if (!is_signed && !parse_u64(s, &u))
		return human(buf, size, u);
	return "?";
}

/* "s" unless the count @n read from a kernel file is 1 */
static const char *plural(const char *n)
{
	return n && !strcmp(n, "1") ? "" : "s";
}

/* A round trip in us, or "-" for none measured yet (0). */
static const char *hrtt(char *buf, size_t size, const char *s)
{
	u64 us;

	if (parse_u64(s, &us))
		return "?";
	if (!us)
		return "-";
	if (us < 10000)
		snprintf(buf, size, "%llu us", us);
	else
		snprintf(buf, size, "%.1f ms", us / 1000.0);
	return buf;
}

static void peers_print(const struct peers *p, const char *indent)
{
	struct tab t = { .ncol = 11, .align = "rllrrrrrrrr" };
	char b1[32], b2[32], b3[32], b4[32];
	size_t i;

	if (!p->nr) {
		printf("%sno peers (virgoctl peers add ADDR:PORT)\n", indent);
		return;
	}
	tab_add(&t, "ID");
	tab_add(&t, "ADDRESS");
	tab_add(&t, "STATE");
	tab_add(&t, "EPOCH");
	tab_add(&t, "RTT");
	tab_add(&t, "FREE");
	tab_add(&t, "CAPACITY");
	tab_add(&t, "PLACED");
	tab_add(&t, "INFLIGHT");
	tab_add(&t, "RESUMED");
	tab_add(&t, "LOST");
	for (i = 0; i < p->nr; i++) {
		char **f = p->f[i];

		tab_add(&t, "%s", or_q(f[PF_ID]));
		tab_add(&t, "%s", or_q(f[PF_ADDR]));
		tab_add(&t, "%s", or_q(f[PF_STATE]));
		tab_add(&t, "%s", or_q(f[PF_EPOCH]));
		tab_add(&t, "%s", hrtt(b1, sizeof(b1), f[PF_RTT]));
		tab_add(&t, "%s", hbytes(b2, sizeof(b2), f[PF_FREE], true));
		tab_add(&t, "%s", hbytes(b3, sizeof(b3), f[PF_CAP], false));
		tab_add(&t, "%s", hbytes(b4, sizeof(b4), f[PF_PLACED], false));
		tab_add(&t, "%s", or_q(f[PF_INFLIGHT]));
		tab_add(&t, "%s", or_q(f[PF_RESUMED]));
		tab_add(&t, "%s", or_q(f[PF_LOST]));
	}
	tab_print(&t, indent);
	tab_free(&t);
}

static void peers_json(const char *key, const struct peers *p)
{
	size_t i;

	j_open(key, '[');
	for (i = 0; i < p->nr; i++) {
		char **f = p->f[i];

		j_open(NULL, '{');
		j_num("id", f[PF_ID], false);
		j_str("address", f[PF_ADDR]);
		j_str("state", f[PF_STATE]);
		j_num("epoch", f[PF_EPOCH], false);
		j_num("rtt_us", f[PF_RTT], false);
		j_num("free", f[PF_FREE], true);
		j_num("capacity", f[PF_CAP], false);
		j_num("placed", f[PF_PLACED], false);
		j_num("inflight", f[PF_INFLIGHT], true);
		j_num("resumed", f[PF_RESUMED], false);
		j_num("sessions_lost", f[PF_LOST], false);
		j_close('}');
	}
	j_close(']');
}

/* "key value" lines (virgo_clouddrec/stats) */
struct kv {
	char **key;
	char **val;
	size_t nr;
};

static int kv_parse(FILE *f, struct kv *kv)
{
	char *line = NULL, *tok[MAX_TOK];
	size_t cap = 0;

	while (getline(&line, &cap, f) > 0) {
		if (split(line, tok, MAX_TOK) != 2)
			continue;
		kv->key = xrealloc(kv->key, (kv->nr + 1) * sizeof(char *));
		kv->val = xrealloc(kv->val, (kv->nr + 1) * sizeof(char *));
		kv->key[kv->nr] = xstrdup(tok[0]);
		kv->val[kv->nr] = xstrdup(tok[1]);
		kv->nr++;
	}
	free(line);
	return ferror(f) ? -1 : 0;
}

static const char *kv_get(const struct kv *kv, const char *key)
{
	size_t i;

	for (i = 0; i < kv->nr; i++)
		if (!strcmp(kv->key[i], key))
			return kv->val[i];
	return NULL;
}

static void kv_free(struct kv *kv)
{
	size_t i;

	for (i = 0; i < kv->nr; i++) {
		free(kv->key[i]);
		free(kv->val[i]);
	}
	free(kv->key);
	free(kv->val);
	memset(kv, 0, sizeof(*kv));
}

/* ---- the translation table (debugfs virgo/table) ------------------------ */

/**
 * struct chunk - one chunk line of the table
 * @idx: chunk number
 * @offset: offset in the allocation
 * @len: bytes
 * @peer_id: id of the peer holding it
 * @peer: its address, or "(removed)"
 * @epoch: connection epoch it was allocated in
 * @handle: the server's handle
 */
struct chunk {
	char *idx, *offset, *len, *peer_id, *peer, *epoch, *handle;
};

/**
 * struct alloc - one allocation of the table
 * @addr: first VIRGO address
 * @size: bytes, as read ("?" if absent)
 * @owner: "user" or "kernel"
 * @nr_chunks: chunks, as the allocation line says
 * @chunks: the chunk lines that followed it
 * @nr: entries in @chunks
 */
struct alloc {
	u64 addr;
	char *size, *owner, *nr_chunks;
	struct chunk *chunks;
	size_t nr;
};

/**
 * struct table - the table as read
 * @allocations: the count in the first line, or NULL
 * @bytes: the byte count in the first line, or NULL
 * @a: the allocations
 * @nr: entries in @a
 */
struct table {
	char *allocations, *bytes;
	struct alloc *a;
	size_t nr;
};

/* The value after key @key in @tok, or NULL. */
static char *tok_after(char **tok, int ntok, const char *key, int skip)
{
	int i;

	for (i = 0; i + 1 + skip < ntok; i++)
		if (!strcmp(tok[i], key))
			return xstrdup(tok[i + 1 + skip]);
	return NULL;
}

static int table_parse(FILE *f, struct table *t)
{
	char *line = NULL, *tok[MAX_TOK];
	size_t cap = 0;
	int ntok;

	while (getline(&line, &cap, f) > 0) {
		bool indented = line[0] == ' ' || line[0] == '\t';
		u64 addr;

		ntok = split(line, tok, MAX_TOK);
		if (!ntok)
			continue;
		if (!strcmp(tok[0], "allocations") && !t->allocations) {
			t->allocations = tok_after(tok, ntok, "allocations", 0);
			t->bytes = tok_after(tok, ntok, "bytes", 0);
		} else if (!indented && !strncmp(tok[0], "0x", 2) &&
			   !parse_u64(tok[0], &addr)) {
			struct alloc *a;

			t->a = xrealloc(t->a, (t->nr + 1) * sizeof(*t->a));
			a = &t->a[t->nr++];
			memset(a, 0, sizeof(*a));
			a->addr = addr;
			a->size = tok_after(tok, ntok, "size", 0);
			a->owner = tok_after(tok, ntok, "owner", 0);
			a->nr_chunks = tok_after(tok, ntok, "chunks", 0);
		} else if (indented && !strcmp(tok[0], "chunk") && t->nr) {
			struct alloc *a = &t->a[t->nr - 1];
			struct chunk *c;

			a->chunks = xrealloc(a->chunks,
					     (a->nr + 1) * sizeof(*a->chunks));
			c = &a->chunks[a->nr++];
			c->idx = tok_after(tok, ntok, "chunk", 0);
			c->offset = tok_after(tok, ntok, "offset", 0);
			c->len = tok_after(tok, ntok, "len", 0);
			/* "peer ID NAME": two values */
			c->peer_id = tok_after(tok, ntok, "peer", 0);
			c->peer = tok_after(tok, ntok, "peer", 1);
			c->epoch = tok_after(tok, ntok, "epoch", 0);
			c->handle = tok_after(tok, ntok, "handle", 0);
		}
	}
	free(line);
	return ferror(f) ? -1 : 0;
}

static void table_free(struct table *t)
{
	size_t i, j;

	for (i = 0; i < t->nr; i++) {
		struct alloc *a = &t->a[i];

		for (j = 0; j < a->nr; j++) {
			struct chunk *c = &a->chunks[j];

			free(c->idx);
			free(c->offset);
			free(c->len);
			free(c->peer_id);
			free(c->peer);
			free(c->epoch);
			free(c->handle);
		}
		free(a->chunks);
		free(a->size);
		free(a->owner);
		free(a->nr_chunks);
	}
	free(t->a);
	free(t->allocations);
	free(t->bytes);
	memset(t, 0, sizeof(*t));
}

/* Distinct peers holding the chunks of @a. */
static size_t alloc_peers(const struct alloc *a)
{
	size_t i, j, n = 0;

	for (i = 0; i < a->nr; i++) {
		const char *p = a->chunks[i].peer;

		if (!p)
			continue;
		for (j = 0; j < i; j++)
			if (a->chunks[j].peer && !strcmp(a->chunks[j].peer, p))
				break;
		if (j == i)
			n++;
	}
	return n;
}

/* ---- usage -------------------------------------------------------------- */

/**
 * struct cmd - a subcommand
 * @name: its name
 * @args: its arguments, for the usage lines
 * @help: what it does, for --help
 * @run: the implementation; argv[0] is the subcommand
 */
struct cmd {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(int argc, char **argv);
};

static const struct cmd *find_cmd(const char *name);

static void print_cmd_usage(FILE *f, const struct cmd *c)
{
	fprintf(f, "usage: %s [--json] %s%s%s\n\n%s\n%s", prog, c->name,
		*c->args ? " " : "", c->args, c->help,
		"Exit status: 0 success, 1 the operation failed, 2 usage error.\n");
}

static int usage_error(const char *cmdname, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmdname)
		fprintf(stderr, "Try '%s %s --help'.\n", prog, cmdname);
	else
		fprintf(stderr, "Try '%s --help'.\n", prog);
	return EXIT_USAGE;
}

/* --help or -h as an argument of a subcommand? */
static bool wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	}
	return false;
}

/*
 * Take --json out of a subcommand's arguments (it is a global option and
 * may come anywhere before "--"); return the new argc.
 */
static int strip_global(int argc, char **argv)
{
	int i, n = 1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "--json"))
			json = true;
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return n;
}

/* ---- errors of libvirgo calls ------------------------------------------- */

/* VIRGO_BACKEND unset, or a value libvirgo knows? */
static bool valid_backend_env(void)
{
	const char *env = getenv("VIRGO_BACKEND");

	return !env || !*env || !strcmp(env, "auto") ||
	       !strcmp(env, "syscall") || !strcmp(env, "device");
}

static void virgo_error(const char *what, int err)
{
	error("%s: %s", what, strerror(err));
	switch (err) {
	case ENOENT:
		note("no allocation there (virgoctl table lists them)");
		break;
	case EPERM:
		note("the allocation belongs to another user");
		break;
	case EACCES:
		note(HINT_EACCES);
		break;
	case ENODEV:
		if (!valid_backend_env())
			note("VIRGO_BACKEND must be syscall, device or auto");
		else if (client_loaded())
			note(HINT_NO_PEERS);
		else
			note(HINT_NO_CLIENT);
		break;
	case ENOSYS:
		if (client_loaded())
			note(HINT_NOSYSCALL);
		else
			note(HINT_NO_CLIENT);
		break;
	case ENOMEM:
		note("the peers lack that much free memory (virgoctl status)");
		break;
	case ENOSPC:
		note("no reachable peer has room (virgoctl status)");
		break;
	case EIO:
		note("a peer failed or its connection broke (virgoctl status)");
		break;
	case ETIMEDOUT:
		note("a peer did not answer in time (virgoctl status)");
		break;
	}
}

/* The wrong number of arguments: say which is missing or extra. */
static int nargs_error(const char *cmd, int argc, char **argv, int want,
		       const char *missing)
{
	if (argc < want)
		return usage_error(cmd, "missing %s", missing);
	return usage_error(cmd, "unexpected argument '%s'", argv[want]);
}

static int parse_addr_arg(const char *cmd, const char *s, u64 *addr)
{
	if (parse_u64(s, addr))
		return usage_error(cmd, "not an address: '%s' (0x..., decimal)",
				   s);
	return 0;
}

/* ---- status ------------------------------------------------------------- */

static int status_client(struct peers *p, struct virgo_ioc_stat *st,
			 int *stat_err, const char **backend)
{
	*stat_err = 0;
	if (!client_loaded())
		return -1;
	*backend = virgo_backend();
	if (virgo_stat(st))
		*stat_err = errno;
	if (peers_read(p))
		return 1;
	return 0;
}

static int status_server(struct kv *stats, struct tab *sessions,
			 int *sessions_ok)
{
	char *line = NULL, *tok[MAX_TOK];
	size_t cap = 0;
	FILE *f;
	int ret;

	*sessions_ok = 0;
	if (!server_loaded())
		return -1;
	f = kopen(DBG_CD_STATS, true);
	if (!f)
		return 1;
	ret = kv_parse(f, stats);
	fclose(f);
	if (ret)
		return 1;
	f = kopen(DBG_CD_SESSIONS, true);
	if (!f)
		return 0;
	while (getline(&line, &cap, f) > 0) {
		int n = split(line, tok, MAX_TOK);

		/* "peer bytes chunks authenticated", header skipped */
		if (n < 4 || !isdigit((unsigned char)tok[1][0]))
			continue;
		tab_add(sessions, "%s", tok[0]);
		tab_add(sessions, "%s", tok[1]);
		tab_add(sessions, "%s", tok[2]);
		tab_add(sessions, "%s", strcmp(tok[3], "0") ? "yes" : "no");
	}
	free(line);
	fclose(f);
	*sessions_ok = 1;
	return 0;
}

static void stat_json(const struct virgo_ioc_stat *st)
{
	j_open("stat", '{');
	j_u64("abi_version", st->abi_version);
	j_u64("nr_peers", st->nr_peers);
	j_u64("peers_up", st->peers_up);
	j_u64("chunk_size", st->chunk_size);
	j_u64("allocations", st->allocations);
	j_u64("bytes", st->bytes);
	j_close('}');
}

static u64 kv_u64(const struct kv *kv, const char *key)
{
	u64 v = 0;

	if (parse_u64(kv_get(kv, key), &v))
		return 0;
	return v;
}

static void server_print(const struct kv *stats, const struct tab *sessions,
			 int sessions_ok)
{
	u64 errors = 0, v;
	char b1[32], b2[32], b3[32], b4[32];
	size_t i;

	for (i = 0; i < stats->nr; i++)
		if (!strncmp(stats->key[i], "err_", 4) &&
		    !parse_u64(stats->val[i], &v))
			errors += v;
	printf("server      virgo_clouddrec, capacity %s\n",
	       hbytes(b1, sizeof(b1), kv_get(stats, "capacity"), false));
	printf("lent        %s in %s chunk%s, %s session%s\n",
	       hbytes(b2, sizeof(b2), kv_get(stats, "lent_bytes"), false),
	       or_q(kv_get(stats, "lent_chunks")),
	       plural(kv_get(stats, "lent_chunks")),
	       or_q(kv_get(stats, "sessions")),
	       plural(kv_get(stats, "sessions")));
	printf("requests    %llu (%llu errors), %s written, %s read\n",
	       kv_u64(stats, "requests"), errors,
	       hbytes(b3, sizeof(b3), kv_get(stats, "bytes_written"), false),
	       hbytes(b4, sizeof(b4), kv_get(stats, "bytes_read"), false));
	if (sessions_ok && tab_rows(sessions) > 1) {
		putchar('\n');
		tab_print(sessions, "");
	}
}

static void server_json(const struct kv *stats, const struct tab *sessions,
			int sessions_ok)
{
	size_t i;

	j_open("stats", '{');
	for (i = 0; i < stats->nr; i++)
		j_num(stats->key[i], stats->val[i], false);
	j_close('}');
	if (!sessions_ok) {
		j_null("sessions");
		return;
	}
	j_open("sessions", '[');
	for (i = 4; i + 4 <= sessions->n; i += 4) {
		j_open(NULL, '{');
		j_str("peer", sessions->cell[i]);
		j_num("bytes", sessions->cell[i + 1], false);
		j_num("chunks", sessions->cell[i + 2], false);
		j_bool("authenticated", !strcmp(sessions->cell[i + 3], "yes"));
		j_close('}');
	}
	j_close(']');
}

/**
 * struct status - what status found
 * @client: 0 read, 1 loaded but a file could not be read, -1 not loaded
 * @server: the same for the local server
 * @backend: libvirgo's backend
 * @stat_err: errno of VIRGO_IOC_STAT, or 0
 * @st: VIRGO_IOC_STAT
 * @peers: the client's peers
 * @stats: the server's counters
 * @sessions: the server's sessions (a table with its header row)
 * @sessions_ok: @sessions could be read
 */
struct status {
	int client, server;
	const char *backend;
	int stat_err;
	struct virgo_ioc_stat st;
	struct peers peers;
	struct kv stats;
	struct kv redundancy;
	struct tab sessions;
	int sessions_ok;
};

/* The client's redundancy counters (an older virgo.ko has none). */
static void status_redundancy(struct kv *kv)
{
	FILE *f = kopen(SYSFS_REPLICAS, false);

	if (!f)
		return;
	kv_parse(f, kv);
	fclose(f);
}

static void redundancy_json(const struct kv *kv)
{
	static const char *const keys[] = {
		"replicas", "stale_replicas", "stale_bytes",
		"repaired_chunks", "repaired_bytes", "repair_rate_bps",
	};
	size_t i;

	if (!kv->nr) {
		j_null("redundancy");
		return;
	}
	j_open("redundancy", '{');
	for (i = 0; i < ARRAY_SIZE(keys); i++)
		j_num(keys[i], kv_get(kv, keys[i]), false);
	j_close('}');
}

static void status_json(const struct status *s)
{
	j_open(NULL, '{');
	j_open("client", '{');
	j_bool("loaded", s->client >= 0);
	if (s->client >= 0) {
		j_str("backend", s->backend);
		if (s->stat_err) {
			j_null("stat");
			j_str("stat_error", strerror(s->stat_err));
		} else {
			stat_json(&s->st);
		}
		redundancy_json(&s->redundancy);
		j_str("peers_source", s->client ? NULL : s->peers.source);
		if (s->client)
			j_null("peers");
		else
			peers_json("peers", &s->peers);
	}
	j_close('}');
	j_open("server", '{');
	j_bool("loaded", s->server >= 0);
	if (s->server > 0)
		j_null("stats");
	else if (!s->server)
		server_json(&s->stats, &s->sessions, s->sessions_ok);
	j_close('}');
	j_close('}');
}

static void status_print_client(const struct status *s)
{
	const struct virgo_ioc_stat *st = &s->st;
	char b1[32], b2[32];

	if (s->client < 0) {
		printf("client      virgo.ko not loaded\n");
		return;
	}
	printf("client      virgo.ko, backend %s\n", s->backend);
	if (s->stat_err) {
		printf("totals      /dev/virgo: %s\n", strerror(s->stat_err));
	} else {
		printf("peers       %u configured, %u up\n", st->nr_peers,
		       st->peers_up);
		printf("chunk size  %s\n",
		       human(b1, sizeof(b1), st->chunk_size));
		printf("in use      %llu allocations, %s (%llu bytes)\n",
		       (u64)st->allocations, human(b2, sizeof(b2), st->bytes),
		       (u64)st->bytes);
	}
	if (s->redundancy.nr) {
		const struct kv *r = &s->redundancy;

		printf("replicas    %llu per chunk by default\n",
		       kv_u64(r, "replicas"));
		printf("degraded    %llu stale replicas, %s\n",
		       kv_u64(r, "stale_replicas"),
		       human(b1, sizeof(b1), kv_u64(r, "stale_bytes")));
		printf("repaired    %llu chunks, %s; last rate %s/s\n",
		       kv_u64(r, "repaired_chunks"),
		       human(b2, sizeof(b2), kv_u64(r, "repaired_bytes")),
		       human(b1, sizeof(b1), kv_u64(r, "repair_rate_bps")));
	}
	if (!s->client) {
		putchar('\n');
		peers_print(&s->peers, "");
	}
}

/* ---- status --peer: a cloud node over the wire ------------------------- */

static void remote_json(const char *spec, const struct vc_remote *r)
{
	j_open(NULL, '{');
	j_str("peer", spec);
	j_u64("protocol", r->version);
	j_bool("authenticated", r->auth_required);
	j_u64("rtt_us", r->rtt_us);
	j_open("limits", '{');
	j_u64("max_payload", r->max_payload);
	j_u64("max_chunk", r->max_chunk);
	j_u64("max_batch", r->max_batch);
	j_u64("max_inflight", r->max_inflight);
	j_close('}');
	j_open("stat", '{');
	j_u64("capacity", r->capacity);
	j_u64("free", r->free);
	j_u64("lent_bytes", r->lent_bytes);
	j_u64("lent_chunks", r->lent_chunks);
	j_u64("sessions", r->sessions);
	j_u64("session_bytes", r->session_bytes);
	j_u64("session_chunks", r->session_chunks);
	j_u64("requests", r->requests);
	j_close('}');
	j_close('}');
}

static void remote_print(const char *spec, const struct vc_remote *r)
{
	char b1[32], b2[32], b3[32], b4[32];

	printf("server      %s, protocol %u, %s, STAT round trip %llu us\n",
	       spec, r->version,
	       r->auth_required ? "key verified" : "no key (unauthenticated)",
	       (u64)r->rtt_us);
	printf("capacity    %s (%llu bytes), %s free\n",
	       human(b1, sizeof(b1), r->capacity), (u64)r->capacity,
	       human(b2, sizeof(b2), r->free));
	printf("lent        %s (%llu bytes) in %llu chunk%s\n",
	       human(b3, sizeof(b3), r->lent_bytes), (u64)r->lent_bytes,
	       (u64)r->lent_chunks, r->lent_chunks == 1 ? "" : "s");
	printf("sessions    %llu (this one included)\n", (u64)r->sessions);
	printf("requests    %llu served\n", (u64)r->requests);
	printf("limits      max_chunk %s, max_batch %u, max_inflight %u, ",
	       human(b4, sizeof(b4), r->max_chunk), r->max_batch,
	       r->max_inflight);
	printf("max_payload %u\n", r->max_payload);
}

/* status --peer ADDR:PORT [--psk-file FILE] [--timeout SECS] */
static int status_peer(const char *spec, const char *psk_file,
		       int timeout_s)
{
	struct vc_key key = { 0 };
	struct vc_remote r;
	char err[256];
	int ret;

	if (psk_file && vc_key_read(psk_file, &key, err, sizeof(err))) {
		error("%s", err);
		return EXIT_FAIL;
	}
	ret = vc_remote_stat(spec, &key, timeout_s * 1000, &r, err,
			     sizeof(err));
	vc_key_wipe(&key);
	if (ret) {
		error("status --peer %s", err);
		return EXIT_FAIL;
	}
	if (json)
		remote_json(spec, &r);
	else
		remote_print(spec, &r);
	return EXIT_OK;
}

/* The value of option @name at argv[*i] ("--name V" or "--name=V"). */
static const char *opt_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n))
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int cmd_status(int argc, char **argv)
{
	struct status s = {
		.sessions = { .ncol = 4, .align = "lrrl" },
	};
	const char *peer = NULL, *psk_file = NULL, *v;
	int ret = EXIT_OK, i, timeout_s = 5;
	u64 t;

	for (i = 1; i < argc; i++) {
		const char *o = argv[i];

		v = opt_value(argc, argv, &i, "--peer");
		if (v) {
			peer = v;
			continue;
		}
		v = opt_value(argc, argv, &i, "--psk-file");
		if (v) {
			psk_file = v;
			continue;
		}
		v = opt_value(argc, argv, &i, "--timeout");
		if (v) {
			if (parse_u64(v, &t) || !t || t > 3600)
				return usage_error("status",
						   "--timeout takes 1..3600 seconds, not '%s'",
						   v);
			timeout_s = (int)t;
			continue;
		}
		if (!strncmp(o, "--peer", 6) || !strncmp(o, "--psk-file", 10) ||
		    !strncmp(o, "--timeout", 9))
			return usage_error("status", "%s needs a value", o);
		return usage_error("status", "unexpected argument '%s'", o);
	}
	if (peer && !vc_remote_valid_spec(peer))
		return usage_error("status",
				   "not a peer address: '%s' (a.b.c.d:port or [v6]:port)",
				   peer);
	if (!peer && (psk_file || timeout_s != 5))
		return usage_error("status",
				   "--psk-file and --timeout go with --peer");
	if (peer)
		return status_peer(peer, psk_file, timeout_s);
	tab_add(&s.sessions, "SESSION");
	tab_add(&s.sessions, "BYTES");
	tab_add(&s.sessions, "CHUNKS");
	tab_add(&s.sessions, "AUTH");
	s.client = status_client(&s.peers, &s.st, &s.stat_err, &s.backend);
	if (s.client >= 0)
		status_redundancy(&s.redundancy);
	s.server = status_server(&s.stats, &s.sessions, &s.sessions_ok);

	if (json) {
		status_json(&s);
	} else {
		status_print_client(&s);
		putchar('\n');
		if (s.server < 0)
			printf("server      virgo_clouddrec.ko not loaded\n");
		else if (s.server > 0)
			printf("server      virgo_clouddrec, no stats\n");
		else
			server_print(&s.stats, &s.sessions, s.sessions_ok);
	}
	if (s.stat_err == EACCES)
		note("/dev/virgo is root-only by default: run as root");
	if (s.client < 0 && s.server < 0) {
		error("neither virgo.ko nor virgo_clouddrec.ko is loaded");
		ret = EXIT_FAIL;
	} else if (s.client > 0 || s.server > 0) {
		ret = EXIT_FAIL;
	}
	peers_free(&s.peers);
	kv_free(&s.stats);
	kv_free(&s.redundancy);
	tab_free(&s.sessions);
	return ret;
}

/* ---- table -------------------------------------------------------------- */

static void table_print(const struct table *t, bool chunks)
{
	struct tab a = { .ncol = 6, .align = "lrrlrr" };
	struct tab c = { .ncol = 7, .align = "lrrrlrr" };
	u64 n, bytes;
	char b[32];
	size_t i, j;

	if (!t->allocations || parse_u64(t->allocations, &n))
		n = t->nr;
	if (!t->bytes || parse_u64(t->bytes, &bytes)) {
		printf("%llu allocations\n", n);
	} else {
		printf("%llu allocations, %s (%llu bytes)\n", n,
		       human(b, sizeof(b), bytes), bytes);
	}
	if (!t->nr)
		return;
	tab_add(&a, "ADDRESS");
	tab_add(&a, "BYTES");
	tab_add(&a, "SIZE");
	tab_add(&a, "OWNER");
	tab_add(&a, "CHUNKS");
	tab_add(&a, "PEERS");
	tab_add(&c, "ADDRESS");
	tab_add(&c, "CHUNK");
	tab_add(&c, "OFFSET");
	tab_add(&c, "LEN");
	tab_add(&c, "PEER");
	tab_add(&c, "EPOCH");
	tab_add(&c, "HANDLE");
	for (i = 0; i < t->nr; i++) {
		const struct alloc *e = &t->a[i];

		tab_add(&a, "0x%llx", e->addr);
		tab_add(&a, "%s", or_q(e->size));
		tab_add(&a, "%s", hbytes(b, sizeof(b), e->size, false));
		tab_add(&a, "%s", or_q(e->owner));
		tab_add(&a, "%s", or_q(e->nr_chunks));
		tab_add(&a, "%zu", alloc_peers(e));
		for (j = 0; chunks && j < e->nr; j++) {
			const struct chunk *k = &e->chunks[j];

			tab_add(&c, "0x%llx", e->addr);
			tab_add(&c, "%s", or_q(k->idx));
			tab_add(&c, "%s", or_q(k->offset));
			tab_add(&c, "%s", or_q(k->len));
			tab_add(&c, "%s", or_q(k->peer));
			tab_add(&c, "%s", or_q(k->epoch));
			tab_add(&c, "%s", or_q(k->handle));
		}
	}
	tab_print(&a, "");
	if (chunks && tab_rows(&c) > 1) {
		putchar('\n');
		tab_print(&c, "");
	}
	tab_free(&a);
	tab_free(&c);
}

static void table_json(const struct table *t, bool chunks)
{
	size_t i, j, k;

	j_open(NULL, '{');
	if (t->allocations)
		j_num("allocations", t->allocations, false);
	else
		j_u64("allocations", t->nr);
	j_num("bytes", t->bytes, false);
	j_open("entries", '[');
	for (i = 0; i < t->nr; i++) {
		const struct alloc *e = &t->a[i];

		j_open(NULL, '{');
		j_addr("addr", e->addr);
		j_num("size", e->size, false);
		j_str("owner", e->owner);
		j_num("nr_chunks", e->nr_chunks, false);
		j_open("peers", '[');
		for (j = 0; j < e->nr; j++) {
			const char *p = e->chunks[j].peer;

			for (k = 0; p && k < j; k++)
				if (e->chunks[k].peer &&
				    !strcmp(e->chunks[k].peer, p))
					break;
			if (p && k == j)
				j_str(NULL, p);
		}
		j_close(']');
		if (chunks) {
			j_open("chunks", '[');
			for (j = 0; j < e->nr; j++) {
				const struct chunk *c = &e->chunks[j];

				j_open(NULL, '{');
				j_num("chunk", c->idx, false);
				j_num("offset", c->offset, false);
				j_num("len", c->len, false);
				j_num("peer_id", c->peer_id, false);
				j_str("peer", c->peer);
				j_num("epoch", c->epoch, false);
				j_num("handle", c->handle, false);
				j_close('}');
			}
			j_close(']');
		}
		j_close('}');
	}
	j_close(']');
	j_close('}');
}

static int cmd_table(int argc, char **argv)
{
	struct table t = { 0 };
	bool chunks = false;
	int i, ret, err;
	FILE *f;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--chunks") || !strcmp(argv[i], "-c"))
			chunks = true;
		else
			return usage_error("table", "unexpected argument '%s'",
					   argv[i]);
	}
	f = kopen(DBG_TABLE, true);
	if (!f)
		return EXIT_FAIL;
	ret = table_parse(f, &t);
	err = errno;
	fclose(f);
	if (ret) {
		error("reading %s: %s", DBG_TABLE, strerror(err));
		table_free(&t);
		return EXIT_FAIL;
	}
	if (json)
		table_json(&t, chunks);
	else
		table_print(&t, chunks);
	table_free(&t);
	return EXIT_OK;
}

/* ---- alloc, free -------------------------------------------------------- */

/* alloc's "--replicas N" / "-r N" / "--replicas=N": moved out of argv. */
static int take_replicas(int *argc, char **argv, unsigned int *replicas)
{
	int i, n = 1;
	const char *v;
	u64 r;

	*replicas = 0;
	for (i = 1; i < *argc; i++) {
		v = opt_value(*argc, argv, &i, "--replicas");
		if (!v)
			v = opt_value(*argc, argv, &i, "-r");
		if (!v && (!strcmp(argv[i], "--replicas") ||
			   !strcmp(argv[i], "-r")))
			return usage_error("alloc", "%s needs a number",
					   argv[i]);
		if (!v) {
			argv[n++] = argv[i];
			continue;
		}
		if (parse_u64(v, &r) || r < 1 || r > VIRGO_MAX_REPLICAS)
			return usage_error("alloc",
					   "--replicas takes 1..%d, not '%s'",
					   VIRGO_MAX_REPLICAS, v);
		*replicas = (unsigned int)r;
	}
	*argc = n;
	return 0;
}

static int cmd_alloc(int argc, char **argv)
{
	unsigned int replicas;
	char what[64];
	u64 size;
	virgo_addr_t addr;
	int ret;

	ret = take_replicas(&argc, argv, &replicas);
	if (ret)
		return ret;
	if (argc != 2)
		return nargs_error("alloc", argc, argv, 2, "SIZE");
	if (parse_size(argv[1], &size))
		return usage_error("alloc",
				   "not a size: '%s' (e.g. 4096, 64K, 1M, 2G)",
				   argv[1]);
	if (!size)
		return usage_error("alloc", "SIZE must be at least 1 byte");
	if (size > SIZE_MAX) {
		virgo_error("alloc", ENOMEM);
		return EXIT_FAIL;
	}
	if (virgo_malloc_replicas(size, replicas, &addr)) {
		int err = errno;

		snprintf(what, sizeof(what), "alloc %llu", size);
		virgo_error(what, err);
		if (replicas > 1 && err == ENOSPC)
			note("%u replicas need %u peers with room", replicas,
			     replicas);
		return EXIT_FAIL;
	}
	if (json) {
		j_open(NULL, '{');
		j_addr("addr", addr);
		j_u64("size", size);
		j_str("backend", virgo_backend());
		if (replicas)
			j_u64("replicas", replicas);
		else
			j_null("replicas");
		j_close('}');
	} else {
		printf("0x%llx\n", (u64)addr);
	}
	return EXIT_OK;
}

static int cmd_free(int argc, char **argv)
{
	char what[64];
	u64 addr;
	int ret;

	if (argc != 2)
		return nargs_error("free", argc, argv, 2, "ADDR");
	ret = parse_addr_arg("free", argv[1], &addr);
	if (ret)
		return ret;
	if (virgo_free(addr)) {
		int err = errno;

		snprintf(what, sizeof(what), "free 0x%llx", addr);
		virgo_error(what, err);
		if (err == EINVAL)
			note("0x%llx is not the first address of an allocation",
			     addr);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

/* ---- read, write -------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* Fill @buf from @fd; returns bytes read (short only at EOF), -1 on error. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (!n)
			break;
		done += n;
	}
	return done;
}

/*
 * Parse "-o FILE" (@opt "-o") or "-i FILE" among @argv[1..]: the other
 * arguments are moved to the front; returns how many there are, or -1.
 */
static int take_file_opt(const char *cmd, int argc, char **argv,
			 const char *opt, const char **file)
{
	int i, n = 1;

	*file = NULL;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strncmp(a, opt, 2)) {
			if (*file) {
				usage_error(cmd, "%s given twice", opt);
				return -1;
			}
			if (a[2]) {
				*file = a + 2;
				continue;
			}
			if (i + 1 >= argc) {
				usage_error(cmd, "%s needs a FILE", opt);
				return -1;
			}
			*file = argv[++i];
			continue;
		}
		if (a[0] == '-' && a[1] && !isdigit((unsigned char)a[1])) {
			usage_error(cmd, "unknown option '%s'", a);
			return -1;
		}
		argv[n++] = argv[i];
	}
	return n;
}

static int cmd_read(int argc, char **argv)
{
	u64 addr, len, done = 0;
	const char *file;
	char what[80];
	int fd = STDOUT_FILENO, ret = EXIT_OK;
	char *buf;

	argc = take_file_opt("read", argc, argv, "-o", &file);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc != 3)
		return nargs_error("read", argc, argv, 3, "ADDR or LEN");
	ret = parse_addr_arg("read", argv[1], &addr);
	if (ret)
		return ret;
	if (parse_size(argv[2], &len))
		return usage_error("read", "not a length: '%s'", argv[2]);
	if (file && strcmp(file, "-")) {
		fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			error("cannot create %s: %s", file, strerror(errno));
			return EXIT_FAIL;
		}
	}
	buf = malloc(len < IO_STEP ? (len ? len : 1) : IO_STEP);
	if (!buf) {
		error("out of memory");
		return EXIT_FAIL;
	}
	while (done < len) {
		size_t n = len - done < IO_STEP ? len - done : IO_STEP;

		if (virgo_get(addr + done, buf, n)) {
			snprintf(what, sizeof(what), "read at 0x%llx",
				 addr + done);
			virgo_error(what, errno);
			if (done)
				error("%llu bytes were read before it", done);
			ret = EXIT_FAIL;
			break;
		}
		if (write_all(fd, buf, n)) {
			error("writing %s: %s", file ? file : "stdout",
			      strerror(errno));
			ret = EXIT_FAIL;
			break;
		}
		done += n;
	}
	free(buf);
	if (fd != STDOUT_FILENO && close(fd) && ret == EXIT_OK) {
		error("writing %s: %s", file, strerror(errno));
		ret = EXIT_FAIL;
	}
	return ret;
}

static int cmd_write(int argc, char **argv)
{
	int fd = STDIN_FILENO, ret = EXIT_OK;
	u64 addr, done = 0;
	const char *file;
	char what[80];
	char *buf;

	argc = take_file_opt("write", argc, argv, "-i", &file);
	if (argc < 0)
		return EXIT_USAGE;
	if (argc != 2)
		return nargs_error("write", argc, argv, 2, "ADDR");
	ret = parse_addr_arg("write", argv[1], &addr);
	if (ret)
		return ret;
	if (file && strcmp(file, "-")) {
		fd = open(file, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			error("cannot open %s: %s", file, strerror(errno));
			return EXIT_FAIL;
		}
	}
	buf = malloc(IO_STEP);
	if (!buf) {
		error("out of memory");
		return EXIT_FAIL;
	}
	for (;;) {
		ssize_t n = read_full(fd, buf, IO_STEP);

		if (n < 0) {
			error("reading %s: %s", file ? file : "stdin",
			      strerror(errno));
			ret = EXIT_FAIL;
			break;
		}
		if (!n)
			break;
		if (virgo_set(addr + done, buf, n)) {
			snprintf(what, sizeof(what), "write at 0x%llx",
				 addr + done);
			virgo_error(what, errno);
			if (done)
				error("%llu bytes written before it", done);
			ret = EXIT_FAIL;
			break;
		}
		done += n;
		if (n < IO_STEP)
			break;
	}
	free(buf);
	if (fd != STDIN_FILENO)
		close(fd);
	return ret;
}

/* ---- peers -------------------------------------------------------------- */

/*
 * "a.b.c.d:port" or "[ipv6]:port", port 1..65535, optionally "@domain":
 * what the kernel's parser accepts (it also checks the label, and
 * refuses link-local and multicast IPv6 addresses; inet_pton() already
 * refuses zone ids).
 */
static bool valid_peer(const char *spec)
{
	char s[96], *host, *port, *at, *end;
	unsigned char ip[sizeof(struct in6_addr)];
	int family = AF_INET;
	u64 num;

	if (strlen(spec) >= sizeof(s))
		return false;
	strcpy(s, spec);
	at = strchr(s, '@');
	if (at)
		*at = '\0';
	host = s;
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return false;
		*end = '\0';
		host = s + 1;
		port = end + 2;
		family = AF_INET6;
	} else {
		port = strchr(s, ':');
		if (!port)
			return false;
		*port++ = '\0';
	}
	if (inet_pton(family, host, ip) != 1)
		return false;
	if (!isdigit((unsigned char)port[0]) || strlen(port) > 5)
		return false;
	return !parse_u64(port, &num) && num && num <= 65535;
}

static int peers_change(const char *verb, const char *spec)
{
	char p[PATH_MAX], cmd[112];
	int fd, len, err;

	if (!valid_peer(spec))
		return usage_error("peers",
				   "not a peer address: '%s' (a.b.c.d:port or [ipv6]:port)",
				   spec);
	len = snprintf(cmd, sizeof(cmd), "%s %s", verb, spec);
	fd = open(kpath(p, sizeof(p), SYSFS_PEERS), O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		error("cannot open %s: %s", p, strerror(err));
		file_hint(SYSFS_PEERS, err);
		return EXIT_FAIL;
	}
	if (write(fd, cmd, len) != len) {
		err = errno;
		error("peers %s %s: %s", verb, spec, strerror(err));
		if (err == EEXIST)
			note("%s is a peer already", spec);
		else if (err == ENOENT)
			note("%s is not a peer (virgoctl peers list)", spec);
		else if (err == EBUSY)
			note("chunks live on %s: free their allocations first",
			     spec);
		close(fd);
		return EXIT_FAIL;
	}
	if (close(fd)) {
		error("peers %s %s: %s", verb, spec, strerror(errno));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int cmd_peers(int argc, char **argv)
{
	struct peers p = { 0 };

	if (argc < 2)
		return usage_error("peers", "missing list, add, del or drain");
	if (!strcmp(argv[1], "list")) {
		if (argc != 2)
			return usage_error("peers", "unexpected argument '%s'",
					   argv[2]);
		if (peers_read(&p)) {
			peers_free(&p);
			return EXIT_FAIL;
		}
		if (json) {
			j_open(NULL, '{');
			j_str("source", p.source);
			peers_json("peers", &p);
			j_close('}');
		} else {
			peers_print(&p, "");
		}
		peers_free(&p);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "add") || !strcmp(argv[1], "del") ||
	    !strcmp(argv[1], "drain")) {
		if (argc != 3)
			return nargs_error("peers", argc, argv, 3,
					   "ADDR:PORT");
		return peers_change(argv[1], argv[2]);
	}
	return usage_error("peers", "unknown peers command '%s'", argv[1]);
}

/* ---- blk: virgo_blk devices through configfs ---------------------------- */

/* Longest device name virgo_blk takes (its VBLK_NAME_LEN, less the NUL). */
#define BLK_NAME_MAX	31

static const char *blk_path(char *buf, size_t size, const char *name,
			    const char *attr)
{
	char rel[PATH_MAX];

	snprintf(rel, sizeof(rel), "%s%s%s%s%s", CFS_BLK, name ? "/" : "",
		 name ? name : "", attr ? "/" : "", attr ? attr : "");
	return kpath(buf, size, rel);
}

/* Is virgo_blk's configfs directory there?  Else say why not. */
static bool blk_available(void)
{
	if (kexists(CFS_BLK))
		return true;
	error("%s: no such directory", CFS_BLK);
	if (!kexists(CFS_ROOT "/"))
		note("mount configfs: mount -t configfs none " CFS_ROOT);
	else
		note("virgo_blk.ko is not loaded: modprobe virgo_blk");
	return false;
}

/* Write @val to attribute @attr of device @name; 0 or an errno. */
static int blk_write_attr(const char *name, const char *attr,
			  const char *val)
{
	char p[PATH_MAX];
	size_t len = strlen(val);
	int fd, err = 0;

	fd = open(blk_path(p, sizeof(p), name, attr), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (write(fd, val, len) != (ssize_t)len)
		err = errno ? errno : EIO;
	if (close(fd) && !err)
		err = errno;
	return err;
}

/* Read attribute @attr of device @name into @buf, without the newline. */
static int blk_read_attr(const char *name, const char *attr, char *buf,
			 size_t size)
{
	char p[PATH_MAX];
	ssize_t n;
	int fd;

	buf[0] = '\0';
	fd = open(blk_path(p, sizeof(p), name, attr), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static bool blk_valid_name(const char *name)
{
	size_t i, len = strlen(name);

	if (!len || len > BLK_NAME_MAX || name[0] == '.')
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_-.",
								name[i]))
			return false;
	return true;
}

/* The first blkN that does not exist yet. */
static void blk_free_name(char *buf, size_t size)
{
	char p[PATH_MAX];
	struct stat st;
	unsigned int i;

	for (i = 0;; i++) {
		snprintf(buf, size, "blk%u", i);
		if (stat(blk_path(p, sizeof(p), buf, NULL), &st))
			return;
	}
}

static void blk_errno_hint(int err)
{
	if (err == EBUSY)
		note("the device is in use: unmount it, swapoff it, close it");
	else if (err == ENOSPC || err == ENOMEM)
		note("the peers lack that much free memory (virgoctl status)");
	else if (err == ENODEV)
		note(HINT_NO_PEERS);
}

static int blk_name_error(const char *name)
{
	return usage_error("blk",
			   "not a device name: '%s' (1-%d of A-Z a-z 0-9 _ - .)",
			   name, BLK_NAME_MAX);
}

static int blk_create(int argc, char **argv)
{
	char name[BLK_NAME_MAX + 1] = "", p[PATH_MAX], num[32], disk[64];
	const char *size_arg = NULL;
	u64 size, replicas = 0;
	int i, err;

	for (i = 2; i < argc; i++) {
		const char *opt = argv[i];

		if (!strcmp(opt, "--replicas") || !strcmp(opt, "--name")) {
			if (i + 1 >= argc)
				return usage_error("blk", "%s needs a value",
						   opt);
			if (!strcmp(opt, "--name")) {
				if (!blk_valid_name(argv[i + 1]))
					return blk_name_error(argv[i + 1]);
				strcpy(name, argv[i + 1]);
			} else if (parse_u64(argv[i + 1], &replicas) ||
				   replicas > 3) {
				return usage_error("blk",
						   "not a replica count: '%s' (0..3)",
						   argv[i + 1]);
			}
			i++;
		} else if (!size_arg && argv[i][0] != '-') {
			size_arg = argv[i];
		} else {
			return usage_error("blk", "unexpected argument '%s'",
					   argv[i]);
		}
	}
	if (!size_arg)
		return usage_error("blk", "missing SIZE");
	if (parse_size(size_arg, &size) || size < 4096 || size % 4096)
		return usage_error("blk",
				   "not a device size: '%s' (a multiple of 4K, e.g. 64M, 1G)",
				   size_arg);
	if (!blk_available())
		return EXIT_FAIL;
	if (!name[0])
		blk_free_name(name, sizeof(name));
	if (mkdir(blk_path(p, sizeof(p), name, NULL), 0755)) {
		err = errno;
		error("create %s: %s", p, strerror(err));
		if (err == EEXIST)
			note("%s exists already (virgoctl blk list)", name);
		return EXIT_FAIL;
	}
	snprintf(num, sizeof(num), "%llu", size);
	err = blk_write_attr(name, "size", num);
	if (!err) {
		snprintf(num, sizeof(num), "%llu", replicas);
		err = blk_write_attr(name, "replicas", num);
	}
	if (!err)
		err = blk_write_attr(name, "power", "1");
	if (err) {
		error("create %s (%llu bytes, replicas %llu): %s", name, size,
		      replicas, strerror(err));
		blk_errno_hint(err);
		rmdir(blk_path(p, sizeof(p), name, NULL));
		return EXIT_FAIL;
	}
	blk_read_attr(name, "disk", disk, sizeof(disk));
	if (json) {
		j_open(NULL, '{');
		j_str("name", name);
		j_str("disk", disk);
		j_u64("size", size);
		j_u64("replicas", replicas);
		j_close('}');
	} else {
		printf("%s /dev/%s\n", name, disk);
	}
	return EXIT_OK;
}

static int blk_cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The device names under configfs, sorted; NULL on error. */
static char **blk_names(size_t *n)
{
	char p[PATH_MAX], **names = NULL;
	struct dirent *d;
	DIR *dir;

	*n = 0;
	dir = opendir(blk_path(p, sizeof(p), NULL, NULL));
	if (!dir) {
		error("cannot read %s: %s", p, strerror(errno));
		return NULL;
	}
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.' || d->d_type != DT_DIR)
			continue;
		names = xrealloc(names, (*n + 1) * sizeof(*names));
		names[(*n)++] = xstrdup(d->d_name);
	}
	closedir(dir);
	if (*n)
		qsort(names, *n, sizeof(*names), blk_cmp_names);
	return names ? names : xrealloc(NULL, sizeof(*names));
}

static int blk_list(void)
{
	struct tab t = { .ncol = 5, .align = "llrrl" };
	char size[32], replicas[16], power[8], disk[64];
	size_t n, i;
	char **names;

	if (!blk_available())
		return EXIT_FAIL;
	names = blk_names(&n);
	if (!names)
		return EXIT_FAIL;
	if (json) {
		j_open(NULL, '[');
	} else {
		tab_add(&t, "NAME");
		tab_add(&t, "DISK");
		tab_add(&t, "SIZE");
		tab_add(&t, "REPLICAS");
		tab_add(&t, "POWER");
	}
	for (i = 0; i < n; i++) {
		blk_read_attr(names[i], "size", size, sizeof(size));
		blk_read_attr(names[i], "replicas", replicas, sizeof(replicas));
		blk_read_attr(names[i], "power", power, sizeof(power));
		blk_read_attr(names[i], "disk", disk, sizeof(disk));
		if (json) {
			j_open(NULL, '{');
			j_str("name", names[i]);
			j_str("disk", disk);
			j_num("size", size, false);
			j_num("replicas", replicas, false);
			j_bool("power", !strcmp(power, "1"));
			j_close('}');
		} else {
			tab_add(&t, "%s", names[i]);
			tab_add(&t, "%s", disk[0] ? disk : "-");
			tab_add(&t, "%s", size);
			tab_add(&t, "%s", replicas);
			tab_add(&t, "%s", !strcmp(power, "1") ? "on" : "off");
		}
		free(names[i]);
	}
	free(names);
	if (json) {
		j_close(']');
	} else {
		tab_print(&t, "");
		tab_free(&t);
	}
	return EXIT_OK;
}

static int blk_remove(const char *name)
{
	char p[PATH_MAX];
	struct stat st;
	int err;

	if (!blk_valid_name(name))
		return blk_name_error(name);
	if (!blk_available())
		return EXIT_FAIL;
	if (stat(blk_path(p, sizeof(p), name, NULL), &st)) {
		error("remove %s: no such device (virgoctl blk list)", name);
		return EXIT_FAIL;
	}
	err = blk_write_attr(name, "power", "0");
	if (!err && rmdir(blk_path(p, sizeof(p), name, NULL)))
		err = errno;
	if (err) {
		error("remove %s: %s", name, strerror(err));
		blk_errno_hint(err);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int cmd_blk(int argc, char **argv)
{
	if (argc < 2)
		return usage_error("blk", "missing create, list or remove");
	if (!strcmp(argv[1], "create"))
		return blk_create(argc, argv);
	if (!strcmp(argv[1], "list")) {
		if (argc != 2)
			return usage_error("blk", "unexpected argument '%s'",
					   argv[2]);
		return blk_list();
	}
	if (!strcmp(argv[1], "remove")) {
		if (argc != 3)
			return nargs_error("blk", argc, argv, 3, "NAME");
		return blk_remove(argv[2]);
	}
	return usage_error("blk", "unknown blk command '%s'", argv[1]);
}

/* ---- main --------------------------------------------------------------- */

static const struct cmd cmds[] = {
	{ "status", "[--peer ADDR:PORT [--psk-file FILE] [--timeout SECS]]",
	  "The client (virgo.ko): backend, peers configured and up, chunk size,\n"
	  "live allocations (VIRGO_IOC_STAT), and every peer with its state,\n"
	  "round trip, free memory and what is placed there (debugfs\n"
	  "virgo/peers, else /sys/kernel/virgo/peers).  The local server\n"
	  "(virgo_clouddrec.ko), if loaded: memory lent, sessions, requests\n"
	  "(debugfs virgo_clouddrec/{stats,sessions}).\n"
	  "Fails (1) if neither module is loaded or a file cannot be read.\n"
	  "\n"
	  "With --peer: a cloud node's counters over the wire, from any host\n"
	  "that reaches it (virgo_clouddrec.ko or virgo-clouddrecd): HELLO,\n"
	  "AUTH with the key of --psk-file when the node asks for one (the\n"
	  "file must be readable by its owner only, as for virgo-clouddrecd),\n"
	  "then STAT: capacity, free, bytes and chunks lent, sessions,\n"
	  "requests served, and the node's limits.  ADDR:PORT is a.b.c.d:port\n"
	  "or [IPv6]:port.  With a key, a node that does not ask for it is\n"
	  "refused.  --timeout (default 5 s) bounds the connect and each reply.\n"
	  "Fails (1) if the node cannot be reached, wants a key that is not\n"
	  "given, refuses the key, or answers anything but the protocol.\n",
	  cmd_status },
	{ "table", "[--chunks]",
	  "The VIRGO address translation table (debugfs virgo/table): every\n"
	  "allocation with its size, owner, chunks and the number of peers\n"
	  "holding them; with -c, --chunks, also every chunk: offset, length,\n"
	  "peer, connection epoch and handle.\n",
	  cmd_table },
	{ "alloc", "SIZE [--replicas N]",
	  "Allocate SIZE bytes and print the first VIRGO address (0x...).\n"
	  "SIZE: decimal or 0x hex, optional suffix K, M, G or T (powers of\n"
	  "1024, \"KiB\" and \"KB\" are read alike).  The allocation belongs to\n"
	  "your user and lives until freed (virgoctl free) or virgo.ko is\n"
	  "unloaded.  -r, --replicas N (1..3): keep every chunk on N distinct\n"
	  "peers whatever virgo.ko's replicas parameter says (default: that\n"
	  "parameter); fails with ENOSPC when fewer than N peers have room.\n",
	  cmd_alloc },
	{ "free", "ADDR",
	  "Free the allocation whose first VIRGO address is ADDR.\n",
	  cmd_free },
	{ "read", "ADDR LEN [-o FILE]",
	  "Read LEN bytes (suffixes as for alloc) from VIRGO address ADDR, any\n"
	  "address inside an allocation, to FILE, default stdout.  Binary.\n",
	  cmd_read },
	{ "write", "ADDR [-i FILE]",
	  "Write the bytes of FILE, default stdin, to VIRGO addresses from ADDR\n"
	  "on, any address inside an allocation.  Binary; the data must fit\n"
	  "in the allocation.  Written 1 MiB at a time: on an error, what\n"
	  "came before it stays written.\n",
	  cmd_write },
	{ "peers", "list | add ADDR:PORT | del ADDR:PORT",
	  "List the peers of virgo.ko, add one, or remove one (refused while\n"
	  "chunks live there).  ADDR:PORT is an IPv4 address and a port,\n"
	  "e.g. 10.0.0.2:7707.  add and del need root.\n",
	  cmd_peers },
	{ "blk",
	  "create SIZE [--replicas N] [--name NAME] | list | remove NAME",
	  "Block devices of virgo_blk.ko (/dev/virgobN) through configfs\n"
	  "(" CFS_BLK "): create one of SIZE bytes (a multiple\n"
	  "of 4K; suffixes as for alloc) with N copies of every chunk (0..3,\n"
	  "0: virgo.ko's replicas) and print its name and disk; list them;\n"
	  "remove one (refused while it is open, mounted or swapped on).\n"
	  "NAME defaults to the first free blkN.  Needs root.\n",
	  cmd_blk },
};

static const struct cmd *find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

static void print_usage(FILE *f)
{
	fprintf(f, "usage: %s [--json] COMMAND [ARGS]\n\n%s", prog,
		"Administer virgo: kernel memory spread across many machines.\n"
		"\n"
		"Commands:\n"
		"  status                   the client, its peers, the local server\n"
		"  status --peer ADDR:PORT [--psk-file FILE]\n"
		"                           a cloud node's counters over the wire\n"
		"  table [--chunks]         the VIRGO address translation table\n"
		"  alloc SIZE [--replicas N]  allocate SIZE bytes (N copies of each\n"
		"                           chunk), print the address\n"
		"  free ADDR                free an allocation\n"
		"  read ADDR LEN [-o FILE]  read bytes (to stdout by default)\n"
		"  write ADDR [-i FILE]     write bytes (from stdin by default)\n"
		"  peers list               the client's peers\n"
		"  peers add|del ADDR:PORT  add or remove a peer: a.b.c.d:port or\n"
		"                         [ipv6]:port (add: ADDR:PORT@DOMAIN gives its\n"
		"                         failure domain)\n"
		"  peers drain ADDR:PORT    move its chunks elsewhere (replicas >= 2)\n"
		"  blk create SIZE [--replicas N] [--name NAME]\n"
		"                           a block device over remote memory\n"
		"  blk list | remove NAME   list or remove them\n"
		"\n"
		"Options:\n"
		"  --json      JSON output (status, table, peers list, alloc)\n"
		"  -h, --help  this help; COMMAND --help: help on COMMAND\n"
		"  --version   the version\n"
		"\n"
		"Exit status: 0 success, 1 the operation failed, 2 usage error.\n"
		"\n"
		"Environment: VIRGO_BACKEND=syscall|device forces the backend of\n"
		"libvirgo (default: the virgo system calls if the kernel has them,\n"
		"else /dev/virgo).  Reading debugfs needs root and debugfs mounted\n"
		"(mount -t debugfs none /sys/kernel/debug).\n");
}

int main(int argc, char **argv)
{
	const struct cmd *c;
	const char *env;
	int i;

	env = getenv("VIRGOCTL_SYSROOT");
	if (env)
		sysroot = env;
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--help") ||
			   !strcmp(argv[i], "-h")) {
			print_usage(stdout);
			return EXIT_OK;
		} else if (!strcmp(argv[i], "--version")) {
			printf("virgoctl %s (libvirgo, ABI %d)\n",
			       VIRGOCTL_VERSION, VIRGO_ABI_VERSION);
			return EXIT_OK;
		} else {
			return usage_error(NULL, "unknown option '%s'",
					   argv[i]);
		}
	}
	if (i >= argc)
		return usage_error(NULL, "missing COMMAND");
	if (!strcmp(argv[i], "help")) {
		if (i + 1 >= argc) {
			print_usage(stdout);
			return EXIT_OK;
		}
		c = find_cmd(argv[i + 1]);
		if (!c)
			return usage_error(NULL, "unknown command '%s'",
					   argv[i + 1]);
		print_cmd_usage(stdout, c);
		return EXIT_OK;
	}
	c = find_cmd(argv[i]);
	if (!c)
		return usage_error(NULL, "unknown command '%s'", argv[i]);
	argc -= i;
	argv += i;
	if (wants_help(argc, argv)) {
		print_cmd_usage(stdout, c);
		return EXIT_OK;
	}
	argc = strip_global(argc, argv);
	i = c->run(argc, argv);
	if (fflush(stdout) && i == EXIT_OK) {
		error("writing stdout: %s", strerror(errno));
		i = EXIT_FAIL;
	}
	return i;
}
