//! A deterministic mutation fuzzer for the trace and pack readers, on stable Rust.
//!
//! The seed corpus is built here: a small trace directory (several chunks, inline and
//! blob data, a file mapping) and its pack. Each iteration mutates one file of the
//! directory, or the pack, with one of: bit flips, byte sets, truncation, an edit of a
//! length or count field (chunk frames, header frame, end record, pack frame and rows),
//! duplication of a chunk, insertion of bytes. The mutant is then read the way the
//! commands read a trace: `trace::open`, the header, every event (formatted as `dump`
//! does), every blob the events refer to; packs are also opened and unpacked. Any result
//! is fine except a panic, a mutant taking longer than [`PER_MUTANT`], or the process's
//! peak RSS exceeding [`RSS_LIMIT_KIB`].
//!
//! `cargo test --release -p trace --test fuzz` runs [`DEFAULT_ITERS`] iterations (a few
//! seconds); `REWIND_FUZZ_ITERS=N` runs N, and `REWIND_FUZZ_SEED=S` starts elsewhere.
//! A failing mutant is written to `target/fuzz-failure-*` with how it was made.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trace::*;

const DEFAULT_ITERS: u64 = 400;
const PER_MUTANT: Duration = Duration::from_secs(5);
const RSS_LIMIT_KIB: u64 = 512 << 10;

/// xorshift64*: deterministic, and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const BINARY: &[u8] = b"\x7fELF not really, but the pack only checks size and hash";

fn header() -> Header {
    Header {
        format_version: FORMAT_VERSION,
        recorder_version: "fuzz".into(),
        program: b"/bin/prog".to_vec(),
        argv: vec![b"prog".to_vec(), b"-x".to_vec()],
        env: vec![b"A=1".to_vec()],
        cwd: b"/".to_vec(),
        binary: BinaryId {
            path: b"/bin/prog".to_vec(),
            build_id: Some(vec![1, 2, 3]),
            sha256: BlobHash::of(BINARY),
            size: BINARY.len() as u64,
        },
        script: None,
        signals: InheritedSignals::default(),
        auxv: vec![(6, 4096), (25, 0x7fff_0000)],
        vdso_hidden_at: None,
        at_random: Some((RemoteAddr(0x7fff_0000), [7; 16])),
        initial_regs: Gprs::default(),
        initial_mappings: vec![],
        cpuid: CpuidInfo {
            faulting: false,
            records: vec![CpuidRecord {
                leaf: 0,
                subleaf: 0,
                answer: [1, 2, 3, 4],
            }],
        },
        tick_abi: None,
        seccomp_filter: vec![1, 2, 3],
        tsc_trapped: true,
        cpu: Some(0),
        started_unix: 0,
    }
}

/// The seed trace directory in `dir`, and the binary file the pack needs.
fn seed(dir: &Path, binary: &Path) {
    std::fs::write(binary, BINARY).unwrap();
    let mut w = TraceWriter::create(dir).unwrap();
    w.write_header(&header()).unwrap();
    let big: Vec<u8> = (0..9000u32).map(|i| (i * 7) as u8).collect();
    let blob = w.put_blob(&big).unwrap();
    let file = w.put_blob(BINARY).unwrap();
    for i in 0..240u64 {
        let data = if i % 40 == 0 {
            Data::Blob {
                hash: blob,
                len: big.len() as u64,
            }
        } else {
            Data::Inline(vec![i as u8; (i % 50) as usize])
        };
        let mapping = (i == 7).then(|| FileMapping {
            path: b"/bin/prog".to_vec(),
            file,
            file_size: BINARY.len() as u64,
            offset: 0,
            len: 4096,
        });
        let e = match i % 5 {
            4 => Event::Rdtsc(RdtscEvent {
                rip: RemoteAddr(0x401000),
                value: i,
                aux: Some(1),
                ticks: i,
            }),
            _ => Event::Syscall(SyscallEvent {
                nr: if mapping.is_some() { 9 } else { 0 },
                args: [3, 0x1000, 64, 0, 0, 0],
                ret: (i % 64) as i64,
                ticks: i,
                rip: RemoteAddr(0x401000 + i),
                path: Some(b"/etc/passwd".to_vec()),
                writes: vec![MemWrite {
                    addr: RemoteAddr(0x1000),
                    data,
                }],
                mapping,
                output: None,
            }),
        };
        w.append(&e).unwrap();
        if i % 60 == 59 {
            w.flush_chunk().unwrap();
        }
    }
    w.append(&Event::Exit(ExitStatus::Exited(0))).unwrap();
    w.finish().unwrap();
}

