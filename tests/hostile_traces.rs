//! Hostile traces: each one is built here, through the trace crate, from a real recording
//! of /bin/true, and handed to the real `rewind replay`, `dump` and `analyze locks`. Each
//! command must exit non-zero with a message naming what is wrong, within
//! [`TIMEOUT`], leave nothing in its working directory or in the private TMPDIR it is
//! given (an unpacked pack is removed again), and run under `prlimit --as` of
//! [`AS_LIMIT`] bytes of address space, so that a decompression bomb or a huge
//! allocation fails the test rather than the machine. The peak resident set (GNU
//! `time`'s maximum RSS, from wait4) is printed for each run and must stay under
//! [`RSS_LIMIT_KIB`].

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use testsupport::Scratch;
use trace::pack::Entry;

const REWIND: &str = env!("CARGO_BIN_EXE_rewind");
/// Every hostile run must end within this.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Address-space limit each run gets (the rewind binary, its threads' stacks and malloc
/// arenas take ~300 MiB of it without touching it).
const AS_LIMIT: u64 = 1 << 30;
/// Peak resident set each run must stay under, in KiB.
const RSS_LIMIT_KIB: u64 = 128 << 10;

/// What one run did.
struct Outcome {
    code: Option<i32>,
    stderr: String,
    elapsed: Duration,
    peak_rss_kib: u64,
}

/// Runs `rewind ARGS` in `cwd` with TMPDIR=`tmp`, under the address-space limit, with
/// GNU time reporting its peak RSS. Fails the test if it outlives [`TIMEOUT`].
fn rewind_in(args: &[&OsStr], cwd: &Path, tmp: &Path) -> Outcome {
    use std::io::Read;
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let rss_file = fixture().root.join(format!(
        "rss-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={AS_LIMIT}"))
        .args(["--", "/usr/bin/time", "-f", "%M", "-o"])
        .arg(&rss_file)
        .arg(REWIND)
        .args(args)
        .current_dir(cwd)
        .env("TMPDIR", tmp)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = c.spawn().expect("spawning prlimit time rewind");
    let mut pipe = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "rewind {args:?} did not finish within {TIMEOUT:?}; killed\n{}",
                err.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let rss = std::fs::read_to_string(&rss_file).unwrap_or_default();
    let _ = std::fs::remove_file(&rss_file);
    // time writes "Command exited with non-zero status N" before the figure.
    let peak_rss_kib = rss
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from GNU time: {rss:?}"));
    let stderr = err.join().unwrap();
    // time exits with its child's status.
    Outcome {
        code: status.code(),
        stderr,
        elapsed,
        peak_rss_kib,
    }
}

