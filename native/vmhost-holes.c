/*
 * vmhost-holes: a Node-API addon that maps a file's data and holes with
 * lseek(SEEK_DATA/SEEK_HOLE), which Node's fs module does not offer. Without it a sparse
 * raw image reads as all data: every hole is read and compared as zeros (Convert-VHD) and
 * reported as allocated (NBD BLOCK_STATUS). Built by scripts/build-holes.sh into
 * .cache/bin/<hash>/vmhost-holes.node and loaded by src/blockio/file-map.ts, which falls
 * back to "everything is data" when the addon is missing.
 *
 * mapData(fd, offset, length) -> [start0, end0, start1, end1, ...]: the data ranges that
 * meet [offset, offset+length), clipped to it, in order. Everything else in the range is a
 * hole (past the end of the file included). A file system without SEEK_DATA support makes
 * the kernel report the whole file as data, which is the safe answer.
 *
 * firstData(fd, offset, length) -> the offset of the first data byte in [offset,
 * offset+length), or -1 when the range is all hole: one lseek(SEEK_DATA), where mapData
 * takes two per data run. The block server's "is this read all zeros?" asks only this.
 *
 * lockFd(fd, exclusive) -> true when flock(2) took the lock (LOCK_NB), false when another
 * open file description holds a conflicting one. Also missing from Node: without the addon
 * src/storage/file-lock.ts runs flock(1) on the inherited descriptor (a process per lock).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <node_api.h>

#define MAX_SAFE 9007199254740991.0

static napi_value fail(napi_env env, int err, const char *what) {
  const char *name = strerrorname_np(err);
  char msg[128];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, name ? name : "EIO", msg);
  return NULL;
}

/* The (fd, offset, length) arguments of mapData and firstData; 0 (a TypeError thrown) when invalid. */
static int range_args(napi_env env, napi_callback_info info, const char *name, int32_t *fd, off_t *pos, off_t *end) {
  size_t argc = 3;
  napi_value argv[3];
  double off, len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_value_int32(env, argv[0], fd) != napi_ok ||
      napi_get_value_double(env, argv[1], &off) != napi_ok ||
      napi_get_value_double(env, argv[2], &len) != napi_ok ||
      *fd < 0 || off < 0 || len < 0 || off + len > MAX_SAFE) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s(fd, offset, length): a descriptor and a non-negative safe range", name);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  *pos = (off_t)off;
  *end = (off_t)(off + len);
  return 1;
}

static napi_value first_data(napi_env env, napi_callback_info info) {
  int32_t fd;
  off_t pos, end;
  if (!range_args(env, info, "firstData", &fd, &pos, &end)) return NULL;
  double at = -1;
  if (pos < end) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0 && errno != ENXIO) return fail(env, errno, "lseek(SEEK_DATA)"); /* ENXIO: no data at or after pos */
    if (data >= 0 && data < end) at = (double)data;
  }
  napi_value out;
  return napi_create_double(env, at, &out) == napi_ok ? out : NULL;
}

static napi_value map_data(napi_env env, napi_callback_info info) {
  int32_t fd;
  off_t pos, end;
  if (!range_args(env, info, "mapData", &fd, &pos, &end)) return NULL;
  napi_value out;
  if (napi_create_array(env, &out) != napi_ok) return NULL;
  uint32_t n = 0;
  while (pos < end) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break; /* no data at or after pos: the rest is a hole */
      return fail(env, errno, "lseek(SEEK_DATA)");
    }
    if (data >= end) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return fail(env, errno, "lseek(SEEK_HOLE)");
    if (hole > end) hole = end;
    napi_value a, b;
    if (napi_create_double(env, (double)data, &a) != napi_ok || napi_set_element(env, out, n++, a) != napi_ok ||
        napi_create_double(env, (double)hole, &b) != napi_ok || napi_set_element(env, out, n++, b) != napi_ok) {
      return NULL;
    }
    pos = hole;
  }
  return out;
}

