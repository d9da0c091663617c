/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client: the exported in-kernel API (include/linux/virgo.h).
 */
#ifndef _VIRGO_API_H
#define _VIRGO_API_H

#include "virgo_client.h"

int virgo_api_init(struct virgo_client *vc);
void virgo_api_exit(void);
unsigned int virgo_api_owner_gone(struct virgo_client *vc, const void *owner,
				  const char *name);
struct virgo_client *virgo_api_client(void);

#endif /* _VIRGO_API_H */
