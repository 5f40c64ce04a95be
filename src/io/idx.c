/* MNIST-style IDX files, plain or gzipped.
 *
 * Layout: magic 00 00 <type> <ndim>, ndim big-endian 32-bit sizes, then the
 * elements in C order. Images are ubyte N x rows x columns, labels ubyte N.
 * The header is validated against the data that follows before anything is
 * allocated, and the bytes are kept as they are: 60000 Fashion-MNIST images
 * take 47 MB, not the 188 MB of float32. */
#include "dataset_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#ifdef CNN_HAVE_ZLIB
#include <zlib.h>
#endif

#define IDX_CLASSES 10

static const char *const fashion_names[IDX_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

typedef struct {
    const char *path;
    FILE *fp;
#ifdef CNN_HAVE_ZLIB
    gzFile gz;
#endif
    int64_t file_size; /* plain files only; -1 for gzip */
    int64_t gz_size;   /* gzip: the compressed size */
} stream;

/* deflate expands data at most 1032 times (258-byte matches coded in 2
 * bits), so a gzip file of n bytes decompresses to at most this; a header
 * declaring more is a lie, caught before its size is allocated. */
#define GZ_MAX_RATIO 1032

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static cnn_status stream_open(stream *s, const char *path, cnn_err *e)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    s->file_size = -1;
    if (ends_with(path, ".gz")) {
#ifdef CNN_HAVE_ZLIB
        struct stat gst;
        if (stat(path, &gst) != 0 || !S_ISREG(gst.st_mode))
            return cnni_fail(e, CNN_ERR_IO, "%s: not a regular file", path);
        s->gz_size = (int64_t)gst.st_size;
        errno = 0;
        s->gz = gzopen(path, "rb");
        if (!s->gz)
            return cnni_fail(e, errno ? CNN_ERR_IO : CNN_ERR_NOMEM, "%s: cannot open: %s", path,
                             errno ? strerror(errno) : "out of memory");
        gzbuffer(s->gz, 1 << 17);
        return CNN_OK;
#else
        return cnni_fail(e, CNN_ERR_UNSUPPORTED,
                         "%s: cnn was built without zlib, so gzipped files cannot be read "
                         "(gunzip the file, or rebuild cnn with zlib installed)",
                         path);
#endif
    }
    s->fp = fopen(path, "rb");
    if (!s->fp)
        return cnni_fail(e, CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(s->fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(s->fp);
        s->fp = NULL;
        return cnni_fail(e, CNN_ERR_IO, "%s: not a regular file", path);
    }
    s->file_size = (int64_t)st.st_size;
    return CNN_OK;
}

static void stream_close(stream *s)
{
    if (s->fp)
        fclose(s->fp);
#ifdef CNN_HAVE_ZLIB
    if (s->gz)
        gzclose(s->gz);
#endif
    memset(s, 0, sizeof *s);
}

/* Reads up to n bytes into buf; *got receives how many arrived before the
 * end of the data. A read or decompression error fails. */
static cnn_status stream_read(stream *s, void *buf, int64_t n, int64_t *got, cnn_err *e)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        int64_t want = n - *got;
        if (want > (1 << 30))
            want = 1 << 30;
#ifdef CNN_HAVE_ZLIB
        if (s->gz) {
            int r = gzread(s->gz, p + *got, (unsigned)want);
            int errnum = Z_OK;
            const char *zmsg = gzerror(s->gz, &errnum);
            /* zlib reports a stream that stops early as Z_BUF_ERROR: that is
             * a truncated file, which the caller describes with the counts. */
            if (errnum != Z_OK && errnum != Z_BUF_ERROR)
                return cnni_fail(e, errnum == Z_MEM_ERROR ? CNN_ERR_NOMEM : CNN_ERR_FORMAT,
                                 "%s: gzip data is corrupt: %s", s->path,
                                 errnum == Z_ERRNO ? strerror(errno) : zmsg);
            if (r <= 0)
                return CNN_OK;
            *got += r;
            continue;
        }
#endif
        size_t r = fread(p + *got, 1, (size_t)want, s->fp);
        if (r == 0) {
            if (ferror(s->fp))
                return cnni_fail(e, CNN_ERR_IO, "%s: read error: %s", s->path, strerror(errno));
            return CNN_OK;
        }
        *got += (int64_t)r;
    }
    return CNN_OK;
}

