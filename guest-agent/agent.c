// vmhost guest agent: integration services over the virtio-serial port
// "org.vmhost.agent.0". Protocol: src/guest/PROTOCOL.md (one JSON object per line).
//
// Why C and not busybox sh/awk: the agent must (1) tell "host disconnected" (read()
// returns 0 / poll() reports POLLHUP on a virtio port while no host client is
// attached) from "no data yet" and wait for the next host without spinning, (2) keep
// answering pings while an exec runs, (3) capture a script's stdout and stderr
// separately, binary-safe, bounded, with a timeout that kills the whole process
// group. Doing that in ash with fifos and background jobs is fragile; one small C file,
// linked statically against Debian's glibc (libc6-dev), does it plainly and adds
// ~800 KiB to the initramfs.
//
// Requests are answered in order (writefile chunks rely on it) except exec, which runs in a forked child so the
// agent stays responsive; writers serialize whole lines with an fcntl lock.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/fs.h>
#include <mntent.h>
#include <net/if.h>
#include <netpacket/packet.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_VERSION "1"
#define PORT_NAME "org.vmhost.agent.0"
#define MAX_LINE (4 * 1024 * 1024)        // longest request line accepted
#define MAX_OUTPUT (1024 * 1024)          // per stream, exec stdout/stderr
#define DEFAULT_EXEC_TIMEOUT_MS 30000
#define LOCK_PATH "/run/vmhost-agent.lock"

static int port_fd = -1;
static const char *port_path;

static void logmsg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "vmhost-agent: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static void console(const char *msg) {
  int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
  if (fd < 0) return;
  (void)!write(fd, msg, strlen(msg));
  close(fd);
}

/* ---------- growable buffer ---------- */
typedef struct { char *p; size_t len, cap; } buf_t;

static void buf_reserve(buf_t *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  b->p = realloc(b->p, cap);
  if (!b->p) { logmsg("out of memory"); _exit(1); }
  b->cap = cap;
}
static void buf_add(buf_t *b, const char *s, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}
static void buf_puts(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }
static void buf_printf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  buf_reserve(b, (size_t)n);
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}
// JSON string literal; bytes >= 0x80 pass through (callers only pass ASCII/UTF-8 text).
static void buf_json_str(buf_t *b, const char *s) {
  buf_puts(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { char e[2] = {'\\', (char)c}; buf_add(b, e, 2); }
    else if (c < 0x20) buf_printf(b, "\\u%04x", c);
    else buf_add(b, (const char *)&c, 1);
  }
  buf_puts(b, "\"");
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static void buf_b64(buf_t *b, const unsigned char *s, size_t n) {
  buf_reserve(b, (n + 2) / 3 * 4 + 2);
  char *o = b->p + b->len;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
    *o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63]; *o++ = B64[(v >> 6) & 63]; *o++ = B64[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
    *o++ = B64[v >> 18]; *o++ = B64[(v >> 12) & 63];
    *o++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  b->len = (size_t)(o - b->p);
  b->p[b->len] = 0;
}
// Decodes base64 (ignores whitespace); returns -1 on a bad character.
static ssize_t b64_decode(const char *s, size_t n, unsigned char *out) {
  uint32_t v = 0; int bits = 0; ssize_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i]; int d;
    if (c >= 'A' && c <= 'Z') d = c - 'A';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
    else if (c >= '0' && c <= '9') d = c - '0' + 52;
    else if (c == '+') d = 62;
    else if (c == '/') d = 63;
    else if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    else return -1;
    v = v << 6 | (uint32_t)d; bits += 6;
    if (bits >= 8) { bits -= 8; out[o++] = (unsigned char)(v >> bits); }
  }
  return o;
}

/* ---------- minimal JSON: one flat object, values kept as raw tokens ---------- */
typedef struct { const char *key; size_t klen; const char *val; size_t vlen; } field_t;
#define MAX_FIELDS 16

