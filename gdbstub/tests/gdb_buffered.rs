//! The real gdb on a recording whose writes went through the syscall buffer: they are
//! syscall events like any other, so `catch syscall write` stops at each of them forward
//! and backward, with the arguments the program passed, and a reverse-stepi from a
//! breakpoint after them lands on the instruction before, as on any recording.

mod common;

use rewind_gdb::ServerOptions;

/// Writes 1, 2 then 3 bytes to the file argv[1] names, each a buffered write.
const PROGRAM: &str = "#include <fcntl.h>\n#include <unistd.h>\n\
    __attribute__((noinline)) void done(void) { __asm__ volatile(\"\"); }\n\
    int main(int argc, char **argv) { (void)argc;\n\
      int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);\n\
      for (int n = 1; n <= 3; n++) write(fd, \"abc\", n);\n\
      done(); return 0; }\n";

#[test]
fn catch_syscall_stops_at_buffered_writes_both_ways() {
    let d = tempfile::tempdir().unwrap();
    let exe = testsupport::host::cc_with(d.path(), "bufwrites", PROGRAM, &["-g"]);
    let file = d.path().join("out").display().to_string();
    let (rec, t, _) = testsupport::record::record(d.path(), &exe, &[&file]);
    assert_eq!(rec.exit, trace::ExitStatus::Exited(0));
    let evs = testsupport::record::events(&t);
    let buffered_writes = evs
        .iter()
        .filter(|e| {
            matches!(e, trace::Event::Syscall(s) if s.is_buffered() && Some(s.nr) == trace::sysno::number("write"))
        })
        .count();
    assert_eq!(buffered_writes, 3, "the writes went through the buffer");
    let (out, _) = common::gdb_session(
        ServerOptions::local(t.clone(), 0),
        &[
            "catch syscall write",
            "continue",
            "print $rdx",
            "continue",
            "print $rdx",
            "continue",
            "print $rdx",
            "reverse-continue",
            "print $rdx",
            "delete",
            "break done",
            "continue",
            "reverse-stepi",
            "bt 1",
        ],
    );
    assert!(!out.contains("Remote connection closed"), "{out}");
    let stops = out
        .matches("Catchpoint 1 (returned from syscall write)")
        .count();
    assert_eq!(stops, 4, "{out}");
    let printed: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix('$'))
        .filter_map(|l| l.split_once(" = ").map(|(_, v)| v))
        .collect();
    assert_eq!(printed, ["1", "2", "3", "2"], "{out}");
    // One instruction before `done`'s entry: its call, in main.
    assert!(out.contains("Breakpoint 2, done ()"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("#0") && l.contains("main")),
        "{out}"
    );
}
