//! The TCP side: one listening socket on 127.0.0.1 (another address only when the caller
//! passes one), gdb sessions served one after another on the same replay so gdb can
//! disconnect and reconnect, and the blocking event loop that runs timeline actions.
//!
//! Interrupts: a timeline run blocks until it stops, so Ctrl-C is honoured when it arrives
//! before a run starts (checked first); during a run it is answered once the run stops.
//! Runs are bounded by the recording, which is short for umk's scenarios.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use gdbstub::common::Signal;
use gdbstub::conn::{Connection, ConnectionExt};
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub};
use replayer::{Position, Timeline};

use crate::conn::Checked;
use crate::error::{Error, Result};
use crate::target::{ReplayTarget, Stop};

/// How to start a stub.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The trace directory.
    pub trace: PathBuf,
    /// Where to listen; 127.0.0.1 unless explicitly asked otherwise.
    pub listen: SocketAddr,
    /// Position to start at (default: the start of the recording, or of the process).
    pub at: Option<Position>,
    /// The pid of the one process to debug (`rr replay -p`), in a recording of several.
    pub process: Option<u32>,
}

impl ServerOptions {
    /// Listens on 127.0.0.1:`port` (0: any free port).
    pub fn local(trace: impl Into<PathBuf>, port: u16) -> ServerOptions {
        ServerOptions {
            trace: trace.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            at: None,
            process: None,
        }
    }
}

/// A replay behind a listening gdb stub.
pub struct Server {
    listener: TcpListener,
    target: ReplayTarget,
    binary: PathBuf,
}

/// How a gdb session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// gdb detached or disconnected.
    Disconnected,
    /// gdb asked to kill the program; the replay stays, a new session can attach.
    Killed,
    /// The connection broke or the protocol failed; the replay stays.
    Failed(String),
}

impl Server {
    /// Opens the replay, finds the guest's task table, goes to `at` and starts listening.
    pub fn open(opts: &ServerOptions) -> Result<Server> {
        let mut tl = Timeline::open(&opts.trace)
            .map_err(|e| Error::timeline("open", opts.trace.display(), e))?;
        // A crash is a stop, as gdb shows any signal: the fault before its delivery.
        tl.set_stop_at_faults(true);
        let mut at = opts.at;
        let mut binary = tl.binary().to_path_buf();
        // A binary that cannot be read still debugs, as one thread without task names.
        let mut guest = tl.load_binary().ok().and_then(|b| guest::detect(&b));
        if let Some(pid) = opts.process {
            let start = tl
                .focus_process(pid)
                .map_err(|e| Error::timeline("choose process", pid, e))?;
            at = at.or(Some(start));
            binary = tl
                .focus_program()
                .map_err(|e| Error::timeline("find the program of process", pid, e))?
                .0;
            if binary != tl.binary() {
                guest = None;
            }
        }
        if let Some(p) = at {
            tl.seek(&p).map_err(|e| Error::timeline("seek", p, e))?;
        }
        let listener = TcpListener::bind(opts.listen).map_err(|source| Error::Socket {
            op: "listen",
            addr: opts.listen.to_string(),
            source,
        })?;
        Ok(Server {
            listener,
            target: ReplayTarget::new(tl, guest),
            binary,
        })
    }

    /// The address gdb connects to.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|source| Error::Socket {
            op: "local address",
            addr: "the listening socket".into(),
            source,
        })
    }

    /// The guest binary (gdb loads its symbols).
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The guest kernel's gdb Python, if it has any (`gdb_command` loads it).
    pub fn gdb_script(&self) -> Option<&'static str> {
        self.target.guest_script()
    }

    /// The replay target (for in-process callers).
    pub fn target(&mut self) -> &mut ReplayTarget {
        &mut self.target
    }

    /// Waits for one gdb and serves it until it goes.
    pub fn serve_one(&mut self) -> Result<SessionEnd> {
        let addr = self.local_addr()?.to_string();
        let (conn, peer) = self.listener.accept().map_err(|source| Error::Socket {
            op: "accept",
            addr,
            source,
        })?;
        let end = match GdbStub::new(Checked::new(conn)).run_blocking::<EventLoop>(&mut self.target)
        {
            Ok(DisconnectReason::Kill) => SessionEnd::Killed,
            Ok(_) => SessionEnd::Disconnected,
            Err(e) => SessionEnd::Failed(
                Error::Session {
                    peer: peer.to_string(),
                    why: e.to_string(),
                }
                .to_string(),
            ),
        };
        self.target.reset_session();
        Ok(end)
    }

    /// Serves gdb sessions one after another until the process is stopped.
    pub fn serve_forever(&mut self) -> Result<()> {
        loop {
            if let SessionEnd::Failed(why) = self.serve_one()? {
                eprintln!("rewind gdb: {why}; waiting for the next connection");
            }
        }
    }
}

/// The byte gdb sends for Ctrl-C.
const INTERRUPT: u8 = 0x03;

/// Runs the pending timeline action unless gdb has sent something (an interrupt) first.
enum EventLoop {}

impl BlockingEventLoop for EventLoop {
    type Target = ReplayTarget;
    type Connection = Checked;
    type StopReason = Stop;

    fn wait_for_stop_reason(
        target: &mut ReplayTarget,
        conn: &mut Checked,
    ) -> std::result::Result<Event<Stop>, WaitForStopReasonError<Error, std::io::Error>> {
        if target.pending().is_none() {
            // Nothing to run: wait for gdb.
            let b = conn.read().map_err(WaitForStopReasonError::Connection)?;
            return Ok(Event::IncomingData(b));
        }
        if conn
            .peek()
            .map_err(WaitForStopReasonError::Connection)?
            .is_some()
        {
            let b = conn.read().map_err(WaitForStopReasonError::Connection)?;
            return Ok(Event::IncomingData(b));
        }
        // gdb's Ctrl-C is a lone 0x03 byte: looked for while the replay runs.
        let mut asked = false;
        let stop = target.run_pending(&mut || {
            asked = matches!(conn.peek(), Ok(Some(INTERRUPT)));
            asked
        });
        if asked {
            // Answered by this stop: consumed here, so no second, stale SIGINT stop
            // follows from gdbstub reading it later.
            conn.read().map_err(WaitForStopReasonError::Connection)?;
        }
        conn.flush().map_err(WaitForStopReasonError::Connection)?;
        Ok(Event::TargetStopped(stop))
    }

    fn on_interrupt(target: &mut ReplayTarget) -> std::result::Result<Option<Stop>, Error> {
        target.cancel_pending();
        Ok(Some(Stop::SignalWithThread {
            tid: target.current_tid(),
            signal: Signal::SIGINT,
        }))
    }
}