fn rewind(args: &[&OsStr]) -> std::process::Output {
    let out = Command::new(REWIND)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rewind {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A zstd frame of RLE blocks that decompresses to `total` zero bytes (rounded down to
/// 128 KiB): 4 bytes per 128 KiB, so 100 GiB is 3.2 MB.
fn zstd_bomb(total: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 << 10;
    // Magic, frame header descriptor (no content size, not single-segment), window 128 KiB.
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38];
    let blocks = total / BLOCK;
    out.reserve((blocks * 4) as usize);
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = ((BLOCK as u32) << 3) | (1 << 1) | last; // RLE block
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.push(0);
    }
    out
}

/// Frames of the whole chunks in an events file: (offset, length, events). Read without
/// the reader's checks, so that it walks crafted chunks too.
fn chunks(events: &[u8]) -> Vec<(usize, usize, u64)> {
    let word = |o: usize| u32::from_le_bytes(events[o..o + 4].try_into().unwrap());
    let mut at = 0;
    let mut out = Vec::new();
    while at + trace::chunk::FRAME_LEN <= events.len() {
        let len = trace::chunk::FRAME_LEN + word(at + 4) as usize;
        out.push((at, len, u64::from(word(at + 12))));
        at += len;
    }
    out
}

/// Rewrites `dir/end` so that it matches the events file as it now is (what someone
/// crafting a trace would do), keeping the header digest.
fn reseal(dir: &Path, events_count: u64) {
    let events = std::fs::read(dir.join("events")).unwrap();
    let header = std::fs::read(dir.join("header")).unwrap();
    let end = trace::EndRecord {
        events: events_count,
        chunks: chunks(&events).len() as u64,
        events_bytes: events.len() as u64,
        events_sha256: sha256(&events),
        header_sha256: sha256(&header),
    };
    std::fs::write(dir.join("end"), end.encode(trace::FORMAT_VERSION)).unwrap();
}

/// Re-writes the trace in `from` into `to` through the trace writer, cutting a chunk
/// every `per_chunk` events.
fn rechunk(from: &Path, to: &Path, per_chunk: u64) {
    let r = trace::TraceReader::open(from).unwrap();
    let mut w = trace::TraceWriter::create(to).unwrap();
    w.write_header(r.header()).unwrap();
    for item in r.events().unwrap() {
        let (i, e) = item.unwrap();
        w.append(&e).unwrap();
        if (i + 1) % per_chunk == 0 {
            w.flush_chunk().unwrap();
        }
    }
    copy_dir(&from.join("blobs"), &to.join("blobs"));
    w.finish().unwrap();
}

/// A pack's table rows (offsets relative to the data after the table) and that data.
fn unpack_table(pack: &Path) -> (Vec<Entry>, Vec<u8>) {
    let bytes = std::fs::read(pack).unwrap();
    let toc_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as u64;
    let start = 20 + toc_len + 32;
    let mut rows = trace::pack::Pack::open(pack).unwrap().entries().to_vec();
    for r in &mut rows {
        r.offset -= start;
    }
    (rows, bytes[start as usize..].to_vec())
}

/// Writes a pack of `rows` over `data` (the layout of `trace::pack`), with the entry
/// count field set to `count` if given, and a correct table hash.
fn write_pack(out: &Path, rows: &[Entry], data: &[u8], count: Option<u32>) {
    let body_len: usize = rows.iter().map(|r| 2 + r.name.len() + 1 + 8 + 8 + 32).sum();
    let start = (20 + body_len + 32) as u64;
    let mut head = Vec::new();
    head.extend_from_slice(&trace::pack::PACK_MAGIC);
    head.extend_from_slice(&trace::pack::PACK_VERSION.to_le_bytes());
    head.extend_from_slice(&count.unwrap_or(rows.len() as u32).to_le_bytes());
    head.extend_from_slice(&(body_len as u32).to_le_bytes());
    for r in rows {
        head.extend_from_slice(&(r.name.len() as u16).to_le_bytes());
        head.extend_from_slice(r.name.as_bytes());
        head.push(u8::from(r.compressed));
        head.extend_from_slice(&(r.offset + start).to_le_bytes());
        head.extend_from_slice(&r.len.to_le_bytes());
        head.extend_from_slice(&r.sha256);
    }
    let h = sha256(&head);
    head.extend_from_slice(&h);
    head.extend_from_slice(data);
    std::fs::write(out, head).unwrap();
}

/// The real recordings everything is built from.
struct Fixture {
    _scratch: Scratch,
    /// `rewind record -- /bin/true`.
    good: PathBuf,
    /// Its pack.
    good_pack: PathBuf,
    /// `rewind record -- /bin/true other`: another header.
    other: PathBuf,
    /// `good` re-chunked at 10 events a chunk.
    chunked: PathBuf,
    root: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let s = Scratch::new("hostile");
        let root = s.0.clone();
        let good = root.join("good");
        let other = root.join("other");
        for (dir, arg) in [(&good, None), (&other, Some("other"))] {
            let mut args: Vec<&OsStr> = vec![
                "record".as_ref(),
                "-o".as_ref(),
                dir.as_os_str(),
                "--".as_ref(),
                "/bin/true".as_ref(),
            ];
            args.extend(arg.map(OsStr::new));
            rewind(&args);
        }
        let good_pack = root.join("good.rwpack");
        rewind(&[
            "pack".as_ref(),
            good.as_os_str(),
            "-o".as_ref(),
            good_pack.as_os_str(),
        ]);
        let chunked = root.join("chunked");
        rechunk(&good, &chunked, 10);
        // The bomb is what it claims to be.
        let small = zstd_bomb(1 << 20);
        assert_eq!(zstd::decode_all(&small[..]).unwrap(), vec![0u8; 1 << 20]);
        Fixture {
            _scratch: s,
            good,
            good_pack,
            other,
            chunked,
            root,
        }
    })
}

/// A copy of the good trace to damage, named `name`.
fn copy_of_good(name: &str) -> PathBuf {
    let f = fixture();
    let dir = f.root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&f.good, &dir);
    dir
}

fn is_empty_dir(d: &Path) -> bool {
    std::fs::read_dir(d).unwrap().next().is_none()
}

