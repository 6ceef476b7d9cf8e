// SPDX-License-Identifier: GPL-2.0
/*
 * refaccel-guest: the whole OS of a tiny VM that keeps every refaccel
 * function busy and checks every result, so that a live migration of the
 * VM (and of the functions passed through to it) can be proven correct.
 *
 * Multiboot v1, 32-bit protected mode, no paging: DMA addresses are
 * guest-physical addresses, which are the pointers themselves.  The rings
 * are polled (phase bit in guest RAM), nothing spins on MMIO.  See README.
 */
#include <linux/types.h>
#include <hw/refaccel_regs.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

_Static_assert(sizeof(struct refaccel_desc) == REFACCEL_DESC_SIZE, "desc");
_Static_assert(sizeof(struct refaccel_cpl) == REFACCEL_CPL_SIZE, "cpl");

#define RING		64	/* SQ and CQ entries */
#define MAX_FNS		8
#define NSLOTS		256	/* buffer pool */
#define SLOT_BYTES	256	/* source and destination area of a slot */
#define MAX_OFF		64	/* data starts at offset 0..63 in an area */
#define MAX_LEN		(SLOT_BYTES - MAX_OFF)
#define MAX_REGIONS	16	/* SRAM regions per function */
#define MAX_DEPTH	48	/* + 8 unacknowledged < RING - 1 */
#define ACK_BATCH	8
#define TAG_MAGIC	0x5247u	/* "RG" in bits 63..48 of every tag */
#define MAX_REPORTS	20
#define STREAM_MAX	256	/* pages of the device-only stream region */
#define PAGE		4096

#define COM1		0x3f8
#define PCI_COMMAND	0x04
#define PCI_CMD_MEMORY	0x0002
#define PCI_CMD_MASTER	0x0004
#define PIT_HZ		1193182

#define barrier()	asm volatile("" ::: "memory")
#define __printf(a, b)	__attribute__((format(printf, a, b)))
#define __packed	__attribute__((packed))
#define __aligned(x)	__attribute__((aligned(x)))
#define __noreturn	__attribute__((noreturn))

/* ---- port I/O, MMIO, TSC ---- */