static const char *skip_ws(const char *p, const char *e) {
  while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) p++;
  return p;
}
static const char *skip_string(const char *p, const char *e) { // p at opening quote
  for (p++; p < e; p++) {
    if (*p == '\\') { p++; continue; }
    if (*p == '"') return p + 1;
  }
  return NULL;
}
static const char *skip_value(const char *p, const char *e) {
  if (p >= e) return NULL;
  if (*p == '"') return skip_string(p, e);
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < e) {
      if (*p == '"') { p = skip_string(p, e); if (!p) return NULL; continue; }
      if (*p == '{' || *p == '[') depth++;
      else if (*p == '}' || *p == ']') { if (--depth == 0) return p + 1; }
      p++;
    }
    return NULL;
  }
  const char *s = p;
  while (p < e && *p != ',' && *p != '}' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') p++;
  return p > s ? p : NULL;
}
static int parse_object(const char *p, const char *e, field_t *f, int max) {
  int n = 0;
  p = skip_ws(p, e);
  if (p >= e || *p != '{') return -1;
  p = skip_ws(p + 1, e);
  if (p < e && *p == '}') return 0;
  for (;;) {
    if (p >= e || *p != '"') return -1;
    const char *k = p + 1, *ke = skip_string(p, e);
    if (!ke) return -1;
    p = skip_ws(ke, e);
    if (p >= e || *p != ':') return -1;
    p = skip_ws(p + 1, e);
    const char *ve = skip_value(p, e);
    if (!ve) return -1;
    if (n < max) { f[n].key = k; f[n].klen = (size_t)(ke - 1 - k); f[n].val = p; f[n].vlen = (size_t)(ve - p); n++; }
    p = skip_ws(ve, e);
    if (p < e && *p == ',') { p = skip_ws(p + 1, e); continue; }
    if (p < e && *p == '}') return n;
    return -1;
  }
}
static const field_t *get_field(const field_t *f, int n, const char *key) {
  for (int i = 0; i < n; i++)
    if (f[i].klen == strlen(key) && memcmp(f[i].key, key, f[i].klen) == 0) return &f[i];
  return NULL;
}
// String value without escapes (op names, base64): copies into out; 0 on success.
static int field_plain_str(const field_t *v, char *out, size_t outsz) {
  if (!v || v->vlen < 2 || v->val[0] != '"') return -1;
  size_t n = v->vlen - 2;
  if (n + 1 > outsz || memchr(v->val + 1, '\\', n)) return -1;
  memcpy(out, v->val + 1, n);
  out[n] = 0;
  return 0;
}
static int field_is_true(const field_t *v) { return v && v->vlen == 4 && memcmp(v->val, "true", 4) == 0; }
// Integer value (timeMs, offset); 0 on success.
static int field_ll(const field_t *v, long long *out) {
  char tmp[32];
  if (!v || v->vlen == 0 || v->vlen >= sizeof tmp) return -1;
  memcpy(tmp, v->val, v->vlen); tmp[v->vlen] = 0;
  char *end;
  errno = 0;
  *out = strtoll(tmp, &end, 10);
  return *end || errno ? -1 : 0;
}
static void put_utf8(char **o, unsigned cp) {
  if (cp < 0x80) *(*o)++ = (char)cp;
  else if (cp < 0x800) { *(*o)++ = (char)(0xc0 | cp >> 6); *(*o)++ = (char)(0x80 | (cp & 63)); }
  else if (cp < 0x10000) { *(*o)++ = (char)(0xe0 | cp >> 12); *(*o)++ = (char)(0x80 | ((cp >> 6) & 63)); *(*o)++ = (char)(0x80 | (cp & 63)); }
  else { *(*o)++ = (char)(0xf0 | cp >> 18); *(*o)++ = (char)(0x80 | ((cp >> 12) & 63)); *(*o)++ = (char)(0x80 | ((cp >> 6) & 63)); *(*o)++ = (char)(0x80 | (cp & 63)); }
}
// A JSON string with escapes decoded to UTF-8 (paths may hold quotes, backslashes, any
// Unicode); refuses NUL, which no path can hold. 0 on success.
static int field_str(const field_t *v, char *out, size_t outsz) {
  if (!v || v->vlen < 2 || v->val[0] != '"') return -1;
  const char *p = v->val + 1, *e = v->val + v->vlen - 1;
  char *o = out, *oe = out + outsz - 5;  // room for one UTF-8 sequence and the NUL
  while (p < e) {
    if (o >= oe) return -1;
    unsigned cp;
    if (*p != '\\') { *o++ = *p++; continue; }
    if (++p >= e) return -1;
    switch (*p++) {
      case '"': cp = '"'; break;
      case '\\': cp = '\\'; break;
      case '/': cp = '/'; break;
      case 'b': cp = '\b'; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'u': {
        if (e - p < 4) return -1;
        char hex[5] = {p[0], p[1], p[2], p[3], 0};
        char *end;
        cp = (unsigned)strtoul(hex, &end, 16);
        if (*end) return -1;
        p += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && e - p >= 6 && p[0] == '\\' && p[1] == 'u') {  // surrogate pair
          char lo[5] = {p[2], p[3], p[4], p[5], 0};
          unsigned l = (unsigned)strtoul(lo, &end, 16);
          if (*end || l < 0xdc00 || l > 0xdfff) return -1;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (l - 0xdc00);
          p += 6;
        }
        break;
      }
      default: return -1;
    }
    if (cp == 0) return -1;
    put_utf8(&o, cp);
  }
  *o = 0;
  return 0;
}

/* ---------- port output: whole lines under a lock shared by forked children ---------- */
static int lock_fd = -1;
static void lock_out(short type) {
  if (lock_fd < 0) return;
  struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
  while (fcntl(lock_fd, F_SETLKW, &fl) < 0 && errno == EINTR) {}
}
// Writes one line. While no host is connected the port blocks writes, so the line
// goes to the next host that connects (which ignores ids it did not send).
static void send_line(buf_t *b) {
  buf_add(b, "\n", 1);
  lock_out(F_WRLCK);
  size_t off = 0;
  while (off < b->len) {
    ssize_t w = write(port_fd, b->p + off, b->len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) { usleep(10000); continue; }
      break;
    }
    off += (size_t)w;
  }
  lock_out(F_UNLCK);
}

static void reply_start(buf_t *b, const field_t *id) {
  buf_puts(b, "{");
  if (id) { buf_puts(b, "\"id\":"); buf_add(b, id->val, id->vlen); buf_puts(b, ","); }
}
static void reply_error(const field_t *id, const char *code, const char *msg) {
  buf_t b = {0};
  reply_start(&b, id);
  buf_puts(&b, "\"ok\":false,\"error\":{\"code\":");
  buf_json_str(&b, code);
  buf_puts(&b, ",\"message\":");
  buf_json_str(&b, msg);
  buf_puts(&b, "}}");
  send_line(&b);
  free(b.p);
}

