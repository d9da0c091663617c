/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client: repair of lost replicas (virgo_repair.c).
 */
#ifndef _VIRGO_REPAIR_H
#define _VIRGO_REPAIR_H

#include "virgo_client.h"

void virgo_repair_start(struct virgo_client *vc);
void virgo_repair_stop(struct virgo_client *vc);

#endif /* _VIRGO_REPAIR_H */
