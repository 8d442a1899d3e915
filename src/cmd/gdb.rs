//! `rewind gdb [TRACE] [--port N] [--at POSITION] [-p PID] [--no-launch]`: a replay behind
//! a gdb remote stub on 127.0.0.1, with gdb launched on the guest binary (or the program
//! of process PID) and connected (or the command to attach printed). Sessions are served until the command is stopped, so gdb
//! can disconnect and reconnect.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;

/// Arguments of `rewind gdb`.
#[derive(clap::Args, Debug)]
pub struct GdbArgs {
    /// The trace directory or packed trace (default: the latest recording).
    pub trace: Option<PathBuf>,
    /// TCP port (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Listen on this address instead of 127.0.0.1 (anyone who reaches it can drive the replay).
    #[arg(long, value_name = "ADDR")]
    pub listen_address: Option<IpAddr>,
    /// Start at this replay position (eN, eN+tK, eN+tK+sJ) instead of the start.
    #[arg(long, value_name = "POSITION")]
    pub at: Option<replayer::Position>,
    /// Debug the process with this pid (or the process of this thread), as `rewind ps`
    /// lists them, from its exec (or its start); the others run unseen.
    #[arg(short, long, value_name = "PID")]
    pub process: Option<u32>,
    /// Do not start gdb: print the command that attaches it and serve until stopped.
    #[arg(long)]
    pub no_launch: bool,
    /// gdb to launch.
    #[arg(long, default_value = "gdb", value_name = "PROGRAM")]
    pub gdb: PathBuf,
}

/// Runs `rewind gdb`.
pub fn run(args: GdbArgs) -> anyhow::Result<()> {
    let dir = super::trace_path(args.trace.as_deref())?;
    let ip = args
        .listen_address
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let opts = rewind_gdb::ServerOptions {
        trace: dir.clone(),
        listen: SocketAddr::new(ip, args.port),
        at: args.at,
        process: args.process,
    };
    let mut server = rewind_gdb::Server::open(&opts)
        .with_context(|| format!("starting the gdb stub on {}", dir.display()))?;
    let addr = server.local_addr()?;
    let cmd = rewind_gdb::gdb_command(server.binary(), addr, server.gdb_script());
    if args.no_launch {
        println!("rewind: gdb stub for {} listening on {addr}", dir.display());
        println!("attach with: {}", shell_words(&cmd));
        use std::io::Write;
        std::io::stdout().flush()?;
        server.serve_forever()?;
        return Ok(());
    }
    // From here on Ctrl-C is gdb's: it interrupts the replay over the remote protocol.
    let _sigint = crate::signals::SigintToChild::new();
    let mut child = Command::new(&args.gdb)
        .args(&cmd[1..])
        .spawn()
        .with_context(|| {
            format!(
                "launching {} (install gdb with `apt-get install gdb`, pass --gdb PATH, or \
                 attach one yourself with --no-launch)",
                args.gdb.display()
            )
        })?;
    // The stub serves on this thread (the replay's tracer); gdb runs beside it. When gdb
    // exits, a waker connects once so a pending accept returns and the loop ends.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waker = {
        let done = done.clone();
        std::thread::spawn(move || {
            let status = child.wait();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = std::net::TcpStream::connect(addr);
            status
        })
    };
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        if let rewind_gdb::SessionEnd::Failed(why) = server.serve_one()? {
            if !done.load(std::sync::atomic::Ordering::SeqCst) {
                eprintln!("rewind gdb: {why}");
            }
        }
    }
    let _ = waker.join();
    Ok(())
}

/// The command as one line a shell accepts.
fn shell_words(cmd: &[String]) -> String {
    cmd.iter()
        .map(|w| {
            if w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
