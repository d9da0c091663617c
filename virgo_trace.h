/* SPDX-License-Identifier: GPL-2.0 */
/*
 * virgo client tracepoints: events/virgo/ in tracefs.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM virgo

#if !defined(_VIRGO_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _VIRGO_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(virgo_malloc,
	    TP_PROTO(u64 size, u64 va, u32 nr_chunks, int ret, u64 ns),
	    TP_ARGS(size, va, nr_chunks, ret, ns),
	    TP_STRUCT__entry(__field(u64, size)
			     __field(u64, va)
			     __field(u32, nr_chunks)
			     __field(int, ret)
			     __field(u64, ns)),
	    TP_fast_assign(__entry->size = size;
			   __entry->va = va;
			   __entry->nr_chunks = nr_chunks;
			   __entry->ret = ret;
			   __entry->ns = ns;),
	    TP_printk("size=%llu va=0x%llx chunks=%u ret=%d ns=%llu",
		      __entry->size, __entry->va, __entry->nr_chunks,
		      __entry->ret, __entry->ns)
);

TRACE_EVENT(virgo_repair,
	    TP_PROTO(u64 va, u32 len, u32 peer_id),
	    TP_ARGS(va, len, peer_id),
	    TP_STRUCT__entry(__field(u64, va)
			     __field(u32, len)
			     __field(u32, peer_id)),
	    TP_fast_assign(__entry->va = va;
			   __entry->len = len;
			   __entry->peer_id = peer_id;),
	    TP_printk("chunk at 0x%llx len %u re-created on peer %u",
		      __entry->va, __entry->len, __entry->peer_id)
);

TRACE_EVENT(virgo_free,
	    TP_PROTO(u64 va, u64 size, int ret),
	    TP_ARGS(va, size, ret),
	    TP_STRUCT__entry(__field(u64, va)
			     __field(u64, size)
			     __field(int, ret)),
	    TP_fast_assign(__entry->va = va;
			   __entry->size = size;
			   __entry->ret = ret;),
	    TP_printk("va=0x%llx size=%llu ret=%d", __entry->va,
		      __entry->size, __entry->ret)
);

TRACE_EVENT(virgo_rpc,
	    TP_PROTO(u32 peer, u8 op, u64 tag, u32 len, int err, u64 ns),
	    TP_ARGS(peer, op, tag, len, err, ns),
	    TP_STRUCT__entry(__field(u32, peer)
			     __field(u8, op)
			     __field(u64, tag)
			     __field(u32, len)
			     __field(int, err)
			     __field(u64, ns)),
	    TP_fast_assign(__entry->peer = peer;
			   __entry->op = op;
			   __entry->tag = tag;
			   __entry->len = len;
			   __entry->err = err;
			   __entry->ns = ns;),
	    TP_printk("peer=%u op=%u tag=%llu len=%u err=%d ns=%llu",
		      __entry->peer, __entry->op, __entry->tag, __entry->len,
		      __entry->err, __entry->ns)
);

#endif /* _VIRGO_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE virgo_trace
#include <trace/define_trace.h>
