//! The management console (UML's mconsole): a host unix datagram socket, named by
//! `mconsole=PATH` on the command line, on which `uml_mconsole PATH CMD` can ask the
//! running kernel for its version, halt or reboot it, run a SysRq action, hot-plug or
//! remove a device, and stop/continue it. This module owns the socket and the request →
//! handler → reply cycle; what the commands *do* belongs to the kernel's [`McHandler`].
//!
//! # Integration
//!
//! ```text
//! let mut mc = Mconsole::open(path)?;      // at boot, after the console is up
//! mc.enable_sigio()?;                      // once the SIGIO handler is installed
//! ...
//! // on SIGIO and in the idle loop (SIGIO is edge-triggered; the idle poll catches
//! // anything that arrived while the interrupt was masked):
//! mc.poll(&mut handler)?;
//! if mc.is_stopped() { mc.wait_while_stopped(&mut handler)?; }
//! ```
//!
//! # `stop` and `go`
//!
//! In UML `stop` freezes the whole machine inside the mconsole interrupt: it keeps
//! answering mconsole requests, nothing else runs, until `go`. Here `stop` is answered at
//! once, the driver enters the stopped state and calls [`McHandler::stop`]; the kernel then
//! calls [`Mconsole::wait_while_stopped`] at its next safe point (directly from the SIGIO
//! path is fine, which is what UML does). That call blocks in the host, serving requests,
//! until `go` arrives, at which point [`McHandler::go`] runs and `go` is answered. While
//! stopped the kernel must not schedule tasks or run timer work: ticks that arrive are
//! lost (or caught up on `go`), and the hung-task watchdog must not count stopped time.
//! A `halt` or `reboot` received while stopped ends the stop first (`go()` then `halt()`),
//! so the handler always sees `stop`/`go` in pairs. `go` when not stopped is an error
//! ("Not stopped"), as is a second `stop`.
//!
//! # Replies
//!
//! Every request gets exactly one reply, possibly several packets long: text over 511
//! bytes is split with `more` set on all but the last packet, and `uml_mconsole` prints
//! the concatenation as `OK <text>` or `ERR <text>`. `halt` and `reboot` are answered
//! *before* the handler runs, because the handler may never return.

pub mod proto;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::host::file::{self, Fd};
use crate::host::socket::{self, UnixAddr};
use crate::host::Errno;

use proto::{Request, PACKET_MAX};

/// How long one reply packet may wait for room in a slow client's queue before the rest
/// of the reply is dropped. Bounded because the kernel may be inside an interrupt.
const SEND_PATIENCE_MS: u32 = 1000;

/// What the kernel does for each mconsole command. Called from [`Mconsole::poll`], i.e.
/// from wherever the kernel polls the console (possibly the SIGIO handler), so methods
/// should record work rather than sleep. `Ok` text is printed after "OK ", `Err` text
/// after "ERR "; either may be long (it is split across packets).
pub trait McHandler {
    /// The text printed by `uml_mconsole PATH version`. UML answers
    /// "sysname nodename release version machine"; umk should answer in the same spirit,
    /// e.g. "umk 0.1.0 #1 x86_64" (see [`default_version`]).
    fn version(&mut self) -> String;
    /// Called after the (empty) reply is sent; need not return.
    fn halt(&mut self);
    /// Called after the (empty) reply is sent; need not return.
    fn reboot(&mut self);
    /// Runs SysRq `key` ('t': task dump, …) and returns its output for the client.
    fn sysrq(&mut self, key: char) -> Result<String, String>;
    /// `config DEV=VALUE`, e.g. dev "ubd1", value "disk.img[,cow.img]" (uml_mconsole has
    /// already made relative ubd paths absolute). UML answers "" on success.
    fn config(&mut self, dev: &str, value: &str) -> Result<String, String>;
    /// `config DEV`: the device's current configuration, e.g. its backing file.
    fn config_query(&mut self, dev: &str) -> Result<String, String>;
    /// `remove DEV`: hot-unplug. UML's errors: "Device doesn't exist",
    /// "Device is currently open".
    fn remove(&mut self, dev: &str) -> Result<String, String>;
    /// The machine has been stopped; see the module docs for what the kernel must do.
    fn stop(&mut self);
    /// The machine continues after a stop.
    fn go(&mut self);
    /// Ctrl-Alt-Del; UML signals init or reboots.
    fn cad(&mut self) -> Result<String, String> {
        Err(String::from("cad is not supported"))
    }
    /// `log TEXT`: enter TEXT into the kernel log (TEXT is verbatim, newline included).
    fn log(&mut self, text: &str) -> Result<(), String> {
        let _ = text;
        Err(String::from("log is not supported"))
    }
    /// `proc FILE`: the contents of /proc/FILE.
    fn proc_file(&mut self, file: &str) -> Result<String, String> {
        let _ = file;
        Err(String::from("Failed to open file"))
    }
}

