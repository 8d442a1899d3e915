//! Starting a program under ptrace, configured between fork and exec: ASLR off, pinned to
//! a CPU, rdtsc trapping, and the seccomp filter; the tracee is returned stopped at its
//! exec, before its first instruction.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use nix::sys::ptrace::Options;
use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::seccomp::Program;
use crate::task::{Exit, Running, Stop, Stopped, Waited};

/// How to start the tracee.
#[derive(Debug)]
pub struct SpawnOptions {
    /// The executable, resolved (absolute or relative to the cwd; no PATH search).
    pub program: PathBuf,
    /// argv, including argv\[0].
    pub argv: Vec<OsString>,
    /// The environment, `NAME=value` pairs; the caller's own when `None`.
    pub env: Option<Vec<(OsString, OsString)>>,
    /// Seccomp filter to install just before exec.
    pub seccomp: Option<Program>,
    /// Make rdtsc/rdtscp raise SIGSEGV (PR_SET_TSC).
    pub trap_tsc: bool,
    /// Turn off address space randomization (personality ADDR_NO_RANDOMIZE).
    pub no_aslr: bool,
    /// Pin the tracee to this CPU.
    pub cpu: Option<usize>,
    /// Where the tracee's stdout goes (a file or pipe; inherited when `None`).
    pub stdout: Option<std::os::fd::OwnedFd>,
    /// Where the tracee's stdin comes from (a file or pipe; inherited when `None`).
    pub stdin: Option<std::os::fd::OwnedFd>,
}

/// The ptrace options the recorder relies on: syscall stops marked with 0x80, seccomp
/// stops, the tracee killed if the tracer dies, and execs and new tasks reported.
pub fn trace_options() -> Options {
    Options::PTRACE_O_TRACESYSGOOD
        | Options::PTRACE_O_TRACESECCOMP
        | Options::PTRACE_O_EXITKILL
        | Options::PTRACE_O_TRACEEXEC
        | Options::PTRACE_O_TRACECLONE
        | Options::PTRACE_O_TRACEFORK
        | Options::PTRACE_O_TRACEVFORK
}

const ADDR_NO_RANDOMIZE: libc::c_ulong = 0x0040000;

/// Starts the program and returns it stopped right after its execve, options set.
pub fn spawn(opts: &SpawnOptions) -> Result<Stopped> {
    spawn_in(opts, None)
}

/// As [`spawn`], with the working directory `cwd` (the replayer starts the program where
/// it was recorded, so that a relative program path and the initial stack are the same).
pub fn spawn_in(opts: &SpawnOptions, cwd: Option<&std::path::Path>) -> Result<Stopped> {
    let program_name = opts.program.display().to_string();
    let spawn_err = |why: String| Error::Spawn {
        program: program_name.clone(),
        why,
    };
    let mut cmd = Command::new(&opts.program);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(argv0) = opts.argv.first() {
        cmd.arg0(argv0);
    }
    cmd.args(opts.argv.iter().skip(1));
    if let Some(env) = &opts.env {
        cmd.env_clear();
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
    }
    if let Some(f) = &opts.stdin {
        cmd.stdin(
            f.try_clone()
                .map_err(|e| spawn_err(format!("stdin: {e}")))?,
        );
    }
    if let Some(f) = &opts.stdout {
        cmd.stdout(
            f.try_clone()
                .map_err(|e| spawn_err(format!("stdout: {e}")))?,
        );
    }
    let filter = opts.seccomp.clone();
    let (trap_tsc, no_aslr, cpu) = (opts.trap_tsc, opts.no_aslr, opts.cpu);
    let mut cpu_set = nix::sched::CpuSet::new();
    if let Some(c) = cpu {
        cpu_set
            .set(c)
            .map_err(|e| spawn_err(format!("CPU {c}: {e}")))?;
    }
    let child_setup = move || -> std::io::Result<()> {
        let check = |r: libc::c_long| {
            if r < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        if no_aslr {
            // SAFETY: personality with an integer argument; 0xffffffff only queries.
            let cur = unsafe { libc::personality(0xffff_ffff) };
            check(cur.into())?;
            // SAFETY: as above; sets the queried persona plus ADDR_NO_RANDOMIZE.
            check(unsafe { libc::personality(cur as libc::c_ulong | ADDR_NO_RANDOMIZE) }.into())?;
        }
        if cpu.is_some() {
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &cpu_set)?;
        }
        // SAFETY: PTRACE_TRACEME takes no pointers.
        check(unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0usize, 0usize) })?;
        if trap_tsc {
            // SAFETY: prctl with integer arguments.
            check(unsafe { libc::prctl(libc::PR_SET_TSC, libc::PR_TSC_SIGSEGV, 0, 0, 0) }.into())?;
        }
        if let Some(f) = &filter {
            f.install()?;
        }
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec and only makes raw system
    // calls (personality, sched_setaffinity, ptrace, prctl, seccomp) with no allocation
    // or locking, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(child_setup);
    }
    let child = cmd.spawn().map_err(|e| spawn_err(e.to_string()))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    drop(child);
    // The exec under PTRACE_TRACEME raises SIGTRAP before the first instruction.
    match (Running::assume(pid)).wait()? {
        Waited::Stopped(s, Stop::Signal(Signal::SIGTRAP)) => {
            s.set_options(trace_options())?;
            Ok(s)
        }
        Waited::Stopped(s, other) => {
            let _ = s.kill();
            Err(spawn_err(format!(
                "stopped with {other:?} instead of at its exec"
            )))
        }
        Waited::Exited(Exit::Exited(c)) => {
            Err(spawn_err(format!("exited with status {c} before exec")))
        }
        Waited::Exited(Exit::Signaled(s, _)) => {
            Err(spawn_err(format!("killed by {s} before exec")))
        }
    }
}

/// Resolves `program` the way a shell would: names with a slash as given, others
/// through $PATH.
pub fn resolve_program(program: &std::path::Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.as_os_str().as_encoded_bytes().contains(&b'/') {
        return executable(program).then(|| program.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| executable(p))
}

/// A pipe (read end, write end), both close-on-exec: a tracee's stdin fed by the tracer.
pub fn pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}
