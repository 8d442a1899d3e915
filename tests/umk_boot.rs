//! umk boots from an ext2 image, runs its shell (init script and console input), halts
//! with status 0, and refuses bad command lines before printing any boot log.

use testsupport::{arg, make_ext2, run_umk, run_umk_fed, script, Run, Scratch};

/// Parses an `uptime` line: (seconds, jiffies).
fn parse_uptime(section: &str) -> (f64, u64) {
    let line = section
        .lines()
        .find(|l| l.trim_start().starts_with("up "))
        .unwrap_or_else(|| panic!("no uptime line in {section:?}"));
    let secs = line
        .trim_start()
        .strip_prefix("up ")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let j = words
        .iter()
        .position(|w| w.starts_with("jiffies"))
        .unwrap_or_else(|| panic!("no jiffies in {line:?}"));
    (secs.parse().unwrap(), words[j - 1].parse().unwrap())
}

#[test]
fn boots_runs_shell_commands_and_halts() {
    let d = Scratch::new("umk-boot");
    let img = d.path("disk.img");
    make_ext2(
        &img,
        "16M",
        &[
            ("etc/motd", "welcome to umk\n"),
            ("docs/readme.txt", "line one\nline two\n"),
        ],
    );
    let s = script(
        &d,
        "init",
        &[
            "ls /",
            "ls /docs",
            "cat /etc/motd",
            "cat /docs/readme.txt",
            "ps",
            "free",
            "uptime",
            "sleep 0.2",
            "uptime",
            "frobnicate --now",
            "cat /etc/nope",
            "echo still alive",
            "halt",
            "echo never printed",
        ],
    );
    let r = run_umk(&["mem=32M".to_string(), arg("ubd0", &img), arg("init", &s)]);
    r.assert_success();
    r.assert_stdout_has(&[
        "umk version ",
        "Memory: ",
        "Command line: ",
        "ubd0: 32768 sectors (16 MB)",
        "EXT2-fs (ubd0): mounted",
        "Run init as init process",
        "System halted.",
    ]);
    assert!(r.stderr.is_empty(), "{}", r.dump());

    // ls: directories and files from the image, with kinds and sizes.
    let root: Vec<&str> = r.section("ls /").lines().collect();
    assert!(
        root.iter()
            .any(|l| l.starts_with('d') && l.ends_with(" etc")),
        "{root:?}"
    );
    assert!(
        root.iter()
            .any(|l| l.starts_with('d') && l.ends_with(" docs")),
        "{root:?}"
    );
    assert!(
        root.iter()
            .any(|l| l.starts_with('d') && l.ends_with(" lost+found")),
        "{root:?}"
    );
    let docs = r.section("ls /docs");
    assert_eq!(
        docs.split_whitespace().collect::<Vec<_>>(),
        ["-", "18", "readme.txt"],
        "{docs:?}"
    );

    // cat: exact contents.
    assert_eq!(r.section("cat /etc/motd"), "welcome to umk\n");
    assert_eq!(r.section("cat /docs/readme.txt"), "line one\nline two\n");

    // ps: the kernel's tasks.
    let ps = r.section("ps");
    assert!(ps.lines().next().unwrap().contains("PID STATE"), "{ps}");
    for task in ["swapper", "khungtaskd", "init"] {
        assert!(
            ps.lines().any(|l| l.split_whitespace().any(|w| w == task)),
            "ps lacks {task}: {ps}"
        );
    }
    let init_line = ps.lines().find(|l| l.contains(" init ")).unwrap();
    assert!(init_line.contains("(running)"), "init runs ps: {init_line}");

    // free: page totals for 32M and the slab caches.
    let free = r.section("free");
    let mem = free
        .lines()
        .find(|l| l.starts_with("Mem:"))
        .unwrap_or_else(|| panic!("{free}"));
    assert_eq!(mem.split_whitespace().nth(1), Some("32768K"), "{mem}");
    for cache in ["kmalloc-16", "kmalloc-64", "kmalloc-1024", "ubd_request"] {
        assert!(
            free.lines().any(|l| l.starts_with(cache)),
            "free lacks {cache}: {free}"
        );
    }

    // uptime before and after sleep 0.2 (250 Hz).
    let (t0, j0) = parse_uptime(r.stdout.split("umk# uptime\n").nth(1).unwrap());
    let (t1, j1) = parse_uptime(r.stdout.split("umk# uptime\n").nth(2).unwrap());
    assert!(
        t1 - t0 >= 0.19,
        "sleep 0.2 advanced uptime only from {t0} to {t1}"
    );
    assert!(t1 - t0 < 5.0, "sleep 0.2 took from {t0} to {t1}");
    assert!(
        j1 - j0 >= 48,
        "sleep 0.2 advanced jiffies only from {j0} to {j1}"
    );

    // A bad line is reported and the next line still runs; nothing after halt runs.
    assert_eq!(
        r.section("frobnicate --now"),
        "frobnicate: unknown command (try 'help')\n"
    );
    assert_eq!(
        r.section("cat /etc/nope"),
        "cat: /etc/nope: no such file or directory\n"
    );
    assert_eq!(r.section("echo still alive"), "still alive\n");
    assert!(!r.stdout.contains("never printed"), "{}", r.dump());
}

