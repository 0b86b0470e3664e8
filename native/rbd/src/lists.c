/* Listings: the images of an ioctx, the snapshots of an image, and the clones of an image. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* librbd's list calls say how much room they need (-ERANGE); the list can grow in between. */
#define MAX_TRIES 8

/* ---- list(ioctx) → [{ id, name }] ---- */

typedef struct {
  rbd_image_spec_t *v;
  size_t n;
} specs_t;

static void free_specs(void *p) {
  specs_t *s = p;
  if (s->v) rbd_image_spec_list_cleanup(s->v, s->n);
  free(s->v);
  free(s);
}

static void exec_list(op_t *op) {
  specs_t *s = calloc(1, sizeof *s);
  size_t max = 64;
  int r = -ERANGE;
  if (!s) {
    op_ok(op, -ENOMEM, "rbd_list2");
    return;
  }
  op->out = s;
  for (int i = 0; i < MAX_TRIES && r == -ERANGE; i++) {
    rbd_image_spec_t *v = calloc(max ? max : 1, sizeof *v);
    if (!v) {
      r = -ENOMEM;
      break;
    }
    r = rbd_list2(op->ioctx->io, v, &max);
    if (r >= 0) {
      s->v = v;
      s->n = max;
    } else {
      free(v);
    }
  }
  op_ok(op, r, "rbd_list2");
}

static napi_value done_list(napi_env env, op_t *op) {
  const specs_t *s = op->out;
  napi_value arr, o;
  if (napi_create_array_with_length(env, s->n, &arr) != napi_ok) return NULL;
  for (size_t i = 0; i < s->n; i++) {
    if (!new_object(env, &o) || !set_str(env, o, "id", s->v[i].id) || !set_str(env, o, "name", s->v[i].name) ||
        napi_set_element(env, arr, (uint32_t)i, o) != napi_ok)
      return NULL;
  }
  return arr;
}

static napi_value js_list(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  ioctx_t *io = ioctx_arg(env, argv[0]);
  op_t *op = io ? op_new() : NULL;
  if (!op) return NULL;
  op->ioctx = io;
  op->target = strdup(io->where);
  op->exec = exec_list;
  op->done = done_list;
  op->free_out = free_specs;
  return op_start(env, op, "rbd_list2");
}

/* rbd_snap_list into a fresh array (terminated by a NULL name); free with snap_list_free. */
static int snap_list(rbd_image_t img, rbd_snap_info_t **out, int *count) {
  int max = 16;
  int r = -ERANGE;
  *out = NULL;
  for (int i = 0; i < MAX_TRIES && r == -ERANGE; i++) {
    rbd_snap_info_t *v = calloc((size_t)max + 1, sizeof *v);
    if (!v) return -ENOMEM;
    r = rbd_snap_list(img, v, &max);
    if (r >= 0) {
      *out = v;
      *count = r;
    } else {
      free(v);
    }
  }
  return r < 0 ? r : 0;
}

static void snap_list_free(rbd_snap_info_t *v) {
  if (!v) return;
  rbd_snap_list_end(v);
  free(v);
}

/* ---- snapList(ioctx, name) → [{ id, name, size, namespaceType, trashOf?, protected, createdAt }] ---- */

typedef struct {
  uint64_t id, size;
  char *name;
  rbd_snap_namespace_type_t ns;
  char original[256]; /* the user's name of a snapshot moved to the trash namespace */
  int is_protected;
  struct timespec created;
} snap_t;

typedef struct {
  snap_t *v;
  size_t n;
} snaps_t;

static void free_snaps(void *p) {
  snaps_t *s = p;
  for (size_t i = 0; i < s->n; i++) free(s->v[i].name);
  free(s->v);
  free(s);
}

