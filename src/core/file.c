/* Whole-file reads and crash-safe writes (temporary file, fsync, rename). */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cnn_status cnni_read_file(const char *path, char **data, size_t *len, size_t max_len, cnn_err *e)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cnni_fail(e, CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cnni_fail(e, CNN_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_len) {
        fclose(f);
        return cnni_fail(e, CNN_ERR_OVERFLOW, "%s: file is %lld bytes, more than the %zu allowed",
                         path, (long long)st.st_size, max_len);
    }
    size_t n = (size_t)st.st_size;
    char *buf = cnni_malloc(n + 1);
    if (!buf) {
        fclose(f);
        return cnni_fail(e, CNN_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        cnni_free(buf);
        return cnni_fail(e, CNN_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return CNN_OK;
}

cnn_status cnni_afile_open(cnni_afile *f, const char *path, cnn_err *e)
{
    memset(f, 0, sizeof *f);
    size_t n = strlen(path);
    f->path = cnni_strdup(path);
    f->tmp_path = cnni_malloc(n + 16);
    if (!f->path || !f->tmp_path) {
        cnni_free(f->path);
        cnni_free(f->tmp_path);
        memset(f, 0, sizeof *f);
        return cnni_oom(e);
    }
    memcpy(f->tmp_path, path, n);
    memcpy(f->tmp_path + n, ".tmp.XXXXXX", 12);
    int fd = mkstemp(f->tmp_path);
    if (fd < 0) {
        int errnum = errno;
        cnni_free(f->path);
        cnni_free(f->tmp_path);
        memset(f, 0, sizeof *f);
        return cnni_fail(e, CNN_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                         strerror(errnum));
    }
    /* mkstemp makes the file 0600; give it the permissions a plain fopen would. */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        close(fd);
        unlink(f->tmp_path);
        cnni_free(f->path);
        cnni_free(f->tmp_path);
        memset(f, 0, sizeof *f);
        return cnni_oom(e);
    }
    return CNN_OK;
}

cnn_status cnni_afile_write(cnni_afile *f, const void *data, size_t n, cnn_err *e)
{
    if (f->failed)
        return CNN_ERR_IO;
    if (n && fwrite(data, 1, n, (FILE *)f->fp) != n) {
        f->failed = 1;
        return cnni_fail(e, CNN_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    }
    return CNN_OK;
}

void cnni_afile_abort(cnni_afile *f)
{
    if (f->fp)
        fclose((FILE *)f->fp);
    if (f->tmp_path)
        unlink(f->tmp_path);
    cnni_free(f->path);
    cnni_free(f->tmp_path);
    memset(f, 0, sizeof *f);
}

cnn_status cnni_afile_commit(cnni_afile *f, cnn_err *e)
{
    FILE *fp = (FILE *)f->fp;
    if (f->failed || fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        int errnum = errno;
        cnni_afile_abort(f);
        return cnni_fail(e, CNN_ERR_IO, "cannot write: %s", strerror(errnum));
    }
    if (fclose(fp) != 0) {
        int errnum = errno;
        f->fp = NULL;
        cnni_afile_abort(f);
        return cnni_fail(e, CNN_ERR_IO, "cannot close: %s", strerror(errnum));
    }
    f->fp = NULL;
    if (rename(f->tmp_path, f->path) != 0) {
        int errnum = errno;
        char path[1024];
        snprintf(path, sizeof path, "%s", f->path);
        cnni_afile_abort(f);
        return cnni_fail(e, CNN_ERR_IO, "%s: cannot rename the temporary file into place: %s",
                         path, strerror(errnum));
    }
    /* Make the rename itself durable: fsync the folder. */
    char *slash = strrchr(f->path, '/');
    int dfd;
    if (slash) {
        *slash = 0;
        dfd = open(f->path[0] ? f->path : "/", O_RDONLY | O_DIRECTORY);
        *slash = '/';
    } else {
        dfd = open(".", O_RDONLY | O_DIRECTORY);
    }
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    cnni_free(f->path);
    cnni_free(f->tmp_path);
    memset(f, 0, sizeof *f);
    return CNN_OK;
}
