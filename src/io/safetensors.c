/* safetensors reading and writing.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "value"}}, then the data, little-endian, C order.
 * Offsets are relative to the start of the data. A valid file indexes every
 * data byte exactly once: sorted by offset, each tensor starts where the
 * previous ended, and the last ends at the end of the file. */
#include "../core/tensors.h"
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_HEADER ((uint64_t)100000000)
#define MAX_META 10000

static const struct {
    const char *name;
    cnn_dtype dtype;
} dtype_names[] = {{"F32", CNN_F32}, {"I64", CNN_I64}, {"F64", CNN_F64}, {"I32", CNN_I32},
                   {"U8", CNN_U8},   {"F16", CNN_F16}, {"BF16", CNN_BF16}};

static const char *known_unsupported[] = {"BOOL", "I8", "I16", "U16", "U32", "U64", "F8_E5M2", "F8_E4M3"};

typedef struct {
    const char *name; /* points into the parsed JSON */
    cnn_dtype dtype;
    cnn_shape shape;
    uint64_t begin, end;
} entry;

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* Validates the header against a data section of data_len bytes and fills
 * entries (in header order) and the metadata of ts. */
static cnn_status parse_header(const char *fname, const char *hdr, size_t hlen, uint64_t data_len,
                               cnni_json *root, entry **out_entries, int *out_n, cnn_tensors *ts)
{
    cnn_err *e = &ts->err;
    *out_entries = NULL;
    *out_n = 0;
    if (hlen == 0 || hdr[0] != '{')
        return cnni_fail(e, CNN_ERR_FORMAT, "%s: safetensors header does not start with '{'", fname);
    cnn_status st = cnni_json_parse(hdr, hlen, root, e);
    if (st) {
        cnni_err_prefix(e, "%s: safetensors header", fname);
        return st == CNN_ERR_NOMEM ? st : CNN_ERR_FORMAT;
    }
    if (root->type != CNNI_JOBJ)
        return cnni_fail(e, CNN_ERR_FORMAT, "%s: safetensors header is not a JSON object", fname);
    /* Duplicates are found by sorting the names: comparing every pair takes
     * minutes for the 100000 names of a 5 MB header. */
    const char **names = cnni_malloc(sizeof(char *) * ((size_t)root->n + 1));
    if (!names)
        return cnni_oom(e);
    for (int i = 0; i < root->n; i++)
        names[i] = root->keys[i];
    qsort(names, (size_t)root->n, sizeof(char *), cmp_name);
    for (int i = 1; i < root->n; i++)
        if (strcmp(names[i], names[i - 1]) == 0) {
            st = cnni_fail(e, CNN_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", fname,
                           names[i]);
            cnni_free(names);
            return st;
        }
    cnni_free(names);
    entry *ents = cnni_calloc((size_t)root->n + 1, sizeof(entry));
    if (!ents)
        return cnni_oom(e);
    int n = 0;
    for (int i = 0; i < root->n; i++) {
        const char *key = root->keys[i];
        const cnni_json *v = &root->items[i];
        if (strcmp(key, "__metadata__") == 0) {
            if (v->type != CNNI_JOBJ) {
                cnni_free(ents);
                return cnni_fail(e, CNN_ERR_FORMAT, "%s: __metadata__ is not an object", fname);
            }
            /* Each entry is looked up among the previous ones: a bound keeps
             * that from taking hours on a hostile header. */
            if (v->n > MAX_META) {
                cnni_free(ents);
                return cnni_fail(e, CNN_ERR_FORMAT,
                                 "%s: __metadata__ has %d entries (at most %d are read)", fname,
                                 v->n, MAX_META);
            }
            for (int k = 0; k < v->n; k++) {
                if (v->items[k].type != CNNI_JSTR) {
                    cnni_free(ents);
                    return cnni_fail(e, CNN_ERR_FORMAT,
                                     "%s: __metadata__ value of '%s' is not a string", fname,
                                     v->keys[k]);
                }
                st = cnn_tensors_set_meta(ts, v->keys[k], v->items[k].str);
                if (st) {
                    cnni_free(ents);
                    return st;
                }
            }
            continue;
        }
        if (v->type != CNNI_JOBJ) {
            cnni_free(ents);
            return cnni_fail(e, CNN_ERR_FORMAT, "%s: tensor '%s': entry is not an object", fname, key);
        }
        const cnni_json *jd = cnni_json_get(v, "dtype");
        const cnni_json *js = cnni_json_get(v, "shape");
        const cnni_json *jo = cnni_json_get(v, "data_offsets");
        const char *problem = NULL;
        if (!jd || jd->type != CNNI_JSTR)
            problem = "missing or non-string \"dtype\"";
        else if (!js || js->type != CNNI_JARR)
            problem = "missing or non-array \"shape\"";
        else if (!jo || jo->type != CNNI_JARR || jo->n != 2)
            problem = "\"data_offsets\" is not an array of two integers";
        else if (v->n != 3)
            problem = "unexpected field (only dtype, shape and data_offsets are allowed)";
        if (problem) {
            cnni_free(ents);
            return cnni_fail(e, CNN_ERR_FORMAT, "%s: tensor '%s': %s", fname, key, problem);
        }
        entry *en = &ents[n];
        en->name = key;
        int found = 0;
        for (size_t k = 0; k < sizeof dtype_names / sizeof dtype_names[0]; k++)
            if (strcmp(jd->str, dtype_names[k].name) == 0) {
                en->dtype = dtype_names[k].dtype;
                found = 1;
            }
        if (!found) {
            int known = 0;
            for (size_t k = 0; k < sizeof known_unsupported / sizeof known_unsupported[0]; k++)
                if (strcmp(jd->str, known_unsupported[k]) == 0)
                    known = 1;
            cnni_free(ents);
            return cnni_fail(e, known ? CNN_ERR_UNSUPPORTED : CNN_ERR_FORMAT,
                             "%s: tensor '%s': dtype \"%.40s\" is %s (F32, F64, F16, BF16, I64, I32 "
                             "and U8 are read)",
                             fname, key, jd->str, known ? "not supported" : "unknown");
        }
        if (js->n > CNN_MAX_DIMS) {
            cnni_free(ents);
            return cnni_fail(e, CNN_ERR_FORMAT, "%s: tensor '%s': %d dimensions (at most %d)", fname,
                             key, js->n, CNN_MAX_DIMS);
        }
        en->shape.ndim = js->n;
        for (int d = 0; d < js->n; d++) {
            const cnni_json *x = &js->items[d];
            if (x->type != CNNI_JNUM || !x->is_int || x->inum < 0) {
                cnni_free(ents);
                return cnni_fail(e, CNN_ERR_FORMAT,
                                 "%s: tensor '%s': shape entry %d is not a non-negative integer",
                                 fname, key, d);
            }
            en->shape.dims[d] = x->inum;
        }
        for (int d = 0; d < 2; d++) {
            const cnni_json *x = &jo->items[d];
            if (x->type != CNNI_JNUM || !x->is_int || x->inum < 0) {
                cnni_free(ents);
                return cnni_fail(e, CNN_ERR_FORMAT,
                                 "%s: tensor '%s': data_offsets are not non-negative integers", fname,
                                 key);
            }
        }
        en->begin = (uint64_t)jo->items[0].inum;
        en->end = (uint64_t)jo->items[1].inum;
        int64_t numel;
        st = cnni_shape_numel(&en->shape, &numel, e, key);
        if (st) {
            cnni_free(ents);
            cnni_err_prefix(e, "%s: tensor '%s'", fname, key);
            return st;
        }
        uint64_t nbytes = (uint64_t)numel * cnni_dtype_size(en->dtype);
        if (en->end < en->begin || en->end - en->begin != nbytes) {
            char sb[128];
            /* en points into ents: the message is made before ents is freed. */
            st = cnni_fail(e, CNN_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu] cover %lld bytes but %s "
                           "shape %s needs %llu",
                           fname, key, (unsigned long long)en->begin, (unsigned long long)en->end,
                           en->end >= en->begin ? (long long)(en->end - en->begin) : -1LL,
                           cnn_dtype_name(en->dtype), cnni_shape_str(&en->shape, sb, sizeof sb),
                           (unsigned long long)nbytes);
            cnni_free(ents);
            return st;
        }
        n++;
    }
    /* Every data byte is used exactly once. */
    entry *sorted = cnni_malloc(sizeof(entry) * ((size_t)n + 1));
    if (!sorted) {
        cnni_free(ents);
        return cnni_oom(e);
    }
    memcpy(sorted, ents, sizeof(entry) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(entry), cmp_entry);
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (sorted[i].begin != pos) {
            const char *msg = sorted[i].begin < pos ? "overlaps the previous tensor"
                                                    : "leaves a gap after the previous tensor";
            st = cnni_fail(e, CNN_ERR_FORMAT, "%s: tensor '%s': data starts at byte %llu, which %s "
                           "(expected %llu)",
                           fname, sorted[i].name, (unsigned long long)sorted[i].begin, msg,
                           (unsigned long long)pos);
            cnni_free(sorted);
            cnni_free(ents);
            return st;
        }
        pos = sorted[i].end;
    }
    cnni_free(sorted);
    if (pos != data_len) {
        cnni_free(ents);
        return cnni_fail(e, CNN_ERR_FORMAT,
                         "%s: the tensors cover %llu data bytes but the file holds %llu after the "
                         "header%s",
                         fname, (unsigned long long)pos, (unsigned long long)data_len,
                         pos > data_len ? " (file truncated?)" : "");
    }
    *out_entries = ents;
    *out_n = n;
    return CNN_OK;
}

