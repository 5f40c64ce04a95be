/* A small strict JSON reader (RFC 8259) used for safetensors headers and
 * metrics files, plus an escaping helper for writers. */
#ifndef CNN_JSON_H
#define CNN_JSON_H

#include "../core/internal.h"

typedef enum { CNNI_JNULL, CNNI_JBOOL, CNNI_JNUM, CNNI_JSTR, CNNI_JARR, CNNI_JOBJ } cnni_jtype;

typedef struct cnni_json cnni_json;
struct cnni_json {
    cnni_jtype type;
    int boolean;
    double num;
    int is_int;      /* the number was written as an integer that fits int64 */
    int64_t inum;
    char *str;       /* CNNI_JSTR: decoded UTF-8, NUL-terminated */
    size_t str_len;
    int n;           /* items in an array or object */
    char **keys;     /* object keys */
    cnni_json *items;
};

/* Parses text[0..len). On failure the message gives the byte offset. */
cnn_status cnni_json_parse(const char *text, size_t len, cnni_json *out, cnn_err *e);
void cnni_json_free(cnni_json *j);
/* Member of an object, or NULL. */
const cnni_json *cnni_json_get(const cnni_json *obj, const char *key);

/* Appends s as a JSON string literal (with quotes) to a growable buffer. */
typedef struct cnni_buf {
    char *data;
    size_t len, cap;
    int failed;
} cnni_buf;
void cnni_buf_put(cnni_buf *b, const char *s, size_t n);
void cnni_buf_puts(cnni_buf *b, const char *s);
void cnni_buf_printf(cnni_buf *b, const char *fmt, ...) CNNI_PRINTF(2, 3);
void cnni_buf_json_string(cnni_buf *b, const char *s);
void cnni_buf_free(cnni_buf *b);

#endif
