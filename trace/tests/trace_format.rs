//! The trace format on disk: round trip, crash consistency, and refusal of damaged or
//! future traces with file and offset — never a panic.

use std::path::Path;

use trace::*;

fn header() -> Header {
    Header {
        format_version: FORMAT_VERSION,
        recorder_version: "test".into(),
        program: b"/bin/true".to_vec(),
        argv: vec![b"true".to_vec()],
        env: vec![b"A=1".to_vec()],
        cwd: b"/".to_vec(),
        binary: BinaryId {
            path: b"/bin/true".to_vec(),
            build_id: None,
            sha256: BlobHash::of(b"x"),
            size: 1,
        },
        script: None,
        signals: InheritedSignals::default(),
        auxv: vec![(6, 4096)],
        vdso_hidden_at: None,
        at_random: Some((RemoteAddr(0x7fff_0000), [7; 16])),
        initial_regs: Gprs::default(),
        initial_mappings: vec![],
        cpuid: CpuidInfo {
            faulting: false,
            records: vec![],
        },
        tick_abi: None,
        seccomp_filter: vec![1, 2, 3],
        tsc_trapped: true,
        cpu: Some(0),
        started_unix: 0,
    }
}

fn event(i: u64) -> Event {
    Event::Syscall(SyscallEvent {
        nr: 0,
        args: [3, 0x1000, 64, 0, 0, 0],
        ret: (i % 64) as i64,
        ticks: i,
        rip: RemoteAddr(0x401000 + i),
        path: None,
        writes: vec![MemWrite {
            addr: RemoteAddr(0x1000),
            data: Data::Inline(vec![i as u8; (i % 64) as usize]),
        }],
        mapping: None,
        output: None,
    })
}

fn write_trace(dir: &Path, n: u64, finish: bool) {
    let mut w = TraceWriter::create(dir).unwrap();
    w.write_header(&header()).unwrap();
    for i in 0..n {
        w.append(&event(i)).unwrap();
    }
    if finish {
        w.finish().unwrap();
    } else {
        w.flush_chunk().unwrap();
        std::mem::forget(w);
    }
}

fn read_all(dir: &Path) -> Result<Vec<Event>> {
    let r = TraceReader::open(dir)?;
    r.events()?.map(|e| e.map(|(_, e)| e)).collect()
}

#[test]
fn round_trip_over_many_chunks() {
    let d = tempfile::tempdir().unwrap();
    write_trace(d.path(), 10_000, true);
    let r = TraceReader::open(d.path()).unwrap();
    assert!(r.is_complete());
    assert_eq!(r.header(), &header());
    let evs: Vec<_> = r.events().unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(evs.len(), 10_000);
    for (i, (idx, e)) in evs.iter().enumerate() {
        assert_eq!(*idx, i as u64);
        assert_eq!(e, &event(i as u64));
    }
    assert!(!d.path().join("incomplete").exists());
}

#[test]
fn blobs_are_deduplicated_and_checked() {
    let d = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(d.path()).unwrap();
    w.write_header(&header()).unwrap();
    let a = w.put_blob(&[5u8; 10000]).unwrap();
    let before = w.stats().blob_bytes;
    let b = w.put_blob(&[5u8; 10000]).unwrap();
    assert_eq!(a, b);
    assert_eq!(w.stats().blob_bytes, before, "second copy not stored");
    w.finish().unwrap();
    let r = TraceReader::open(d.path()).unwrap();
    assert_eq!(r.blob(&a, 10000).unwrap(), vec![5u8; 10000]);
    // A damaged blob is refused by hash.
    let path = d.path().join("blobs").join(a.hex());
    std::fs::write(&path, zstd::encode_all(&[6u8; 10000][..], 3).unwrap()).unwrap();
    let e = r.blob(&a, 10000).unwrap_err().to_string();
    assert!(e.contains("do not match"), "{e}");
}

