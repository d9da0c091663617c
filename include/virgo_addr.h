/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo endpoint addresses: IPv4 "a.b.c.d:port" and IPv6 "[v6]:port".
 *
 * Shared by virgo.ko (peers) and virgo_clouddrec.ko (listen address,
 * per-address session cap).  Header only, every function static inline:
 * virgo_clouddrec.ko is built from the single virgo_clouddrec.c (kbuild
 * cannot make a composite module named after one of its own objects), so
 * it cannot link a shared object file; the wire codec is shared the same
 * way (virgo_wire.h).
 *
 * Syntax (docs/operations.md):
 *  - an endpoint is "a.b.c.d:port" or "[ipv6]:port", the IPv6 address in
 *    any form in6_pton() takes (compressed, embedded IPv4); port 1..65535
 *    in decimal digits only; nothing before or after;
 *  - a host (listen address) is "a.b.c.d", "ipv6" or "[ipv6]";
 *  - IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) become plain IPv4, so one
 *    host has one spelling everywhere (equality, logs, the session cap);
 *  - zone ids ("fe80::1%eth0") are not accepted, and neither are
 *    link-local or multicast IPv6 addresses, which need one (or are not
 *    a TCP endpoint): -EINVAL at parse time rather than a connect or bind
 *    that fails later.  Use global or unique-local (fc00::/7) addresses.
 */
#ifndef _VIRGO_ADDR_H
#define _VIRGO_ADDR_H

#include <linux/errno.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/inet.h>
#include <linux/kernel.h>
#include <linux/socket.h>
#include <linux/string.h>
#include <linux/types.h>
#include <net/ipv6.h>

/* Longest endpoint text, NUL included: "[v6 with embedded v4]:65535". */
#define VIRGO_ADDR_STRLEN \
	sizeof("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535")

/**
 * union virgo_addr - an IPv4 or IPv6 endpoint, tagged by @sa.sa_family
 * @sa: the family (AF_INET or AF_INET6; AF_UNSPEC when zeroed)
 * @v4: the IPv4 endpoint when @sa.sa_family is AF_INET
 * @v6: the IPv6 endpoint when @sa.sa_family is AF_INET6 (scope id and
 *	flow info always 0)
 *
 * Bytes not used by the family are kept zero, so two equal addresses
 * compare equal field by field.
 */
union virgo_addr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

/**
 * virgo_addr_len() - the sockaddr length of an address
 * @a: the address
 *
 * Return: sizeof(struct sockaddr_in6) for AF_INET6, else of sockaddr_in.
 */
static inline int virgo_addr_len(const union virgo_addr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->v6) : sizeof(a->v4);
}

/**
 * virgo_addr_port() - the port of an address
 * @a: the address
 *
 * Return: the port, host order.
 */
static inline u16 virgo_addr_port(const union virgo_addr *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->v6.sin6_port :
		     a->v4.sin_port);
}

/**
 * virgo_addr_set_port() - change the port of an address
 * @a: the address (AF_INET or AF_INET6)
 * @port: the port, host order
 */
static inline void virgo_addr_set_port(union virgo_addr *a, u16 port)
{
	if (a->sa.sa_family == AF_INET6)
		a->v6.sin6_port = htons(port);
	else
		a->v4.sin_port = htons(port);
}

/**
 * virgo_addr_set_v4() - make an IPv4 endpoint
 * @a: filled in
 * @ip: the address, network order
 * @port: the port, host order
 */
static inline void virgo_addr_set_v4(union virgo_addr *a, __be32 ip,
				     u16 port)
{
	memset(a, 0, sizeof(*a));
	a->v4.sin_family = AF_INET;
	a->v4.sin_addr.s_addr = ip;
	a->v4.sin_port = htons(port);
}

/**
 * virgo_addr_set_v6() - make an IPv6 endpoint (an IPv4-mapped @ip
 *	makes the IPv4 one)
 * @a: filled in
 * @ip: the address
 * @port: the port, host order
 */
