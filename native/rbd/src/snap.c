/* Snapshots (create, remove, rollback) and copy-on-write clones of them. */
#include <errno.h>
#include <stdlib.h>

#include "common.h"

static void exec_snap_create(op_t *op) {
  rbd_image_t img;
  if (!image_open(op, true, &img)) return;
  op_ok(op, rbd_snap_create(img, op->s2), "rbd_snap_create");
  image_close(op, img);
}

/* A snapshot that still has clone v2 children is not refused: librbd moves it to the trash
 * namespace, and removes it by itself with its last child. */
static void exec_snap_remove(op_t *op) {
  rbd_image_t img;
  if (!image_open(op, true, &img)) return;
  op_ok(op, rbd_snap_remove(img, op->s2), "rbd_snap_remove");
  image_close(op, img);
}

static void exec_snap_rollback(op_t *op) {
  rbd_image_t img;
  if (!image_open(op, true, &img)) return;
  op_ok(op, rbd_snap_rollback(img, op->s2), "rbd_snap_rollback");
  image_close(op, img);
}

/* (ioctx, image, snap) → undefined */
static napi_value snap_call(napi_env env, napi_callback_info info, void (*exec)(op_t *), const char *name) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_str(env, argv[2], "snapshot", &op->s2)) {
    op_free(op);
    return NULL;
  }
  free(op->target);
  op->target = strfmt("%s/%s@%s", op->ioctx->where, op->s1, op->s2);
  op->exec = exec;
  return op_start(env, op, name);
}

static napi_value js_snap_create(napi_env env, napi_callback_info info) {
  return snap_call(env, info, exec_snap_create, "rbd_snap_create");
}

static napi_value js_snap_remove(napi_env env, napi_callback_info info) {
  return snap_call(env, info, exec_snap_remove, "rbd_snap_remove");
}

static napi_value js_snap_rollback(napi_env env, napi_callback_info info) {
  return snap_call(env, info, exec_snap_rollback, "rbd_snap_rollback");
}

/* ---- clone(parentIoctx, parent, snap, childIoctx, child, features | null) ---- */

static void exec_clone(op_t *op) {
  rbd_image_options_t opts;
  rbd_image_options_create(&opts);
  /* Format 2 clones need no protected snapshot (the cluster must require mimic clients);
   * without features the child takes its parent's. */
  if (op_ok(op, rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_CLONE_FORMAT, 2),
            "rbd_image_options_set_uint64") &&
      (!op->has[0] || op_ok(op, rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES, op->n[0]),
                            "rbd_image_options_set_uint64")))
    op_ok(op, rbd_clone3(op->ioctx->io, op->s1, op->s2, op->ioctx2->io, op->s3, opts), "rbd_clone3");
  rbd_image_options_destroy(opts);
}

static napi_value js_clone(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_str(env, argv[2], "snapshot", &op->s2) || !(op->ioctx2 = ioctx_arg(env, argv[3])) ||
      !arg_str(env, argv[4], "child", &op->s3) || !arg_opt_u64(env, argv[5], "features", &op->n[0], &op->has[0])) {
    op_free(op);
    return NULL;
  }
  free(op->target);
  op->target = strfmt("%s/%s@%s -> %s/%s", op->ioctx->where, op->s1, op->s2, op->ioctx2->where, op->s3);
  op->exec = exec_clone;
  return op_start(env, op, "rbd_clone3");
}

bool register_snap(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      METHOD("snapCreate", js_snap_create),
      METHOD("snapRemove", js_snap_remove),
      METHOD("snapRollback", js_snap_rollback),
      METHOD("clone", js_clone),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
