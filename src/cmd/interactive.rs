//! `rewind replay -i TRACE`: the interactive timeline prompt (rustyline; the history is
//! kept in memory only, because a replay writes nothing on the host). Every command error
//! is printed as a message and the replay goes on.

use std::path::Path;

use anyhow::{bail, Context};
use guest::{Binary, Guest};
use replayer::{Position, StopReason, Timeline, WatchKind};

const HELP: &str = "\
commands:
  events [N [COUNT]]     list events (from N)
  where | bt             symbolized backtrace at the current position
  pos                    the current position (type it back to goto)
  goto POSITION          go to eN, eN+tK, eN+tK+sJ, or `end`
  regs                   registers
  x ADDR [LEN]           memory dump (ADDR: number or symbol[+off])
  step | s [N]           N instructions forward
  next | n               to the next event boundary
  continue | c           forward to a breakpoint/watchpoint or the end
  rstep | rs [N]         N instructions back
  rcontinue | rc         backward to a breakpoint/watchpoint or the start
  break | b ADDR|SYM     software breakpoint; `delete ADDR|SYM` removes it
  watch ADDR [LEN]       hardware write watchpoint (LEN 1/2/4/8); `unwatch ADDR`
  tasks                  umk's task table
  checkpoint             take a checkpoint here; `checkpoints` lists them
  help | quit";

struct Session {
    tl: Timeline,
    binary: Option<Binary>,
    guest: Option<Box<dyn Guest>>,
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

impl Session {
    fn addr(&self, s: &str) -> anyhow::Result<u64> {
        match self.addrs(s)?.as_slice() {
            [a] => Ok(*a),
            all => bail!(
                "{s} names {} functions (a generic's instantiations): give an address",
                all.len()
            ),
        }
    }

    /// Every address `s` (`ADDR`, `SYMBOL` or `SYMBOL+OFF`) names: several for a generic
    /// function's instantiations.
    fn addrs(&self, s: &str) -> anyhow::Result<Vec<u64>> {
        if let Some(n) = parse_num(s) {
            return Ok(vec![n]);
        }
        let (name, off) = match s.split_once('+') {
            Some((n, o)) => (n, parse_num(o).context("bad offset")?),
            None => (s, 0),
        };
        let binary = self.binary()?;
        let all = binary.addresses(name);
        if all.is_empty() {
            binary.require(name)?;
        }
        Ok(all.into_iter().map(|a| a + off).collect())
    }

    fn binary(&self) -> anyhow::Result<&Binary> {
        self.binary.as_ref().context("no symbols for this binary")
    }

    fn describe(&self, a: u64) -> String {
        match &self.binary {
            Some(b) => b.describe(a),
            None => format!("{a:#x}"),
        }
    }

    fn report(&mut self, r: StopReason) -> anyhow::Result<()> {
        let what = match r {
            StopReason::Done => String::new(),
            StopReason::Breakpoint(a) => format!("breakpoint at {}\n", self.describe(a)),
            StopReason::Watchpoint(a) => format!("watchpoint on {a:#x}\n"),
            StopReason::StartOfHistory => "start of history\n".into(),
            StopReason::EndOfHistory => "end of history\n".into(),
            StopReason::Exited(e) => format!("end of history: the program ended ({e:?})\n"),
            StopReason::Interrupted => "interrupted\n".into(),
            StopReason::SyscallReturn(nr) => format!("returned from system call {nr}\n"),
            StopReason::Signal(sig) => format!(
                "signal {} at the faulting instruction (continue delivers it)\n",
                trace::names::signal_name(sig).unwrap_or("?")
            ),
        };
        print!("{what}");
        if self.tl.exited().is_none() {
            let p = self.tl.position()?;
            let rip = self.tl.regs()?.rip;
            println!("{p}  {}", self.describe(rip));
        }
        Ok(())
    }