static inline void virgo_addr_set_v6(union virgo_addr *a,
				     const struct in6_addr *ip, u16 port)
{
	if (ipv6_addr_v4mapped(ip)) {
		virgo_addr_set_v4(a, ip->s6_addr32[3], port);
		return;
	}
	memset(a, 0, sizeof(*a));
	a->v6.sin6_family = AF_INET6;
	a->v6.sin6_addr = *ip;
	a->v6.sin6_port = htons(port);
}

/**
 * virgo_addr_from_sockaddr() - take an address the socket layer returned
 * @a: filled in
 * @ss: from kernel_getpeername() or kernel_getsockname()
 *
 * Keeps address and port only; an IPv4-mapped IPv6 address (an IPv4
 * client of a dual-stack listener) becomes IPv4.
 *
 * Return: 0, or -EAFNOSUPPORT for another family (@a is then zeroed).
 */
static inline int virgo_addr_from_sockaddr(union virgo_addr *a,
					   const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

	if (ss->ss_family == AF_INET6) {
		virgo_addr_set_v6(a, &sin6->sin6_addr, ntohs(sin6->sin6_port));
		return 0;
	}
	if (ss->ss_family == AF_INET) {
		virgo_addr_set_v4(a, sin->sin_addr.s_addr,
				  ntohs(sin->sin_port));
		return 0;
	}
	memset(a, 0, sizeof(*a));
	return -EAFNOSUPPORT;
}

/**
 * virgo_addr_same_host() - whether two addresses name the same host
 * @a: one address
 * @b: the other
 *
 * The port is not compared.  Both come from this header, so an IPv4
 * host has one form (IPv4-mapped addresses are stored as IPv4).
 *
 * Return: true when family and address match.
 */
static inline bool virgo_addr_same_host(const union virgo_addr *a,
					const union virgo_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET6)
		return ipv6_addr_equal(&a->v6.sin6_addr, &b->v6.sin6_addr);
	if (a->sa.sa_family == AF_INET)
		return a->v4.sin_addr.s_addr == b->v4.sin_addr.s_addr;
	return true;
}

/**
 * virgo_addr_equal() - whether two endpoints are the same
 * @a: one address
 * @b: the other
 *
 * Return: true when family, address and port match.
 */
static inline bool virgo_addr_equal(const union virgo_addr *a,
				    const union virgo_addr *b)
{
	return virgo_addr_same_host(a, b) &&
	       virgo_addr_port(a) == virgo_addr_port(b);
}

/**
 * virgo_addr_is_any() - whether an address is the wildcard
 * @a: the address
 *
 * Return: true for 0.0.0.0, :: and AF_UNSPEC.
 */
static inline bool virgo_addr_is_any(const union virgo_addr *a)
{
	if (a->sa.sa_family == AF_INET6)
		return ipv6_addr_any(&a->v6.sin6_addr);
	if (a->sa.sa_family == AF_INET)
		return a->v4.sin_addr.s_addr == htonl(INADDR_ANY);
	return true;
}

/* An IPv6 address that needs a zone id, or is no TCP endpoint. */
static inline bool virgo_addr_v6_unusable(const struct in6_addr *ip)
{
	return ipv6_addr_is_multicast(ip) ||
	       (ip->s6_addr32[0] & htonl(0xffc00000)) == htonl(0xfe800000);
}

/*
 * Parse the host part, @len bytes at @s (no NUL needed): brackets only
 * when @bracketed, then an IPv6 address; else an IPv4 one.
 */
