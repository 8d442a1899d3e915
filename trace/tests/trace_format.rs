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
