//! `rewind replay` end to end: it prints what was recorded and exits as the recording
//! did, and under strace the replayer itself opens nothing but the trace, the binary and
//! its own libraries, writes only to its stdout/stderr, and never sends, binds, unlinks or
//! creates anything. (The tracee's own recorded calls never reach the host kernel: they
//! are cancelled at their seccomp stop with orig_rax = -1; strace follows only the
//! replayer, as a second tracer cannot attach to our tracee.)

use std::process::Command;

use testsupport::{arg, make_ext2, script, umk_binary, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

fn record_umk(d: &Scratch) -> (std::path::PathBuf, String) {
    let img = d.path("disk.img");
    make_ext2(&img, "8M", &[("etc/motd", "hello from the disk\n")]);
    let s = script(
        d,
        "init",
        &["cat /etc/motd", "echo written > /f", "sync", "halt"],
    );
    let t = d.path("trace");
    let out = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(&t)
        .arg("--")
        .arg(umk_binary())
        .args(["mem=32M", &arg("ubd0", &img), &arg("init", &s)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (t, String::from_utf8(out.stdout).unwrap())
}

#[test]
fn replay_prints_the_recorded_console_and_exits_the_same() {
    let d = Scratch::new("replay-cli");
    let (t, console) = record_umk(&d);
    assert!(console.contains("hello from the disk"), "{console}");
    let out = Command::new(REWIND).arg("replay").arg(&t).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), console);
}

/// `/proc/PID/status`, `maps` or `mem` of some process.
fn tracee_proc_file(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/proc/") else {
        return false;
    };
    let (pid, file) = rest.split_once('/').unwrap_or(("", ""));
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && ["status", "maps", "mem"].contains(&file)
}

#[test]
fn replay_has_no_host_side_effects_under_strace() {
    let d = Scratch::new("replay-strace");
    let (t, console) = record_umk(&d);
    // The disk image is not needed and must not be touched: make it unreadable garbage.
    std::fs::write(d.path("disk.img"), b"not a disk").unwrap();
    let log = d.path("strace.log");
    let out = Command::new("strace")
        .arg("-o")
        .arg(&log)
        .args(["-qq", "-e", "trace=%file,%network,%desc,kill,tgkill,tkill"])
        .arg(REWIND)
        .arg("replay")
        .arg(&t)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), console);
    let log = std::fs::read_to_string(&log).unwrap();
    let trace_dir = t.canonicalize().unwrap();
    let trace_dir = trace_dir.to_str().unwrap();
    let binary = umk_binary().to_str().unwrap().to_string();
    let mut opens = 0;
    for line in log.lines() {
        let call = line.split('(').next().unwrap_or("");
        match call {
            "open" | "openat" | "openat2" => {
                opens += 1;
                assert!(
                    !line.contains("O_WRONLY")
                        && !line.contains("O_RDWR")
                        && !line.contains("O_CREAT"),
                    "opened for writing: {line}"
                );
                let path = line.split('"').nth(1).unwrap_or("");
                let allowed = path.starts_with(trace_dir)
                    || path.contains(t.to_str().unwrap())
                    || path == binary
                    || path.starts_with("/lib")
                    || path.starts_with("/usr/lib")
                    || path.starts_with("/etc/ld.so")
                    || path.starts_with("/proc/self/")
                    // The tracee's own signal state and memory, read-only (the check at
                    // exec and the state digests of signals placed by registers).
                    || tracee_proc_file(path)
                    || path.starts_with("/sys/devices/system/cpu")
                    // The dynamic loader searching for the replayer's own libraries
                    // (cargo's LD_LIBRARY_PATH), read-only.
                    || path.contains(".so");
                assert!(allowed, "the replay opened {path:?}: {line}");
            }
            "write" | "writev" | "pwrite64" => {
                let fd: i32 = line[call.len() + 1..]
                    .split(',')
                    .next()
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                assert!(fd == 1 || fd == 2, "wrote to fd {fd}: {line}");
            }
            "socket" | "connect" | "bind" | "sendto" | "sendmsg" | "unlink" | "unlinkat"
            | "rename" | "renameat" | "renameat2" | "mkdir" | "mkdirat" | "truncate"
            | "ftruncate" | "creat" | "symlink" | "link" | "chmod" | "fchmod" => {
                panic!("host side effect: {line}")
            }
            "kill" | "tgkill" | "tkill" => panic!("signalled a process: {line}"),
            _ => {}
        }
    }
    assert!(opens > 0, "strace saw no opens at all: {log}");
    assert!(
        log.contains(trace_dir) || log.contains(t.to_str().unwrap()),
        "the trace was not read?\n{log}"
    );
}

#[test]
fn replay_of_a_tampered_binary_names_the_expected_file() {
    let d = Scratch::new("replay-binary");
    let exe = testsupport::cc(
        &d.0,
        "prog",
        "#include <stdio.h>\nint main(void){puts(\"a\");return 3;}\n",
    );
    let t = d.path("trace");
    let st = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(&t)
        .arg("--")
        .arg(&exe)
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(3));
    let out = Command::new(REWIND).arg("replay").arg(&t).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"a\n");
    // The same path, rebuilt with other contents.
    testsupport::cc(
        &d.0,
        "prog",
        "#include <stdio.h>\nint main(void){puts(\"b\");return 4;}\n",
    );
    let out = Command::new(REWIND).arg("replay").arg(&t).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "recorded with {}",
            exe.canonicalize().unwrap().display()
        )),
        "{err}"
    );
    assert!(
        err.contains("refusing to replay against a different binary"),
        "{err}"
    );
}

#[test]
fn replay_of_a_program_killed_from_outside_ends_with_sigkill_and_says_where() {
    use std::io::BufRead;
    let d = Scratch::new("replay-killed");
    // A handled signal first, so that a stale "last signal" would show in the message.
    let exe = testsupport::cc(
        &d.0,
        "sleeper",
        r#"
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static void on_usr1(int s) { (void)s; }
int main(void) {
    signal(SIGUSR1, on_usr1);
    raise(SIGUSR1);
    printf("pid %d\n", (int)getpid());
    fflush(stdout);
    struct timespec t = { 60, 0 };
    nanosleep(&t, 0);
    puts("woke up");
    return 0;
}
"#,
    );
    let t = d.path("trace");
    let mut rec = Command::new(REWIND)
        .args(["record", "-o"])
        .arg(&t)
        .arg("--")
        .arg(&exe)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(rec.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid = line.trim().strip_prefix("pid ").unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap()
        .success());
    assert_eq!(rec.wait().unwrap().code(), Some(128 + 9));
    for _ in 0..3 {
        let out = Command::new(REWIND).arg("replay").arg(&t).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(128 + 9), "{err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), line);
        assert!(
            err.contains("killed by signal 9 from outside") && !err.contains("at rip"),
            "{err}"
        );
    }
}
