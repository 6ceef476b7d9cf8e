/*
 * refaccel: device-side DMA dirty tracking of host IOVAs
 *
 * The tracked ranges may span most of the 64-bit IOVA space (a VMM with a
 * vIOMMU tracks the whole guest address width), so marks are kept sparse:
 * a sorted array of 512-page chunks, each a 512-bit bitmap.  Cost scales
 * with the pages written, not with the span, and DT_NEXT finds the next
 * dirty page with a binary search, so a report of a large, mostly clean
 * span takes a handful of register accesses per run of dirty pages.
 *
 * Copyright (c) 2026 The refaccel-vfio-pci authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/host-utils.h"
#include "refaccel_dt.h"

#define DT_CHUNK_WORDS  16
#define DT_CHUNK_SHIFT  4       /* log2(DT_CHUNK_WORDS) */
#define DT_WORD_SHIFT   5       /* log2(REFACCEL_DT_WORD_PAGES) */
/*
 * The tracker's memory: 256 Ki chunks (18 MiB) hold 128 Mi dirty pages
 * (512 GiB at 4 KiB) between two reports.  Beyond that it overflows, like
 * a real tracker would, instead of letting DMA grow QEMU without bound.
 */
#define DT_MAX_CHUNKS   (256 * 1024)

typedef struct RefaccelDtChunk {
    uint64_t index;             /* word index >> DT_CHUNK_SHIFT */
    uint32_t bits[DT_CHUNK_WORDS];
} RefaccelDtChunk;

static RefaccelDtChunk *dt_chunk(RefaccelDt *dt, guint pos)
{
    return &g_array_index(dt->chunks, RefaccelDtChunk, pos);
}

