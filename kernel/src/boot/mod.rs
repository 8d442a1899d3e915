//! Boot: parse the command line, refuse bad arguments before anything runs, bring up
//! memory, interrupts, devices and the root filesystem, start the first tasks, and become
//! the idle task.

pub mod args;

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::host::{self, file, process};
use crate::{printk, sched};

static BOOT_TIME: AtomicU64 = AtomicU64::new(0);
static ARGV: AtomicUsize = AtomicUsize::new(0);
static ENVP: AtomicUsize = AtomicUsize::new(0);
static BOOT_ARGS: crate::sync::global::Global<Option<args::Args<'static>>> =
    crate::sync::global::Global::new("boot args", None);

/// The `ubdN=` spec the kernel booted with.
pub fn boot_ubd(n: usize) -> Option<args::UbdSpec<'static>> {
    BOOT_ARGS.with(|a| a.and_then(|a| a.ubd.get(n).copied().flatten()))
}

/// Host wall-clock seconds at boot (filesystem timestamps count from it).
pub fn boot_time() -> u64 {
    BOOT_TIME.load(Ordering::Relaxed)
}

/// The host's argv strings, as slices that live for the whole process.
fn host_args(argc: usize, argv: *const *const u8) -> impl Iterator<Item = &'static [u8]> {
    (0..argc).map(move |i| {
        // SAFETY: the host passes argc valid NUL-terminated strings in argv, which stay
        // mapped (on the initial stack) for the life of the process.
        unsafe {
            let p = *argv.add(i);
            let mut n = 0;
            while *p.add(n) != 0 {
                n += 1;
            }
            core::slice::from_raw_parts(p, n)
        }
    })
}

fn die(msg: core::fmt::Arguments<'_>) -> ! {
    let mut line = crate::printk::LineBuf::new();
    let _ = core::fmt::Write::write_fmt(&mut line, format_args!("umk: {msg}\n"));
    let _ = file::write_all(file::STDERR, line.as_bytes());
    process::exit(2)
}