/// A version string in UML's format, for handlers with nothing better to say.
pub fn default_version() -> String {
    format!("umk {} #1 x86_64", env!("CARGO_PKG_VERSION"))
}

/// Counters for the boot log and the shell; the driver never fails loudly on bad input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct McStats {
    pub requests: u64,
    /// Datagrams that were not executable requests (answered with an error).
    pub bad_requests: u64,
    /// Replies cut short because the client vanished or stopped reading.
    pub dropped_replies: u64,
}

/// The mconsole socket and its state.
pub struct Mconsole {
    fd: Fd,
    path: Vec<u8>,
    stopped: bool,
    stats: McStats,
}

impl Mconsole {
    /// Binds the mconsole socket at `path` (replacing a stale one). Does not enable SIGIO:
    /// see [`Mconsole::enable_sigio`].
    pub fn open(path: &[u8]) -> Result<Mconsole, Errno> {
        let fd = socket::bind_unix_dgram(path)?;
        Ok(Mconsole {
            fd,
            path: path.to_vec(),
            stopped: false,
            stats: McStats::default(),
        })
    }

    /// Makes each arriving request raise SIGIO, as UML's mconsole IRQ. SIGIO must already
    /// be handled: its default action kills the process.
    pub fn enable_sigio(&self) -> Result<(), Errno> {
        socket::enable_sigio(self.fd)
    }

    /// The host socket, for the kernel's SIGIO dispatch (which fd is readable).
    pub fn fd(&self) -> Fd {
        self.fd
    }

    /// The host path the socket is bound at, for the boot log.
    pub fn path(&self) -> &[u8] {
        &self.path
    }

    /// Whether a `stop` is in force; see [`Mconsole::wait_while_stopped`].
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    pub fn stats(&self) -> McStats {
        self.stats
    }

    /// Serves every request already queued, without blocking, and returns how many. The
    /// queue is drained completely because SIGIO only fires on new arrivals.
    pub fn poll(&mut self, handler: &mut dyn McHandler) -> Result<usize, Errno> {
        let mut buf = [0u8; PACKET_MAX];
        let mut served = 0;
        while let Some((n, from)) = socket::recv_from(self.fd, &mut buf)? {
            served += 1;
            self.serve(&buf[..n], &from, handler);
        }
        Ok(served)
    }

    /// Blocks in the host, serving requests, until `go` (or `halt`/`reboot`) ends a stop.
    /// Returns at once if not stopped. Signals interrupt the wait but not the stop.
    pub fn wait_while_stopped(&mut self, handler: &mut dyn McHandler) -> Result<(), Errno> {
        while self.stopped {
            socket::wait_readable(self.fd, -1)?;
            self.poll(handler)?;
        }
        Ok(())
    }

    /// Unbinds the socket path and closes the socket; UML does this on halt and reboot so
    /// no stale socket is left. Idempotent; also done on drop.
    pub fn shutdown(&mut self) {
        if self.fd.0 >= 0 {
            let _ = file::unlink(&self.path);
            file::close(self.fd);
            self.fd = Fd(-1);
        }
    }

