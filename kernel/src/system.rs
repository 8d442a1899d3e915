//! System control: halt and reboot, the sysrq task dump, and the management console's
//! kernel side. mconsole requests arrive by SIGIO, but like UML's they are served by a
//! kernel thread (`mconsoled`), because hot-plugging a disk sleeps and takes locks.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::drivers::mconsole::{McHandler, Mconsole};
use crate::sched::task::{self, State, MAX_TASKS};
use crate::sched::wait::WaitQueue;
use crate::sync::global::Global;

static MCONSOLE: Global<Option<Mconsole>> = Global::new("mconsole", None);
static MCONSOLE_WAKE: WaitQueue = WaitQueue::new("mconsole");
static MCONSOLE_PENDING: AtomicBool = AtomicBool::new(false);
/// The socket path, kept apart from the console so that a halt requested through the
/// console itself (while `mconsoled` holds it) still removes the socket.
static MCONSOLE_PATH: Global<Option<alloc::vec::Vec<u8>>> = Global::new("mconsole path", None);

/// Flushes the filesystems and ends the kernel with exit status 0.
pub fn halt() -> ! {
    if let Err(e) = crate::rootfs::sync_all() {
        crate::printk!("sync failed: {}", e);
    }
    shutdown_devices();
    crate::printk!("System halted.");
    crate::host::process::exit(0)
}

/// Restarts the kernel by re-executing the binary with the same arguments, as UML does.
pub fn reboot() -> ! {
    if let Err(e) = crate::rootfs::sync_all() {
        crate::printk!("sync failed: {}", e);
    }
    shutdown_devices();
    crate::printk!("reboot: Restarting system");
    crate::boot::reexec()
}

fn shutdown_devices() {
    crate::host::process::stop_timer();
    if let Some(mut mc) = MCONSOLE.with(|m| m.take()) {
        mc.shutdown();
    }
    if let Some(path) = MCONSOLE_PATH.with(|p| p.take()) {
        let _ = crate::host::file::unlink(&path);
    }
}

/// The sysrq-t task dump: every task, its state, pid, what it waits on and its trace.
pub fn task_dump() -> String {
    let mut out = String::new();
    let cur = crate::sched::current();
    let _ = writeln!(out, "sysrq: Show State");
    let _ = writeln!(out, "  task             PC    pid state  switches  wait");
    for idx in 0..MAX_TASKS {
        let t = task::snapshot(idx);
        if matches!(t.state, State::Unused) {
            continue;
        }
        let pc = if idx == cur || t.saved_rsp == 0 {
            0
        } else {
            // SAFETY: the saved frame's return address is word 6 above saved_rsp, within
            // the task's stack (arch/switch.rs).
            unsafe { *((t.saved_rsp + 48) as *const u64) }
        };
        let _ = writeln!(
            out,
            "  {:<15} {:016x} {:>4} {:<15} {:>6}  {}{}",
            t.name(),
            pc,
            t.pid,
            t.state.name(),
            t.switches,
            crate::watchdog::describe_wait(&t),
            if idx == cur { "(running)" } else { "" }
        );
    }
    out
}

struct Handler;

fn parse_ubd(dev: &str) -> Result<usize, String> {
    dev.strip_prefix("ubd")
        .and_then(|n| n.parse().ok())
        .filter(|&n| n < crate::block::ubd::MAX_UBD)
        .ok_or_else(|| format!("{dev}: unknown device (ubd0-ubd7)"))
}

impl McHandler for Handler {
    fn version(&mut self) -> String {
        crate::drivers::mconsole::default_version()
    }

    fn halt(&mut self) {
        halt();
    }

    fn reboot(&mut self) {
        reboot();
    }

    fn sysrq(&mut self, key: char) -> Result<String, String> {
        match key {
            't' => Ok(task_dump()),
            'm' => Ok(crate::shell::free_report()),
            'd' => {
                crate::watchdog::show_all_locks();
                Ok(String::from("sysrq: Show Locks Held (see console)"))
            }
            'c' => panic!("sysrq triggered crash"),
            _ => Err(format!("sysrq: unknown key '{key}' (t, m, d, c)")),
        }
    }

    fn config(&mut self, dev: &str, value: &str) -> Result<String, String> {
        let n = parse_ubd(dev)?;
        let spec = crate::boot::args::parse_ubd(value.as_bytes())
            .ok_or_else(|| format!("bad ubd spec '{value}'"))?;
        crate::block::ubd::config(n, spec.image, spec.cow)
            .map(|_| String::new())
            .map_err(|e| format!("{e}"))
    }

    fn config_query(&mut self, dev: &str) -> Result<String, String> {
        let n = parse_ubd(dev)?;
        match crate::block::ubd::sectors(n) {
            Some(s) => Ok(format!("ubd{n}: {} sectors", s)),
            None => Err(format!("ubd{n}: not configured")),
        }
    }

    fn remove(&mut self, dev: &str) -> Result<String, String> {
        let n = parse_ubd(dev)?;
        crate::block::ubd::remove(n)
            .map(|_| String::new())
            .map_err(|e| format!("{e}"))
    }

    fn stop(&mut self) {
        crate::printk!("mconsole: stopped");
    }

    fn go(&mut self) {
        crate::printk!("mconsole: continuing");
    }
}

/// Opens the management console socket.
pub fn open_mconsole(path: &[u8]) -> Result<(), crate::host::Errno> {
    let mc = Mconsole::open(path)?;
    MCONSOLE.with(|m| *m = Some(mc));
    MCONSOLE_PATH.with(|p| *p = Some(alloc::vec::Vec::from(path)));
    Ok(())
}

/// Arms the console's interrupt (after the SIGIO handler is installed: the default action
/// of SIGIO would kill the kernel).
pub fn start_mconsole() -> Result<(), crate::host::Errno> {
    MCONSOLE.with(|m| m.as_ref().map_or(Ok(()), |mc| mc.enable_sigio()))?;
    crate::irq::register_io(mconsole_irq);
    Ok(())
}

fn mconsole_irq() {
    MCONSOLE_PENDING.store(true, Ordering::Relaxed);
    MCONSOLE_WAKE.wake_all();
}

/// The mconsoled thread: serves requests in process context.
pub fn mconsoled() {
    loop {
        MCONSOLE_WAKE.wait_until(State::Interruptible, || {
            MCONSOLE_PENDING.swap(false, Ordering::Relaxed)
        });
        // The console is taken out of its cell while serving, since a request (halt,
        // config) may sleep or never return.
        let Some(mut mc) = MCONSOLE.with(|m| m.take()) else {
            return;
        };
        let mut handler = Handler;
        let _ = mc.poll(&mut handler);
        if mc.is_stopped() {
            // UML's stop: nothing but the management console runs until `go`.
            let _ = mc.wait_while_stopped(&mut handler);
        }
        MCONSOLE.with(|m| *m = Some(mc));
    }
}
