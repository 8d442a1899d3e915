//! Use-after-free reports in KASAN's layout. The [`ObjectTracker`] follows every slab
//! allocation and free (and interrupt nesting, to say a free came from an interrupt);
//! [`KasanReport::build`] then explains a crash: the object containing the faulting
//! address, or — for a general protection fault on a poisoned pointer (slab poison
//! 0x6b6b…, non-canonical, so the kernel gets no fault address) — the freed object the
//! pointer was loaded from, found by decoding the load that produced the poisoned
//! register and evaluating its address operand: exactly, when the replay was run back to
//! that load ([`crate::poison_load`]), else statically, with capstone over the faulting
//! function and the crash registers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The first page, where a NULL pointer's fields lie.
const PAGE_SIZE: u64 = 4096;

use crate::disasm::{disassemble, Insn, MemOperand};
use crate::events::{Crash, Event, EventKind, ObjectOp, Pos, Regs, TaskRef};
use crate::symbols::{format_stack, symbol_offset, Resolve};

/// The byte freed slab objects are filled with (kernel/src/mm: POISON_FREE).
pub const POISON_FREE: u8 = 0x6b;

/// Where an allocation or free happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjSite {
    pub pos: Pos,
    pub task: TaskRef,
    pub stack: Vec<u64>,
    /// The interrupt being handled, if it happened in interrupt context.
    pub irq: Option<u32>,
}

/// One object's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjRecord {
    pub ptr: u64,
    pub size: u64,
    pub cache: String,
    pub alloc: ObjSite,
    pub free: Option<ObjSite>,
}

impl ObjRecord {
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.ptr && addr < self.ptr + self.size.max(1)
    }
}

/// A memory access to a watched object, found by the collector (a watchpoint run over
/// the interval between the free and the crash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub pos: Pos,
    pub task: TaskRef,
    pub stack: Vec<u64>,
    pub addr: u64,
    pub size: u8,
    pub write: bool,
}

/// Every object's allocation and free, in replay order.
#[derive(Debug, Default)]
pub struct ObjectTracker {
    objects: Vec<ObjRecord>,
    /// Live object start → index in `objects`.
    live: BTreeMap<u64, usize>,
    /// Interrupts being handled, innermost last: the irq and the stack at its entry.
    irqs: Vec<(u32, Vec<u64>)>,
    /// The crash, if the recording ends in one.
    crash: Option<Event>,
    /// The stack where the interrupt the crash happened in was entered, if it did.
    crash_irq: Option<Vec<u64>>,
}

impl ObjectTracker {
    pub fn new() -> ObjectTracker {
        ObjectTracker::default()
    }

    /// Feeds one event; only allocations, frees, interrupts and the crash matter here.
    pub fn feed(&mut self, ev: &Event) {
        match &ev.kind {
            EventKind::Alloc(op) => self.alloc(ev, op),
            EventKind::Free(op) => self.free(ev, op),
            EventKind::IrqEnter { irq } => self.irqs.push((*irq, ev.stack.clone())),
            EventKind::IrqExit { .. } => {
                self.irqs.pop();
            }
            EventKind::Crash(_) => {
                self.crash = Some(ev.clone());
                self.crash_irq = self.irqs.last().map(|(_, stack)| stack.clone());
            }
            _ => {}
        }
    }

    fn site(&self, ev: &Event) -> ObjSite {
        ObjSite {
            pos: ev.pos,
            task: ev.task.clone(),
            stack: ev.stack.clone(),
            irq: self.irqs.last().map(|&(irq, _)| irq),
        }
    }

    fn alloc(&mut self, ev: &Event, op: &ObjectOp) {
        let rec = ObjRecord {
            ptr: op.ptr,
            size: op.size,
            cache: op.cache.clone(),
            alloc: self.site(ev),
            free: None,
        };
        self.live.insert(op.ptr, self.objects.len());
        self.objects.push(rec);
    }

