//! How the CLI reports a failure: one message, then each cause that adds something (a
//! cause the message already quotes is folded away), then the next step when one is
//! known. A backtrace is printed only when the user asks for one (`-v` or
//! `REWIND_BACKTRACE=1`), never because `RUST_BACKTRACE` happens to be set: developers
//! often have it on, and a stack of rewind's frames tells a user nothing.

use std::fmt::Write as _;

/// Whether the user asked for backtraces with `REWIND_BACKTRACE=1`.
pub fn backtrace_requested_by_env() -> bool {
    std::env::var_os("REWIND_BACKTRACE").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Makes errors capture a backtrace from now on, whatever `RUST_BACKTRACE` says. Must be
/// called before any other thread starts.
///
/// anyhow captures through `std::backtrace::Backtrace::capture`, which reads
/// `RUST_LIB_BACKTRACE` once and caches the answer; setting it for that one read and
/// restoring it at once keeps the environment that recorded programs inherit unchanged.
pub fn capture_backtraces() {
    const VAR: &str = "RUST_LIB_BACKTRACE";
    let before = std::env::var_os(VAR);
    std::env::set_var(VAR, "1");
    let _ = std::backtrace::Backtrace::capture();
    match before {
        Some(v) => std::env::set_var(VAR, v),
        None => std::env::remove_var(VAR),
    }
}

/// The text printed for `e`: `rewind: error: …`, causes, next step, and the backtrace
/// when `backtrace` is set.
pub fn render(e: &anyhow::Error, backtrace: bool) -> String {
    let mut out = format!("rewind: error: {e}\n");
    let mut said = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if said.contains(&text) {
            continue;
        }
        let _ = writeln!(out, "  caused by: {text}");
        said.push_str(&text);
    }
    if let Some(step) = next_step(e) {
        let _ = writeln!(out, "  what to do: {step}");
    }
    if backtrace {
        let bt = e.backtrace();
        match bt.status() {
            std::backtrace::BacktraceStatus::Captured => {
                let _ = write!(out, "backtrace:\n{bt}");
            }
            _ => out.push_str("backtrace: none was captured for this error\n"),
        }
    }
    out
}

/// The next step for errors whose remedy is known, found anywhere in the cause chain.
fn next_step(e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        if let Some(replayer::Error::BinaryMismatch { trace, .. }) = cause.downcast_ref() {
            return Some(format!(
                "a trace replays against the binary it recorded: on the machine where it was \
                 recorded, `rewind pack {}` (with `--binary PATH` if the binary has moved) \
                 makes one file that carries it, and replays anywhere",
                trace.display()
            ));
        }
        if let Some(replayer::Error::HostMismatch { trace, .. }) = cause.downcast_ref() {
            return Some(format!(
                "replay it on a machine like the one that recorded it (`rewind info {}` shows \
                 its CPU), or record the program again here; for the corpus, `rewind corpus \
                 list` says which shipped recording replays on this host",
                trace.display()
            ));
        }
        if let Some(trace::Error::NotATrace { .. }) = cause.downcast_ref() {
            return Some("`rewind ls` lists the recordings".into());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that quotes its source, as many of the libraries' errors do.
    #[derive(Debug)]
    struct Quoting(&'static str, std::io::Error);

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "opening {}: {}", self.0, self.1)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn a_cause_the_message_quotes_is_folded() {
        let io = std::io::Error::other("disk on fire");
        let e = anyhow::Error::new(Quoting("/t", io)).context("replaying /t");
        assert_eq!(
            render(&e, false),
            "rewind: error: replaying /t\n  caused by: opening /t: disk on fire\n"
        );
    }

    #[test]
    fn no_backtrace_unless_asked() {
        let e = anyhow::anyhow!("boom");
        assert_eq!(render(&e, false), "rewind: error: boom\n");
        assert!(render(&e, true).contains("backtrace"));
    }
}