static bool describe_snap(op_t *op, rbd_image_t img, snap_t *s) {
  if (!op_ok(op, rbd_snap_get_namespace_type(img, s->id, &s->ns), "rbd_snap_get_namespace_type") ||
      !op_ok(op, rbd_snap_get_timestamp(img, s->id, &s->created), "rbd_snap_get_timestamp"))
    return false;
  if (s->ns == RBD_SNAP_NAMESPACE_TYPE_TRASH)
    return op_ok(op, rbd_snap_get_trash_namespace(img, s->id, s->original, sizeof s->original),
                 "rbd_snap_get_trash_namespace");
  /* Protection is looked up by name, which only the user namespace has. */
  if (s->ns == RBD_SNAP_NAMESPACE_TYPE_USER)
    return op_ok(op, rbd_snap_is_protected(img, s->name, &s->is_protected), "rbd_snap_is_protected");
  return true;
}

static void exec_snap_list(op_t *op) {
  rbd_image_t img;
  rbd_snap_info_t *raw = NULL;
  int count = 0;
  snaps_t *s = calloc(1, sizeof *s);
  if (!s) {
    op_ok(op, -ENOMEM, "rbd_snap_list");
    return;
  }
  op->out = s;
  if (!image_open(op, false, &img)) return;
  if (op_ok(op, snap_list(img, &raw, &count), "rbd_snap_list") && count > 0) {
    s->v = calloc((size_t)count, sizeof *s->v);
    if (!op_ok(op, s->v ? 0 : -ENOMEM, "rbd_snap_list")) count = 0;
    for (int i = 0; i < count; i++) {
      snap_t *e = &s->v[s->n];
      e->id = raw[i].id;
      e->size = raw[i].size;
      e->name = strdup(raw[i].name);
      if (!op_ok(op, e->name ? 0 : -ENOMEM, "rbd_snap_list")) break;
      s->n++;
      if (!describe_snap(op, img, e)) break;
    }
  }
  snap_list_free(raw);
  image_close(op, img);
}

static const char *ns_name(rbd_snap_namespace_type_t t) {
  switch (t) {
  case RBD_SNAP_NAMESPACE_TYPE_USER: return "user";
  case RBD_SNAP_NAMESPACE_TYPE_GROUP: return "group";
  case RBD_SNAP_NAMESPACE_TYPE_TRASH: return "trash";
  case RBD_SNAP_NAMESPACE_TYPE_MIRROR: return "mirror";
  }
  return "unknown";
}

static napi_value done_snap_list(napi_env env, op_t *op) {
  const snaps_t *s = op->out;
  napi_value arr, o;
  if (napi_create_array_with_length(env, s->n, &arr) != napi_ok) return NULL;
  for (size_t i = 0; i < s->n; i++) {
    const snap_t *e = &s->v[i];
    if (!new_object(env, &o) || !set_num(env, o, "id", (double)e->id) || !set_str(env, o, "name", e->name) ||
        !set_num(env, o, "size", (double)e->size) || !set_str(env, o, "namespace", ns_name(e->ns)) ||
        !set_bool(env, o, "protected", e->is_protected != 0) ||
        !set_num(env, o, "createdAt", ts_ms(&e->created)) ||
        (e->ns == RBD_SNAP_NAMESPACE_TYPE_TRASH && !set_str(env, o, "trashOf", e->original)) ||
        napi_set_element(env, arr, (uint32_t)i, o) != napi_ok)
      return NULL;
  }
  return arr;
}

static napi_value js_snap_list(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  op->exec = exec_snap_list;
  op->done = done_snap_list;
  op->free_out = free_snaps;
  return op_start(env, op, "rbd_snap_list");
}

/* ---- children(ioctx, name) → [{ pool, poolId, namespace, image, imageId, trash, snap, snapId }] ---- */

typedef struct {
  int64_t pool_id;
  char *pool, *ns, *image, *image_id, *snap;
  bool trash;
  uint64_t snap_id;
} child_t;

typedef struct {
  child_t *v;
  size_t n, cap;
} children_t;

static void free_child(child_t *c) {
  free(c->pool);
  free(c->ns);
  free(c->image);
  free(c->image_id);
  free(c->snap);
}

static void free_children(void *p) {
  children_t *c = p;
  for (size_t i = 0; i < c->n; i++) free_child(&c->v[i]);
  free(c->v);
  free(c);
}

