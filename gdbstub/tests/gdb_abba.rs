//! The real gdb (batch mode) against a recording of umk's `abba` deadlock: tasks as
//! threads with their wait descriptions and backtraces, reverse-continue to a breakpoint
//! and to a watchpoint, reverse-stepi/stepi round trips, reverse-finish, monitor commands
//! and reconnecting. Each test starts the stub in-process on an ephemeral port.

mod common;

use std::path::Path;

use rewind_gdb::{Server, ServerOptions};

/// The abba recording, made once per test process (bug_window=1: it always deadlocks and
/// ends in the hung-task panic's SIGABRT).
fn abba_trace() -> &'static Path {
    testsupport::record::abba()
}

/// A symbol's address in umk, by its demangled name.
fn umk_symbol(name: &str) -> u64 {
    guest::Binary::load(testsupport::umk_binary())
        .unwrap()
        .require(name)
        .unwrap()
}

/// Runs gdb in batch mode with `cmds` against a fresh stub on the abba trace, over
/// `sessions` consecutive connections (the same commands each time); returns gdb's output
/// of each session and the stub's latency summary.
fn gdb_sessions(cmds: &[&str], sessions: usize) -> (Vec<String>, Vec<String>) {
    let trace = abba_trace().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    // The replay's tracer is the thread that opens it: the stub lives on its own thread.
    let stub = std::thread::spawn(move || {
        let mut server = Server::open(&ServerOptions::local(trace, 0)).expect("starting stub");
        tx.send((server.local_addr().unwrap(), server.gdb_script()))
            .unwrap();
        for _ in 0..sessions {
            server.serve_one().expect("serving gdb");
        }
        server.target().latency_lines()
    });
    let (addr, script) = rx.recv().expect("stub address");
    let mut outputs = Vec::new();
    for _ in 0..sessions {
        outputs.push(common::gdb_batch(
            testsupport::umk_binary(),
            addr,
            script,
            cmds,
        ));
    }
    let lat = stub.join().expect("stub thread");
    eprintln!("stub latencies:\n  {}", lat.join("\n  "));
    (outputs, lat)
}

fn gdb(cmds: &[&str]) -> String {
    gdb_sessions(cmds, 1).0.remove(0)
}

/// The part of `out` after the first `from` (the whole text if missing, so the
/// assertion that follows shows it).
fn after<'a>(out: &'a str, from: &str) -> &'a str {
    out.find(from).map_or(out, |i| &out[i + from.len()..])
}

#[test]
fn threads_at_the_end_show_both_abba_tasks_blocked_with_their_lock_calls() {
    let out = gdb(&["continue", "info threads", "thread apply all bt"]);
    assert!(out.contains("No more reverse-execution history."), "{out}");
    // The holder is named as gdb lists it: its name and its thread (pid + 1).
    for (me, lock, holder) in [
        ("abba-1", "abba_lock_b", "abba-2 (Thread 1.5)"),
        ("abba-2", "abba_lock_a", "abba-1 (Thread 1.4)"),
    ] {
        let desc = format!("{me} D waiting on mutex {lock} held by {holder}");
        assert!(out.contains(&desc), "no {desc:?} in\n{out}");
        // `thread apply all bt` heads each backtrace with a line `Thread N (… (NAME D …)):`.
        let head = out
            .lines()
            .find(|l| l.starts_with("Thread ") && l.contains(&format!("({me} D")))
            .unwrap_or_else(|| panic!("no backtrace of {me}:\n{out}"));
        let bt = after(&out, head);
        let bt = &bt[..bt.find("\nThread ").unwrap_or(bt.len())];
        assert!(
            bt.contains("Mutex<u64>::lock") && bt.contains("one_way") && bt.contains("abba.rs"),
            "{me}'s backtrace lacks its lock call:\n{bt}\n---\n{out}"
        );
    }
}

