// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests of the migration core (mig*.c, dirty.c and stream.c, linked
 * into this module unchanged, without tracepoints) driving a second
 * device: the state-only "blob" of ops_blob.c, which has no device memory
 * and no DMA tracker.  A migration from one blob to another through
 * STOP_COPY and through PRE_COPY, and a corrupted stream that must leave
 * the destination untouched, with the ops the core called checked each
 * time.  The vfio_device handed to the core is only what vmig_init()
 * needs (a struct device, the migration flags): the FSM arcs come from
 * vfio's own vfio_mig_get_next_state().  The data_fd is read and written
 * through its file operations with a user buffer (kunit_vm_mmap()), as a
 * VMM's read() and write() reach them.
 *
 * Built by scripts/build-test-modules.sh for kernels with CONFIG_KUNIT;
 * results are read back by tests/kunit/run-kunit.sh in the test VM.
 */

#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mman.h>
#include <linux/module.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vfio.h>

#include "ops_blob.h"

#define T_STREAM_MAX	4096
#define T_LEN		100

static void t_blob_free(void *data)
{
	struct blob_dev *b = data;

	vmig_close(&b->mig);
	vmig_uninit(&b->mig);
}

/* An open blob device, @fill its first T_LEN state bytes (0: empty). */
static struct blob_dev *t_blob(struct kunit *test, const char *name, u8 fill)
{
	struct vfio_device *vdev;
	struct blob_dev *b;

	b = kunit_kzalloc(test, sizeof(*b), GFP_KERNEL);
	vdev = kunit_kzalloc(test, sizeof(*vdev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, b);
	KUNIT_ASSERT_NOT_NULL(test, vdev);
	vdev->dev = kunit_device_register(test, name);
	KUNIT_ASSERT_FALSE(test, IS_ERR(vdev->dev));
	vdev->migration_flags = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
				VFIO_MIGRATION_PRE_COPY;
	if (fill) {
		for (int i = 0; i < T_LEN; i++)
			b->state[i] = fill + i;
		b->len = T_LEN;
	}
	vmig_init(&b->mig, vdev, &blob_vmig_ops, 1000);
	vmig_open(&b->mig);
	KUNIT_ASSERT_TRUE_MSG(test, b->mig.usable,
			      "a state-only device must be usable");
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, t_blob_free, b));
	return b;
}

/* An arc that returns no data_fd. */
static void t_arc(struct kunit *test, struct blob_dev *b,
		  enum vfio_device_mig_state to)
{
	struct file *f = vmig_set_state(&b->mig, to);

	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR(f), "arc to %d: %ld", to,
			       IS_ERR(f) ? PTR_ERR(f) : 0);
	KUNIT_ASSERT_NULL(test, f);
}

/* An arc that starts a session: its data_fd. */
static struct file *t_arc_fd(struct kunit *test, struct blob_dev *b,
			     enum vfio_device_mig_state to)
{
	struct file *f = vmig_set_state(&b->mig, to);

	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_OR_NULL(f), "arc to %d: %ld", to,
			       IS_ERR(f) ? PTR_ERR(f) : 0);
	return f;
}

/* A stream buffer in the kernel and its copy in user memory. */
struct t_buf {
	u8 *k;
	char __user *u;
};

static void t_buf_init(struct kunit *test, struct t_buf *b)
{
	unsigned long addr;

	b->k = kunit_kzalloc(test, T_STREAM_MAX, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, b->k);
	addr = kunit_vm_mmap(test, NULL, 0, T_STREAM_MAX, PROT_READ | PROT_WRITE,
			     MAP_ANONYMOUS | MAP_PRIVATE, 0);
	KUNIT_ASSERT_NE_MSG(test, addr, 0, "no user memory for the stream");
	KUNIT_ASSERT_LT(test, addr, (unsigned long)TASK_SIZE);
	b->u = (char __user *)addr;
}

/*
 * read() the data_fd until end of stream (0) or "nothing more for now"
 * (-ENOMSG), appending at @done; the new length, in b->k too.
 */
static size_t t_read(struct kunit *test, struct file *f, struct t_buf *b,
		     size_t done, int want_end)
{
	ssize_t n;

	for (;;) {
		KUNIT_ASSERT_LT(test, done, (size_t)T_STREAM_MAX);
		/* a stream: read() passes no position (file_ppos()) */
		n = f->f_op->read(f, b->u + done, T_STREAM_MAX - done, NULL);
		if (n <= 0)
			break;
		done += n;
	}
	KUNIT_EXPECT_EQ(test, (ssize_t)want_end, n);
	KUNIT_ASSERT_EQ(test, 0ul, copy_from_user(b->k, b->u, done));
	return done;
}

/* RESUMING with b->k[0..len) into @dst; the errno of the final arc. */
static int t_resume(struct kunit *test, struct blob_dev *dst, struct t_buf *b,
		    size_t len)
{
	struct file *f, *res;
	ssize_t n;

	t_arc(test, dst, VFIO_DEVICE_STATE_STOP);
	f = t_arc_fd(test, dst, VFIO_DEVICE_STATE_RESUMING);
	KUNIT_ASSERT_EQ(test, 0ul, copy_to_user(b->u, b->k, len));
	n = f->f_op->write(f, b->u, len, NULL);
	res = vmig_set_state(&dst->mig, VFIO_DEVICE_STATE_STOP);
	fput(f);
	if (n != (ssize_t)len)
		return n < 0 ? n : -EIO;
	KUNIT_EXPECT_TRUE(test, IS_ERR_OR_NULL(res));
	return IS_ERR(res) ? PTR_ERR(res) : 0;
}

