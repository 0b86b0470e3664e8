/*
 * cairn_rbd: Cairn's in-process path to Ceph RBD. Every export that talks to the cluster returns
 * a Promise and makes its librados/librbd calls on a libuv worker thread. Failures reject with an
 * Error { code: 'ENOENT', errno: 2, fn: 'rbd_open' } naming the call and its target.
 * The typed wrapper is src/drivers/rbd/librbd.ts; nothing else should load this file.
 */
#include <stdio.h>

#include "common.h"

static napi_value init(napi_env env, napi_value exports) {
  char version[32];
  napi_value v;
  /* The headers' version, known without calling into librbd on the JS thread. */
  snprintf(version, sizeof version, "%d.%d.%d", LIBRBD_VER_MAJOR, LIBRBD_VER_MINOR, LIBRBD_VER_EXTRA);
  if (!env_init(env) || napi_create_string_utf8(env, version, NAPI_AUTO_LENGTH, &v) != napi_ok ||
      napi_set_named_property(env, exports, "librbdVersion", v) != napi_ok || !register_cluster(env, exports) ||
      !register_image(env, exports) || !register_io(env, exports) || !register_lists(env, exports) ||
      !register_snap(env, exports) || !register_trash(env, exports))
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
