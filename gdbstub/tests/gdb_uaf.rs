//! The real gdb on the shipped uaf recording, whose guest dies of a use-after-free
//! SIGSEGV: `continue` stops at the faulting instruction as a signal stop ("received
//! signal SIGSEGV"), `bt` shows the faulting call, and `continue` then delivers the
//! signal as recorded, to the guest's handler and its abort. A reverse-stepi and a stepi
//! back land on the same instruction, and running from there faults again.

mod common;

use rewind_gdb::ServerOptions;

fn gdb_on_uaf(cmds: &[&str]) -> String {
    let pack = testsupport::corpus::pack("uaf", replayer::host_mismatch_of);
    common::gdb_session(ServerOptions::local(pack, 0), cmds).0
}

#[test]
fn a_fault_is_a_signal_stop_and_continue_delivers_it() {
    let out = gdb_on_uaf(&[
        "continue",
        "bt 2",
        "p $pc",
        "reverse-stepi",
        "stepi",
        "p $pc",
        // Reached again by stepping: running on executes it, and it faults again.
        "continue",
        "continue",
        "bt 1",
    ]);
    assert!(!out.contains("Remote connection closed"), "{out}");
    let first = out
        .find("received signal SIGSEGV, Segmentation fault.")
        .unwrap_or_else(|| panic!("no signal stop:\n{out}"));
    let after = &out[first..];
    assert!(
        after.contains("umk::bugs::uaf::checksum_request_data") && after.contains("uaf.rs"),
        "bt at the fault:\n{out}"
    );
    // `p $pc` twice: at the fault, and after reverse-stepi + stepi, the same instruction
    // (a stepi onto the faulting instruction does not execute it).
    // (gdb prints a stepi's address without a newline, so `$2 = …` can follow it.)
    let pcs: Vec<&str> = out
        .split('$')
        .skip(1)
        .filter(|p| p.starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|p| p.lines().next()?.split_once(" = ").map(|x| x.1))
        .collect();
    assert_eq!(pcs.len(), 2, "{out}");
    assert_eq!(pcs[0], pcs[1], "{out}");
    assert_eq!(
        out.matches("received signal SIGSEGV").count(),
        2,
        "the first run and the run from the stepped-onto fault\n{out}"
    );
    // The delivered signal runs the guest's handler, which aborts: the recording's end.
    assert!(out.contains("No more reverse-execution history."), "{out}");
    assert!(out.contains("umk::host::process::abort"), "{out}");
}

/// Once the SIGSEGV is delivered, the guest's handler panics and aborts; `bt` there goes
/// from the abort through the handler and umk's signal restorer (its frame unwound from
/// the host kernel's signal frame by umk's gdb Python, and named as gdb names a signal
/// trampoline) down to the faulting function, as gdb does through Linux's `__restore_rt`.
#[test]
fn the_backtrace_of_the_abort_goes_through_the_signal_frame_to_the_faulting_call() {
    let out = gdb_on_uaf(&["continue", "continue", "bt"]);
    let end = out
        .find("No more reverse-execution history.")
        .unwrap_or_else(|| panic!("the recording's end not reached:\n{out}"));
    let bt = &out[end..];
    let at = |what: &str| {
        bt.lines()
            .position(|l| l.starts_with('#') && l.contains(what))
            .unwrap_or_else(|| panic!("no {what} frame:\n{out}"))
    };
    let (abort, restorer, fault) = (
        at("umk::host::process::abort"),
        at("<signal handler called>"),
        at("umk::bugs::uaf::checksum_request_data"),
    );
    assert!(abort < restorer && restorer < fault, "{bt}");
    assert!(!out.contains("Python Exception"), "{out}");
}
