/* Data set loaders shared by dataset.c (the public cnn_dataset API, format
 * detection, batches), idx.c, cifar.c and image.c. */
#ifndef CNN_DATASET_INTERNAL_H
#define CNN_DATASET_INTERNAL_H

#include "../core/internal.h"

/* Largest decoded size a file's header may declare (IDX data, one PNG or
 * JPEG image). A header is checked against it before anything is
 * allocated, so a corrupt or hostile file cannot ask for terabytes. */
#define CNNI_DS_MAX_DECODED (INT64_C(4) << 30)

/* A loaded data set. Samples stay in the compact form they were read in
 * (bytes for images), and become float32 only when copied into a batch. */
typedef struct cnni_ds {
    int64_t n;          /* samples */
    cnn_shape x_shape;  /* one sample: C x H x W for images */
    int64_t x_numel;
    cnn_dtype x_dtype;  /* CNN_U8 (scaled by 1/255 when copied) or CNN_F32 */
    void *x;            /* n * x_numel elements, cnni_amalloc */
    cnn_shape y_shape;  /* one target: ndim 0 for a class index */
    int64_t y_numel;
    cnn_dtype y_dtype;  /* CNN_I64 or CNN_F32 */
    void *y;            /* n * y_numel elements, cnni_amalloc */
    int64_t classes;    /* CNN_I64 targets: number of classes; 0 otherwise */
    char **names;       /* NULL, or `classes` class names */
    char *source;
} cnni_ds;

void cnni_ds_free(cnni_ds *d);
/* Bytes held for samples and targets. */
int64_t cnni_ds_bytes(const cnni_ds *d);

/* Joins a folder and a name into a new string (cnni_malloc), NULL when
 * out of memory. */
char *cnni_path_join(const char *dir, const char *name);
int cnni_is_dir(const char *path);
int cnni_is_file(const char *path);
/* Whether dir/name is a regular file (is_dir 0) or a folder (is_dir 1).
 * Allocates nothing, so detection cannot fail for lack of memory. */
int cnni_exists_in(const char *dir, const char *name, int is_dir);

/* ---- MNIST-style IDX folders (idx.c) ------------------------------------ */
/* Whether dir holds the images file of split (train-images-idx3-ubyte or
 * t10k-images-idx3-ubyte, optionally .gz). */
int cnni_idx_has_split(const char *dir, int split);
int cnni_idx_detect(const char *dir);
/* Loads split from dir. fashion selects Fashion-MNIST's class names
 * instead of the digits "0".."9". */
cnn_status cnni_idx_load(cnni_ds *d, const char *dir, int split, int fashion, cnn_err *e);

/* ---- CIFAR-10 binary folders (cifar.c) ---------------------------------- */
int cnni_cifar_has_split(const char *dir, int split);
int cnni_cifar_detect(const char *dir);
cnn_status cnni_cifar_load(cnni_ds *d, const char *dir, int split, cnn_err *e);

/* ---- PNG and JPEG (image.c) --------------------------------------------- */
/* A decoded image: c planes (1 grayscale, 3 RGB) of h x w bytes. */
typedef struct cnni_image {
    int64_t c, h, w;
    uint8_t *pix; /* c * h * w bytes, cnni_malloc */
} cnni_image;

enum { CNNI_IMG_NONE = 0, CNNI_IMG_SUPPORTED = 1, CNNI_IMG_UNSUPPORTED = 2 };
/* Classifies a file name by extension as torchvision's ImageFolder does:
 * PNG and JPEG are read; its other image extensions (BMP, TIFF, WebP, PPM,
 * PGM) are images cnn cannot read; anything else is not an image. */
int cnni_image_ext_kind(const char *name);
/* Decodes a PNG or JPEG file (recognised by its first bytes). */
cnn_status cnni_image_decode(const char *path, cnni_image *img, cnn_err *e);
/* Writes c (1 or 3) planes of h x w bytes as an 8-bit PNG, atomically. */
cnn_status cnni_image_write_png(const char *path, const uint8_t *planes, int64_t c, int64_t h,
                                int64_t w, cnn_err *e);

/* ---- the name "fashion-mnist" (dataset.c) ------------------------------- */
#define CNNI_FASHION_SYSTEM_DIR "/usr/share/datasets/fashion-mnist"
#define CNNI_FASHION_SUBSET_DIR "data/fashion-mnist-subset"
/* Resolves the name: env_dir (the value of CNN_FASHION_MNIST_DIR) when set
 * and non-empty, else system_dir when it holds the files, else the subset
 * relative to the working folder, else the subset relative to the running
 * executable (build/cnn or build/tests/x in a checkout). *out is
 * cnni_malloc'd. */
cnn_status cnni_fashion_resolve(const char *env_dir, const char *system_dir, char **out,
                                cnn_err *e);
/* Bytes a loaded handle holds for its samples and targets. */
int64_t cnni_dataset_bytes(const cnn_dataset *ds);

#endif