typedef struct {
    int ndim;
    int64_t dims[3];
    int64_t data_bytes;
} idx_header;

static const char *type_name(int code, int *size)
{
    switch (code) {
    case 0x08: *size = 1; return "unsigned byte";
    case 0x09: *size = 1; return "signed byte";
    case 0x0B: *size = 2; return "int16";
    case 0x0C: *size = 4; return "int32";
    case 0x0D: *size = 4; return "float32";
    case 0x0E: *size = 8; return "float64";
    }
    *size = 0;
    return NULL;
}

/* Reads and validates the header of an IDX file of want_ndim dimensions
 * holding unsigned bytes. what names the contents ("images", "labels") and
 * layout its dimensions, for messages. */
static cnn_status read_header(stream *s, int want_ndim, const char *what, const char *layout,
                              idx_header *h, cnn_err *e)
{
    unsigned char m[4 + 4 * 3];
    int64_t got;
    cnn_status st = stream_read(s, m, 4, &got, e);
    if (st)
        return st;
    if (got < 4)
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: %lld bytes is too short for an IDX file (expected a 4-byte magic "
                         "number 00 00 08 %02x)",
                         s->path, (long long)got, want_ndim);
    if (m[0] != 0 || m[1] != 0) {
        int gz = m[0] == 0x1f && m[1] == 0x8b;
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: not an IDX file: magic number %02x %02x %02x %02x (expected 00 00 08 "
                         "%02x)%s",
                         s->path, m[0], m[1], m[2], m[3], want_ndim,
                         gz ? "; the file is gzipped, so its name should end in .gz" : "");
    }
    int esize;
    const char *tname = type_name(m[2], &esize);
    if (!tname)
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: unknown IDX element type code 0x%02x (expected 0x08 unsigned byte; "
                         "IDX defines 0x08, 0x09, 0x0B, 0x0C, 0x0D and 0x0E)",
                         s->path, m[2]);
    if (m[3] != want_ndim)
        return cnni_fail(e, CNN_ERR_FORMAT, "%s: IDX %s file has %d dimensions (expected %d: %s)",
                         s->path, what, m[3], want_ndim, layout);
    st = stream_read(s, m + 4, 4 * want_ndim, &got, e);
    if (st)
        return st;
    if (got < 4 * want_ndim)
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: IDX header truncated: %lld of the %d bytes of dimension sizes",
                         s->path, (long long)got, 4 * want_ndim);
    h->ndim = want_ndim;
    int64_t total = esize;
    int overflow = 0;
    char dims[96] = "";
    size_t used = 0;
    for (int i = 0; i < want_ndim; i++) {
        const unsigned char *b = m + 4 + 4 * i;
        h->dims[i] = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | b[3];
        if (!cnni_mul_ok(total, h->dims[i], &total))
            overflow = 1;
        used += (size_t)snprintf(dims + used, sizeof dims - used, i ? " x %lld" : "%lld",
                                 (long long)h->dims[i]);
    }
    if (h->dims[0] == 0)
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: IDX header declares 0 %s (expected at least one: a data set "
                         "cannot be empty)",
                         s->path, what);
    for (int i = 1; i < want_ndim; i++)
        if (h->dims[i] == 0)
            return cnni_fail(e, CNN_ERR_FORMAT, "%s: IDX header declares %s %s of size 0 (%s)",
                             s->path, what, dims, layout);
    if (overflow || total > CNNI_DS_MAX_DECODED)
        return cnni_fail(e, CNN_ERR_OVERFLOW,
                         "%s: IDX header declares %s %s of %s, more than the %lld-byte (4 GiB) "
                         "limit",
                         s->path, dims, what, tname, (long long)CNNI_DS_MAX_DECODED);
    if (s->file_size >= 0) {
        int64_t header = 4 + 4 * want_ndim;
        int64_t have = s->file_size - header;
        if (have != total)
            return cnni_fail(e, CNN_ERR_FORMAT,
                             "%s: IDX header declares %s %s of %s (%lld bytes) after the %lld-byte "
                             "header, but the file holds %lld (%s)",
                             s->path, dims, what, tname, (long long)total, (long long)header,
                             (long long)have,
                             have < total ? "truncated" : "extra bytes at the end");
    }
    if (s->file_size < 0 && total / GZ_MAX_RATIO > s->gz_size)
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: IDX header declares %s %s of %s (%lld bytes), more than a gzip file "
                         "of %lld bytes can hold (truncated or corrupt)",
                         s->path, dims, what, tname, (long long)total, (long long)s->gz_size);
    if (m[2] != 0x08)
        return cnni_fail(e, CNN_ERR_UNSUPPORTED,
                         "%s: IDX %s of type 0x%02x (%s) are not supported (expected 0x08, "
                         "unsigned byte)",
                         s->path, what, m[2], tname);
    h->data_bytes = total;
    return CNN_OK;
}

