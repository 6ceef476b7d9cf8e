/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Tracepoints of the migration core: every arc, every quiesce, data_fd
 * transfers and the records they carry, resets and DMA logging reports.
 * Enable them through tracefs: events/refaccel_vfio/.  Device names are
 * the PCI device (dev_name()).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM refaccel_vfio

#if !defined(_REFACCEL_VFIO_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _REFACCEL_VFIO_TRACE_H

#include <linux/tracepoint.h>

#define refaccel_trace_state(s) __print_symbolic(s,			\
	{ 0, "ERROR" }, { 1, "STOP" }, { 2, "RUNNING" }, { 3, "STOP_COPY" }, \
	{ 4, "RESUMING" }, { 5, "RUNNING_P2P" }, { 6, "PRE_COPY" },     \
	{ 7, "PRE_COPY_P2P" })

TRACE_EVENT(refaccel_arc,
	    TP_PROTO(const char *dev, u32 from, u32 to, s64 us, int err),
	    TP_ARGS(dev, from, to, us, err),
	    TP_STRUCT__entry(__string(dev, dev)
			     __field(u32, from)
			     __field(u32, to)
			     __field(s64, us)
			     __field(int, err)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->from = from;
			   __entry->to = to;
			   __entry->us = us;
			   __entry->err = err;),
	    TP_printk("%s %s -> %s: %lld us, err %d",
		      __get_str(dev),
		      refaccel_trace_state(__entry->from),
		      refaccel_trace_state(__entry->to),
		      __entry->us,
		      __entry->err)
);

TRACE_EVENT(refaccel_quiesce,
	    TP_PROTO(const char *dev, u32 timeout_ms, bool park, u32 us,
		     u32 in_flight, u32 parked, int err),
	    TP_ARGS(dev, timeout_ms, park, us, in_flight, parked, err),
	    TP_STRUCT__entry(__string(dev, dev)
			     __field(u32, timeout_ms)
			     __field(bool, park)
			     __field(u32, us)
			     __field(u32, in_flight)
			     __field(u32, parked)
			     __field(int, err)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->timeout_ms = timeout_ms;
			   __entry->park = park;
			   __entry->us = us;
			   __entry->in_flight = in_flight;
			   __entry->parked = parked;
			   __entry->err = err;),
	    TP_printk("%s bound %u ms, %s: %u us, %u in flight, %u parked, err %d",
		      __get_str(dev),
		      __entry->timeout_ms,
		      __entry->park ? "park" : "drain",
		      __entry->us,
		      __entry->in_flight,
		      __entry->parked,
		      __entry->err)
);

TRACE_EVENT(refaccel_data,
	    TP_PROTO(const char *dev, bool saving, size_t len, ssize_t ret),
	    TP_ARGS(dev, saving, len, ret),
	    TP_STRUCT__entry(__string(dev, dev)
			     __field(bool, saving)
			     __field(size_t, len)
			     __field(ssize_t, ret)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->saving = saving;
			   __entry->len = len;
			   __entry->ret = ret;),
	    TP_printk("%s %s %zu bytes: %zd",
		      __get_str(dev),
		      __entry->saving ? "read" : "write",
		      __entry->len,
		      __entry->ret)
);

/* One record of the stream, saved (read by the user) or loaded. */
TRACE_EVENT(refaccel_record,
	    TP_PROTO(const char *dev, bool saving, u16 type, u32 seq, u64 len),
	    TP_ARGS(dev, saving, type, seq, len),
	    TP_STRUCT__entry(__string(dev, dev)
			     __field(bool, saving)
			     __field(u16, type)
			     __field(u32, seq)
			     __field(u64, len)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->saving = saving;
			   __entry->type = type;
			   __entry->seq = seq;
			   __entry->len = len;),
	    TP_printk("%s %s record %u: %s, %llu bytes",
		      __get_str(dev),
		      __entry->saving ? "saved" : "loaded",
		      __entry->seq,
		      __print_symbolic(__entry->type, { 1, "MEM" },
				       { 2, "STATE" }, { 3, "END" }),
		      __entry->len)
);

/*
 * PRE_COPY: the device voided the initial data (epoch @epoch); its pass
 * starts again, announced to the user as VFIO_PRECOPY_INFO_REINIT.
 */
TRACE_EVENT(refaccel_reinit,
	    TP_PROTO(const char *dev, u32 epoch),
	    TP_ARGS(dev, epoch),
	    TP_STRUCT__entry(__string(dev, dev)
			     __field(u32, epoch)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->epoch = epoch;),
	    TP_printk("%s initial data void (epoch %u): initial pass again",
		      __get_str(dev), __entry->epoch)
);

TRACE_EVENT(refaccel_reset,
	    TP_PROTO(const char *dev, u32 gen),
	    TP_ARGS(dev, gen),
	    TP_STRUCT__entry(__string(dev, dev)
			     __field(u32, gen)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->gen = gen;),
	    TP_printk("%s reset %u",
		      __get_str(dev),
		      __entry->gen)
);

TRACE_EVENT(refaccel_dma_report,
	    TP_PROTO(const char *dev, u64 iova, u64 len, u64 dirty, int err),
	    TP_ARGS(dev, iova, len, dirty, err),
	    TP_STRUCT__entry(__string(dev, dev)
			     __field(u64, iova)
			     __field(u64, len)
			     __field(u64, dirty)
			     __field(int, err)),
	    TP_fast_assign(__assign_str(dev);
			   __entry->iova = iova;
			   __entry->len = len;
			   __entry->dirty = dirty;
			   __entry->err = err;),
	    TP_printk("%s [%#llx, +%#llx): %llu dirty bytes, err %d",
		      __get_str(dev),
		      __entry->iova,
		      __entry->len,
		      __entry->dirty,
		      __entry->err)
);

#endif /* _REFACCEL_VFIO_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
