/*
 * vmhost-pwrite: a Node-API addon with a small fixed set of writer threads for the block
 * server's small writes (src/storage/write-pool.ts, used by src/storage/host-file.ts). Built by
 * scripts/build-pwrite.sh into .cache/bin/<hash>/vmhost-pwrite.node; without it (or with
 * VMHOST_NO_PWRITE_ADDON=1) HostFile writes small requests synchronously on the event loop.
 *
 * Why: a 4 KiB write into a page-cache folio can cost tens of microseconds of kernel time
 * (ext4_block_write_begin on a large folio); done one after another on the event loop they
 * use one core while qemu-nbd spreads them over its worker threads. libuv's pool does the same
 * spreading but costs a work item, a uv_async wake-up and a JS callback per request. Here a
 * request is one mutex-guarded list push (a futex wake only when a thread sleeps), and the
 * loop is woken once per batch of completions (uv_async_send coalesces), which hands them to JS
 * in one call: onDone(count), (id, result) pairs in the Float64Array given to start().
 *
 * start(threads, completions: Float64Array, onDone)   once per environment
 * submit(id, fd, data: TypedArray, position)           the caller keeps `data` alive until done
 *   result: bytes written (all of them: short writes are continued here) or -errno.
 *
 * Ordering is the caller's: two requests queued together may run in either order
 * (write-pool.ts holds a write back while an overlapping one is in flight).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#define MAX_THREADS 8

typedef struct req {
  struct req *next;
  double id;
  int fd;
  const char *data;
  size_t len;
  int64_t pos;
  double result;
} req_t;

typedef struct {
  napi_env env;
  napi_ref on_done;
  napi_ref completions_ref;
  napi_async_context async_ctx;
  double *completions;
  size_t slots; /* (id, result) pairs the completions array holds */
  uv_async_t async;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  req_t *queue, *queue_tail;
  req_t *done, *done_tail;
  req_t *spare;
  int sleeping;
  int stopping;
  int threads;
  pthread_t th[MAX_THREADS];
  /* Requests submitted and not yet handed back (loop thread only): the async handle keeps the loop alive while any are. */
  size_t outstanding;
  int started;
} pool_t;

static void *worker(void *arg) {
  pool_t *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->queue && !p->stopping) {
      p->sleeping++;
      pthread_cond_wait(&p->cv, &p->mu);
      p->sleeping--;
    }
    if (p->stopping) break;
    req_t *r = p->queue;
    p->queue = r->next;
    if (!p->queue) p->queue_tail = NULL;
    pthread_mutex_unlock(&p->mu);

    size_t done = 0;
    double result = 0;
    while (done < r->len) {
      ssize_t n = pwrite(r->fd, r->data + done, r->len - done, r->pos + (int64_t)done);
      if (n < 0) {
        if (errno == EINTR) continue;
        result = -(double)errno;
        break;
      }
      if (n == 0) { result = -(double)EIO; break; }
      done += (size_t)n;
    }
    r->result = result < 0 ? result : (double)done;
    r->next = NULL;

    pthread_mutex_lock(&p->mu);
    int first = !p->done;
    if (p->done_tail) p->done_tail->next = r; else p->done = r;
    p->done_tail = r;
    /* One wake-up per batch: later completions join the list the loop has yet to take. */
    if (first) uv_async_send(&p->async);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* On the loop: hand every finished request to JS, `slots` at a time. */
static void on_async(uv_async_t *h) {
  pool_t *p = h->data;
  pthread_mutex_lock(&p->mu);
  req_t *list = p->done;
  p->done = p->done_tail = NULL;
  pthread_mutex_unlock(&p->mu);
  if (!list) return;

  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1];
  napi_get_reference_value(env, p->on_done, &cb);
  napi_get_global(env, &recv);
  while (list) {
    size_t n = 0;
    req_t *batch = list, *last = NULL;
    while (list && n < p->slots) {
      p->completions[2 * n] = list->id;
      p->completions[2 * n + 1] = list->result;
      n++;
      last = list;
      list = list->next;
    }
    p->outstanding -= n;
    if (p->outstanding == 0) uv_unref((uv_handle_t *)&p->async);
    /* Back to the spare list before JS runs: its callbacks may submit again. */
    pthread_mutex_lock(&p->mu);
    last->next = p->spare;
    p->spare = batch;
    pthread_mutex_unlock(&p->mu);
    napi_create_uint32(env, (uint32_t)n, &argv[0]);
    napi_status st = napi_make_callback(env, p->async_ctx, recv, cb, 1, argv, NULL);
    if (st == napi_pending_exception) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
      napi_fatal_exception(env, e);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void cleanup(void *arg) {
  pool_t *p = arg;
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->threads; i++) pthread_join(p->th[i], NULL);
  /* The pool's memory goes with the environment; the handle is closed, never freed under libuv. */
  uv_close((uv_handle_t *)&p->async, NULL);
}

