//! `rewind replay -i` end to end on the shipped abba recording: at a probe breakpoint,
//! `where` symbolizes the stack through the guest model (function, inlined frames and
//! source lines) and `tasks` lists umk's task table with what each task waits on — the
//! same reader gdb's `info threads` uses.

use std::io::Write;
use std::process::{Command, Stdio};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

fn prompt(commands: &str) -> String {
    let pack = testsupport::corpus::pack("abba", replayer::host_mismatch_of);
    let mut child = Command::new(REWIND)
        .args(["replay", "-i"])
        .arg(&pack)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running rewind replay -i");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(commands.as_bytes())
        .expect("writing the commands");
    let out = child.wait_with_output().expect("waiting for rewind");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn where_and_tasks_read_the_guest_at_a_lock_probe() {
    let out = prompt("break umk_lock_acquire\ncontinue\nwhere\ntasks\nquit\n");
    assert!(out.contains("breakpoint at "), "{out}");
    assert!(!out.contains("error:"), "{out}");
    // The innermost frame is the probe itself; a caller is umk code with a source line.
    let frames: Vec<&str> = out.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        frames
            .first()
            .is_some_and(|f| f.contains("umk_lock_acquire")),
        "{out}"
    );
    assert!(
        frames
            .iter()
            .skip(1)
            .any(|f| f.contains(" in umk::") && f.contains("kernel/src/")),
        "{out}"
    );
    // The task table: a header, the running task marked with `*`, the idle task.
    let header = out
        .lines()
        .position(|l| l.contains("slot  pid  state"))
        .unwrap_or_else(|| panic!("no task table in {out}"));
    let rows: Vec<&str> = out
        .lines()
        .skip(header + 1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(rows.iter().any(|r| r.starts_with('*')), "{out}");
    assert!(rows.iter().any(|r| r.contains("swapper")), "{out}");
}

#[test]
fn an_unknown_symbol_is_an_error_not_a_crash() {
    let out = prompt("break no_such_symbol\nquit\n");
    assert!(
        out.contains("error: symbol `no_such_symbol` not found"),
        "{out}"
    );
}

#[test]
fn a_breakpoint_on_a_generic_name_goes_at_every_instantiation() {
    // `Mutex<T>::lock` is one name for each T umk locks: a breakpoint at each, and the
    // abba deadlock's lock calls stop at one of them.
    let out = prompt("break umk::sync::mutex::Mutex<T>::lock\ncontinue\nquit\n");
    // Each set breakpoint prints a line, and the stop at one prints another, then the
    // position (`eN+…  ADDR in …`).
    let lines = out
        .lines()
        .filter(|l| l.starts_with("breakpoint at ") && l.contains("Mutex<T>::lock+0x0/"))
        .count();
    assert!(
        lines >= 3,
        "a breakpoint at each instantiation, and a stop:\n{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with('e') && l.contains("Mutex<T>::lock+0x0/")),
        "continue stops at one:\n{out}"
    );
    assert!(!out.contains("error:"), "{out}");
    // Removing by that name is ambiguous: it names no single address.
    let out = prompt("delete umk::sync::mutex::Mutex<T>::lock\nquit\n");
    assert!(
        out.contains("functions (a generic's instantiations)"),
        "{out}"
    );
}

#[test]
fn goto_end_stays_where_registers_and_the_stack_can_be_read() {
    let out = prompt("goto end\nregs\nwhere\nquit\n");
    assert!(out.contains("the program ended"), "{out}");
    assert!(out.contains("rip 0x"), "{out}");
    assert!(!out.contains("error:"), "{out}");
}
