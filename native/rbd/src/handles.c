/*
 * Life cycle of the cluster and ioctx handles.
 *
 * A handle is torn down (rados_shutdown / rados_ioctx_destroy, on a worker thread) once it is
 * closing and nothing uses it: no operation in flight and, for a cluster, no open ioctx. It is
 * closing after shutdown()/close(), or after its JS handle was garbage-collected. The C struct
 * itself is freed when both the teardown is finished and the JS handle is gone, so a late call
 * on a closed handle rejects with ESHUTDOWN instead of touching freed memory.
 *
 * When the environment ends (the process exits, a worker stops) with clusters still up, the
 * cleanup hook shuts them down on the JS thread: the one place that does, because work queued
 * from the finalizers that run next would complete after N-API is gone and crash the process.
 */
#include <errno.h>
#include <stdlib.h>

#include "common.h"

/* Type tags: a handle of the wrong kind (or any other external) is refused, not dereferenced. */
static const napi_type_tag CLUSTER_TAG = {0x6361697226e2b0c1ULL, 0x726264636c757374ULL};
static const napi_type_tag IOCTX_TAG = {0x6361697226e2b0c2ULL, 0x726264696f637478ULL};

typedef struct teardown {
  napi_async_work work;
  cluster_t *cluster; /* exactly one of the two */
  ioctx_t *ioctx;
} teardown_t;

static void settle(napi_env env, napi_deferred *waiter, int err, const char *fn, const char *target) {
  if (!*waiter) return;
  napi_value v = NULL;
  if (err == 0) {
    if (napi_get_undefined(env, &v) == napi_ok) napi_resolve_deferred(env, *waiter, v);
  } else if ((v = errno_error(env, err, fn, target)) != NULL) {
    napi_reject_deferred(env, *waiter, v);
  }
  *waiter = NULL;
}

static void free_cluster(cluster_t *c) {
  free(c->who);
  free(c);
}

static void free_ioctx(ioctx_t *io) {
  free(io->where);
  free(io);
}

