/* Lexer and recursive-descent parser for model files (see model_parse.h). */
#include "model_parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena: every AST node lives here and is freed at once ---- */
struct cnni_arena {
    cnni_arena *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

static void *arena_alloc(cnni_arena **a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!*a || (*a)->used + n > (*a)->cap) {
        size_t cap = n > 8192 ? n : 8192;
        cnni_arena *b = cnni_malloc(sizeof(cnni_arena) + cap);
        if (!b)
            return NULL;
        b->next = *a;
        b->used = 0;
        b->cap = cap;
        *a = b;
    }
    void *p = (*a)->data + (*a)->used;
    (*a)->used += n;
    memset(p, 0, n);
    return p;
}

void cnni_model_ast_free(cnni_model_ast *ast)
{
    cnni_arena *a = ast->arena;
    while (a) {
        cnni_arena *next = a->next;
        cnni_free(a);
        a = next;
    }
    memset(ast, 0, sizeof *ast);
}

/* ---- lexer ---- */
typedef enum { T_EOF, T_NEWLINE, T_NAME, T_INT, T_FLOAT, T_STR, T_OP } toktype;

typedef struct {
    toktype type;
    int line, col;
    const char *start;
    size_t len;
    int64_t i;
    double f;
    char *s;   /* T_STR: decoded, in the arena */
    char op;   /* T_OP */
} token;

typedef struct {
    const char *src;
    size_t len, pos;
    int line, col;
    int depth; /* bracket nesting: newlines inside brackets are ignored */
    const char *file;
    cnn_err *e;
    cnni_arena **arena;
    token tok; /* current token */
    int have_tok;
} parser;

static cnn_status perr(parser *p, int line, int col, const char *fmt, ...) CNNI_PRINTF(4, 5);
static cnn_status perr(parser *p, int line, int col, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cnni_fail(p->e, CNN_ERR_PARSE, "%s:%d:%d: %s", p->file, line, col, msg);
}

static void describe_tok(const token *t, char *buf, size_t n)
{
    switch (t->type) {
    case T_EOF: snprintf(buf, n, "end of file"); break;
    case T_NEWLINE: snprintf(buf, n, "end of line"); break;
    case T_STR: snprintf(buf, n, "string '%.*s'", (int)(t->len > 40 ? 40 : t->len), t->start); break;
    default: snprintf(buf, n, "'%.*s'", (int)(t->len > 40 ? 40 : t->len), t->start); break;
    }
}

static char peekc(parser *p, size_t ahead)
{
    return p->pos + ahead < p->len ? p->src[p->pos + ahead] : 0;
}

static void advance(parser *p, size_t n)
{
    for (size_t k = 0; k < n && p->pos < p->len; k++) {
        if (p->src[p->pos] == '\n') {
            p->line++;
            p->col = 1;
        } else {
            p->col++;
        }
        p->pos++;
    }
}

