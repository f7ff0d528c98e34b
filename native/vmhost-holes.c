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

static napi_value map_data(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd;
  double off, len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_double(env, argv[1], &off) != napi_ok ||
      napi_get_value_double(env, argv[2], &len) != napi_ok ||
      fd < 0 || off < 0 || len < 0 || off + len > MAX_SAFE) {
    napi_throw_type_error(env, NULL, "mapData(fd, offset, length): a descriptor and a non-negative safe range");
    return NULL;
  }
  napi_value out;
  if (napi_create_array(env, &out) != napi_ok) return NULL;
  off_t pos = (off_t)off, end = (off_t)(off + len);
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

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "mapData", NAPI_AUTO_LENGTH, map_data, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "mapData", fn) != napi_ok ||
      napi_create_function(env, "lockFd", NAPI_AUTO_LENGTH, lock_fd, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "lockFd", fn) != napi_ok) {
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