/* ---------- ops ---------- */
static long long now_ms(int clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add_identity(buf_t *b) {
  struct utsname u;
  uname(&u);
  buf_puts(b, "\"agentVersion\":\"" AGENT_VERSION "\",\"hostname\":");
  buf_json_str(b, u.nodename);
  buf_puts(b, ",\"kernel\":");
  buf_json_str(b, u.release);
  buf_printf(b, ",\"uptimeMs\":%lld", now_ms(CLOCK_BOOTTIME));
}

static void send_ready(void) {
  buf_t b = {0};
  buf_puts(&b, "{\"event\":\"ready\",");
  add_identity(&b);
  buf_puts(&b, "}");
  send_line(&b);
  free(b.p);
}

static void op_ping(const field_t *id) {
  buf_t b = {0};
  reply_start(&b, id);
  buf_puts(&b, "\"ok\":true,\"data\":{");
  add_identity(&b);
  buf_printf(&b, ",\"timeMs\":%lld}}", now_ms(CLOCK_REALTIME));
  send_line(&b);
  free(b.p);
}

/* One "Name:   123 kB" value of /proc/meminfo in bytes, -1 when absent. */
static long long meminfo_bytes(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    if (strncmp(p, name, n) == 0 && p[n] == ':') return strtoll(p + n + 1, NULL, 10) * 1024;
  }
  return -1;
}

/* The avg10 of one line ("some" or "full") of /proc/pressure/memory, -1 when absent. */
static double psi_avg10(const char *text, const char *kind) {
  const char *p = strstr(text, kind);
  if (!p) return -1;
  p = strstr(p, "avg10=");
  return p ? strtod(p + 6, NULL) : -1;
}

static int read_small(const char *path, char *out, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t r = read(fd, out, n - 1);
  close(fd);
  if (r < 0) return -1;
  out[r] = 0;
  return 0;
}

/* Dynamic memory's pressure report: the guest's view of its memory, and PSI when the kernel has it. */
static void op_meminfo(const field_t *id) {
  char mi[8192], psi[512];
  if (read_small("/proc/meminfo", mi, sizeof mi) < 0) { reply_error(id, "IO_ERROR", "cannot read /proc/meminfo"); return; }
  buf_t b = {0};
  reply_start(&b, id);
  buf_printf(&b, "\"ok\":true,\"data\":{\"memTotalBytes\":%lld,\"memAvailableBytes\":%lld",
             meminfo_bytes(mi, "MemTotal"), meminfo_bytes(mi, "MemAvailable"));
  if (read_small("/proc/pressure/memory", psi, sizeof psi) == 0)
    buf_printf(&b, ",\"psiSomeAvg10\":%.2f,\"psiFullAvg10\":%.2f", psi_avg10(psi, "some"), psi_avg10(psi, "full"));
  buf_puts(&b, "}}");
  send_line(&b);
  free(b.p);
}

static void os_name(char *out, size_t n) {
  snprintf(out, n, "Linux");
  FILE *f = fopen("/etc/os-release", "r");
  if (!f) return;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "PRETTY_NAME=", 12) != 0) continue;
    char *v = line + 12;
    v[strcspn(v, "\n")] = 0;
    size_t l = strlen(v);
    if (l >= 2 && v[0] == '"' && v[l - 1] == '"') { v[l - 1] = 0; v++; }
    snprintf(out, n, "%s", v);
  }
  fclose(f);
}

// Addresses per interface with its MAC, so the host can tell which of a VM's adapters holds
// which address (the flat NetworkAddressIPv4/IPv6 lists cannot). The MAC comes from the
// AF_PACKET entry getifaddrs() returns for each link; loopback interfaces are left out.
static void add_interfaces(buf_t *b, struct ifaddrs *ifs) {
  buf_puts(b, "[");
  int first = 1;
  for (struct ifaddrs *l = ifs; l; l = l->ifa_next) {
    if (!l->ifa_addr || l->ifa_addr->sa_family != AF_PACKET || (l->ifa_flags & IFF_LOOPBACK)) continue;
    struct sockaddr_ll *ll = (struct sockaddr_ll *)l->ifa_addr;
    char mac[3 * 8] = "";
    size_t o = 0;
    for (int k = 0; k < ll->sll_halen && k < 8; k++) o += snprintf(mac + o, sizeof mac - o, k ? ":%02x" : "%02x", ll->sll_addr[k]);
    if (!first) buf_puts(b, ",");
    first = 0;
    buf_puts(b, "{\"Name\":");
    buf_json_str(b, l->ifa_name);
    buf_puts(b, ",\"MacAddress\":");
    buf_json_str(b, mac);
    for (int fam = 0; fam < 2; fam++) {
      buf_puts(b, fam ? "],\"IPv6\":[" : ",\"IPv4\":[");
      int n = 0;
      for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || strcmp(i->ifa_name, l->ifa_name) != 0) continue;
        char a[INET6_ADDRSTRLEN];
        if (!fam && i->ifa_addr->sa_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
        else if (fam && i->ifa_addr->sa_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, a, sizeof a);
        else continue;
        if (n++) buf_puts(b, ",");
        buf_json_str(b, a);
      }
    }
    buf_puts(b, "]}");
  }
  buf_puts(b, "]");
}

