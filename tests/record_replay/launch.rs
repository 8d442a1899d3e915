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

/// Lists `T/data` from a child it forks, then becomes a shell pipeline (found by execvp
/// after a $PATH entry where it is not); every program is a copy under `T` (argv[1]),
/// and so is its own dynamic loader.
const PIPELINE: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    static char ls[4096], sh[4096], data[4096], cmd[16384];
    snprintf(ls, sizeof ls, "%s/bin/ls", argv[1]);
    snprintf(sh, sizeof sh, "%s/bin/sh", argv[1]);
    snprintf(data, sizeof data, "%s/data", argv[1]);
    snprintf(cmd, sizeof cmd, "%s/bin/ls %s | %s/bin/sort -r; echo pipeline done",
             argv[1], data, argv[1]);
    printf("child lists:\n");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {ls, data, NULL}; /* argv[0] is the exec path itself */
        execv(ls, args);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child ended %d\n", WEXITSTATUS(status));
    fflush(stdout);
    /* execvp tries $PATH in order: the first entry has no sh (that execve fails). */
    static char path[8192];
    snprintf(path, sizeof path, "%s/no-such-dir:%s/bin", argv[1], argv[1]);
    setenv("PATH", path, 1);
    char *args[] = {"sh", "-c", cmd, NULL};
    execvp("sh", args);
    return 126;
}
"#;

