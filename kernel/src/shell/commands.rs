//! The shell's commands, one function each, dispatched by name.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::fs::FileKind;
use crate::mm::slab;
use crate::rootfs::with_fs;
use crate::sched::task::{self, State, MAX_TASKS};
use crate::{kprint, kprintln};

const HELP: &str = "\
commands: ps, free, ls [PATH], cat PATH, echo TEXT [> FILE | >> FILE], mkdir PATH,
          rm PATH, rmdir PATH, sync, sleep SECONDS, uptime, mount [ubdN], stress N [ROUNDS], compute N,
          bug NAME (abba hotplug uaf lostwake irqrace input), sysrq t|m|d, halt, reboot, help";

/// Runs one command line.
pub fn run(line: &str) {
    let (cmd, rest) = match line.split_once(char::is_whitespace) {
        Some((c, r)) => (c, r.trim()),
        None => (line, ""),
    };
    let args: Vec<&str> = rest.split_whitespace().collect();
    let result = match cmd {
        "help" => {
            kprintln!("{}", HELP);
            Ok(())
        }
        "ps" => {
            ps();
            Ok(())
        }
        "free" => {
            kprint!("{}", free_report());
            Ok(())
        }
        "ls" => ls(args.first().copied().unwrap_or("/")),
        "cat" => one_arg(cmd, &args).and_then(cat),
        "echo" => echo(rest),
        "mkdir" => one_arg(cmd, &args).and_then(|p| with_fs(p, |fs, p| fs.mkdir(p))),
        "rm" => one_arg(cmd, &args).and_then(|p| with_fs(p, |fs, p| fs.unlink(p))),
        "rmdir" => one_arg(cmd, &args).and_then(|p| with_fs(p, |fs, p| fs.rmdir(p))),
        "sync" => crate::rootfs::sync_all(),
        "sleep" => one_arg(cmd, &args).and_then(sleep),
        "uptime" => {
            uptime();
            Ok(())
        }
        "mount" => mount(&args),
        "stress" => super::stress::run(&args),
        "compute" => one_arg(cmd, &args).and_then(compute),
        "bug" => one_arg(cmd, &args).and_then(crate::bugs::run),
        "sysrq" => sysrq(&args),
        "halt" => crate::system::halt(),
        "reboot" => crate::system::reboot(),
        _ => Err(String::from("unknown command (try 'help')")),
    };
    if let Err(e) = result {
        kprintln!("{}: {}", cmd, e);
    }
}

fn one_arg<'a>(cmd: &str, args: &[&'a str]) -> Result<&'a str, String> {
    match args {
        [a] => Ok(a),
        [] => Err(format!("missing operand (usage: {cmd} ARG)")),
        _ => Err(format!("too many operands (usage: {cmd} ARG)")),
    }
}

fn ps() {
    kprintln!("  PID STATE            SWITCHES NAME            WAIT");
    let cur = crate::sched::current();
    for idx in 0..MAX_TASKS {
        let t = task::snapshot(idx);
        if matches!(t.state, State::Unused) {
            continue;
        }
        let wait = if idx == cur {
            String::from("(running)")
        } else {
            crate::watchdog::describe_wait(&t)
        };
        kprintln!(
            "{:>5} {:<16} {:>8} {:<15} {}",
            t.pid,
            t.state.name(),
            t.switches,
            t.name(),
            wait
        );
    }
}

/// Memory usage: pages and every slab cache, as `free` and sysrq-m show it.
pub fn free_report() -> String {
    let (pages, free) = crate::mm::page::stats();
    let mut out = String::new();
    let _ = writeln!(out, "              total       used       free");
    let _ = writeln!(
        out,
        "Mem:    {:>10}K {:>9}K {:>9}K",
        pages * 4,
        (pages - free) * 4,
        free * 4
    );
    let _ = writeln!(out, "slab cache         objsize  active   total  slabs");
    let mut caches = [slab::CacheInfo::EMPTY; slab::MAX_CACHES];
    let n = slab::stats(&mut caches);
    for c in &caches[..n] {
        let _ = writeln!(
            out,
            "{:<18} {:>7} {:>7} {:>7} {:>6}",
            c.name(),
            c.obj_size,
            c.active,
            c.total,
            c.slabs
        );
    }
    out
}

