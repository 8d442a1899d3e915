//! The management console, driven by UML's own client (uml_mconsole) over the host unix
//! socket: version, sysrq, hot-plugging and removing a disk, refusals, and halt.

use std::path::Path;
use std::time::{Duration, Instant};

use testsupport::{
    arg, assert_fsck_clean, debugfs_cat, make_ext2, run_umk, script, tool, Run, Scratch,
};

/// One uml_mconsole request (its words are joined into one command line).
fn mconsole(sock: &Path, request: &[&str]) -> Run {
    let mut args = vec![sock.display().to_string()];
    args.extend(request.iter().map(|s| s.to_string()));
    tool("uml_mconsole", &args)
}

#[track_caller]
fn ok(sock: &Path, request: &[&str]) -> String {
    let r = mconsole(sock, request);
    assert!(
        r.status.success() && r.stdout.starts_with("OK "),
        "mconsole {request:?} failed\n{}",
        r.dump()
    );
    r.stdout["OK ".len()..].to_string()
}

#[track_caller]
fn err(sock: &Path, request: &[&str]) -> String {
    let r = mconsole(sock, request);
    assert!(
        !r.status.success() && r.stdout.starts_with("ERR "),
        "mconsole {request:?} should fail\n{}",
        r.dump()
    );
    r.stdout["ERR ".len()..].to_string()
}

#[test]
fn mconsole_version_sysrq_hotplug_and_halt() {
    let d = Scratch::new("umk-mconsole");
    let img = d.path("root.img");
    make_ext2(&img, "16M", &[("etc/motd", "motd\n")]);
    let img2 = d.path("second.img");
    make_ext2(&img2, "8M", &[]);
    let img3 = d.path("third.img");
    make_ext2(&img3, "4M", &[]);
    let cow3 = d.path("third.cow");
    let sock = d.path("mconsole.sock");
    let s = script(
        &d,
        "init",
        &[
            "echo written before the sleep > /before",
            "sleep 30",
            "echo after sleep",
            "halt",
        ],
    );
    let args = vec![
        "mem=32M".to_string(),
        arg("ubd0", &img),
        arg("init", &s),
        arg("mconsole", &sock),
    ];
    let kernel = std::thread::spawn(move || run_umk(&args));

    let start = Instant::now();
    while !sock.exists() {
        assert!(
            !kernel.is_finished(),
            "umk ended before opening its mconsole socket"
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no mconsole socket at {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    assert!(ok(&sock, &["version"]).starts_with(&format!("umk {}", env!("CARGO_PKG_VERSION"))));

    let tasks = ok(&sock, &["sysrq", "t"]);
    assert!(tasks.contains("sysrq: Show State"), "{tasks}");
    for name in ["swapper", "khungtaskd", "init", "mconsoled"] {
        assert!(
            tasks
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "sysrq t lacks {name}\n{tasks}"
        );
    }
    let init = tasks
        .lines()
        .find(|l| l.split_whitespace().next() == Some("init"))
        .unwrap();
    assert!(
        init.contains("INTERRUPTIBLE") && init.contains("sleep until jiffies"),
        "init should be sleeping: {init}"
    );

    let mem = ok(&sock, &["sysrq", "m"]);
    assert!(
        mem.contains("Mem:") && mem.contains("ubd_request") && mem.contains("kmalloc-64"),
        "{mem}"
    );

    // Hot-plug a disk, query it, remove it.
    assert_eq!(ok(&sock, &[&arg("config ubd1", &img2)]).trim(), "");
    assert_eq!(ok(&sock, &["config", "ubd1"]).trim(), "ubd1: 16384 sectors");
    assert_eq!(
        err(&sock, &["remove", "ubd0"]).trim(),
        "ubd0: device is busy"
    );
    assert_eq!(ok(&sock, &["remove", "ubd1"]).trim(), "");
    assert_eq!(
        err(&sock, &["config", "ubd1"]).trim(),
        "ubd1: not configured"
    );
    // A hot-plugged disk through a new COW file, which umk creates.
    assert!(!cow3.exists());
    ok(
        &sock,
        &[&format!(
            "config ubd2={},{}",
            img3.display(),
            cow3.display()
        )],
    );
    assert!(cow3.is_file(), "hot-plug did not create {}", cow3.display());
    assert_eq!(ok(&sock, &["config", "ubd2"]).trim(), "ubd2: 8192 sectors");
    ok(&sock, &["remove", "ubd2"]);

    // Refusals.
    assert!(err(&sock, &["config", "ubd9=/x"]).contains("ubd9: unknown device"));
    assert!(err(&sock, &["config", "ubd3=/nonexistent/disk.img"]).contains("/nonexistent/disk.img"));
    assert!(err(&sock, &["remove", "ubd5"]).contains("ubd5"));
    assert!(err(&sock, &["frobnicate"]).contains("Unknown command"));
    assert!(!kernel.is_finished(), "umk ended before mconsole halt");

    let halt_sent = Instant::now();
    ok(&sock, &["halt"]);
    let r = kernel.join().unwrap();
    assert!(
        halt_sent.elapsed() < Duration::from_secs(10),
        "umk took {:?} to halt",
        halt_sent.elapsed()
    );
    r.assert_success();
    r.assert_stdout_has(&[
        &format!(
            "mconsole (version 2) initialized on {}",
            d.path("mconsole.sock").display()
        ),
        " ubd1: unknown partition table (16384 sectors)",
        "ubd1: removed",
        "ubd2: removed",
        "System halted.",
    ]);
    assert!(
        !r.stdout.contains("after sleep"),
        "the script went on past sleep 30\n{}",
        r.dump()
    );
    assert!(
        !d.path("mconsole.sock").exists(),
        "umk left its socket behind"
    );
    assert_fsck_clean(&img);
    assert_eq!(debugfs_cat(&img, "/before"), "written before the sleep\n");
    assert_fsck_clean(&img2);
}
