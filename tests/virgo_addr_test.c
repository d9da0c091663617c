// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for include/virgo_addr.h: the endpoint syntax of peers
 * ("a.b.c.d:port", "[ipv6]:port") and of listen addresses.
 */

#include <kunit/test.h>
#include <linux/socket.h>
#include <linux/string.h>
#include <linux/un.h>

#include <virgo_addr.h>

static int parse(const char *s, union virgo_addr *a)
{
	return virgo_addr_parse(s, strlen(s), a);
}

/* @s parses, and formats back as @want. */
static void expect_endpoint(struct kunit *test, const char *s,
			    sa_family_t family, const char *want)
{
	char buf[VIRGO_ADDR_STRLEN];
	union virgo_addr a, again;

	KUNIT_ASSERT_EQ_MSG(test, parse(s, &a), 0, "%s", s);
	KUNIT_EXPECT_EQ_MSG(test, a.sa.sa_family, family, "%s", s);
	virgo_addr_format(&a, buf, sizeof(buf));
	KUNIT_EXPECT_STREQ_MSG(test, buf, want, "%s", s);
	/* What is printed parses back to the same endpoint. */
	KUNIT_ASSERT_EQ_MSG(test, parse(buf, &again), 0, "%s", buf);
	KUNIT_EXPECT_TRUE_MSG(test, virgo_addr_equal(&a, &again), "%s", buf);
	KUNIT_EXPECT_EQ(test, memcmp(&a, &again, sizeof(a)), 0);
}

static void expect_bad(struct kunit *test, const char *const *bad, int nr)
{
	union virgo_addr a;
	int i;

	for (i = 0; i < nr; i++)
		KUNIT_EXPECT_EQ_MSG(test, parse(bad[i], &a), -EINVAL,
				    "'%s'", bad[i]);
}

static void addr_test_good_ipv4(struct kunit *test)
{
	union virgo_addr a;

	expect_endpoint(test, "10.0.0.2:7707", AF_INET, "10.0.0.2:7707");
	expect_endpoint(test, "127.0.0.1:1", AF_INET, "127.0.0.1:1");
	expect_endpoint(test, "255.255.255.255:65535", AF_INET,
			"255.255.255.255:65535");
	KUNIT_ASSERT_EQ(test, parse("10.99.0.11:4646", &a), 0);
	KUNIT_EXPECT_EQ(test, a.v4.sin_addr.s_addr, htonl(0x0a63000b));
	KUNIT_EXPECT_EQ(test, virgo_addr_port(&a), 4646);
	KUNIT_EXPECT_EQ(test, virgo_addr_len(&a), (int)sizeof(a.v4));
}

