//! The CLI a new user meets, as an rr user expects it: errors that read as messages (no
//! backtrace unless asked, whatever RUST_BACKTRACE says), `--version` naming the trace
//! format, one summary line per recording, `ls`/`info`/`rm` over the per-user trace
//! directory, and shell completions and man pages generated from the one definition.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testsupport::{run_with_timeout, Run, Scratch};

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

/// `rewind ARGS` with its traces under `data` (XDG_DATA_HOME) and RUST_BACKTRACE=1, as
/// many developers' shells have it.
fn rewind(data: &Path, args: &[&str]) -> Run {
    let mut c = Command::new(REWIND);
    c.args(args)
        .env("XDG_DATA_HOME", data)
        .env("RUST_BACKTRACE", "1")
        .env_remove("REWIND_BACKTRACE");
    run_with_timeout(c, Duration::from_secs(120), None)
}

#[test]
fn an_error_is_a_message_without_a_backtrace_even_with_rust_backtrace_set() {
    let d = Scratch::new("cli-error");
    let r = rewind(&d.0, &["replay", "/nonexistent/trace"]);
    assert_eq!(r.status.code(), Some(1), "{}", r.dump());
    assert_eq!(
        r.stderr,
        "rewind: error: /nonexistent/trace: no such trace or pack (`rewind ls` lists the \
         recordings)\n"
    );
    // No latest recording yet: the message says how to make one.
    let r = rewind(&d.0, &["info"]);
    assert_eq!(r.status.code(), Some(1), "{}", r.dump());
    assert!(
        r.stderr.contains("no latest recording") && r.stderr.contains("`rewind record -- PROGRAM`"),
        "{}",
        r.dump()
    );
    // A directory that is not a trace: the cause is folded into one line and the next
    // step is named.
    let r = rewind(&d.0, &["dump", d.0.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1), "{}", r.dump());
    assert!(r.stderr.starts_with("rewind: error: "), "{}", r.dump());
    assert!(r.stderr.contains("is not a rewind trace"), "{}", r.dump());
    assert!(r.stderr.contains("what to do: `rewind ls`"), "{}", r.dump());
    assert!(!r.stderr.contains("backtrace"), "{}", r.dump());
}

#[test]
fn a_backtrace_comes_only_when_asked_for() {
    let d = Scratch::new("cli-backtrace");
    for asked in [
        &["-v", "dump", "/nonexistent"][..],
        &["dump", "-v", "/nonexistent"],
    ] {
        let r = rewind(&d.0, asked);
        assert_eq!(r.status.code(), Some(1), "{}", r.dump());
        assert!(r.stderr.contains("\nbacktrace:\n"), "{}", r.dump());
    }
    let mut c = Command::new(REWIND);
    c.args(["dump", "/nonexistent"])
        .env("REWIND_BACKTRACE", "1")
        .env_remove("RUST_BACKTRACE");
    let r = run_with_timeout(c, Duration::from_secs(60), None);
    assert!(r.stderr.contains("\nbacktrace:\n"), "{}", r.dump());
}

#[test]
fn version_names_the_trace_format() {
    let d = Scratch::new("cli-version");
    let r = rewind(&d.0, &["--version"]);
    assert!(r.status.success(), "{}", r.dump());
    assert_eq!(
        r.stdout,
        format!(
            "rewind {} (trace format {}, reads {}..={})\n",
            env!("CARGO_PKG_VERSION"),
            trace::FORMAT_VERSION,
            trace::OLDEST_READABLE_VERSION,
            trace::FORMAT_VERSION
        )
    );
}