static cnn_status lex(parser *p, token *t)
{
    for (;;) {
        char c = peekc(p, 0);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\f') {
            advance(p, 1);
        } else if (c == '#') {
            while (p->pos < p->len && p->src[p->pos] != '\n')
                advance(p, 1);
        } else if (c == '\\' && (peekc(p, 1) == '\n' || (peekc(p, 1) == '\r' && peekc(p, 2) == '\n'))) {
            advance(p, peekc(p, 1) == '\n' ? 2 : 3); /* explicit line continuation */
        } else if (c == '\n' && p->depth > 0) {
            advance(p, 1);
        } else {
            break;
        }
    }
    memset(t, 0, sizeof *t);
    t->line = p->line;
    t->col = p->col;
    t->start = p->src + p->pos;
    if (p->pos >= p->len) {
        t->type = T_EOF;
        return CNN_OK;
    }
    char c = p->src[p->pos];
    if (c == 0)
        return perr(p, t->line, t->col, "NUL byte in model file");
    if (c == '\n') {
        t->type = T_NEWLINE;
        t->len = 1;
        advance(p, 1);
        return CNN_OK;
    }
    if (isalpha((unsigned char)c) || c == '_') {
        size_t n = 0;
        while (isalnum((unsigned char)peekc(p, n)) || peekc(p, n) == '_')
            n++;
        t->type = T_NAME;
        t->len = n;
        advance(p, n);
        return CNN_OK;
    }
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)peekc(p, 1)))) {
        size_t n = 0;
        int is_float = 0;
        char buf[128];
        size_t b = 0;
        if (c == '0' && (peekc(p, 1) == 'x' || peekc(p, 1) == 'X')) {
            n = 2;
            while (isxdigit((unsigned char)peekc(p, n)) || peekc(p, n) == '_')
                n++;
        } else {
            while (isdigit((unsigned char)peekc(p, n)) || peekc(p, n) == '_')
                n++;
            if (peekc(p, n) == '.') {
                is_float = 1;
                n++;
                while (isdigit((unsigned char)peekc(p, n)) || peekc(p, n) == '_')
                    n++;
            }
            if (peekc(p, n) == 'e' || peekc(p, n) == 'E') {
                size_t m = n + 1;
                if (peekc(p, m) == '+' || peekc(p, m) == '-')
                    m++;
                if (isdigit((unsigned char)peekc(p, m))) {
                    is_float = 1;
                    n = m;
                    while (isdigit((unsigned char)peekc(p, n)))
                        n++;
                }
            }
        }
        if (isalpha((unsigned char)peekc(p, n)) || peekc(p, n) == '_')
            return perr(p, t->line, t->col, "invalid number '%.*s'", (int)(n + 1), t->start);
        for (size_t k = 0; k < n; k++)
            if (t->start[k] != '_' && b + 1 < sizeof buf)
                buf[b++] = t->start[k];
        buf[b] = 0;
        if (b + 1 >= sizeof buf)
            return perr(p, t->line, t->col, "number is too long");
        t->len = n;
        errno = 0;
        if (is_float) {
            t->type = T_FLOAT;
            t->f = strtod(buf, NULL);
        } else {
            t->type = T_INT;
            char *end;
            unsigned long long v = strtoull(buf, &end, 0);
            if (errno == ERANGE || v > (unsigned long long)INT64_MAX || *end)
                return perr(p, t->line, t->col, "integer %s is too large", buf);
            t->i = (int64_t)v;
            t->f = (double)v;
        }
        advance(p, n);
        return CNN_OK;
    }
    if (c == '\'' || c == '"') {
        char q = c;
        size_t n = 1;
        size_t cap = 0;
        while (1) {
            char d = peekc(p, n);
            if (d == 0 || d == '\n')
                return perr(p, t->line, t->col, "unterminated string");
            if (d == q)
                break;
            if (d == '\\') {
                if (peekc(p, n + 1) == 0 || peekc(p, n + 1) == '\n')
                    return perr(p, t->line, t->col, "unterminated string");
                n++;
            }
            n++;
            cap++;
        }
        char *s = arena_alloc(p->arena, cap + 1);
        if (!s)
            return cnni_oom(p->e);
        size_t o = 0;
        for (size_t k = 1; k < n; k++) {
            char d = t->start[k];
            if (d == '\\') {
                char x = t->start[++k];
                d = x == 'n' ? '\n' : x == 't' ? '\t' : x;
            }
            s[o++] = d;
        }
        s[o] = 0;
        t->type = T_STR;
        t->s = s;
        t->len = n + 1;
        advance(p, n + 1);
        return CNN_OK;
    }
    if (c == '/' && peekc(p, 1) == '/') {
        t->type = T_OP;
        t->op = 'd'; /* floor division */
        t->len = 2;
        advance(p, 2);
        return CNN_OK;
    }
    if (strchr("()[],=-+.:*/%", c)) {
        t->type = T_OP;
        t->op = c;
        t->len = 1;
        if (c == '(' || c == '[')
            p->depth++;
        else if ((c == ')' || c == ']') && p->depth > 0)
            p->depth--;
        advance(p, 1);
        return CNN_OK;
    }
    if ((unsigned char)c >= 0x80)
        return perr(p, t->line, t->col, "unexpected non-ASCII character");
    return perr(p, t->line, t->col, "unexpected character '%c'", c);
}

static cnn_status next(parser *p)
{
    p->have_tok = 1;
    return lex(p, &p->tok);
}

static int is_op(const parser *p, char c) { return p->tok.type == T_OP && p->tok.op == c; }

static char *tokstr(parser *p, const token *t)
{
    char *s = arena_alloc(p->arena, t->len + 1);
    if (s) {
        memcpy(s, t->start, t->len);
        s[t->len] = 0;
    }
    return s;
}

