/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Just enough of the KUnit API of Linux 6.1 to build tests/virgo_wire_test.c
 * as a user-space program; tools/fuzz/wire_selftest.c is its runner.
 * Semantics follow KUnit: EXPECT records a failure and goes on, ASSERT ends
 * the test case; kunit_kmalloc() memory is freed when the case ends; a
 * parameterised case runs once per parameter.  Only what the virgo suites
 * use is here.
 */
#ifndef VIRGO_KUNIT_SHIM_H
#define VIRGO_KUNIT_SHIM_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GFP_KERNEL		0
#define MODULE_LICENSE(x)
#define MODULE_DESCRIPTION(x)
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define KUNIT_PARAM_DESC_SIZE	128

/**
 * struct kunit_shim_alloc - one kunit_kmalloc() block
 * @next: next block of the same test case
 * @data: the caller's bytes; the block ends right after them, so that
 *	AddressSanitizer sees any read past the requested size
 */
struct kunit_shim_alloc {
	struct kunit_shim_alloc *next;
	max_align_t data[];
};

/**
 * struct kunit - the running test case
 * @name: case name
 * @param_value: current parameter of a parameterised case
 * @priv: free for the suite's init/exit
 * @failed: number of failed expectations
 * @abort: where a failed assertion jumps to
 * @allocs: kunit_kmalloc() blocks to free when the case ends
 */
struct kunit {
	const char *name;
	const void *param_value;
	void *priv;
	int failed;
	jmp_buf abort;
	struct kunit_shim_alloc *allocs;
};

/**
 * struct kunit_case - a test case
 * @run_case: the test function
 * @name: its name
 * @generate_params: parameter generator, NULL if not parameterised
 */
struct kunit_case {
	void (*run_case)(struct kunit *test);
	const char *name;
	const void *(*generate_params)(const void *prev, char *desc);
};

/**
 * struct kunit_suite - a test suite
 * @name: suite name
 * @init: run before each case (may be NULL)
 * @exit: run after each case (may be NULL)
 * @test_cases: cases, ended by an empty one
 */
struct kunit_suite {
	const char *name;
	int (*init)(struct kunit *test);
	void (*exit)(struct kunit *test);
	struct kunit_case *test_cases;
};