static napi_value lock_fd(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  bool exclusive;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_bool(env, argv[1], &exclusive) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "lockFd(fd, exclusive): a descriptor and a boolean");
    return NULL;
  }
  int r;
  do r = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB); while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EWOULDBLOCK) return fail(env, errno, "flock");
  napi_value out;
  if (napi_get_boolean(env, r == 0, &out) != napi_ok) return NULL;
  return out;
}

/* ==== file-to-file copies (convert's fast path) and hole punching ====================
 * All run as Node-API async work in libuv's thread pool, so the event loop never waits on
 * them, and return a promise.
 *
 * copyRange(fdIn, offIn, fdOut, offOut, length) -> bytes copied with copy_file_range(2): the
 * kernel moves page-cache pages file to file (or shares extents on a reflink file system),
 * with no user-space buffer and no second copy. Fewer than `length` when the source ends
 * first (the caller zero-fills the rest); -1 when the kernel cannot copy between these files
 * (EXDEV, EOPNOTSUPP, ENOSYS, EINVAL before anything was copied): the caller reads and writes.
 *
 * nonZeroRuns(fd, offset, length, granule) -> [start0, end0, ...]: the runs of `granule`-sized
 * pieces of [offset, offset+length) that hold a non-zero byte, merged, absolute offsets. Read
 * with pread into a small buffer (no mmap: a file truncated under us must give an error, not
 * SIGBUS); a piece of data usually shows a non-zero byte in its first 512 bytes, so data
 * costs one small read per granule and only zero pieces are read whole.
 *
 * copyDirect(fdIn, offIn, fdOut, offOut, length) -> length: the range read with pread into an
 * aligned per-thread buffer and written with pwrite to fdOut, a descriptor opened O_DIRECT
 * (offOut and length multiples of 4096). Past the source's end it writes zeros. For a durable
 * conversion: the data goes to the disk while the copy runs, instead of all at once in the
 * final fsync, and leaves no dirty page cache behind. Reserve the range first (`reserve`):
 * ext4 lets direct writes into allocated (unwritten) extents run side by side, where a write
 * into a hole holds the inode exclusively until the disk has written it.
 *
 * reserve(fd, offset, length) -> true when fallocate(KEEP_SIZE) allocated the range (what it
 * held is kept; a hole reads as zeros), false when the file system cannot (EOPNOTSUPP). ext4's
 * fallocate waits for the file's direct writes in flight: reserve a whole copy, not each piece.
 *
 * punchHole(fd, offset, length) -> true when fallocate(PUNCH_HOLE | KEEP_SIZE) freed the range
 * (it reads as zeros, the size is unchanged: a raw image's trim), false when the file system
 * cannot (EOPNOTSUPP): the caller writes zeros.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>

#define COPY_PROBE 512
/* copyDirect's unit: one buffer per thread-pool thread, kept for the next job (no page faults per copy). */
#define DIRECT_BUF (1024 * 1024)
#define DIRECT_ALIGN 4096

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd_in, fd_out;
  off_t off_in, off_out;
  size_t len, granule;
  int err;
  const char *what;
  int punch;        /* punchHole, reserve: the fallocate mode, + 1 */
  int64_t copied;   /* copyRange; punchHole: 1 done, -1 unsupported */
  double *runs;     /* nonZeroRuns: start/end pairs */
  size_t nruns;
} copy_job;

static void copy_execute(napi_env env, void *data) {
  (void)env;
  copy_job *j = data;
  loff_t in = j->off_in, out = j->off_out;
  size_t left = j->len;
  j->copied = 0;
  while (left > 0) {
    ssize_t n = copy_file_range(j->fd_in, &in, j->fd_out, &out, left, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (j->copied == 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)) {
        j->copied = -1;
        return;
      }
      j->err = errno;
      j->what = "copy_file_range";
      return;
    }
    if (n == 0) return; /* end of the source */
    j->copied += n;
    left -= (size_t)n;
  }
}