static void op_kvp(const field_t *id) {
  struct utsname u;
  uname(&u);
  char fqdn[512], os[256];
  if (u.domainname[0] && strcmp(u.domainname, "(none)") != 0)
    snprintf(fqdn, sizeof fqdn, "%s.%s", u.nodename, u.domainname);
  else
    snprintf(fqdn, sizeof fqdn, "%s", u.nodename);
  os_name(os, sizeof os);

  buf_t v4 = {0}, v6 = {0}, nics = {0};
  buf_puts(&v4, "[");
  buf_puts(&v6, "[");
  struct ifaddrs *ifs = NULL;
  if (getifaddrs(&ifs) == 0) {
    add_interfaces(&nics, ifs);
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      char a[INET6_ADDRSTRLEN];
      if (i->ifa_addr->sa_family == AF_INET) {
        struct in_addr *in = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        if ((ntohl(in->s_addr) >> 24) == 127) continue;  // loopback network
        inet_ntop(AF_INET, in, a, sizeof a);
        if (v4.len > 1) buf_puts(&v4, ",");
        buf_json_str(&v4, a);
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        struct in6_addr *in6 = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(in6)) continue;
        inet_ntop(AF_INET6, in6, a, sizeof a);
        if (v6.len > 1) buf_puts(&v6, ",");
        buf_json_str(&v6, a);
      }
    }
    freeifaddrs(ifs);
  } else buf_puts(&nics, "[]");
  buf_puts(&v4, "]");
  buf_puts(&v6, "]");

  buf_t b = {0};
  reply_start(&b, id);
  buf_puts(&b, "\"ok\":true,\"data\":{\"FullyQualifiedDomainName\":");
  buf_json_str(&b, fqdn);
  buf_puts(&b, ",\"OSName\":");
  buf_json_str(&b, os);
  buf_puts(&b, ",\"OSVersion\":");
  buf_json_str(&b, u.release);
  buf_puts(&b, ",\"ProcessorArchitecture\":");
  buf_json_str(&b, u.machine);
  buf_puts(&b, ",\"IntegrationServicesVersion\":\"" AGENT_VERSION "\",\"NetworkAddressIPv4\":");
  buf_add(&b, v4.p, v4.len);
  buf_puts(&b, ",\"NetworkAddressIPv6\":");
  buf_add(&b, v6.p, v6.len);
  buf_puts(&b, ",\"NetworkInterfaces\":");
  buf_add(&b, nics.p, nics.len);
  buf_puts(&b, "}}");
  send_line(&b);
  free(b.p); free(v4.p); free(v6.p); free(nics.p);
}

static void op_shutdown(const field_t *id, int reboot_instead) {
  buf_t b = {0};
  reply_start(&b, id);
  buf_puts(&b, "\"ok\":true,\"data\":{}}");
  send_line(&b);
  free(b.p);
  console(reboot_instead ? "vmhost-guest: rebooting\n" : "vmhost-guest: shutting down\n");
  sync();
  usleep(200000);  // let the reply leave the virtqueue before the machine goes away
  // Under systemd, reboot(2) would skip stopping services and unmounting: the next boot
  // fscks a dirty root. Ask systemd for an orderly poweroff instead; it ends us in time.
  // The busybox test guest (no /run/systemd/system) keeps the direct call.
  struct stat st;
  if (stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode)) {
    // Without SA_NOCLDWAIT for the moment, so waitpid sees systemctl's exit status.
    struct sigaction dfl = { .sa_handler = SIG_DFL }, old;
    sigaction(SIGCHLD, &dfl, &old);
    pid_t pid = fork();
    if (pid == 0) {
      execlp("systemctl", "systemctl", reboot_instead ? "reboot" : "poweroff", (char *)NULL);
      _exit(127);
    }
    int status = 0;
    int asked = pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    sigaction(SIGCHLD, &old, NULL);
    if (asked) return;  // systemd stops everything, this agent included, then powers off
    logmsg("systemctl %s failed; calling reboot(2)", reboot_instead ? "reboot" : "poweroff");
  }
  reboot(reboot_instead ? RB_AUTOBOOT : RB_POWER_OFF);
  logmsg("reboot(): %s", strerror(errno));
}

// Time Synchronization: the host sets the guest's wall clock.
static void op_settime(const field_t *id, const field_t *f, int n) {
  long long ms;
  if (field_ll(get_field(f, n, "timeMs"), &ms) < 0 || ms < 0) { reply_error(id, "BAD_REQUEST", "settime needs an integer \"timeMs\""); return; }
  long long before = now_ms(CLOCK_REALTIME);
  struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000 };
  if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "clock_settime: %s", strerror(errno));
    reply_error(id, "IO_ERROR", msg);
    return;
  }
  buf_t b = {0};
  reply_start(&b, id);
  buf_printf(&b, "\"ok\":true,\"data\":{\"previousTimeMs\":%lld,\"timeMs\":%lld}}", before, now_ms(CLOCK_REALTIME));
  send_line(&b);
  free(b.p);
}

/* ---------- freeze / thaw (application-consistent backup points) ---------- */
// Linux's counterpart of VSS: FIFREEZE makes each file system flush its dirty data and
// journal and hold new writes, so a disk copied at this moment mounts clean. Every
// mounted writable block-device file system is frozen, children before the file systems
// they are mounted on (the reverse of the mount table, as qemu-ga does). The agent keeps
// the descriptors and thaws by itself when the host does not say "thaw" in time or hangs
// up, so a dead daemon cannot leave the guest frozen.
#define DEFAULT_FREEZE_TIMEOUT_MS 10000
#define MAX_FREEZE_TIMEOUT_MS 60000
#define MAX_FROZEN 64
static int frozen_fd[MAX_FROZEN];
static int frozen_n = -1;                  // -1: not frozen
static long long thaw_deadline_ms;         // CLOCK_MONOTONIC