/// The kernel's entry from `_start`: `sp` points at argc, argv, envp on the host stack.
#[allow(clippy::not_unsafe_ptr_arg_deref)] // called once, by `_start`, with the host's stack
pub fn start(sp: *const usize) -> ! {
    // SAFETY: the initial stack layout is argc, argv[argc], NULL, envp..., NULL.
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const u8) };
    ARGV.store(argv as usize, Ordering::Relaxed);
    // SAFETY: envp follows argv's terminating NULL.
    ENVP.store(unsafe { argv.add(argc + 1) } as usize, Ordering::Relaxed);
    let a = match args::parse(host_args(argc, argv).skip(1)) {
        Ok(a) => a,
        Err(e) => die(format_args!(
            "{e}\nTry 'umk --help' for the arguments umk takes."
        )),
    };
    BOOT_ARGS.with(|b| *b = Some(a));
    if a.help {
        let _ = file::write_all(file::STDOUT, args::HELP.as_bytes());
        process::exit(0);
    }
    if a.version {
        crate::kprintln!("umk {} (Rewind user-mode kernel)", crate::VERSION);
        process::exit(0);
    }
    // Memory first: opening disks allocates.
    let base = match host::mem::map_physmem(a.mem) {
        Ok(b) => b,
        Err(e) => die(format_args!(
            "cannot map {}M of physical memory: {e}",
            a.mem >> 20
        )),
    };
    crate::mm::page::init(base, a.mem);
    crate::mm::kmalloc::init();
    crate::time::set_hz(a.hz);
    sched::init_idle();
    if let Err(e) = crate::block::ubd::init() {
        die(format_args!("cannot create the ubd controller pipe: {e}"));
    }
    // Every disk is opened before the boot log starts, so a bad image is refused cleanly.
    for (n, spec) in a.ubd.iter().enumerate() {
        if let Some(spec) = spec {
            match crate::block::ubd::open_disk(spec.image, spec.cow) {
                Ok(disk) => crate::block::ubd::add_boot_device(n, disk),
                Err(e) => die(format_args!("ubd{n}: {e}")),
            }
        }
    }
    let script = match a.init {
        Some(path) => match crate::shell::load_script(path) {
            Ok(s) => Some(s),
            Err(e) => die(format_args!(
                "init={}: {e}",
                alloc::string::String::from_utf8_lossy(path)
            )),
        },
        None => None,
    };
    // The management console's socket is bound before the boot log too; its interrupt is
    // armed once the handlers are installed.
    if let Some(path) = a.mconsole {
        if let Err(e) = crate::system::open_mconsole(path) {
            die(format_args!(
                "mconsole={}: {e}",
                alloc::string::String::from_utf8_lossy(path)
            ));
        }
    }
    BOOT_TIME.store(process::realtime_secs(), Ordering::Relaxed);

    printk!("umk version {} (rewind) #1 PREEMPT x86_64", crate::VERSION);
    let mut cmdline = alloc::string::String::new();
    for arg in host_args(argc, argv) {
        cmdline.push_str(&alloc::string::String::from_utf8_lossy(arg));
        cmdline.push(' ');
    }
    printk!("Command line: {}", cmdline.trim_end());
    let (pages, free) = crate::mm::page::stats();
    printk!(
        "Memory: {}K/{}K available ({} pages)",
        free * 4,
        pages * 4,
        pages
    );
    printk!("Calibrating delay loop (skipped), timer at {} Hz", a.hz);
    if let Err(e) = crate::irq::init() {
        die(format_args!("cannot install interrupt handlers: {e}"));
    }
    crate::drivers::console::init();
    printk!("Console: umk console on host stdin/stdout");
    for n in 0..args::MAX_UBD {
        if let Some(s) = crate::block::ubd::sectors(n) {
            printk!("ubd{}: {} sectors ({} MB)", n, s, s / 2048);
        }
    }
    if let Some(path) = a.mconsole {
        if let Err(e) = crate::system::start_mconsole() {
            die(format_args!(
                "mconsole={}: {e}",
                alloc::string::String::from_utf8_lossy(path)
            ));
        }
        printk!(
            "mconsole (version 2) initialized on {}",
            alloc::string::String::from_utf8_lossy(path)
        );
        spawn_or_die("mconsoled", crate::system::mconsoled);
    }
    let bug_mode = script
        .as_ref()
        .is_some_and(|s| s.iter().any(|l| l.trim_start().starts_with("bug ")));
    let timeout = a
        .hung_task_timeout
        .unwrap_or(if bug_mode { 2 } else { 120 });
    crate::watchdog::configure(timeout, a.hung_task_panic.unwrap_or(bug_mode));
    crate::bugs::set_window(a.bug_window);
    if let Err(e) = process::start_timer(1_000_000 / a.hz) {
        die(format_args!("cannot start the interval timer: {e}"));
    }
    crate::irq::enable();
    spawn_or_die("khungtaskd", crate::watchdog::khungtaskd);
    let has_root = a.ubd[0].is_some();
    spawn_or_die("init", move || crate::shell::init_task(has_root, script));
    idle()
}

fn spawn_or_die(name: &str, f: impl FnOnce() + 'static) {
    if let Err(e) = sched::spawn(name, f) {
        panic!("cannot start {name}: {e}");
    }
}

/// The idle task: reaps dead tasks, runs the disk controller when nothing else can run,
/// and sleeps in the host until the next interrupt.
fn idle() -> ! {
    loop {
        sched::reap_dead();
        if sched::has_runnable() {
            sched::schedule();
            continue;
        }
        if crate::block::ubd::has_pending() {
            crate::block::ubd::run_controller(0);
        } else if !crate::irq::pending() {
            process::wait_for_interrupt();
        }
        crate::exec_point::preempt_point();
    }
}

/// Re-executes the kernel binary with its original arguments (reboot).
pub fn reexec() -> ! {
    let argv = ARGV.load(Ordering::Relaxed);
    let envp = ENVP.load(Ordering::Relaxed);
    let _ = host::syscall::syscall3(
        host::syscall::nr::EXECVE,
        c"/proc/self/exe".as_ptr() as usize,
        argv,
        envp,
    );
    printk!("reboot: re-exec failed; halting");
    process::exit(1)
}