    fn serve(&mut self, dgram: &[u8], from: &UnixAddr, handler: &mut dyn McHandler) {
        self.stats.requests += 1;
        let request = match proto::parse_request(dgram) {
            Ok(request) => request,
            Err(e) => {
                self.stats.bad_requests += 1;
                if e.is_v0() {
                    let sent = socket::send_to(self.fd, e.reply_text().as_bytes(), from);
                    if sent.is_err() {
                        self.stats.dropped_replies += 1;
                    }
                } else {
                    self.reply(from, Err(e.reply_text()));
                }
                return;
            }
        };
        match request {
            Request::Version => {
                let version = handler.version();
                self.reply(from, Ok(&version));
            }
            Request::Help => self.reply(from, Ok(proto::HELP_TEXT)),
            Request::Halt | Request::Reboot => {
                // Answer first: the handler may end the process.
                self.reply(from, Ok(""));
                if self.stopped {
                    self.stopped = false;
                    handler.go();
                }
                if request == Request::Halt {
                    handler.halt();
                } else {
                    handler.reboot();
                }
            }
            Request::Cad => {
                let result = handler.cad();
                self.reply_owned(from, result);
            }
            Request::Sysrq(key) => {
                let result = handler.sysrq(key);
                self.reply_owned(from, result);
            }
            Request::Config { dev, value } => {
                let result = handler.config(dev, value);
                self.reply_owned(from, result);
            }
            Request::ConfigQuery { dev } => {
                let result = handler.config_query(dev);
                self.reply_owned(from, result);
            }
            Request::Remove { dev } => {
                let result = handler.remove(dev);
                self.reply_owned(from, result);
            }
            Request::Log(text) => match handler.log(text) {
                Ok(()) => self.reply(from, Ok("")),
                Err(e) => self.reply(from, Err(&e)),
            },
            Request::Proc(name) => match handler.proc_file(name) {
                // UML starts the file on its own line, after the client's "OK ".
                Ok(contents) => self.reply(from, Ok(&format!("\n{}", contents))),
                Err(e) => self.reply(from, Err(&e)),
            },
            Request::Stop => {
                if self.stopped {
                    self.reply(from, Err("Already stopped"));
                } else {
                    self.reply(from, Ok(""));
                    self.stopped = true;
                    handler.stop();
                }
            }
            Request::Go => {
                if self.stopped {
                    self.stopped = false;
                    handler.go();
                    self.reply(from, Ok(""));
                } else {
                    self.reply(from, Err("Not stopped"));
                }
            }
        }
    }

    fn reply_owned(&mut self, to: &UnixAddr, result: Result<String, String>) {
        match &result {
            Ok(text) => self.reply(to, Ok(text)),
            Err(text) => self.reply(to, Err(text)),
        }
    }

    fn reply(&mut self, to: &UnixAddr, result: Result<&str, &str>) {
        // An unbound client cannot be answered; it sees no reply, as with UML.
        if !to.is_named() {
            self.stats.dropped_replies += 1;
            return;
        }
        let (text, err) = match result {
            Ok(text) => (text, false),
            Err(text) => (text, true),
        };
        for packet in proto::reply_packets(text, err) {
            if socket::send_to_patiently(self.fd, packet.as_bytes(), to, SEND_PATIENCE_MS).is_err()
            {
                // The client is gone or stuck; later packets would fail the same way.
                self.stats.dropped_replies += 1;
                return;
            }
        }
    }
}