static int thaw_all(void) {
  int n = 0;
  for (int i = 0; i < frozen_n; i++) {
    if (ioctl(frozen_fd[i], FITHAW) == 0) n++;
    else logmsg("FITHAW: %s", strerror(errno));
    close(frozen_fd[i]);
  }
  frozen_n = -1;
  return n;
}

static void op_freeze(const field_t *id, const field_t *f, int n) {
  long long timeout = DEFAULT_FREEZE_TIMEOUT_MS;
  const field_t *t = get_field(f, n, "timeoutMs");
  if (t && (field_ll(t, &timeout) < 0 || timeout <= 0 || timeout > MAX_FREEZE_TIMEOUT_MS)) {
    reply_error(id, "BAD_REQUEST", "timeoutMs must be 1..60000");
    return;
  }
  if (frozen_n >= 0) { reply_error(id, "FROZEN", "the file systems are frozen already; thaw first"); return; }
  FILE *m = setmntent("/proc/self/mounts", "r");
  if (!m) { reply_error(id, "IO_ERROR", "cannot read /proc/self/mounts"); return; }
  char *dirs[MAX_FROZEN];
  int nd = 0;
  struct mntent *e;
  while ((e = getmntent(m)) && nd < MAX_FROZEN) {
    if (strncmp(e->mnt_fsname, "/dev/", 5) != 0 || !hasmntopt(e, MNTOPT_RW)) continue;
    dirs[nd++] = strdup(e->mnt_dir);
  }
  endmntent(m);
  buf_t list = {0};
  dev_t seen[MAX_FROZEN];
  char err[PATH_MAX + 80] = "";
  frozen_n = 0;
  for (int i = nd - 1; i >= 0 && !err[0]; i--) {
    struct stat st;
    int fd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) { if (fd >= 0) close(fd); continue; }  // gone meanwhile
    int dup = 0;
    for (int k = 0; k < frozen_n; k++) dup |= seen[k] == st.st_dev;  // the same file system mounted twice
    if (dup) { close(fd); continue; }
    if (ioctl(fd, FIFREEZE) < 0) {
      if (errno != EOPNOTSUPP) snprintf(err, sizeof err, "FIFREEZE %s: %s", dirs[i], strerror(errno));
      close(fd);
      continue;
    }
    seen[frozen_n] = st.st_dev;
    frozen_fd[frozen_n++] = fd;
    buf_puts(&list, list.len ? "," : "");
    buf_json_str(&list, dirs[i]);
  }
  for (int i = 0; i < nd; i++) free(dirs[i]);
  if (err[0]) {
    thaw_all();
    reply_error(id, "IO_ERROR", err);
  } else {
    thaw_deadline_ms = now_ms(CLOCK_MONOTONIC) + timeout;
    buf_t b = {0};
    reply_start(&b, id);
    buf_printf(&b, "\"ok\":true,\"data\":{\"timeoutMs\":%lld,\"frozen\":[", timeout);
    buf_add(&b, list.p ? list.p : "", list.len);
    buf_puts(&b, "]}}");
    send_line(&b);
    free(b.p);
  }
  free(list.p);
}

static void op_thaw(const field_t *id) {
  int n = frozen_n >= 0 ? thaw_all() : 0;
  buf_t b = {0};
  reply_start(&b, id);
  buf_printf(&b, "\"ok\":true,\"data\":{\"thawed\":%d}}", n);
  send_line(&b);
  free(b.p);
}

// Called from the main loop: the host let the freeze outlive its timeout, or went away.
static void thaw_unattended(const char *why) {
  if (frozen_n < 0) return;
  int n = thaw_all();
  char msg[120];
  snprintf(msg, sizeof msg, "vmhost-agent: %d file system(s) thawed: %s\n", n, why);
  console(msg);
}

/* ---------- writefile (Copy-VMFile) ---------- */
// Chunks go to a temp file beside the target, renamed over it on the final chunk, so a
// half copy never appears under the target's name. Each chunk is one request; the agent
// keeps no state between them (the temp name is derived from target + transfer id), so
// a host that disappears mid-copy leaves only a dot-file, which "abort" removes.
static void io_error(const field_t *id, const char *code, const char *what, const char *path) {
  char msg[PATH_MAX + 200];
  snprintf(msg, sizeof msg, "%s %s: %s", what, path, strerror(errno));
  reply_error(id, code, msg);
}

