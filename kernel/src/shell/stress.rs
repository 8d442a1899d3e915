//! `stress N [ROUNDS]`: N tasks doing filesystem I/O at once (write, read back and check,
//! append, delete), to exercise the scheduler, the fs lock, the buffer cache and ubd
//! together. The shell waits for them and reports.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::rootfs::with_fs;
use crate::sched::task::State;
use crate::sched::wait::WaitQueue;
use crate::sync::global::Global;

static REMAINING: Global<(usize, usize)> = Global::new("stress remaining", (0, 0));
static DONE: WaitQueue = WaitQueue::new("stress done");

pub fn run(args: &[&str]) -> Result<(), String> {
    let parse = |s: &str, what: &str| {
        s.parse::<usize>()
            .map_err(|_| format!("{what} must be a number, got '{s}'"))
    };
    let (tasks, rounds) = match args {
        [n] => (parse(n, "N")?, 10),
        [n, r] => (parse(n, "N")?, parse(r, "ROUNDS")?),
        _ => return Err(String::from("usage: stress N [ROUNDS]")),
    };
    if tasks == 0 || tasks > 32 {
        return Err(String::from("N must be 1 to 32"));
    }
    with_fs("/stress", |fs, p| match fs.mkdir(p) {
        Err(crate::fs::FsError::Exists(_)) => Ok(()),
        other => other,
    })?;
    REMAINING.with(|r| *r = (tasks, 0));
    for i in 0..tasks {
        crate::sched::spawn(&format!("stress-{i}"), move || worker(i, rounds))
            .map_err(|e| format!("{e}"))?;
    }
    DONE.wait_until(State::Interruptible, || REMAINING.with(|r| r.0 == 0));
    let failures = REMAINING.with(|r| r.1);
    if failures > 0 {
        return Err(format!("{failures} of {tasks} tasks failed"));
    }
    crate::kprintln!("stress: {} tasks x {} rounds: ok", tasks, rounds);
    Ok(())
}

fn worker(id: usize, rounds: usize) {
    let path = format!("/stress/t{id}");
    let mut ok = true;
    for round in 0..rounds {
        // Sizes vary so files cross direct and indirect blocks.
        let len = 512 + ((id * 7919 + round * 104_729) % 20_000);
        let data: Vec<u8> = (0..len)
            .map(|k| (k as u8) ^ (id as u8) ^ (round as u8))
            .collect();
        let res = with_fs(&path, |fs, p| {
            fs.write_file(p, &data, false)?;
            let back = fs.read_file(p)?;
            fs.write_file(p, b"tail", true)?;
            Ok(back)
        });
        match res {
            Ok(back) if back == data => {}
            Ok(_) => {
                crate::printk!("stress-{}: round {}: data read back differs", id, round);
                ok = false;
                break;
            }
            Err(e) => {
                crate::printk!("stress-{}: round {}: {}", id, round, e);
                ok = false;
                break;
            }
        }
        crate::sched::yield_now();
    }
    if let Err(e) = with_fs(&path, |fs, p| fs.unlink(p)) {
        crate::printk!("stress-{}: cleanup: {}", id, e);
    }
    REMAINING.with(|r| {
        r.0 -= 1;
        if !ok {
            r.1 += 1;
        }
    });
    DONE.wake_all();
}
