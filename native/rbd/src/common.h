/*
 * Shared declarations of the cairn_rbd addon: the cluster and ioctx handles, the asynchronous
 * operation that runs every librados/librbd call on a libuv worker thread, and N-API helpers.
 *
 * Threading rule: librados/librbd are called only from op exec functions and from teardown work,
 * both on libuv worker threads (the one exception: the environment's exit hook, handles.c).
 * Everything else, including every counter in the handles, is touched on the JS thread only,
 * so no locks are needed.
 */
#ifndef CAIRN_RBD_COMMON_H
#define CAIRN_RBD_COMMON_H

#include <node_api.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- handles (handles.c) ---- */

typedef struct ioctx ioctx_t;
typedef struct cluster cluster_t;

/* Per N-API environment: what must be shut down if the environment ends with handles open. */
typedef struct env_state {
  napi_env env;
  unsigned inflight;   /* operations and teardowns queued or running */
  cluster_t *clusters; /* clusters not torn down yet */
} env_state_t;

/* A connected cluster. Freed once it is down and its JS handle is gone. */
struct cluster {
  rados_t rados;
  char *who;            /* "client.<user>", for error messages */
  unsigned users;       /* operations in flight + open ioctxs: rados_shutdown waits for 0 */
  bool closing;         /* shutdown() was called or the JS handle was collected: no new work */
  bool down;            /* rados_shutdown has run, or is running */
  bool collected;       /* the JS handle is gone */
  napi_deferred waiter; /* the promise of shutdown(), settled once down */
  ioctx_t *ioctxs;      /* open ioctxs: shutdown() closes them first */
  bool exiting;         /* the environment ended with this cluster still up: leaked */
  cluster_t *prev, *next; /* in env_state_t.clusters */
};

/* An I/O context on a pool (and namespace). Holds one user of its cluster while open. */
struct ioctx {
  rados_ioctx_t io;
  cluster_t *cluster;
  char *where; /* "pool" or "pool/namespace", for error messages */
  unsigned users;
  bool closing, down, collected, exiting;
  napi_deferred waiter;
  ioctx_t *prev, *next; /* in cluster->ioctxs */
};

bool env_init(napi_env env);
env_state_t *env_state(napi_env env);
napi_value cluster_wrap(napi_env env, cluster_t *c);
cluster_t *cluster_arg(napi_env env, napi_value v);
napi_value ioctx_wrap(napi_env env, cluster_t *c, rados_ioctx_t io, char *where);
ioctx_t *ioctx_arg(napi_env env, napi_value v);
void cluster_release(napi_env env, cluster_t *c);
void ioctx_release(napi_env env, ioctx_t *io);
napi_value cluster_shutdown(napi_env env, cluster_t *c);
napi_value ioctx_close(napi_env env, ioctx_t *io);

/* ---- asynchronous operations (op.c) ---- */

typedef struct op op_t;

struct op {
  napi_async_work work;
  napi_deferred deferred;
  cluster_t *cluster; /* each non-NULL handle is held (a user) while the op is queued or runs */
  ioctx_t *ioctx;
  ioctx_t *ioctx2;                            /* clone destination */
  void (*exec)(op_t *op);                     /* worker thread: the librados/librbd calls */
  napi_value (*done)(napi_env env, op_t *op); /* JS thread: the resolved value, NULL on failure */
  void (*free_out)(void *out);                /* frees op->out */
  int rc;                                     /* 0, or a negative errno */
  const char *fn;                             /* the call that failed */
  const char *detail;                         /* optional: which option or step, in messages */
  char *target;                               /* what it acted on: "pool/image@snap" */
  char *s1, *s2, *s3;                         /* string arguments */
  char *secret;                               /* zeroed before it is freed; never in a message */
  uint64_t n[3];                              /* number arguments */
  bool has[3];                                /* whether optional n[i] was given */
  bool b1;                                    /* a flag argument */
  uint64_t result;                            /* a number result */
  void *buf; /* bytes to write, or bytes read */
  size_t len;
  void *out; /* the result built by exec */
};

op_t *op_new(void);
void op_free(op_t *op);
napi_value op_start(napi_env env, op_t *op, const char *name);
bool op_ok(op_t *op, int r, const char *fn);
napi_value done_undefined(napi_env env, op_t *op);
napi_value done_result(napi_env env, op_t *op);
op_t *image_op(napi_env env, napi_value io_arg, napi_value name_arg);
napi_value image_call(napi_env env, napi_callback_info info, void (*exec)(op_t *), const char *name);
bool image_open(op_t *op, bool writable, rbd_image_t *img);
void image_close(op_t *op, rbd_image_t img);
int noop_progress(uint64_t offset, uint64_t total, void *arg);

/* ---- errors (errors.c) ---- */

napi_value errno_error(napi_env env, int err, const char *fn, const char *target);

/* ---- N-API helpers (util.c) ---- */

bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv);
bool arg_str(napi_env env, napi_value v, const char *what, char **out);
bool arg_opt_str(napi_env env, napi_value v, const char *what, char **out);
bool arg_u64(napi_env env, napi_value v, const char *what, uint64_t *out);
bool arg_opt_u64(napi_env env, napi_value v, const char *what, uint64_t *out, bool *present);
bool arg_bool(napi_env env, napi_value v, const char *what, bool *out);
char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *str_or_null(const char *s);
bool set_str(napi_env env, napi_value obj, const char *key, const char *val);
bool set_num(napi_env env, napi_value obj, const char *key, double val);
bool set_bool(napi_env env, napi_value obj, const char *key, bool val);
bool set_val(napi_env env, napi_value obj, const char *key, napi_value val);
bool new_object(napi_env env, napi_value *out);
double ts_ms(const struct timespec *ts);

/* ---- exported functions, one table per file ---- */

#define METHOD(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

bool register_cluster(napi_env env, napi_value exports);
bool register_image(napi_env env, napi_value exports);
bool register_io(napi_env env, napi_value exports);
bool register_lists(napi_env env, napi_value exports);
bool register_snap(napi_env env, napi_value exports);
bool register_trash(napi_env env, napi_value exports);

#endif