// mkdir -p of dir (which is modified in place and restored).
static int mkdirs(char *dir) {
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    int r = mkdir(dir, 0755);
    *p = '/';
    if (r < 0 && errno != EEXIST) return -1;
  }
  return mkdir(dir, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static void op_writefile(const field_t *id, const field_t *f, int n) {
  static char path[PATH_MAX], xfer[64], dir[PATH_MAX], tmp[PATH_MAX + 100];
  if (field_str(get_field(f, n, "path"), path, sizeof path) < 0 || path[0] != '/') {
    reply_error(id, "BAD_REQUEST", "writefile needs an absolute \"path\""); return;
  }
  size_t plen = strlen(path);
  if (path[plen - 1] == '/') { reply_error(id, "BAD_REQUEST", "\"path\" names a directory, not a file"); return; }
  xfer[0] = 0;
  const field_t *xf = get_field(f, n, "transfer");
  if (xf && (field_plain_str(xf, xfer, sizeof xfer) < 0 || strspn(xfer, "0123456789abcdefABCDEF-") != strlen(xfer))) {
    reply_error(id, "BAD_REQUEST", "\"transfer\" must be a short hex id"); return;
  }
  const char *slash = strrchr(path, '/');
  size_t dlen = (size_t)(slash - path);
  memcpy(dir, path, dlen); dir[dlen] = 0;
  if (dlen == 0) strcpy(dir, "/");
  if (snprintf(tmp, sizeof tmp, "%s/.%s.vmhost-%s", dlen ? dir : "", slash + 1, xfer[0] ? xfer : "copy") >= (int)sizeof tmp) {
    reply_error(id, "BAD_REQUEST", "path too long"); return;
  }
  if (field_is_true(get_field(f, n, "abort"))) {
    unlink(tmp);
    buf_t b = {0};
    reply_start(&b, id);
    buf_puts(&b, "\"ok\":true,\"data\":{}}");
    send_line(&b);
    free(b.p);
    return;
  }
  long long offset = 0;
  const field_t *of = get_field(f, n, "offset");
  if (of && (field_ll(of, &offset) < 0 || offset < 0)) { reply_error(id, "BAD_REQUEST", "bad \"offset\""); return; }
  int overwrite = field_is_true(get_field(f, n, "overwrite"));
  int final = field_is_true(get_field(f, n, "final"));
  const field_t *d = get_field(f, n, "data");
  if (d && (d->vlen < 2 || d->val[0] != '"')) { reply_error(id, "BAD_REQUEST", "\"data\" must be base64"); return; }

  struct stat st;
  if (offset == 0) {
    // First chunk: every check the admin's parameters decide, before anything is written.
    if (stat(dir, &st) < 0) {
      if (errno != ENOENT) { io_error(id, "IO_ERROR", "stat", dir); return; }
      if (!field_is_true(get_field(f, n, "createFullPath"))) {
        char msg[PATH_MAX + 100];
        snprintf(msg, sizeof msg, "directory %s does not exist", dir);
        reply_error(id, "NO_DIRECTORY", msg);
        return;
      }
      if (mkdirs(dir) < 0) { io_error(id, "IO_ERROR", "mkdir", dir); return; }
    } else if (!S_ISDIR(st.st_mode)) {
      char msg[PATH_MAX + 100];
      snprintf(msg, sizeof msg, "%s is not a directory", dir);
      reply_error(id, "NO_DIRECTORY", msg);
      return;
    }
    if (lstat(path, &st) == 0) {
      if (S_ISDIR(st.st_mode)) { char msg[PATH_MAX + 100]; snprintf(msg, sizeof msg, "%s is a directory", path); reply_error(id, "FILE_EXISTS", msg); return; }
      if (!overwrite) { char msg[PATH_MAX + 100]; snprintf(msg, sizeof msg, "%s already exists", path); reply_error(id, "FILE_EXISTS", msg); return; }
    }
  }
  int fd = open(tmp, O_WRONLY | O_CLOEXEC | (offset == 0 ? O_CREAT | O_TRUNC : 0), 0644);
  if (fd < 0) { io_error(id, "IO_ERROR", offset == 0 ? "create" : "open (was the copy started?)", tmp); return; }
  if (fstat(fd, &st) < 0 || st.st_size != offset) {
    // Chunks arrive in order on one connection: a gap means a lost chunk, never fill it.
    close(fd);
    char msg[160];
    snprintf(msg, sizeof msg, "offset %lld does not continue the copy (%lld bytes so far)", offset, (long long)st.st_size);
    reply_error(id, "BAD_REQUEST", msg);
    return;
  }
  long long size = offset;
  if (d && d->vlen > 2) {
    unsigned char *bytes = malloc(d->vlen);
    ssize_t blen = bytes ? b64_decode(d->val + 1, d->vlen - 2, bytes) : -1;
    if (blen < 0) { free(bytes); close(fd); reply_error(id, "BAD_REQUEST", "\"data\" is not base64"); return; }
    ssize_t off = 0;
    while (off < blen) {
      ssize_t w = pwrite(fd, bytes + off, (size_t)(blen - off), offset + off);
      if (w < 0) {
        if (errno == EINTR) continue;
        free(bytes); io_error(id, "IO_ERROR", "write", tmp); close(fd); unlink(tmp); return;
      }
      off += w;
    }
    free(bytes);
    size += blen;
  }
  if (final) {
    // Data on disk before the name: a crash after the rename never shows a short file.
    if (fsync(fd) < 0) { io_error(id, "IO_ERROR", "fsync", tmp); close(fd); unlink(tmp); return; }
    close(fd);
    if (!overwrite && lstat(path, &st) == 0) {
      char msg[PATH_MAX + 100];
      snprintf(msg, sizeof msg, "%s already exists", path);
      unlink(tmp);
      reply_error(id, "FILE_EXISTS", msg);
      return;
    }
    if (rename(tmp, path) < 0) { io_error(id, "IO_ERROR", "rename to", path); unlink(tmp); return; }
  } else {
    close(fd);
  }
  buf_t b = {0};
  reply_start(&b, id);
  buf_printf(&b, "\"ok\":true,\"data\":{\"size\":%lld,\"final\":%s}}", size, final ? "true" : "false");
  send_line(&b);
  free(b.p);
}

// Reads up to the cap into out, then discards; returns 0 at EOF.
static int drain(int fd, buf_t *out, int *truncated) {
  char tmp[65536];
  ssize_t r = read(fd, tmp, sizeof tmp);
  if (r < 0) return errno == EINTR || errno == EAGAIN ? 1 : 0;
  if (r == 0) return 0;
  size_t room = out->len < MAX_OUTPUT ? MAX_OUTPUT - out->len : 0;
  size_t take = (size_t)r < room ? (size_t)r : room;
  if (take) buf_add(out, tmp, take);
  if ((size_t)r > take) *truncated = 1;
  return 1;
}

// Runs in a forked child of the agent: runs the script, sends the reply, exits.
static void exec_child(const field_t *id, const char *script, size_t slen, long timeout_ms) {
  char path[64];
  snprintf(path, sizeof path, "/tmp/vmhost-exec.%d", (int)getpid());
  int sfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0700);
  if (sfd < 0 || write(sfd, script, slen) != (ssize_t)slen) { reply_error(id, "EXEC_FAILED", "cannot write script"); _exit(0); }
  close(sfd);

  int po[2], pe[2];
  if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0) { reply_error(id, "EXEC_FAILED", "pipe"); _exit(0); }
  pid_t pid = fork();
  if (pid < 0) { reply_error(id, "EXEC_FAILED", "fork"); _exit(0); }
  if (pid == 0) {
    setsid();  // own process group: a timeout kills everything the script started
    int nul = open("/dev/null", O_RDONLY);
    dup2(nul, 0); dup2(po[1], 1); dup2(pe[1], 2);
    if (nul > 2) close(nul);
    signal(SIGPIPE, SIG_DFL);
    execl("/bin/sh", "sh", path, (char *)NULL);
    _exit(127);
  }
  close(po[1]); close(pe[1]);
  fcntl(po[0], F_SETFL, O_NONBLOCK);
  fcntl(pe[0], F_SETFL, O_NONBLOCK);

  buf_t out = {0}, err = {0};
  buf_add(&out, "", 0); buf_add(&err, "", 0);
  int trunc = 0, timed_out = 0, status = 0, exited = 0, open_o = 1, open_e = 1;
  long long deadline = now_ms(CLOCK_MONOTONIC) + timeout_ms;
  // Stop when the shell has exited and its pipes are drained, or both pipes hit EOF
  // and the shell exited; a background job holding the pipes open does not block us.
  while (!exited || open_o || open_e) {
    struct pollfd p[2] = { { open_o ? po[0] : -1, POLLIN, 0 }, { open_e ? pe[0] : -1, POLLIN, 0 } };
    long long left = deadline - now_ms(CLOCK_MONOTONIC);
    int n = poll(p, 2, exited ? 0 : (int)(left < 0 ? 0 : left > 100 ? 100 : left));
    if (n > 0) {
      if (p[0].revents) open_o = drain(po[0], &out, &trunc);
      if (p[1].revents) open_e = drain(pe[0], &err, &trunc);
    } else if (exited) {
      break;  // exited and nothing more readable right now
    }
    if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = 1;
    if (!exited && now_ms(CLOCK_MONOTONIC) >= deadline) {
      timed_out = 1;
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      exited = 1;
    }
  }
  kill(-pid, SIGKILL);  // leftovers of the script's process group
  unlink(path);

  buf_t b = {0};
  reply_start(&b, id);
  buf_puts(&b, "\"ok\":true,\"data\":{\"exitCode\":");
  if (!timed_out && WIFEXITED(status)) buf_printf(&b, "%d,\"signal\":null", WEXITSTATUS(status));
  else if (!timed_out && WIFSIGNALED(status)) buf_printf(&b, "null,\"signal\":%d", WTERMSIG(status));
  else buf_puts(&b, "null,\"signal\":null");
  buf_printf(&b, ",\"timedOut\":%s,\"truncated\":%s,\"stdout\":\"", timed_out ? "true" : "false", trunc ? "true" : "false");
  buf_b64(&b, (unsigned char *)out.p, out.len);
  buf_puts(&b, "\",\"stderr\":\"");
  buf_b64(&b, (unsigned char *)err.p, err.len);
  buf_puts(&b, "\"}}");
  send_line(&b);
  _exit(0);
}

