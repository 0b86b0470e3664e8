/* Cluster-level calls: connect, shutdown, capacity, and opening/closing ioctxs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* ---- connect(conf, monHost, user, key, keyring, timeoutSeconds) → cluster ---- */

static bool conf_set(op_t *op, rados_t r, const char *option, const char *value) {
  op->detail = option; /* the option's name only: a key must never reach a message */
  return op_ok(op, rados_conf_set(r, option, value), "rados_conf_set");
}

static void exec_connect(op_t *op) {
  rados_t r = NULL;
  char secs[24];
  snprintf(secs, sizeof secs, "%llu", (unsigned long long)op->n[0]);
  if (!op_ok(op, rados_create2(&r, "ceph", op->target, 0), "rados_create2")) return;
  /* Only an explicit conf is read: a monHost-only connection must not pick up /etc/ceph. */
  if (op->s1) {
    op->detail = op->s1; /* the path: not a secret */
    if (!op_ok(op, rados_conf_read_file(r, op->s1), "rados_conf_read_file")) goto fail;
  }
  if (op->s2 && !conf_set(op, r, "mon_host", op->s2)) goto fail;
  if (op->s3 && !conf_set(op, r, "keyring", op->s3)) goto fail;
  if (op->secret) {
    bool ok = conf_set(op, r, "key", op->secret);
    explicit_bzero(op->secret, strlen(op->secret));
    if (!ok) goto fail;
  }
  /* Bound every wait on the cluster, so a dead monitor gives ETIMEDOUT instead of a hang. */
  if (!conf_set(op, r, "client_mount_timeout", secs) || !conf_set(op, r, "rados_mon_op_timeout", secs) ||
      !conf_set(op, r, "rados_osd_op_timeout", secs))
    goto fail;
  op->detail = NULL;
  if (!op_ok(op, rados_connect(r), "rados_connect")) goto fail;
  op->out = r;
  return;
fail:
  rados_shutdown(r);
}

static napi_value done_connect(napi_env env, op_t *op) {
  cluster_t *c = calloc(1, sizeof *c);
  char *who = strdup(op->target);
  if (!c || !who) {
    /* Out of memory: the connection is leaked rather than shut down on the JS thread. */
    free(c);
    free(who);
    op->out = NULL;
    napi_throw_error(env, "ENOMEM", "cairn_rbd: out of memory");
    return NULL;
  }
  c->rados = op->out;
  c->who = who;
  op->out = NULL; /* the cluster owns it now */
  return cluster_wrap(env, c);
}

static napi_value js_connect(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  char *user = NULL;
  if (!get_args(env, info, 6, argv)) return NULL;
  op_t *op = op_new();
  if (!op) return NULL;
  if (!arg_opt_str(env, argv[0], "conf", &op->s1) || !arg_opt_str(env, argv[1], "monHost", &op->s2) ||
      !arg_str(env, argv[2], "user", &user) || !arg_opt_str(env, argv[3], "key", &op->secret) ||
      !arg_opt_str(env, argv[4], "keyring", &op->s3) || !arg_u64(env, argv[5], "timeoutSeconds", &op->n[0])) {
    free(user);
    op_free(op);
    return NULL;
  }
  op->target = strfmt("client.%s", user);
  free(user);
  op->exec = exec_connect;
  op->done = done_connect;
  return op_start(env, op, "rados_connect");
}

/* ---- shutdown(cluster) ---- */

static napi_value js_shutdown(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  cluster_t *c = cluster_arg(env, argv[0]);
  return c ? cluster_shutdown(env, c) : NULL;
}

/* ---- clusterStat(cluster) → { totalBytes, usedBytes, availBytes, objects } ---- */

static void exec_cluster_stat(op_t *op) {
  struct rados_cluster_stat_t *st = calloc(1, sizeof *st);
  if (!st) {
    op_ok(op, -ENOMEM, "rados_cluster_stat");
    return;
  }
  op->out = st;
  op_ok(op, rados_cluster_stat(op->cluster->rados, st), "rados_cluster_stat");
}

static napi_value done_cluster_stat(napi_env env, op_t *op) {
  const struct rados_cluster_stat_t *st = op->out;
  napi_value o;
  if (!new_object(env, &o) || !set_num(env, o, "totalBytes", (double)st->kb * 1024) ||
      !set_num(env, o, "usedBytes", (double)st->kb_used * 1024) ||
      !set_num(env, o, "availBytes", (double)st->kb_avail * 1024) ||
      !set_num(env, o, "objects", (double)st->num_objects))
    return NULL;
  return o;
}