#define KUNIT_CASE(fn)		{ .run_case = fn, .name = #fn }
#define KUNIT_CASE_PARAM(fn, gen)					\
	{ .run_case = fn, .name = #fn, .generate_params = gen }

/**
 * kunit_shim_next_param() - step through an array of parameters
 * @prev: previous parameter, NULL for the first
 * @desc: KUNIT_PARAM_DESC_SIZE bytes for a description
 * @base: the array
 * @size: size of one element
 * @count: number of elements
 * @get_desc: writes the description of an element
 *
 * Return: the next element, or NULL after the last.
 */
static inline const void *
kunit_shim_next_param(const void *prev, char *desc, const void *base,
		      size_t size, size_t count,
		      void (*get_desc)(const void *param, char *desc))
{
	const char *next = prev ? (const char *)prev + size : base;

	if ((size_t)(next - (const char *)base) >= size * count)
		return NULL;
	get_desc(next, desc);
	return next;
}

#define KUNIT_ARRAY_PARAM(name, array, get_desc)			\
	static void name##_shim_desc(const void *param, char *desc)	\
	{								\
		get_desc(param, desc);					\
	}								\
	static const void *name##_gen_params(const void *prev, char *desc) \
	{								\
		return kunit_shim_next_param(prev, desc, array,		\
					     sizeof(array[0]),		\
					     sizeof(array) /		\
					     sizeof(array[0]),		\
					     name##_shim_desc);		\
	}

#define kunit_test_suites(...)						\
	static struct kunit_suite *kunit_shim_suites[] = {		\
		__VA_ARGS__, NULL					\
	}
#define kunit_test_suite(suite)	kunit_test_suites(&(suite))

/**
 * kunit_shim_fail() - report a failed expectation or assertion
 * @test: the running case
 * @fatal: true for an assertion: end the case
 * @file: source file
 * @line: source line
 * @expr: the failed expression
 * @l: value of the left side (or of the condition)
 * @r: value of the right side
 * @fmt: optional message (NULL for none), printf-style
 */
static inline void kunit_shim_fail(struct kunit *test, bool fatal,
				   const char *file, int line,
				   const char *expr, long long l, long long r,
				   const char *fmt, ...)
{
	va_list ap;

	test->failed++;
	fprintf(stderr, "    # %s: %s:%d: %s failed: %s", test->name, file,
		line, fatal ? "ASSERTION" : "EXPECTATION", expr);
	fprintf(stderr, " (left %lld = %#llx, right %lld = %#llx)",
		l, (unsigned long long)l, r, (unsigned long long)r);
	if (fmt) {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	if (fatal)
		longjmp(test->abort, 1);
}

/*
 * Like KUnit, compare the two sides with the usual C conversions: the
 * suites compare u32 fields with int constants, hence no -Wsign-compare.
 */
#pragma GCC diagnostic ignored "-Wsign-compare"

#define __KS_BIN(test, fatal, left, op, right, fmt, ...)		\
	do {								\
		__typeof__(left) __l = (left);				\
		__typeof__(right) __r = (right);			\
		if (!(__l op __r))					\
			kunit_shim_fail(test, fatal, __FILE__, __LINE__, \
					#left " " #op " " #right,	\
					(long long)__l, (long long)__r,	\
					fmt, ##__VA_ARGS__);		\
	} while (0)

#define __KS_PTR(test, fatal, left, op, right, fmt, ...)		\
	do {								\
		const void *__l = (left), *__r = (right);		\
		if (!(__l op __r))					\
			kunit_shim_fail(test, fatal, __FILE__, __LINE__, \
					#left " " #op " " #right,	\
					(long long)(size_t)__l,		\
					(long long)(size_t)__r,		\
					fmt, ##__VA_ARGS__);		\
	} while (0)

#define __KS_BOOL(test, fatal, cond, want, fmt, ...)			\
	do {								\
		bool __c = !!(cond), __w = (want);			\
		if (__c != __w)						\
			kunit_shim_fail(test, fatal, __FILE__, __LINE__, \
					#cond, __c, __w, fmt, ##__VA_ARGS__); \
	} while (0)

#define KUNIT_EXPECT_TRUE(t, c)		__KS_BOOL(t, false, c, true, NULL)
#define KUNIT_EXPECT_FALSE(t, c)	__KS_BOOL(t, false, c, false, NULL)
#define KUNIT_ASSERT_TRUE(t, c)		__KS_BOOL(t, true, c, true, NULL)
#define KUNIT_ASSERT_FALSE(t, c)	__KS_BOOL(t, true, c, false, NULL)
#define KUNIT_EXPECT_TRUE_MSG(t, c, ...)				\
	__KS_BOOL(t, false, c, true, __VA_ARGS__)

#define KUNIT_EXPECT_EQ(t, l, r)	__KS_BIN(t, false, l, ==, r, NULL)
#define KUNIT_EXPECT_NE(t, l, r)	__KS_BIN(t, false, l, !=, r, NULL)
#define KUNIT_EXPECT_LT(t, l, r)	__KS_BIN(t, false, l, <, r, NULL)
#define KUNIT_EXPECT_LE(t, l, r)	__KS_BIN(t, false, l, <=, r, NULL)
#define KUNIT_EXPECT_GT(t, l, r)	__KS_BIN(t, false, l, >, r, NULL)
#define KUNIT_EXPECT_GE(t, l, r)	__KS_BIN(t, false, l, >=, r, NULL)
#define KUNIT_ASSERT_EQ(t, l, r)	__KS_BIN(t, true, l, ==, r, NULL)
#define KUNIT_ASSERT_NE(t, l, r)	__KS_BIN(t, true, l, !=, r, NULL)
#define KUNIT_ASSERT_LT(t, l, r)	__KS_BIN(t, true, l, <, r, NULL)
#define KUNIT_ASSERT_LE(t, l, r)	__KS_BIN(t, true, l, <=, r, NULL)
#define KUNIT_ASSERT_GT(t, l, r)	__KS_BIN(t, true, l, >, r, NULL)
#define KUNIT_ASSERT_GE(t, l, r)	__KS_BIN(t, true, l, >=, r, NULL)
#define KUNIT_EXPECT_EQ_MSG(t, l, r, ...)				\
	__KS_BIN(t, false, l, ==, r, __VA_ARGS__)
#define KUNIT_EXPECT_NE_MSG(t, l, r, ...)				\
	__KS_BIN(t, false, l, !=, r, __VA_ARGS__)
#define KUNIT_ASSERT_EQ_MSG(t, l, r, ...)				\
	__KS_BIN(t, true, l, ==, r, __VA_ARGS__)

#define KUNIT_EXPECT_PTR_EQ(t, l, r)	__KS_PTR(t, false, l, ==, r, NULL)
#define KUNIT_EXPECT_PTR_NE(t, l, r)	__KS_PTR(t, false, l, !=, r, NULL)
#define KUNIT_EXPECT_NULL(t, p)		__KS_PTR(t, false, p, ==, NULL, NULL)
#define KUNIT_EXPECT_NOT_NULL(t, p)	__KS_PTR(t, false, p, !=, NULL, NULL)
#define KUNIT_ASSERT_NOT_NULL(t, p)	__KS_PTR(t, true, p, !=, NULL, NULL)

#define KUNIT_FAIL(t, ...)						\
	kunit_shim_fail(t, false, __FILE__, __LINE__, "KUNIT_FAIL", 0, 0, \
			__VA_ARGS__)

/**
 * kunit_kmalloc() - allocate memory freed when the test case ends
 * @test: the running case
 * @size: bytes
 * @gfp: ignored
 *
 * Return: the memory, or NULL.
 */
static inline void *kunit_kmalloc(struct kunit *test, size_t size, int gfp)
{
	struct kunit_shim_alloc *a = malloc(sizeof(*a) + size);

	(void)gfp;
	if (!a)
		return NULL;
	a->next = test->allocs;
	test->allocs = a;
	return a->data;
}

/**
 * kunit_kzalloc() - zeroed kunit_kmalloc()
 * @test: the running case
 * @size: bytes
 * @gfp: ignored
 *
 * Return: the memory, or NULL.
 */
static inline void *kunit_kzalloc(struct kunit *test, size_t size, int gfp)
{
	void *p = kunit_kmalloc(test, size, gfp);

	if (p)
		memset(p, 0, size);
	return p;
}

/**
 * kunit_kfree() - free kunit_kmalloc() memory before the case ends
 * @test: the running case
 * @ptr: the memory (NULL is ignored)
 */
static inline void kunit_kfree(struct kunit *test, const void *ptr)
{
	struct kunit_shim_alloc **pp;

	for (pp = &test->allocs; *pp; pp = &(*pp)->next) {
		if ((const void *)(*pp)->data == ptr) {
			struct kunit_shim_alloc *a = *pp;

			*pp = a->next;
			free(a);
			return;
		}
	}
}

/**
 * kunit_shim_cleanup() - free everything a test case allocated
 * @test: the case that ended
 */
static inline void kunit_shim_cleanup(struct kunit *test)
{
	while (test->allocs) {
		struct kunit_shim_alloc *a = test->allocs;

		test->allocs = a->next;
		free(a);
	}
}

#endif /* VIRGO_KUNIT_SHIM_H */
