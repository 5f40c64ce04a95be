/* Status strings and the per-handle error message. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *cnn_version(void) { return CNN_VERSION_STRING; }

const char *cnn_status_string(cnn_status s)
{
    switch (s) {
    case CNN_OK: return "ok";
    case CNN_ERR_ARGUMENT: return "invalid argument";
    case CNN_ERR_NOMEM: return "out of memory";
    case CNN_ERR_IO: return "input/output error";
    case CNN_ERR_FORMAT: return "malformed file";
    case CNN_ERR_PARSE: return "syntax error";
    case CNN_ERR_CONFIG: return "invalid module configuration";
    case CNN_ERR_SHAPE: return "shape mismatch";
    case CNN_ERR_NOT_FOUND: return "not found";
    case CNN_ERR_OVERFLOW: return "size overflow";
    case CNN_ERR_NUMERIC: return "non-finite value";
    case CNN_ERR_STATE: return "call out of order";
    case CNN_ERR_UNSUPPORTED: return "unsupported";
    case CNN_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

cnn_status cnni_vfail(cnn_err *e, cnn_status code, const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    }
    return code;
}

cnn_status cnni_fail(cnn_err *e, cnn_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cnni_vfail(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void cnni_err_prefix(cnn_err *e, const char *fmt, ...)
{
    if (!e)
        return;
    char head[CNNI_ERRMSG_MAX];
    char old[CNNI_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s: %s", head, old);
}

void cnni_err_clear(cnn_err *e)
{
    if (e) {
        e->code = CNN_OK;
        e->msg[0] = 0;
    }
}

cnn_status cnni_oom(cnn_err *e) { return cnni_fail(e, CNN_ERR_NOMEM, "out of memory"); }