static int pread_full(int fd, uint8_t *buf, size_t n, off_t off);

static void direct_execute(napi_env env, void *data) {
  (void)env;
  copy_job *j = data;
  static __thread uint8_t *buf;
  if (!buf && posix_memalign((void **)&buf, DIRECT_ALIGN, DIRECT_BUF) != 0) {
    buf = NULL;
    j->err = ENOMEM;
    j->what = "copyDirect";
    return;
  }
  for (size_t done = 0; done < j->len;) {
    size_t n = j->len - done < DIRECT_BUF ? j->len - done : DIRECT_BUF;
    if (pread_full(j->fd_in, buf, n, j->off_in + (off_t)done) < 0) {
      j->err = errno;
      j->what = "pread";
      return;
    }
    for (size_t w = 0; w < n;) {
      ssize_t k = pwrite(j->fd_out, buf + w, n - w, j->off_out + (off_t)(done + w));
      if (k < 0) {
        if (errno == EINTR) continue;
        j->err = errno;
        j->what = "pwrite(O_DIRECT)";
        return;
      }
      w += (size_t)k;
    }
    done += n;
  }
  j->copied = (int64_t)j->len;
}

static void punch_execute(napi_env env, void *data) {
  (void)env;
  copy_job *j = data;
  int r;
  do r = fallocate(j->fd_in, j->punch - 1, j->off_in, (off_t)j->len); while (r < 0 && errno == EINTR);
  if (r == 0) j->copied = 1;
  else if (errno == EOPNOTSUPP || errno == ENOSYS) j->copied = -1;
  else {
    j->err = errno;
    j->what = (j->punch - 1) & FALLOC_FL_PUNCH_HOLE ? "fallocate(PUNCH_HOLE)" : "fallocate(KEEP_SIZE)";
  }
}

/* pread all of buf (short only at end of file: the rest is zeroed, as past-EOF bytes read). */
static int pread_full(int fd, uint8_t *buf, size_t n, off_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(fd, buf + done, n - done, off + (off_t)done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) {
      memset(buf + done, 0, n - done);
      break;
    }
    done += (size_t)r;
  }
  return 0;
}

static int all_zero(const uint8_t *p, size_t n) {
  const uint64_t *w = (const uint64_t *)p;
  for (size_t i = 0; i < n / 8; i++) if (w[i]) return 0;
  for (size_t i = n & ~(size_t)7; i < n; i++) if (p[i]) return 0;
  return 1;
}

static void scan_execute(napi_env env, void *data) {
  (void)env;
  copy_job *j = data;
  uint8_t *buf = malloc(j->granule);
  size_t cap = 16;
  j->runs = malloc(cap * sizeof *j->runs);
  if (!buf || !j->runs) {
    free(buf);
    j->err = ENOMEM;
    j->what = "nonZeroRuns";
    return;
  }
  off_t end = j->off_in + (off_t)j->len;
  for (off_t at = j->off_in; at < end; at += (off_t)j->granule) {
    size_t n = (size_t)(end - at) < j->granule ? (size_t)(end - at) : j->granule;
    size_t probe = n < COPY_PROBE ? n : COPY_PROBE;
    int data;
    if (pread_full(j->fd_in, buf, probe, at) < 0) goto io_error;
    data = !all_zero(buf, probe);
    if (!data && n > probe) {
      if (pread_full(j->fd_in, buf + probe, n - probe, at + (off_t)probe) < 0) goto io_error;
      data = !all_zero(buf + probe, n - probe);
    }
    if (!data) continue;
    if (j->nruns > 0 && j->runs[2 * j->nruns - 1] == (double)at) {
      j->runs[2 * j->nruns - 1] = (double)(at + (off_t)n);
      continue;
    }
    if (2 * j->nruns + 2 > cap) {
      double *r = realloc(j->runs, (cap *= 2) * sizeof *r);
      if (!r) { free(buf); j->err = ENOMEM; j->what = "nonZeroRuns"; return; }
      j->runs = r;
    }
    j->runs[2 * j->nruns] = (double)at;
    j->runs[2 * j->nruns + 1] = (double)(at + (off_t)n);
    j->nruns++;
  }
  free(buf);
  return;
io_error:
  free(buf);
  j->err = errno;
  j->what = "pread";
}