fn ls(path: &str) -> Result<(), String> {
    let entries = with_fs(path, |fs, p| fs.read_dir(p))?;
    for e in entries.iter().filter(|e| e.name != "." && e.name != "..") {
        let kind = match e.kind {
            FileKind::Directory => 'd',
            FileKind::Symlink => 'l',
            FileKind::Regular => '-',
            _ => '?',
        };
        kprintln!("{} {:>8} {}", kind, e.size, e.name);
    }
    Ok(())
}

fn cat(path: &str) -> Result<(), String> {
    let data = with_fs(path, |fs, p| fs.read_file(p))?;
    kprint!("{}", String::from_utf8_lossy(&data));
    if !data.ends_with(b"\n") && !data.is_empty() {
        kprintln!();
    }
    Ok(())
}

fn echo(rest: &str) -> Result<(), String> {
    let (text, target) = if let Some((t, f)) = rest.split_once(">>") {
        (t.trim_end(), Some((f.trim(), true)))
    } else if let Some((t, f)) = rest.split_once('>') {
        (t.trim_end(), Some((f.trim(), false)))
    } else {
        (rest, None)
    };
    match target {
        None => {
            kprintln!("{}", text);
            Ok(())
        }
        Some(("", _)) => Err(String::from("missing file after redirection")),
        Some((file, append)) => {
            let mut data = Vec::from(text.as_bytes());
            data.push(b'\n');
            with_fs(file, |fs, p| fs.write_file(p, &data, append))
        }
    }
}

fn sleep(arg: &str) -> Result<(), String> {
    let (whole, frac) = arg.split_once('.').unwrap_or((arg, ""));
    let secs: u64 = whole
        .parse()
        .map_err(|_| format!("invalid time interval '{arg}'"))?;
    let frac_ms: u64 = if frac.is_empty() {
        0
    } else {
        format!("{:0<3}", &frac[..frac.len().min(3)])
            .parse()
            .map_err(|_| format!("invalid time interval '{arg}'"))?
    };
    crate::sched::sleep_ms(secs * 1000 + frac_ms);
    Ok(())
}

/// `compute N`: N thousand units of CPU-bound kernel work (benchmarks' CPU load).
fn compute(arg: &str) -> Result<(), String> {
    let n: u64 = arg
        .parse()
        .map_err(|_| format!("expected a number, got '{arg}'"))?;
    let start = crate::time::jiffies();
    crate::bugs::work(n.saturating_mul(1000));
    kprintln!(
        "compute: {} units in {} jiffies",
        n * 1000,
        crate::time::jiffies() - start
    );
    Ok(())
}

fn uptime() {
    let (s, us) = crate::time::uptime();
    let running = (0..MAX_TASKS)
        .filter(|&i| task::snapshot(i).state == State::Running)
        .count();
    kprintln!(
        " up {}.{:02} s, {} tasks runnable, {} jiffies, {} ticks",
        s,
        us / 10_000,
        running,
        crate::time::jiffies(),
        crate::exec_point::ticks()
    );
}

fn mount(args: &[&str]) -> Result<(), String> {
    match args {
        [] => {
            for m in crate::rootfs::mounts() {
                kprintln!("{}", m);
            }
            Ok(())
        }
        [dev] => {
            let n = dev
                .trim_start_matches("/dev/")
                .strip_prefix("ubd")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("{dev}: expected ubdN"))?;
            crate::rootfs::mount(n)
        }
        _ => Err(String::from("usage: mount [ubdN]")),
    }
}

fn sysrq(args: &[&str]) -> Result<(), String> {
    match args {
        ["t"] => kprint!("{}", crate::system::task_dump()),
        ["m"] => kprint!("{}", free_report()),
        ["d"] => crate::watchdog::show_all_locks(),
        _ => return Err(String::from("usage: sysrq t|m|d")),
    }
    Ok(())
}