#[test]
fn partial_last_chunk_of_an_incomplete_trace_is_reported_not_fatal() {
    let d = tempfile::tempdir().unwrap();
    write_trace(d.path(), 100, false);
    let events = d.path().join("events");
    let whole = std::fs::metadata(&events).unwrap().len();
    // A second chunk cut off mid-write, as a SIGKILL would leave it (bound to the same
    // header as the first).
    let mut bytes = std::fs::read(&events).unwrap();
    let binding = u32::from_le_bytes(bytes[28..32].try_into().unwrap());
    let next = chunk::encode(&[1, 2, 3, 4, 5, 6, 7, 8], 1, 100, binding).unwrap();
    bytes.extend_from_slice(&next[..next.len() - 3]);
    std::fs::write(&events, bytes).unwrap();
    let r = TraceReader::open(d.path()).unwrap();
    assert!(!r.is_complete());
    let mut it = r.events().unwrap();
    let n = it.by_ref().inspect(|e| assert!(e.is_ok())).count();
    assert_eq!(n, 100);
    assert_eq!(it.partial_tail(), Some(whole));
}

#[test]
fn flipped_byte_is_corruption_with_offset() {
    let d = tempfile::tempdir().unwrap();
    write_trace(d.path(), 10_000, true);
    let events = d.path().join("events");
    let mut bytes = std::fs::read(&events).unwrap();
    let first_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    let second = chunk::FRAME_LEN + first_len;
    bytes[second + chunk::FRAME_LEN + 10] ^= 0x40;
    std::fs::write(&events, bytes).unwrap();
    let err = read_all(d.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Corrupt { offset, .. } if offset == second as u64),
        "{msg}"
    );
    assert!(msg.contains("events") && msg.contains("checksum"), "{msg}");
}

#[test]
fn truncated_complete_trace_is_refused() {
    let d = tempfile::tempdir().unwrap();
    write_trace(d.path(), 1000, true);
    let events = d.path().join("events");
    let len = std::fs::metadata(&events).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&events)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let msg = read_all(d.path()).unwrap_err().to_string();
    assert!(msg.contains("truncated at byte offset 0"), "{msg}");
}

#[test]
fn future_version_is_refused() {
    let d = tempfile::tempdir().unwrap();
    write_trace(d.path(), 3, true);
    std::fs::write(d.path().join("version"), "99\n").unwrap();
    let err = TraceReader::open(d.path()).unwrap_err();
    assert!(
        matches!(err, Error::FutureVersion { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer"));
}

#[test]
fn damaged_header_and_non_traces_are_refused() {
    let d = tempfile::tempdir().unwrap();
    write_trace(d.path(), 3, true);
    let h = d.path().join("header");
    let mut bytes = std::fs::read(&h).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&h, &bytes).unwrap();
    let msg = TraceReader::open(d.path()).unwrap_err().to_string();
    assert!(msg.contains("header") && msg.contains("checksum"), "{msg}");
    std::fs::write(&h, &bytes[..10]).unwrap();
    let msg = TraceReader::open(d.path()).unwrap_err().to_string();
    assert!(msg.contains("shorter"), "{msg}");
    let empty = tempfile::tempdir().unwrap();
    let msg = TraceReader::open(empty.path()).unwrap_err().to_string();
    assert!(msg.contains("not a rewind trace"), "{msg}");
}

#[test]
fn garbage_in_every_position_never_panics() {
    let d = tempfile::tempdir().unwrap();
    write_trace(d.path(), 300, true);
    let events = d.path().join("events");
    let orig = std::fs::read(&events).unwrap();
    for pos in (0..orig.len()).step_by(orig.len() / 200 + 1) {
        let mut b = orig.clone();
        b[pos] = b[pos].wrapping_add(0x55);
        std::fs::write(&events, &b).unwrap();
        assert!(
            read_all(d.path()).is_err(),
            "damage at {pos} went unnoticed"
        );
    }
}

fn chunk_ends(events: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    while at + chunk::FRAME_LEN <= events.len() {
        at += chunk::FRAME_LEN
            + u32::from_le_bytes(events[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push(at);
    }
    out
}

#[test]
fn complete_trace_cut_at_a_chunk_boundary_says_how_many_events_are_missing() {
    let d = tempfile::tempdir().unwrap();
    write_trace(d.path(), 10_000, true);
    let events = d.path().join("events");
    let bytes = std::fs::read(&events).unwrap();
    let ends = chunk_ends(&bytes);
    assert!(ends.len() >= 3);
    std::fs::write(&events, &bytes[..ends[0]]).unwrap();
    let err = TraceReader::open(d.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Truncated { .. }), "{msg}");
    assert!(
        msg.contains("10000 events expected") && msg.contains("4096 found"),
        "{msg}"
    );
    std::fs::write(&events, b"").unwrap();
    let msg = TraceReader::open(d.path()).unwrap_err().to_string();
    assert!(
        msg.contains("10000 events expected") && msg.contains(", 0 found"),
        "{msg}"
    );
}

#[test]
fn events_of_another_trace_are_refused_at_the_first_chunk() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_trace(a.path(), 100, false);
    let mut w = TraceWriter::create(b.path()).unwrap();
    let mut h = header();
    h.argv.push(b"other".to_vec());
    w.write_header(&h).unwrap();
    w.append(&event(0)).unwrap();
    w.flush_chunk().unwrap();
    std::mem::forget(w);
    std::fs::copy(b.path().join("events"), a.path().join("events")).unwrap();
    let err = read_all(a.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::Corrupt { offset: 0, .. }) && msg.contains("bound to another header"),
        "{msg}"
    );
}

#[test]
fn format_version_1_is_refused_as_older() {
    let d = tempfile::tempdir().unwrap();
    write_trace(d.path(), 3, true);
    std::fs::write(d.path().join("version"), "1\n").unwrap();
    let err = TraceReader::open(d.path()).unwrap_err();
    assert!(matches!(err, Error::OldVersion { found: 1, .. }), "{err}");
    assert!(err.to_string().contains("re-record"), "{err}");
}

#[test]
fn blob_that_expands_past_its_recorded_length_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut w = TraceWriter::create(d.path()).unwrap();
    w.write_header(&header()).unwrap();
    let a = w.put_blob(&[5u8; 10000]).unwrap();
    w.finish().unwrap();
    let r = TraceReader::open(d.path()).unwrap();
    let path = d.path().join("blobs").join(a.hex());
    std::fs::write(&path, zstd::encode_all(&vec![5u8; 1 << 24][..], 3).unwrap()).unwrap();
    for e in [
        r.blob(&a, 10000).unwrap_err(),
        r.check_blobs(&[Event::Syscall(SyscallEvent {
            writes: vec![MemWrite {
                addr: RemoteAddr(0),
                data: Data::Blob {
                    hash: a,
                    len: 10000,
                },
            }],
            ..syscall()
        })])
        .unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(
            msg.contains("decompresses to more than the 10000 bytes"),
            "{msg}"
        );
    }
    let msg = r.blob(&a, 2 << 30).unwrap_err().to_string();
    assert!(msg.contains("more than a blob may"), "{msg}");
}