/// Reads `path` as every command would; errors are expected, panics are not.
fn exercise(path: &Path, unpack_to: &Path) {
    if path.is_file() {
        if let Ok(mut p) = pack::Pack::open(path) {
            let _ = p.entries().len();
            let _ = p.unpack(unpack_to);
            let _ = std::fs::remove_dir_all(unpack_to);
        }
    }
    let Ok(r) = trace::open(path) else {
        return;
    };
    let _ = format!("{:?}", r.header());
    let _ = r.chaos();
    let Ok(mut events) = r.events() else {
        return;
    };
    let mut blobs = BlobChecker::default();
    let mut tasks = dump::Tasks::new(None);
    for item in events.by_ref() {
        let Ok((i, e)) = item else {
            break;
        };
        let task = tasks.on(&e);
        let _ = dump::task_line(i, task, &e);
        let _ = serde_json::to_string(&dump::json(i, task, &e));
        let _ = blobs.check(&r, &e);
        for (hash, len) in e.blobs() {
            let _ = r.blob(&hash, len);
        }
    }
    let _ = r.incomplete_note(&events);
}

/// Offsets of the chunks in an events file, walked by their length fields.
fn chunk_starts(events: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    while at + chunk::FRAME_LEN <= events.len() {
        out.push(at);
        let len = u32::from_le_bytes(events[at + 4..at + 8].try_into().unwrap()) as usize;
        at += chunk::FRAME_LEN + len;
    }
    out
}

/// Places of length and count fields worth editing in `name`'s bytes: (offset, width).
fn length_fields(name: &str, bytes: &[u8]) -> Vec<(usize, usize)> {
    match name {
        "events" => chunk_starts(bytes)
            .into_iter()
            .flat_map(|c| [(c + 4, 4), (c + 8, 4), (c + 12, 4), (c + 16, 8)])
            .collect(),
        "header" => vec![(4, 4), (8, 4)],
        "end" => vec![(4, 4), (8, 8), (16, 8), (24, 8)],
        "pack" => {
            let mut f = vec![(8, 4), (12, 4), (16, 4)];
            // Row fields: name length, offset, length.
            let mut p = 20usize;
            while p + 2 <= bytes.len() && f.len() < 64 {
                let n = u16::from_le_bytes([bytes[p], bytes[p + 1]]) as usize;
                f.push((p, 2));
                let at = p + 2 + n + 1;
                f.push((at, 8));
                f.push((at + 8, 8));
                p = at + 16 + 32;
            }
            f
        }
        _ => vec![],
    }
}

fn interesting(rng: &mut Rng, old: u64) -> u64 {
    match rng.below(8) {
        0 => 0,
        1 => 1,
        2 => u64::from(u32::MAX),
        3 => u64::MAX,
        4 => old.wrapping_mul(2),
        5 => old.wrapping_add(1),
        6 => old.wrapping_sub(1),
        _ => 1 << rng.below(64),
    }
}

/// One mutation of `bytes` (the file `name`); returns what it did.
fn mutate(rng: &mut Rng, name: &str, bytes: &mut Vec<u8>) -> String {
    let len = bytes.len();
    match rng.below(7) {
        0 if len > 0 => {
            let n = 1 + rng.below(4);
            let mut at = Vec::new();
            for _ in 0..n {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
                at.push(i);
            }
            format!("bit flips at {at:?}")
        }
        1 if len > 0 => {
            let i = rng.below(len);
            let v = [0u8, 0xff, 0x7f, 0x80][rng.below(4)];
            bytes[i] = v;
            format!("byte {i} set to {v:#x}")
        }
        2 => {
            let to = rng.below(len + 1);
            bytes.truncate(to);
            format!("truncated to {to} bytes")
        }
        3 => {
            let fields = length_fields(name, bytes);
            if fields.is_empty() {
                return mutate(rng, name, bytes);
            }
            let (at, width) = fields[rng.below(fields.len())];
            if at + width > len {
                return mutate(rng, name, bytes);
            }
            let mut old = [0u8; 8];
            old[..width].copy_from_slice(&bytes[at..at + width]);
            let v = interesting(rng, u64::from_le_bytes(old));
            bytes[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
            format!("length field at {at} ({width} bytes) set to {v:#x}")
        }
        4 if name == "events" => {
            let starts = chunk_starts(bytes);
            if starts.is_empty() {
                return mutate(rng, name, bytes);
            }
            let k = rng.below(starts.len());
            let end = starts.get(k + 1).copied().unwrap_or(len).min(len);
            let chunk = bytes[starts[k]..end].to_vec();
            let at = starts[rng.below(starts.len())];
            bytes.splice(at..at, chunk);
            format!("chunk {k} duplicated before byte {at}")
        }
        5 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(64);
            let fill: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, fill);
            format!("{n} random bytes inserted at {at}")
        }
        _ if len > 8 => {
            // Swap two regions' worth of bytes: moves frames around.
            let a = rng.below(len - 4);
            let b = rng.below(len - 4);
            for k in 0..4 {
                bytes.swap(a + k, b + k);
            }
            format!("4 bytes at {a} and {b} swapped")
        }
        _ => {
            bytes.push(rng.next() as u8);
            "one byte appended".into()
        }
    }
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

fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn keep_failure(what: &str, mutant: &Path) -> PathBuf {
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(format!("fuzz-failure-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    if mutant.is_dir() {
        copy_dir(mutant, &out.join("trace"));
    } else {
        std::fs::copy(mutant, out.join("trace.rwpack")).unwrap();
    }
    std::fs::write(out.join("mutation.txt"), what).unwrap();
    out
}

#[test]
fn mutated_traces_and_packs_never_panic_hang_or_balloon() {
    let iters: u64 = std::env::var("REWIND_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ITERS);
    let seed_value: u64 = std::env::var("REWIND_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    let work = tempfile::tempdir().unwrap();
    let seed_dir = work.path().join("seed");
    let binary = work.path().join("prog");
    seed(&seed_dir, &binary);
    let seed_pack = work.path().join("seed.rwpack");
    pack::write(&seed_dir, &binary, &seed_pack).unwrap();
    // The seeds themselves read cleanly, so mutants start from something that works.
    let r = trace::open(&seed_pack).unwrap();
    assert_eq!(r.events().unwrap().filter(|e| e.is_ok()).count(), 241);
    r.check_blobs(
        &r.events()
            .unwrap()
            .map(|e| e.unwrap().1)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    drop(r);

    let mut files: Vec<String> = ["events", "header", "end", "version"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for e in std::fs::read_dir(seed_dir.join("blobs")).unwrap() {
        files.push(format!(
            "blobs/{}",
            e.unwrap().file_name().to_string_lossy()
        ));
    }
    let seed_pack_bytes = std::fs::read(&seed_pack).unwrap();
    let mut rng = Rng(seed_value | 1);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for iter in 0..iters {
        let mutant_dir = work.path().join("mutant");
        let mutant_pack = work.path().join("mutant.rwpack");
        let unpack_to = work.path().join("unpacked");
        let _ = std::fs::remove_dir_all(&mutant_dir);
        let (path, what) = if rng.below(3) == 0 {
            let mut bytes = seed_pack_bytes.clone();
            let what = mutate(&mut rng, "pack", &mut bytes);
            std::fs::write(&mutant_pack, &bytes).unwrap();
            (
                mutant_pack.clone(),
                format!("iteration {iter}: pack: {what}"),
            )
        } else {
            copy_dir(&seed_dir, &mutant_dir);
            let name = &files[rng.below(files.len())];
            let target = mutant_dir.join(name);
            let mut bytes = std::fs::read(&target).unwrap();
            let what = mutate(&mut rng, name.rsplit('/').next().unwrap(), &mut bytes);
            std::fs::write(&target, &bytes).unwrap();
            (
                mutant_dir.clone(),
                format!("iteration {iter}: {name}: {what}"),
            )
        };
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(|| exercise(&path, &unpack_to));
        let took = t.elapsed();
        slowest = slowest.max(took);
        if outcome.is_err() || took > PER_MUTANT {
            let kept = keep_failure(&what, &path);
            panic!(
                "{what}: {} after {took:?}; mutant kept in {}",
                if outcome.is_err() {
                    "panicked"
                } else {
                    "too slow"
                },
                kept.display()
            );
        }
        let rss = vm_hwm_kib();
        assert!(rss < RSS_LIMIT_KIB, "{what}: peak RSS reached {rss} KiB");
    }
    eprintln!(
        "fuzz: {iters} mutants in {:.1} s, slowest {:.1} ms, peak RSS {} KiB",
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64() * 1000.0,
        vm_hwm_kib()
    );
}