static void addr_test_good_ipv6(struct kunit *test)
{
	static const struct in6_addr want = {
		.s6_addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }
	};
	union virgo_addr a, b;

	expect_endpoint(test, "[2001:db8::1]:4646", AF_INET6,
			"[2001:db8::1]:4646");
	KUNIT_ASSERT_EQ(test, parse("[2001:db8::1]:4646", &a), 0);
	KUNIT_EXPECT_TRUE(test, ipv6_addr_equal(&a.v6.sin6_addr, &want));
	KUNIT_EXPECT_EQ(test, virgo_addr_port(&a), 4646);
	KUNIT_EXPECT_EQ(test, virgo_addr_len(&a), (int)sizeof(a.v6));
	KUNIT_EXPECT_EQ(test, a.v6.sin6_scope_id, 0U);
	KUNIT_EXPECT_EQ(test, a.v6.sin6_flowinfo, 0U);
	/* Another spelling of the same endpoint: upper case, no "::". */
	expect_endpoint(test, "[2001:0DB8:0:0:0:0:0:1]:4646", AF_INET6,
			"[2001:db8::1]:4646");
	KUNIT_ASSERT_EQ(test, parse("[2001:0DB8:0:0:0:0:0:1]:4646", &b), 0);
	KUNIT_EXPECT_TRUE(test, virgo_addr_equal(&a, &b));
	expect_endpoint(test, "[::1]:7707", AF_INET6, "[::1]:7707");
	expect_endpoint(test, "[fd00:7669:7267::11]:4646", AF_INET6,
			"[fd00:7669:7267::11]:4646");
	/* Embedded IPv4 that is not IPv4-mapped stays IPv6 (NAT64). */
	expect_endpoint(test, "[64:ff9b::10.0.0.2]:1", AF_INET6,
			"[64:ff9b::a00:2]:1");
	/* The longest text accepted. */
	expect_endpoint(test,
			"[2001:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
			AF_INET6,
			"[2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}

/* ::ffff:a.b.c.d is the IPv4 host: one spelling everywhere. */
static void addr_test_v4_mapped_is_ipv4(struct kunit *test)
{
	union virgo_addr a, b;

	expect_endpoint(test, "[::ffff:10.0.0.2]:7707", AF_INET,
			"10.0.0.2:7707");
	KUNIT_ASSERT_EQ(test, parse("[::ffff:a00:2]:7707", &a), 0);
	KUNIT_ASSERT_EQ(test, parse("10.0.0.2:7707", &b), 0);
	KUNIT_EXPECT_TRUE(test, virgo_addr_equal(&a, &b));
	KUNIT_EXPECT_EQ(test, memcmp(&a, &b, sizeof(a)), 0);
}

static void addr_test_missing_brackets(struct kunit *test)
{
	static const char *const bad[] = {
		"2001:db8::1:4646", "::1:7707", "[2001:db8::1:4646",
		"2001:db8::1]:4646", "[2001:db8::1]4646", "[2001:db8::1]",
		"[2001:db8::1]:", "[]:4646", "[:4646", "]:4646", "[[::1]]:1",
		"[10.0.0.2]:7707", "::ffff:10.0.0.2:7707",
	};

	expect_bad(test, bad, ARRAY_SIZE(bad));
}

static void addr_test_bad_port(struct kunit *test)
{
	static const char *const bad[] = {
		"10.0.0.2", "10.0.0.2:", "10.0.0.2:0", "10.0.0.2:00000",
		"10.0.0.2:65536", "10.0.0.2:99999", "10.0.0.2:100000",
		"10.0.0.2:000080", "10.0.0.2:-1", "10.0.0.2:+1",
		"10.0.0.2: 1", "10.0.0.2:0x10", "10.0.0.2:1:2", "[::1]:0",
		"[::1]:65536", "[::1]:+7707", "[::1]::7707",
	};
	union virgo_addr a;

	expect_bad(test, bad, ARRAY_SIZE(bad));
	KUNIT_ASSERT_EQ(test, parse("10.0.0.2:00080", &a), 0);
	KUNIT_EXPECT_EQ(test, virgo_addr_port(&a), 80);
}

/*
 * Zone ids are refused, and so are the addresses that would need one
 * (link-local) or are no TCP endpoint (multicast): docs/operations.md.
 */
static void addr_test_zone_ids_refused(struct kunit *test)
{
	static const char *const bad[] = {
		"[fe80::1%eth0]:4646", "[fe80::1%2]:4646",
		"[2001:db8::1%eth0]:4646", "[fe80::1]:4646",
		"[febf:ffff::1]:4646", "[ff02::1]:4646", "[ff05::2]:4646",
	};
	union virgo_addr a;

	expect_bad(test, bad, ARRAY_SIZE(bad));
	/* fec0::/10 is not link-local. */
	KUNIT_EXPECT_EQ(test, parse("[fec0::1]:4646", &a), 0);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host("fe80::1", 7, 1, &a),
			-EINVAL);
}

static void addr_test_trailing_garbage(struct kunit *test)
{
	static const char *const bad[] = {
		"", ":", ":7707", "10.0.0.2:7707x", "10.0.0.2:7707 ",
		" 10.0.0.2:7707", "10.0.0.2x:7707", "10.0.0.2.5:7707",
		"1.2.3:7707", "256.0.0.1:7707", "10.0.0:7707", "a.b.c.d:7707",
		"10.0.0.2:7707\n", "[::1]:7707]", "[::1]x:7707",
		"[::1 ]:7707", "[::g]:7707", "[1:2:3:4:5:6:7:8:9]:1",
		"[1::2::3]:1", "10.0.0.2:7707@rack1", "10.0.0.2/24:7707",
	};
	union virgo_addr a;

	expect_bad(test, bad, ARRAY_SIZE(bad));
	/* Only @len bytes are read: no NUL needed after them. */
	KUNIT_ASSERT_EQ(test, virgo_addr_parse("10.0.0.2:7707garbage", 13,
					       &a), 0);
	KUNIT_EXPECT_EQ(test, virgo_addr_port(&a), 7707);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse("[::1]:77071", 10, &a), 0);
	KUNIT_EXPECT_EQ(test, virgo_addr_port(&a), 7707);
}

static void addr_test_overlong(struct kunit *test)
{
	char *s = kunit_kzalloc(test, 4096, GFP_KERNEL);
	union virgo_addr a;

	KUNIT_ASSERT_NOT_NULL(test, s);
	/* One byte over the longest: refused before parsing. */
	strscpy(s, "[0ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
		4096);
	KUNIT_EXPECT_EQ(test, strlen(s), VIRGO_ADDR_STRLEN);
	KUNIT_EXPECT_EQ(test, parse(s, &a), -EINVAL);
	/* Leading zeros in an embedded IPv4 octet: valid, but too long. */
	strscpy(s, "[2001:ffff:ffff:ffff:ffff:ffff:0000255.255.255.255]:65535",
		4096);
	KUNIT_EXPECT_EQ(test, parse(s, &a), -EINVAL);
	memset(s, '1', 4095);
	KUNIT_EXPECT_EQ(test, parse(s, &a), -EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host(s, 4095, 1, &a), -EINVAL);
	s[0] = '[';
	s[100] = ']';
	s[101] = ':';
	s[102] = '1';
	KUNIT_EXPECT_EQ(test, virgo_addr_parse(s, 103, &a), -EINVAL);
}