static void t_expect_moved(struct kunit *test, struct blob_dev *src,
			   struct blob_dev *dst)
{
	KUNIT_EXPECT_EQ(test, src->len, dst->len);
	KUNIT_EXPECT_MEMEQ(test, src->state, dst->state, T_LEN);
	KUNIT_EXPECT_EQ(test, 1u, src->calls.save);
	KUNIT_EXPECT_EQ(test, 1u, dst->calls.load);
	KUNIT_EXPECT_EQ(test, 0u, src->misuse);
	KUNIT_EXPECT_EQ(test, 0u, dst->misuse);
}

static void stop_copy_moves_state(struct kunit *test)
{
	struct blob_dev *src = t_blob(test, "blob-src", 0x40);
	struct blob_dev *dst = t_blob(test, "blob-dst", 0);
	struct t_buf stream;
	struct file *f;
	size_t len;

	t_buf_init(test, &stream);
	f = t_arc_fd(test, src, VFIO_DEVICE_STATE_STOP_COPY);
	len = t_read(test, f, &stream, 0, 0);
	t_arc(test, src, VFIO_DEVICE_STATE_STOP);
	fput(f);
	KUNIT_EXPECT_LT(test, (size_t)T_LEN, len);
	KUNIT_EXPECT_EQ(test, 1u, src->calls.quiesce);
	KUNIT_EXPECT_EQ(test, 1u, src->calls.freeze);

	KUNIT_EXPECT_EQ(test, 0, t_resume(test, dst, &stream, len));
	t_expect_moved(test, src, dst);

	/* both run again: unfreeze, then unquiesce */
	t_arc(test, src, VFIO_DEVICE_STATE_RUNNING);
	t_arc(test, dst, VFIO_DEVICE_STATE_RUNNING);
	KUNIT_EXPECT_FALSE(test, src->frozen || src->quiesced);
	KUNIT_EXPECT_FALSE(test, dst->frozen || dst->quiesced);
	KUNIT_EXPECT_EQ(test, 0u, src->misuse + dst->misuse);
}

/* PRE_COPY of a device without memory: nothing before STOP_COPY. */
static void pre_copy_without_device_memory(struct kunit *test)
{
	struct blob_dev *src = t_blob(test, "blob-src", 0x80);
	struct blob_dev *dst = t_blob(test, "blob-dst", 0);
	struct t_buf stream;
	unsigned long est = 0;
	struct file *f;
	size_t len;

	t_buf_init(test, &stream);
	f = t_arc_fd(test, src, VFIO_DEVICE_STATE_PRE_COPY);
	len = t_read(test, f, &stream, 0, -ENOMSG);
	KUNIT_EXPECT_EQ(test, 0u, src->calls.save);
	KUNIT_EXPECT_EQ(test, 0, vmig_get_data_size(&src->mig, &est));
	KUNIT_EXPECT_LE(test, (unsigned long)T_LEN, est);
	t_arc(test, src, VFIO_DEVICE_STATE_STOP_COPY);	/* same session */
	len = t_read(test, f, &stream, len, 0);
	t_arc(test, src, VFIO_DEVICE_STATE_STOP);
	fput(f);

	KUNIT_EXPECT_EQ(test, 0, t_resume(test, dst, &stream, len));
	t_expect_moved(test, src, dst);
}

/* One flipped bit anywhere: refused, and the destination keeps its state. */
static void corrupt_stream_loads_nothing(struct kunit *test)
{
	struct blob_dev *src = t_blob(test, "blob-src", 0x10);
	struct t_buf stream;
	struct file *f;
	size_t len, at;

	t_buf_init(test, &stream);
	f = t_arc_fd(test, src, VFIO_DEVICE_STATE_STOP_COPY);
	len = t_read(test, f, &stream, 0, 0);
	t_arc(test, src, VFIO_DEVICE_STATE_STOP);
	fput(f);

	for (at = 0; at < len; at += 7) {
		struct blob_dev *dst;
		u8 before[T_LEN];
		char name[32];

		/* device names are unique: one destination per flip */
		snprintf(name, sizeof(name), "blob-dst-%zu", at);
		dst = t_blob(test, name, 0x33);
		memcpy(before, dst->state, T_LEN);
		stream.k[at] ^= 0x04;
		KUNIT_EXPECT_NE_MSG(test, 0, t_resume(test, dst, &stream, len),
				    "bit flipped at byte %zu of %zu accepted", at,
				    len);
		stream.k[at] ^= 0x04;
		KUNIT_EXPECT_EQ(test, 0u, dst->calls.load);
		KUNIT_EXPECT_MEMEQ(test, before, dst->state, T_LEN);
		KUNIT_EXPECT_EQ(test, 0u, dst->misuse);
	}
}

static struct kunit_case refaccel_core_cases[] = {
	KUNIT_CASE(stop_copy_moves_state),
	KUNIT_CASE(pre_copy_without_device_memory),
	KUNIT_CASE(corrupt_stream_loads_nothing),
	{}
};

static struct kunit_suite refaccel_core_suite = {
	.name = "refaccel-core",
	.test_cases = refaccel_core_cases,
};

kunit_test_suite(refaccel_core_suite);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("KUnit tests of the refaccel-vfio-pci migration core with a second, state-only device");
