/* Strict JSON reader: recursive descent with a depth limit, exact integer
 * parsing, full escape and UTF-8 validation. */
#include "json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, pos;
    cnn_err *e;
} jparser;

static cnn_status jfail(jparser *p, const char *what)
{
    return cnni_fail(p->e, CNN_ERR_FORMAT, "invalid JSON at byte %zu: %s", p->pos, what);
}

static void skip_ws(jparser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            p->pos++;
        else
            break;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int put_utf8(char *out, size_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
    return 1;
}

/* Length of a valid UTF-8 sequence starting at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t k;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
        k = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        k = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        k = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return k;
}

static cnn_status parse_string(jparser *p, char **out, size_t *out_len)
{
    /* p->s[p->pos] == '"' */
    p->pos++;
    size_t start = p->pos;
    /* First pass: find the end and validate, so the buffer size is known. */
    size_t cap = 0;
    size_t i = start;
    while (1) {
        if (i >= p->len)
            return jfail(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[i];
        if (c == '"')
            break;
        if (c < 0x20) {
            p->pos = i;
            return jfail(p, "control character in string");
        }
        if (c == '\\') {
            if (i + 1 >= p->len)
                return jfail(p, "unterminated string");
            i += 2;
            cap += 4;
            continue;
        }
        size_t k = utf8_len((const unsigned char *)p->s + i, p->len - i);
        if (!k) {
            p->pos = i;
            return jfail(p, "invalid UTF-8 in string");
        }
        i += k;
        cap += k;
    }
    char *buf = cnni_malloc(cap + 1);
    if (!buf)
        return cnni_oom(p->e);
    size_t o = 0;
    i = start;
    while (p->s[i] != '"') {
        char c = p->s[i];
        if (c != '\\') {
            buf[o++] = c;
            i++;
            continue;
        }
        char esc = p->s[i + 1];
        i += 2;
        switch (esc) {
        case '"': buf[o++] = '"'; break;
        case '\\': buf[o++] = '\\'; break;
        case '/': buf[o++] = '/'; break;
        case 'b': buf[o++] = '\b'; break;
        case 'f': buf[o++] = '\f'; break;
        case 'n': buf[o++] = '\n'; break;
        case 'r': buf[o++] = '\r'; break;
        case 't': buf[o++] = '\t'; break;
        case 'u': {
            uint32_t cp = 0;
            for (int k = 0; k < 4; k++) {
                int h = (i < p->len) ? hexval(p->s[i]) : -1;
                if (h < 0) {
                    cnni_free(buf);
                    p->pos = i;
                    return jfail(p, "bad \\u escape");
                }
                cp = cp * 16 + (uint32_t)h;
                i++;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = 0;
                int ok = i + 6 <= p->len && p->s[i] == '\\' && p->s[i + 1] == 'u';
                for (int k = 0; ok && k < 4; k++) {
                    int h = hexval(p->s[i + 2 + k]);
                    if (h < 0)
                        ok = 0;
                    else
                        lo = lo * 16 + (uint32_t)h;
                }
                if (!ok || lo < 0xDC00 || lo > 0xDFFF) {
                    cnni_free(buf);
                    p->pos = i;
                    return jfail(p, "unpaired surrogate in \\u escape");
                }
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cnni_free(buf);
                p->pos = i;
                return jfail(p, "unpaired surrogate in \\u escape");
            }
            put_utf8(buf, &o, cp);
            break;
        }
        default:
            cnni_free(buf);
            p->pos = i - 1;
            return jfail(p, "bad escape in string");
        }
    }
    buf[o] = 0;
    p->pos = i + 1;
    *out = buf;
    *out_len = o;
    return CNN_OK;
}

static cnn_status parse_number(jparser *p, cnni_json *v)
{
    size_t start = p->pos, i = p->pos;
    int is_int = 1;
    if (i < p->len && p->s[i] == '-')
        i++;
    if (i >= p->len)
        return jfail(p, "bad number");
    if (p->s[i] == '0') {
        i++;
    } else if (p->s[i] >= '1' && p->s[i] <= '9') {
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    } else {
        return jfail(p, "bad number");
    }
    if (i < p->len && p->s[i] == '.') {
        is_int = 0;
        i++;
        if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
            return jfail(p, "bad number");
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        is_int = 0;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
            i++;
        if (i >= p->len || p->s[i] < '0' || p->s[i] > '9')
            return jfail(p, "bad number");
        while (i < p->len && p->s[i] >= '0' && p->s[i] <= '9')
            i++;
    }
    char tmp[64];
    size_t n = i - start;
    v->type = CNNI_JNUM;
    if (n < sizeof tmp) {
        memcpy(tmp, p->s + start, n);
        tmp[n] = 0;
        v->num = strtod(tmp, NULL);
    } else {
        v->num = HUGE_VAL;
    }
    if (is_int) {
        int neg = p->s[start] == '-';
        int64_t acc = 0;
        int ok = 1;
        for (size_t k = start + (size_t)neg; k < i; k++) {
            int d = p->s[k] - '0';
            if (!cnni_mul_ok(acc, 10, &acc) || !cnni_add_ok(acc, neg ? -d : d, &acc)) {
                ok = 0;
                break;
            }
        }
        v->is_int = ok;
        v->inum = ok ? acc : 0;
    }
    p->pos = i;
    return CNN_OK;
}

static cnn_status parse_value(jparser *p, cnni_json *v, int depth);

static cnn_status parse_container(jparser *p, cnni_json *v, int depth, int is_obj)
{
    char close = is_obj ? '}' : ']';
    int cap = 0;
    v->type = is_obj ? CNNI_JOBJ : CNNI_JARR;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return CNN_OK;
    }
    while (1) {
        skip_ws(p);
        int icap = cap;
        if (!cnni_grow((void **)&v->items, &icap, v->n + 1, sizeof(cnni_json)))
            return cnni_oom(p->e);
        if (is_obj) {
            int kcap = cap;
            if (!cnni_grow((void **)&v->keys, &kcap, v->n + 1, sizeof(char *)))
                return cnni_oom(p->e);
        }
        cap = icap;
        cnni_json *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        if (is_obj) {
            v->keys[v->n] = NULL;
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return jfail(p, "expected a string key");
            size_t klen;
            cnn_status st = parse_string(p, &v->keys[v->n], &klen);
            if (st) {
                v->keys[v->n] = NULL;
                return st;
            }
            v->n++; /* counted now so the key is freed on failure */
            if (strlen(v->keys[v->n - 1]) != klen)
                return jfail(p, "NUL character in key");
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return jfail(p, "expected ':'");
            p->pos++;
            cnn_status st2 = parse_value(p, item, depth + 1);
            if (st2)
                return st2;
        } else {
            v->n++;
            cnn_status st = parse_value(p, item, depth + 1);
            if (st)
                return st;
        }
        skip_ws(p);
        if (p->pos >= p->len)
            return jfail(p, "unexpected end");
        char c = p->s[p->pos];
        if (c == ',') {
            p->pos++;
            continue;
        }
        if (c == close) {
            p->pos++;
            return CNN_OK;
        }
        return jfail(p, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static cnn_status parse_value(jparser *p, cnni_json *v, int depth)
{
    if (depth > MAX_DEPTH)
        return jfail(p, "nested too deeply");
    skip_ws(p);
    if (p->pos >= p->len)
        return jfail(p, "unexpected end");
    char c = p->s[p->pos];
    if (c == '{' || c == '[')
        return parse_container(p, v, depth, c == '{');
    if (c == '"') {
        v->type = CNNI_JSTR;
        return parse_string(p, &v->str, &v->str_len);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return parse_number(p, v);
    static const struct {
        const char *word;
        cnni_jtype t;
        int b;
    } words[] = {{"true", CNNI_JBOOL, 1}, {"false", CNNI_JBOOL, 0}, {"null", CNNI_JNULL, 0}};
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(words[k].word);
        if (p->len - p->pos >= n && memcmp(p->s + p->pos, words[k].word, n) == 0) {
            v->type = words[k].t;
            v->boolean = words[k].b;
            p->pos += n;
            return CNN_OK;
        }
    }
    return jfail(p, "unexpected character");
}

cnn_status cnni_json_parse(const char *text, size_t len, cnni_json *out, cnn_err *e)
{
    jparser p = {text, len, 0, e};
    memset(out, 0, sizeof *out);
    cnn_status st = parse_value(&p, out, 0);
    if (!st) {
        skip_ws(&p);
        if (p.pos != len)
            st = jfail(&p, "trailing characters after the value");
    }
    if (st)
        cnni_json_free(out);
    return st;
}

void cnni_json_free(cnni_json *j)
{
    if (!j)
        return;
    for (int i = 0; i < j->n; i++) {
        if (j->keys)
            cnni_free(j->keys[i]);
        if (j->items)
            cnni_json_free(&j->items[i]);
    }
    cnni_free(j->keys);
    cnni_free(j->items);
    cnni_free(j->str);
    memset(j, 0, sizeof *j);
}

const cnni_json *cnni_json_get(const cnni_json *obj, const char *key)
{
    if (!obj || obj->type != CNNI_JOBJ)
        return NULL;
    for (int i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

void cnni_buf_put(cnni_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n + 1) {
            if (ncap > ((size_t)1 << 40)) {
                b->failed = 1;
                return;
            }
            ncap *= 2;
        }
        char *d = cnni_realloc(b->data, ncap);
        if (!d) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void cnni_buf_puts(cnni_buf *b, const char *s) { cnni_buf_put(b, s, strlen(s)); }

void cnni_buf_printf(cnni_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        cnni_buf_put(b, tmp, (size_t)n);
        return;
    }
    char *big = cnni_malloc((size_t)n + 1);
    if (!big) {
        b->failed = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    cnni_buf_put(b, big, (size_t)n);
    cnni_free(big);
}

void cnni_buf_json_string(cnni_buf *b, const char *s)
{
    cnni_buf_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        switch (*c) {
        case '"': cnni_buf_put(b, "\\\"", 2); break;
        case '\\': cnni_buf_put(b, "\\\\", 2); break;
        case '\n': cnni_buf_put(b, "\\n", 2); break;
        case '\r': cnni_buf_put(b, "\\r", 2); break;
        case '\t': cnni_buf_put(b, "\\t", 2); break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                cnni_buf_put(b, esc, 6);
            } else {
                cnni_buf_put(b, (const char *)c, 1);
            }
        }
    }
    cnni_buf_put(b, "\"", 1);
}

void cnni_buf_free(cnni_buf *b)
{
    cnni_free(b->data);
    memset(b, 0, sizeof *b);
}