    fn free(&mut self, ev: &Event, op: &ObjectOp) {
        let site = self.site(ev);
        match self.live.remove(&op.ptr) {
            Some(i) => self.objects[i].free = Some(site),
            // Allocated before collection began: keep what the free tells.
            None => self.objects.push(ObjRecord {
                ptr: op.ptr,
                size: op.size,
                cache: op.cache.clone(),
                alloc: ObjSite {
                    pos: Pos::START,
                    task: TaskRef::new(0, "?"),
                    stack: Vec::new(),
                    irq: None,
                },
                free: Some(site),
            }),
        }
    }

    /// The crash event, if one was fed.
    pub fn crash(&self) -> Option<&Event> {
        self.crash.as_ref()
    }

    /// The object containing `addr`: the live one, else the most recently freed one.
    pub fn object_at(&self, addr: u64) -> Option<&ObjRecord> {
        if let Some((_, &i)) = self.live.range(..=addr).next_back() {
            if self.objects[i].contains(addr) {
                return Some(&self.objects[i]);
            }
        }
        self.objects
            .iter()
            .rev()
            .find(|o| o.free.is_some() && o.contains(addr))
    }

    pub fn objects(&self) -> &[ObjRecord] {
        &self.objects
    }
}

/// Whether a value looks like (or is derived from) a pointer read out of poisoned memory.
pub fn is_poison(v: u64) -> bool {
    // The high six bytes survive any small offset added to the loaded pointer.
    v >> 16 == 0x6b6b_6b6b_6b6b
}

/// How the buggy address was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The fault address itself lies in the object.
    FaultAddress,
    /// A poisoned pointer in `reg` (non-canonical: general protection fault); it was
    /// loaded from the object by `load`, at position `at` when the replay found it.
    PoisonedPointer {
        reg: String,
        value: u64,
        load: Insn,
        at: Option<Pos>,
    },
}

/// The load that put a poisoned pointer into a register, found by running the replay
/// backwards from the fault ([`crate::poison_load`]): exact, unlike the static search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLoad {
    /// The register of the faulting address the search started from.
    pub reg: String,
    pub insn: Insn,
    /// The address it read, evaluated with the registers at the load.
    pub addr: u64,
    pub size: u8,
    pub pos: Pos,
    /// Copies the pointer went through between the load and the fault (a stack slot
    /// stored and reloaded, a register move), in execution order.
    pub via: Vec<(Pos, Insn)>,
}

/// The explanation of one crash.
#[derive(Debug, Clone)]
pub struct KasanReport {
    pub crash_pos: Pos,
    pub task: TaskRef,
    pub stack: Vec<u64>,
    pub regs: Regs,
    pub signal: i32,
    pub fault_addr: Option<u64>,
    /// The faulting instruction, if its bytes decode.
    pub insn: Option<Insn>,
    /// The bad access: address, size, write.
    pub access: Option<(u64, u8, bool)>,
    pub finding: Option<Finding>,
    pub object: Option<ObjRecord>,
    /// Accesses to the object between its free and the crash.
    pub accesses: Vec<Access>,
    /// Why no object could be named, when none was.
    pub unexplained: Option<String>,
    /// Copies of the poisoned pointer between its load and the fault, in execution order.
    pub via: Vec<(Pos, Insn)>,
    /// The stack where the interrupt the crash happened in was entered, if it did.
    pub irq_entry: Option<Vec<u64>>,
}

fn is_write(insn: &Insn) -> bool {
    // Intel syntax puts the destination first: a memory first operand is a store, except
    // for the instructions that only read their operands.
    let reads_only = matches!(insn.mnemonic.as_str(), "cmp" | "test" | "push" | "bt");
    !reads_only
        && insn
            .operands
            .split(", ")
            .next()
            .is_some_and(|d| d.contains('['))
}

fn first_mem(insn: &Insn) -> Option<&MemOperand> {
    insn.mem.iter().find(|m| m.base.as_deref() != Some("rip"))
}

