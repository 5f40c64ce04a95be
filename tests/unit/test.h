/* A tiny test harness: CHECK records a failure with file and line and goes
 * on; each program ends with test_finish(), which prints "RESULT p f" for
 * tests/run.sh and returns the exit status. */
#ifndef CNN_TEST_H
#define CNN_TEST_H

#include "cnn.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed;
static const char *test_current = "";

#define TEST(name) for (int test_once_ = (test_begin(name), 1); test_once_; test_once_ = 0, test_end())

static int test_case_failed;
static inline void test_begin(const char *name)
{
    test_current = name;
    test_case_failed = 0;
}
static inline void test_end(void)
{
    if (test_case_failed) {
        test_failed++;
        printf("FAIL %s\n", test_current);
    } else {
        test_passed++;
        printf("PASS %s\n", test_current);
    }
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("  %s:%d: %s: check failed: %s\n", __FILE__, __LINE__, test_current, #cond);   \
            test_case_failed = 1;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECKF(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("  %s:%d: %s: ", __FILE__, __LINE__, test_current);                             \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            test_case_failed = 1;                                                                  \
        }                                                                                          \
    } while (0)

/* The status is st and the message contains every fragment (NULL-terminated). */
#define CHECK_ERR(st, want, msg, ...) check_err_(__FILE__, __LINE__, (st), (want), (msg), __VA_ARGS__, (const char *)NULL)
static inline void check_err_(const char *file, int line, cnn_status st, cnn_status want, const char *msg, ...)
{
    if (st != want) {
        printf("  %s:%d: %s: status %d (%s), expected %d (%s); message: %s\n", file, line, test_current, st,
               cnn_status_string(st), want, cnn_status_string(want), msg ? msg : "(null)");
        test_case_failed = 1;
        return;
    }
    va_list ap;
    va_start(ap, msg);
    const char *frag;
    while ((frag = va_arg(ap, const char *)) != NULL) {
        if (!msg || !strstr(msg, frag)) {
            printf("  %s:%d: %s: message lacks \"%s\": %s\n", file, line, test_current, frag,
                   msg ? msg : "(null)");
            test_case_failed = 1;
        }
    }
    va_end(ap);
}

static inline int test_finish(void)
{
    printf("RESULT %d %d\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

#endif