    fn run(&mut self, line: &str) -> anyhow::Result<bool> {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(&cmd) = w.first() else {
            return Ok(true);
        };
        let arg = |i: usize| w.get(i).copied();
        let count = |i: usize| arg(i).and_then(parse_num).unwrap_or(1);
        match cmd {
            "help" | "h" | "?" => println!("{HELP}"),
            "quit" | "q" | "exit" => return Ok(false),
            "events" | "e" => {
                let from = arg(1)
                    .and_then(parse_num)
                    .unwrap_or(self.tl.next_event().saturating_sub(5));
                let n = arg(2).and_then(parse_num).unwrap_or(10);
                for (i, e) in self
                    .tl
                    .events()
                    .iter()
                    .enumerate()
                    .skip(from as usize)
                    .take(n as usize)
                {
                    let mark = if i as u64 == self.tl.next_event() {
                        "=>"
                    } else {
                        "  "
                    };
                    println!("{mark} {}", trace::dump::line(i as u64, e));
                }
            }
            "pos" | "position" => println!("{}", self.tl.position()?),
            "goto" | "g" => {
                let target = arg(1).context("goto POSITION")?;
                if target == "end" {
                    let r = self.tl.seek_end()?;
                    // Past the exit nothing can be inspected: stay on its last instruction.
                    self.tl.seek_last_live()?;
                    return self.report(r).map(|_| true);
                }
                let p: Position = target.parse()?;
                self.tl.seek(&p)?;
                self.report(StopReason::Done)?;
            }
            "regs" | "r" => {
                let g = self.tl.regs()?;
                println!(
                    "rip {:#018x}  rsp {:#018x}  rbp {:#018x}  eflags {:#x}\n\
                     rax {:#018x}  rbx {:#018x}  rcx {:#018x}  rdx {:#018x}\n\
                     rsi {:#018x}  rdi {:#018x}  r8  {:#018x}  r9  {:#018x}\n\
                     r10 {:#018x}  r11 {:#018x}  r12 {:#018x}  r13 {:#018x}\n\
                     r14 {:#018x}  r15 {:#018x}  fs_base {:#x}",
                    g.rip,
                    g.rsp,
                    g.rbp,
                    g.eflags,
                    g.rax,
                    g.rbx,
                    g.rcx,
                    g.rdx,
                    g.rsi,
                    g.rdi,
                    g.r8,
                    g.r9,
                    g.r10,
                    g.r11,
                    g.r12,
                    g.r13,
                    g.r14,
                    g.r15,
                    g.fs_base
                );
            }
            "x" => {
                let a = self.addr(arg(1).context("x ADDR [LEN]")?)?;
                let len = arg(2).and_then(parse_num).unwrap_or(64) as usize;
                let bytes = self.tl.read_memory(a, len.min(1 << 16))?;
                for (i, chunk) in bytes.chunks(16).enumerate() {
                    let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                    let asc: String = chunk
                        .iter()
                        .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
                        .collect();
                    println!("{:#014x}  {:<48} {asc}", a + 16 * i as u64, hex.join(" "));
                }
            }
            "where" | "bt" => {
                let g = self.tl.regs()?;
                let binary = self.binary()?;
                let stack = guest::stack::backtrace(binary, &self.tl, g.rip, g.rbp, 32);
                print!("{}", guest::stack::format_backtrace(binary, &stack));
            }
            "step" | "s" | "stepi" | "si" => {
                let mut r = StopReason::Done;
                for _ in 0..count(1) {
                    r = self.tl.step_forward()?;
                    if r != StopReason::Done {
                        break;
                    }
                }
                self.report(r)?;
            }
            "next" | "n" => {
                let r = self.tl.next_boundary()?;
                if r == StopReason::EndOfHistory {
                    bail!("no more events");
                }
                self.report(r)?;
            }
            "continue" | "c" => {
                let r = self.tl.run_forward()?;
                self.report(r)?;
            }
            "rstep" | "rs" | "reverse-step" => {
                let mut r = StopReason::Done;
                for _ in 0..count(1) {
                    r = self.tl.step_back()?;
                    if r != StopReason::Done {
                        break;
                    }
                }
                self.report(r)?;
            }
            "rcontinue" | "rc" | "reverse-continue" => {
                let r = self.tl.run_backward()?;
                self.report(r)?;
            }
            "break" | "b" => {
                // A generic function's instantiations share a name: like gdb, a breakpoint
                // at each location rather than at one picked silently.
                let what = arg(1).context("break ADDR|SYMBOL")?;
                for a in self.addrs(what)? {
                    self.tl.set_breakpoint(a);
                    println!("breakpoint at {}", self.describe(a));
                }
            }
            "delete" | "d" => {
                let a = self.addr(arg(1).context("delete ADDR|SYMBOL")?)?;
                if !self.tl.remove_breakpoint(a) {
                    bail!("no breakpoint at {a:#x}");
                }
            }
            "watch" | "w" => {
                let a = self.addr(arg(1).context("watch ADDR [LEN]")?)?;
                let len = arg(2).and_then(parse_num).unwrap_or(8) as usize;
                let slot = self.tl.set_watchpoint(a, len, WatchKind::Write)?;
                println!("watchpoint {slot} on {a:#x} ({len} bytes, writes)");
            }
            "unwatch" => {
                let a = self.addr(arg(1).context("unwatch ADDR")?)?;
                if !self.tl.remove_watchpoint(a) {
                    bail!("no watchpoint on {a:#x}");
                }
            }
            "tasks" => {
                let guest = self
                    .guest
                    .as_ref()
                    .context("no guest kernel in this binary")?;
                let tasks = guest.tasks(&self.tl)?;
                println!("  slot  pid  state  switches  name              waits on");
                for t in &tasks {
                    println!(
                        "{} {:>4} {:>4}  {}      {:>8}  {:<16}  {}",
                        if t.current { '*' } else { ' ' },
                        t.slot,
                        t.pid,
                        t.state.letter(),
                        t.switches,
                        t.name,
                        t.wait_description().unwrap_or_default()
                    );
                }
            }
            "checkpoint" | "ck" => println!("checkpoint at {}", self.tl.checkpoint()?),
            "checkpoints" => {
                for p in self.tl.checkpoints() {
                    println!("{p}");
                }
            }
            other => bail!("unknown command {other:?} (try `help`)"),
        }
        Ok(true)
    }
}

/// Runs the prompt on the trace in `dir`.
pub fn run(dir: &Path, process: Option<u32>) -> anyhow::Result<()> {
    let mut tl = Timeline::open_with(dir, Default::default(), replayer::Console::Stdout)
        .with_context(|| format!("opening {}", dir.display()))?;
    tl.set_stop_at_faults(true);
    // A goto far into the recording, or a reverse run, replays a long way: show it.
    tl.set_progress(crate::progress::bar("replaying to"));
    let mut binary = tl.load_binary().ok();
    let mut guest = binary.as_ref().and_then(guest::detect);
    let mut at = Position::START;
    if let Some(pid) = process {
        at = tl
            .focus_process(pid)
            .with_context(|| format!("choosing process {pid}"))?;
        let (path, entry) = tl
            .focus_program()
            .with_context(|| format!("finding the program of process {pid}"))?;
        if path != tl.binary() {
            binary = guest::Binary::load_at(&path, entry).ok();
            guest = None;
        }
        tl.seek(&at).with_context(|| format!("going to {at}"))?;
        println!("rewind: process {pid} from {at}; the other processes run unseen");
    }
    println!(
        "rewind: {} events; at {at} (type `help`)",
        tl.events().len()
    );
    let mut s = Session { tl, binary, guest };
    let mut rl = rustyline::DefaultEditor::new()?;
    loop {
        let line = match rl.readline("(rewind) ") {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(line);
        match s.run(line) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => println!("error: {e:#}"),
        }
    }
    Ok(())
}
