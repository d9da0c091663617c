/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The data pattern and clock of the cluster benchmark's user-space
 * programs (virgo_netbench, virgo_blkbench): every byte written is
 * made from its position and a seed, so every byte read back can be
 * checked without a second copy.
 */
#ifndef VIRGO_BENCH_PATTERN_H
#define VIRGO_BENCH_PATTERN_H

#include <linux/types.h>
#include <string.h>
#include <time.h>

static inline __u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * The pattern: 64-bit words that depend on their position and @seed (a
 * word at a time: a byte loop is slow under TCG).  Lengths are multiples
 * of 8 except the last piece; its tail bytes are those of the next word.
 */
static inline __u64 pat(__u64 word, __u32 seed)
{
	return (word + 1) * 0x9E3779B97F4A7C15ULL ^ seed;
}

/* Fill @n bytes at @p with the pattern of byte offset @from. */
static inline void fill(unsigned char *p, size_t n, __u64 from, __u32 seed)
{
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		__u64 w = pat((from + i) / 8, seed);

		memcpy(p + i, &w, 8);
	}
	if (i < n) {
		__u64 w = pat((from + i) / 8, seed);

		memcpy(p + i, &w, n - i);
	}
}

/* 0 if the @n bytes at @p are the pattern of byte offset @from, else -1. */
static inline int check(const unsigned char *p, size_t n, __u64 from,
			__u32 seed)
{
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		__u64 w = pat((from + i) / 8, seed);

		if (memcmp(p + i, &w, 8))
			return -1;
	}
	if (i < n) {
		__u64 w = pat((from + i) / 8, seed);

		if (memcmp(p + i, &w, n - i))
			return -1;
	}
	return 0;
}

#endif /* VIRGO_BENCH_PATTERN_H */