static void op_exec(const field_t *id, const field_t *f, int n) {
  const field_t *s = get_field(f, n, "script");
  if (!s || s->vlen < 2 || s->val[0] != '"') { reply_error(id, "BAD_REQUEST", "exec needs a base64 \"script\""); return; }
  long timeout_ms = DEFAULT_EXEC_TIMEOUT_MS;
  const field_t *t = get_field(f, n, "timeoutMs");
  if (t) {
    char tmp[32];
    if (t->vlen >= sizeof tmp) { reply_error(id, "BAD_REQUEST", "bad timeoutMs"); return; }
    memcpy(tmp, t->val, t->vlen); tmp[t->vlen] = 0;
    char *end;
    timeout_ms = strtol(tmp, &end, 10);
    if (*end || timeout_ms <= 0) { reply_error(id, "BAD_REQUEST", "bad timeoutMs"); return; }
  }
  unsigned char *script = malloc(s->vlen);
  ssize_t slen = b64_decode(s->val + 1, s->vlen - 2, script);
  if (slen < 0) { free(script); reply_error(id, "BAD_REQUEST", "script is not base64"); return; }
  pid_t pid = fork();
  if (pid == 0) {
    struct sigaction dfl = { .sa_handler = SIG_DFL };  // we wait for our own child
    sigaction(SIGCHLD, &dfl, NULL);
    close(lock_fd);  // fcntl locks are per process: reopen so the child can lock too
    lock_fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    exec_child(id, (char *)script, (size_t)slen, timeout_ms);
  }
  if (pid < 0) reply_error(id, "EXEC_FAILED", "fork");
  free(script);
}

