/* Shared by the libFuzzer targets: a private temporary folder for targets
 * whose API reads files, and the sanitizer settings every target runs with. */
#ifndef CNN_FUZZ_COMMON_H
#define CNN_FUZZ_COMMON_H

#include "cnn.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Allocations above 512 MB fail (return NULL) as a machine without that
 * memory would make them fail: a hostile file may ask for any size, and
 * what must hold is that the library then reports CNN_ERR_NOMEM instead of
 * crashing; libFuzzer's own limit would instead call that a crash. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1:max_allocation_size_mb=512:detect_leaks=1";
}

static char fuzz_dir[256];

static inline void fuzz_cleanup(void)
{
    DIR *d = opendir(fuzz_dir);
    if (d) {
        struct dirent *de;
        char p[600];
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            snprintf(p, sizeof p, "%s/%s", fuzz_dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(fuzz_dir);
}

/* Creates the folder once per process (each libFuzzer worker has its own). */
static inline const char *fuzz_tmpdir(void)
{
    if (!fuzz_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/cnn_fuzz_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fuzz_dir)) {
            perror("mkdtemp");
            abort();
        }
        atexit(fuzz_cleanup);
    }
    return fuzz_dir;
}

/* fuzz_dir/name, in one of a few rotating buffers. */
static inline const char *fuzz_path(const char *name)
{
    static char bufs[4][600];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 600, "%s/%s", fuzz_tmpdir(), name);
    return b;
}

static inline void fuzz_write(const char *name, const uint8_t *data, size_t n)
{
    FILE *f = fopen(fuzz_path(name), "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(name);
        abort();
    }
}

static inline void fuzz_remove(const char *name) { unlink(fuzz_path(name)); }

/* Every failure must come with a message: an empty one is a bug. */
static inline void fuzz_need_message(cnn_status st, const char *msg, const char *what)
{
    if (st != CNN_OK && (!msg || !msg[0])) {
        fprintf(stderr, "%s failed with status %d (%s) and no message\n", what, st,
                cnn_status_string(st));
        abort();
    }
}

/* Little-endian 16-bit length taken from the front of the input. */
static inline size_t fuzz_take_u16(const uint8_t **data, size_t *size)
{
    if (*size < 2)
        return 0;
    size_t v = (size_t)(*data)[0] | ((size_t)(*data)[1] << 8);
    *data += 2;
    *size -= 2;
    return v;
}

#endif
