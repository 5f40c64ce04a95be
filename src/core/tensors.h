/* The named tensor collection behind cnn_tensors (public handle). */
#ifndef CNN_TENSORS_H
#define CNN_TENSORS_H

#include "internal.h"

typedef struct cnni_named {
    char *name;
    cnn_dtype dtype;
    cnn_shape shape;
    void *data; /* 64-byte aligned, nbytes long */
    size_t nbytes;
} cnni_named;

struct cnn_tensors {
    cnni_named *t;
    int n, cap;
    char **meta_key, **meta_val;
    int nmeta, meta_cap;
    cnn_err err;
};

/* Appends a tensor without copying: takes ownership of name and data. */
cnn_status cnni_tensors_adopt(cnn_tensors *ts, char *name, cnn_dtype dtype, const cnn_shape *shape,
                              void *data, size_t nbytes);

#endif
