// vmhost-memdirty MIB RATE: keeps MIB MiB of memory dirty at RATE MiB/s — the guest load a
// live migration must converge under (issue 11: "the guest dirties memory at ~50 MB/s").
// It writes one word into each 4 KiB page, page after page round the buffer, in 10 ms
// slices of RATE/100 MiB, sleeping out the rest of each slice: a page written is a page QEMU
// must send again, and touching a word costs far less guest CPU than filling the page (under
// TCG a memset of 50 MB/s would be most of a vCPU). Prints one line a second: "dirtied N MiB"
// (the total), so a test sees it keeping pace; the last line also lands in /tmp/memdirty.
// Runs until killed. Built by scripts/build-guest.sh into /sbin/vmhost-memdirty.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define PAGE 4096UL
#define SLICE_NS 10000000L

static long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000L + t.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: vmhost-memdirty MIB RATE_MIB_PER_S\n");
    return 2;
  }
  size_t pages = (size_t)atol(argv[1]) * 256;
  long per_slice = atol(argv[2]) * 256 / 100; // pages per 10 ms
  if (pages == 0 || per_slice <= 0) return 2;
  volatile uint64_t *buf = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (buf == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  size_t next = 0;
  uint64_t stamp = 0, total = 0;
  long slice = now_ns(), report = slice;
  for (;;) {
    stamp++;
    for (long i = 0; i < per_slice; i++) {
      buf[next * (PAGE / sizeof(uint64_t))] = stamp;
      next = (next + 1) % pages;
    }
    total += per_slice;
    slice += SLICE_NS;
    long wait = slice - now_ns();
    // Behind (a slow vCPU): carry on at once, never catch up in a burst.
    if (wait > 0) {
      struct timespec t = { wait / 1000000000L, wait % 1000000000L };
      nanosleep(&t, NULL);
    } else {
      slice = now_ns();
    }
    if (slice - report >= 1000000000L) {
      report = slice;
      printf("dirtied %lu MiB\n", (unsigned long)(total / 256));
      fflush(stdout);
      FILE *f = fopen("/tmp/memdirty", "w");
      if (f) {
        fprintf(f, "%lu\n", (unsigned long)(total / 256));
        fclose(f);
      }
    }
  }
}
