//! Lockdep's view of locking in a Linux kernel built with CONFIG_PROVE_LOCKING
//! (kernel/locking/lockdep.c): its lock classes, named as its reports name them, and the
//! two places its graph changes — `add_lock_to_list`, called for each new dependency
//! (once into the earlier class's `locks_after`, once into the later one's
//! `locks_before`), and `print_circular_bug`, where it refuses a dependency that would
//! close a cycle and reports it. A replay stopped at those two sees the whole lock-order
//! graph the kernel built, at one stop per dependency rather than one per acquisition.

use crate::binary::Binary;
use crate::error::Result;
use crate::memory::{self, c_str, Memory};

use super::layout;

/// The longest class name read (lockdep's are C identifiers and expressions).
const MAX_NAME: usize = 128;

/// Lockdep's symbols and layouts in one kernel.
#[derive(Debug, Clone, Copy)]
pub struct Lockdep {
    add_lock_to_list: u64,
    print_circular_bug: u64,
    lock_classes: u64,
    class_size: u64,
    locks_after: u64,
    name: u64,
    name_version: u64,
    subclass: u64,
    wait_type_inner: u64,
    key: u64,
    /// `held_lock::acquire_ip`.
    acquire_ip: u64,
    usage_mask: u64,
    wait_type_outer: u64,
    /// The `lock_usage_bit` of each state's write and read use (`LOCK_USED_IN_HARDIRQ`,
    /// `…_READ`, then SOFTIRQ's), in the order lockdep prints them.
    used_in: [u32; 4],
    /// `LOCK_USAGE_DIR_MASK`: a state's ENABLED bit is its USED_IN bit plus this.
    dir: u32,
    /// `LD_WAIT_SLEEP` (its value depends on the config): a class one may sleep holding.
    wait_sleep: i64,
    /// `held_lock::class_idx`: byte, first bit, width.
    class_idx: (u64, u32, u32),
}

/// One lock class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// Its `struct lock_class`.
    pub addr: u64,
    /// As lockdep prints it: the name, `#version` past the first, `/subclass`.
    pub name: String,
    /// Its `struct lock_class_key`.
    pub key: u64,
    /// One may sleep holding it (a mutex, rwsem, …), rather than spin.
    pub sleeps: bool,
    /// Its usage and wait types as lockdep prints them after the name: `{+.+.}-{3:3}`.
    pub usage: String,
}

/// A change to lockdep's graph at one of its probes, by class address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The dependency `from` → `to` (`to` taken while `from` was held) is new.
    Added { from: u64, to: u64 },
    /// Taking `to` while holding `from` would close a cycle: lockdep reports it and turns
    /// itself off. `held_at` is where `from` was taken (its `acquire_ip`, a return
    /// address).
    Refused { from: u64, to: u64, held_at: u64 },
}

impl Lockdep {
    /// Lockdep in `bin`: an error when the kernel was built without it.
    pub fn new(bin: &Binary) -> Result<Lockdep> {
        let t = crate::dwarf::types(
            bin.path(),
            &["lock_class", "held_lock"],
            &["lockdep_wait_type", "lock_usage_bit"],
        )?;
        let (class, held) = (&t.structs["lock_class"], &t.structs["held_lock"]);
        let wait_sleep = t.enums["lockdep_wait_type"]
            .get("LD_WAIT_SLEEP")
            .copied()
            .ok_or_else(|| layout("enum lockdep_wait_type has no LD_WAIT_SLEEP".into()))?;
        let bits = &t.enums["lock_usage_bit"];
        let bit = |name: &str| -> Result<u32> {
            bits.get(name)
                .and_then(|&v| u32::try_from(v).ok())
                .filter(|&v| v < 64)
                .ok_or_else(|| layout(format!("enum lock_usage_bit has no {name} below 64")))
        };
        let mut used_in = [0u32; 4];
        for (b, state) in
            used_in
                .iter_mut()
                .zip(["HARDIRQ", "HARDIRQ_READ", "SOFTIRQ", "SOFTIRQ_READ"])
        {
            *b = bit(&format!("LOCK_USED_IN_{state}"))?;
        }
        let dir = bit("LOCK_ENABLED_HARDIRQ")?
            .checked_sub(used_in[0])
            .filter(|d| used_in.iter().all(|b| b + d < 64))
            .ok_or_else(|| {
                layout("LOCK_ENABLED_HARDIRQ is not above LOCK_USED_IN_HARDIRQ".into())
            })?;
        let class_idx = held.bit_field("class_idx")?;
        if class_idx.2 == 0 || class_idx.2 > 24 {
            return Err(layout(format!(
                "held_lock.class_idx is {} bits wide",
                class_idx.2
            )));
        }
        Ok(Lockdep {
            add_lock_to_list: bin.require("add_lock_to_list")?,
            print_circular_bug: bin.require("print_circular_bug")?,
            lock_classes: bin.require("lock_classes")?,
            class_size: class.size,
            locks_after: class.offset("locks_after")?,
            name: class.offset("name")?,
            name_version: class.offset("name_version")?,
            subclass: class.offset("subclass")?,
            wait_type_inner: class.offset("wait_type_inner")?,
            key: class.offset("key")?,
            acquire_ip: held.offset("acquire_ip")?,
            usage_mask: class.offset("usage_mask")?,
            wait_type_outer: class.offset("wait_type_outer")?,
            used_in,
            dir,
            wait_sleep,
            class_idx,
        })
    }

