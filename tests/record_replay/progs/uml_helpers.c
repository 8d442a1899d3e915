/* What Linux built as UML does with its memory and its helpers at boot
   (arch/um/os-Linux/mem.c, helper.c, sigio.c): physical memory is an unlinked file in
   /dev/shm, extended with one write and mapped MAP_SHARED at several addresses; a helper
   is a clone(CLONE_VM | CLONE_FILES) with no exit signal, which shares the kernel's memory,
   answers through a pipe, and is killed and reaped with __WALL in the end. Between the
   mappings, one page of the file nothing maps yet is written with write(2), as UML's
   stub page is. With the argument "overwrite", a write(2) lands in a mapped page. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MEM_SIZE (4 << 20)
#define RESERVE (64 << 10)

static int to_helper[2], from_helper[2];
static volatile unsigned char *physmem;

/* The helper doubles what its parent left in the shared page and answers. */
static int helper(void *arg) {
    (void)arg;
    unsigned char n;
    while (read(to_helper[0], &n, 1) == 1) {
        physmem[4096 + n] = (unsigned char)(physmem[n] * 2);
        if (write(from_helper[1], &n, 1) != 1) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int fd = open("/dev/shm", O_RDWR | O_EXCL | O_TMPFILE | O_CLOEXEC, 0700);
    if (fd < 0) { perror("O_TMPFILE"); return 1; }
    char zero = 0;
    if (lseek(fd, MEM_SIZE - 1, SEEK_SET) < 0 || write(fd, &zero, 1) != 1) { perror("extend"); return 1; }
    physmem = mmap(NULL, MEM_SIZE - RESERVE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, RESERVE);
    if (physmem == MAP_FAILED) { perror("mmap"); return 1; }
    char stub[4096];
    memset(stub, 0x5a, sizeof stub);
    off_t at = argc > 1 && !strcmp(argv[1], "overwrite") ? RESERVE : 0;
    if (lseek(fd, at, SEEK_SET) < 0 || write(fd, stub, sizeof stub) != sizeof stub) { perror("stub"); return 1; }
    /* The stub page where a process sees it, and physical memory again, as UML maps a
       page where a process sees it. */
    volatile unsigned char *stub_seen = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    volatile unsigned char *alias = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, RESERVE);
    if (stub_seen == MAP_FAILED || alias == MAP_FAILED) { perror("mmap"); return 1; }
    printf("stub page: %#x\n", stub_seen[4095]);
    for (int i = 0; i < 64; i++) alias[i] = (unsigned char)(i + 1);

    if (pipe(to_helper) || pipe(from_helper)) { perror("pipe"); return 1; }
    size_t stack_size = 64 << 10;
    char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int pid = clone(helper, stack + stack_size, CLONE_VM | CLONE_FILES, NULL);
    if (pid < 0) { perror("clone"); return 1; }

    unsigned sum = 0;
    for (unsigned char n = 0; n < 64; n++) {
        unsigned char back;
        if (write(to_helper[1], &n, 1) != 1 || read(from_helper[0], &back, 1) != 1) { perror("helper"); return 1; }
        sum += alias[4096 + back];
    }
    printf("helper doubled: %u\n", sum);

    int status;
    kill(pid, SIGKILL);
    if (waitpid(pid, &status, __WALL) != pid) { perror("waitpid"); return 1; }
    printf("helper killed: %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    return 0;
}
