/*
 * vmhost-udp: a Node-API addon that owns an External switch uplink's UDP socket, so the
 * provider link is not one Node dgram call (and one 'message' event) per frame. Built by
 * scripts/build-udp.sh into .cache/bin/<hash>/vmhost-udp.node and loaded by
 * src/switch/udp-batch.ts; src/switch/uplink.ts falls back to node:dgram without it.
 *
 * Receive: libuv polls the socket (uv_poll on the loop napi_get_uv_event_loop gives); each
 * readiness is one recvmmsg(2) of up to RECV_SLOTS datagrams, copied end to end into one new
 * Buffer and handed to JS in one call: onBatch(data, meta, count), meta holding per datagram
 * (offset, length, segment size). With UDP_GRO on, the kernel may hand over several
 * equal-sized datagrams of one flow as one (the segment size says where to cut: the last
 * piece may be shorter); without it the segment size is the length. Datagrams from any
 * address but the peer's are dropped here.
 *
 * Send: send(h, data, lengths, count) sends `count` datagrams laid end to end in `data` to
 * the peer, in one sendmmsg(2). With UDP_SEGMENT (GSO) a run of equal-sized datagrams (and
 * one shorter behind it) leaves as one message the kernel cuts up late: one trip through the
 * UDP/IP stack for the run. A kernel that refuses GSO at send time turns it off for the
 * socket and the datagrams go one message each. Returns how many datagrams the kernel took;
 * the rest (a full socket buffer) are dropped, as a UDP provider network drops.
 *
 * Back-pressure: reading(h, false) stops polling, so datagrams wait in the kernel's receive
 * buffer (and a full one drops them there, before any work is spent on them) until
 * reading(h, true).
 *
 * open(ipv6, localAddress, localPort, remoteAddress, remotePort, bufferBytes, onBatch)
 *   -> { handle, port, gso, gro }     close(handle)
 *
 * Beside the uplink, the switch's VM ports (unix stream sockets Node owns) use
 * sendBuffer(fd, bytes) -> SO_SNDBUF afterwards: room for `bytes` in the socket's send buffer
 * (the kernel doubles it for its bookkeeping), SO_SNDBUFFORCE when the process may
 * (CAP_NET_ADMIN), else SO_SNDBUF capped by net.core.wmem_max; throws only when the descriptor
 * is not a socket's. Node has no setsockopt for
 * stream sockets (see src/switch/socket-port.ts for why a port wants more than the default).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* Datagrams per recvmmsg, and room for each: a GRO datagram is up to 64 KiB. */
#define RECV_SLOTS 64
#define SLOT_BYTES 65536
/* Messages per sendmmsg call, and a GSO message's limits (UDP_MAX_SEGMENTS is 64 on older kernels). */
#define SEND_MSGS 256
#define GSO_MAX_SEGS 64
#define GSO_MAX_BYTES 65000

typedef struct {
  napi_env env;
  napi_ref on_batch;
  napi_async_context async;
  uv_poll_t poll;
  int fd;
  int closed;
  /* The memory goes when both the poll handle is closed and JS dropped the handle. */
  int poll_closed;
  int finalized;
  int gso;
  int gro;
  int any_port; /* remote port 0: any port of the peer's address */
  struct sockaddr_storage peer;
  socklen_t peer_len;
  unsigned char *slots;
  struct mmsghdr rmsg[RECV_SLOTS];
  struct iovec riov[RECV_SLOTS];
  struct sockaddr_storage rfrom[RECV_SLOTS];
  char rctl[RECV_SLOTS][CMSG_SPACE(sizeof(int))];
  struct mmsghdr smsg[SEND_MSGS];
  struct iovec siov[SEND_MSGS];
  char sctl[SEND_MSGS][CMSG_SPACE(sizeof(uint16_t))];
  uint32_t ssegs[SEND_MSGS];
} link_t;