    /// Where to stop: `add_lock_to_list` and `print_circular_bug`.
    pub fn probes(&self) -> [u64; 2] {
        [self.add_lock_to_list, self.print_circular_bug]
    }

    /// What the probe at `rip` is about to do, from its first four arguments; `None` for
    /// the backward half of a new dependency (the same one, into `locks_before`).
    pub fn change_at(&self, mem: &dyn Memory, rip: u64, args: [u64; 4]) -> Result<Option<Change>> {
        if rip == self.add_lock_to_list {
            // add_lock_to_list(this, links_to, head, …): `this` goes after `links_to`.
            let [this, links_to, head, _] = args;
            return Ok((head == links_to.wrapping_add(self.locks_after)).then_some(
                Change::Added {
                    from: links_to,
                    to: this,
                },
            ));
        }
        if rip == self.print_circular_bug {
            // print_circular_bug(this, target, check_src, check_tgt): check_src is the lock
            // being taken, check_tgt the one held (check_noncircular(next, prev)).
            let [_, _, next, prev] = args;
            return Ok(Some(Change::Refused {
                from: self.class_of_held(mem, prev)?,
                to: self.class_of_held(mem, next)?,
                held_at: memory::u64_at(
                    mem,
                    prev.wrapping_add(self.acquire_ip),
                    "held_lock.acquire_ip",
                )?,
            }));
        }
        Ok(None)
    }

    /// The class of the `struct held_lock` at `held`.
    fn class_of_held(&self, mem: &dyn Memory, held: u64) -> Result<u64> {
        let (at, shift, width) = self.class_idx;
        let word = memory::u32_at(mem, held.wrapping_add(at), "held_lock.class_idx")?;
        let idx = u64::from((word >> shift) & ((1u32 << width) - 1));
        Ok(self
            .lock_classes
            .wrapping_add(idx.wrapping_mul(self.class_size)))
    }

    /// The class at `addr`, which must be an element of `lock_classes`.
    pub fn class(&self, mem: &dyn Memory, addr: u64) -> Result<Class> {
        let (_, _, width) = self.class_idx;
        let end = self
            .class_size
            .checked_mul(1u64 << width)
            .and_then(|n| n.checked_add(self.lock_classes));
        let off = addr.wrapping_sub(self.lock_classes);
        if end.is_none_or(|e| addr >= e)
            || addr < self.lock_classes
            || self.class_size == 0
            || !off.is_multiple_of(self.class_size)
        {
            return Err(layout(format!(
                "{addr:#x} is not an element of lock_classes"
            )));
        }
        let field = |o: u64| addr.wrapping_add(o);
        let name_ptr = memory::u64_at(mem, field(self.name), "lock_class.name")?;
        let key = memory::u64_at(mem, field(self.key), "lock_class.key")?;
        let version = memory::u32_at(mem, field(self.name_version), "lock_class.name_version")?;
        let subclass = memory::u32_at(mem, field(self.subclass), "lock_class.subclass")?;
        let wait = memory::bytes(
            mem,
            field(self.wait_type_inner),
            1,
            "lock_class.wait_type_inner",
        )?;
        let outer = memory::bytes(
            mem,
            field(self.wait_type_outer),
            1,
            "lock_class.wait_type_outer",
        )?;
        let mask = memory::u64_at(mem, field(self.usage_mask), "lock_class.usage_mask")?;
        // get_usage_char(): '+' enabled in the state, '-' used in it, '?' both.
        let usage: String = self
            .used_in
            .iter()
            .map(|&b| {
                let used = mask & (1 << b) != 0;
                let enabled = mask & (1 << (b + self.dir)) != 0;
                match (used, enabled) {
                    (true, true) => '?',
                    (true, false) => '-',
                    (false, true) => '+',
                    (false, false) => '.',
                }
            })
            .collect();
        // print_lock_name(): the outer wait type, or the inner when it has none.
        let outer = if outer[0] != 0 { outer[0] } else { wait[0] };
        let mut name = if name_ptr == 0 {
            format!("key {key:#x}")
        } else {
            let b = mem.read(name_ptr, MAX_NAME).unwrap_or_default();
            c_str(&b, 0, b.len())
        };
        // __print_lock_name's suffixes.
        if name_ptr != 0 && version > 1 {
            name.push_str(&format!("#{version}"));
        }
        if name_ptr != 0 && subclass != 0 {
            name.push_str(&format!("/{subclass}"));
        }
        Ok(Class {
            addr,
            name,
            key,
            sleeps: i64::from(wait[0]) >= self.wait_sleep,
            usage: format!("{{{usage}}}-{{{outer}:{}}}", wait[0]),
        })
    }
}