/* Reads exactly h->data_bytes into buf and checks nothing follows (only
 * gzip needs this: a plain file's size was checked against the header). */
static cnn_status read_data(stream *s, const idx_header *h, const char *what, void *buf,
                            cnn_err *e)
{
    int64_t got;
    cnn_status st = stream_read(s, buf, h->data_bytes, &got, e);
    if (st)
        return st;
    if (got < h->data_bytes)
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: IDX header declares %lld bytes of %s but the data ends after %lld "
                         "(truncated)",
                         s->path, (long long)h->data_bytes, what, (long long)got);
    if (s->file_size < 0) {
        unsigned char extra[1];
        st = stream_read(s, extra, 1, &got, e);
        if (st)
            return st;
        if (got)
            return cnni_fail(e, CNN_ERR_FORMAT,
                             "%s: data continues after the %lld bytes of %s the IDX header "
                             "declares (expected the end of the file)",
                             s->path, (long long)h->data_bytes, what);
    }
    return CNN_OK;
}

/* The path of dir/name, or else of dir/name.gz (a plain file is preferred:
 * it reads faster); NULL if neither exists or out of memory (*oom tells
 * which). */
static char *find_file(const char *dir, const char *name, int *oom)
{
    char gz[96];
    snprintf(gz, sizeof gz, "%s.gz", name);
    const char *names[2] = {name, gz};
    *oom = 0;
    for (int i = 0; i < 2; i++) {
        char *p = cnni_path_join(dir, names[i]);
        if (!p) {
            *oom = 1;
            return NULL;
        }
        if (cnni_is_file(p))
            return p;
        cnni_free(p);
    }
    return NULL;
}

static const char *split_prefix(int split) { return split == CNN_SPLIT_TEST ? "t10k" : "train"; }

int cnni_idx_has_split(const char *dir, int split)
{
    char name[64], gz[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split_prefix(split));
    snprintf(gz, sizeof gz, "%s.gz", name);
    return cnni_exists_in(dir, name, 0) || cnni_exists_in(dir, gz, 0);
}

int cnni_idx_detect(const char *dir)
{
    return cnni_idx_has_split(dir, CNN_SPLIT_TRAIN) || cnni_idx_has_split(dir, CNN_SPLIT_TEST);
}

static cnn_status load_images(cnni_ds *d, const char *path, cnn_err *e)
{
    stream s;
    idx_header h;
    cnn_status st = stream_open(&s, path, e);
    if (st)
        return st;
    st = read_header(&s, 3, "images", "count x rows x columns", &h, e);
    if (!st) {
        d->x = cnni_amalloc_large((size_t)h.data_bytes);
        if (!d->x)
            st = cnni_fail(e, CNN_ERR_NOMEM, "%s: out of memory for %lld bytes of images", path,
                           (long long)h.data_bytes);
    }
    if (!st)
        st = read_data(&s, &h, "images", d->x, e);
    stream_close(&s);
    if (st)
        return st;
    d->n = h.dims[0];
    d->x_dtype = CNN_U8;
    d->x_shape.ndim = 3;
    d->x_shape.dims[0] = 1;
    d->x_shape.dims[1] = h.dims[1];
    d->x_shape.dims[2] = h.dims[2];
    d->x_numel = h.dims[1] * h.dims[2];
    return CNN_OK;
}

