/* One asynchronous operation: a promise, the handles it holds, and the librados/librbd calls
 * that exec makes on a libuv worker thread. The JS thread never waits on Ceph. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

op_t *op_new(void) { return calloc(1, sizeof(op_t)); }

void op_free(op_t *op) {
  if (!op) return;
  if (op->out && op->free_out) op->free_out(op->out);
  if (op->secret) {
    /* The key lives as briefly as possible; librados keeps its own copy. */
    explicit_bzero(op->secret, strlen(op->secret));
    free(op->secret);
  }
  free(op->target);
  free(op->s1);
  free(op->s2);
  free(op->s3);
  free(op->buf);
  free(op);
}

bool op_ok(op_t *op, int r, const char *fn) {
  if (r >= 0) return true;
  op->rc = r;
  op->fn = fn;
  return false;
}

napi_value done_undefined(napi_env env, op_t *op) {
  napi_value v;
  return napi_get_undefined(env, &v) == napi_ok ? v : NULL;
}

static void execute(napi_env env, void *data) {
  op_t *op = data;
  op->exec(op);
}

static void release_handles(napi_env env, op_t *op) {
  if (op->ioctx) ioctx_release(env, op->ioctx);
  if (op->ioctx2) ioctx_release(env, op->ioctx2);
  if (op->cluster) cluster_release(env, op->cluster);
}

/* Rejects with whatever N-API left pending, or a plain error when nothing is. */
static void reject_pending(napi_env env, napi_deferred d) {
  bool pending = false;
  napi_value err = NULL;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
    napi_get_and_clear_last_exception(env, &err);
  if (!err) {
    napi_value msg;
    if (napi_create_string_utf8(env, "cairn_rbd: could not build the result", NAPI_AUTO_LENGTH, &msg) !=
            napi_ok ||
        napi_create_error(env, NULL, msg, &err) != napi_ok)
      return; /* nothing left to reject with; the promise stays pending */
  }
  napi_reject_deferred(env, d, err);
}

static void complete(napi_env env, napi_status status, void *data) {
  op_t *op = data;
  env_state_t *st = env_state(env);
  if (st) st->inflight--;
  napi_value value = NULL;
  if (status != napi_ok) {
    value = errno_error(env, ECANCELED, op->fn ? op->fn : "cairn_rbd", op->target);
    if (value) napi_reject_deferred(env, op->deferred, value);
    else reject_pending(env, op->deferred);
  } else if (op->rc < 0) {
    char *target = op->detail ? strfmt("%s: %s", op->target ? op->target : "", op->detail) : NULL;
    value = errno_error(env, -op->rc, op->fn, target ? target : op->target);
    free(target);
    if (value) napi_reject_deferred(env, op->deferred, value);
    else reject_pending(env, op->deferred);
  } else {
    value = op->done(env, op);
    if (value) napi_resolve_deferred(env, op->deferred, value);
    else reject_pending(env, op->deferred);
  }
  /* Only now: done() may attach a new ioctx to the cluster, which must keep it up until then. */
  release_handles(env, op);
  napi_delete_async_work(env, op->work);
  op_free(op);
}

static bool closed(const op_t *op) {
  return (op->cluster && op->cluster->closing) || (op->ioctx && op->ioctx->closing) ||
         (op->ioctx2 && op->ioctx2->closing);
}

/*
 * Queues op on the libuv thread pool and returns its promise. Takes ownership of op in every
 * case. A closed handle rejects with ESHUTDOWN without queueing anything.
 */
napi_value op_start(napi_env env, op_t *op, const char *name) {
  napi_value promise, resource;
  if (napi_create_promise(env, &op->deferred, &promise) != napi_ok) {
    op_free(op);
    return NULL;
  }
  if (!op->target) { /* every op names its target; only an allocation can have failed */
    napi_value err = errno_error(env, ENOMEM, name, "");
    if (err) napi_reject_deferred(env, op->deferred, err);
    else reject_pending(env, op->deferred);
    op_free(op);
    return promise;
  }
  if (closed(op)) {
    napi_value err = errno_error(env, ESHUTDOWN, name, op->target);
    if (err) napi_reject_deferred(env, op->deferred, err);
    else reject_pending(env, op->deferred);
    op_free(op);
    return promise;
  }
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource) != napi_ok ||
      napi_create_async_work(env, NULL, resource, execute, complete, op, &op->work) != napi_ok) {
    reject_pending(env, op->deferred);
    op_free(op);
    return promise;
  }
  if (napi_queue_async_work(env, op->work) != napi_ok) {
    reject_pending(env, op->deferred);
    napi_delete_async_work(env, op->work);
    op_free(op);
    return promise;
  }
  env_state_t *st = env_state(env);
  if (st) st->inflight++;
  if (op->cluster) op->cluster->users++;
  if (op->ioctx) op->ioctx->users++;
  if (op->ioctx2) op->ioctx2->users++;
  return promise;
}

napi_value done_result(napi_env env, op_t *op) {
  napi_value v;
  return napi_create_double(env, (double)op->result, &v) == napi_ok ? v : NULL;
}

/* An op on one image of an ioctx: parses (ioctx, name) and names the target "pool[/ns]/image".
 * Returns NULL with a JS exception pending on bad arguments. */
op_t *image_op(napi_env env, napi_value io_arg, napi_value name_arg) {
  ioctx_t *io = ioctx_arg(env, io_arg);
  op_t *op = io ? op_new() : NULL;
  if (!op) return NULL;
  if (!arg_str(env, name_arg, "image", &op->s1)) {
    op_free(op);
    return NULL;
  }
  op->ioctx = io;
  op->target = strfmt("%s/%s", io->where, op->s1);
  op->exec = NULL;
  op->done = done_undefined;
  return op;
}

/* Opens op->s1. Read-only opens set no watch on the header: cheaper, and fine for queries. */
bool image_open(op_t *op, bool writable, rbd_image_t *img) {
  if (writable) return op_ok(op, rbd_open(op->ioctx->io, op->s1, img, NULL), "rbd_open");
  return op_ok(op, rbd_open_read_only(op->ioctx->io, op->s1, img, NULL), "rbd_open_read_only");
}

/* Closes the image; a close failure is reported only when nothing failed before it. */
void image_close(op_t *op, rbd_image_t img) {
  int r = rbd_close(img);
  if (r < 0 && op->rc == 0) op_ok(op, r, "rbd_close");
}

/* librbd's *_with_progress calls invoke their callback unconditionally: NULL would crash. */
int noop_progress(uint64_t offset, uint64_t total, void *arg) { return 0; }

/* The JS entry point of an op whose only arguments are (ioctx, image) and that resolves to
 * undefined. */
napi_value image_call(napi_env env, napi_callback_info info, void (*exec)(op_t *), const char *name) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  op_t *op = image_op(env, argv[0], argv[1]);
  if (!op) return NULL;
  op->exec = exec;
  return op_start(env, op, name);
}
