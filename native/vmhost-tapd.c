// vmhost-tapd: the host's own port on a vmhost virtual switch (an Internal switch's
// management-OS vNIC). It owns a Linux tap interface and relays its frames to and from the
// switch port's unix socket, in the port wire format (QEMU -netdev stream): every frame is a
// 4-byte big-endian length, then the Ethernet frame.
//
// Why C: creating a tap is the TUNSETIFF ioctl on /dev/net/tun, which Node cannot issue.
//
//   vmhost-tapd --ifname NAME --mac 00:15:5d:xx:xx:xx --socket PATH
//       create (or re-attach to) the persistent tap NAME, set its MAC, bring it up, connect to
//       PATH, print "ready" on stdout, relay until the socket closes (exit 0).
//   vmhost-tapd --delete --ifname NAME
//       remove the tap (clears TUNSETPERSIST; the interface goes with our fd).
//
// The tap is persistent (TUNSETPERSIST 1) so the interface, and the addresses the admin put
// on it, survive this process: a daemon restart only respawns the relay.
// Errors: one line on stderr, and an exit code the daemon maps to a typed error.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

// Exit codes: src/host/tapd.ts maps them to error codes.
enum { E_OK = 0, E_FAIL = 1, E_USAGE = 2, E_PERM = 3, E_NO_TUN = 4, E_SOCKET = 5, E_BUSY = 6 };

// The switch cuts a connection whose record is longer than this (src/switch/framing.ts).
#define MAX_FRAME 65554
#define HDR 4

static const char *ifname_arg;

static void die(int code, const char *what, int err) {
  if (err) fprintf(stderr, "vmhost-tapd %s: %s: %s\n", ifname_arg ? ifname_arg : "", what, strerror(err));
  else fprintf(stderr, "vmhost-tapd %s: %s\n", ifname_arg ? ifname_arg : "", what);
  exit(code);
}

// Permission problems and a missing tun driver get their own codes: the daemon names them.
static int code_for(int err) {
  if (err == EPERM || err == EACCES) return E_PERM;
  if (err == ENOENT || err == ENODEV || err == ENXIO) return E_NO_TUN;
  if (err == EBUSY) return E_BUSY;
  return E_FAIL;
}

static void sleep_ms(long ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

// Opens the tap NAME, creating it if needed. A persistent tap has one reader at a time: after a
// daemon SIGKILL the previous relay may still hold it for a moment (it exits on the socket's
// EOF), so EBUSY is retried for a few seconds before it is reported.
static int tap_open(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) die(code_for(errno), "open /dev/net/tun", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  for (int tries = 0; ioctl(fd, TUNSETIFF, &ifr) < 0; tries++) {
    if (errno != EBUSY || tries >= 50) die(code_for(errno), "TUNSETIFF", errno);
    sleep_ms(100);
  }
  return fd;
}

static void set_persist(int fd, int on) {
  if (ioctl(fd, TUNSETPERSIST, on) < 0) die(code_for(errno), "TUNSETPERSIST", errno);
}

static int parse_mac(const char *s, unsigned char mac[6]) {
  unsigned v[6];
  char tail;
  if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6) return -1;
  for (int i = 0; i < 6; i++) mac[i] = (unsigned char)v[i];
  return 0;
}

// MAC then link up, through an ordinary socket's interface ioctls. The MAC is set only when it
// differs: a re-attach must not bounce the address the kernel already has.
static void configure_link(const char *name, const unsigned char mac[6]) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die(E_FAIL, "socket(AF_INET)", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) die(code_for(errno), "SIOCGIFHWADDR", errno);
  if (memcmp(ifr.ifr_hwaddr.sa_data, mac, 6) != 0) {
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
    if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0) die(code_for(errno), "SIOCSIFHWADDR", errno);
  }
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die(code_for(errno), "SIOCGIFFLAGS", errno);
  if (!(ifr.ifr_flags & IFF_UP)) {
    ifr.ifr_flags |= IFF_UP;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die(code_for(errno), "SIOCSIFFLAGS", errno);
  }
  close(s);
}