/// A switched-out task as gdb shows a sleeping Linux task: frame 0 inside the context
/// switch (umk_switch_to, unwound by umk's gdb Python from the registers it pushed), the
/// function that called it next, at its call line; only what the switch saved is known
/// (the caller-saved registers are `<unavailable>`, not zero); and the backtrace ends at
/// the task's trampoline instead of reading its stack's poison as frames.
#[test]
fn a_blocked_task_rests_in_the_switch_and_its_backtrace_ends_at_the_trampoline() {
    let out = gdb(&[
        "continue",
        "thread 4",
        "info registers rax rcx rdi r11 rbx rip",
        "bt",
        "frame 1",
        "info registers rbx",
    ]);
    let regs = after(&out, "[Switching to thread 4");
    for reg in ["rax", "rcx", "rdi", "r11", "rbx"] {
        let line = regs
            .lines()
            .find(|l| l.starts_with(reg))
            .unwrap_or_else(|| panic!("no {reg} in\n{out}"));
        assert!(line.ends_with("<unavailable>"), "{line}\n{out}");
    }
    assert!(regs.contains("<umk_switch_to+"), "{out}");
    // `thread 4` prints frame 0 too; the backtrace follows the registers.
    let bt = after(regs, "<umk_switch_to+");
    let bt = &bt[bt.find("\n#0 ").map_or(0, |i| i + 1)..];
    let frames: Vec<&str> = bt
        .lines()
        .enumerate()
        .take_while(|(i, l)| l.starts_with(&format!("#{i} ")))
        .map(|(_, l)| l)
        .collect();
    assert!(frames[0].contains("in umk_switch_to ()"), "{out}");
    assert!(
        frames[1].contains("umk::sched::") && frames[1].contains("kernel/src/sched/mod.rs:"),
        "the switch's caller, at its call line: {out}"
    );
    assert!(bt.contains("abba.rs"), "{out}");
    let trampoline = frames
        .iter()
        .position(|f| f.contains("umk_task_trampoline"))
        .unwrap_or_else(|| panic!("no trampoline frame:\n{out}"));
    assert_eq!(
        trampoline,
        frames.len() - 1,
        "nothing past the trampoline:\n{out}"
    );
    assert!(!out.contains("0x5a5a"), "{out}");
    // One frame up, the switch's pushes give the caller its callee-saved registers back.
    let up = after(bt, "\n#1 ");
    let rbx = up
        .lines()
        .find(|l| l.starts_with("rbx"))
        .unwrap_or_default();
    assert!(
        !rbx.contains("unavailable") && rbx.contains("0x"),
        "{rbx}\n{out}"
    );
    assert!(!out.contains("Python Exception"), "{out}");
}

#[test]
fn reverse_continue_to_the_lock_call_and_reverse_finish_to_the_caller() {
    let out = gdb(&[
        "continue",
        "break 'umk::sync::mutex::Mutex<u64>::lock<u64>'",
        "reverse-continue",
        "info threads",
        "reverse-finish",
        "bt 1",
    ]);
    let rc = after(&out, "Breakpoint 1 at");
    assert!(
        rc.contains("hit Breakpoint 1, umk::sync::mutex::Mutex<u64>::lock"),
        "{out}"
    );
    // The last lock call before the end is the second acquisition that blocks forever.
    assert!(
        rc.contains("abba-1 R running") || rc.contains("abba-2 R running"),
        "{out}"
    );
    let rf = after(rc, "Run back to call of #0");
    assert!(
        rf.contains("umk::bugs::abba::one_way"),
        "reverse-finish:\n{out}"
    );
    assert!(!out.contains("without sending a thread-id"), "{out}");
}

#[test]
fn reverse_watch_on_lock_b_owner_stops_at_the_write_that_took_it() {
    let owner = umk_symbol("umk::bugs::abba::LOCK_B") + 12;
    let out = gdb(&[
        "continue",
        "set language c",
        &format!("watch *(unsigned int *){owner:#x}"),
        "reverse-continue",
        "bt 3",
        "x/i $pc",
    ]);
    let w = after(&out, "reverse-continue");
    let w = after(w, "Hardware watchpoint");
    assert!(
        w.contains("Old value = 4") && w.contains("New value = 0"),
        "{out}"
    );
    assert!(w.contains("LockHeader::take"), "{out}");
    assert!(w.contains(",(%rax)") || w.contains("mov"), "{out}");
}