/* NAME {"." NAME}: returns the joined dotted name. */
static cnn_status parse_dotted(parser *p, const char **out)
{
    const char *begin = p->tok.start;
    size_t total = p->tok.len;
    cnn_status st = next(p);
    while (!st && is_op(p, '.')) {
        st = next(p);
        if (st)
            return st;
        if (p->tok.type != T_NAME) {
            char d[64];
            describe_tok(&p->tok, d, sizeof d);
            return perr(p, p->tok.line, p->tok.col, "expected a name after '.', found %s", d);
        }
        total = (size_t)(p->tok.start + p->tok.len - begin);
        st = next(p);
    }
    if (st)
        return st;
    token t = {.start = begin, .len = total};
    char *s = tokstr(p, &t);
    if (!s)
        return cnni_oom(p->e);
    /* A name broken across lines or with spaces around dots is still one name. */
    size_t o = 0;
    for (size_t k = 0; s[k]; k++)
        if (!isspace((unsigned char)s[k]))
            s[o++] = s[k];
    s[o] = 0;
    *out = s;
    return CNN_OK;
}

static cnn_status parse_value(parser *p, cnni_value **out, int depth);
static cnn_status parse_atom(parser *p, cnni_value **out, int depth);

static cnn_status parse_args(parser *p, cnni_arg **args, int *nargs, int depth, int oline, int ocol)
{
    /* current token is just after '(' */
    int cap = 0, n = 0;
    cnni_arg *list = NULL;
    cnn_status st = CNN_OK;
    while (!is_op(p, ')')) {
        if (p->tok.type == T_EOF)
            return perr(p, oline, ocol, "'(' is never closed: missing ')'");
        cnni_arg a = {0};
        a.line = p->tok.line;
        a.col = p->tok.col;
        /* keyword argument: NAME '=' (but not NAME '==') */
        if (p->tok.type == T_NAME) {
            parser save = *p;
            token name = p->tok;
            st = next(p);
            if (st)
                return st;
            if (is_op(p, '=')) {
                a.key = tokstr(p, &name);
                if (!a.key)
                    return cnni_oom(p->e);
                st = next(p);
                if (st)
                    return st;
            } else {
                *p = save; /* not a keyword: re-read the name as a value */
            }
        }
        if (!a.key)
            for (int k = 0; k < n; k++)
                if (list[k].key)
                    return perr(p, a.line, a.col, "positional argument follows keyword argument");
        st = parse_value(p, &a.val, depth + 1);
        if (st)
            return st;
        if (n == cap) {
            int ncap = cap ? cap * 2 : 8;
            cnni_arg *nl = arena_alloc(p->arena, sizeof(cnni_arg) * (size_t)ncap);
            if (!nl)
                return cnni_oom(p->e);
            if (n)
                memcpy(nl, list, sizeof(cnni_arg) * (size_t)n);
            list = nl;
            cap = ncap;
        }
        list[n++] = a;
        if (is_op(p, ',')) {
            st = next(p);
            if (st)
                return st;
            continue;
        }
        if (p->tok.type == T_EOF)
            return perr(p, oline, ocol, "'(' is never closed: missing ')'");
        if (!is_op(p, ')')) {
            char d[64];
            describe_tok(&p->tok, d, sizeof d);
            return perr(p, p->tok.line, p->tok.col, "expected ',' or ')' in argument list, found %s",
                        d);
        }
    }
    *args = list;
    *nargs = n;
    return next(p); /* consume ')' */
}

static cnn_status parse_sequence(parser *p, cnni_value *v, char close, int depth)
{
    int cap = 0;
    int trailing_comma = 0;
    cnn_status st;
    while (!is_op(p, close)) {
        if (p->tok.type == T_EOF)
            return perr(p, v->line, v->col, "unexpected end of file: missing '%c'", close);
        cnni_value *item;
        st = parse_value(p, &item, depth + 1);
        if (st)
            return st;
        if (v->n == cap) {
            int ncap = cap ? cap * 2 : 4;
            cnni_value **ni = arena_alloc(p->arena, sizeof(cnni_value *) * (size_t)ncap);
            if (!ni)
                return cnni_oom(p->e);
            if (v->n)
                memcpy(ni, v->items, sizeof(cnni_value *) * (size_t)v->n);
            v->items = ni;
            cap = ncap;
        }
        v->items[v->n++] = item;
        trailing_comma = 0;
        if (is_op(p, ',')) {
            trailing_comma = 1;
            st = next(p);
            if (st)
                return st;
            continue;
        }
        if (!is_op(p, close)) {
            char d[64];
            describe_tok(&p->tok, d, sizeof d);
            return perr(p, p->tok.line, p->tok.col, "expected ',' or '%c', found %s", close, d);
        }
    }
    v->i = trailing_comma; /* remembers "(x,)" */
    return next(p);
}