static cnn_status load_labels(cnni_ds *d, const char *path, const char *images_path,
                              cnn_err *e)
{
    stream s;
    idx_header h;
    uint8_t *raw = NULL;
    cnn_status st = stream_open(&s, path, e);
    if (st)
        return st;
    st = read_header(&s, 1, "labels", "the label count", &h, e);
    if (!st && h.dims[0] != d->n)
        st = cnni_fail(e, CNN_ERR_FORMAT, "%s: %lld labels, but %s holds %lld images (expected "
                       "one label per image)",
                       path, (long long)h.dims[0], images_path, (long long)d->n);
    if (!st) {
        raw = cnni_malloc((size_t)h.data_bytes);
        d->y = cnni_amalloc_large((size_t)h.data_bytes * sizeof(int64_t));
        if (!raw || !d->y)
            st = cnni_fail(e, CNN_ERR_NOMEM, "%s: out of memory for %lld labels", path,
                           (long long)h.dims[0]);
    }
    if (!st)
        st = read_data(&s, &h, "labels", raw, e);
    stream_close(&s);
    for (int64_t i = 0; !st && i < h.dims[0]; i++) {
        if (raw[i] >= IDX_CLASSES)
            st = cnni_fail(e, CNN_ERR_FORMAT,
                           "%s: label %d at index %lld is out of range (expected 0..%d: "
                           "MNIST-style sets have %d classes)",
                           path, raw[i], (long long)i, IDX_CLASSES - 1, IDX_CLASSES);
        else
            ((int64_t *)d->y)[i] = raw[i];
    }
    cnni_free(raw);
    if (st)
        return st;
    d->y_dtype = CNN_I64;
    d->y_shape.ndim = 0;
    d->y_numel = 1;
    d->classes = IDX_CLASSES;
    return CNN_OK;
}

static cnn_status set_names(cnni_ds *d, int fashion, cnn_err *e)
{
    d->names = cnni_calloc(IDX_CLASSES, sizeof(char *));
    if (!d->names)
        return cnni_oom(e);
    for (int k = 0; k < IDX_CLASSES; k++) {
        char digit[2] = {(char)('0' + k), 0};
        d->names[k] = cnni_strdup(fashion ? fashion_names[k] : digit);
        if (!d->names[k])
            return cnni_oom(e);
    }
    return CNN_OK;
}

cnn_status cnni_idx_load(cnni_ds *d, const char *dir, int split, int fashion, cnn_err *e)
{
    char images_name[64], labels_name[64];
    const char *pre = split_prefix(split);
    snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte", pre);
    snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte", pre);
    int oom;
    char *images = find_file(dir, images_name, &oom);
    if (!images)
        return oom ? cnni_oom(e)
                   : cnni_fail(e, CNN_ERR_NOT_FOUND,
                               "%s: no %s split: expected %s or %s.gz in this folder", dir,
                               split == CNN_SPLIT_TEST ? "test" : "training", images_name,
                               images_name);
    char *labels = find_file(dir, labels_name, &oom);
    if (!labels) {
        cnni_free(images);
        return oom ? cnni_oom(e)
                   : cnni_fail(e, CNN_ERR_NOT_FOUND,
                               "%s: found %s but not its labels: expected %s or %s.gz", dir,
                               images_name, labels_name, labels_name);
    }
    cnn_status st = load_images(d, images, e);
    if (!st)
        st = load_labels(d, labels, images, e);
    if (!st)
        st = set_names(d, fashion, e);
    cnni_free(images);
    cnni_free(labels);
    return st;
}