#[test]
fn a_pack_replays_every_program_the_recording_executed_after_they_and_their_loader_are_gone() {
    let d = tempfile::tempdir().unwrap();
    let tools = d.path().join("tools");
    for sub in ["bin", "lib", "data"] {
        std::fs::create_dir_all(tools.join(sub)).unwrap();
    }
    for (name, from) in [
        ("ls", "/bin/ls"),
        ("sort", "/usr/bin/sort"),
        ("sh", "/bin/sh"),
    ] {
        let real = std::fs::canonicalize(from).unwrap();
        std::fs::copy(real, tools.join("bin").join(name)).unwrap();
    }
    for name in ["apple", "cherry", "banana"] {
        std::fs::write(tools.join("data").join(name), name).unwrap();
    }
    let loader = tools.join("lib/ld.so");
    std::fs::copy(
        std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap(),
        &loader,
    )
    .unwrap();
    let exe = cc_with(
        d.path(),
        "pipeline",
        PIPELINE,
        &[&format!("-Wl,--dynamic-linker={}", loader.display())],
    );
    let (rec, t, out) = record(d.path(), &exe, &[tools.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(rec.exit, ExitStatus::Exited(0), "{text}");
    assert!(
        text.contains("child lists:\napple\nbanana\ncherry\nchild ended 0\n")
            && text.ends_with("cherry\nbanana\napple\npipeline done\n"),
        "{text}"
    );
    let packed = pack(&t, d.path(), "pipeline");
    std::fs::remove_dir_all(&tools).unwrap();
    std::fs::remove_file(&exe).unwrap();
    replays_identically(&packed, &out, rec.exit);

    // The trace's copy of a program it executes is checked like any blob: `sort` swapped
    // for other bytes is refused at its exec, never run.
    let sort = events(&t)
        .into_iter()
        .find_map(|e| match e {
            trace::Event::Exec(x) if x.binary.path.ends_with(b"/sort") => Some(x.binary),
            _ => None,
        })
        .expect("an exec of sort");
    let unpacked = d.path().join("unpacked");
    trace::pack::Pack::open(&packed)
        .unwrap()
        .unpack(&unpacked)
        .unwrap();
    let blob = unpacked.join("blobs").join(sort.sha256.hex());
    let other = zstd::bulk::compress(&vec![0x90u8; sort.size as usize], 3).unwrap();
    std::fs::write(&blob, other).unwrap();
    let msg = refusal(&unpacked);
    assert!(
        msg.contains("exec of") && msg.contains("sort") && msg.contains("hash"),
        "{msg}"
    );

    // So is its copy of the dynamic loader: other bytes are refused before the program
    // starts, never run in its place.
    let h = trace::TraceReader::open(&t).unwrap().header().clone();
    let ld = h
        .initial_mappings
        .iter()
        .find(|m| m.path.ends_with(b"/ld.so"))
        .and_then(|m| m.file)
        .expect("the loader's blob");
    let unpacked = d.path().join("unpacked-ld");
    trace::pack::Pack::open(&packed)
        .unwrap()
        .unpack(&unpacked)
        .unwrap();
    let other = zstd::bulk::compress(b"not the recorded loader", 3).unwrap();
    std::fs::write(unpacked.join("blobs").join(ld.hex()), other).unwrap();
    let msg = refusal(&unpacked);
    assert!(
        msg.contains("dynamic loader") && msg.contains("hash"),
        "{msg}"
    );
}

#[test]
fn a_replay_from_recorded_paths_refuses_another_build_of_the_dynamic_loader() {
    let d = tempfile::tempdir().unwrap();
    let loader = d.path().join("ld.so");
    std::fs::copy(
        std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap(),
        &loader,
    )
    .unwrap();
    let flag = format!("-Wl,--dynamic-linker={}", loader.display());
    let exe = cc_with(d.path(), "hello", HELLO, &[&flag]);
    let (rec, t, out) = record(d.path(), &exe, &[]);
    assert_eq!(rec.exit, ExitStatus::Exited(3));
    replays_identically(&t, &out, rec.exit);
    // Still a loader the kernel starts, but not the recorded bytes.
    let mut other = std::fs::read(&loader).unwrap();
    other.extend_from_slice(b"another build");
    std::fs::write(&loader, other).unwrap();
    let msg = refusal(&t);
    assert!(
        msg.contains("dynamic loader") && msg.contains("ld.so") && msg.contains("rewind pack"),
        "{msg}"
    );
    // The pack carries the recorded loader and runs it.
    let packed = pack(&t, d.path(), "hello");
    replays_identically(&packed, &out, rec.exit);
}

#[test]
fn a_pack_runs_the_hosts_copy_of_a_script_a_later_exec_starts() {
    let d = tempfile::tempdir().unwrap();
    // gunzip is a #! script on Debian; the shell runs it in a pipeline's last child.
    let (rec, t, out) = record(d.path(), "/bin/sh", &["-c", "echo hi | gzip | gunzip"]);
    assert_eq!(String::from_utf8_lossy(&out), "hi\n");
    let packed = pack(&t, d.path(), "gz");
    replays_identically(&packed, &out, rec.exit);
}

/// Tries two execs that fail (a path that is missing, a file that is not executable),
/// says how each failed, then execs `echo`.
const FAILED_EXECS: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char later[4096], plain[4096];
    snprintf(later, sizeof later, "%s/later", argv[1]);
    snprintf(plain, sizeof plain, "%s/plain", argv[1]);
    char *args[] = {"tried", NULL};
    execv(later, args);
    printf("later: %s\n", strerror(errno));
    execv(plain, args);
    printf("plain: %s\n", strerror(errno));
    fflush(stdout);
    execl("/bin/echo", "echo", "third exec ran", (char *)NULL);
    return 1;
}
"#;

#[test]
fn an_execve_that_failed_is_replayed_from_its_event_and_never_runs_what_the_host_has_there() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("plain"), "not a program\n").unwrap();
    let exe = cc(d.path(), "failed_execs", FAILED_EXECS);
    let (rec, t, out) = record(d.path(), &exe, &[dir.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "later: No such file or directory\nplain: Permission denied\nthird exec ran\n"
    );
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    let failed: Vec<i64> = events(&t)
        .iter()
        .filter_map(|e| match e {
            trace::Event::Syscall(sc) if sc.nr == libc::SYS_execve as u64 => Some(sc.ret),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        [-i64::from(libc::ENOENT), -i64::from(libc::EACCES)],
        "the failed execs, as events"
    );

    // Both paths now hold programs that would leave a mark: the replay fails the calls as
    // recorded, and runs neither.
    let mark = d.path().join("ran");
    for name in ["later", "plain"] {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho {name} >> {}\n", mark.display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    replays_identically(&t, &out, rec.exit);
    let packed = pack(&t, d.path(), "failed");
    replays_identically(&packed, &out, rec.exit);
    assert!(
        !mark.exists(),
        "a failed exec ran at replay: {:?}",
        std::fs::read_to_string(&mark)
    );

    // Without its event, the failed call is a divergence at its stop, not a host exec.
    let dropped = d.path().join("dropped");
    let mut first = true;
    rewrite_all(
        &t,
        &dropped,
        |_| {},
        |_, e| match e {
            trace::Event::Syscall(sc) if sc.nr == libc::SYS_execve as u64 && first => {
                first = false;
                vec![]
            }
            e => vec![e],
        },
    );
    let msg = refusal(&dropped);
    assert!(msg.contains("execve(") && msg.contains("diverge"), "{msg}");
    assert!(
        !mark.exists(),
        "a failed exec ran at replay: {:?}",
        std::fs::read_to_string(&mark)
    );
}