typedef struct {
    const unsigned char *mem; /* either a buffer ... */
    FILE *fp;                 /* ... or a file positioned at the data start */
    uint64_t data_start;
} source;

static cnn_status read_at(source *src, uint64_t off, void *dst, size_t n, const char *fname,
                          cnn_err *e)
{
    if (n == 0)
        return CNN_OK;
    if (src->mem) {
        memcpy(dst, src->mem + src->data_start + off, n);
        return CNN_OK;
    }
    if (fseeko(src->fp, (off_t)(src->data_start + off), SEEK_SET) != 0 ||
        fread(dst, 1, n, src->fp) != n)
        return cnni_fail(e, CNN_ERR_IO, "%s: cannot read tensor data: %s", fname,
                         ferror(src->fp) ? strerror(errno) : "unexpected end of file");
    return CNN_OK;
}

static cnn_status load_common(cnn_tensors *ts, source *src, const char *hdr, size_t hlen,
                              uint64_t data_len, const char *fname)
{
    cnn_tensors_clear(ts);
    cnni_json root;
    entry *ents = NULL;
    int n = 0;
    memset(&root, 0, sizeof root);
    cnn_status st = parse_header(fname, hdr, hlen, data_len, &root, &ents, &n, ts);
    for (int i = 0; !st && i < n; i++) {
        size_t nbytes = (size_t)(ents[i].end - ents[i].begin);
        char *nm = cnni_strdup(ents[i].name);
        void *buf = cnni_amalloc(nbytes);
        if (!nm || !buf) {
            cnni_free(nm);
            cnni_afree(buf);
            st = cnni_fail(&ts->err, CNN_ERR_NOMEM, "%s: out of memory for tensor '%s' (%zu bytes)",
                           fname, ents[i].name, nbytes);
            break;
        }
        st = read_at(src, ents[i].begin, buf, nbytes, fname, &ts->err);
        if (!st)
            st = cnni_tensors_adopt(ts, nm, ents[i].dtype, &ents[i].shape, buf, nbytes);
        if (st) {
            cnni_free(nm);
            cnni_afree(buf);
        }
    }
    cnni_free(ents);
    cnni_json_free(&root);
    if (st) {
        cnn_err saved = ts->err;
        cnn_tensors_clear(ts);
        ts->err = saved;
    }
    return st;
}

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