static inline void outb(u16 port, u8 v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(u16 port)
{
	u8 v;

	asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outw(u16 port, u16 v)
{
	asm volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline u16 inw(u16 port)
{
	u16 v;

	asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void outl(u16 port, u32 v)
{
	asm volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline u32 inl(u16 port)
{
	u32 v;

	asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline u64 rdtsc(void)
{
	u64 v;

	asm volatile("rdtsc" : "=A"(v));
	return v;
}

static inline void cpu_relax(void)
{
	asm volatile("pause" ::: "memory");
}

/* memset/memcpy are what gcc may emit calls to even when freestanding */
void *memset(void *d, int c, unsigned long n);
void *memcpy(void *d, const void *s, unsigned long n);

void *memset(void *d, int c, unsigned long n)
{
	u8 *p = d;

	while (n--)
		*p++ = c;
	return d;
}

void *memcpy(void *d, const void *s, unsigned long n)
{
	u8 *p = d;
	const u8 *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

/* ---- serial console ---- */

static void serial_init(void)
{
	outb(COM1 + 1, 0x00);		/* no interrupts */
	outb(COM1 + 3, 0x80);		/* DLAB */
	outb(COM1 + 0, 0x01);		/* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);		/* 8N1 */
	outb(COM1 + 4, 0x03);		/* DTR, RTS */
}

static void putch(char c)
{
	while (!(inb(COM1 + 5) & 0x20))
		cpu_relax();
	outb(COM1, c);
}

static int serial_getc(void)
{
	if (!(inb(COM1 + 5) & 0x01))
		return -1;
	return inb(COM1);
}

/* vpr() output goes to the console, or to a string while sbuf is set */
static char *sbuf, *sbuf_end;

static void emit(char c)
{
	if (!sbuf)
		putch(c);
	else if (sbuf < sbuf_end)
		*sbuf++ = c;
}

static void puts_raw(const char *s)
{
	while (*s)
		emit(*s++);
}

static void put_num(u32 v, unsigned int base, int width, char pad)
{
	char buf[12];
	int n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (width-- > n)
		emit(pad);
	while (n)
		emit(buf[--n]);
}

/* %u %d %x %s %c, with an optional 0 flag and width */
static void vpr(const char *fmt, __builtin_va_list ap)
{
	for (; *fmt; fmt++) {
		char pad = ' ';
		int width = 0;
		int v;

		if (*fmt != '%') {
			emit(*fmt);
			continue;
		}
		if (*++fmt == '0')
			pad = *fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + *fmt++ - '0';
		switch (*fmt) {
		case 'u':
			put_num(__builtin_va_arg(ap, u32), 10, width, pad);
			break;
		case 'x':
			put_num(__builtin_va_arg(ap, u32), 16, width, pad);
			break;
		case 'd':
			v = __builtin_va_arg(ap, int);
			if (v < 0) {
				emit('-');
				v = -v;
			}
			put_num(v, 10, width, pad);
			break;
		case 's':
			puts_raw(__builtin_va_arg(ap, const char *));
			break;
		case 'c':
			emit(__builtin_va_arg(ap, int));
			break;
		default:
			emit(*fmt);
			break;
		}
	}
}

/* one output line: "refaccel-guest: " + text + "\n" */
static void __printf(1, 2) msg(const char *fmt, ...)
{
	__builtin_va_list ap;

	puts_raw("refaccel-guest: ");
	__builtin_va_start(ap, fmt);
	vpr(fmt, ap);
	__builtin_va_end(ap);
	putch('\n');
}

/* ---- options ---- */

static struct {
	u32 count;		/* descriptors to submit, 0: until 'q' */
	u32 nodev;
	u32 exit;
	u32 reassign;
	u32 timeout_s;
	u32 depth;
	u32 seed;
	u32 stream;		/* pages of the stream region in use */
	u32 dtlose;		/* set REFACCEL_TEST_DT_LOSE on every function */
} opt = { .timeout_s = 60, .depth = 16, .seed = 1, .stream = 64 };

static int prefix(const char *s, const char *p, const char **rest)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	*rest = s;
	return 1;
}

static u32 parse_u32(const char *s, const char *end, int *ok)
{
	u32 v = 0;

	*ok = s < end;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			*ok = 0;
		v = v * 10 + *s - '0';
	}
	return v;
}

/* QEMU passes "<kernel path> <-append string>": options are key=value */
static void parse_cmdline(const char *cl)
{
	while (*cl) {
		const char *tok, *end, *v;
		int ok = 1;
		u32 n;

		while (*cl == ' ')
			cl++;
		tok = cl;
		while (*cl && *cl != ' ')
			cl++;
		end = cl;
		if (tok == end)
			break;
		if (prefix(tok, "mode=", &v)) {
			if (end - v == 5 && prefix(v, "nodev", &v))
				opt.nodev = 1;
			else if (end - v == 9 && prefix(v, "decodeoff", &v))
				opt.nodev = 2;
			else if (end - v == 3 && prefix(v, "run", &v))
				opt.nodev = 0;
			else if (end - v == 6 && prefix(v, "dtlose", &v))
				opt.dtlose = 1;
			else
				ok = 0;
		} else if (prefix(tok, "count=", &v)) {
			n = parse_u32(v, end, &ok);
			opt.count = ok ? n : opt.count;
		} else if (prefix(tok, "exit=", &v)) {
			n = parse_u32(v, end, &ok);
			opt.exit = ok ? n : opt.exit;
		} else if (prefix(tok, "timeout=", &v)) {
			n = parse_u32(v, end, &ok);
			ok = ok && n >= 1 && n <= 1000000;
			opt.timeout_s = ok ? n : opt.timeout_s;
		} else if (prefix(tok, "depth=", &v)) {
			n = parse_u32(v, end, &ok);
			ok = ok && n >= 1 && n <= MAX_DEPTH;
			opt.depth = ok ? n : opt.depth;
		} else if (prefix(tok, "seed=", &v)) {
			n = parse_u32(v, end, &ok);
			opt.seed = ok ? n : opt.seed;
		} else if (prefix(tok, "stream=", &v)) {
			n = parse_u32(v, end, &ok);
			ok = ok && n <= STREAM_MAX;
			opt.stream = ok ? n : opt.stream;
		} else if (prefix(tok, "reassign=", &v)) {
			n = parse_u32(v, end, &ok);
			opt.reassign = ok ? n : opt.reassign;
		} else if (prefix(tok, "reset=", &v)) {
			msg("reset= is not implemented, ignored");
		} else {
			/* the kernel path, or something not ours */
			for (v = tok; v < end && *v != '='; v++)
				;
			if (v < end)
				ok = 0;
		}
		if (!ok) {
			puts_raw("refaccel-guest: ignoring bad option ");
			while (tok < end)
				putch(*tok++);
			putch('\n');
		}
	}
}

/* ---- time: TSC calibrated against the PIT ---- */

static u32 tsc_per_ms;
static u64 last_tsc;
static u32 tsc_frac;
static u32 now_ms;	/* guest time, paused time (mostly) not counted */

static u32 pit0_read(void)
{
	u32 lo, hi;

	outb(0x43, 0x00);		/* latch channel 0 */
	lo = inb(0x40);
	hi = inb(0x40);
	return lo | hi << 8;
}

static void tsc_calibrate(void)
{
	u32 prev, cur, ticks = 0, us, q, r;
	u64 t0, t1;

	/* channel 0, rate generator, 65536: 18.2 Hz IRQ0 for HLT too */
	outb(0x43, 0x34);
	outb(0x40, 0);
	outb(0x40, 0);
	prev = pit0_read();
	t0 = rdtsc();
	while (ticks < PIT_HZ / 20) {		/* 50 ms */
		cur = pit0_read();
		ticks += (prev - cur) & 0xffff;
		prev = cur;
	}
	t1 = rdtsc();
	us = ticks * 1000 / (PIT_HZ / 1000);	/* 0.02 % off */
	t1 -= t0;
	if (t1 >> 32)
		t1 = 0xffffffffu;
	q = (u32)t1 / us;
	r = (u32)t1 % us;
	tsc_per_ms = q * 1000 + r * 1000 / us;
	if (!tsc_per_ms)
		tsc_per_ms = 1;
	last_tsc = rdtsc();
}

/*
 * Advance now_ms.  A step is capped at 100 ms so that the time a VM is
 * paused (migration downtime) or a TSC that jumps on the destination does
 * not count as time the device took.
 */
static u32 clock_update(void)
{
	u64 t = rdtsc(), d = t - last_tsc;
	u32 dd;

	last_tsc = t;
	if (d >> 63)
		d = 0;
	if (d > (u64)tsc_per_ms * 100)
		d = (u64)tsc_per_ms * 100;
	dd = (u32)d + tsc_frac;
	now_ms += dd / tsc_per_ms;
	tsc_frac = dd % tsc_per_ms;
	return now_ms;
}

/* ---- interrupts: exceptions report, IRQ0 wakes HLT ---- */

struct idt_gate {
	u16 off_lo, sel;
	u8 zero, type;
	u16 off_hi;
} __packed;

static struct idt_gate idt[48];
extern const u32 isr_table[48];

static void idt_init(void)
{
	struct {
		u16 limit;
		u32 base;
	} __packed desc = { sizeof(idt) - 1, (u32)idt };
	int i;

	for (i = 0; i < 48; i++) {
		idt[i].off_lo = isr_table[i];
		idt[i].sel = 0x08;
		idt[i].type = 0x8e;		/* present 32-bit interrupt gate */
		idt[i].off_hi = isr_table[i] >> 16;
	}
	asm volatile("lidt %0" : : "m"(desc));

	/* PICs to vectors 32..47, only IRQ0 unmasked */
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x20);
	outb(0xa1, 0x28);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xfe);
	outb(0xa1, 0xff);
}

/* sleep until the next timer tick (at most 55 ms) */
static void idle(void)
{
	asm volatile("sti; hlt; cli" ::: "memory");
}

/* ---- CRC32C, data patterns ---- */

static u32 crc_table[256];

static void crc_init(void)
{
	u32 i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (c & 1 ? 0x82f63b78 : 0);
		crc_table[i] = c;
	}
}

/* what the device computes: value 0 is the standard CRC-32C */
static u32 crc32c(u32 value, const u8 *p, u32 len)
{
	u32 c = ~value;

	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

static u32 mix(u32 x)
{
	x ^= x >> 16;
	x *= 0x7feb352d;
	x ^= x >> 15;
	x *= 0x846ca68b;
	x ^= x >> 16;
	return x;
}

static u32 xorshift(u32 *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static u32 rnd_state = 1;

static u32 rnd(void)
{
	return xorshift(&rnd_state);
}

/* a slot's source area, from its seed */
static void gen(u8 *buf, u32 seed)
{
	u32 x = mix(seed) | 1, i;

	for (i = 0; i < SLOT_BYTES; i += 4)
		*(u32 *)(buf + i) = xorshift(&x);
}

/* what a destination area holds where the device must not write */
static u8 poison(u32 seed, u32 i)
{
	return (u8)(seed >> 8) ^ (u8)(i * 7) ^ 0x5a;
}

/* ---- state ---- */

enum job { J_NOP, J_COPY, J_FILL, J_CRC, J_LDST, J_SRAMRD, J_STREAM, J_MAX };
static const char *const job_name[J_MAX] = {
	"NOP", "COPY", "FILL", "CRC32C", "LOAD+STORE", "STORE(SRAM)",
	"FILL(stream)",
};
enum { S_FREE, S_BUSY, S_DONE, S_BAD };

struct slot {
	u32 seq;		/* tag sequence number of its first descriptor */
	u32 seed;		/* source area and poison */
	u32 ref_seed;		/* J_SRAMRD: whose data the SRAM holds */
				/* J_STREAM: ref_soff is the stream page */
	u32 value;		/* FILL pattern, CRC seed */
	u32 result;		/* CRC32C result from the completion */
	u16 len, soff, doff, ref_soff;
	u8 job, state, pending, ndesc, fn, ref_zero, failed;
};

struct buf {
	u8 src[SLOT_BYTES];
	u8 dst[SLOT_BYTES];
};

struct region {		/* what a LOAD left in an SRAM region */
	int valid;
	u32 seed;
	u16 soff, len;
};

struct rfn {
	u32 bdf;
	volatile u8 *regs;
	u32 caps, sram_size, max_xfer;
	struct refaccel_desc *sq;
	volatile struct refaccel_cpl *cq;
	u32 sq_tail, cq_head, phase, unacked;
	u32 outstanding, completed;
	u64 order[RING];	/* tags in submission order */
	u32 order_head, order_count;
	u32 last_cpl_ms, last_status_ms;
	u32 nreg, reg_stride, next_reg;
	struct region reg[MAX_REGIONS];
};

static struct refaccel_desc sq_mem[MAX_FNS][RING]
	__aligned(4096);
static struct refaccel_cpl cq_mem[MAX_FNS][RING]
	__aligned(4096);
static struct buf pool[NSLOTS] __aligned(64);
static struct slot slots[NSLOTS];
static u8 ref_a[SLOT_BYTES] __aligned(4);
static u8 ref_b[SLOT_BYTES] __aligned(4);

/*
 * The stream region: only the device writes it (whole-page FILLs), the CPU
 * only reads it, so after a migration its pages are right only if the
 * device's writes were tracked as dirty.  The expected pattern of each page
 * lives in CPU-written memory.
 */
static u32 stream_mem[STREAM_MAX][PAGE / 4] __aligned(PAGE);
static u32 stream_val[STREAM_MAX];	/* FILL value, 0: never written */
static u32 stream_seq[STREAM_MAX];	/* tag sequence of the last FILL */
static u8 stream_busy[STREAM_MAX];	/* that FILL has not completed */
static u32 stream_next, streamed, stream_checked, stream_bad;

static struct rfn fns[MAX_FNS];
static u32 nfns, nfound;
static u32 submitted, completed, wrong, next_seq, next_slot;
static int stopping, reports;
static char fail_reason[160];

static void report(const char *fmt, ...)
	__printf(1, 2);

/* a detailed error line; only the first MAX_REPORTS are printed */
static void report(const char *fmt, ...)
{
	__builtin_va_list ap;

	if (reports++ >= MAX_REPORTS) {
		if (reports == MAX_REPORTS + 1)
			msg("error: more errors are not shown");
		return;
	}
	puts_raw("refaccel-guest: error: ");
	__builtin_va_start(ap, fmt);
	vpr(fmt, ap);
	__builtin_va_end(ap);
	putch('\n');
}

static void set_fail(const char *fmt, ...)
	__printf(1, 2);

/* the first failure found is the verdict's reason */
static void set_fail(const char *fmt, ...)
{
	__builtin_va_list ap;

	if (fail_reason[0])
		return;
	sbuf = fail_reason;
	sbuf_end = fail_reason + sizeof(fail_reason) - 1;
	__builtin_va_start(ap, fmt);
	vpr(fmt, ap);
	__builtin_va_end(ap);
	*sbuf = 0;
	sbuf = 0;
}

#define BDF_FMT		"%02x:%02x.%x"
#define BDF_ARG(b)	(b) >> 8, ((b) >> 3) & 31, (b) & 7

/* ---- register access ---- */

static u32 rd(struct rfn *f, u32 off)
{
	return *(volatile u32 *)(f->regs + off);
}

static void wr(struct rfn *f, u32 off, u32 v)
{
	barrier();
	*(volatile u32 *)(f->regs + off) = v;
	barrier();
}

/* ---- PCI (configuration mechanism #1) ---- */

static void pci_addr(u32 bdf, u32 off)
{
	outl(0xcf8, 0x80000000u | bdf << 8 | (off & 0xfc));
}

static u32 pci_rd32(u32 bdf, u32 off)
{
	pci_addr(bdf, off);
	return inl(0xcfc);
}

static u16 pci_rd16(u32 bdf, u32 off)
{
	pci_addr(bdf, off);
	return inw(0xcfc + (off & 2));
}

static void pci_wr32(u32 bdf, u32 off, u32 v)
{
	pci_addr(bdf, off);
	outl(0xcfc, v);
}

static void pci_wr16(u32 bdf, u32 off, u16 v)
{
	pci_addr(bdf, off);
	outw(0xcfc + (off & 2), v);
}

static void pci_scan_bus(u32 bus, int depth)
{
	u32 dev, fn;

	for (dev = 0; dev < 32; dev++) {
		for (fn = 0; fn < 8; fn++) {
			u32 bdf = bus << 8 | dev << 3 | fn;
			u32 id = pci_rd32(bdf, 0x00);
			u32 hdr = pci_rd32(bdf, 0x0c) >> 16 & 0xff;
			u32 cls = pci_rd32(bdf, 0x08) >> 16;

			if ((id & 0xffff) == 0xffff) {
				if (!fn)
					break;
				continue;
			}
			if (id == (REFACCEL_PCI_DEVICE_ID << 16 |
				   REFACCEL_PCI_VENDOR_ID)) {
				if (nfns < MAX_FNS)
					fns[nfns++].bdf = bdf;
				else
					msg("ignoring " BDF_FMT ": more than %u functions",
					    BDF_ARG(bdf), MAX_FNS);
				nfound++;
			}
			/* PCI-to-PCI bridge: scan its secondary bus */
			if (cls == 0x0604 && (hdr & 0x7f) == 1 && depth < 8) {
				u32 sec = pci_rd32(bdf, 0x18) >> 8 & 0xff;

				if (sec > bus)
					pci_scan_bus(sec, depth + 1);
			}
			if (!fn && !(hdr & 0x80))
				break;
		}
	}
}

/*
 * Give every unassigned memory BAR of a function an address below 4 GiB
 * (the firmware normally did that already).  Simple bump allocator from
 * 0xc0000000, above q35's MMCONFIG, below the IOAPIC.  Decode is off.
 */
static u32 bar_next = 0xc0000000u;

static void assign_bars(u32 bdf)
{
	u32 i;

	for (i = 0; i < 6; i++) {
		u32 off = 0x10 + 4 * i, v = pci_rd32(bdf, off), hi = 0, sz;
		int is64 = (v & 7) == 4;

		if (v & 1)
			continue;			/* I/O BAR */
		if (is64)
			hi = pci_rd32(bdf, off + 4);
		if ((v & ~0xfu) || hi) {
			if (!opt.reassign)
				goto next;
		}
		pci_wr32(bdf, off, ~0u);
		sz = ~(pci_rd32(bdf, off) & ~0xfu) + 1;
		if (!sz || (sz & (sz - 1)) || sz > 0x10000000) {
			pci_wr32(bdf, off, v);
			goto next;
		}
		bar_next = (bar_next + sz - 1) & ~(sz - 1);
		pci_wr32(bdf, off, bar_next);
		if (is64)
			pci_wr32(bdf, off + 4, 0);
		msg(BDF_FMT " BAR%u assigned 0x%08x (size 0x%x)",
		    BDF_ARG(bdf), i, bar_next, sz);
		bar_next += sz;
next:
		if (is64)
			i++;
	}
}

/* ---- the device ---- */

static const char *halt_name(u32 r)
{
	switch (r) {
	case REFACCEL_HALT_SQ_FETCH:	return "SQ_FETCH";
	case REFACCEL_HALT_CQ_WRITE:	return "CQ_WRITE";
	case REFACCEL_HALT_RING_CONFIG:	return "RING_CONFIG";
	}
	return "?";
}

static int check_halted(struct rfn *f)
{
	u32 st = rd(f, REFACCEL_REG_STATUS), hr;

	if (!(st & REFACCEL_STATUS_HALTED))
		return 0;
	hr = rd(f, REFACCEL_REG_HALT_REASON);
	msg(BDF_FMT " HALTED: STATUS=0x%x HALT_REASON=%u (%s)",
	    BDF_ARG(f->bdf), st, hr, halt_name(hr));
	set_fail(BDF_FMT " halted, HALT_REASON=%u (%s)", BDF_ARG(f->bdf), hr,
		 halt_name(hr));
	return 1;
}

static int fn_init(struct rfn *f, int idx)
{
	u32 bdf = f->bdf, cmd, bar0, id, ver, i;

	cmd = pci_rd16(bdf, PCI_COMMAND);
	pci_wr16(bdf, PCI_COMMAND, cmd & ~(PCI_CMD_MEMORY | PCI_CMD_MASTER));
	assign_bars(bdf);
	bar0 = pci_rd32(bdf, 0x10);
	if ((bar0 & 7) != 0 || !(bar0 & ~0xfu)) {
		msg(BDF_FMT " BAR0 0x%08x is not a usable 32-bit memory BAR",
		    BDF_ARG(bdf), bar0);
		set_fail(BDF_FMT " has no usable BAR0", BDF_ARG(bdf));
		return -1;
	}
	pci_wr16(bdf, PCI_COMMAND, cmd | PCI_CMD_MEMORY | PCI_CMD_MASTER);
	f->regs = (volatile u8 *)(bar0 & ~0xfu);

	wr(f, REFACCEL_REG_CTRL, REFACCEL_CTRL_RESET);
	id = rd(f, REFACCEL_REG_ID);
	ver = rd(f, REFACCEL_REG_VERSION);
	if (id != REFACCEL_ID_MAGIC || ver >> 16 != REFACCEL_VERSION_1_0 >> 16) {
		msg(BDF_FMT " bad ID 0x%08x VERSION 0x%08x", BDF_ARG(bdf), id,
		    ver);
		set_fail(BDF_FMT " bad ID/VERSION", BDF_ARG(bdf));
		return -1;
	}
	f->caps = rd(f, REFACCEL_REG_CAPS);
	f->sram_size = rd(f, REFACCEL_REG_SRAM_SIZE);
	f->max_xfer = rd(f, REFACCEL_REG_MAX_XFER);

	f->sq = sq_mem[idx];
	f->cq = cq_mem[idx];
	memset(f->sq, 0, sizeof(sq_mem[0]));
	memset((void *)f->cq, 0, sizeof(cq_mem[0]));
	f->phase = 1;
	wr(f, REFACCEL_REG_SQ_BASE_LO, (u32)f->sq);
	wr(f, REFACCEL_REG_SQ_BASE_HI, 0);
	wr(f, REFACCEL_REG_SQ_SIZE, RING);
	wr(f, REFACCEL_REG_CQ_BASE_LO, (u32)f->cq);
	wr(f, REFACCEL_REG_CQ_BASE_HI, 0);
	wr(f, REFACCEL_REG_CQ_SIZE, RING);
	wr(f, REFACCEL_REG_CTRL, REFACCEL_CTRL_ENABLE);
	if (check_halted(f))
		return -1;
	if (!(rd(f, REFACCEL_REG_STATUS) & REFACCEL_STATUS_ENABLED)) {
		msg(BDF_FMT " does not enable", BDF_ARG(bdf));
		set_fail(BDF_FMT " does not enable", BDF_ARG(bdf));
		return -1;
	}

	/* SRAM regions for LOAD/STORE, spread over the SRAM's pages */
	f->nreg = f->sram_size / SLOT_BYTES;
	if (f->nreg > MAX_REGIONS)
		f->nreg = MAX_REGIONS;
	f->reg_stride = f->nreg ? f->sram_size / f->nreg / SLOT_BYTES *
		SLOT_BYTES : 0;
	for (i = 0; i < MAX_REGIONS; i++)
		f->reg[i].valid = 0;	/* reset cleared the SRAM: zeros */

	msg("function %d " BDF_FMT " bar0=0x%08x caps=0x%08x sram=0x%x max_xfer=0x%x latency_ns=%u",
	    idx, BDF_ARG(bdf), bar0 & ~0xfu, f->caps, f->sram_size,
	    f->max_xfer, rd(f, REFACCEL_REG_OP_LATENCY_NS));
	if (opt.dtlose) {
		/* the negative control: the device's DMA dirty tracker lies */
		wr(f, REFACCEL_REG_TEST_FLAGS,
		   rd(f, REFACCEL_REG_TEST_FLAGS) | REFACCEL_TEST_DT_LOSE);
		msg("function %d " BDF_FMT " mode=dtlose: TEST_FLAGS=0x%x",
		    idx, BDF_ARG(bdf), rd(f, REFACCEL_REG_TEST_FLAGS));
	}
	return 0;
}

/* ---- checking ---- */

static int first_diff(const u8 *a, const u8 *b, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++)
		if (a[i] != b[i])
			return i;
	return -1;
}

/* Does stream page p hold its last FILL?  0 if so (or unknown yet). */
static int stream_check(u32 p, const char *when)
{
	u32 i, v = stream_val[p];

	if (!v || stream_busy[p])
		return 0;
	stream_checked++;
	for (i = 0; i < PAGE / 4; i++) {
		if (stream_mem[p][i] != v) {
			report("%s: stream page %u (seq %u) word %u is 0x%08x, not 0x%08x",
			       when, p, stream_seq[p], i, stream_mem[p][i], v);
			stream_bad++;
			return -1;
		}
	}
	return 0;
}

/* Is a finished slot's memory what it must be?  0 if so. */
static int check_slot(u32 idx, const char *when)
{
	struct slot *s = &slots[idx];
	struct buf *b = &pool[idx];
	const u8 *exp = 0;
	u32 i, crc;
	int d;

	gen(ref_a, s->seed);
	d = first_diff(b->src, ref_a, SLOT_BYTES);
	if (d >= 0) {
		report("%s: slot %u (%s seq %u) source byte %d is 0x%02x, not 0x%02x",
		       when, idx, job_name[s->job], s->seq, d, b->src[d],
		       ref_a[d]);
		return -1;
	}
	switch (s->job) {
	case J_CRC:
		crc = crc32c(s->value, ref_a + s->soff, s->len);
		if (crc != s->result) {
			report("%s: slot %u seq %u CRC32C 0x%08x, not 0x%08x",
			       when, idx, s->seq, s->result, crc);
			return -1;
		}
		break;
	case J_COPY:
	case J_LDST:
		exp = ref_a + s->soff;
		break;
	case J_FILL:
		for (i = 0; i < s->len; i++)
			ref_b[i] = s->value >> 8 * (i & 3);
		exp = ref_b;
		break;
	case J_SRAMRD:
		if (s->ref_zero)
			memset(ref_b, 0, sizeof(ref_b));
		else
			gen(ref_b, s->ref_seed);
		exp = ref_b + s->ref_soff;
		break;
	}
	for (i = 0; i < SLOT_BYTES; i++) {
		int in = exp && i >= s->doff && i < (u32)s->doff + s->len;
		u8 e = in ? exp[i - s->doff] : poison(s->seed, i);

		if (b->dst[i] != e) {
			report("%s: slot %u (%s seq %u len %u) destination byte %u is 0x%02x, not 0x%02x%s",
			       when, idx, job_name[s->job], s->seq, s->len, i,
			       b->dst[i], e, in ? "" : " (outside the data)");
			return -1;
		}
	}
	return 0;
}

/* ---- submission ---- */

static void put_desc(struct rfn *f, struct slot *s, u32 k, u8 op, u32 len,
		     u32 src, u32 dst, u32 value)
{
	struct refaccel_desc *d = &f->sq[f->sq_tail];
	u32 seq = s->seq + k, i;
	u64 tag = (u64)TAG_MAGIC << 48 | (u64)(s - slots) << 32 | seq;

	for (i = 0; i < REFACCEL_DESC_SIZE / 4; i++)
		((u32 *)d)[i] = 0;
	d->opcode = op;
	d->flags = seq & 1 ? REFACCEL_DESC_F_NO_IRQ : 0;
	d->len = len;
	d->tag = tag;
	d->src = src;
	d->dst = dst;
	d->value = value;
	f->order[(f->order_head + f->order_count) % RING] = tag;
	f->order_count++;
	f->sq_tail = (f->sq_tail + 1) % RING;
	f->outstanding++;
	submitted++;
}

static struct slot *slot_get(void)
{
	u32 n;

	for (n = 0; n < NSLOTS; n++) {
		u32 idx = next_slot;
		struct slot *s = &slots[idx];

		next_slot = (next_slot + 1) % NSLOTS;
		if (s->state == S_BUSY)
			continue;
		if (s->state == S_DONE && check_slot(idx, "before reuse"))
			wrong++;
		return s;
	}
	return 0;
}

/* one job on f: one descriptor, or two for LOAD+STORE */
static int submit_job(struct rfn *f)
{
	u32 fi = f - fns, left = opt.count ? opt.count - submitted : 2;
	struct slot *s;
	struct buf *b;
	struct region *r;
	u32 i, job, sram;

	if (f->outstanding >= opt.depth || !left)
		return 0;
	s = slot_get();
	if (!s)
		return 0;
	b = &pool[s - slots];
	job = rnd() % J_MAX;
	if (job == J_LDST && (left < 2 || f->outstanding + 2 > opt.depth))
		job = J_COPY;
	if ((job == J_LDST || job == J_SRAMRD) && !f->nreg)
		job = J_COPY;
	if (job == J_STREAM && (!opt.stream || stream_busy[stream_next] ||
				f->max_xfer < PAGE))
		job = J_COPY;

	s->seq = next_seq;
	s->seed = mix(next_seq ^ mix(opt.seed));
	s->job = job;
	s->fn = fi;
	s->len = 1 + rnd() % MAX_LEN;
	s->soff = rnd() % MAX_OFF;
	s->doff = rnd() % MAX_OFF;
	s->value = rnd();
	s->result = 0;
	s->ref_zero = 0;
	s->failed = 0;
	gen(b->src, s->seed);
	for (i = 0; i < SLOT_BYTES; i++)
		b->dst[i] = poison(s->seed, i);
	s->state = S_BUSY;
	s->ndesc = job == J_LDST ? 2 : 1;
	s->pending = job == J_LDST ? 3 : 1;
	next_seq += s->ndesc;

	switch (job) {
	case J_NOP:
		s->len = 0;
		put_desc(f, s, 0, REFACCEL_OP_NOP, 0, 0, 0, 0);
		break;
	case J_COPY:
		put_desc(f, s, 0, REFACCEL_OP_COPY, s->len,
			 (u32)b->src + s->soff, (u32)b->dst + s->doff, 0);
		break;
	case J_FILL:
		put_desc(f, s, 0, REFACCEL_OP_FILL, s->len, 0,
			 (u32)b->dst + s->doff, s->value);
		break;
	case J_CRC:
		put_desc(f, s, 0, REFACCEL_OP_CRC32C, s->len,
			 (u32)b->src + s->soff, 0, s->value);
		break;
	case J_LDST:
		/* LOAD into a region, STORE it back: in order on one SQ */
		r = &f->reg[f->next_reg];
		sram = f->next_reg * f->reg_stride;
		f->next_reg = (f->next_reg + 1) % f->nreg;
		put_desc(f, s, 0, REFACCEL_OP_LOAD, s->len,
			 (u32)b->src + s->soff, sram, 0);
		put_desc(f, s, 1, REFACCEL_OP_STORE, s->len, sram,
			 (u32)b->dst + s->doff, 0);
		r->valid = 1;
		r->seed = s->seed;
		r->soff = s->soff;
		r->len = s->len;
		break;
	case J_SRAMRD:
		/* STORE what an older LOAD left (zeros if none since reset) */
		i = (f->next_reg + f->nreg / 2) % f->nreg;
		r = &f->reg[i];
		sram = i * f->reg_stride;
		if (r->valid) {
			if (s->len > r->len)
				s->len = r->len;
			s->ref_seed = r->seed;
			s->ref_soff = r->soff;
		} else {
			s->ref_zero = 1;
			s->ref_soff = 0;
		}
		put_desc(f, s, 0, REFACCEL_OP_STORE, s->len, sram,
			 (u32)b->dst + s->doff, 0);
		break;
	case J_STREAM:
		/* the last FILL of the page must be there before the next */
		i = stream_next;
		stream_next = (stream_next + 1) % opt.stream;
		if (stream_check(i, "before rewrite"))
			wrong++;
		s->len = 0;
		s->ref_soff = i;
		s->value = mix(s->seq ^ 0x5354524du) ?: 1;
		stream_val[i] = s->value;
		stream_seq[i] = s->seq;
		stream_busy[i] = 1;
		streamed++;
		put_desc(f, s, 0, REFACCEL_OP_FILL, PAGE, 0,
			 (u32)stream_mem[i], s->value);
		break;
	}
	return 1;
}

static void submit_round(void)
{
	static u32 rr;
	u32 newd = 0, k, i;
	int more = 1;

	while (more && !stopping) {
		more = 0;
		for (k = 0; k < nfns; k++) {
			i = (rr + k) % nfns;
			if (opt.count && submitted >= opt.count) {
				stopping = 1;
				msg("submitted %u descriptors, draining",
				    submitted);
				break;
			}
			if (submit_job(&fns[i])) {
				newd |= 1u << i;
				more = 1;
			}
		}
		rr++;
	}
	for (i = 0; i < nfns; i++)
		if (newd & 1u << i)
			wr(&fns[i], REFACCEL_REG_SQ_TAIL, fns[i].sq_tail);
}

/* ---- completions ---- */

static u32 last_pr_ms, last_pr_cpl;

static void progress(void)
{
	msg("progress submitted=%u completed=%u wrong=%u streamed=%u", submitted,
	    completed, wrong, streamed);
	last_pr_cpl = completed;
	last_pr_ms = now_ms;
}

static const u8 job_op[J_MAX][2] = {
	[J_NOP] = { REFACCEL_OP_NOP },
	[J_COPY] = { REFACCEL_OP_COPY },
	[J_FILL] = { REFACCEL_OP_FILL },
	[J_CRC] = { REFACCEL_OP_CRC32C },
	[J_LDST] = { REFACCEL_OP_LOAD, REFACCEL_OP_STORE },
	[J_SRAMRD] = { REFACCEL_OP_STORE },
	[J_STREAM] = { REFACCEL_OP_FILL },
};

static void handle_cpl(struct rfn *f, u64 tag, u32 result, u32 status,
		       u32 opcode)
{
	u32 seq = (u32)tag, idx = tag >> 32 & 0xffff, k, i;
	struct slot *s = &slots[idx < NSLOTS ? idx : 0];
	int bad = 0, late;

	/*
	 * Completions of one function come in submission order.  One that
	 * overtakes others is wrong once; the overtaken ones leave the order
	 * list (they stay pending: a loss is found when the drain times out).
	 */
	for (i = 0; i < f->order_count; i++)
		if (f->order[(f->order_head + i) % RING] == tag)
			break;
	late = i == f->order_count;
	if (i && !late) {
		report(BDF_FMT " completion of seq %u overtook %u older one(s), seq %u first",
		       BDF_ARG(f->bdf), seq, i, (u32)f->order[f->order_head]);
		bad = 1;
	}
	if (!late) {
		f->order_head = (f->order_head + i + 1) % RING;
		f->order_count -= i + 1;
	}

	k = seq - s->seq;
	if (tag >> 48 != TAG_MAGIC || idx >= NSLOTS || s->state != S_BUSY ||
	    s->fn != f - fns || k >= s->ndesc || !(s->pending & 1u << k)) {
		if (tag >> 48 == TAG_MAGIC && idx < NSLOTS &&
		    (int)(seq - next_seq) < 0)
			report(BDF_FMT " duplicate completion of seq %u",
			       BDF_ARG(f->bdf), seq);
		else
			report(BDF_FMT " completion with unknown tag 0x%08x%08x",
			       BDF_ARG(f->bdf), (u32)(tag >> 32), (u32)tag);
		wrong++;
		return;
	}

	if (late) {
		report(BDF_FMT " completion of seq %u came after younger ones",
		       BDF_ARG(f->bdf), seq);
		bad = 1;
	}
	s->pending &= ~(1u << k);
	completed++;
	f->completed++;
	f->outstanding--;
	if (status != REFACCEL_CPL_OK) {
		report(BDF_FMT " seq %u (%s) completed with status %u",
		       BDF_ARG(f->bdf), seq, job_name[s->job], status);
		bad = 1;
	} else if (opcode != job_op[s->job][k]) {
		report(BDF_FMT " seq %u completed with opcode %u, not %u",
		       BDF_ARG(f->bdf), seq, opcode, job_op[s->job][k]);
		bad = 1;
	} else if (s->job != J_CRC && result) {
		report(BDF_FMT " seq %u (%s) completed with result 0x%x",
		       BDF_ARG(f->bdf), seq, job_name[s->job], result);
		bad = 1;
	}
	if (s->job == J_CRC)
		s->result = result;
	if (bad) {
		s->failed = 1;
		wrong++;
	}
	if (s->pending)
		return;
	if (s->job == J_STREAM && stream_seq[s->ref_soff] == s->seq) {
		stream_busy[s->ref_soff] = 0;
		if (!s->failed && stream_check(s->ref_soff, "completion")) {
			s->failed = 1;
			wrong++;
		}
	}
	s->state = S_DONE;
	if (s->failed) {
		s->state = S_BAD;
	} else if (check_slot(idx, "completion")) {
		s->state = S_BAD;
		wrong++;
	}
}

static u32 reap(struct rfn *f)
{
	u32 n = 0;

	for (;;) {
		volatile struct refaccel_cpl *c = &f->cq[f->cq_head];
		volatile u32 *w = (volatile u32 *)c;
		u32 tries = 0, hi, lo, w2, w3;

		if ((c->flags & REFACCEL_CPL_F_PHASE) != f->phase)
			break;
		barrier();
		/*
		 * The phase byte is visible, so the rest should be too; re-read
		 * a little in case the entry's halves land one by one.
		 */
		do {
			lo = w[0];
			hi = w[1];
			w2 = w[2];
			w3 = w[3];
		} while (hi >> 16 != TAG_MAGIC && ++tries < 1000);
		handle_cpl(f, (u64)hi << 32 | lo, w2, w3 & 0xffff,
			   w3 >> 16 & 0xff);
		f->cq_head = (f->cq_head + 1) % RING;
		if (!f->cq_head)
			f->phase ^= 1;
		f->unacked++;
		n++;
		if (!(completed % 32))
			progress();
	}
	if (f->unacked && (f->unacked >= ACK_BATCH || !f->outstanding)) {
		wr(f, REFACCEL_REG_CQ_HEAD, f->cq_head);
		f->unacked = 0;
	}
	return n;
}

/* ---- main loop ---- */

static void poll_quit(void)
{
	static u32 last;
	int c;

	if (now_ms - last < 20)
		return;
	last = now_ms;
	while ((c = serial_getc()) >= 0) {
		if (c == 'q' && !stopping) {
			stopping = 1;
			msg("'q' received%s", opt.nodev ? "" : ", draining");
		}
	}
}

static void run(void)
{
	u32 outstanding, i, t0;

	t0 = clock_update();
	for (i = 0; i < nfns; i++)
		fns[i].last_cpl_ms = now_ms;
	msg("running: %u function(s), count=%u depth=%u timeout=%us seed=%u",
	    nfns, opt.count, opt.depth, opt.timeout_s, opt.seed);
	for (;;) {
		u32 got = 0;

		outstanding = 0;
		clock_update();
		for (i = 0; i < nfns; i++) {
			struct rfn *f = &fns[i];
			u32 n = reap(f);

			got += n;
			if (n || !f->outstanding)
				f->last_cpl_ms = now_ms;
			outstanding += f->outstanding;
			if (!f->outstanding)
				continue;
			if (now_ms - f->last_cpl_ms >= opt.timeout_s * 1000) {
				msg(BDF_FMT " timeout: %u outstanding, STATUS=0x%x SQ_HEAD=%u SQ_TAIL=%u CQ_TAIL=%u CQ_HEAD=%u",
				    BDF_ARG(f->bdf), f->outstanding,
				    rd(f, REFACCEL_REG_STATUS),
				    rd(f, REFACCEL_REG_SQ_HEAD), f->sq_tail,
				    rd(f, REFACCEL_REG_CQ_TAIL), f->cq_head);
				check_halted(f);
				set_fail("timeout: %u outstanding on " BDF_FMT
					 ", nothing completed for %u s",
					 f->outstanding, BDF_ARG(f->bdf),
					 opt.timeout_s);
				return;
			}
			/* quiet for a second: is it halted? (MMIO, so rarely) */
			if (now_ms - f->last_cpl_ms >= 1000 &&
			    now_ms - f->last_status_ms >= 1000) {
				f->last_status_ms = now_ms;
				if (check_halted(f))
					return;
			}
		}
		if (completed != last_pr_cpl && now_ms - last_pr_ms >= 1000)
			progress();
		poll_quit();
		if (!stopping)
			submit_round();
		else if (!outstanding)
			break;
		if (!got)
			cpu_relax();
	}
	if (completed != last_pr_cpl)
		progress();
	msg("ran for %u.%03u s", (now_ms - t0) / 1000, (now_ms - t0) % 1000);
}

static void idle_nodev(void)
{
	u32 last_hb = 0;

	msg("mode=%s: device not enabled; send 'q' to finish",
	    opt.nodev == 2 ? "decodeoff" : "nodev");
	clock_update();
	while (!stopping) {
		idle();
		clock_update();
		poll_quit();
		if (now_ms - last_hb >= 2000) {
			last_hb = now_ms;
			msg("heartbeat t=%us", now_ms / 1000);
		}
	}
}

static void __noreturn finish(void)
{
	int pass = !fail_reason[0] && !wrong && completed == submitted;

	msg("%u submitted, %u completed exactly once, %u wrong", submitted,
	    completed, wrong);
	if (pass) {
		msg("PASS");
	} else {
		if (wrong)
			set_fail("%u wrong", wrong);
		set_fail("%u lost", submitted - completed);
		msg("FAIL %s", fail_reason);
	}
	if (opt.exit)
		outb(0xf4, pass ? 0 : 1);	/* isa-debug-exit */
	for (;;)
		asm volatile("cli; hlt");
}

/* called by the exception stubs: frame = vector, error, eip, cs, eflags */
void exc_handler(u32 *frame);
void exc_handler(u32 *frame)
{
	msg("exception %u error 0x%x at eip 0x%08x", frame[0], frame[1],
	    frame[2]);
	fail_reason[0] = 0;
	set_fail("CPU exception %u at eip 0x%08x", frame[0], frame[2]);
	finish();
}

void kmain(u32 magic, u32 *mbi);
void kmain(u32 magic, u32 *mbi)
{
	const char *cmdline = "";
	u32 i, nver = 0, nbad = 0;

	serial_init();
	idt_init();
	tsc_calibrate();
	if (magic == 0x2badb002 && (mbi[0] & 4))
		cmdline = (const char *)mbi[4];
	msg("boot: cmdline \"%s\" tsc %u kHz", cmdline, tsc_per_ms);
	if (magic != 0x2badb002)
		msg("not started by a multiboot loader (eax 0x%x)", magic);
	parse_cmdline(cmdline);
	rnd_state = mix(opt.seed) | 1;
	crc_init();
	if (crc32c(0, (const u8 *)"123456789", 9) != 0xe3069283) {
		set_fail("CRC32C self test");
		finish();
	}

	pci_scan_bus(0, 0);
	msg("found %u refaccel function(s)", nfound);
	if (opt.nodev) {
		for (i = 0; i < nfns; i++) {
			u32 bdf = fns[i].bdf;

			/* decodeoff: what a careless guest leaves behind */
			if (opt.nodev == 2)
				pci_wr16(bdf, PCI_COMMAND,
					 pci_rd16(bdf, PCI_COMMAND) &
					 ~(PCI_CMD_MEMORY | PCI_CMD_MASTER));
			msg("function %u " BDF_FMT " bar0=0x%08x command=0x%04x (%s)",
			    i, BDF_ARG(bdf), pci_rd32(bdf, 0x10),
			    pci_rd16(bdf, PCI_COMMAND),
			    opt.nodev == 2 ? "decode turned off" : "nodev: not touched");
		}
		idle_nodev();
		finish();
	}
	if (!nfns) {
		set_fail("no refaccel function found");
		finish();
	}
	for (i = 0; i < nfns; i++)
		if (fn_init(&fns[i], i))
			finish();

	run();

	/* every result still in guest RAM must still be right */
	for (i = 0; i < NSLOTS; i++) {
		if (slots[i].state != S_DONE)
			continue;
		nver++;
		if (check_slot(i, "re-verify")) {
			slots[i].state = S_BAD;
			nbad++;
		}
	}
	wrong += nbad;
	msg("re-verified %u slots, %u bad", nver, nbad);
	/* and every stream page its last FILL: proof no dirty page was lost */
	for (i = 0, nbad = 0, nver = 0; i < opt.stream; i++) {
		nver += stream_busy[i];
		nbad += stream_check(i, "re-verify") ? 1 : 0;
	}
	wrong += nbad;
	msg("stream: %u pages, %u FILLs, %u checks, %u bad (%u at the end), %u unfinished",
	    opt.stream, streamed, stream_checked, stream_bad, nbad, nver);
	for (i = 0; i < nfns; i++) {
		struct rfn *f = &fns[i];
		u32 cnt = rd(f, REFACCEL_REG_CNT_COMPLETED);

		msg(BDF_FMT " completed=%u CNT_FETCHED=%u CNT_COMPLETED=%u CNT_ERRORS=%u",
		    BDF_ARG(f->bdf), f->completed,
		    rd(f, REFACCEL_REG_CNT_FETCHED), cnt,
		    rd(f, REFACCEL_REG_CNT_ERRORS));
		if (!fail_reason[0] && cnt != f->completed) {
			report(BDF_FMT " CNT_COMPLETED %u, but %u seen",
			       BDF_ARG(f->bdf), cnt, f->completed);
			wrong++;
		}
		if (!fail_reason[0])
			check_halted(f);
		if (opt.dtlose)
			wr(f, REFACCEL_REG_TEST_FLAGS, rd(f, REFACCEL_REG_TEST_FLAGS) &
			   ~REFACCEL_TEST_DT_LOSE);
	}
	finish();
}
