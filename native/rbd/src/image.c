/* Image life cycle: create, remove, rename, resize, flatten, and info. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- create(ioctx, name, size, features | null, order | null) ---- */

static void exec_create(op_t *op) {
  rbd_image_options_t opts;
  rbd_image_options_create(&opts);
  /* Without features the cluster's rbd_default_features apply, as with `rbd create`. */
  if ((!op->has[1] || op_ok(op, rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_FEATURES, op->n[1]),
                            "rbd_image_options_set_uint64")) &&
      (!op->has[2] || op_ok(op, rbd_image_options_set_uint64(opts, RBD_IMAGE_OPTION_ORDER, op->n[2]),
                            "rbd_image_options_set_uint64")))
    op_ok(op, rbd_create4(op->ioctx->io, op->s1, op->n[0], opts), "rbd_create4");
  rbd_image_options_destroy(opts);
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_u64(env, argv[2], "size", &op->n[0]) ||
      !arg_opt_u64(env, argv[3], "features", &op->n[1], &op->has[1]) ||
      !arg_opt_u64(env, argv[4], "order", &op->n[2], &op->has[2])) {
    op_free(op);
    return NULL;
  }
  op->exec = exec_create;
  return op_start(env, op, "rbd_create4");
}

/* ---- remove(ioctx, name) ---- */

static void exec_remove(op_t *op) { op_ok(op, rbd_remove(op->ioctx->io, op->s1), "rbd_remove"); }

/* ---- rename(ioctx, from, to) ---- */

static void exec_rename(op_t *op) { op_ok(op, rbd_rename(op->ioctx->io, op->s1, op->s2), "rbd_rename"); }

/* ---- resize(ioctx, name, size, allowShrink) ---- */

static void exec_resize(op_t *op) {
  rbd_image_t img;
  if (!image_open(op, true, &img)) return;
  op_ok(op, rbd_resize2(img, op->n[0], op->b1, noop_progress, NULL), "rbd_resize2");
  image_close(op, img);
}

/* ---- flatten(ioctx, name) ---- */

static void exec_flatten(op_t *op) {
  rbd_image_t img;
  if (!image_open(op, true, &img)) return;
  op_ok(op, rbd_flatten(img), "rbd_flatten");
  image_close(op, img);
}

/* ---- info(ioctx, name) → { id, size, features, parent?, ... } ---- */

typedef struct {
  rbd_image_info_t st;
  uint64_t features, op_features, flags, overlap;
  char id[128];
  char prefix[128];
  struct timespec created;
  bool has_parent;
  rbd_linked_image_spec_t parent;
  rbd_snap_spec_t parent_snap;
} info_t;

static void free_info(void *p) {
  info_t *in = p;
  if (in->has_parent) {
    rbd_linked_image_spec_cleanup(&in->parent);
    rbd_snap_spec_cleanup(&in->parent_snap);
  }
  free(in);
}

static void exec_info(op_t *op) {
  rbd_image_t img;
  info_t *in = calloc(1, sizeof *in);
  if (!in) {
    op_ok(op, -ENOMEM, "rbd_stat");
    return;
  }
  op->out = in;
  if (!image_open(op, false, &img)) return;
  if (op_ok(op, rbd_stat(img, &in->st, sizeof in->st), "rbd_stat") &&
      op_ok(op, rbd_get_features(img, &in->features), "rbd_get_features") &&
      op_ok(op, rbd_get_op_features(img, &in->op_features), "rbd_get_op_features") &&
      op_ok(op, rbd_get_flags(img, &in->flags), "rbd_get_flags") &&
      op_ok(op, rbd_get_id(img, in->id, sizeof in->id), "rbd_get_id") &&
      op_ok(op, rbd_get_block_name_prefix(img, in->prefix, sizeof in->prefix), "rbd_get_block_name_prefix") &&
      op_ok(op, rbd_get_create_timestamp(img, &in->created), "rbd_get_create_timestamp")) {
    /* ENOENT here just means "not a clone". */
    int r = rbd_get_parent(img, &in->parent, &in->parent_snap);
    if (r == 0) {
      in->has_parent = true;
      op_ok(op, rbd_get_overlap(img, &in->overlap), "rbd_get_overlap");
    } else if (r != -ENOENT) {
      op_ok(op, r, "rbd_get_parent");
    }
  }
  image_close(op, img);
}

static napi_value parent_object(napi_env env, const info_t *in) {
  napi_value p;
  const rbd_linked_image_spec_t *s = &in->parent;
  if (!new_object(env, &p) || !set_num(env, p, "poolId", (double)s->pool_id) ||
      !set_str(env, p, "pool", s->pool_name) || !set_str(env, p, "namespace", s->pool_namespace) ||
      !set_str(env, p, "image", s->image_name) || !set_str(env, p, "imageId", s->image_id) ||
      !set_bool(env, p, "trash", s->trash) || !set_str(env, p, "snap", in->parent_snap.name) ||
      !set_num(env, p, "snapId", (double)in->parent_snap.id) ||
      !set_num(env, p, "snapNamespaceType", in->parent_snap.namespace_type) ||
      !set_num(env, p, "overlap", (double)in->overlap))
    return NULL;
  return p;
}

static napi_value done_info(napi_env env, op_t *op) {
  const info_t *in = op->out;
  napi_value o, parent;
  if (!new_object(env, &o) || !set_str(env, o, "name", op->s1) || !set_str(env, o, "id", in->id) ||
      !set_num(env, o, "size", (double)in->st.size) || !set_num(env, o, "objectSize", (double)in->st.obj_size) ||
      !set_num(env, o, "objects", (double)in->st.num_objs) || !set_num(env, o, "order", in->st.order) ||
      !set_str(env, o, "blockNamePrefix", in->prefix) || !set_num(env, o, "features", (double)in->features) ||
      !set_num(env, o, "opFeatures", (double)in->op_features) || !set_num(env, o, "flags", (double)in->flags) ||
      !set_num(env, o, "createdAt", ts_ms(&in->created)))
    return NULL;
  if (in->has_parent && (!(parent = parent_object(env, in)) || !set_val(env, o, "parent", parent))) return NULL;
  return o;
}

/* ---- JS entry points ---- */

static napi_value js_remove(napi_env env, napi_callback_info info) {
  return image_call(env, info, exec_remove, "rbd_remove");
}

static napi_value js_flatten(napi_env env, napi_callback_info info) {
  return image_call(env, info, exec_flatten, "rbd_flatten");
}

static napi_value js_info(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  op->exec = exec_info;
  op->done = done_info;
  op->free_out = free_info;
  return op_start(env, op, "rbd_stat");
}

static napi_value js_rename(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_str(env, argv[2], "new name", &op->s2)) {
    op_free(op);
    return NULL;
  }
  op->exec = exec_rename;
  return op_start(env, op, "rbd_rename");
}

static napi_value js_resize(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_u64(env, argv[2], "size", &op->n[0]) || !arg_bool(env, argv[3], "allowShrink", &op->b1)) {
    op_free(op);
    return NULL;
  }
  op->exec = exec_resize;
  return op_start(env, op, "rbd_resize2");
}

bool register_image(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      METHOD("create", js_create),
      METHOD("remove", js_remove),
      METHOD("rename", js_rename),
      METHOD("resize", js_resize),
      METHOD("flatten", js_flatten),
      METHOD("info", js_info),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