static void cluster_unlink(napi_env env, cluster_t *c) {
  env_state_t *st = env_state(env);
  if (!st) return;
  if (c->prev) c->prev->next = c->next;
  else if (st->clusters == c) st->clusters = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

static void teardown_exec(napi_env env, void *data) {
  teardown_t *t = data;
  if (t->ioctx) rados_ioctx_destroy(t->ioctx->io);
  else rados_shutdown(t->cluster->rados);
}

static void teardown_done(napi_env env, napi_status status, void *data) {
  teardown_t *t = data;
  env_state_t *st = env_state(env);
  if (st) st->inflight--;
  napi_delete_async_work(env, t->work);
  if (t->ioctx) {
    ioctx_t *io = t->ioctx;
    cluster_t *c = io->cluster;
    io->io = NULL;
    if (io->prev) io->prev->next = io->next;
    else c->ioctxs = io->next;
    if (io->next) io->next->prev = io->prev;
    settle(env, &io->waiter, 0, NULL, NULL);
    if (io->collected) free_ioctx(io);
    cluster_release(env, c); /* the user this ioctx held */
  } else {
    cluster_t *c = t->cluster;
    c->rados = NULL;
    cluster_unlink(env, c);
    settle(env, &c->waiter, 0, NULL, NULL);
    if (c->collected) free_cluster(c);
  }
  free(t);
}

/* Queues the teardown; on the (out of memory) failure path the handle is leaked, not destroyed
 * on the JS thread, and a waiting promise rejects. */
static void queue_teardown(napi_env env, cluster_t *c, ioctx_t *io) {
  env_state_t *st = env_state(env);
  if (!st) return; /* the environment has ended: nothing may be queued any more */
  teardown_t *t = calloc(1, sizeof *t);
  napi_value name;
  if (t) {
    t->cluster = c;
    t->ioctx = io;
    if (napi_create_string_utf8(env, "cairn_rbd.teardown", NAPI_AUTO_LENGTH, &name) == napi_ok &&
        napi_create_async_work(env, NULL, name, teardown_exec, teardown_done, t, &t->work) == napi_ok) {
      if (napi_queue_async_work(env, t->work) == napi_ok) {
        st->inflight++;
        return;
      }
      napi_delete_async_work(env, t->work);
    }
    free(t);
  }
  if (io) settle(env, &io->waiter, ENOMEM, "rados_ioctx_destroy", io->where);
  else settle(env, &c->waiter, ENOMEM, "rados_shutdown", c->who);
}

static void ioctx_maybe_teardown(napi_env env, ioctx_t *io) {
  if (!io->closing || io->down || io->users > 0) return;
  io->down = true;
  queue_teardown(env, NULL, io);
}

static void cluster_maybe_teardown(napi_env env, cluster_t *c) {
  if (!c->closing || c->down || c->users > 0) return;
  c->down = true;
  queue_teardown(env, c, NULL);
}

void ioctx_release(napi_env env, ioctx_t *io) {
  io->users--;
  ioctx_maybe_teardown(env, io);
}

void cluster_release(napi_env env, cluster_t *c) {
  c->users--;
  cluster_maybe_teardown(env, c);
}

static void cluster_finalize(napi_env env, void *data, void *hint) {
  cluster_t *c = data;
  c->collected = true;
  if (!c->rados) {
    free_cluster(c);
    return;
  }
  if (c->exiting) return; /* leaked on purpose: see the file comment */
  c->closing = true;
  cluster_maybe_teardown(env, c);
}

static void ioctx_finalize(napi_env env, void *data, void *hint) {
  ioctx_t *io = data;
  io->collected = true;
  if (!io->io) {
    free_ioctx(io);
    return;
  }
  if (io->exiting) return;
  io->closing = true;
  ioctx_maybe_teardown(env, io);
}

napi_value cluster_wrap(napi_env env, cluster_t *c) {
  napi_value v;
  env_state_t *st = env_state(env);
  if (st) {
    c->next = st->clusters;
    if (st->clusters) st->clusters->prev = c;
    st->clusters = c;
  }
  if (napi_create_external(env, c, cluster_finalize, NULL, &v) != napi_ok) {
    c->collected = c->closing = true;
    cluster_maybe_teardown(env, c);
    return NULL;
  }
  if (napi_type_tag_object(env, v, &CLUSTER_TAG) != napi_ok) return NULL; /* freed by the finalizer */
  return v;
}

napi_value ioctx_wrap(napi_env env, cluster_t *c, rados_ioctx_t rio, char *where) {
  ioctx_t *io = calloc(1, sizeof *io);
  if (!io) {
    /* Out of memory: the rados ioctx is leaked rather than destroyed on the JS thread. */
    free(where);
    napi_throw_error(env, "ENOMEM", "cairn_rbd: out of memory");
    return NULL;
  }
  io->io = rio;
  io->cluster = c;
  io->where = where;
  io->next = c->ioctxs;
  if (c->ioctxs) c->ioctxs->prev = io;
  c->ioctxs = io;
  c->users++;
  napi_value v;
  if (napi_create_external(env, io, ioctx_finalize, NULL, &v) != napi_ok) {
    io->collected = io->closing = true;
    ioctx_maybe_teardown(env, io);
    return NULL;
  }
  if (napi_type_tag_object(env, v, &IOCTX_TAG) != napi_ok) return NULL;
  /* shutdown() came while it was opening: it is closed with the others (the op opening it
   * still holds the cluster, so the cluster goes down after it). */
  if (c->closing) {
    io->closing = true;
    ioctx_maybe_teardown(env, io);
  }
  return v;
}

static void *unwrap(napi_env env, napi_value v, const napi_type_tag *tag, const char *what) {
  bool ok = false;
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return NULL;
  if (t == napi_external && napi_check_object_type_tag(env, v, tag, &ok) == napi_ok && ok &&
      napi_get_value_external(env, v, &data) == napi_ok)
    return data;
  napi_throw_type_error(env, NULL, what);
  return NULL;
}

cluster_t *cluster_arg(napi_env env, napi_value v) {
  return unwrap(env, v, &CLUSTER_TAG, "cairn_rbd: expected a cluster handle");
}

ioctx_t *ioctx_arg(napi_env env, napi_value v) {
  return unwrap(env, v, &IOCTX_TAG, "cairn_rbd: expected an ioctx handle");
}

/* A second close/shutdown joins nothing: it settles at once if done, or is refused (EALREADY);
 * the TypeScript wrapper memoizes the first promise, so callers never see that. */
static napi_value close_common(napi_env env, napi_deferred *waiter, bool done, napi_value promise,
                               napi_deferred d, const char *fn, const char *target) {
  if (done) {
    napi_value u;
    if (napi_get_undefined(env, &u) == napi_ok) napi_resolve_deferred(env, d, u);
  } else if (*waiter) {
    napi_value e = errno_error(env, EALREADY, fn, target);
    if (e) napi_reject_deferred(env, d, e);
  } else {
    *waiter = d;
  }
  return promise;
}

napi_value ioctx_close(napi_env env, ioctx_t *io) {
  napi_value promise;
  napi_deferred d;
  if (napi_create_promise(env, &d, &promise) != napi_ok) return NULL;
  io->closing = true;
  close_common(env, &io->waiter, io->io == NULL, promise, d, "rados_ioctx_destroy", io->where);
  ioctx_maybe_teardown(env, io);
  return promise;
}

napi_value cluster_shutdown(napi_env env, cluster_t *c) {
  napi_value promise;
  napi_deferred d;
  if (napi_create_promise(env, &d, &promise) != napi_ok) return NULL;
  c->closing = true;
  close_common(env, &c->waiter, c->rados == NULL, promise, d, "rados_shutdown", c->who);
  /* Open ioctxs would keep the cluster up forever: close them; each releases the cluster. */
  for (ioctx_t *io = c->ioctxs; io; io = io->next) {
    io->closing = true;
    ioctx_maybe_teardown(env, io);
  }
  cluster_maybe_teardown(env, c);
  return promise;
}

/* The environment is ending: shut down what is still up (see the file comment). */
static void on_env_exit(void *arg) {
  env_state_t *st = arg;
  /* Work still running would use the handles: then they are leaked instead. */
  bool idle = st->inflight == 0;
  for (cluster_t *c = st->clusters; c; c = c->next) {
    for (ioctx_t *io = c->ioctxs; io; io = io->next) {
      io->exiting = true;
      if (idle && io->io) {
        rados_ioctx_destroy(io->io);
        io->io = NULL;
      }
    }
    c->exiting = true;
    if (idle) {
      rados_shutdown(c->rados);
      c->rados = NULL;
    }
  }
  /* Finalizers that run after this find no state, so queue_teardown queues nothing. */
  napi_set_instance_data(st->env, NULL, NULL, NULL);
  free(st);
}

env_state_t *env_state(napi_env env) {
  void *data = NULL;
  return napi_get_instance_data(env, &data) == napi_ok ? data : NULL;
}

/* Hooks run in reverse order of registration, so this one runs before N-API's own clean-up
 * (registered before the module's init) runs the finalizers. */
bool env_init(napi_env env) {
  env_state_t *st = calloc(1, sizeof *st);
  if (!st) return false;
  st->env = env;
  if (napi_set_instance_data(env, st, NULL, NULL) != napi_ok) {
    free(st);
    return false;
  }
  return napi_add_env_cleanup_hook(env, on_env_exit, st) == napi_ok;
}