static int connect_port(const char *path) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) die(E_USAGE, "socket path too long", 0);
  strcpy(sa.sun_path, path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) die(E_FAIL, "socket(AF_UNIX)", errno);
  if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) die(E_SOCKET, "connect to the switch port", errno);
  return s;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

// Relays until the switch closes the socket. Socket writes block: while the switch does not
// read us, the tap's kernel queue fills and the kernel drops, as a full NIC would.
static int relay(int tap, int sock) {
  static unsigned char out[HDR + MAX_FRAME];
  static unsigned char in[2 * (HDR + MAX_FRAME)];
  size_t have = 0;
  struct pollfd pf[2] = { { tap, POLLIN, 0 }, { sock, POLLIN, 0 } };
  for (;;) {
    if (poll(pf, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die(E_FAIL, "poll", errno);
    }
    if (pf[0].revents & (POLLERR | POLLNVAL)) die(E_FAIL, "tap device error", 0);
    if (pf[0].revents & POLLIN) {
      ssize_t n = read(tap, out + HDR, sizeof out - HDR);
      if (n < 0 && errno != EINTR && errno != EAGAIN) die(E_FAIL, "read tap", errno);
      if (n > 0) {
        out[0] = (unsigned char)(n >> 24); out[1] = (unsigned char)(n >> 16);
        out[2] = (unsigned char)(n >> 8); out[3] = (unsigned char)n;
        if (write_all(sock, out, HDR + (size_t)n) < 0) return 0; // the switch went away
      }
    }
    if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(sock, in + have, sizeof in - have);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) return 0; // EOF or reset: the switch closed the port
      have += (size_t)n;
      size_t off = 0;
      while (have - off >= HDR) {
        uint32_t len = (uint32_t)in[off] << 24 | (uint32_t)in[off + 1] << 16 | (uint32_t)in[off + 2] << 8 | in[off + 3];
        if (len > MAX_FRAME) die(E_FAIL, "stream corrupt: record longer than 65554 bytes", 0);
        if (have - off - HDR < len) break;
        // A frame the tap refuses (e.g. larger than its MTU allows) is dropped, like a NIC would.
        if (len > 0 && write(tap, in + off + HDR, len) < 0 && errno != EINVAL && errno != EIO) die(E_FAIL, "write tap", errno);
        off += HDR + len;
      }
      memmove(in, in + off, have - off);
      have -= off;
    }
  }
}

static void usage(void) {
  fprintf(stderr, "usage: vmhost-tapd --ifname NAME --mac XX:XX:XX:XX:XX:XX --socket PATH\n"
                  "       vmhost-tapd --delete --ifname NAME\n");
  exit(E_USAGE);
}

int main(int argc, char **argv) {
  const char *mac_arg = NULL, *socket_arg = NULL;
  int del = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--delete")) del = 1;
    else if (i + 1 < argc && !strcmp(argv[i], "--ifname")) ifname_arg = argv[++i];
    else if (i + 1 < argc && !strcmp(argv[i], "--mac")) mac_arg = argv[++i];
    else if (i + 1 < argc && !strcmp(argv[i], "--socket")) socket_arg = argv[++i];
    else usage();
  }
  if (!ifname_arg || (!del && (!mac_arg || !socket_arg))) usage();
  if (strlen(ifname_arg) == 0 || strlen(ifname_arg) >= IFNAMSIZ) die(E_USAGE, "interface name must be 1-15 characters", 0);
  signal(SIGPIPE, SIG_IGN); // a closed socket is an EPIPE from write, handled as the end

  if (del) {
    int fd = tap_open(ifname_arg);
    set_persist(fd, 0);
    close(fd); // the last reference: the kernel removes the interface
    return E_OK;
  }
  unsigned char mac[6];
  if (parse_mac(mac_arg, mac) < 0) die(E_USAGE, "bad --mac (want xx:xx:xx:xx:xx:xx)", 0);
  int sock = connect_port(socket_arg);
  int tap = tap_open(ifname_arg);
  set_persist(tap, 1);
  configure_link(ifname_arg, mac);
  printf("ready\n");
  fflush(stdout);
  return relay(tap, sock);
}
