/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * bench_util - what the vfio-mig benchmarks (refaccel_dirty_bench,
 * refaccel_mig_bench) share: a monotonic clock, medians, human-readable
 * times and sizes, size arguments with K/M/G/T suffixes, JSON arrays and
 * the "RESULT: SKIP (...)" convention.  Everything is prefixed "bu_".
 *
 * Benchmarks report; they never fail on speed.  Exit status of both:
 * BU_EXIT_PASS, BU_EXIT_FAIL (a wrong result or a failing ioctl),
 * BU_EXIT_USAGE, BU_EXIT_SKIP (kselftest's KSFT_SKIP: nothing to measure).
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BU_EXIT_PASS	0
#define BU_EXIT_FAIL	1
#define BU_EXIT_USAGE	2
#define BU_EXIT_SKIP	4

/* CLOCK_MONOTONIC in nanoseconds. */
double bu_now_ns(void);
/* Median and minimum of @n samples (0 when n <= 0); @v is not changed. */
double bu_median(const double *v, int n);
double bu_minimum(const double *v, int n);
/* "12.3 us", "4.56 ms", "1.234 s" */
const char *bu_fmt_ns(double ns, char *buf, size_t len);
/* "1M", "16G", "4100" (exact multiples of 1024 only get a suffix) */
const char *bu_fmt_size(uint64_t b, char *buf, size_t len);
/* "64M", "1GiB", "0x1000": 0, or -EINVAL. */
int bu_parse_size(const char *s, uint64_t *out);
/* "[1, 2, 3]" of the samples, rounded to integers. */
void bu_json_arr(FILE *f, const double *v, int n);
/* Print "RESULT: SKIP (...)" and return BU_EXIT_SKIP. */
int bu_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* BENCH_UTIL_H */
