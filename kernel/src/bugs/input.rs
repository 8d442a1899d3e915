//! `input`: a panic triggered by what the user typed. With the scenario armed, Ctrl-T on
//! the console asks the keyboard handler for a status line, which it formats through the
//! current keymap. A background task rebuilds the keymap now and then, and for the length
//! of the rebuild the keymap pointer is NULL. Ctrl-T typed in that window dereferences it
//! in interrupt context: "BUG: kernel NULL pointer dereference".

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::{window, work};

/// A keymap: its name is what the status line prints.
#[repr(C)]
struct Keymap {
    id: u64,
    flags: u64,
    name: &'static str,
}

static US: Keymap = Keymap {
    id: 1,
    flags: 0,
    name: "us",
};
static DVORAK: Keymap = Keymap {
    id: 2,
    flags: 0,
    name: "dvorak",
};
static KEYMAP: AtomicUsize = AtomicUsize::new(0);

/// Console control-character hook (interrupt context).
fn kbd_control(byte: u8) {
    if byte != 0x14 {
        return;
    }
    let km = KEYMAP.load(Ordering::Relaxed);
    // SAFETY: deliberately unsound — this is the scenario's bug. `km` is NULL while the
    // keymap is being rebuilt, and the handler does not check.
    let name: &'static str = unsafe {
        core::ptr::read_volatile((km + core::mem::offset_of!(Keymap, name)) as *const &'static str)
    };
    crate::printk!(
        "kbd: status: keymap {} at jiffies {}",
        name,
        crate::time::jiffies()
    );
}

fn rebuilder() {
    let (rebuild, settle) = match window() {
        0 => (1500, 20_000),
        w => (20_000 * w, 100),
    };
    let maps = [&US, &DVORAK];
    let mut i = 0;
    loop {
        KEYMAP.store(0, Ordering::Relaxed);
        work(rebuild);
        i = (i + 1) % maps.len();
        KEYMAP.store(maps[i] as *const Keymap as usize, Ordering::Relaxed);
        work(settle);
        crate::sched::yield_now();
    }
}

pub fn run() -> Result<(), String> {
    KEYMAP.store(&US as *const Keymap as usize, Ordering::Relaxed);
    crate::drivers::console::set_control_hook(Some(kbd_control));
    crate::sched::spawn("kbd-rebuild", rebuilder).map_err(|e| format!("{e}"))?;
    crate::printk!("input: keyboard status on Ctrl-T enabled");
    Ok(())
}