static void addr_test_listen_host(struct kunit *test)
{
	union virgo_addr a;

	KUNIT_ASSERT_EQ(test, virgo_addr_parse_host("::", 2, 7707, &a), 0);
	KUNIT_EXPECT_EQ(test, a.sa.sa_family, AF_INET6);
	KUNIT_EXPECT_TRUE(test, virgo_addr_is_any(&a));
	KUNIT_EXPECT_EQ(test, virgo_addr_port(&a), 7707);
	KUNIT_ASSERT_EQ(test, virgo_addr_parse_host("0.0.0.0", 7, 1, &a), 0);
	KUNIT_EXPECT_EQ(test, a.sa.sa_family, AF_INET);
	KUNIT_EXPECT_TRUE(test, virgo_addr_is_any(&a));
	KUNIT_ASSERT_EQ(test, virgo_addr_parse_host("[::1]", 5, 1, &a), 0);
	KUNIT_EXPECT_EQ(test, a.sa.sa_family, AF_INET6);
	KUNIT_EXPECT_FALSE(test, virgo_addr_is_any(&a));
	KUNIT_ASSERT_EQ(test, virgo_addr_parse_host("2001:db8::7", 11, 1, &a),
			0);
	KUNIT_EXPECT_EQ(test, a.sa.sa_family, AF_INET6);
	KUNIT_ASSERT_EQ(test, virgo_addr_parse_host("::ffff:10.0.0.1", 15, 1,
						    &a), 0);
	KUNIT_EXPECT_EQ(test, a.sa.sa_family, AF_INET);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host("", 0, 1, &a), -EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host("[]", 2, 1, &a), -EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host("[::1", 4, 1, &a),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host("::1]", 4, 1, &a),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host("[10.0.0.1]", 10, 1, &a),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host("10.0.0.1:7707", 13, 1,
						    &a), -EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host("[::1]:7707", 10, 1, &a),
			-EINVAL);
	KUNIT_EXPECT_EQ(test, virgo_addr_parse_host("localhost", 9, 1, &a),
			-EINVAL);
}

/* What the socket layer hands the server: IPv4-mapped becomes IPv4. */
static void addr_test_from_sockaddr(struct kunit *test)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	union virgo_addr a, b, c;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(40000);
	sin6->sin6_addr.s6_addr32[2] = htonl(0xffff);
	sin6->sin6_addr.s6_addr32[3] = htonl(0x7f000001);
	sin6->sin6_flowinfo = htonl(5);
	KUNIT_ASSERT_EQ(test, virgo_addr_from_sockaddr(&a, &ss), 0);
	KUNIT_EXPECT_EQ(test, a.sa.sa_family, AF_INET);
	KUNIT_ASSERT_EQ(test, parse("127.0.0.1:1", &b), 0);
	KUNIT_EXPECT_TRUE(test, virgo_addr_same_host(&a, &b));
	KUNIT_EXPECT_FALSE(test, virgo_addr_equal(&a, &b));
	KUNIT_EXPECT_EQ(test, virgo_addr_port(&a), 40000);

	sin6->sin6_addr.s6_addr32[2] = 0;
	sin6->sin6_addr.s6_addr32[3] = htonl(1);
	KUNIT_ASSERT_EQ(test, virgo_addr_from_sockaddr(&a, &ss), 0);
	KUNIT_EXPECT_EQ(test, a.sa.sa_family, AF_INET6);
	KUNIT_EXPECT_EQ(test, a.v6.sin6_flowinfo, 0U);
	KUNIT_ASSERT_EQ(test, parse("[::1]:40000", &c), 0);
	KUNIT_EXPECT_TRUE(test, virgo_addr_equal(&a, &c));
	KUNIT_EXPECT_FALSE(test, virgo_addr_same_host(&a, &b));

	ss.ss_family = AF_UNIX;
	KUNIT_EXPECT_EQ(test, virgo_addr_from_sockaddr(&a, &ss),
			-EAFNOSUPPORT);
	KUNIT_EXPECT_EQ(test, a.sa.sa_family, AF_UNSPEC);
}

static struct kunit_case addr_test_cases[] = {
	KUNIT_CASE(addr_test_good_ipv4),
	KUNIT_CASE(addr_test_good_ipv6),
	KUNIT_CASE(addr_test_v4_mapped_is_ipv4),
	KUNIT_CASE(addr_test_missing_brackets),
	KUNIT_CASE(addr_test_bad_port),
	KUNIT_CASE(addr_test_zone_ids_refused),
	KUNIT_CASE(addr_test_trailing_garbage),
	KUNIT_CASE(addr_test_overlong),
	KUNIT_CASE(addr_test_listen_host),
	KUNIT_CASE(addr_test_from_sockaddr),
	{}
};

static struct kunit_suite addr_test_suite = {
	.name = "virgo_addr",
	.test_cases = addr_test_cases,
};

kunit_test_suite(addr_test_suite);

MODULE_LICENSE("GPL");