#[test]
fn ls_info_and_rm_work_over_the_trace_directory() {
    let d = Scratch::new("cli-traces");
    // Two recordings into the default directory; the second is the latest.
    let first = rewind(&d.0, &["record", "--", "/bin/true"]);
    assert!(first.status.success(), "{}", first.dump());
    // One summary line, naming the trace and how the program ended.
    assert_eq!(first.stderr.lines().count(), 1, "{}", first.dump());
    assert!(
        first.stderr.starts_with("rewind: recorded ")
            && first.stderr.contains("; program exited 0; trace "),
        "{}",
        first.dump()
    );
    let second = rewind(
        &d.0,
        &["record", "--", "/bin/sh", "-c", "/bin/true | /bin/true"],
    );
    assert!(second.status.success(), "{}", second.dump());

    let ls = rewind(&d.0, &["ls"]);
    assert!(ls.status.success(), "{}", ls.dump());
    let lines: Vec<&str> = ls.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a heading and two traces\n{}", ls.dump());
    assert!(lines[0].starts_with("NAME"), "{}", ls.dump());
    assert!(
        lines[1].starts_with("true-0 ") && lines[1].contains("complete"),
        "{}",
        ls.dump()
    );
    assert!(!lines[1].contains("(latest)"), "{}", ls.dump());
    assert!(
        lines[2].starts_with("sh-0 ") && lines[2].ends_with("(latest)"),
        "{}",
        ls.dump()
    );

    // info on the latest: a shell that forked two children which each exec'd /bin/true.
    let info = rewind(&d.0, &["info"]);
    assert!(info.status.success(), "{}", info.dump());
    let field = |name: &str| {
        info.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line\n{}", info.dump()))
            .to_string()
    };
    assert!(
        field("argv").ends_with("/bin/sh -c /bin/true | /bin/true"),
        "{}",
        info.dump()
    );
    assert!(field("ended").ends_with("exited 0"), "{}", info.dump());
    assert!(field("chaos").ends_with("none"), "{}", info.dump());
    assert!(field("events").contains(" 3 tasks"), "{}", info.dump());
    assert_eq!(
        info.stdout
            .lines()
            .filter(|l| l.starts_with("exec "))
            .count(),
        2,
        "each child's exec of /bin/true\n{}",
        info.dump()
    );
    assert!(field("cpu").contains("cpuid"), "{}", info.dump());

    // rm refuses what is not a trace, deletes a trace, and drops `latest` with it.
    let not_a_trace = d.path("plain");
    std::fs::create_dir(&not_a_trace).unwrap();
    let r = rewind(&d.0, &["rm", not_a_trace.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1), "{}", r.dump());
    assert!(
        r.stderr.contains("is not a trace directory"),
        "{}",
        r.dump()
    );
    assert!(not_a_trace.is_dir());
    let r = rewind(&d.0, &["rm", "latest"]);
    assert!(r.status.success(), "{}", r.dump());
    let root = d.0.join("rewind");
    assert!(!root.join("sh-0").exists());
    assert!(std::fs::symlink_metadata(root.join("latest")).is_err());
    let ls = rewind(&d.0, &["ls"]);
    assert_eq!(ls.stdout.lines().count(), 2, "{}", ls.dump());
    let r = rewind(&d.0, &["rm", "true-0"]);
    assert!(r.status.success(), "{}", r.dump());
    assert!(!root.join("true-0").exists());
}

#[test]
fn completions_and_man_pages_are_generated_from_the_cli() {
    let d = Scratch::new("cli-generated");
    let bash = rewind(&d.0, &["completions", "bash"]);
    assert!(bash.status.success(), "{}", bash.dump());
    assert!(
        bash.stdout.contains("complete -F _rewind"),
        "{}",
        bash.dump()
    );
    for sub in ["record", "replay", "gdb", "ls", "info", "rm"] {
        assert!(bash.stdout.contains(sub), "bash completion lacks {sub}");
    }
    let zsh = rewind(&d.0, &["completions", "zsh"]);
    assert!(zsh.stdout.starts_with("#compdef rewind"), "{}", zsh.dump());

    let man = d.path("man");
    let r = rewind(&d.0, &["man", man.to_str().unwrap()]);
    assert!(r.status.success(), "{}", r.dump());
    let top = std::fs::read_to_string(man.join("rewind.1")).unwrap();
    assert!(
        top.starts_with(".ie"),
        "roff: {}",
        &top[..top.len().min(200)]
    );
    assert!(top.contains("Exit status"), "the exit codes are documented");
    let record = std::fs::read_to_string(man.join("rewind-record.1")).unwrap();
    assert!(
        record.contains("\\-\\-until"),
        "rewind-record.1 documents --until"
    );
}

#[test]
fn a_recording_from_another_kind_of_machine_is_refused_with_what_to_do() {
    let d = Scratch::new("cli-host");
    // The corpus ships abba for each kind of machine its tests run on; at least one of
    // them is from another kind than this one.
    let foreign: Vec<_> = testsupport::corpus::packs("abba")
        .into_iter()
        .filter(|p| !replayer::host_mismatch_of(p).unwrap().is_empty())
        .collect();
    assert!(!foreign.is_empty(), "every shipped abba replays here?");
    for pack in foreign {
        let r = rewind(&d.0, &["replay", pack.to_str().unwrap()]);
        assert_eq!(r.status.code(), Some(1), "{}", r.dump());
        assert!(r.stderr.contains("on this host: "), "{}", r.dump());
        assert!(
            r.stderr
                .contains("what to do: replay it on a machine like the one that recorded it"),
            "{}",
            r.dump()
        );
        assert!(!r.stderr.contains("backtrace"), "{}", r.dump());
    }
}