static cnn_status parse_atom(parser *p, cnni_value **out, int depth)
{
    if (depth > 32)
        return perr(p, p->tok.line, p->tok.col, "expression nested too deeply");
    cnni_value *v = arena_alloc(p->arena, sizeof(cnni_value));
    if (!v)
        return cnni_oom(p->e);
    v->line = p->tok.line;
    v->col = p->tok.col;
    cnn_status st;
    token t = p->tok;
    switch (t.type) {
    case T_INT:
        v->kind = CNNI_V_INT;
        v->i = t.i;
        v->f = t.f;
        *out = v;
        return next(p);
    case T_FLOAT:
        v->kind = CNNI_V_FLOAT;
        v->f = t.f;
        *out = v;
        return next(p);
    case T_STR:
        v->kind = CNNI_V_STR;
        v->s = t.s;
        *out = v;
        return next(p);
    case T_NAME: {
        const char *name = NULL;
        st = parse_dotted(p, &name);
        if (st)
            return st;
        if (strcmp(name, "True") == 0 || strcmp(name, "False") == 0) {
            v->kind = CNNI_V_BOOL;
            v->i = name[0] == 'T';
            v->f = (double)v->i;
        } else if (strcmp(name, "None") == 0) {
            v->kind = CNNI_V_NONE;
        } else if (strcmp(name, "inf") == 0 || strcmp(name, "math.inf") == 0) {
            v->kind = CNNI_V_FLOAT;
            v->f = INFINITY;
        } else if (is_op(p, '(')) {
            v->kind = CNNI_V_CALL;
            v->s = name;
            int oline = p->tok.line, ocol = p->tok.col;
            st = next(p);
            if (st)
                return st;
            st = parse_args(p, &v->args, &v->nargs, depth, oline, ocol);
            if (st)
                return st;
            /* float('inf') and float('nan') are Python's spelling of those values. */
            if (strcmp(name, "float") == 0 && v->nargs == 1 && !v->args[0].key &&
                v->args[0].val->kind == CNNI_V_STR) {
                const char *x = v->args[0].val->s;
                double f;
                if (strcmp(x, "inf") == 0 || strcmp(x, "+inf") == 0)
                    f = INFINITY;
                else if (strcmp(x, "-inf") == 0)
                    f = -INFINITY;
                else if (strcmp(x, "nan") == 0)
                    f = NAN;
                else
                    return perr(p, v->line, v->col, "float('%s') is not a number cnn understands", x);
                v->kind = CNNI_V_FLOAT;
                v->f = f;
                v->nargs = 0;
                v->args = NULL;
            }
        } else {
            v->kind = CNNI_V_NAME;
            v->s = name;
        }
        *out = v;
        return CNN_OK;
    }
    case T_OP:
        if (t.op == '(' || t.op == '[') {
            st = next(p);
            if (st)
                return st;
            v->kind = t.op == '(' ? CNNI_V_TUPLE : CNNI_V_LIST;
            st = parse_sequence(p, v, t.op == '(' ? ')' : ']', depth);
            if (st)
                return st;
            /* "(x)" is x itself; "(x,)" is a 1-tuple. */
            if (v->kind == CNNI_V_TUPLE && v->n == 1 && !v->i) {
                *out = v->items[0];
                return CNN_OK;
            }
            *out = v;
            return CNN_OK;
        }
        break;
    default:
        break;
    }
    char d[64];
    describe_tok(&t, d, sizeof d);
    return perr(p, t.line, t.col, "expected a value, found %s", d);
}

/* Arithmetic on numbers, as Python evaluates it, so that arguments such as
 * "16 * 5 * 5" or "-0.5" written in PyTorch code work unchanged. */
static int is_number(const cnni_value *v) { return v->kind == CNNI_V_INT || v->kind == CNNI_V_FLOAT; }

