//! `monitor` commands, so positions from analyzer reports can be used from gdb directly:
//! `where`, `goto POSITION`, `checkpoint`, `events [N]`, `stats`, `help`.

use gdbstub::outputln;
use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd};
use replayer::Position;

use crate::error::Error;
use crate::target::ReplayTarget;

/// Events `monitor events` lists without a count.
const DEFAULT_EVENTS: usize = 10;

const HELP: &str = "\
monitor where            the current replay position (eN+tK+sJ) and running thread
monitor goto POSITION    go to a position (then `maint flush register-cache`)
monitor checkpoint       take a checkpoint here
monitor events [N]       the next N events from here (default 10)
monitor stats            how long each kind of run took";

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Where,
    Goto(Position),
    Checkpoint,
    Events(usize),
    Stats,
    Help,
}

/// Parses the text gdb passes after `monitor`.
pub fn parse(text: &str) -> Result<Command, Error> {
    let bad = |why: &str| Error::Monitor {
        cmd: text.to_string(),
        why: why.to_string(),
    };
    let mut words = text.split_whitespace();
    let cmd = match words.next() {
        Some("where") => Command::Where,
        Some("goto") => {
            let p = words.next().ok_or_else(|| bad("goto needs a position"))?;
            Command::Goto(
                p.parse()
                    .map_err(|e: replayer::Error| bad(&e.to_string()))?,
            )
        }
        Some("checkpoint") => Command::Checkpoint,
        Some("events") => Command::Events(match words.next() {
            Some(n) => n.parse().map_err(|_| bad("events takes a count"))?,
            None => DEFAULT_EVENTS,
        }),
        Some("stats") => Command::Stats,
        Some("help") | None => Command::Help,
        Some(_) => return Err(bad("unknown command; try `monitor help`")),
    };
    if words.next().is_some() {
        return Err(bad("too many arguments"));
    }
    Ok(cmd)
}

/// Runs one command; its output (or its error) goes to gdb's console.
pub fn run(target: &mut ReplayTarget, cmd: Command) -> Vec<String> {
    let tl = target.timeline();
    let here = |tl: &mut replayer::Timeline| {
        tl.position()
            .map_or_else(|e| format!("unknown ({e})"), |p| p.to_string())
    };
    match cmd {
        Command::Where => {
            let (next, total) = (tl.next_event(), tl.events().len());
            let mut out = vec![format!(
                "{} (next event {next} of {total}), Thread 1.{} running",
                here(tl),
                target.current_tid()
            )];
            if let Some(e) = &target.last_error {
                out.push(format!("last error: {e}"));
            }
            out
        }
        Command::Goto(p) => match tl.seek(&p) {
            Ok(()) => vec![
                format!("now at {}", here(tl)),
                "gdb still shows the old state: use `goto` (not `monitor goto`), or \
                 `maint flush register-cache` and `info threads`"
                    .into(),
            ],
            Err(e) => vec![Error::timeline("goto", p, e).to_string()],
        },
        Command::Checkpoint => match tl.checkpoint() {
            Ok(p) => vec![format!("checkpoint at {p}")],
            Err(e) => vec![Error::timeline("checkpoint", here(tl), e).to_string()],
        },
        Command::Events(n) => {
            let first = tl.next_event();
            let evs = tl.events();
            // Past usize there are no events to list (the list is in memory).
            let skip = usize::try_from(first).unwrap_or(usize::MAX);
            let mut out: Vec<String> = evs
                .iter()
                .enumerate()
                .skip(skip)
                .take(n)
                .map(|(i, ev)| format!("e{i}: {}", replayer::describe(ev)))
                .collect();
            if out.is_empty() {
                out.push(format!("no events after e{first}"));
            }
            out
        }
        Command::Stats => {
            let l = target.latency.lines();
            if l.is_empty() {
                vec!["nothing run yet".into()]
            } else {
                l
            }
        }
        Command::Help => HELP.lines().map(String::from).collect(),
    }
}

impl MonitorCmd for ReplayTarget {
    fn handle_monitor_cmd(&mut self, cmd: &[u8], mut out: ConsoleOutput<'_>) -> Result<(), Error> {
        let text = String::from_utf8_lossy(cmd);
        // Errors are the user's typing, never the session's end: print them.
        let lines = match parse(&text) {
            Ok(c) => run(self, c),
            Err(e) => vec![e.to_string()],
        };
        for l in lines {
            outputln!(out, "{l}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse("where").unwrap(), Command::Where);
        assert_eq!(
            parse(" goto e12+t345+s2 ").unwrap(),
            Command::Goto("e12+t345+s2".parse().unwrap())
        );
        assert_eq!(parse("events").unwrap(), Command::Events(DEFAULT_EVENTS));
        assert_eq!(parse("events 3").unwrap(), Command::Events(3));
        assert_eq!(parse("").unwrap(), Command::Help);
    }

    #[test]
    fn rejects_bad_commands() {
        for bad in ["goto", "goto x12", "events many", "where now", "frobnicate"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
