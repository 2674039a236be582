/* unit.h: the tiny TAP interface shared by the C unit tests in t/unit/. */
#ifndef UNIT_H
#define UNIT_H

/* Print "ok N - what" or "not ok N - what"; returns ok. */
int tap_ok(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a "# ..." diagnostic line. */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The test groups, one per library module; main.c runs them in order. */
void test_endian(void);
void test_zero(void);
void test_io(void);
void test_tcache(void);
void test_walk(void);
void test_walk_formats(void);
void test_compress(void);
void test_lock(void);
void test_open_mem(void);

#endif
