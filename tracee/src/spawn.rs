//! Starting a program under ptrace, configured between fork and exec: ASLR off, pinned to
//! a CPU, rdtsc trapping, the inherited signal mask and ignored signals, and the seccomp
//! filter; the tracee is returned stopped at its exec, before its first instruction.
//!
//! The child calls execve itself with argv and the environment exactly as given — in
//! order, duplicates and all — because `std::process::Command` keeps the environment in a
//! sorted map and resets the signal mask: a program that prints its environment or asks
//! for its mask would see something else at replay than it saw when recorded.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use nix::sys::ptrace::Options;
use nix::sys::signal::Signal;

use crate::error::{Error, Result};
use crate::maps::SignalSets;
use crate::seccomp::Program;
use crate::task::{Exit, Running, Stop, Stopped, Waited};

/// How to start the tracee.
#[derive(Debug)]
pub struct SpawnOptions {
    /// The executable, resolved (absolute or relative to the cwd; no PATH search).
    pub program: PathBuf,
    /// argv, including argv\[0].
    pub argv: Vec<OsString>,
    /// The environment, each entry as execve receives it (normally `NAME=value`), in this
    /// order; the caller's own `environ` when `None`.
    pub env: Option<Vec<OsString>>,
    /// The signal mask and SIG_IGN set the program starts with; the caller's inherited
    /// ones (see [`inherited_signals`]) when `None`.
    pub signals: Option<SignalSets>,
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
    let exec = ExecArgs::new(opts).map_err(|e| spawn_err(e.to_string()))?;
    let signals = opts.signals.unwrap_or_else(inherited_signals);
    let mask: u64 = signals.blocked;
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
        // Raw system calls, not libc's wrappers, which refuse or drop the signals libc
        // reserves for itself (32, 33) although a process can inherit them ignored.
        // Every disposition: SIG_IGN is the one that survives exec, and ours (inherited
        // from whoever started us) must not leak into the program.
        for signo in 1..=64 {
            if signo == libc::SIGKILL || signo == libc::SIGSTOP {
                continue;
            }
            let action = KernelSigaction {
                handler: if signals.ignored & (1 << (signo - 1)) != 0 {
                    libc::SIG_IGN
                } else {
                    libc::SIG_DFL
                },
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            // SAFETY: rt_sigaction reads one kernel sigaction (`action`, alive for the
            // call) and writes no old action (null); 8 is the kernel sigset size.
            check(unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signo,
                    &action as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            })?;
        }
        if let Some(f) = &filter {
            f.install()?;
        }
        // Last, so that nothing above runs with the program's mask.
        // SAFETY: rt_sigprocmask reads the 8-byte kernel sigset `mask` (alive for the call)
        // and writes no old set.
        check(unsafe {
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                &mask as *const u64,
                std::ptr::null_mut::<u64>(),
                8usize,
            )
        })?;
        Err(exec.exec())
    };
    // SAFETY: the closure runs in the forked child before exec and only makes raw system
    // calls (personality, sched_setaffinity, ptrace, prctl, signal, seccomp, sigprocmask,
    // execve) on memory prepared before the fork, with no allocation or locking, which is
    // async-signal-safe.
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

/// The signal state this process inherited, read once: the blocked mask of the first
/// thread to ask and the process's SIG_IGN set, less SIGPIPE, which the Rust runtime sets
/// to SIG_IGN itself (and `Command` resets for children), so its inherited value is
/// unknowable here. Call it early (before installing signal handlers) to capture what the
/// user's shell handed down.
pub fn inherited_signals() -> SignalSets {
    static SETS: std::sync::OnceLock<SignalSets> = std::sync::OnceLock::new();
    *SETS.get_or_init(|| {
        let pid = nix::unistd::Pid::this();
        let mut sets = crate::maps::inherited_signals(pid).unwrap_or_default();
        if let Ok(text) = std::fs::read_to_string("/proc/thread-self/status") {
            if let Some(v) = text.lines().find_map(|l| l.strip_prefix("SigBlk:")) {
                sets.blocked = u64::from_str_radix(v.trim(), 16).unwrap_or(sets.blocked);
            }
        }
        sets.ignored &= !(1 << (libc::SIGPIPE - 1));
        sets
    })
}

/// The kernel's `struct sigaction` for rt_sigaction (not libc's, which differs).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The execve arguments, built before the fork so the child only reads them.
struct ExecArgs {
    program: CString,
    _strings: Vec<CString>,
    /// Addresses of the argv strings, then a null; then the envp strings and a null
    /// (kept as integers so the closure holding them is Send).
    argv: Vec<usize>,
    envp: Option<Vec<usize>>,
}

extern "C" {
    static environ: *const *const libc::c_char;
}

impl ExecArgs {
    fn new(opts: &SpawnOptions) -> std::io::Result<ExecArgs> {
        let c = |s: &std::ffi::OsStr| {
            CString::new(s.as_bytes()).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{s:?} contains a NUL byte"),
                )
            })
        };
        let program = c(opts.program.as_os_str())?;
        let mut strings = Vec::new();
        let mut argv = Vec::new();
        for a in &opts.argv {
            let s = c(a)?;
            argv.push(s.as_ptr() as usize);
            strings.push(s);
        }
        argv.push(0);
        let envp = match &opts.env {
            None => None,
            Some(env) => {
                let mut envp = Vec::new();
                for e in env {
                    let s = c(e)?;
                    envp.push(s.as_ptr() as usize);
                    strings.push(s);
                }
                envp.push(0);
                Some(envp)
            }
        };
        Ok(ExecArgs {
            program,
            _strings: strings,
            argv,
            envp,
        })
    }

    /// execve; returns only on failure.
    fn exec(&self) -> std::io::Error {
        let envp = match &self.envp {
            Some(v) => v.as_ptr() as *const *const libc::c_char,
            // SAFETY: reads the process's environ pointer, which libc keeps valid.
            None => unsafe { environ },
        };
        // SAFETY: program, argv and envp are NUL-terminated strings and null-terminated
        // pointer arrays owned by `self` (alive across the call); execve only reads them.
        unsafe {
            libc::execve(
                self.program.as_ptr(),
                self.argv.as_ptr() as *const *const libc::c_char,
                envp,
            );
        }
        std::io::Error::last_os_error()
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
