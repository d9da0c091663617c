/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client: the /dev/virgo misc device.
 */
#ifndef _VIRGO_DEV_H
#define _VIRGO_DEV_H

#include "virgo_client.h"

int virgo_dev_init(struct virgo_client *vc);
void virgo_dev_exit(void);

#endif /* _VIRGO_DEV_H */
