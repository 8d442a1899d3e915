//! What a guest kernel's console says about how it ended, for the reports Linux's
//! conventions fix (umk follows them): a hung-task detector that panics
//! (`kernel/hung_task.c`: "INFO: task NAME:PID blocked for more than N seconds." then,
//! with `hung_task_panic`, "Kernel panic - not syncing: hung_task: blocked tasks").
//!
//! To a user a deadlock the guest's own watchdog turned into a panic is a hang, not a
//! crash; `rewind record --until hang` reads the console through this to say so.

/// The panic line a hung-task detector ends with.
const HUNG_TASK_PANIC: &[u8] = b"Kernel panic - not syncing: hung_task";
/// How each blocked task is reported before it.
const HUNG_TASK_INFO: &[u8] = b"INFO: task ";
const BLOCKED_FOR: &[u8] = b" blocked for more than ";

/// When `console` ends in a hung-task panic, the first blocked task's report line (or the
/// panic line when no task was named).
pub fn hung_task_panic(console: &[u8]) -> Option<String> {
    let mut first_task = None;
    let mut panicked = None;
    for line in console.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if first_task.is_none()
            && find(line, HUNG_TASK_INFO).is_some()
            && find(line, BLOCKED_FOR).is_some()
        {
            first_task = Some(line);
        }
        if let Some(at) = find(line, HUNG_TASK_PANIC) {
            panicked = Some(&line[at..]);
        }
    }
    let panicked = panicked?;
    let shown = first_task.map_or(panicked, |t| &t[find(t, HUNG_TASK_INFO).unwrap_or(0)..]);
    Some(String::from_utf8_lossy(shown).trim_end().to_string())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_task_panic_names_the_first_blocked_task() {
        let console =
            b"umk# bug abba\r\n[   31.000] INFO: task abba-1:3 blocked for more than 30 seconds.\n\
            [   31.000] INFO: task abba-2:4 blocked for more than 30 seconds.\n\
            Kernel panic - not syncing: hung_task: blocked tasks\n";
        assert_eq!(
            hung_task_panic(console).as_deref(),
            Some("INFO: task abba-1:3 blocked for more than 30 seconds.")
        );
    }

    #[test]
    fn a_warning_without_the_panic_or_another_panic_is_not_one() {
        assert_eq!(
            hung_task_panic(b"INFO: task a:1 blocked for more than 2 seconds.\n"),
            None
        );
        assert_eq!(
            hung_task_panic(b"Kernel panic - not syncing: Attempted to kill init!\n"),
            None
        );
        assert_eq!(
            hung_task_panic(b"Kernel panic - not syncing: hung_task: blocked tasks").as_deref(),
            Some("Kernel panic - not syncing: hung_task: blocked tasks")
        );
    }
}