/// Runs replay, dump and analyze locks on `trace` and checks each refusal.
fn assert_refused(case: &str, trace: &Path, needles: &[&str]) {
    let f = fixture();
    let cwd = f.root.join(format!("{case}-cwd"));
    let tmp = f.root.join(format!("{case}-tmp"));
    for d in [&cwd, &tmp] {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).unwrap();
    }
    let t = trace.as_os_str();
    let commands: [&[&OsStr]; 3] = [
        &["replay".as_ref(), t],
        &["dump".as_ref(), t],
        &["analyze".as_ref(), "locks".as_ref(), t],
    ];
    for args in commands {
        let o = rewind_in(args, &cwd, &tmp);
        eprintln!(
            "{case}: rewind {:?}: exit {:?} in {:.3} s, peak RSS {} KiB",
            args[0],
            o.code,
            o.elapsed.as_secs_f64(),
            o.peak_rss_kib
        );
        assert!(
            o.code.is_some_and(|c| c != 0),
            "{case}: rewind {args:?} must fail, exit {:?}\n{}",
            o.code,
            o.stderr
        );
        for n in needles {
            assert!(
                o.stderr.contains(n),
                "{case}: rewind {args:?}: stderr lacks {n:?}\n{}",
                o.stderr
            );
        }
        assert!(
            !o.stderr.contains("panicked"),
            "{case}: rewind {args:?} panicked\n{}",
            o.stderr
        );
        assert!(
            o.peak_rss_kib < RSS_LIMIT_KIB,
            "{case}: rewind {args:?}: peak RSS {} KiB",
            o.peak_rss_kib
        );
        assert!(
            is_empty_dir(&cwd),
            "{case}: rewind {args:?} wrote into its cwd"
        );
        assert!(
            is_empty_dir(&tmp),
            "{case}: rewind {args:?} left {:?} in TMPDIR",
            std::fs::read_dir(&tmp)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        );
    }
}

/// One hand-made chunk that claims 134 217 728 events in 16 MiB of zeros (the most a
/// chunk may hold), a few kB compressed, bound to the trace's own header.
fn count_bomb(dir: &Path) {
    let events = std::fs::read(dir.join("events")).unwrap();
    let binding = u32::from_le_bytes(events[28..32].try_into().unwrap());
    let payload = zstd_bomb(16 << 20);
    let mut frame = Vec::new();
    frame.extend_from_slice(b"RWEV");
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&(16u32 << 20).to_le_bytes());
    frame.extend_from_slice(&(1u32 << 27).to_le_bytes());
    frame.extend_from_slice(&0u64.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&frame);
    crc.update(&payload);
    frame.extend_from_slice(&crc.finalize().to_le_bytes());
    frame.extend_from_slice(&binding.to_le_bytes());
    frame.extend_from_slice(&payload);
    std::fs::write(dir.join("events"), frame).unwrap();
}

#[test]
fn event_count_bomb_is_refused_at_its_chunk() {
    let dir = copy_of_good("count-bomb");
    count_bomb(&dir);
    // Incomplete, so that no end record stands between the reader and the chunk.
    std::fs::remove_file(dir.join("end")).unwrap();
    std::fs::rename(dir.join("version"), dir.join("incomplete")).unwrap();
    assert_refused("count-bomb", &dir, &["claims 134217728 events"]);
}

#[test]
fn event_count_bomb_with_a_matching_end_record_is_refused() {
    let dir = copy_of_good("count-bomb-sealed");
    count_bomb(&dir);
    reseal(&dir, 1 << 27);
    assert_refused(
        "count-bomb-sealed",
        &dir,
        &["end record claims 134217728 events"],
    );
}

#[test]
fn blob_decompression_bomb_in_a_pack_is_refused() {
    let f = fixture();
    let dir = copy_of_good("blob-bomb");
    // The largest file the program mapped (libc): its blob becomes 100 GiB of zeros.
    let r = trace::TraceReader::open(&dir).unwrap();
    let (hash, size) = r
        .events()
        .unwrap()
        .filter_map(|e| match e.unwrap().1 {
            trace::Event::Syscall(trace::SyscallEvent {
                mapping: Some(m), ..
            }) => Some((m.file, m.file_size)),
            _ => None,
        })
        .max_by_key(|m| m.1)
        .expect("/bin/true maps a file");
    drop(r);
    std::fs::write(dir.join("blobs").join(hash.hex()), zstd_bomb(100 << 30)).unwrap();
    let pack = f.root.join("blob-bomb.rwpack");
    let r = trace::TraceReader::open(&f.good).unwrap();
    let binary = PathBuf::from(String::from_utf8(r.header().binary.path.clone()).unwrap());
    trace::pack::write(&dir, &binary, &pack).unwrap();
    let len = std::fs::metadata(&pack).unwrap().len();
    assert!(len < 5 << 20, "the pack is {len} bytes");
    assert_refused(
        "blob-bomb",
        &pack,
        &[
            &hash.hex(),
            &format!("decompresses to more than the {size} bytes"),
        ],
    );
}

