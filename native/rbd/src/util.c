/* N-API argument parsing and result building. Each helper throws a JS error and returns false
 * (or NULL) on failure, so callers just return. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* Largest integer a JS number holds exactly: sizes and offsets above it are refused. */
#define MAX_SAFE 9007199254740991.0

static bool type_error(napi_env env, const char *what, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof msg, "cairn_rbd: %s must be %s", what, expected);
  napi_throw_type_error(env, NULL, msg);
  return false;
}

bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < n) return type_error(env, "the argument list", "complete");
  return true;
}

static bool is_nullish(napi_env env, napi_value v, bool *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  *out = t == napi_undefined || t == napi_null;
  return true;
}

bool arg_str(napi_env env, napi_value v, const char *what, char **out) {
  size_t len;
  *out = NULL;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return type_error(env, what, "a string");
  char *s = malloc(len + 1);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "cairn_rbd: out of memory");
    return false;
  }
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return false;
  }
  /* librbd takes C strings: an embedded NUL would silently cut the name. */
  if (strlen(s) != len) {
    free(s);
    return type_error(env, what, "a string without NUL characters");
  }
  *out = s;
  return true;
}

bool arg_opt_str(napi_env env, napi_value v, const char *what, char **out) {
  bool nullish;
  *out = NULL;
  if (!is_nullish(env, v, &nullish)) return false;
  return nullish ? true : arg_str(env, v, what, out);
}

bool arg_u64(napi_env env, napi_value v, const char *what, uint64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return type_error(env, what, "a number");
  if (!(d >= 0 && d <= MAX_SAFE) || d != (double)(uint64_t)d)
    return type_error(env, what, "a whole number from 0 to 2^53-1");
  *out = (uint64_t)d;
  return true;
}

bool arg_opt_u64(napi_env env, napi_value v, const char *what, uint64_t *out, bool *present) {
  bool nullish;
  *present = false;
  if (!is_nullish(env, v, &nullish)) return false;
  if (nullish) return true;
  *present = true;
  return arg_u64(env, v, what, out);
}

bool arg_bool(napi_env env, napi_value v, const char *what, bool *out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) return type_error(env, what, "a boolean");
  return true;
}

char *strfmt(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (!s) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

char *str_or_null(const char *s) { return s ? strdup(s) : NULL; }

bool set_val(napi_env env, napi_value obj, const char *key, napi_value val) {
  return napi_set_named_property(env, obj, key, val) == napi_ok;
}

bool set_str(napi_env env, napi_value obj, const char *key, const char *val) {
  napi_value v;
  if (napi_create_string_utf8(env, val ? val : "", NAPI_AUTO_LENGTH, &v) != napi_ok) return false;
  return set_val(env, obj, key, v);
}

bool set_num(napi_env env, napi_value obj, const char *key, double val) {
  napi_value v;
  if (napi_create_double(env, val, &v) != napi_ok) return false;
  return set_val(env, obj, key, v);
}

bool set_bool(napi_env env, napi_value obj, const char *key, bool val) {
  napi_value v;
  if (napi_get_boolean(env, val, &v) != napi_ok) return false;
  return set_val(env, obj, key, v);
}

bool new_object(napi_env env, napi_value *out) { return napi_create_object(env, out) == napi_ok; }

double ts_ms(const struct timespec *ts) { return (double)ts->tv_sec * 1000.0 + (double)(ts->tv_nsec / 1000000); }