static cnn_status apply_op(parser *p, char op, int line, int col, cnni_value *a, const cnni_value *b)
{
    if (!is_number(a) || !is_number(b))
        return perr(p, line, col, "'%s' needs numbers on both sides",
                    op == 'd' ? "//" : (char[]){op, 0});
    int ints = a->kind == CNNI_V_INT && b->kind == CNNI_V_INT && op != '/';
    if (ints) {
        int64_t x = a->i, y = b->i, r = 0;
        int ok = 1;
        switch (op) {
        case '+': ok = cnni_add_ok(x, y, &r); break;
        case '-': ok = !__builtin_sub_overflow(x, y, &r); break;
        case '*': ok = cnni_mul_ok(x, y, &r); break;
        case 'd':
        case '%':
            if (y == 0)
                return perr(p, line, col, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) {
                ok = 0;
                break;
            }
            r = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0)))
                r--; /* Python floors */
            if (op == '%')
                r = x - r * y;
            break;
        }
        if (!ok)
            return perr(p, line, col, "integer overflow in arithmetic");
        a->i = r;
        a->f = (double)r;
        return CNN_OK;
    }
    double x = a->f, y = b->f, r = 0;
    switch (op) {
    case '+': r = x + y; break;
    case '-': r = x - y; break;
    case '*': r = x * y; break;
    case '/':
    case 'd':
    case '%':
        if (y == 0)
            return perr(p, line, col, "float division by zero");
        r = op == '/' ? x / y : op == 'd' ? floor(x / y) : x - floor(x / y) * y;
        break;
    }
    a->kind = CNNI_V_FLOAT;
    a->f = r;
    return CNN_OK;
}

static cnn_status parse_unary(parser *p, cnni_value **out, int depth)
{
    if (is_op(p, '-') || is_op(p, '+')) {
        int neg = is_op(p, '-');
        int line = p->tok.line, col = p->tok.col;
        cnn_status st = next(p);
        if (st)
            return st;
        st = parse_unary(p, out, depth + 1);
        if (st)
            return st;
        cnni_value *v = *out;
        if (!is_number(v))
            return perr(p, line, col, "'%c' needs a number", neg ? '-' : '+');
        if (neg) {
            if (v->kind == CNNI_V_INT) {
                if (v->i == INT64_MIN)
                    return perr(p, line, col, "integer overflow in arithmetic");
                v->i = -v->i;
                v->f = (double)v->i;
            } else {
                v->f = -v->f;
            }
        }
        v->line = line;
        v->col = col;
        return CNN_OK;
    }
    if (depth > 32)
        return perr(p, p->tok.line, p->tok.col, "expression nested too deeply");
    return parse_atom(p, out, depth);
}

static cnn_status parse_term(parser *p, cnni_value **out, int depth)
{
    cnn_status st = parse_unary(p, out, depth);
    while (!st && (is_op(p, '*') || is_op(p, '/') || is_op(p, 'd') || is_op(p, '%'))) {
        char op = p->tok.op;
        int line = p->tok.line, col = p->tok.col;
        cnni_value *rhs;
        if ((st = next(p)) || (st = parse_unary(p, &rhs, depth + 1)))
            return st;
        st = apply_op(p, op, line, col, *out, rhs);
    }
    return st;
}

static cnn_status parse_value(parser *p, cnni_value **out, int depth)
{
    if (depth > 32)
        return perr(p, p->tok.line, p->tok.col, "expression nested too deeply");
    cnn_status st = parse_term(p, out, depth);
    while (!st && (is_op(p, '+') || is_op(p, '-'))) {
        char op = p->tok.op;
        int line = p->tok.line, col = p->tok.col;
        cnni_value *rhs;
        if ((st = next(p)) || (st = parse_term(p, &rhs, depth + 1)))
            return st;
        st = apply_op(p, op, line, col, *out, rhs);
    }
    return st;
}

