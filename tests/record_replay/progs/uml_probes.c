/* The host probes Linux's arch/um/os-Linux/start_up.c makes at boot, in its order:
   a forked child asks to be traced, then its parent changes one of its system calls. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stddef.h>

static void child(void) {
    int pid = syscall(SYS_getpid), ppid = getppid();
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) { perror("traceme"); _exit(3); }
    kill(pid, SIGSTOP);
    int r = syscall(SYS_getpid);
    _exit(r == pid ? 1 : r == ppid ? 0 : 2);
}

static int start(void) {
    int pid = fork(), status;
    if (pid == 0) child();
    if (waitpid(pid, &status, WUNTRACED) != pid || !WIFSTOPPED(status) || WSTOPSIG(status) != SIGSTOP) {
        printf("expected SIGSTOP, got %#x\n", status); exit(1);
    }
    return pid;
}

static int stop(int pid) {
    int status;
    ptrace(PTRACE_CONT, pid, 0, 0);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void) {
    int pid = start(), status;
    ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACESYSGOOD);
    for (;;) {
        ptrace(PTRACE_SYSCALL, pid, 0, 0);
        waitpid(pid, &status, WUNTRACED);
        if (!WIFSTOPPED(status) || WSTOPSIG(status) != (SIGTRAP | 0x80)) { printf("syscall stop %#x\n", status); return 1; }
        long nr = ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user_regs_struct, orig_rax), 0);
        if (nr == SYS_getpid) { ptrace(PTRACE_POKEUSER, pid, offsetof(struct user_regs_struct, orig_rax), SYS_getppid); break; }
    }
    printf("change a call's number: child says %d\n", stop(pid));

    pid = start();
    ptrace(PTRACE_SETOPTIONS, pid, 0, (void *)PTRACE_O_TRACESYSGOOD);
    int steps = 0;
    for (;;) {
        ptrace(PTRACE_SYSEMU_SINGLESTEP, pid, 0, 0);
        waitpid(pid, &status, WUNTRACED);
        if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80)) {
            ptrace(PTRACE_POKEUSER, pid, offsetof(struct user_regs_struct, rax), getpid());
            break;
        } else if (WIFSTOPPED(status) && WSTOPSIG(status) == SIGTRAP) steps++;
        else { printf("sysemu stop %#x\n", status); return 1; }
    }
    printf("emulate a call: child says %d after %s\n", stop(pid), steps > 0 ? "steps" : "no step");

    pid = start();
    struct user_regs_struct regs;
    printf("registers read: %ld\n", ptrace(PTRACE_GETREGS, pid, 0, &regs));
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    printf("killed: %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
    return 0;
}
