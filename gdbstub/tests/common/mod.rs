//! The harness the gdb tests share: a stub started in-process on an ephemeral port, on
//! its own thread (the replay's tracer is the thread that opens it), and the real gdb in
//! batch mode, launched as `rewind gdb` launches it, serving one session.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rewind_gdb::{Server, ServerOptions};

/// gdb's output of one session running `cmds` against a stub opened with `opts`, and the
/// binary the stub gave gdb.
// why: each test binary compiles this module and uses only part of it (gdb_abba serves
// several sessions from one stub of its own).
#[allow(dead_code)]
pub fn gdb_session(opts: ServerOptions, cmds: &[&str]) -> (String, PathBuf) {
    let (tx, rx) = std::sync::mpsc::channel();
    let stub = std::thread::spawn(move || {
        let mut server = Server::open(&opts).expect("starting stub");
        tx.send((
            server.local_addr().unwrap(),
            server.binary().to_path_buf(),
            server.gdb_script(),
        ))
        .unwrap();
        server.serve_one().expect("serving gdb");
    });
    let (addr, binary, script) = rx.recv().expect("stub address");
    let out = gdb_batch(&binary, addr, script, cmds);
    stub.join().expect("stub thread");
    (out, binary)
}

/// gdb's output of one batch session with `binary`'s symbols, attached to the stub at
/// `addr` as `rewind gdb` attaches it (with the guest's gdb Python `script`), running
/// `cmds`.
pub fn gdb_batch(binary: &Path, addr: SocketAddr, script: Option<&str>, cmds: &[&str]) -> String {
    let launch = rewind_gdb::gdb_command(binary, addr, script);
    let mut cmd = Command::new(&launch[0]);
    cmd.args(["-batch", "-nx", "-ex", "set pagination off"])
        .args(&launch[1..]);
    for c in cmds {
        cmd.arg("-ex").arg(c);
    }
    let run = testsupport::run_with_timeout(cmd, Duration::from_secs(180), None);
    format!("{}{}", run.stdout, run.stderr)
}