#[test]
fn five_reverse_stepis_then_five_stepis_return_to_identical_registers() {
    let mut cmds = vec![
        "break 'umk::sync::mutex::Mutex<u64>::lock<u64>'",
        "continue",
        "echo @@A\\n",
        "info registers",
        "echo @@B\\n",
    ];
    cmds.extend(["reverse-stepi"; 5]);
    cmds.extend(["stepi"; 5]);
    cmds.extend(["echo @@C\\n", "info registers", "echo @@D\\n"]);
    let out = gdb(&cmds);
    let section = |a: &str, b: &str| {
        let s = after(&out, a);
        s[..s.find(b).unwrap_or(s.len())].to_string()
    };
    let before = section("@@A\n", "@@B");
    let after_ = section("@@C\n", "@@D");
    assert!(before.contains("rip"), "{out}");
    assert_eq!(before, after_, "{out}");
}

#[test]
fn monitor_commands_and_reconnecting() {
    let (outs, _) = gdb_sessions(
        &[
            "monitor where",
            "monitor events 3",
            "monitor goto e100",
            "when",
            "monitor checkpoint",
            "monitor goto e99999999",
            "monitor bogus",
        ],
        2,
    );
    for out in &outs {
        assert!(
            out.contains("e0 (next event 0 of") || out.contains("e100 (next"),
            "{out}"
        );
        assert!(out.contains("e0: ") || out.contains("e100: "), "{out}");
        assert!(out.contains("now at e100"), "{out}");
        assert!(out.contains("checkpoint at e100"), "{out}");
        assert!(out.contains("outside the recording"), "{out}");
        assert!(out.contains("unknown command"), "{out}");
    }
    // In the first session only `when` (rr's name, an alias `rewind gdb` defines) can
    // have said e100.
    assert!(outs[0].contains("e100 (next event 100"), "{}", outs[0]);
    // The second session finds the replay where the first left it.
    assert!(outs[1].contains("e100 (next event 100"), "{}", outs[1]);
}

#[test]
fn memory_and_register_writes_are_refused_and_the_replay_goes_on_as_recorded() {
    let out = gdb(&[
        "p/x $rax",
        "x/gx $sp",
        "set var *(long *)$sp = 0x1234",
        "set $rax = 0x77",
        "p/x $rax",
        "x/gx $sp",
        "continue",
    ]);
    assert!(out.contains("Cannot access memory at address"), "{out}");
    assert!(out.contains("Could not write register"), "{out}");
    let values: Vec<&str> = out.lines().filter(|l| l.starts_with("$")).collect();
    assert_eq!(values.len(), 2, "{out}");
    assert_eq!(
        values[0].split('=').nth(1),
        values[1].split('=').nth(1),
        "rax changed:\n{out}"
    );
    let words: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("0x") && l.contains(":\t"))
        .collect();
    assert_eq!(words.len(), 2, "{out}");
    assert_eq!(words[0], words[1], "the stack word changed:\n{out}");
    assert!(out.contains("No more reverse-execution history."), "{out}");
}

#[test]
fn continuing_past_breakpoints_keeps_the_session() {
    // Each continue from a breakpoint makes gdb step the stopped thread alone over it
    // (`vCont;s:p1.N`, scheduler-locked), then continue.
    let lock = "'umk::sync::mutex::Mutex<u64>::lock<u64>'";
    let out = gdb(&[
        &format!("break {lock}"),
        "continue",
        "continue",
        "continue",
        "delete",
        // A condition that is false at every hit: gdb steps over each one and goes on.
        &format!("break {lock} if 0"),
        "tbreak *$pc",
        "continue",
        "continue",
        "info threads",
    ]);
    assert!(!out.contains("Remote connection closed"), "{out}");
    assert_eq!(out.matches("hit Breakpoint 1,").count(), 3, "{out}");
    assert!(out.contains("No more reverse-execution history."), "{out}");
    assert!(
        out.contains("abba-1 D waiting on mutex abba_lock_b"),
        "{out}"
    );

    // next and finish from a breakpoint: gdb steps over it, then runs to its step-resume
    // breakpoint, which another task may reach first.
    let out = gdb(&[
        &format!("break {lock}"),
        "continue",
        "next",
        "next",
        "finish",
        "continue",
        "bt 1",
    ]);
    assert!(!out.contains("Remote connection closed"), "{out}");
    assert!(out.contains("Value returned is"), "finish returned\n{out}");
    assert!(out.matches("hit Breakpoint 1,").count() >= 2, "{out}");
}

