// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Run the KUnit suite tests/virgo_wire_test.c in user space, over the
 * KUnit shim in kunit_shim/ and the user-space build of virgo_wire.h: the
 * same cases and the same malformed-frame table as in the kernel, in well
 * under a second, with no kernel build.
 *
 *   wire_selftest [-v]     -v prints every case, not only failures
 *
 * Prints "N passed, N failed" and exits non-zero if anything failed.
 */
#include "../../tests/virgo_wire_test.c"

static int verbose;

/* Run one case (one parameter of it); return true if it passed. */
static bool run_one(struct kunit_suite *suite, struct kunit_case *c,
		    const void *param, const char *desc)
{
	/* Static: it must survive the longjmp() of a failed assertion. */
	static struct kunit test;
	bool ok;

	memset(&test, 0, sizeof(test));
	test.name = c->name;
	test.param_value = param;
	if (suite->init && suite->init(&test)) {
		test.failed++;
	} else {
		if (!setjmp(test.abort))
			c->run_case(&test);
		if (suite->exit)
			suite->exit(&test);
	}
	kunit_shim_cleanup(&test);
	ok = !test.failed;
	if (!ok || verbose)
		printf("%s - %s.%s%s%s\n", ok ? "ok" : "not ok", suite->name,
		       c->name, desc ? " " : "", desc ? desc : "");
	return ok;
}

int main(int argc, char **argv)
{
	unsigned int passed = 0, failed = 0, i;
	char desc[KUNIT_PARAM_DESC_SIZE];
	struct kunit_case *c;

	verbose = argc > 1 && !strcmp(argv[1], "-v");
	for (i = 0; kunit_shim_suites[i]; i++) {
		struct kunit_suite *suite = kunit_shim_suites[i];

		for (c = suite->test_cases; c->run_case; c++) {
			const void *param;

			if (!c->generate_params) {
				if (run_one(suite, c, NULL, NULL))
					passed++;
				else
					failed++;
				continue;
			}
			memset(desc, 0, sizeof(desc));
			for (param = c->generate_params(NULL, desc); param;
			     param = c->generate_params(param, desc)) {
				if (run_one(suite, c, param, desc))
					passed++;
				else
					failed++;
				memset(desc, 0, sizeof(desc));
			}
		}
	}
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
