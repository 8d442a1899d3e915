//! Running one subprocess under a deadline and timing it: wall time from spawn to exit,
//! stdout and stderr captured on their own threads (so a chatty child never blocks), stdin
//! null. Every measurement in the suite goes through here or through `gdb.rs`.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// What a finished (or killed) process left behind.
#[derive(Debug)]
pub struct Outcome {
    /// Wall time from spawn to exit, in seconds.
    pub secs: f64,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The deadline passed and the process was killed.
    pub timed_out: bool,
}

impl Outcome {
    /// The last few lines of stderr (or stdout when stderr is empty), for error messages.
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(3)..].join(" | ")
    }
}

/// How often the child is polled for exit: the timing resolution of every measurement.
const POLL: Duration = Duration::from_micros(250);

/// Spawns `cmd` (stdin null, stdout and stderr captured), waits up to `timeout`, kills it
/// past that. Fails only if it cannot be spawned.
pub fn run(cmd: &mut Command, timeout: Duration) -> anyhow::Result<Outcome> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", describe(cmd)))?;
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let (status, timed_out) = wait(&mut child, start + timeout)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(Outcome {
        secs,
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        timed_out,
    })
}

/// [`run`], failing unless the process exited with status 0 within the deadline.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> anyhow::Result<Outcome> {
    let what = describe(cmd);
    let o = run(cmd, timeout)?;
    if o.timed_out {
        bail!("{what}: no exit within {timeout:?} (killed)");
    }
    if !o.status.success() {
        bail!("{what}: {} ({})", o.status, o.tail());
    }
    Ok(o)
}

/// Waits for `child` until `deadline`; kills it past that. Returns its status and whether
/// it had to be killed.
pub fn wait(child: &mut Child, deadline: Instant) -> anyhow::Result<(ExitStatus, bool)> {
    loop {
        if let Some(st) = child.try_wait().context("waiting for a child")? {
            return Ok((st, false));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return Ok((child.wait().context("reaping a killed child")?, true));
        }
        std::thread::sleep(POLL);
    }
}

/// Reads a pipe to its end on a thread.
pub fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// The program and arguments of `cmd`, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Whether `program` can be run at all (`program ARG` exits, whatever its status), and
/// why not otherwise: the text an "unavailable" row shows.
pub fn probe_tool(program: &str, arg: &str) -> Result<(), String> {
    match Command::new(program)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{program} not runnable: {e}")),
    }
}
