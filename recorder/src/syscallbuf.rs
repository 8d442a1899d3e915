//! The syscall buffer, recorder side: at every stop of the running task, the calls the
//! preload library made without a stop since the last one (`tracee::syscallbuf`)
//! become syscall events — the same events the traced path would have written, their
//! memory and output taken from the records — ahead of whatever the stop itself records.
//! Between two stops only the running task ran, so the records are its own, in order.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use trace::{Event, RemoteAddr, SyscallEvent};
use tracee::syscallbuf::{self, Record};
use tracee::Stopped;

use crate::error::{Error, Result};
use crate::session::Session;

/// Why the buffer's records cannot be recorded, as `abort` names it.
pub(crate) struct Refused {
    pub what: String,
    pub why: String,
}

impl Session {
    /// Appends the buffered calls the running task made since its last stop.
    pub(crate) fn drain_buffer(&mut self, s: &Stopped) -> Result<std::result::Result<(), Refused>> {
        let records = match self.t(syscallbuf::drain(s))? {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Ok(())),
            Err(m) => {
                return Ok(Err(Refused {
                    what: "the syscall buffer".into(),
                    why: format!("{} (the program wrote over the library's buffer?)", m.0),
                }))
            }
        };
        if records.is_empty() {
            return Ok(Ok(()));
        }
        // User code ran since the last syscall exit.
        self.task.last_exit = None;
        for r in records {
            if let Err(why) = self.append_buffered(s, &r)? {
                let name = trace::sysno::name(r.nr).unwrap_or("?");
                return Ok(Err(Refused {
                    what: format!(
                        "buffered {name}({:#x}, {:#x}, …) returning {} (record at offset {})",
                        r.args[0], r.args[1], r.ret, r.offset
                    ),
                    why,
                }));
            }
        }
        Ok(Ok(()))
    }

    fn append_buffered(
        &mut self,
        s: &Stopped,
        r: &Record,
    ) -> Result<std::result::Result<(), String>> {
        if let Some(why) = self.buffered_write_into_shared_mapping(s, r)? {
            return Ok(Err(why));
        }
        let mut event = SyscallEvent {
            nr: r.nr,
            args: r.args,
            ret: r.ret,
            ticks: self.read_ticks(s)?,
            rip: RemoteAddr(syscallbuf::UNTRACED_RIP),
            path: None,
            writes: Vec::new(),
            mapping: None,
            output: None,
        };
        if let Err(why) = self.effects(s.pid(), r, &mut event, None)? {
            return Ok(Err(why));
        }
        self.append(Event::Syscall(event))?;
        Ok(Ok(()))
    }

    /// A buffered write to a file some task maps MAP_SHARED changed mapped memory at a
    /// point the recorder cannot place any more (the file position has moved on): refuse,
    /// where the traced path would have recorded it exactly.
    fn buffered_write_into_shared_mapping(
        &self,
        s: &Stopped,
        r: &Record,
    ) -> Result<Option<String>> {
        let writes = [libc::SYS_write as u64, libc::SYS_pwrite64 as u64];
        if !writes.contains(&r.nr) || r.ret <= 0 {
            return Ok(None);
        }
        let fd = tracee::abi::as_c_int(r.args[0]);
        Ok(self.shared.maps_fd(s.pid(), fd).then(|| {
            "it wrote to a file mapped MAP_SHARED, through the syscall buffer: record with \
             --no-syscall-buffer"
                .to_string()
        }))
    }
}

/// The preload library to use for `program`, or `None` when the program would not load
/// it (statically linked) or should not (a guest kernel: UML routes its host calls
/// through its own layer, whose buffering is the guest ABI's business).
pub(crate) fn preload_for(program: &Path, lib: &Path) -> Result<Option<PathBuf>> {
    use object::{Object, ObjectSection};
    let io = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { op, path, source }
    };
    let lib = std::fs::canonicalize(lib).map_err(io("find the syscall buffer library", lib))?;
    if !lib.is_file() {
        return Err(Error::Start(format!(
            "the syscall buffer library {} is not a file",
            lib.display()
        )));
    }
    // Only the ELF headers are read: a guest kernel's binary is tens of megabytes.
    let file = std::fs::File::open(program).map_err(io("open", program))?;
    let cache = object::read::ReadCache::new(file);
    let Ok(elf) = object::File::parse(&cache) else {
        // A script: its interpreter is dynamically linked as often as not.
        return Ok(Some(lib));
    };
    let dynamic = elf.section_by_name(".interp").is_some();
    let guest = elf
        .sections()
        .any(|s| s.name().is_ok_and(|n| n.starts_with(".uml.")));
    Ok((dynamic && !guest).then_some(lib))
}

/// The recorder's environment with `lib` first in LD_PRELOAD, in environ's order.
pub(crate) fn environment(lib: &Path) -> Vec<OsString> {
    let mut preload = OsString::from("LD_PRELOAD=");
    preload.push(lib);
    let mut env: Vec<OsString> = Vec::new();
    let mut placed = false;
    for (k, v) in std::env::vars_os() {
        let mut kv = k.clone();
        kv.push("=");
        if k == "LD_PRELOAD" && !placed {
            let mut p = preload.clone();
            if !v.is_empty() {
                p.push(":");
                p.push(&v);
            }
            env.push(p);
            placed = true;
            continue;
        }
        kv.push(v);
        env.push(kv);
    }
    if !placed {
        env.push(preload);
    }
    env
}
