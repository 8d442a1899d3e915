//! The ptrace floor: the cheapest tracer that stops a program twice at every system call
//! the recorder traces (its seccomp stop, under the recorder's own filter, and its
//! syscall-exit stop, as `rewind record` at least does) and does nothing else, following
//! every process and thread it makes.
//! `rewind-bench floor PROGRAM ARGS…` runs it; the overhead section times it beside the
//! native run and the recordings, so the table shows what no ptrace recorder can beat.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context;
use tracee::{Resume, Signal, Stop, Waited};

/// Runs `program args` under the floor tracer; returns its exit code (128 + signal).
pub fn run(program: PathBuf, args: Vec<OsString>) -> anyhow::Result<i32> {
    let resolved = tracee::resolve_program(&program)
        .with_context(|| format!("{}: no such executable", program.display()))?;
    let mut argv = vec![program.into_os_string()];
    argv.extend(args);
    let cpu = tracee::cpu::current_cpu();
    if let Some(c) = cpu {
        // As the recorder does: tracer and tracee on one CPU.
        let _ = tracee::cpu::pin_current_thread(c);
    }
    let opts = tracee::SpawnOptions {
        program: resolved,
        argv,
        env: None,
        signals: None,
        // The recorder's own filter: stops exactly at the calls `rewind record
        // --no-syscall-buffer` stops at.
        seccomp: Some(tracee::syscalls::filter()),
        trap_tsc: false,
        no_aslr: false,
        cpu,
        stdout: None,
        stdin: None,
    };
    let first = tracee::spawn(&opts).context("starting the program under ptrace")?;
    let first_pid = first.pid();
    first.resume(Resume::Cont(None))?;
    let (mut live, mut code) = (1usize, 0);
    while live > 0 {
        let Some((pid, w)) = tracee::task::wait_any(false)? else {
            break;
        };
        match w {
            Waited::Exited(e) => {
                live -= 1;
                if pid == first_pid {
                    let status = e.wait_status();
                    code = if libc::WIFSIGNALED(status) {
                        128 + libc::WTERMSIG(status)
                    } else {
                        libc::WEXITSTATUS(status)
                    };
                }
            }
            Waited::Stopped(s, Stop::Seccomp) => {
                s.resume(Resume::Syscall(None))?;
            }
            Waited::Stopped(s, Stop::NewTask) => {
                live += 1;
                s.resume(Resume::Cont(None))?;
            }
            // A new task's first stop, and the group-stop its SIGSTOP would cause.
            Waited::Stopped(s, Stop::Signal(Signal::SIGSTOP)) => {
                s.resume(Resume::Cont(None))?;
            }
            Waited::Stopped(s, Stop::Signal(sig)) => {
                s.resume(Resume::Cont(Some(sig)))?;
            }
            Waited::Stopped(s, _) => {
                s.resume(Resume::Cont(None))?;
            }
        }
    }
    Ok(code)
}