/* First position whose chunk index is >= @index. */
static guint dt_lower_bound(RefaccelDt *dt, uint64_t index)
{
    guint lo = 0, hi = dt->chunks->len;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;

        if (dt_chunk(dt, mid)->index < index) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static bool dt_chunk_clean(const RefaccelDtChunk *c)
{
    int i;

    for (i = 0; i < DT_CHUNK_WORDS; i++) {
        if (c->bits[i]) {
            return false;
        }
    }
    return true;
}

/* Drop clean chunks. */
static void dt_compact(RefaccelDt *dt)
{
    guint i, j = 0;

    if (!dt->empty) {
        return;
    }
    for (i = 0; i < dt->chunks->len; i++) {
        if (!dt_chunk_clean(dt_chunk(dt, i))) {
            *dt_chunk(dt, j++) = *dt_chunk(dt, i);
        }
    }
    g_array_set_size(dt->chunks, j);
    dt->empty = 0;
}

static RefaccelDtChunk *dt_chunk_get(RefaccelDt *dt, uint64_t index,
                                     bool create)
{
    guint pos = dt_lower_bound(dt, index);
    RefaccelDtChunk c = { .index = index };

    if (pos < dt->chunks->len && dt_chunk(dt, pos)->index == index) {
        return dt_chunk(dt, pos);
    }
    if (!create) {
        return NULL;
    }
    if (dt->chunks->len >= DT_MAX_CHUNKS) {
        dt_compact(dt);
        if (dt->chunks->len >= DT_MAX_CHUNKS) {
            dt->overflow = true;
            return NULL;
        }
        pos = dt_lower_bound(dt, index);
    }
    g_array_insert_val(dt->chunks, pos, c);
    dt->empty++;
    return dt_chunk(dt, pos);
}

static void dt_clear_marks(RefaccelDt *dt)
{
    g_array_set_size(dt->chunks, 0);
    dt->empty = 0;
    dt->overflow = false;
}

static bool dt_enabled(const RefaccelDt *dt)
{
    return dt->ctrl & REFACCEL_DT_CTRL_ENABLE;
}

/* Set the bits of pages @first..@last (page numbers, same chunk or not). */
static void dt_mark_pages(RefaccelDt *dt, uint64_t first, uint64_t last)
{
    const uint64_t chunk_pages = (uint64_t)DT_CHUNK_WORDS << DT_WORD_SHIFT;
    uint64_t page = first;

    for (;;) {
        uint64_t end = page | (chunk_pages - 1);
        RefaccelDtChunk *c = dt_chunk_get(dt, page / chunk_pages, true);
        bool was_clean;

        if (!c) {
            return;             /* overflow: DT_STATUS says so */
        }
        was_clean = dt_chunk_clean(c);

        if (end > last) {
            end = last;
        }
        for (; page <= end; page++) {
            uint64_t bit = page & (chunk_pages - 1);

            c->bits[bit >> DT_WORD_SHIFT] |= 1u << (bit & 31);
        }
        if (was_clean) {
            dt->empty--;
        }
        if (end == last) {
            return;
        }
        /* page == end + 1 here, and end < last: no wrap */
    }
}

void refaccel_dt_mark(RefaccelDt *dt, uint64_t iova, uint64_t len)
{
    uint64_t last;
    uint32_t i;

    if (!dt_enabled(dt) || !len) {
        return;
    }
    /* a write that would wrap the IOVA space ends at its top */
    last = iova + len - 1 < iova ? UINT64_MAX : iova + len - 1;

    for (i = 0; i < dt->nr_ranges; i++) {
        const RefaccelDtRange *r = &dt->range[i];
        uint64_t r_last = r->base + r->len - 1;
        uint64_t lo = MAX(iova, r->base);
        uint64_t hi = MIN(last, r_last);

        if (lo <= hi) {
            dt_mark_pages(dt, lo >> dt->pgshift, hi >> dt->pgshift);
        }
    }
}

/* ---- enable: check the configuration once, then it is fixed ---- */

static uint32_t dt_check(const RefaccelDt *dt)
{
    uint64_t span = 0;
    uint32_t i, j;

    if (dt->pgshift < REFACCEL_DT_PGSHIFT_MIN ||
        dt->pgshift > REFACCEL_DT_PGSHIFT_MAX) {
        return REFACCEL_DT_ERR_BAD_PGSHIFT;
    }
    if (!dt->nr_ranges || dt->nr_ranges > dt->max_ranges) {
        return REFACCEL_DT_ERR_BAD_NR;
    }
    for (i = 0; i < dt->nr_ranges; i++) {
        const RefaccelDtRange *a = &dt->range[i];

        if (!a->len || a->base + (a->len - 1) < a->base) {
            return REFACCEL_DT_ERR_BAD_RANGE;
        }
        for (j = 0; j < i; j++) {
            const RefaccelDtRange *b = &dt->range[j];

            if (a->base <= b->base + (b->len - 1) &&
                b->base <= a->base + (a->len - 1)) {
                return REFACCEL_DT_ERR_BAD_RANGE;
            }
        }
        if (a->len > dt->max_span - span) {
            return REFACCEL_DT_ERR_TOO_LARGE;
        }
        span += a->len;
    }
    return REFACCEL_DT_ERR_NONE;
}

static void dt_write_ctrl(RefaccelDt *dt, uint32_t val)
{
    bool on = val & REFACCEL_DT_CTRL_ENABLE;

    if (on == dt_enabled(dt)) {
        return;
    }
    if (!on) {
        dt->ctrl = 0;
        dt_clear_marks(dt);
        return;
    }
    dt->err = dt_check(dt);
    if (dt->err == REFACCEL_DT_ERR_NONE) {
        dt_clear_marks(dt);
        dt->ctrl = REFACCEL_DT_CTRL_ENABLE;
    }
}

/* ---- the query window [cursor, limit], in pages ---- */

#define DT_CHUNK_PAGES  ((uint64_t)DT_CHUNK_WORDS << DT_WORD_SHIFT)

static uint64_t dt_page(const RefaccelDt *dt, uint64_t iova)
{
    return iova >> dt->pgshift;
}

/* Read and clear the 32 pages from the cursor (up to the limit). */
static uint32_t dt_read_data(RefaccelDt *dt)
{
    uint64_t first = dt_page(dt, dt->cursor);
    uint64_t last = dt_page(dt, dt->limit);
    RefaccelDtChunk *c = NULL;
    uint32_t val = 0;
    unsigned i;

    for (i = 0; i < REFACCEL_DT_WORD_PAGES && first + i <= last; i++) {
        uint64_t page = first + i;
        uint64_t bit = page % DT_CHUNK_PAGES;
        uint32_t *w, m = 1u << (bit & 31);

        if (!c || c->index != page / DT_CHUNK_PAGES) {
            c = dt_chunk_get(dt, page / DT_CHUNK_PAGES, false);
            if (!c) {
                /* no chunk: skip to the next chunk boundary */
                i += DT_CHUNK_PAGES - 1 - bit;
                continue;
            }
        }
        w = &c->bits[bit >> DT_WORD_SHIFT];
        if (*w & m) {
            *w &= ~m;
            val |= 1u << i;
            if (dt_chunk_clean(c)) {
                dt->empty++;
            }
        }
    }
    dt->cursor += (uint64_t)REFACCEL_DT_WORD_PAGES << dt->pgshift;
    /* once clean chunks are most of the array: amortised O(1) */
    if (dt->empty >= 64 && dt->empty >= dt->chunks->len / 2) {
        dt_compact(dt);
    }
    return val;
}

/* The first dirty page in the window, or REFACCEL_DT_NEXT_NONE. */
static uint64_t dt_next(RefaccelDt *dt)
{
    uint64_t first = dt_page(dt, dt->cursor);
    uint64_t last = dt_page(dt, dt->limit);
    guint pos;

    if (dt->cursor > dt->limit) {
        return REFACCEL_DT_NEXT_NONE;
    }
    for (pos = dt_lower_bound(dt, first / DT_CHUNK_PAGES);
         pos < dt->chunks->len; pos++) {
        RefaccelDtChunk *c = dt_chunk(dt, pos);
        uint64_t base = c->index * DT_CHUNK_PAGES;
        unsigned i;

        if (base > last) {
            break;
        }
        for (i = 0; i < DT_CHUNK_WORDS; i++) {
            uint32_t w = c->bits[i];
            uint64_t wpage = base + ((uint64_t)i << DT_WORD_SHIFT);
            uint64_t page;

            if (wpage + REFACCEL_DT_WORD_PAGES <= first) {
                continue;
            }
            if (wpage < first) {
                w &= ~0u << (first - wpage);
            }
            if (!w) {
                continue;
            }
            page = wpage + ctz32(w);
            return page <= last ? page << dt->pgshift : REFACCEL_DT_NEXT_NONE;
        }
    }
    return REFACCEL_DT_NEXT_NONE;
}

static uint64_t dt_page_align(const RefaccelDt *dt, uint64_t iova)
{
    return iova & ~((1ull << dt->pgshift) - 1);
}

bool refaccel_dt_read(RefaccelDt *dt, hwaddr addr, uint32_t *val)
{
    const RefaccelDtRange *r = &dt->range[dt->sel];

    switch (addr) {
    case REFACCEL_REG_DT_CTRL:
        *val = dt->ctrl;
        return true;
    case REFACCEL_REG_DT_PGSHIFT:
        *val = dt->pgshift;
        return true;
    case REFACCEL_REG_DT_MAX_RANGES:
        *val = dt->max_ranges;
        return true;
    case REFACCEL_REG_DT_NR_RANGES:
        *val = dt->nr_ranges;
        return true;
    case REFACCEL_REG_DT_RANGE_SEL:
        *val = dt->sel;
        return true;
    case REFACCEL_REG_DT_RANGE_BASE_LO:
        *val = r->base;
        return true;
    case REFACCEL_REG_DT_RANGE_BASE_HI:
        *val = r->base >> 32;
        return true;
    case REFACCEL_REG_DT_RANGE_LEN_LO:
        *val = r->len;
        return true;
    case REFACCEL_REG_DT_RANGE_LEN_HI:
        *val = r->len >> 32;
        return true;
    case REFACCEL_REG_DT_QUERY_LO:
        *val = dt->cursor;
        return true;
    case REFACCEL_REG_DT_QUERY_HI:
        *val = dt->cursor >> 32;
        return true;
    case REFACCEL_REG_DT_QUERY_DATA:
        *val = dt_enabled(dt) ? dt_read_data(dt) : 0;
        return true;
    case REFACCEL_REG_DT_NEXT_LO:
        /* computed here; NEXT_HI reads the upper half of this result */
        dt->next = dt_enabled(dt) ? dt_next(dt) : REFACCEL_DT_NEXT_NONE;
        *val = dt->next;
        return true;
    case REFACCEL_REG_DT_NEXT_HI:
        *val = dt->next >> 32;
        return true;
    case REFACCEL_REG_DT_MAX_SPAN_LO:
        *val = dt->max_span;
        return true;
    case REFACCEL_REG_DT_MAX_SPAN_HI:
        *val = dt->max_span >> 32;
        return true;
    case REFACCEL_REG_DT_STATUS:
        *val = (dt_enabled(dt) ? REFACCEL_DT_STATUS_ENABLED : 0) |
               (dt->overflow ? REFACCEL_DT_STATUS_OVERFLOW : 0);
        return true;
    case REFACCEL_REG_DT_ERR:
        *val = dt->err;
        return true;
    case REFACCEL_REG_DT_LIMIT_LO:
        *val = dt->limit;
        return true;
    case REFACCEL_REG_DT_LIMIT_HI:
        *val = dt->limit >> 32;
        return true;
    }
    return false;
}

static bool dt_config_locked(RefaccelDt *dt, hwaddr addr)
{
    if (dt_enabled(dt)) {
        qemu_log_mask(LOG_GUEST_ERROR, "refaccel: DT register 0x%" HWADDR_PRIx
                      " written while tracking, ignored\n", addr);
        return true;
    }
    return false;
}

bool refaccel_dt_write(RefaccelDt *dt, hwaddr addr, uint32_t val)
{
    RefaccelDtRange *r = &dt->range[dt->sel];

    switch (addr) {
    case REFACCEL_REG_DT_CTRL:
        if (dt->max_ranges) {
            dt_write_ctrl(dt, val);
        }
        return true;
    case REFACCEL_REG_DT_PGSHIFT:
        if (!dt_config_locked(dt, addr)) {
            dt->pgshift = val;
        }
        return true;
    case REFACCEL_REG_DT_NR_RANGES:
        if (!dt_config_locked(dt, addr)) {
            dt->nr_ranges = val;        /* ENABLE checks it */
        }
        return true;
    case REFACCEL_REG_DT_RANGE_SEL:
        dt->sel = val < REFACCEL_DT_MAX_RANGES ? val : dt->sel;
        return true;
    case REFACCEL_REG_DT_RANGE_BASE_LO:
        dt->base_lo = val;
        return true;
    case REFACCEL_REG_DT_RANGE_BASE_HI:
        if (!dt_config_locked(dt, addr)) {
            r->base = (uint64_t)val << 32 | dt->base_lo;
        }
        return true;
    case REFACCEL_REG_DT_RANGE_LEN_LO:
        dt->len_lo = val;
        return true;
    case REFACCEL_REG_DT_RANGE_LEN_HI:
        if (!dt_config_locked(dt, addr)) {
            r->len = (uint64_t)val << 32 | dt->len_lo;
        }
        return true;
    case REFACCEL_REG_DT_QUERY_LO:
        dt->query_lo = val;
        return true;
    case REFACCEL_REG_DT_QUERY_HI:
        dt->cursor = dt_page_align(dt, (uint64_t)val << 32 | dt->query_lo);
        return true;
    case REFACCEL_REG_DT_LIMIT_LO:
        dt->limit_lo = val;
        return true;
    case REFACCEL_REG_DT_LIMIT_HI:
        dt->limit = (uint64_t)val << 32 | dt->limit_lo;
        return true;
    case REFACCEL_REG_DT_MAX_RANGES:
    case REFACCEL_REG_DT_QUERY_DATA:
    case REFACCEL_REG_DT_NEXT_LO:
    case REFACCEL_REG_DT_NEXT_HI:
    case REFACCEL_REG_DT_MAX_SPAN_LO:
    case REFACCEL_REG_DT_MAX_SPAN_HI:
    case REFACCEL_REG_DT_STATUS:
    case REFACCEL_REG_DT_ERR:
        qemu_log_mask(LOG_GUEST_ERROR, "refaccel: write 0x%x to read-only "
                      "DT register 0x%" HWADDR_PRIx "\n", val, addr);
        return true;
    }
    return false;
}

void refaccel_dt_reset(RefaccelDt *dt)
{
    uint32_t max_ranges = dt->max_ranges;
    uint64_t max_span = dt->max_span;
    GArray *chunks = dt->chunks;

    memset(dt, 0, sizeof(*dt));
    dt->max_ranges = max_ranges;
    dt->max_span = max_span;
    dt->chunks = chunks;
    dt->pgshift = REFACCEL_DT_PGSHIFT_MIN;
    dt->next = REFACCEL_DT_NEXT_NONE;
    dt->limit = UINT64_MAX;
    dt_clear_marks(dt);
}

void refaccel_dt_init(RefaccelDt *dt, uint32_t max_ranges, uint64_t max_span)
{
    dt->max_ranges = max_ranges;
    dt->max_span = max_span;
    dt->chunks = g_array_new(false, true, sizeof(RefaccelDtChunk));
    refaccel_dt_reset(dt);
}

void refaccel_dt_finalize(RefaccelDt *dt)
{
    if (dt->chunks) {
        g_array_free(dt->chunks, true);
        dt->chunks = NULL;
    }
}