#[test]
fn binary_decompression_bomb_in_a_pack_is_refused() {
    let f = fixture();
    let (mut rows, mut data) = unpack_table(&f.good_pack);
    let bomb = zstd_bomb(100 << 30);
    let bin = rows.iter_mut().find(|r| r.name == "binary").unwrap();
    bin.offset = data.len() as u64;
    bin.len = bomb.len() as u64;
    bin.sha256 = sha256(&bomb);
    data.extend_from_slice(&bomb);
    let pack = f.root.join("binary-bomb.rwpack");
    write_pack(&pack, &rows, &data, None);
    assert_refused(
        "binary-bomb",
        &pack,
        &["`binary`", "decompresses to more than the"],
    );
}

#[test]
fn pack_table_amplification_is_refused() {
    let f = fixture();
    let (mut rows, data) = unpack_table(&f.good_pack);
    let big = rows.iter().max_by_key(|r| r.len).unwrap().clone();
    assert!(big.len > 500 << 10, "largest region is {} bytes", big.len);
    for i in 0..1000u32 {
        rows.push(Entry {
            name: format!("blobs/{i:064x}"),
            ..big.clone()
        });
    }
    let pack = f.root.join("amplified.rwpack");
    write_pack(&pack, &rows, &data, None);
    assert_refused("amplified", &pack, &["overlap"]);
}

#[test]
fn pack_table_count_of_0xffffffff_is_refused() {
    let f = fixture();
    let (rows, data) = unpack_table(&f.good_pack);
    let pack = f.root.join("count.rwpack");
    write_pack(&pack, &rows, &data, Some(u32::MAX));
    assert_refused("table-count", &pack, &["4294967295 entries cannot fit"]);
}

#[test]
fn complete_trace_cut_at_a_chunk_boundary_is_refused() {
    let f = fixture();
    // The re-chunked trace itself is sound: it replays.
    let ok = rewind_in(
        &["replay".as_ref(), f.chunked.as_os_str()],
        &f.root,
        &f.root,
    );
    assert_eq!(ok.code, Some(0), "{}", ok.stderr);
    let dir = f.root.join("cut");
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&f.chunked, &dir);
    let events = std::fs::read(dir.join("events")).unwrap();
    let c = chunks(&events);
    assert!(c.len() >= 4, "{} chunks", c.len());
    let (at, len, _) = c[2];
    std::fs::write(dir.join("events"), &events[..at + len]).unwrap();
    let expected: u64 = c.iter().map(|c| c.2).sum();
    let found: u64 = c[..3].iter().map(|c| c.2).sum();
    assert_refused(
        "cut",
        &dir,
        &[
            "truncated",
            &format!("{expected} events expected"),
            &format!("{found} found"),
        ],
    );
}

#[test]
fn complete_trace_with_an_empty_events_file_is_refused() {
    let dir = copy_of_good("empty-events");
    std::fs::write(dir.join("events"), b"").unwrap();
    assert_refused(
        "empty-events",
        &dir,
        &["truncated", "events expected", "0 found"],
    );
}

#[test]
fn events_file_of_another_trace_is_refused() {
    let f = fixture();
    let dir = copy_of_good("swapped");
    std::fs::copy(f.other.join("events"), dir.join("events")).unwrap();
    let n = trace::TraceReader::open(&f.other)
        .unwrap()
        .end_record()
        .unwrap()
        .events;
    // Even with an end record made to match, the chunks are bound to the other header.
    reseal(&dir, n);
    assert_refused("swapped", &dir, &["bound to another header"]);
}

#[test]
fn trace_of_format_version_1_is_refused() {
    let dir = copy_of_good("version-1");
    std::fs::write(dir.join("version"), "1\n").unwrap();
    assert_refused(
        "version-1",
        &dir,
        &[
            "format version 1 is older than this rewind reads",
            "re-record",
        ],
    );
}

#[test]
fn incomplete_trace_is_said_to_be_incomplete_by_every_command() {
    let f = fixture();
    let dir = copy_of_good("incomplete");
    std::fs::remove_file(dir.join("end")).unwrap();
    std::fs::rename(dir.join("version"), dir.join("incomplete")).unwrap();
    let n = trace::TraceReader::open(&f.good)
        .unwrap()
        .end_record()
        .unwrap()
        .events;
    let t = dir.as_os_str();
    let commands: [&[&OsStr]; 3] = [
        &["replay".as_ref(), t],
        &["dump".as_ref(), t],
        &["analyze".as_ref(), "locks".as_ref(), t],
    ];
    for args in commands {
        let o = rewind_in(args, &f.root, &f.root);
        assert!(
            o.stderr
                .contains("trace is incomplete (the recorder did not close it)")
                && o.stderr.contains(&format!("{n} events read")),
            "rewind {args:?}: exit {:?}\n{}",
            o.code,
            o.stderr
        );
    }
}