static napi_value fail(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

static pool_t *pool_of(napi_env env) {
  void *d = NULL;
  napi_get_instance_data(env, &d);
  return d;
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pool_t *p = pool_of(env);
  if (p->started) return fail(env, "EALREADY", "the writer threads are already started");
  int32_t threads;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &threads) != napi_ok || threads < 1 || threads > MAX_THREADS) {
    return fail(env, "EINVAL", "start(threads 1..8, completions, onDone)");
  }
  napi_typedarray_type t;
  size_t len;
  void *data;
  if (napi_get_typedarray_info(env, argv[1], &t, &len, &data, NULL, NULL) != napi_ok || t != napi_float64_array || len < 2) {
    return fail(env, "EINVAL", "completions must be a Float64Array of at least 2 elements");
  }
  struct uv_loop_s *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return fail(env, "EIO", "no event loop");
  p->completions = data;
  p->slots = len / 2;
  napi_create_reference(env, argv[1], 1, &p->completions_ref);
  napi_create_reference(env, argv[2], 1, &p->on_done);
  p->env = env;
  napi_value name;
  napi_create_string_utf8(env, "vmhost-pwrite", NAPI_AUTO_LENGTH, &name);
  if (napi_async_init(env, NULL, name, &p->async_ctx) != napi_ok) return fail(env, "EIO", "napi_async_init failed");
  uv_async_init(loop, &p->async, on_async);
  p->async.data = p;
  uv_unref((uv_handle_t *)&p->async);
  for (int i = 0; i < threads; i++) {
    if (pthread_create(&p->th[i], NULL, worker, p) != 0) break;
    p->threads++;
  }
  p->started = 1;
  napi_add_env_cleanup_hook(env, cleanup, p);
  if (p->threads == 0) return fail(env, "EAGAIN", "no writer thread could be started");
  napi_value n;
  napi_create_int32(env, p->threads, &n);
  return n;
}

static napi_value submit(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  pool_t *p = pool_of(env);
  double id, pos;
  int32_t fd;
  void *data;
  size_t len;
  napi_typedarray_type t;
  if (!p->started || argc < 4 || napi_get_value_double(env, argv[0], &id) != napi_ok || napi_get_value_int32(env, argv[1], &fd) != napi_ok ||
      napi_get_typedarray_info(env, argv[2], &t, &len, &data, NULL, NULL) != napi_ok || t != napi_uint8_array ||
      napi_get_value_double(env, argv[3], &pos) != napi_ok || pos < 0) {
    return fail(env, "EINVAL", "submit(id, fd, Uint8Array, position) after start()");
  }
  pthread_mutex_lock(&p->mu);
  req_t *r = p->spare;
  if (r) p->spare = r->next;
  pthread_mutex_unlock(&p->mu);
  if (!r && !(r = malloc(sizeof *r))) return fail(env, "ENOMEM", "out of memory");
  r->next = NULL;
  r->id = id;
  r->fd = fd;
  r->data = data;
  r->len = len;
  r->pos = (int64_t)pos;
  if (p->outstanding++ == 0) uv_ref((uv_handle_t *)&p->async);
  pthread_mutex_lock(&p->mu);
  if (p->queue_tail) p->queue_tail->next = r; else p->queue = r;
  p->queue_tail = r;
  if (p->sleeping) pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  pool_t *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  /* Never freed: one per environment, and libuv may still touch the closed handle inside it. */
  napi_set_instance_data(env, p, NULL, NULL);
  napi_property_descriptor props[] = {
    { "start", NULL, start, NULL, NULL, NULL, napi_default, NULL },
    { "submit", NULL, submit, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}
