/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client: sysfs and debugfs files for administrators.
 */
#ifndef _VIRGO_ADMIN_H
#define _VIRGO_ADMIN_H

#include "virgo_client.h"

int virgo_admin_init(struct virgo_client *vc);
void virgo_admin_exit(void);

#endif /* _VIRGO_ADMIN_H */