static cnn_status parse_statement(parser *p, cnni_stmt *s)
{
    cnn_status st;
    s->line = p->tok.line;
    s->col = p->tok.col;
    if (p->tok.type != T_NAME) {
        char d[64];
        describe_tok(&p->tok, d, sizeof d);
        return perr(p, p->tok.line, p->tok.col, "expected a module such as Conv2d(...), found %s", d);
    }
    /* Look ahead: "a = ...", "a, b = ..." is the graph form. */
    parser save = *p;
    int is_assign = 0;
    {
        int ok = 1;
        while (ok) {
            if (p->tok.type != T_NAME) {
                ok = 0;
                break;
            }
            if ((st = next(p)))
                return st;
            if (is_op(p, ',')) {
                if ((st = next(p)))
                    return st;
                continue;
            }
            if (is_op(p, '=')) {
                is_assign = 1;
                break;
            }
            ok = 0;
        }
    }
    *p = save;
    if (is_assign) {
        int cap = 0;
        while (1) {
            if (s->ntargets == cap) {
                int ncap = cap ? cap * 2 : 4;
                const char **nt = arena_alloc(p->arena, sizeof(char *) * (size_t)ncap);
                int *nc = arena_alloc(p->arena, sizeof(int) * (size_t)ncap);
                if (!nt || !nc)
                    return cnni_oom(p->e);
                if (s->ntargets) {
                    memcpy(nt, s->targets, sizeof(char *) * (size_t)s->ntargets);
                    memcpy(nc, s->target_cols, sizeof(int) * (size_t)s->ntargets);
                }
                s->targets = nt;
                s->target_cols = nc;
                cap = ncap;
            }
            s->target_cols[s->ntargets] = p->tok.col;
            s->targets[s->ntargets] = tokstr(p, &p->tok);
            if (!s->targets[s->ntargets])
                return cnni_oom(p->e);
            s->ntargets++;
            if ((st = next(p)))
                return st;
            if (is_op(p, '=')) {
                if ((st = next(p)))
                    return st;
                break;
            }
            if ((st = next(p))) /* ',' */
                return st;
        }
    }
    if (s->ntargets == 1 && strcmp(s->targets[0], "outputs") == 0) {
        /* "outputs = a, b" (or a tuple/list of names) names the graph's outputs. */
        cnni_value *v;
        st = parse_value(p, &v, 0);
        if (st)
            return st;
        int cap = 0;
        while (1) {
            cnni_value **items = &v;
            int n = 1;
            if (v->kind == CNNI_V_TUPLE || v->kind == CNNI_V_LIST) {
                items = v->items;
                n = v->n;
            }
            for (int i = 0; i < n; i++) {
                if (items[i]->kind != CNNI_V_NAME)
                    return perr(p, items[i]->line, items[i]->col,
                                "outputs must be names of nodes, e.g. outputs = a, b");
                if (s->nfwd == cap) {
                    int ncap = cap ? cap * 2 : 4;
                    cnni_arg *na = arena_alloc(p->arena, sizeof(cnni_arg) * (size_t)ncap);
                    if (!na)
                        return cnni_oom(p->e);
                    if (s->nfwd)
                        memcpy(na, s->fwd, sizeof(cnni_arg) * (size_t)s->nfwd);
                    s->fwd = na;
                    cap = ncap;
                }
                cnni_arg a = {NULL, items[i]->line, items[i]->col, items[i]};
                s->fwd[s->nfwd++] = a;
            }
            if (!is_op(p, ','))
                break;
            if ((st = next(p)))
                return st;
            if ((st = parse_value(p, &v, 0)))
                return st;
        }
        if (p->tok.type != T_NEWLINE && p->tok.type != T_EOF) {
            char d[64];
            describe_tok(&p->tok, d, sizeof d);
            return perr(p, p->tok.line, p->tok.col, "unexpected %s after the outputs", d);
        }
        return CNN_OK;
    }
    cnni_value *call;
    int cline = p->tok.line, ccol = p->tok.col;
    st = parse_value(p, &call, 0);
    if (st)
        return st;
    if (call->kind != CNNI_V_CALL)
        return perr(p, cline, ccol, "expected a module call such as Conv2d(...)");
    s->call = call;
    if (is_op(p, '(')) {
        s->has_fwd = 1;
        int oline = p->tok.line, ocol = p->tok.col;
        if ((st = next(p)))
            return st;
        st = parse_args(p, &s->fwd, &s->nfwd, 0, oline, ocol);
        if (st)
            return st;
    }
    if (p->tok.type != T_NEWLINE && p->tok.type != T_EOF) {
        char d[64];
        describe_tok(&p->tok, d, sizeof d);
        return perr(p, p->tok.line, p->tok.col, "unexpected %s after the statement", d);
    }
    return CNN_OK;
}

