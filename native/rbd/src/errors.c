/* Errors of librados/librbd calls as JS Errors: { message, code: 'ENOENT', errno: 2, fn }.
 * The message names the call and its target (pool, image, snapshot, option name), never a value
 * passed to it, so a key can't leak into logs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

#define E(x) {x, #x}
static const struct {
  int err;
  const char *name;
} NAMES[] = {
    E(EPERM), E(ENOENT), E(EIO), E(ENXIO), E(E2BIG), E(EBADF), E(ECHILD), E(EAGAIN),
    E(ENOMEM), E(EACCES), E(EFAULT), E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR),
    E(EISDIR), E(EINVAL), E(EFBIG), E(ENOSPC), E(EROFS), E(EMLINK), E(EPIPE), E(EDOM),
    E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOSYS), E(ENOTEMPTY), E(ELOOP), E(ENODATA),
    E(ETIME), E(ENOLINK), E(EPROTO), E(EBADMSG), E(EOVERFLOW), E(EILSEQ), E(EUSERS),
    E(ENOTSOCK), E(EOPNOTSUPP), E(EADDRINUSE), E(ENETDOWN), E(ENETUNREACH), E(ECONNABORTED),
    E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN), E(ESHUTDOWN), E(ETIMEDOUT),
    E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY), E(EINPROGRESS), E(ESTALE),
    E(EDQUOT), E(ECANCELED), E(EKEYEXPIRED), E(EKEYREJECTED), E(EOWNERDEAD),
    E(ENOTRECOVERABLE),
};
#undef E

static const char *errno_name(int err, char *buf, size_t len) {
  for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
    if (NAMES[i].err == err) return NAMES[i].name;
  snprintf(buf, len, "ERRNO_%d", err);
  return buf;
}

/* err is positive. Returns NULL (with a JS exception pending) when N-API itself fails. */
napi_value errno_error(napi_env env, int err, const char *fn, const char *target) {
  char namebuf[32];
  char msg[512];
  const char *name = errno_name(err, namebuf, sizeof namebuf);
  snprintf(msg, sizeof msg, "%s(%s) failed: %s (%s)", fn ? fn : "cairn_rbd", target ? target : "",
           strerror(err), name);
  napi_value code, message, error;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok) return NULL;
  if (napi_create_error(env, code, message, &error) != napi_ok) return NULL;
  if (!set_num(env, error, "errno", err)) return NULL;
  if (!set_str(env, error, "fn", fn ? fn : "")) return NULL;
  return error;
}