static napi_value js_cluster_stat(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  cluster_t *c = cluster_arg(env, argv[0]);
  op_t *op = c ? op_new() : NULL;
  if (!op) return NULL;
  op->cluster = c;
  op->target = strdup(c->who);
  op->exec = exec_cluster_stat;
  op->done = done_cluster_stat;
  op->free_out = free;
  return op_start(env, op, "rados_cluster_stat");
}

/* ---- poolStat(cluster, pool) → { bytes, userBytes, objects, objectClones, ... } ---- */

static void exec_pool_stat(op_t *op) {
  rados_ioctx_t io = NULL;
  struct rados_pool_stat_t *st = calloc(1, sizeof *st);
  if (!st) {
    op_ok(op, -ENOMEM, "rados_ioctx_pool_stat");
    return;
  }
  op->out = st;
  if (!op_ok(op, rados_ioctx_create(op->cluster->rados, op->s1, &io), "rados_ioctx_create")) return;
  op_ok(op, rados_ioctx_pool_stat(io, st), "rados_ioctx_pool_stat");
  rados_ioctx_destroy(io);
}

static napi_value done_pool_stat(napi_env env, op_t *op) {
  const struct rados_pool_stat_t *st = op->out;
  napi_value o;
  if (!new_object(env, &o) || !set_num(env, o, "bytes", (double)st->num_bytes) ||
      !set_num(env, o, "userBytes", (double)st->num_user_bytes) ||
      !set_num(env, o, "objects", (double)st->num_objects) ||
      !set_num(env, o, "objectClones", (double)st->num_object_clones) ||
      !set_num(env, o, "objectCopies", (double)st->num_object_copies) ||
      !set_num(env, o, "objectsDegraded", (double)st->num_objects_degraded))
    return NULL;
  return o;
}

static napi_value js_pool_stat(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  cluster_t *c = cluster_arg(env, argv[0]);
  op_t *op = c ? op_new() : NULL;
  if (!op) return NULL;
  if (!arg_str(env, argv[1], "pool", &op->s1)) {
    op_free(op);
    return NULL;
  }
  op->cluster = c;
  op->target = strdup(op->s1);
  op->exec = exec_pool_stat;
  op->done = done_pool_stat;
  op->free_out = free;
  return op_start(env, op, "rados_ioctx_pool_stat");
}

/* ---- ioctxOpen(cluster, pool, namespace) → ioctx ---- */

static void exec_ioctx_open(op_t *op) {
  rados_ioctx_t io = NULL;
  if (!op_ok(op, rados_ioctx_create(op->cluster->rados, op->s1, &io), "rados_ioctx_create")) return;
  if (op->s2) {
    /* RADOS accepts any namespace; RBD's own registry says whether it was created. */
    bool exists = false;
    if (!op_ok(op, rbd_namespace_exists(io, op->s2, &exists), "rbd_namespace_exists") ||
        !op_ok(op, exists ? 0 : -ENOENT, "rbd_namespace_exists")) {
      rados_ioctx_destroy(io);
      return;
    }
    rados_ioctx_set_namespace(io, op->s2);
  }
  op->out = io;
}

static napi_value done_ioctx_open(napi_env env, op_t *op) {
  char *where = strdup(op->target);
  rados_ioctx_t io = op->out;
  op->out = NULL; /* the handle owns it now */
  if (!where) {
    napi_throw_error(env, "ENOMEM", "cairn_rbd: out of memory");
    return NULL;
  }
  return ioctx_wrap(env, op->cluster, io, where);
}

static napi_value js_ioctx_open(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  cluster_t *c = cluster_arg(env, argv[0]);
  op_t *op = c ? op_new() : NULL;
  if (!op) return NULL;
  if (!arg_str(env, argv[1], "pool", &op->s1) || !arg_opt_str(env, argv[2], "namespace", &op->s2)) {
    op_free(op);
    return NULL;
  }
  op->cluster = c;
  op->target = op->s2 ? strfmt("%s/%s", op->s1, op->s2) : strdup(op->s1);
  op->exec = exec_ioctx_open;
  op->done = done_ioctx_open;
  return op_start(env, op, "rados_ioctx_create");
}

/* ---- ioctxClose(ioctx) ---- */

static napi_value js_ioctx_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  ioctx_t *io = ioctx_arg(env, argv[0]);
  return io ? ioctx_close(env, io) : NULL;
}

bool register_cluster(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      METHOD("connect", js_connect),
      METHOD("shutdown", js_shutdown),
      METHOD("clusterStat", js_cluster_stat),
      METHOD("poolStat", js_pool_stat),
      METHOD("ioctxOpen", js_ioctx_open),
      METHOD("ioctxClose", js_ioctx_close),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