static void copy_complete(napi_env env, napi_status status, void *data) {
  copy_job *j = data;
  napi_value v = NULL;
  if (status != napi_ok) {
    j->err = ECANCELED;
    j->what = "async work";
  }
  if (j->err) {
    const char *name = strerrorname_np(j->err);
    char msg[128];
    napi_value code, text;
    snprintf(msg, sizeof msg, "%s: %s", j->what, strerror(j->err));
    if (napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &code) == napi_ok &&
        napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text) == napi_ok &&
        napi_create_error(env, code, text, &v) == napi_ok) {
      napi_reject_deferred(env, j->deferred, v);
    }
  } else if (j->runs) {
    int ok = napi_create_array_with_length(env, 2 * j->nruns, &v) == napi_ok;
    for (size_t i = 0; ok && i < 2 * j->nruns; i++) {
      napi_value x;
      ok = napi_create_double(env, j->runs[i], &x) == napi_ok && napi_set_element(env, v, (uint32_t)i, x) == napi_ok;
    }
    if (ok) napi_resolve_deferred(env, j->deferred, v);
    else {
      /* Never a partial answer: fewer runs would read as zeros and lose data. */
      napi_value msg, err;
      napi_value pending;
      napi_get_and_clear_last_exception(env, &pending);
      if (napi_create_string_utf8(env, "nonZeroRuns: could not build the result", NAPI_AUTO_LENGTH, &msg) == napi_ok &&
          napi_create_error(env, NULL, msg, &err) == napi_ok) {
        napi_reject_deferred(env, j->deferred, err);
      }
    }
  } else if (j->punch ? napi_get_boolean(env, j->copied > 0, &v) == napi_ok : napi_create_double(env, (double)j->copied, &v) == napi_ok) {
    napi_resolve_deferred(env, j->deferred, v);
  }
  napi_delete_async_work(env, j->work);
  free(j->runs);
  free(j);
}

enum job_kind { JOB_COPY, JOB_SCAN, JOB_PUNCH, JOB_DIRECT, JOB_RESERVE };
static const char *const job_names[] = { "copyRange", "nonZeroRuns", "punchHole", "copyDirect", "reserve" };
static const size_t job_argc[] = { 5, 4, 3, 5, 3 };

/* Reads the job's numeric arguments (safe non-negative integers) and queues it. */
static napi_value queue_copy_job(napi_env env, napi_callback_info info, enum job_kind kind) {
  size_t argc = 5, want = job_argc[kind];
  napi_value argv[5];
  double v[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != want) goto bad;
  for (size_t i = 0; i < want; i++) {
    if (napi_get_value_double(env, argv[i], &v[i]) != napi_ok || v[i] < 0 || v[i] > MAX_SAFE || v[i] != (double)(int64_t)v[i]) goto bad;
  }
  copy_job *j = calloc(1, sizeof *j);
  if (!j) return fail(env, ENOMEM, job_names[kind]);
  j->fd_in = (int)v[0];
  j->off_in = (off_t)v[1];
  if (kind == JOB_SCAN) {
    j->len = (size_t)v[2]; j->granule = (size_t)v[3];
    if (j->granule == 0 || j->granule > 64 * 1024 * 1024 || v[1] + v[2] > MAX_SAFE) { free(j); goto bad; }
  } else if (kind == JOB_PUNCH || kind == JOB_RESERVE) {
    j->len = (size_t)v[2]; j->punch = 1 + (kind == JOB_PUNCH ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE : FALLOC_FL_KEEP_SIZE);
    if (v[1] + v[2] > MAX_SAFE) { free(j); goto bad; }
  } else {
    j->fd_out = (int)v[2]; j->off_out = (off_t)v[3]; j->len = (size_t)v[4];
    if (v[1] + v[4] > MAX_SAFE || v[3] + v[4] > MAX_SAFE) { free(j); goto bad; }
    if (kind == JOB_DIRECT && (j->off_out % DIRECT_ALIGN || j->len % DIRECT_ALIGN)) { free(j); goto bad; }
  }
  napi_async_execute_callback exec = kind == JOB_SCAN ? scan_execute : kind == JOB_PUNCH || kind == JOB_RESERVE ? punch_execute : kind == JOB_DIRECT ? direct_execute : copy_execute;
  napi_value promise, name;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, job_names[kind], NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, exec, copy_complete, j, &j->work) != napi_ok ||
      napi_queue_async_work(env, j->work) != napi_ok) {
    free(j);
    return NULL;
  }
  return promise;
