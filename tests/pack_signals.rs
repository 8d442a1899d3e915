//! Where a packed trace is unpacked: a private directory (0700, unpredictable name) in
//! TMPDIR, removed when rewind ends, by SIGINT or SIGTERM too; while `rewind gdb` runs
//! gdb, Ctrl-C (SIGINT) is gdb's and does not end rewind. And `pack --unpack` never
//! writes into an existing trace directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testsupport::Scratch;

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

/// A recording of /bin/true and its pack.
fn packed(s: &Scratch) -> (PathBuf, PathBuf) {
    let dir = s.path("t");
    let pack = s.path("t.rwpack");
    for args in [
        vec!["record", "-o", dir.to_str().unwrap(), "--", "/bin/true"],
        vec!["pack", dir.to_str().unwrap(), "-o", pack.to_str().unwrap()],
    ] {
        let out = Command::new(REWIND).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "rewind {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (dir, pack)
}

fn entries(d: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// `rewind gdb ARGS PACK` with TMPDIR=`tmp`.
fn spawn_gdb(args: &[&str], pack: &Path, tmp: &Path) -> Child {
    Command::new(REWIND)
        .arg("gdb")
        .args(args)
        .arg(pack)
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until the pack is unpacked in `tmp`; the unpack directory.
fn unpacked_in(child: &mut Child, tmp: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(d) = entries(tmp)
            .into_iter()
            .find(|p| p.join("binary").is_file())
        {
            return d;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no unpacked trace in {tmp:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Waits up to 10 s for the child to end; its exit code.
fn wait_exit(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rewind did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn unpack_dir_is_private_and_removed_on_sigint_and_sigterm() {
    let s = Scratch::new("pack-signals");
    let (_, pack) = packed(&s);
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let tmp = s.path(&format!("tmp{sig}"));
        std::fs::create_dir_all(&tmp).unwrap();
        let mut child = spawn_gdb(&["--no-launch"], &pack, &tmp);
        let dir = unpacked_in(&mut child, &tmp);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{dir:?} has mode {mode:o}");
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !name.contains(&child.id().to_string()),
            "{name} is predictable from the pid"
        );
        signal(&child, sig);
        assert_eq!(wait_exit(&mut child), Some(code), "after {sig}");
        assert!(
            entries(&tmp).is_empty(),
            "{:?} left after {sig}",
            entries(&tmp)
        );
    }
}

#[test]
fn sigint_is_left_to_gdb_while_it_runs() {
    let s = Scratch::new("pack-sigint-gdb");
    let (_, pack) = packed(&s);
    // A stand-in for gdb that lives long enough and ignores what it is given.
    let fake = s.path("fake-gdb");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 5\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tmp = s.path("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = spawn_gdb(&["--gdb", fake.to_str().unwrap()], &pack, &tmp);
    unpacked_in(&mut child, &tmp);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "rewind gdb ended on SIGINT while gdb ran"
    );
    signal(&child, "-TERM");
    assert_eq!(wait_exit(&mut child), Some(143));
    assert!(entries(&tmp).is_empty(), "{:?} left", entries(&tmp));
}

#[test]
fn unpack_refuses_an_existing_trace_directory() {
    let s = Scratch::new("pack-unpack-existing");
    let (dir, pack) = packed(&s);
    let before: Vec<_> = entries(&dir);
    let out = Command::new(REWIND)
        .args(["pack", "--unpack"])
        .arg(&pack)
        .arg("-o")
        .arg(&dir)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(entries(&dir), before, "the trace directory was changed");
    assert!(!dir.join("binary").exists());
    // A new directory is fine.
    let fresh = s.path("fresh");
    let st = Command::new(REWIND)
        .args(["pack", "--unpack"])
        .arg(&pack)
        .arg("-o")
        .arg(&fresh)
        .status()
        .unwrap();
    assert!(st.success());
    assert!(fresh.join("binary").is_file() && fresh.join("end").is_file());
}