cnn_status cnn_tensors_load_buffer(cnn_tensors *ts, const void *buf, size_t len, const char *name)
{
    if (!ts)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&ts->err);
    const char *fname = name ? name : "<buffer>";
    if (!buf && len)
        return cnni_fail(&ts->err, CNN_ERR_ARGUMENT, "cnn_tensors_load_buffer: NULL buffer");
    const unsigned char *b = buf;
    if (len < 8)
        return cnni_fail(&ts->err, CNN_ERR_FORMAT,
                         "%s: %zu bytes is too short for a safetensors file (8-byte header length)",
                         fname, len);
    uint64_t hlen = le64(b);
    if (hlen > MAX_HEADER || hlen > len - 8)
        return cnni_fail(&ts->err, CNN_ERR_FORMAT,
                         "%s: safetensors header length %llu exceeds the %s (%llu bytes)", fname,
                         (unsigned long long)hlen, hlen > MAX_HEADER ? "limit" : "file",
                         hlen > MAX_HEADER ? (unsigned long long)MAX_HEADER
                                           : (unsigned long long)(len - 8));
    source src = {b, NULL, 8 + hlen};
    return load_common(ts, &src, (const char *)b + 8, (size_t)hlen, len - 8 - hlen, fname);
}

cnn_status cnn_tensors_load(cnn_tensors *ts, const char *path)
{
    if (!ts)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&ts->err);
    if (!path)
        return cnni_fail(&ts->err, CNN_ERR_ARGUMENT, "cnn_tensors_load: NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return cnni_fail(&ts->err, CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat stt;
    if (fstat(fileno(fp), &stt) != 0 || !S_ISREG(stt.st_mode)) {
        fclose(fp);
        return cnni_fail(&ts->err, CNN_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t flen = (uint64_t)stt.st_size;
    unsigned char lenbuf[8];
    if (flen < 8 || fread(lenbuf, 1, 8, fp) != 8) {
        fclose(fp);
        return cnni_fail(&ts->err, CNN_ERR_FORMAT,
                         "%s: %llu bytes is too short for a safetensors file (8-byte header length)",
                         path, (unsigned long long)flen);
    }
    uint64_t hlen = le64(lenbuf);
    if (hlen > MAX_HEADER || hlen > flen - 8) {
        fclose(fp);
        return cnni_fail(&ts->err, CNN_ERR_FORMAT,
                         "%s: safetensors header length %llu exceeds the %s (%llu bytes)", path,
                         (unsigned long long)hlen, hlen > MAX_HEADER ? "limit" : "file",
                         hlen > MAX_HEADER ? (unsigned long long)MAX_HEADER
                                           : (unsigned long long)(flen - 8));
    }
    char *hdr = cnni_malloc((size_t)hlen + 1);
    if (!hdr) {
        fclose(fp);
        return cnni_oom(&ts->err);
    }
    if (hlen && fread(hdr, 1, (size_t)hlen, fp) != hlen) {
        cnni_free(hdr);
        fclose(fp);
        return cnni_fail(&ts->err, CNN_ERR_IO, "%s: cannot read the header", path);
    }
    hdr[hlen] = 0;
    source src = {NULL, fp, 8 + hlen};
    cnn_status st = load_common(ts, &src, hdr, (size_t)hlen, flen - 8 - hlen, path);
    cnni_free(hdr);
    fclose(fp);
    return st;
}

static int cmp_for_write(const void *a, const void *b)
{
    const cnni_named *x = *(const cnni_named *const *)a, *y = *(const cnni_named *const *)b;
    size_t ax = cnni_dtype_size(x->dtype), ay = cnni_dtype_size(y->dtype);
    if (ax != ay)
        return ax > ay ? -1 : 1; /* larger alignment first keeps every tensor aligned */
    return strcmp(x->name, y->name);
}

cnn_status cnn_tensors_save(cnn_tensors *ts, const char *path)
{
    if (!ts)
        return CNN_ERR_ARGUMENT;
    cnni_err_clear(&ts->err);
    if (!path)
        return cnni_fail(&ts->err, CNN_ERR_ARGUMENT, "cnn_tensors_save: NULL path");
    const cnni_named **order = cnni_malloc(sizeof(cnni_named *) * ((size_t)ts->n + 1));
    if (!order)
        return cnni_oom(&ts->err);
    for (int i = 0; i < ts->n; i++)
        order[i] = &ts->t[i];
    qsort(order, (size_t)ts->n, sizeof order[0], cmp_for_write);
    cnni_buf h = {0};
    cnni_buf_puts(&h, "{");
    int first = 1;
    if (ts->nmeta) {
        cnni_buf_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < ts->nmeta; i++) {
            if (i)
                cnni_buf_puts(&h, ",");
            cnni_buf_json_string(&h, ts->meta_key[i]);
            cnni_buf_puts(&h, ":");
            cnni_buf_json_string(&h, ts->meta_val[i]);
        }
        cnni_buf_puts(&h, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < ts->n; i++) {
        const cnni_named *t = order[i];
        if (!first)
            cnni_buf_puts(&h, ",");
        first = 0;
        cnni_buf_json_string(&h, t->name);
        cnni_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", cnn_dtype_name(t->dtype));
        for (int d = 0; d < t->shape.ndim; d++)
            cnni_buf_printf(&h, d ? ",%lld" : "%lld", (long long)t->shape.dims[d]);
        cnni_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                        (unsigned long long)(off + t->nbytes));
        off += t->nbytes;
    }
    cnni_buf_puts(&h, "}");
    while (!h.failed && h.len % 8 != 0)
        cnni_buf_puts(&h, " ");
    if (h.failed) {
        cnni_buf_free(&h);
        cnni_free(order);
        return cnni_oom(&ts->err);
    }
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    cnni_afile f;
    cnn_status st = cnni_afile_open(&f, path, &ts->err);
    if (!st)
        st = cnni_afile_write(&f, lenbuf, 8, &ts->err);
    if (!st)
        st = cnni_afile_write(&f, h.data, h.len, &ts->err);
    for (int i = 0; !st && i < ts->n; i++)
        st = cnni_afile_write(&f, order[i]->data, order[i]->nbytes, &ts->err);
    if (!st)
        st = cnni_afile_commit(&f, &ts->err);
    else if (f.fp)
        cnni_afile_abort(&f);
    if (st && ts->err.msg[0] && !strstr(ts->err.msg, path))
        cnni_err_prefix(&ts->err, "%s", path);
    cnni_buf_free(&h);
    cnni_free(order);
    return st;
}
