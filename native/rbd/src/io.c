/* Data: a small write and read (for tests and tools, not a data path), and the bytes an image
 * really allocates (for capacity stats). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* One call moves at most this much: a bound on what a bad argument can allocate. */
#define MAX_IO (64u << 20)

/* ---- write(ioctx, name, offset, bytes) ---- */

static void exec_write(op_t *op) {
  rbd_image_t img;
  uint64_t size = 0;
  if (!image_open(op, true, &img)) return;
  /* librbd would cut a write at the end of the image: refuse it before writing anything. */
  if (op_ok(op, rbd_get_size(img, &size), "rbd_get_size")) {
    if (op->n[0] > size || op->len > size - op->n[0]) {
      op->detail = "past the end of the image";
      op_ok(op, -EINVAL, "rbd_write");
    } else {
      ssize_t n = rbd_write(img, op->n[0], op->len, op->buf);
      if (op_ok(op, n < 0 ? (int)n : 0, "rbd_write") && (size_t)n != op->len) op_ok(op, -EIO, "rbd_write");
    }
  }
  image_close(op, img);
}

static napi_value js_write(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  napi_typedarray_type type;
  size_t len;
  void *data;
  if (!get_args(env, info, 4, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_u64(env, argv[2], "offset", &op->n[0])) goto fail;
  if (napi_get_typedarray_info(env, argv[3], &type, &len, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array || len > MAX_IO) {
    napi_throw_type_error(env, NULL, "cairn_rbd: data must be a Uint8Array of at most 64 MiB");
    goto fail;
  }
  /* A copy: the worker thread must not read memory the JS heap may move or free. */
  op->buf = malloc(len ? len : 1);
  if (!op->buf) {
    napi_throw_error(env, "ENOMEM", "cairn_rbd: out of memory");
    goto fail;
  }
  if (len) memcpy(op->buf, data, len);
  op->len = len;
  op->exec = exec_write;
  return op_start(env, op, "rbd_write");
fail:
  op_free(op);
  return NULL;
}

/* ---- read(ioctx, name, offset, length) → Buffer (shorter at the end of the image) ---- */

static void exec_read(op_t *op) {
  rbd_image_t img;
  if (!image_open(op, false, &img)) return;
  ssize_t n = rbd_read(img, op->n[0], op->len, op->buf);
  if (op_ok(op, n < 0 ? (int)n : 0, "rbd_read")) op->len = (size_t)n;
  image_close(op, img);
}

static napi_value done_read(napi_env env, op_t *op) {
  napi_value v;
  return napi_create_buffer_copy(env, op->len, op->buf, NULL, &v) == napi_ok ? v : NULL;
}

static napi_value js_read(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  uint64_t len;
  if (!get_args(env, info, 4, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_u64(env, argv[2], "offset", &op->n[0]) || !arg_u64(env, argv[3], "length", &len)) goto fail;
  if (len > MAX_IO) {
    napi_throw_range_error(env, NULL, "cairn_rbd: length must be at most 64 MiB");
    goto fail;
  }
  op->buf = malloc(len ? len : 1);
  if (!op->buf) {
    napi_throw_error(env, "ENOMEM", "cairn_rbd: out of memory");
    goto fail;
  }
  op->len = len;
  op->exec = exec_read;
  op->done = done_read;
  return op_start(env, op, "rbd_read");
fail:
  op_free(op);
  return NULL;
}

/* ---- allocated(ioctx, name, snap | null, fromSnap | null) → bytes of the image's own objects
 * (not its parent's) at snap (default the head), counting only what changed since fromSnap ---- */

static int add_extent(uint64_t offset, size_t len, int exists, void *arg) {
  if (exists) *(uint64_t *)arg += len;
  return 0;
}

static void exec_allocated(op_t *op) {
  rbd_image_t img;
  uint64_t size = 0;
  if (!op_ok(op, rbd_open_read_only(op->ioctx->io, op->s1, &img, op->s2), "rbd_open_read_only")) return;
  /* whole_object=1: object granularity, which the object map answers without reading data —
   * the same figure `rbd du` reports. */
  if (op_ok(op, rbd_get_size(img, &size), "rbd_get_size"))
    op_ok(op, rbd_diff_iterate2(img, op->s3, 0, size, 0, 1, add_extent, &op->result), "rbd_diff_iterate2");
  image_close(op, img);
}

static napi_value js_allocated(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  if (!arg_opt_str(env, argv[2], "snap", &op->s2) || !arg_opt_str(env, argv[3], "fromSnap", &op->s3)) {
    op_free(op);
    return NULL;
  }
  op->exec = exec_allocated;
  op->done = done_result;
  return op_start(env, op, "rbd_diff_iterate2");
}

bool register_io(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      METHOD("write", js_write),
      METHOD("read", js_read),
      METHOD("allocated", js_allocated),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
