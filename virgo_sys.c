// SPDX-License-Identifier: GPL-2.0
/*
 * virgo client: the virgo_malloc, virgo_free, virgo_set and virgo_get
 * system calls.
 *
 * A kernel carrying patches/0001-virgo-add-syscalls.patch has built-in
 * entry points that call the operations registered with
 * virgo_syscall_register().  The symbol is looked up at load time
 * (symbol_get()), so the module also loads on a kernel built without
 * them, and then offers /dev/virgo only.
 *
 * Ownership: a syscall allocation belongs, and is charged, to the caller's
 * effective uid (virgo_user.c); other users get -EPERM.  It lives until
 * freed or until the module is unloaded.  Who may allocate and how much
 * one uid may hold are virgo_user.c's rules.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/module.h>
#include <linux/virgo_syscall.h>

#include "virgo_sys.h"
#include "virgo_user.h"

/*
 * The client the syscalls serve, and the unregister function found at
 * init; both set before the operations are registered and cleared after
 * they are unregistered, so no syscall sees them change.
 */
static struct virgo_client *sys_client;
static void (*sys_unregister)(const struct virgo_syscall_ops *ops);

static long virgo_sys_malloc(unsigned long size, u64 __user *uaddr)
{
	struct virgo_user *user = virgo_user_owner(current_euid());

	if (IS_ERR(user))
		return PTR_ERR(user);
	return virgo_user_malloc(sys_client, size, 0, user, NULL, uaddr);
}

static long virgo_sys_free(u64 addr)
{
	struct virgo_user *user = virgo_user_owner(current_euid());

	if (IS_ERR(user))
		return PTR_ERR(user);
	return virgo_user_free(sys_client, addr, user, NULL);
}

static long virgo_sys_rw(u64 addr, void __user *ubuf, unsigned long len,
			 bool write)
{
	struct virgo_user *user = virgo_user_owner(current_euid());
	ssize_t ret;

	if (IS_ERR(user))
		return PTR_ERR(user);
	ret = virgo_user_rw(sys_client, user, addr, ubuf, len, write);
	return ret < 0 ? ret : 0;
}

static long virgo_sys_set(u64 addr, const void __user *ubuf,
			  unsigned long len)
{
	return virgo_sys_rw(addr, (void __user *)ubuf, len, true);
}

static long virgo_sys_get(u64 addr, void __user *ubuf, unsigned long len)
{
	return virgo_sys_rw(addr, ubuf, len, false);
}

static const struct virgo_syscall_ops virgo_sys_ops = {
	.owner = THIS_MODULE,
	.malloc = virgo_sys_malloc,
	.free = virgo_sys_free,
	.set = virgo_sys_set,
	.get = virgo_sys_get,
};

/**
 * virgo_sys_init() - serve the virgo syscalls, if this kernel has them
 * @vc: the client to serve them with
 *
 * Not having them is not an error: the module then offers /dev/virgo only.
 */
void virgo_sys_init(struct virgo_client *vc)
{
	int (*reg)(const struct virgo_syscall_ops *ops);
	int ret;

	reg = symbol_get(virgo_syscall_register);
	if (!reg) {
		pr_info("this kernel has no virgo syscalls: /dev/virgo only\n");
		return;
	}
	sys_unregister = symbol_get(virgo_syscall_unregister);
	if (!sys_unregister) {
		pr_warn("virgo syscall hook incomplete: not registering\n");
		goto put;
	}
	sys_client = vc;
	ret = reg(&virgo_sys_ops);
	if (ret) {
		pr_warn("cannot register the virgo syscalls: %d\n", ret);
		sys_client = NULL;
		symbol_put(virgo_syscall_unregister);
		sys_unregister = NULL;
	} else {
		pr_info("serving the virgo syscalls\n");
	}
put:
	symbol_put(virgo_syscall_register);
}

/**
 * virgo_sys_exit() - stop serving the virgo syscalls
 *
 * After it returns no syscall runs in, or can enter, this module.
 */
void virgo_sys_exit(void)
{
	if (!sys_unregister)
		return;
	sys_unregister(&virgo_sys_ops);
	symbol_put(virgo_syscall_unregister);
	sys_unregister = NULL;
	sys_client = NULL;
}