static napi_value fail(napi_env env, int err, const char *what) {
  const char *name = strerrorname_np(err);
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, name ? name : "EIO", msg);
  return NULL;
}

static int make_addr(int v6, const char *text, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *len = sizeof *a;
    return inet_pton(AF_INET6, text, &a->sin6_addr) == 1;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *len = sizeof *a;
  return inet_pton(AF_INET, text, &a->sin_addr) == 1;
}

static int from_peer(const link_t *l, const struct sockaddr_storage *from) {
  if (l->peer.ss_family == AF_INET6) {
    const struct sockaddr_in6 *p = (const void *)&l->peer, *f = (const void *)from;
    return f->sin6_family == AF_INET6 && memcmp(&p->sin6_addr, &f->sin6_addr, sizeof p->sin6_addr) == 0 &&
           (l->any_port || p->sin6_port == f->sin6_port);
  }
  const struct sockaddr_in *p = (const void *)&l->peer, *f = (const void *)from;
  return f->sin_family == AF_INET && p->sin_addr.s_addr == f->sin_addr.s_addr && (l->any_port || p->sin_port == f->sin_port);
}

/* The GRO segment size of a received message, or its length when it was not coalesced. */
static uint32_t segment_size(struct msghdr *h, uint32_t len) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int seg;
      memcpy(&seg, CMSG_DATA(c), sizeof seg);
      if (seg > 0) return (uint32_t)seg;
    }
  }
  return len;
}