static cnn_status parse_all(parser *p, cnni_model_ast *ast, int single)
{
    int cap = 0;
    cnn_status st = next(p);
    while (!st) {
        if (p->tok.type == T_EOF)
            break;
        if (p->tok.type == T_NEWLINE) {
            st = next(p);
            continue;
        }
        if (single && ast->n == 1) {
            char d[64];
            describe_tok(&p->tok, d, sizeof d);
            return perr(p, p->tok.line, p->tok.col, "expected one module call, found more (%s)", d);
        }
        if (ast->n == cap) {
            int ncap = cap ? cap * 2 : 16;
            cnni_stmt *ns = arena_alloc(p->arena, sizeof(cnni_stmt) * (size_t)ncap);
            if (!ns)
                return cnni_oom(p->e);
            if (ast->n)
                memcpy(ns, ast->stmts, sizeof(cnni_stmt) * (size_t)ast->n);
            ast->stmts = ns;
            cap = ncap;
        }
        cnni_stmt *s = &ast->stmts[ast->n];
        memset(s, 0, sizeof *s);
        st = parse_statement(p, s);
        if (st)
            return st;
        ast->n++;
    }
    return st;
}

static cnn_status run_parser(const char *text, size_t len, const char *file, cnni_model_ast *ast,
                             cnn_err *e, int single)
{
    memset(ast, 0, sizeof *ast);
    parser p;
    memset(&p, 0, sizeof p);
    p.src = text;
    p.len = len;
    p.line = 1;
    p.col = 1;
    p.file = file ? file : "<model>";
    p.e = e;
    p.arena = &ast->arena;
    /* Skip a UTF-8 byte-order mark. */
    if (len >= 3 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
        (unsigned char)text[2] == 0xBF)
        p.pos = 3;
    cnn_status st = parse_all(&p, ast, single);
    if (st)
        cnni_model_ast_free(ast);
    return st;
}

cnn_status cnni_model_parse(const char *text, size_t len, const char *file, cnni_model_ast *ast,
                            cnn_err *e)
{
    return run_parser(text, len, file, ast, e, 0);
}

cnn_status cnni_model_parse_call(const char *text, const char *what, cnni_model_ast *ast,
                                 cnn_err *e)
{
    cnn_status st = run_parser(text, strlen(text), what, ast, e, 1);
    if (!st && ast->n != 1) {
        cnni_model_ast_free(ast);
        return cnni_fail(e, CNN_ERR_PARSE, "%s: expected a module call such as Conv2d(1, 6, 5)",
                         what ? what : "<module>");
    }
    return st;
}

const char *cnni_vkind_name(cnni_vkind k)
{
    switch (k) {
    case CNNI_V_INT: return "an int";
    case CNNI_V_FLOAT: return "a float";
    case CNNI_V_BOOL: return "a bool";
    case CNNI_V_NONE: return "None";
    case CNNI_V_STR: return "a string";
    case CNNI_V_TUPLE: return "a tuple";
    case CNNI_V_LIST: return "a list";
    case CNNI_V_NAME: return "a name";
    case CNNI_V_CALL: return "a call";
    }
    return "a value";
}

void cnni_value_describe(const cnni_value *v, char *buf, size_t n)
{
    if (n == 0)
        return;
    switch (v->kind) {
    case CNNI_V_INT: snprintf(buf, n, "%lld", (long long)v->i); break;
    case CNNI_V_FLOAT: snprintf(buf, n, "%g", v->f); break;
    case CNNI_V_BOOL: snprintf(buf, n, "%s", v->i ? "True" : "False"); break;
    case CNNI_V_NONE: snprintf(buf, n, "None"); break;
    case CNNI_V_STR: snprintf(buf, n, "'%.60s'", v->s); break;
    case CNNI_V_NAME: snprintf(buf, n, "%.60s", v->s); break;
    case CNNI_V_CALL: snprintf(buf, n, "%.60s(...)", v->s); break;
    case CNNI_V_TUPLE:
    case CNNI_V_LIST: {
        size_t used = (size_t)snprintf(buf, n, "%c", v->kind == CNNI_V_TUPLE ? '(' : '[');
        for (int k = 0; k < v->n && used + 2 < n; k++) {
            char item[64];
            cnni_value_describe(v->items[k], item, sizeof item);
            used += (size_t)snprintf(buf + used, n - used, k ? ", %s" : "%s", item);
        }
        if (used + 2 < n)
            snprintf(buf + used, n - used, "%s%c", (v->kind == CNNI_V_TUPLE && v->n == 1) ? "," : "",
                     v->kind == CNNI_V_TUPLE ? ')' : ']');
        break;
    }
    }
}