impl Drop for Mconsole {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::os::unix::net::UnixDatagram;
    use std::path::PathBuf;
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};
    use std::vec;

    const UML_MCONSOLE: &str = "/usr/bin/uml_mconsole";

    /// Records every call so tests can assert what the kernel would have been asked.
    #[derive(Default)]
    struct TestHandler {
        calls: Vec<String>,
        sysrq_text: String,
    }

    impl McHandler for TestHandler {
        fn version(&mut self) -> String {
            self.calls.push("version".into());
            default_version()
        }
        fn halt(&mut self) {
            self.calls.push("halt".into());
        }
        fn reboot(&mut self) {
            self.calls.push("reboot".into());
        }
        fn sysrq(&mut self, key: char) -> Result<String, String> {
            self.calls.push(format!("sysrq {key}"));
            match key {
                't' => Ok(self.sysrq_text.clone()),
                _ => Err(format!("Unsupported SysRq key '{key}'")),
            }
        }
        fn config(&mut self, dev: &str, value: &str) -> Result<String, String> {
            self.calls.push(format!("config {dev}={value}"));
            Ok(String::new())
        }
        fn config_query(&mut self, dev: &str) -> Result<String, String> {
            self.calls.push(format!("config? {dev}"));
            if dev == "ubd1" {
                Ok("/x".into())
            } else {
                Err("Device doesn't exist".into())
            }
        }
        fn remove(&mut self, dev: &str) -> Result<String, String> {
            self.calls.push(format!("remove {dev}"));
            Err("Device is currently open".into())
        }
        fn stop(&mut self) {
            self.calls.push("stop".into());
        }
        fn go(&mut self) {
            self.calls.push("go".into());
        }
    }

    fn task_dump(bytes: usize) -> String {
        let mut s = String::new();
        let mut pid = 1;
        while s.len() < bytes {
            s += &format!(
                "task:kworker/{pid:<5} state:S stack:0 pid:{pid:<5} ppid:1 flags:0x00000000\n"
            );
            pid += 1;
        }
        s
    }

    fn sock_path(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("umk-mc-{}-{}.sock", std::process::id(), tag))
    }

    fn open(tag: &str) -> (Mconsole, PathBuf) {
        let path = sock_path(tag);
        let mc = Mconsole::open(path.to_str().unwrap().as_bytes()).expect("bind mconsole");
        (mc, path)
    }

    /// Runs the real client against `mc`, pumping `poll` the way the kernel's idle loop
    /// would, until the client exits.
    fn run_client(mc: &mut Mconsole, path: &PathBuf, h: &mut TestHandler, args: &[&str]) -> Output {
        let mut child = Command::new(UML_MCONSOLE)
            .arg(path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn uml_mconsole");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            mc.poll(h).expect("poll");
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("uml_mconsole {args:?} did not finish");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        child.wait_with_output().unwrap()
    }

    fn stdout(out: &Output) -> String {
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn real_client_version_help_and_errors() {
        let (mut mc, path) = open("basic");
        let mut h = TestHandler::default();

        let out = run_client(&mut mc, &path, &mut h, &["version"]);
        assert!(out.status.success());
        assert_eq!(
            stdout(&out),
            format!("OK umk {} #1 x86_64\n", env!("CARGO_PKG_VERSION"))
        );

        let out = run_client(&mut mc, &path, &mut h, &["help"]);
        // The client appends its own local help after ours.
        assert!(
            stdout(&out).starts_with(&format!("OK {}", proto::HELP_TEXT)),
            "{}",
            stdout(&out)
        );

        let out = run_client(&mut mc, &path, &mut h, &["frobnicate", "now"]);
        assert!(!out.status.success());
        assert_eq!(stdout(&out), "ERR Unknown command\n");

        let out = run_client(&mut mc, &path, &mut h, &["go"]);
        assert_eq!(stdout(&out), "ERR Not stopped\n");

        assert_eq!(h.calls, vec!["version"]);
        assert_eq!(mc.stats().bad_requests, 1);
        assert_eq!(mc.stats().dropped_replies, 0);
    }

    #[test]
    fn real_client_reassembles_multi_packet_sysrq() {
        let (mut mc, path) = open("sysrq");
        // ~7 packets fit the client's queue; ~60 overrun it and exercise the retry.
        for size in [3000, 30_000] {
            let mut h = TestHandler {
                sysrq_text: task_dump(size),
                ..Default::default()
            };
            let out = run_client(&mut mc, &path, &mut h, &["sysrq", "t"]);
            assert!(out.status.success());
            assert_eq!(stdout(&out), format!("OK {}\n", h.sysrq_text));
            assert_eq!(h.calls, vec!["sysrq t"]);

            // A long error keeps its verdict over every packet.
            let mut h = TestHandler::default();
            let out = run_client(&mut mc, &path, &mut h, &["sysrq", "q"]);
            assert_eq!(stdout(&out), "ERR Unsupported SysRq key 'q'\n");
        }
        assert_eq!(mc.stats().dropped_replies, 0);
    }

    #[test]
    fn real_client_config_remove_and_halt() {
        let (mut mc, path) = open("config");
        let mut h = TestHandler::default();

        let out = run_client(&mut mc, &path, &mut h, &["config", "ubd1=/x"]);
        assert!(out.status.success());
        assert_eq!(stdout(&out), "OK \n");

        let out = run_client(&mut mc, &path, &mut h, &["config", "ubd1"]);
        assert_eq!(stdout(&out), "OK /x\n");

        let out = run_client(&mut mc, &path, &mut h, &["config", "ubd7"]);
        assert_eq!(stdout(&out), "ERR Device doesn't exist\n");

        let out = run_client(&mut mc, &path, &mut h, &["remove", "ubd1"]);
        assert_eq!(stdout(&out), "ERR Device is currently open\n");

        let out = run_client(&mut mc, &path, &mut h, &["halt"]);
        assert!(out.status.success());
        assert_eq!(stdout(&out), "OK \n");

        assert_eq!(
            h.calls,
            vec![
                "config ubd1=/x",
                "config? ubd1",
                "config? ubd7",
                "remove ubd1",
                "halt"
            ]
        );
    }

    #[test]
    fn stop_serves_only_mconsole_until_go() {
        let (mut mc, path) = open("stop");
        let mut h = TestHandler::default();

        let out = run_client(&mut mc, &path, &mut h, &["stop"]);
        assert_eq!(stdout(&out), "OK \n");
        assert!(mc.is_stopped());

        let out = run_client(&mut mc, &path, &mut h, &["stop"]);
        assert_eq!(stdout(&out), "ERR Already stopped\n");

        // While stopped the kernel sits in wait_while_stopped; requests are still served.
        let spawn = |args: &[&str]| {
            Command::new(UML_MCONSOLE)
                .arg(&path)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let version = spawn(&["version"]);
        let version_out = {
            // Serve `version` first, so `go` is known to arrive while stopped.
            let deadline = Instant::now() + Duration::from_secs(20);
            while h.calls.last().map(String::as_str) != Some("version") {
                assert!(Instant::now() < deadline, "version not served");
                socket::wait_readable(mc.fd(), 100).unwrap();
                mc.poll(&mut h).unwrap();
            }
            version.wait_with_output().unwrap()
        };
        assert!(stdout(&version_out).starts_with("OK umk "));
        assert!(mc.is_stopped());

        let go = spawn(&["go"]);
        mc.wait_while_stopped(&mut h).unwrap();
        assert!(!mc.is_stopped());
        assert_eq!(stdout(&go.wait_with_output().unwrap()), "OK \n");

        assert_eq!(h.calls, vec!["stop", "version", "go"]);
    }

    #[test]
    fn long_reply_waits_for_a_slow_client() {
        let (mut mc, path) = open("slow");
        let me = sock_path("slow-client");
        let _ = std::fs::remove_file(&me);
        let client = UnixDatagram::bind(&me).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client
            .send_to(&proto::encode_request("sysrq t").unwrap(), &path)
            .unwrap();

        // The client only starts reading after ~40 packets would have overflowed its
        // 10-datagram queue, so the driver must ride out EAGAIN.
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut text = Vec::new();
            let mut buf = [0u8; PACKET_MAX];
            loop {
                let n = client.recv(&mut buf).unwrap();
                let reply = proto::parse_reply(&buf[..n]).unwrap();
                text.extend_from_slice(reply.text);
                if !reply.more {
                    return (reply.err, text);
                }
            }
        });
        let mut h = TestHandler {
            sysrq_text: task_dump(20_000),
            ..Default::default()
        };
        assert_eq!(mc.poll(&mut h).unwrap(), 1);
        let (err, text) = reader.join().unwrap();
        assert!(!err);
        assert_eq!(text, h.sysrq_text.as_bytes());
        assert_eq!(mc.stats().dropped_replies, 0);
        let _ = std::fs::remove_file(&me);
    }

    #[test]
    fn halt_while_stopped_ends_the_stop_first() {
        let (mut mc, path) = open("stophalt");
        let mut h = TestHandler::default();
        run_client(&mut mc, &path, &mut h, &["stop"]);
        let out = run_client(&mut mc, &path, &mut h, &["reboot"]);
        assert_eq!(stdout(&out), "OK \n");
        assert!(!mc.is_stopped());
        assert_eq!(h.calls, vec!["stop", "go", "reboot"]);
    }

    #[test]
    fn malformed_datagrams_get_error_replies_not_panics() {
        let (mut mc, path) = open("bad");
        let mut h = TestHandler::default();
        let client = UnixDatagram::unbound().unwrap();
        let me = sock_path("bad-client");
        let _ = std::fs::remove_file(&me);
        let client_bound = UnixDatagram::bind(&me).unwrap();
        client_bound
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();

        let mut bad_version = proto::encode_request("version").unwrap();
        bad_version[4..8].copy_from_slice(&7u32.to_ne_bytes());
        let mut too_large = proto::encode_request("version").unwrap();
        too_large[8..12].copy_from_slice(&600u32.to_ne_bytes());
        let cases: &[(&[u8], &[u8])] = &[
            (b"version", proto::V0_REPLY.as_bytes()),
            (&bad_version, b"This driver only supports version 2 clients"),
            (&too_large, b"Request too large"),
            (&proto::MAGIC.to_ne_bytes(), b"Truncated request"),
            (&bad_version[..9], b"Truncated request"),
        ];
        let mut buf = [0u8; PACKET_MAX];
        for (dgram, want) in cases {
            client_bound.send_to(dgram, &path).unwrap();
            assert_eq!(mc.poll(&mut h).unwrap(), 1);
            let n = client_bound.recv(&mut buf).unwrap();
            if *want == proto::V0_REPLY.as_bytes() {
                assert_eq!(&buf[..n], *want);
            } else {
                let reply = proto::parse_reply(&buf[..n]).unwrap();
                assert!(reply.err && !reply.more);
                assert_eq!(reply.text, *want);
            }
        }
        // An unbound sender cannot be answered, but must not upset the driver.
        client
            .send_to(&proto::encode_request("version").unwrap(), &path)
            .unwrap();
        assert_eq!(mc.poll(&mut h).unwrap(), 1);
        assert_eq!(mc.stats().dropped_replies, 1);
        assert_eq!(mc.stats().bad_requests, cases.len() as u64);
        assert_eq!(h.calls, vec!["version"]);
        let _ = std::fs::remove_file(&me);
    }

    #[test]
    fn open_replaces_stale_socket_and_drop_unlinks() {
        let path = sock_path("stale");
        let p = path.to_str().unwrap().as_bytes().to_vec();
        let first = Mconsole::open(&p).unwrap();
        core::mem::forget(first); // a crashed run leaves its socket file behind
        assert!(path.exists());
        let mut mc = Mconsole::open(&p).unwrap();
        let mut h = TestHandler::default();
        assert_eq!(mc.poll(&mut h).unwrap(), 0);
        drop(mc);
        assert!(!path.exists());
        assert_eq!(Mconsole::open(&[b'x'; 200]).err(), Some(Errno(36)));
    }
}