fn syscall() -> SyscallEvent {
    match event(1) {
        Event::Syscall(s) => s,
        _ => unreachable!("event() makes system calls"),
    }
}

#[test]
fn chunk_frames_outside_the_limits_are_refused_before_decompression() {
    let good = chunk::encode(&[0u8; 64], 4, 0, 7).unwrap();
    let frame = |edit: &dyn Fn(&mut [u8])| {
        let mut f: [u8; chunk::FRAME_LEN] = good[..chunk::FRAME_LEN].try_into().unwrap();
        edit(&mut f);
        chunk::parse_frame(&f)
    };
    assert_eq!(frame(&|_| {}).unwrap().binding, 7);
    type Edit<'a> = &'a dyn Fn(&mut [u8]);
    let cases: [(Edit, &str); 4] = [
        (
            &|f| f[12..16].copy_from_slice(&(1u32 << 27).to_le_bytes()),
            "claims 134217728 events",
        ),
        (
            &|f| f[12..16].copy_from_slice(&0u32.to_le_bytes()),
            "claims 0 events",
        ),
        (
            &|f| f[8..12].copy_from_slice(&u32::MAX.to_le_bytes()),
            "more than the 16777216-byte limit",
        ),
        (
            &|f| f[4..8].copy_from_slice(&(1u32 << 20).to_le_bytes()),
            "more than zstd can produce",
        ),
    ];
    for (edit, want) in cases {
        let msg = frame(edit).unwrap_err();
        assert!(msg.contains(want), "{msg}");
    }
    // count events need 2 bytes each.
    assert!(chunk::encode(&[0u8; 64], 4097, 0, 0).is_err());
    let msg = frame(&|f| f[12..16].copy_from_slice(&4000u32.to_le_bytes())).unwrap_err();
    assert!(msg.contains("4000 events in 64 bytes"), "{msg}");
}
