//! A pthread ABBA deadlock found by chaos and shown by the real gdb: two threads take two
//! mutexes in opposite order, with a write between the two locks. Recorded plainly, one
//! thread runs its whole loop before the other starts (one task at a time, switching
//! only where one waits), and the program ends; `--chaos` moves task switches to syscall
//! exits, and `--until hang` keeps the first seed that deadlocks. The trace replays to
//! the same point every time, and `thread apply all bt` shows each thread blocked in
//! `pthread_mutex_lock` on the mutex the other holds, called from its own function.

mod common;

use rewind_gdb::ServerOptions;

const ABBA: &str = r#"
#include <pthread.h>
#include <unistd.h>
static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;
static void *ab(void *x) {
    (void)x;
    for (int i = 0; i < 50; i++) {
        pthread_mutex_lock(&a);
        write(1, "a", 1);
        pthread_mutex_lock(&b);
        pthread_mutex_unlock(&b);
        pthread_mutex_unlock(&a);
    }
    return 0;
}
static void *ba(void *x) {
    (void)x;
    for (int i = 0; i < 50; i++) {
        pthread_mutex_lock(&b);
        write(1, "b", 1);
        pthread_mutex_lock(&a);
        pthread_mutex_unlock(&a);
        pthread_mutex_unlock(&b);
    }
    return 0;
}
int main(void) {
    pthread_t x, y;
    pthread_create(&x, 0, ab, 0);
    pthread_create(&y, 0, ba, 0);
    pthread_join(x, 0);
    pthread_join(y, 0);
    write(1, "\nno deadlock\n", 13);
    return 0;
}
"#;

#[test]
fn chaos_finds_a_pthread_abba_deadlock_that_replays_and_gdb_shows_both_threads_blocked() {
    let d = tempfile::tempdir().unwrap();
    let exe = testsupport::host::cc_with(d.path(), "abba", ABBA, &["-g", "-pthread"]);

    let (plain, _, out) = testsupport::record::record(d.path(), &exe, &[]);
    assert_eq!(plain.exit, trace::ExitStatus::Exited(0));
    assert!(
        String::from_utf8_lossy(&out).ends_with("no deadlock\n"),
        "{out:?}"
    );

    let trace = d.path().join("hung");
    let mut opts = recorder::RecordOptions::new(exe.as_os_str(), std::iter::empty::<&str>());
    opts.out_dir = Some(trace.clone());
    opts.stdout = Some(
        std::fs::File::create(d.path().join("hung.stdout"))
            .unwrap()
            .into(),
    );
    opts.timeout = Some(std::time::Duration::from_secs(1));
    opts.chaos = Some(recorder::ChaosOptions::new(1));
    let until = recorder::until::UntilOptions {
        goal: recorder::until::Goal::Hang,
        first_seed: 1,
        max_runs: 40,
    };
    let found = recorder::until::record_until(&opts, until, |_, _| {})
        .unwrap_or_else(|e| panic!("no deadlock found: {e}"));
    assert!(found.recording.timed_out);
    let events = testsupport::record::events(&trace);
    let switches = events
        .iter()
        .filter(|e| matches!(e, trace::Event::Switch { .. }))
        .count();
    assert!(
        switches >= 3,
        "chaos moved the schedule: {switches} switches"
    );

    for _ in 0..testsupport::repetitions(3, 20) {
        let r = replayer::replay(
            &trace,
            replayer::ReplayOptions {
                console: replayer::Console::Buffer(Vec::new()),
                pace: false,
            },
        )
        .expect("the deadlock replays");
        assert_eq!(r.exit, None);
        assert_eq!(
            r.events,
            events.len() as u64 - 1,
            "every event up to the hang"
        );
    }

    let (gdb, _) = common::gdb_session(
        ServerOptions::local(trace.clone(), 0),
        &["continue", "info threads", "thread apply all bt"],
    );
    // Each of the two threads waits for the mutex the other holds, from its own loop.
    for (function, wanted) in [("ab", "<b>"), ("ba", "<a>")] {
        let thread = gdb
            .split("\nThread ")
            .find(|t| t.contains(&format!(" in {function} (")))
            .unwrap_or_else(|| panic!("no thread in {function}:\n{gdb}"));
        assert!(
            thread.contains("pthread_mutex_lock") && thread.contains(wanted),
            "{function} is not blocked on {wanted}:\n{thread}"
        );
    }
    assert!(gdb.contains("main () at"), "{gdb}");
    assert!(!gdb.contains("Remote connection closed"), "{gdb}");
}
