// The floor of one relay hop, for bench/switch.ts: listens on two unix stream sockets, accepts
// a connection on each (the sender's first), copies everything the first sends to the second
// with blocking read/write of up to 256 KiB, and at the sender's end prints the CPU time it
// used (user + system, ns) and the bytes it moved. No framing, no switching, no event loop:
// what any relay between two stream sockets costs at least — the two copies, the syscalls
// and the sleeps and wake-ups of a thread between the two peers.
// Build: cc -O2 -o relay-floor relay-floor.c. Run: relay-floor <a.sock> <b.sock>.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_on(const char *path) {
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  if (s < 0 || strlen(path) >= sizeof a.sun_path) { perror(path); exit(1); }
  strcpy(a.sun_path, path);
  unlink(path);
  if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 1) != 0) { perror(path); exit(1); }
  return s;
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s a.sock b.sock\n", argv[0]); return 2; }
  int la = listen_on(argv[1]), lb = listen_on(argv[2]);
  puts("listening");
  fflush(stdout);
  int a = accept(la, NULL, NULL), b = accept(lb, NULL, NULL);
  if (a < 0 || b < 0) { perror("accept"); return 1; }
  enum { BUF = 256 << 10 };
  static char buf[BUF];
  long long moved = 0;
  for (;;) {
    ssize_t n = read(a, buf, BUF);
    if (n <= 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(b, buf + off, n - off);
      if (w <= 0) { n = 0; break; }
      off += w;
    }
    if (n == 0) break;
    moved += n;
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  long long ns = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
  printf("%lld %lld\n", ns, moved);
  return 0;
}
