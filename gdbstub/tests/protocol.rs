//! A hand-written client sends malformed and unsupported packets: the stub answers with
//! protocol errors ('-' NAK, empty reply, `E` errors) and still serves a valid `?`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use rewind_gdb::{Server, ServerOptions};
use testsupport::Scratch;

/// A recording of a short host program (`true`): no task table, one thread.
fn small_trace(d: &Scratch) -> PathBuf {
    let mut opts = recorder::RecordOptions::new("/bin/true", Vec::<String>::new());
    let out = d.path("trace");
    opts.out_dir = Some(out.clone());
    recorder::record(&opts).expect("recording /bin/true");
    out
}

fn packet(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |a, b| a.wrapping_add(b));
    format!("${body}#{sum:02x}").into_bytes()
}

struct Client(TcpStream);

impl Client {
    fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    /// Reads until a whole reply packet (or a lone NAK) arrived; acks the packet.
    fn reply(&mut self) -> String {
        let mut got = Vec::new();
        let mut b = [0u8];
        loop {
            self.0.read_exact(&mut b).expect("reply from stub");
            got.push(b[0]);
            let s = String::from_utf8_lossy(&got).to_string();
            if s == "-" {
                return s;
            }
            if let Some(i) = s.find('#') {
                if s.len() >= i + 3 {
                    self.send(b"+");
                    return s;
                }
            }
        }
    }
}

#[test]
fn malformed_and_unsupported_packets_get_protocol_errors() {
    let d = Scratch::new("gdb-proto");
    let trace = small_trace(&d);
    let (tx, rx) = std::sync::mpsc::channel();
    let stub = std::thread::spawn(move || {
        let mut server = Server::open(&ServerOptions::local(trace, 0)).expect("stub");
        tx.send(server.local_addr().unwrap()).unwrap();
        // Two sessions: the second proves a broken first one did not end the stub.
        let first = server.serve_one().expect("first session");
        let second = server.serve_one().expect("second session");
        (first, second)
    });
    let addr = rx.recv().unwrap();
    let mut c = Client(TcpStream::connect(addr).unwrap());
    c.0.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.send(b"+");

    // Bad checksum: NAK.
    c.send(b"$?#00");
    assert_eq!(c.reply(), "-");
    // Unknown packet: the empty reply.
    c.send(&packet("vFrobnicate;1"));
    assert_eq!(c.reply(), "+$#00");
    c.send(&packet("Qfoo"));
    assert_eq!(c.reply(), "+$#00");
    // Memory the replay does not have: an E error.
    c.send(&packet("m0,8"));
    let r = c.reply();
    assert!(r.starts_with("+$E"), "{r}");
    // Single-register writes are not offered: the empty reply.
    c.send(&packet("P0=0000000000000000"));
    assert_eq!(c.reply(), "+$#00");
    // Malformed arguments: an E error, not a crash.
    c.send(&packet("mzz,qq"));
    let r = c.reply();
    assert!(r.starts_with("+$E") || r == "+$#00", "{r}");
    // Garbage outside packets is skipped.
    c.send(b"garbage\x01\x02");
    // And the stub still answers `?` with a stop reply.
    c.send(&packet("?"));
    let r = c.reply();
    assert!(r.contains("$S05") || r.contains("$T05"), "{r}");
    drop(c);

    // A second client is served: the stub survived everything above.
    let mut c = Client(TcpStream::connect(addr).unwrap());
    c.0.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.send(b"+");
    c.send(&packet("?"));
    let r = c.reply();
    assert!(r.contains("T05") || r.contains("S05"), "{r}");
    c.send(&packet("D"));
    let r = c.reply();
    assert!(r.contains("$OK"), "{r}");
    let (first, second) = stub.join().unwrap();
    eprintln!("sessions ended: {first:?}, {second:?}");
}

#[test]
fn an_interrupt_during_a_continue_stops_it_once_and_the_session_goes_on() {
    let trace = testsupport::record::abba().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let stub = std::thread::spawn(move || {
        let mut server = Server::open(&ServerOptions::local(trace, 0)).expect("stub");
        tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_one().expect("session")
    });
    let addr = rx.recv().unwrap();
    let mut c = Client(TcpStream::connect(addr).unwrap());
    c.0.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.send(b"+");
    // Continue, and Ctrl-C at once: the replay of the whole recording takes far longer
    // than the first few hundred events, where the stub first looks.
    c.send(&packet("c"));
    c.send(&[0x03]);
    let stop = c.reply();
    assert!(stop.starts_with("+$T02"), "a SIGINT stop: {stop}");
    // The session is alive (`?` gets a stop reply), and the interrupt was answered once:
    // a new continue runs to the end of the recording rather than stopping at a stale
    // interrupt.
    c.send(&packet("?"));
    let again = c.reply();
    assert!(again.trim_start_matches('+').starts_with("$T"), "{again}");
    c.send(&packet("c"));
    let end = c.reply();
    assert!(end.contains("replaylog:end"), "the second continue: {end}");
    c.send(&packet("k"));
    drop(c);
    stub.join().unwrap();
}
