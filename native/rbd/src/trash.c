/* The RBD trash: deferred deletion of whole images (not the trash namespace of snapshots). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- trashMove(ioctx, name, delaySeconds) ---- */

static void exec_trash_move(op_t *op) {
  op_ok(op, rbd_trash_move(op->ioctx->io, op->s1, op->n[0]), "rbd_trash_move");
}

static napi_value js_trash_move(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_u64(env, argv[2], "delaySeconds", &op->n[0])) {
    op_free(op);
    return NULL;
  }
  op->exec = exec_trash_move;
  return op_start(env, op, "rbd_trash_move");
}

/* ---- trashList(ioctx) → [{ id, name, source, deletedAt, deferredUntil }] ---- */

typedef struct {
  rbd_trash_image_info_t *v;
  size_t n;
} trash_t;

static void free_trash(void *p) {
  trash_t *t = p;
  if (t->v) rbd_trash_list_cleanup(t->v, t->n);
  free(t->v);
  free(t);
}

static void exec_trash_list(op_t *op) {
  trash_t *t = calloc(1, sizeof *t);
  size_t max = 32;
  int r = -ERANGE;
  if (!t) {
    op_ok(op, -ENOMEM, "rbd_trash_list");
    return;
  }
  op->out = t;
  for (int i = 0; i < 8 && r == -ERANGE; i++) {
    rbd_trash_image_info_t *v = calloc(max ? max : 1, sizeof *v);
    if (!v) {
      r = -ENOMEM;
      break;
    }
    r = rbd_trash_list(op->ioctx->io, v, &max);
    if (r >= 0) {
      t->v = v;
      t->n = max;
    } else {
      free(v);
    }
  }
  op_ok(op, r, "rbd_trash_list");
}

static const char *source_name(rbd_trash_image_source_t s) {
  switch (s) {
  case RBD_TRASH_IMAGE_SOURCE_USER: return "user";
  case RBD_TRASH_IMAGE_SOURCE_MIRRORING: return "mirroring";
  case RBD_TRASH_IMAGE_SOURCE_MIGRATION: return "migration";
  case RBD_TRASH_IMAGE_SOURCE_REMOVING: return "removing";
  case RBD_TRASH_IMAGE_SOURCE_USER_PARENT: return "user_parent";
  }
  return "unknown";
}

static napi_value done_trash_list(napi_env env, op_t *op) {
  const trash_t *t = op->out;
  napi_value arr, o;
  if (napi_create_array_with_length(env, t->n, &arr) != napi_ok) return NULL;
  for (size_t i = 0; i < t->n; i++) {
    const rbd_trash_image_info_t *e = &t->v[i];
    if (!new_object(env, &o) || !set_str(env, o, "id", e->id) || !set_str(env, o, "name", e->name) ||
        !set_str(env, o, "source", source_name(e->source)) ||
        !set_num(env, o, "deletedAt", (double)e->deletion_time * 1000) ||
        !set_num(env, o, "deferredUntil", (double)e->deferment_end_time * 1000) ||
        napi_set_element(env, arr, (uint32_t)i, o) != napi_ok)
      return NULL;
  }
  return arr;
}

static napi_value js_trash_list(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  ioctx_t *io = ioctx_arg(env, argv[0]);
  op_t *op = io ? op_new() : NULL;
  if (!op) return NULL;
  op->ioctx = io;
  op->target = strdup(io->where);
  op->exec = exec_trash_list;
  op->done = done_trash_list;
  op->free_out = free_trash;
  return op_start(env, op, "rbd_trash_list");
}

/* ---- trashRemove(ioctx, id, force) and trashRestore(ioctx, id, name): by image id ---- */

static void exec_trash_remove(op_t *op) {
  op_ok(op, rbd_trash_remove(op->ioctx->io, op->s1, op->b1), "rbd_trash_remove");
}

static void exec_trash_restore(op_t *op) {
  op_ok(op, rbd_trash_restore(op->ioctx->io, op->s1, op->s2), "rbd_trash_restore");
}

static napi_value js_trash_remove(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_bool(env, argv[2], "force", &op->b1)) {
    op_free(op);
    return NULL;
  }
  op->exec = exec_trash_remove;
  return op_start(env, op, "rbd_trash_remove");
}

static napi_value js_trash_restore(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_str(env, argv[2], "name", &op->s2)) {
    op_free(op);
    return NULL;
  }
  op->exec = exec_trash_restore;
  return op_start(env, op, "rbd_trash_restore");
}

bool register_trash(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      METHOD("trashMove", js_trash_move),
      METHOD("trashList", js_trash_list),
      METHOD("trashRemove", js_trash_remove),
      METHOD("trashRestore", js_trash_restore),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