static void handle_line(char *line, size_t len) {
  field_t f[MAX_FIELDS];
  int n = parse_object(line, line + len, f, MAX_FIELDS);
  if (n < 0) { reply_error(NULL, "BAD_REQUEST", "not a JSON object"); return; }
  const field_t *id = get_field(f, n, "id");
  if (id && !(id->val[0] == '"' || id->val[0] == '-' || (id->val[0] >= '0' && id->val[0] <= '9'))) id = NULL;
  char op[32];
  if (field_plain_str(get_field(f, n, "op"), op, sizeof op) < 0) { reply_error(id, "BAD_REQUEST", "missing \"op\""); return; }
  if (!strcmp(op, "ping")) op_ping(id);
  else if (!strcmp(op, "kvp")) op_kvp(id);
  else if (!strcmp(op, "meminfo")) op_meminfo(id);
  else if (!strcmp(op, "exec")) op_exec(id, f, n);
  else if (!strcmp(op, "shutdown")) op_shutdown(id, field_is_true(get_field(f, n, "reboot")));
  else if (!strcmp(op, "settime")) op_settime(id, f, n);
  else if (!strcmp(op, "writefile")) op_writefile(id, f, n);
  else if (!strcmp(op, "freeze")) op_freeze(id, f, n);
  else if (!strcmp(op, "thaw")) op_thaw(id);
  else reply_error(id, "UNKNOWN_OP", op);
}

/* ---------- finding the port ---------- */
// busybox has no udev: find the vport whose sysfs name is ours, add the usual symlink.
static char *find_port(void) {
  static char dev[300];
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return NULL;
  struct dirent *e;
  char *found = NULL;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[300], name[128] = {0};
    snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", e->d_name);
    int fd = open(p, O_RDONLY);
    if (fd < 0) continue;
    ssize_t r = read(fd, name, sizeof name - 1);
    close(fd);
    if (r <= 0) continue;
    name[strcspn(name, "\n")] = 0;
    if (strcmp(name, PORT_NAME) != 0) continue;
    snprintf(dev, sizeof dev, "/dev/%s", e->d_name);
    mkdir("/dev/virtio-ports", 0755);
    char link[300];
    snprintf(link, sizeof link, "/dev/virtio-ports/%s", name);
    unlink(link);
    (void)!symlink(dev, link);
    found = dev;
    break;
  }
  closedir(d);
  return found;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  // Reap exec children without blocking the loop.
  struct sigaction sa = { .sa_handler = SIG_DFL, .sa_flags = SA_NOCLDWAIT };
  sigaction(SIGCHLD, &sa, NULL);

  mkdir("/run", 0755);
  lock_fd = open(LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

  port_path = argc > 1 ? argv[1] : NULL;
  for (int i = 0; !port_path; i++) {
    port_path = find_port();
    if (!port_path) {
      if (i == 0) logmsg("waiting for virtio port %s", PORT_NAME);
      usleep(i < 50 ? 100000 : 1000000);
    }
  }
  port_fd = open(port_path, O_RDWR | O_CLOEXEC);
  if (port_fd < 0) { logmsg("open %s: %s", port_path, strerror(errno)); return 1; }

  // Host connection state: POLLHUP while no host client is attached to the chardev.
  // We send "ready" each time a host (re)appears, and drop any half line on a hang-up.
  int host = 0;
  buf_t in = {0};
  char chunk[65536];
  for (;;) {
    struct pollfd p = { port_fd, POLLIN, 0 };
    long long wait_ms = 1000;
    if (frozen_n >= 0) {
      long long left = thaw_deadline_ms - now_ms(CLOCK_MONOTONIC);
      if (left <= 0) { thaw_unattended("the host did not thaw in time"); continue; }
      if (left < wait_ms) wait_ms = left;
    }
    int n = poll(&p, 1, (int)wait_ms);
    if (n < 0) { if (errno == EINTR) continue; logmsg("poll: %s", strerror(errno)); sleep(1); continue; }
    if (n > 0 && (p.revents & POLLHUP) && !(p.revents & POLLIN)) {
      thaw_unattended("the host hung up");
      if (host) { host = 0; in.len = 0; }
      usleep(100000);  // the port reports HUP until a host connects; no event to wait on
      continue;
    }
    if (!host) { host = 1; send_ready(); }
    if (n == 0 || !(p.revents & POLLIN)) continue;
    ssize_t r = read(port_fd, chunk, sizeof chunk);
    if (r < 0) { if (errno != EINTR && errno != EAGAIN) { logmsg("read: %s", strerror(errno)); usleep(100000); } continue; }
    if (r == 0) { thaw_unattended("the host hung up"); if (host) { host = 0; in.len = 0; } usleep(100000); continue; }
    buf_add(&in, chunk, (size_t)r);
    size_t start = 0;
    for (;;) {
      char *nl = memchr(in.p + start, '\n', in.len - start);
      if (!nl) break;
      *nl = 0;
      size_t l = (size_t)(nl - (in.p + start));
      if (l && in.p[start + l - 1] == '\r') in.p[start + --l] = 0;
      if (l) handle_line(in.p + start, l);
      start += (size_t)(nl - (in.p + start)) + 1;
    }
    memmove(in.p, in.p + start, in.len - start);
    in.len -= start;
    if (in.len > MAX_LINE) { reply_error(NULL, "BAD_REQUEST", "line too long"); in.len = 0; }
  }
}