static inline int virgo_addr_parse_ip(const char *s, size_t len,
				      bool bracketed, union virgo_addr *a)
{
	const char *end;
	struct in6_addr ip6;
	__be32 ip4;

	if (!len || len >= VIRGO_ADDR_STRLEN)
		return -EINVAL;
	if (bracketed || memchr(s, ':', len)) {
		if (!in6_pton(s, len, ip6.s6_addr, -1, &end) ||
		    end != s + len || virgo_addr_v6_unusable(&ip6))
			return -EINVAL;
		virgo_addr_set_v6(a, &ip6, 0);
		return 0;
	}
	if (!in4_pton(s, len, (u8 *)&ip4, -1, &end) || end != s + len)
		return -EINVAL;
	virgo_addr_set_v4(a, ip4, 0);
	return 0;
}

/**
 * virgo_addr_parse_host() - parse a host address (a listen address)
 * @s: "a.b.c.d", "ipv6" or "[ipv6]"; need not be NUL-terminated
 * @len: bytes at @s
 * @port: the port to give the address, host order
 * @a: the address, on success
 *
 * Return: 0, or -EINVAL for anything else (the syntax is at the top of
 * this file).
 */
static inline int virgo_addr_parse_host(const char *s, size_t len, u16 port,
					union virgo_addr *a)
{
	int ret;

	if (len >= 2 && s[0] == '[' && s[len - 1] == ']')
		ret = virgo_addr_parse_ip(s + 1, len - 2, true, a);
	else if (len && (s[0] == '[' || s[len - 1] == ']'))
		ret = -EINVAL;
	else
		ret = virgo_addr_parse_ip(s, len, false, a);
	if (ret)
		return ret;
	virgo_addr_set_port(a, port);
	return 0;
}

/* A port: 1..5 decimal digits, 1..65535; no sign, no space. */
static inline int virgo_addr_parse_port(const char *s, size_t len, u16 *port)
{
	u32 v = 0;
	size_t i;

	if (!len || len > 5)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (!v || v > U16_MAX)
		return -EINVAL;
	*port = v;
	return 0;
}

/**
 * virgo_addr_parse() - parse an endpoint
 * @s: "a.b.c.d:port" or "[ipv6]:port"; need not be NUL-terminated
 * @len: bytes at @s
 * @a: the endpoint, on success
 *
 * Return: 0, or -EINVAL for anything else: a missing port or brackets, a
 * port of 0 or above 65535, a zone id, trailing bytes, more than
 * VIRGO_ADDR_STRLEN - 1 bytes (the syntax is at the top of this file).
 */
static inline int virgo_addr_parse(const char *s, size_t len,
				   union virgo_addr *a)
{
	const char *colon;
	bool bracketed;
	u16 port;
	int ret;

	if (!len || len >= VIRGO_ADDR_STRLEN)
		return -EINVAL;
	bracketed = s[0] == '[';
	if (bracketed) {
		const char *close = memchr(s, ']', len);

		if (!close || close + 1 == s + len || close[1] != ':')
			return -EINVAL;
		colon = close + 1;
		ret = virgo_addr_parse_ip(s + 1, close - s - 1, true, a);
	} else {
		colon = memchr(s, ':', len);
		if (!colon)
			return -EINVAL;
		ret = virgo_addr_parse_ip(s, colon - s, false, a);
	}
	if (ret)
		return ret;
	ret = virgo_addr_parse_port(colon + 1, s + len - colon - 1, &port);
	if (ret)
		return ret;
	virgo_addr_set_port(a, port);
	return 0;
}

/**
 * virgo_addr_format() - an endpoint as text, in the syntax parsed above
 * @a: the endpoint
 * @buf: where to write; VIRGO_ADDR_STRLEN bytes always suffice
 * @size: bytes at @buf
 *
 * Return: the length written, as scnprintf().
 */
static inline int virgo_addr_format(const union virgo_addr *a, char *buf,
				    size_t size)
{
	if (a->sa.sa_family != AF_INET && a->sa.sa_family != AF_INET6)
		return scnprintf(buf, size, "?");
	return scnprintf(buf, size, "%pISpc", &a->sa);
}

#endif /* _VIRGO_ADDR_H */
