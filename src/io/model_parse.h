/* The model-file language: PyTorch constructor calls, one statement per
 * line (Python's implicit joining inside brackets lets a call span lines).
 *
 *   statement := call                                  Sequential form
 *              | NAME {"," NAME} "=" call "(" fwdargs ")"   graph form
 *              | "outputs" "=" NAME {"," NAME}              the graph's outputs
 *   call      := NAME{"." NAME} "(" [arg {"," arg} [","]] ")"
 *   arg       := [NAME "="] value
 *   value     := term {("+"|"-") term}   term := unary {("*"|"/"|"//"|"%") unary}
 *   unary     := ("-"|"+") unary | INT | FLOAT | STRING | True | False | None
 *              | NAME{"." NAME} | "(" tuple ")" | "[" list "]" | call
 * (arithmetic works on numbers only, with Python's rules: 7 // 2 == 3,
 *  -7 // 2 == -4, 1 / 2 == 0.5)
 *
 * The parser only builds this syntax tree; what the names mean (modules,
 * arguments, nodes) is decided by the graph builder. */
#ifndef CNN_MODEL_PARSE_H
#define CNN_MODEL_PARSE_H

#include "../core/internal.h"

typedef enum {
    CNNI_V_INT,
    CNNI_V_FLOAT,
    CNNI_V_BOOL,
    CNNI_V_NONE,
    CNNI_V_STR,
    CNNI_V_TUPLE,
    CNNI_V_LIST,
    CNNI_V_NAME, /* identifier or dotted name, e.g. a node name or torch.float32 */
    CNNI_V_CALL
} cnni_vkind;

typedef struct cnni_value cnni_value;

typedef struct cnni_arg {
    const char *key; /* NULL for a positional argument */
    int line, col;   /* of the key, or of the value when positional */
    cnni_value *val;
} cnni_arg;

struct cnni_value {
    cnni_vkind kind;
    int line, col;
    int64_t i;      /* INT, BOOL */
    double f;       /* FLOAT (and INT, converted) */
    const char *s;  /* STR, NAME, CALL (the callee) */
    int n;          /* TUPLE, LIST: items */
    cnni_value **items;
    int nargs;      /* CALL */
    cnni_arg *args;
};

typedef struct cnni_stmt {
    int line, col;
    int ntargets;   /* 0 in the Sequential form */
    const char **targets;
    int *target_cols;
    cnni_value *call;  /* the module constructor call; NULL for "outputs = a, b" */
    int has_fwd;       /* graph form: the call is applied to inputs */
    int nfwd;
    cnni_arg *fwd;     /* forward arguments: node names or constants */
} cnni_stmt;

typedef struct cnni_arena cnni_arena;

typedef struct cnni_model_ast {
    cnni_stmt *stmts;
    int n;
    cnni_arena *arena; /* owns every node and string above */
} cnni_model_ast;

/* Parses a whole file. Messages start with "file:line:col: ". */
cnn_status cnni_model_parse(const char *text, size_t len, const char *file, cnni_model_ast *ast,
                            cnn_err *e);
/* Parses one statement (used by the C builder: "Conv2d(3, 64, 3)"). */
cnn_status cnni_model_parse_call(const char *text, const char *what, cnni_model_ast *ast,
                                 cnn_err *e);
void cnni_model_ast_free(cnni_model_ast *ast);

/* A value printed back in Python syntax (for messages). */
void cnni_value_describe(const cnni_value *v, char *buf, size_t n);
const char *cnni_vkind_name(cnni_vkind k);

#endif