static void deliver(link_t *l, int n) {
  napi_env env = l->env;
  size_t total = 0;
  uint32_t kept = 0;
  for (int i = 0; i < n; i++) {
    if (!from_peer(l, &l->rfrom[i])) { l->rmsg[i].msg_len = UINT32_MAX; continue; }
    total += l->rmsg[i].msg_len;
    kept++;
  }
  if (kept == 0) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value data, meta, argv[3], cb, recv;
  void *dp, *mp;
  if (napi_create_buffer(env, total, &dp, &data) == napi_ok &&
      napi_create_buffer(env, (size_t)kept * 3 * sizeof(uint32_t), &mp, &meta) == napi_ok &&
      napi_create_uint32(env, kept, &argv[2]) == napi_ok &&
      napi_get_reference_value(env, l->on_batch, &cb) == napi_ok && napi_get_global(env, &recv) == napi_ok) {
    uint32_t *m = mp, off = 0;
    for (int i = 0; i < n; i++) {
      uint32_t len = l->rmsg[i].msg_len;
      if (len == UINT32_MAX) continue;
      memcpy((char *)dp + off, l->slots + (size_t)i * SLOT_BYTES, len);
      *m++ = off;
      *m++ = len;
      *m++ = segment_size(&l->rmsg[i].msg_hdr, len);
      off += len;
    }
    argv[0] = data;
    argv[1] = meta;
    /* make_callback: the nextTick queue (the switch's end-of-tick flushes) runs after it. */
    if (napi_make_callback(env, l->async, recv, cb, 3, argv, NULL) == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_readable(uv_poll_t *p, int status, int events) {
  link_t *l = p->data;
  if (l->closed || status < 0 || !(events & UV_READABLE)) return;
  for (int i = 0; i < RECV_SLOTS; i++) {
    l->rmsg[i].msg_hdr.msg_namelen = sizeof l->rfrom[i];
    l->rmsg[i].msg_hdr.msg_controllen = sizeof l->rctl[i];
    l->rmsg[i].msg_len = 0;
  }
  /* One batch per readiness: the poll fires again on the next loop turn while data waits, so
     the VM ports' reads take their turns in between. */
  int n = recvmmsg(l->fd, l->rmsg, RECV_SLOTS, MSG_DONTWAIT, NULL);
  if (n > 0) deliver(l, n);
}

static link_t *get_link(napi_env env, napi_value v) {
  link_t *l = NULL;
  if (napi_get_value_external(env, v, (void **)&l) != napi_ok || !l) {
    napi_throw_type_error(env, NULL, "not a vmhost-udp handle");
    return NULL;
  }
  if (l->closed) {
    napi_throw_error(env, "EBADF", "vmhost-udp handle is closed");
    return NULL;
  }
  return l;
}

static void release(link_t *l) {
  if (!l->poll_closed || !l->finalized) return;
  free(l->slots);
  free(l);
}

static void poll_closed(uv_handle_t *h) {
  link_t *l = h->data;
  l->poll_closed = 1;
  release(l);
}

static void shut(link_t *l) {
  if (l->closed) return;
  l->closed = 1;
  napi_delete_reference(l->env, l->on_batch);
  napi_async_destroy(l->env, l->async);
  uv_poll_stop(&l->poll);
  close(l->fd);
  uv_close((uv_handle_t *)&l->poll, poll_closed);
}

/*
 * JS dropped the handle. A link still open is never dropped while its env lives (its callback
 * reference holds the handle), so an open one here is the env's teardown: the socket is closed
 * and the memory left to the exiting process, with no call into an env or loop going away.
 */
static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  link_t *l = data;
  if (!l->closed) {
    l->closed = 1;
    close(l->fd);
    return;
  }
  l->finalized = 1;
  release(l);
}

static int build_send(link_t *l, const unsigned char *data, const uint32_t *lens, uint32_t from, uint32_t count, const size_t *offsets) {
  int m = 0;
  uint32_t i = from;
  while (i < count && m < SEND_MSGS) {
    uint32_t first = lens[i], n = 1;
    size_t bytes = first;
    i++;
    if (l->gso && first > 0) {
      while (i < count && n < GSO_MAX_SEGS && lens[i] == first && bytes + first <= GSO_MAX_BYTES) { bytes += first; n++; i++; }
      /* GSO's last segment may be shorter than the others. */
      if (i < count && n < GSO_MAX_SEGS && lens[i] > 0 && lens[i] < first && bytes + lens[i] <= GSO_MAX_BYTES) { bytes += lens[i]; n++; i++; }
    }
    struct msghdr *h = &l->smsg[m].msg_hdr;
    memset(h, 0, sizeof *h);
    l->siov[m].iov_base = (void *)(data + offsets[i - n]);
    l->siov[m].iov_len = bytes;
    h->msg_iov = &l->siov[m];
    h->msg_iovlen = 1;
    h->msg_name = &l->peer;
    h->msg_namelen = l->peer_len;
    if (n > 1) {
      h->msg_control = l->sctl[m];
      h->msg_controllen = sizeof l->sctl[m];
      struct cmsghdr *c = CMSG_FIRSTHDR(h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t seg = (uint16_t)first;
      memcpy(CMSG_DATA(c), &seg, sizeof seg);
    }
    l->ssegs[m] = n;
    m++;
  }
  return m;
}

static napi_value link_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *data, *lp;
  size_t dlen, llen;
  uint32_t count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4) goto usage;
  link_t *l = get_link(env, argv[0]);
  if (!l) return NULL;
  if (napi_get_buffer_info(env, argv[1], &data, &dlen) != napi_ok || napi_get_buffer_info(env, argv[2], &lp, &llen) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &count) != napi_ok || (size_t)count * sizeof(uint32_t) > llen) goto usage;
  const uint32_t *lens = lp;
  napi_value out;
  if (l->any_port) return napi_create_uint32(env, 0, &out) == napi_ok ? out : NULL; /* no port to send to */
  size_t *offsets = malloc(((size_t)count + 1) * sizeof *offsets);
  if (!offsets) return fail(env, ENOMEM, "send");
  offsets[0] = 0;
  for (uint32_t i = 0; i < count; i++) offsets[i + 1] = offsets[i] + lens[i];
  if (offsets[count] > dlen) { free(offsets); goto usage; }
  uint32_t at = 0, sent = 0;
  while (at < count) {
    int m = build_send(l, data, lens, at, count, offsets);
    int r = sendmmsg(l->fd, l->smsg, (unsigned)m, MSG_DONTWAIT);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      /* A device or kernel without UDP GSO: send every datagram on its own from now on. */
      if (l->gso && l->ssegs[0] > 1 && (e == EIO || e == EINVAL || e == EOPNOTSUPP || e == ENOPROTOOPT)) { l->gso = 0; continue; }
      if (e == EAGAIN || e == ENOBUFS) break; /* the socket buffer is full: the rest is dropped */
      at += l->ssegs[0]; /* this message failed (an ICMP error reported late): go on with the next */
      continue;
    }
    for (int k = 0; k < r; k++) { at += l->ssegs[k]; sent += l->ssegs[k]; }
  }
  free(offsets);
  return napi_create_uint32(env, sent, &out) == napi_ok ? out : NULL;