/// Finds, in the code of the faulting function before `rip`, the last instruction that
/// loaded register `reg` from memory, provided its base register is not overwritten
/// between that load and `rip` (so the crash registers still give its address).
fn find_load(func: &[Insn], rip: u64, reg: &str) -> Option<Insn> {
    let before: Vec<&Insn> = func.iter().filter(|i| i.addr < rip).collect();
    let writes = |i: &Insn, r: &str| {
        i.operands
            .split(", ")
            .next()
            .is_some_and(|d| same_reg(d.trim(), r))
            && !i.mnemonic.starts_with("cmp")
            && !i.mnemonic.starts_with("test")
    };
    let idx = before
        .iter()
        .rposition(|i| writes(i, reg) && i.mnemonic.starts_with("mov") && first_mem(i).is_some())?;
    let load = before[idx];
    let m = first_mem(load)?;
    for later in &before[idx + 1..] {
        for r in [m.base.as_deref(), m.index.as_deref()]
            .into_iter()
            .flatten()
        {
            if writes(later, r) {
                return None;
            }
        }
    }
    Some(load.clone())
}

/// Whether two register names denote the same 64-bit register (`ecx` and `rcx`).
fn same_reg(a: &str, b: &str) -> bool {
    let r = Regs::default();
    let full = |n: &str| -> Option<String> {
        r.get(n)?;
        Some(match n {
            "eax" | "ax" | "al" => "rax".into(),
            "ebx" | "bx" | "bl" => "rbx".into(),
            "ecx" | "cx" | "cl" => "rcx".into(),
            "edx" | "dx" | "dl" => "rdx".into(),
            "esi" | "si" | "sil" => "rsi".into(),
            "edi" | "di" | "dil" => "rdi".into(),
            "ebp" | "bp" | "bpl" => "rbp".into(),
            "esp" | "sp" | "spl" => "rsp".into(),
            n => n.trim_end_matches(['d', 'w', 'b']).to_string(),
        })
    };
    match (full(a), full(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The poisoned register (and its value) in the faulting instruction's address, when the
/// crash is a general protection fault without a fault address.
pub fn poisoned_register(c: &Crash) -> Option<(String, u64)> {
    if c.fault_addr.is_some_and(|a| a != 0) {
        return None;
    }
    let insn = disassemble(&c.code, c.regs.rip, 1)
        .ok()?
        .into_iter()
        .next()?;
    let m = first_mem(&insn)?;
    let found = [m.base.as_deref(), m.index.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|r| {
            c.regs
                .get(r)
                .filter(|&v| is_poison(v))
                .map(|v| (r.to_string(), v))
        });
    found
}

/// How many frames of `stack` (innermost first, a pc then return addresses) belong to an
/// interrupt entered with `entry` on the stack: those above the frames the two share,
/// which are the interrupted task's (compared by return address, so frame 0 of either,
/// a pc, never counts as shared).
fn irq_frames(stack: &[u64], entry: &[u64]) -> usize {
    let shared = stack
        .iter()
        .skip(1)
        .rev()
        .zip(entry.iter().skip(1).rev())
        .take_while(|(a, b)| a == b)
        .count();
    stack.len() - shared
}

impl KasanReport {
    /// Explains `crash` (a [`EventKind::Crash`] event) with the tracked objects.
    /// `function_code` is the faulting function's code (start address and bytes) for
    /// tracing a poisoned pointer back to its load when `found` (the load the replay ran
    /// back to) is not given; `accesses` are the accesses to the object between its free
    /// and the crash, if the collector found them.
    /// Returns `None` when the event is not a crash.
    pub fn build(
        tracker: &ObjectTracker,
        crash: &Event,
        function_code: Option<(u64, &[u8])>,
        found: Option<&FoundLoad>,
        accesses: &[Access],
    ) -> Option<KasanReport> {
        let EventKind::Crash(c) = &crash.kind else {
            return None;
        };
        let insn = disassemble(&c.code, c.regs.rip, 1)
            .ok()
            .and_then(|v| v.into_iter().next());
        let mut report = KasanReport {
            crash_pos: crash.pos,
            task: crash.task.clone(),
            stack: crash.stack.clone(),
            regs: c.regs.clone(),
            signal: c.signal,
            fault_addr: c.fault_addr.filter(|&a| a != 0),
            insn: insn.clone(),
            access: None,
            finding: None,
            object: None,
            accesses: Vec::new(),
            unexplained: None,
            via: Vec::new(),
            irq_entry: tracker.crash_irq.clone(),
        };
        let mem = insn.as_ref().and_then(first_mem).cloned();
        let size = mem.as_ref().map_or(8, |m| m.size);
        let write = insn.as_ref().is_some_and(is_write);

        if let Some(addr) = report.fault_addr {
            report.access = Some((addr, size, write));
            if let Some(o) = tracker.object_at(addr) {
                report.finding = Some(Finding::FaultAddress);
                report.object = Some(o.clone());
            } else {
                report.unexplained = Some(format!(
                    "the fault address {addr:#x} is in no object allocated during the recording"
                ));
            }
        } else {
            // No fault address: find the poisoned register the access went through.
            let poisoned = mem.as_ref().and_then(|m| {
                [m.base.as_deref(), m.index.as_deref()]
                    .into_iter()
                    .flatten()
                    .find(|r| c.regs.get(r).is_some_and(is_poison))
                    .map(str::to_string)
            });
            match poisoned {
                None => {
                    report.unexplained = Some(
                        "no fault address and no poisoned register in the faulting instruction's address"
                            .to_string(),
                    )
                }
                Some(reg) => {
                    let value = c.regs.get(&reg).unwrap_or(0);
                    // A load found for another register explains nothing here.
                    let found = found.filter(|f| f.reg == reg);
                    let load = match found {
                        Some(f) => Some(f.insn.clone()),
                        None => function_code.and_then(|(start, bytes)| {
                            let func = disassemble(bytes, start, usize::MAX / 2).ok()?;
                            find_load(&func, c.regs.rip, &reg)
                        }),
                    };
                    let src = match found {
                        Some(f) => Some((f.addr, f.size)),
                        None => load.as_ref().and_then(|l| {
                            let m = first_mem(l)?;
                            Some((m.address(|r| c.regs.get(r))?, m.size))
                        }),
                    };
                    match (load, src) {
                        (Some(load), Some((addr, sz))) => {
                            report.access = Some((addr, sz, false));
                            report.finding = Some(Finding::PoisonedPointer {
                                reg: reg.clone(),
                                value,
                                load,
                                at: found.map(|f| f.pos),
                            });
                            report.via = found.map(|f| f.via.clone()).unwrap_or_default();
                            match tracker.object_at(addr) {
                                Some(o) => report.object = Some(o.clone()),
                                None => {
                                    report.unexplained = Some(format!(
                                        "the pointer in {reg} was loaded from {addr:#x}, which is in no object allocated during the recording"
                                    ))
                                }
                            }
                        }
                        _ => {
                            report.unexplained = Some(format!(
                                "{reg} = {value:#x} is slab poison, but the load that produced it was not found in the faulting function"
                            ))
                        }
                    }
                }
            }
        }
        if let Some(o) = &report.object {
            if let Some(f) = &o.free {
                report.accesses = accesses
                    .iter()
                    .filter(|a| o.contains(a.addr) && a.pos > f.pos && a.pos <= crash.pos)
                    .cloned()
                    .collect();
            }
        }
        Some(report)
    }

    /// Whether the object was already freed at the crash.
    pub fn is_use_after_free(&self) -> bool {
        self.object.as_ref().is_some_and(|o| o.free.is_some())
    }

    /// The faulting instruction and, for a poisoned pointer, where it was loaded and
    /// copied on the way to the fault.
    fn fault_lines(&self, res: &dyn Resolve) -> String {
        let mut out = String::new();
        if let Some(i) = &self.insn {
            let _ = writeln!(
                out,
                "faulting instruction: {} ({})",
                i.text(),
                symbol_offset(res, i.addr)
            );
        }
        if let Some(Finding::PoisonedPointer {
            reg,
            value,
            load,
            at,
        }) = &self.finding
        {
            let _ = writeln!(
                out,
                "{reg} = {value:#x} was loaded by: {} ({})",
                load.text(),
                symbol_offset(res, load.addr)
            );
            if let (Some(at), Some((addr, _, _))) = (at, self.access) {
                let inside = match &self.object {
                    Some(o) if o.free.is_some() => "inside the freed object",
                    Some(_) => "inside a live object",
                    None => "in no known object",
                };
                let _ = writeln!(
                    out,
                    "The pointer was loaded at {at} by `{}` from {addr:#x}, {inside}.",
                    load.text()
                );
                for (pos, i) in &self.via {
                    let _ = writeln!(
                        out,
                        " then copied at {pos} by `{}` ({})",
                        i.text(),
                        symbol_offset(res, i.addr)
                    );
                }
            }
        }
        out
    }

    fn site_header(out: &mut String, what: &str, s: &ObjSite) {
        let ctx = match s.irq {
            Some(irq) => format!(" in interrupt (irq {irq})"),
            None => String::new(),
        };
        let _ = writeln!(out, "{what} by task {} ({}){ctx}:", s.task.pid, s.task.name);
        let _ = writeln!(out, " position: {}", s.pos);
    }

    /// The report in KASAN's layout (addresses as its `%px`: 16 hex digits, no `0x`).
    /// KASAN reports the first bad access: with a poisoned pointer, that is the load that
    /// read it from the freed object, so the header, the position and the call trace are
    /// the load's, and the fault it led to later (which KASAN would have prevented)
    /// follows the kernel's sections as Rewind's own.
    pub fn render_text(&self, res: &dyn Resolve) -> String {
        let mut out = String::new();
        let rule = "==================================================================";
        let load = match &self.finding {
            Some(Finding::PoisonedPointer { load, at, .. }) => Some((load, *at)),
            _ => None,
        };
        let first_pc = load.map_or(self.regs.rip, |(l, _)| l.addr);
        let func = symbol_offset(res, first_pc);
        let _ = writeln!(out, "{rule}");
        if load.is_none() && self.fault_addr.is_none() {
            let _ = writeln!(out, "general protection fault (signal {})", self.signal);
        }
        let addr = self.access.map(|a| a.0).or(self.fault_addr);
        let kind = match &self.object {
            Some(o) if o.free.is_some() => "slab-use-after-free",
            Some(_) => "invalid-access",
            // get_wild_bug_type(): an address in the first page is a NULL pointer's
            // field. (Its user-memory-access, below TASK_SIZE, has no meaning for a
            // kernel that is itself a user process.)
            None if addr.is_some_and(|a| a < PAGE_SIZE) => "null-ptr-deref",
            None => "wild-memory-access",
        };
        let _ = writeln!(out, "BUG: KASAN: {kind} in {func}");
        match self.access {
            Some((addr, size, write)) => {
                let _ = writeln!(
                    out,
                    "{} of size {size} at addr {addr:016x} by task {}",
                    if write { "Write" } else { "Read" },
                    self.task
                );
            }
            None => {
                let _ = writeln!(out, "Access of unknown address by task {}", self.task);
            }
        }
        match load {
            Some((_, Some(at))) => {
                let _ = writeln!(out, "position: {at}");
            }
            Some((_, None)) => {
                let _ = writeln!(
                    out,
                    "position: before {} (the fault; the load's own was not found)",
                    self.crash_pos
                );
            }
            None => {
                let _ = writeln!(out, "position: {}", self.crash_pos);
                out.push_str(&self.fault_lines(res));
            }
        }
        out.push_str("\nCall Trace:\n");
        // The load is in the faulting function's own frame: the same callers.
        let stack: Vec<u64> = std::iter::once(first_pc)
            .chain(self.stack.iter().skip(1).copied())
            .collect();
        // As dump_stack marks them: the interrupt's frames, then the interrupted task's.
        let task_from = self
            .irq_entry
            .as_ref()
            .map_or(0, |entry| irq_frames(&stack, entry));
        if task_from > 0 {
            out.push_str(" <IRQ>\n");
            out.push_str(&format_stack(res, &stack[..task_from], true, " "));
            out.push_str(" </IRQ>\n");
        }
        if task_from < stack.len() {
            out.push_str(" <TASK>\n");
            out.push_str(&format_stack(res, &stack[task_from..], task_from == 0, " "));
            out.push_str(" </TASK>\n");
        }

        if let Some(o) = &self.object {
            out.push('\n');
            Self::site_header(&mut out, "Allocated", &o.alloc);
            out.push_str(&format_stack(res, &o.alloc.stack, false, " "));
            if let Some(f) = &o.free {
                out.push('\n');
                Self::site_header(&mut out, "Freed", f);
                out.push_str(&format_stack(res, &f.stack, false, " "));
            }
            let addr = self.access.map_or(o.ptr, |a| a.0);
            let _ = writeln!(
                out,
                "\nThe buggy address belongs to the object at {:016x}\n which belongs to the cache {} of size {}",
                o.ptr, o.cache, o.size
            );
            let _ = writeln!(
                out,
                "The buggy address is located {} bytes inside of\n {} {}-byte region [{:016x}, {:016x})",
                addr - o.ptr,
                if o.free.is_some() { "freed" } else { "allocated" },
                o.size,
                o.ptr,
                o.ptr + o.size
            );
            if let Some(f) = &o.free {
                out.push_str("\nAccesses to the object between the free and the crash:\n");
                let _ = writeln!(out, " (from {} to {})", f.pos, self.crash_pos);
                if self.accesses.is_empty() {
                    out.push_str(" none recorded besides the faulting one\n");
                }
                for a in &self.accesses {
                    let _ = writeln!(
                        out,
                        " {} of size {} at addr {:016x} (offset {}) by task {} at position {}",
                        if a.write { "Write" } else { "Read" },
                        a.size,
                        a.addr,
                        a.addr - o.ptr,
                        a.task,
                        a.pos
                    );
                    out.push_str(&format_stack(res, &a.stack, true, "   "));
                }
            }
        }
        if let Some(Finding::PoisonedPointer { value, .. }) = &self.finding {
            let _ = writeln!(
                out,
                "\nWhat the program did next, unchecked (KASAN would have stopped at the read above):\n\
                 general protection fault, probably for non-canonical address {value:#x}: slab poison ({POISON_FREE:#x}), a pointer read from freed memory\n\
                 position: {}\n\
                 in {}",
                self.crash_pos,
                symbol_offset(res, self.regs.rip)
            );
            out.push_str(&self.fault_lines(res));
        }
        if let Some(why) = &self.unexplained {
            let _ = writeln!(out, "\nNo object found: {why}.");
        }
        out.push_str("\nRegisters:\n");
        for chunk in self.regs.named().chunks(3) {
            let line: Vec<String> = chunk
                .iter()
                .map(|(n, v)| format!("{:>6}: {v:#018x}", n.to_uppercase()))
                .collect();
            let _ = writeln!(out, "{}", line.join(" "));
        }
        let _ = writeln!(out, "{rule}");
        out
    }
}

/// The text for a recording that did not crash.
pub const NO_CRASH: &str = "No memory fault in this recording: the guest took no SIGSEGV or SIGBUS, so there is no faulting access to explain.\n";
