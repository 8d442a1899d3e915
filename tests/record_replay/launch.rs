//! How a replay starts its program: `#!` scripts run as recorded (from their trace
//! directory, and from a pack once the script and its interpreter are gone), and an
//! unpacked trace runs the binary it holds once the original is gone.

use std::path::{Path, PathBuf};

use crate::common::*;
use trace::ExitStatus;

/// A script that shows what it was started with: its name, its arguments, its options.
const BODY: &str = r#"echo "script $0 has $# args"
for a in "$@"; do echo "arg [$a]"; done
case $- in *e*) echo "errexit on";; *) echo "errexit off";; esac
"#;

fn write_script(path: &Path, first_line: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{first_line}\n{BODY}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Packs `trace` with the binary its header names into `dir/name.rwpack`.
fn pack(trace: &Path, dir: &Path, name: &str) -> PathBuf {
    let h = trace::TraceReader::open(trace).unwrap().header().clone();
    let binary = PathBuf::from(String::from_utf8(h.binary.path).unwrap());
    let out = dir.join(format!("{name}.rwpack"));
    trace::pack::write(trace, &binary, &out).unwrap();
    out
}

#[test]
fn sh_script_replays_from_its_directory_and_from_a_pack_without_the_script() {
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("show-args.sh");
    write_script(&script, "#!/bin/sh");
    let (rec, t, out) = record(d.path(), &script, &["one", "two words"]);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("has 2 args") && text.contains("arg [two words]"),
        "{text}"
    );
    assert!(text.contains("errexit off"), "{text}");
    let h = trace::TraceReader::open(&t).unwrap().header().clone();
    let line = h.script.expect("the header records the #! line");
    assert_eq!((line.interpreter, line.arg), (b"/bin/sh".to_vec(), None));

    replays_identically(&t, &out, rec.exit);

    let packed = pack(&t, d.path(), "script");
    std::fs::remove_file(&script).unwrap();
    replays_identically(&packed, &out, rec.exit);
}

#[test]
fn script_with_an_interpreter_argument_replays_from_a_pack_without_script_or_interpreter() {
    let d = tempfile::tempdir().unwrap();
    // A private copy of the shell, so that the test can take the interpreter away too.
    let shell = d.path().join("mysh");
    std::fs::copy(std::fs::canonicalize("/bin/sh").unwrap(), &shell).unwrap();
    let script = d.path().join("strict.sh");
    write_script(&script, &format!("#!{} -e", shell.display()));
    let (rec, t, out) = record(d.path(), &script, &["alpha"]);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("has 1 args") && text.contains("errexit on"),
        "{text}"
    );
    let h = trace::TraceReader::open(&t).unwrap().header().clone();
    let line = h.script.expect("the header records the #! line");
    assert_eq!(line.arg.as_deref(), Some(&b"-e"[..]));

    replays_identically(&t, &out, rec.exit);

    let packed = pack(&t, d.path(), "strict");
    std::fs::remove_file(&script).unwrap();
    std::fs::remove_file(&shell).unwrap();
    replays_identically(&packed, &out, rec.exit);
}

#[test]
fn a_script_whose_first_line_changed_is_refused_before_it_runs() {
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("changed.sh");
    write_script(&script, "#!/bin/sh");
    let (_, t, _) = record(d.path(), &script, &[]);
    // Same length, another option: the kernel would now run `sh -x`.
    write_script(&script, "#!/bin/sh -x");
    let err = replayer::replay(
        &t,
        replayer::ReplayOptions {
            console: replayer::Console::Buffer(Vec::new()),
            pace: false,
        },
    )
    .expect_err("a script with another #! line must not replay");
    let msg = err.to_string();
    assert!(msg.contains("#!") && msg.contains("changed.sh"), "{msg}");
}

const HELLO: &str = r#"
#include <stdio.h>
int main(int argc, char **argv) {
    printf("hello from %s with %d args\n", argv[0], argc);
    return 3;
}
"#;

#[test]
fn unpacked_trace_replays_after_the_original_binary_is_gone() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "hello", HELLO);
    let (rec, t, out) = record(d.path(), &exe, &["x"]);
    assert_eq!(rec.exit, ExitStatus::Exited(3));
    let packed = d.path().join("hello.rwpack");
    trace::pack::write(&t, &exe, &packed).unwrap();
    let unpacked = d.path().join("unpacked");
    trace::pack::Pack::open(&packed)
        .unwrap()
        .unpack(&unpacked)
        .unwrap();
    std::fs::remove_file(&exe).unwrap();
    std::fs::remove_file(&packed).unwrap();
    replays_identically(&unpacked, &out, rec.exit);
}