static int add_child(children_t *c, const rbd_linked_image_spec_t *s, const rbd_snap_info_t *snap) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 8;
    child_t *v = realloc(c->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    c->v = v;
    c->cap = cap;
  }
  child_t *e = &c->v[c->n];
  *e = (child_t){.pool_id = s->pool_id, .trash = s->trash, .snap_id = snap->id};
  e->pool = str_or_null(s->pool_name);
  e->ns = str_or_null(s->pool_namespace);
  e->image = str_or_null(s->image_name);
  e->image_id = str_or_null(s->image_id);
  e->snap = str_or_null(snap->name);
  if ((s->pool_name && !e->pool) || (s->pool_namespace && !e->ns) || (s->image_name && !e->image) ||
      (s->image_id && !e->image_id) || (snap->name && !e->snap)) {
    free_child(e);
    return -ENOMEM;
  }
  c->n++;
  return 0;
}

/* The clones of the snapshot the image is set to, including those in the trash. */
static int children_of_snap(rbd_image_t img, const rbd_snap_info_t *snap, children_t *out) {
  size_t max = 16;
  int r = -ERANGE;
  for (int i = 0; i < MAX_TRIES && r == -ERANGE; i++) {
    rbd_linked_image_spec_t *v = calloc(max ? max : 1, sizeof *v);
    if (!v) return -ENOMEM;
    r = rbd_list_children3(img, v, &max);
    if (r >= 0) {
      for (size_t j = 0; j < max && r >= 0; j++) r = add_child(out, &v[j], snap);
      rbd_linked_image_spec_list_cleanup(v, max);
    }
    free(v);
  }
  return r;
}

/*
 * Snapshot by snapshot (rather than one rbd_list_children3 on the head, which covers them all),
 * so each child says which snapshot it hangs from — trash-namespace snapshots included.
 */
static void exec_children(op_t *op) {
  rbd_image_t img;
  rbd_snap_info_t *snaps = NULL;
  int count = 0;
  children_t *c = calloc(1, sizeof *c);
  if (!c) {
    op_ok(op, -ENOMEM, "rbd_list_children3");
    return;
  }
  op->out = c;
  if (!image_open(op, false, &img)) return;
  if (op_ok(op, snap_list(img, &snaps, &count), "rbd_snap_list")) {
    for (int i = 0; i < count; i++) {
      int r = rbd_snap_set_by_id(img, snaps[i].id);
      if (r == -ENOENT) continue; /* removed since the listing */
      if (!op_ok(op, r, "rbd_snap_set_by_id") ||
          !op_ok(op, children_of_snap(img, &snaps[i], c), "rbd_list_children3"))
        break;
    }
  }
  snap_list_free(snaps);
  image_close(op, img);
}

static napi_value done_children(napi_env env, op_t *op) {
  const children_t *c = op->out;
  napi_value arr, o;
  if (napi_create_array_with_length(env, c->n, &arr) != napi_ok) return NULL;
  for (size_t i = 0; i < c->n; i++) {
    const child_t *e = &c->v[i];
    if (!new_object(env, &o) || !set_num(env, o, "poolId", (double)e->pool_id) ||
        !set_str(env, o, "pool", e->pool) || !set_str(env, o, "namespace", e->ns) ||
        !set_str(env, o, "image", e->image) || !set_str(env, o, "imageId", e->image_id) ||
        !set_bool(env, o, "trash", e->trash) || !set_str(env, o, "snap", e->snap) ||
        !set_num(env, o, "snapId", (double)e->snap_id) || napi_set_element(env, arr, (uint32_t)i, o) != napi_ok)
      return NULL;
  }
  return arr;
}

static napi_value js_children(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  op->exec = exec_children;
  op->done = done_children;
  op->free_out = free_children;
  return op_start(env, op, "rbd_list_children3");
}

bool register_lists(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      METHOD("list", js_list),
      METHOD("snapList", js_snap_list),
      METHOD("children", js_children),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
