//! System call outputs written into memory mapped PROT_WRITE without PROT_READ (Linux UML
//! maps its kernel stacks so): the recorder records all of them, and replay writes them
//! back there.

use crate::common::*;
use trace::{Event, ExitStatus};

const RUNS: usize = 3;

/// Reads its input file into a write-only page, then makes the page readable and prints
/// it; a second read fills part of the next, also write-only, page.
const WRITE_ONLY: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(0, 2 * page, PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 10;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) return 11;
    ssize_t a = read(fd, p, page);
    ssize_t b = read(fd, p + a, page);
    close(fd);
    if (a <= 0 || b <= 0) return 12;
    if (mprotect(p, 2 * page, PROT_READ) != 0) return 13;
    fwrite(p, 1, a + b, stdout);
    printf("%zd + %zd bytes\n", a, b);
    return 0;
}
"#;

#[test]
fn read_into_a_write_only_page_records_every_byte_and_replays() {
    let d = tempfile::tempdir().unwrap();
    let exe = cc(d.path(), "write_only", WRITE_ONLY);
    let input = d.path().join("input.txt");
    let content: String = (0..600).map(|i| format!("line {i:04}\n")).collect();
    std::fs::write(&input, &content).unwrap();
    let (rec, t, out) = record(d.path(), &exe, &[input.to_str().unwrap()]);
    assert_eq!(rec.exit, ExitStatus::Exited(0));
    assert!(
        out.starts_with(content.as_bytes()),
        "recorded run printed the file"
    );
    // Both reads into the write-only pages (the program's only page-sized reads; the
    // anonymous mmap itself runs untraced) were recorded whole.
    let reads: Vec<(i64, u64)> = events(&t)
        .iter()
        .filter_map(|e| match e {
            Event::Syscall(s) if s.nr == libc::SYS_read as u64 && s.args[2] == 4096 => {
                Some((s.ret, s.writes.iter().map(|w| w.data.len()).sum::<u64>()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(reads.len(), 2, "{reads:?}");
    for (ret, recorded) in &reads {
        assert_eq!(*ret as u64, *recorded, "a read recorded short: {reads:?}");
    }
    std::fs::remove_file(&input).unwrap();
    for i in 0..RUNS {
        let o = replay(&t);
        assert_eq!(o.exit, Some(rec.exit), "run {i}");
        assert!(o.console == out, "run {i}: console differs");
    }
}