#[test]
fn catch_syscall_stops_where_recorded_calls_return_both_ways() {
    let out = gdb(&[
        "catch syscall write",
        "continue",
        "when",
        "continue",
        "when",
        "reverse-continue",
        "when",
    ]);
    assert!(!out.contains("Remote connection closed"), "{out}");
    let stops = out
        .matches("Catchpoint 1 (returned from syscall write)")
        .count();
    assert_eq!(stops, 3, "{out}");
    // `when` after each: two forward stops at distinct boundaries, then back to the first.
    let whens: Vec<&str> = out.lines().filter(|l| l.contains("(next event ")).collect();
    assert_eq!(whens.len(), 3, "{out}");
    assert_ne!(whens[0], whens[1], "{out}");
    assert_eq!(
        whens[0], whens[2],
        "reverse-continue returns to the first write\n{out}"
    );
}

/// `goto` (the command `rewind gdb` gives gdb) moves the replay and makes gdb see it:
/// the tasks there are gdb's threads at once, with their registers, where `monitor goto`
/// alone leaves gdb with the old state.
#[test]
fn goto_shows_the_threads_and_registers_of_the_position_it_goes_to() {
    let out = gdb(&["goto e100", "thread 4", "bt 1", "when"]);
    assert!(out.contains("now at e100"), "{out}");
    assert!(!out.contains("Unknown thread"), "{out}");
    assert!(!out.contains("gdb still shows the old state"), "{out}");
    assert!(
        out.contains("[Switching to thread 4 (Thread 1.4)]"),
        "{out}"
    );
    assert!(out.contains("e100 (next event 100"), "{out}");
}

/// gdb's own `checkpoint`, `restart N`, `info checkpoints` and `run`, as rr gives them:
/// positions of the recording. A checkpoint taken at a breakpoint hit, a continue to the
/// end, `restart 1` comes back to the same position and registers; `run` goes back to the
/// start of the recording.
#[test]
fn checkpoint_restart_and_run_move_through_the_recording() {
    let out = gdb(&[
        "break 'umk::sync::mutex::Mutex<u64>::lock<u64>'",
        "continue",
        "checkpoint",
        "p $pc",
        "when",
        "delete",
        "continue",
        "info checkpoints",
        "restart 1",
        "p $pc",
        "when",
        "info checkpoints",
        "run",
        "when",
    ]);
    let first = after(&out, "checkpoint 1: ");
    let pos = first
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(pos.starts_with('e'), "{out}");
    let pcs: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with('$'))
        .filter_map(|l| l.split_once(" = ").map(|x| x.1))
        .collect();
    assert_eq!(pcs.len(), 2, "{out}");
    assert_eq!(
        pcs[0], pcs[1],
        "restart 1 returns to the checkpoint's pc\n{out}"
    );
    let whens: Vec<&str> = out.lines().filter(|l| l.contains("(next event")).collect();
    assert_eq!(whens.len(), 3, "{out}");
    assert!(
        whens[0].starts_with(&pos) && whens[1].starts_with(&pos),
        "{out}"
    );
    assert!(whens[2].starts_with("e0 "), "run goes to the start: {out}");
    // The second listing marks the checkpoint as the current position.
    assert!(out.contains(&format!("* 1 {pos}")), "{out}");
    assert!(out.contains(&format!("  1 {pos}")), "{out}");
    assert!(!out.contains("Remote connection closed"), "{out}");
}