usage:
  napi_throw_type_error(env, NULL, "send(handle, data, lengths, count): buffers holding count datagrams");
  return NULL;
}

static napi_value link_reading(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool on;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 || napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "reading(handle, on)");
    return NULL;
  }
  link_t *l = get_link(env, argv[0]);
  if (!l) return NULL;
  if (on) uv_poll_start(&l->poll, UV_READABLE, on_readable);
  else uv_poll_stop(&l->poll);
  return NULL;
}

static napi_value link_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  link_t *l = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 1 ||
      napi_get_value_external(env, argv[0], (void **)&l) != napi_ok || !l) {
    napi_throw_type_error(env, NULL, "close(handle)");
    return NULL;
  }
  shut(l);
  return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len;
  return napi_get_value_string_utf8(env, v, buf, size, &len) == napi_ok && len < size - 1;
}

static napi_value link_open(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  bool v6;
  char local[64], remote[64];
  int32_t lport, rport, bufbytes;
  napi_valuetype cbtype;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7 ||
      napi_get_value_bool(env, argv[0], &v6) != napi_ok || !get_string(env, argv[1], local, sizeof local) ||
      napi_get_value_int32(env, argv[2], &lport) != napi_ok || !get_string(env, argv[3], remote, sizeof remote) ||
      napi_get_value_int32(env, argv[4], &rport) != napi_ok || napi_get_value_int32(env, argv[5], &bufbytes) != napi_ok ||
      napi_typeof(env, argv[6], &cbtype) != napi_ok || cbtype != napi_function || lport < 0 || lport > 65535 || rport < 0 || rport > 65535) {
    napi_throw_type_error(env, NULL, "open(ipv6, localAddress, localPort, remoteAddress, remotePort, bufferBytes, onBatch)");
    return NULL;
  }
  struct sockaddr_storage me;
  socklen_t me_len;
  link_t *l = calloc(1, sizeof *l);
  if (!l) return fail(env, ENOMEM, "open");
  if (!make_addr(v6, local, lport, &me, &me_len) || !make_addr(v6, remote, rport, &l->peer, &l->peer_len)) {
    free(l);
    napi_throw_type_error(env, NULL, "open: an address that is not an IPv4/IPv6 literal of the family");
    return NULL;
  }
  l->any_port = rport == 0;
  l->slots = malloc((size_t)RECV_SLOTS * SLOT_BYTES);
  l->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (!l->slots || l->fd < 0) {
    int e = l->fd < 0 ? errno : ENOMEM;
    if (l->fd >= 0) close(l->fd);
    free(l->slots);
    free(l);
    return fail(env, e, "socket");
  }
  /* Capped by net.core.rmem_max / wmem_max: a best effort, as node:dgram's recvBufferSize. */
  setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &bufbytes, sizeof bufbytes);
  setsockopt(l->fd, SOL_SOCKET, SO_SNDBUF, &bufbytes, sizeof bufbytes);
  int zero = 0, one = 1;
  l->gso = setsockopt(l->fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) == 0;
  l->gro = setsockopt(l->fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
  if (bind(l->fd, (struct sockaddr *)&me, me_len) != 0) {
    int e = errno;
    close(l->fd);
    free(l->slots);
    free(l);
    char what[128];
    snprintf(what, sizeof what, "bind %s:%d", local, lport);
    return fail(env, e, what);
  }
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  getsockname(l->fd, (struct sockaddr *)&bound, &blen);
  int port = ntohs(v6 ? ((struct sockaddr_in6 *)&bound)->sin6_port : ((struct sockaddr_in *)&bound)->sin_port);
  for (int i = 0; i < RECV_SLOTS; i++) {
    l->riov[i].iov_base = l->slots + (size_t)i * SLOT_BYTES;
    l->riov[i].iov_len = SLOT_BYTES;
    l->rmsg[i].msg_hdr.msg_iov = &l->riov[i];
    l->rmsg[i].msg_hdr.msg_iovlen = 1;
    l->rmsg[i].msg_hdr.msg_name = &l->rfrom[i];
    l->rmsg[i].msg_hdr.msg_control = l->rctl[i];
  }
  uv_loop_t *loop;
  napi_value name, handle, out, v;
  l->env = env;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &l->poll, l->fd) != 0) {
    close(l->fd);
    free(l->slots);
    free(l);
    return fail(env, EIO, "uv_poll_init");
  }
  l->poll.data = l;
  if (napi_create_reference(env, argv[6], 1, &l->on_batch) != napi_ok ||
      napi_create_string_utf8(env, "vmhost-udp", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &l->async) != napi_ok ||
      napi_create_external(env, l, finalize_handle, NULL, &handle) != napi_ok) {
    l->closed = 1;
    l->finalized = 1;
    close(l->fd);
    uv_close((uv_handle_t *)&l->poll, poll_closed);
    return NULL;
  }
  uv_poll_start(&l->poll, UV_READABLE, on_readable);
  if (napi_create_object(env, &out) != napi_ok || napi_set_named_property(env, out, "handle", handle) != napi_ok ||
      napi_create_int32(env, port, &v) != napi_ok || napi_set_named_property(env, out, "port", v) != napi_ok ||
      napi_get_boolean(env, l->gso, &v) != napi_ok || napi_set_named_property(env, out, "gso", v) != napi_ok ||
      napi_get_boolean(env, l->gro, &v) != napi_ok || napi_set_named_property(env, out, "gro", v) != napi_ok) {
    return NULL;
  }
  return out;
}

static napi_value send_buffer(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  int32_t fd, bytes;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int32(env, argv[1], &bytes) != napi_ok || fd < 0 || bytes <= 0) {
    napi_throw_type_error(env, NULL, "sendBuffer(fd, bytes): a descriptor and a positive size");
    return NULL;
  }
  /* A refusal leaves the buffer as it was, which the result then shows: never worth failing a port over. */
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  }
  int got;
  socklen_t len = sizeof got;
  if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &got, &len) != 0) return fail(env, errno, "getsockopt SO_SNDBUF");
  return napi_create_int32(env, got, &out) == napi_ok ? out : NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "open", NAPI_AUTO_LENGTH, link_open, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "open", fn) != napi_ok ||
      napi_create_function(env, "send", NAPI_AUTO_LENGTH, link_send, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "send", fn) != napi_ok ||
      napi_create_function(env, "reading", NAPI_AUTO_LENGTH, link_reading, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "reading", fn) != napi_ok ||
      napi_create_function(env, "close", NAPI_AUTO_LENGTH, link_close, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "close", fn) != napi_ok ||
      napi_create_function(env, "sendBuffer", NAPI_AUTO_LENGTH, send_buffer, NULL, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "sendBuffer", fn) != napi_ok) {
    return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