bad:
  napi_throw_type_error(env, NULL, kind == JOB_SCAN ? "nonZeroRuns(fd, offset, length, granule): safe non-negative integers, granule 1 B..64 MiB"
                                   : kind == JOB_PUNCH || kind == JOB_RESERVE ? "punchHole/reserve(fd, offset, length): safe non-negative integers"
                                   : kind == JOB_DIRECT ? "copyDirect(fdIn, offIn, fdOut, offOut, length): safe non-negative integers, offOut and length multiples of 4096"
                                                       : "copyRange(fdIn, offIn, fdOut, offOut, length): safe non-negative integers");
  return NULL;
}

static napi_value copy_range(napi_env env, napi_callback_info info) { return queue_copy_job(env, info, JOB_COPY); }
static napi_value non_zero_runs(napi_env env, napi_callback_info info) { return queue_copy_job(env, info, JOB_SCAN); }
static napi_value punch_hole(napi_env env, napi_callback_info info) { return queue_copy_job(env, info, JOB_PUNCH); }
static napi_value copy_direct(napi_env env, napi_callback_info info) { return queue_copy_job(env, info, JOB_DIRECT); }
static napi_value reserve(napi_env env, napi_callback_info info) { return queue_copy_job(env, info, JOB_RESERVE); }

static int register_copy(napi_env env, napi_value exports) {
  napi_value fn;
  return napi_create_function(env, "copyRange", NAPI_AUTO_LENGTH, copy_range, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, "copyRange", fn) == napi_ok &&
         napi_create_function(env, "nonZeroRuns", NAPI_AUTO_LENGTH, non_zero_runs, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, "nonZeroRuns", fn) == napi_ok &&
         napi_create_function(env, "punchHole", NAPI_AUTO_LENGTH, punch_hole, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, "punchHole", fn) == napi_ok &&
         napi_create_function(env, "copyDirect", NAPI_AUTO_LENGTH, copy_direct, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, "copyDirect", fn) == napi_ok &&
         napi_create_function(env, "reserve", NAPI_AUTO_LENGTH, reserve, NULL, &fn) == napi_ok &&
         napi_set_named_property(env, exports, "reserve", fn) == napi_ok;
}
/* ==== end of file-to-file copies and hole punching ================================== */

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "mapData", NAPI_AUTO_LENGTH, map_data, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "mapData", fn) != napi_ok ||
      napi_create_function(env, "firstData", NAPI_AUTO_LENGTH, first_data, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "firstData", fn) != napi_ok ||
      napi_create_function(env, "lockFd", NAPI_AUTO_LENGTH, lock_fd, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "lockFd", fn) != napi_ok) {
    return NULL;
  }
  if (!register_copy(env, exports)) return NULL; /* file-to-file copies, hole punching */
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