#[test]
fn console_input_drives_the_shell_and_eof_halts() {
    use std::io::Write;
    let r = run_umk_fed(&["mem=16M", "hz=100"], |mut stdin| {
        let _ = stdin.write_all(b"echo typed on the console\nhelp\nps\n");
        // Dropping stdin is end of input: the kernel halts by itself.
    });
    r.assert_success();
    r.assert_stdout_has(&[
        "VFS: no ubd0 given, running without a root filesystem",
        "timer at 100 Hz",
        "typed on the console\n",
        "commands: ps, free, ls",
        " khungtaskd ",
        "console: end of input, halting",
        "System halted.",
    ]);
}

#[test]
fn version_and_help_exit_zero_without_booting() {
    let v = run_umk(&["--version"]);
    v.assert_success();
    assert_eq!(
        v.stdout,
        format!(
            "umk {} (Rewind user-mode kernel)\n",
            env!("CARGO_PKG_VERSION")
        ),
        "{}",
        v.dump()
    );
    let h = run_umk(&["--help"]);
    h.assert_success();
    assert!(h.stdout.starts_with("Usage: umk "), "{}", h.dump());
    for key in [
        "mem=",
        "ubdN=",
        "init=",
        "hz=",
        "mconsole=",
        "hung_task_timeout=",
        "hung_task_panic=",
        "bug_window=",
        "--version",
    ] {
        assert!(h.stdout.contains(key), "--help lacks {key}\n{}", h.dump());
    }
    assert!(
        !h.stdout.contains("umk version"),
        "--help booted\n{}",
        h.dump()
    );
}

fn assert_refused(r: &Run, needles: &[&str]) {
    assert_eq!(
        r.status.code(),
        Some(2),
        "expected exit status 2\n{}",
        r.dump()
    );
    assert!(
        r.stdout.is_empty(),
        "a refused command line printed a boot log\n{}",
        r.dump()
    );
    assert!(r.stderr.starts_with("umk: "), "{}", r.dump());
    for n in needles {
        assert!(
            r.stderr.contains(n),
            "stderr does not name {n:?}\n{}",
            r.dump()
        );
    }
}

#[test]
fn bad_arguments_exit_2_naming_the_argument() {
    let d = Scratch::new("umk-args");
    let img = d.path("disk.img");
    make_ext2(&img, "8M", &[]);
    let missing_cow = d.path("no/such/dir/over.cow");
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (vec!["foo=1".into()], vec!["unknown argument 'foo'".into()]),
        (vec!["mem=1M".into()], vec!["mem=1024K is too small".into()]),
        (
            vec!["mem=lots".into()],
            vec!["'lots'".into(), "'mem'".into()],
        ),
        (vec!["hz=5".into()], vec!["'5'".into(), "'hz'".into()]),
        (
            vec!["ubd0=/nonexistent.img".into()],
            vec!["ubd0".into(), "'/nonexistent.img'".into()],
        ),
        (
            vec!["init=/nonexistent".into()],
            vec!["init=/nonexistent".into()],
        ),
        (vec!["ubd0=a,".into()], vec!["'a,'".into(), "'ubd0'".into()]),
        (vec!["ubd9=x".into()], vec!["'ubd9'".into()]),
        (vec!["bogus".into()], vec!["'bogus'".into()]),
        (
            vec![arg("ubd0", &img), arg("ubd0", &img)],
            vec!["'ubd0' given twice".into()],
        ),
        (
            vec![format!("ubd0={},{}", img.display(), missing_cow.display())],
            vec!["ubd0".into(), missing_cow.display().to_string()],
        ),
        (
            vec!["hung_task_panic=2".into()],
            vec!["'hung_task_panic'".into()],
        ),
    ];
    for (args, needles) in cases {
        let r = run_umk(&args);
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert_refused(&r, &needles);
    }
    // A socket path that cannot be bound is refused like any other bad argument.
    let sock = d.path("no/such/dir/mc.sock");
    let sock_arg = arg("mconsole", &sock);
    assert_refused(
        &run_umk(std::slice::from_ref(&sock_arg)),
        &[&sock.display().to_string()],
    );
}
