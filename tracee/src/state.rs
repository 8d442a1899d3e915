//! A digest of everything a stopped tracee's future depends on beyond its general-purpose
//! registers: the FPU/vector state, the signal mask and the bytes of every writable
//! mapping. Between two
//! points with no system call in between, equal registers and an equal digest mean an
//! equal future, which is what lets a signal be placed in a loop without a branch
//! counter (`trace::Placement::Registers`).

use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::maps;
use crate::task::Stopped;

/// `NT_X86_XSTATE`, the regset of the full XSAVE area.
const NT_X86_XSTATE: libc::c_int = 0x202;
/// Room for any XSAVE layout the kernel reports (AVX-512 needs 2.7 KiB; AMX more).
const XSTATE_MAX: usize = 16 << 10;
/// `sizeof(struct user_fpregs_struct)` on x86-64.
pub const FPREGS_LEN: usize = 512;
/// The XSAVE header: which components are in use. Left out of the digest, since the
/// same register values can be saved with different in-use bits; the kernel writes init
/// values for components not in use, so the values themselves say all.
const XSAVE_HEADER: std::ops::Range<usize> = 512..576;
/// MXCSR_MASK (a CPU constant) and the legacy area's reserved tail (the kernel's
/// software bytes): not program state.
const FXSAVE_SKIP: [std::ops::Range<usize>; 2] = [28..32, 416..512];
const CHUNK: usize = 1 << 20;
/// The x86-64 ABI's red zone below rsp, which leaf code uses without moving rsp.
const RED_ZONE: u64 = 128;

impl Stopped {
    /// The raw XSAVE area (standard format) as PTRACE_GETREGSET returns it.
    pub fn xstate(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; XSTATE_MAX];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: PTRACE_GETREGSET writes at most `iov_len` bytes to `iov_base`, which
        // points at `buf`, owned and alive for the call, and shrinks `iov_len` to what it
        // wrote; `iov` itself is a valid iovec borrowed for the call.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETREGSET,
                self.pid().as_raw(),
                NT_X86_XSTATE as usize,
                &mut iov as *mut libc::iovec,
            )
        };
        if r < 0 {
            return Err(Error::os("PTRACE_GETREGSET NT_X86_XSTATE", self.pid())(
                Errno::last(),
            ));
        }
        buf.truncate(iov.iov_len);
        Ok(buf)
    }

    /// The legacy FXSAVE area (`struct user_fpregs_struct`) as PTRACE_GETFPREGS returns it.
    pub fn fpregs(&self) -> Result<[u8; FPREGS_LEN]> {
        let mut buf = [0u8; FPREGS_LEN];
        // SAFETY: PTRACE_GETFPREGS writes exactly sizeof(struct user_fpregs_struct), 512
        // bytes, at `data`, which points at `buf`, owned, that long and alive for the call.
        let r = unsafe {
            libc::ptrace(
                libc::PTRACE_GETFPREGS,
                self.pid().as_raw(),
                0usize,
                buf.as_mut_ptr(),
            )
        };
        if r < 0 {
            return Err(Error::os("PTRACE_GETFPREGS", self.pid())(Errno::last()));
        }
        Ok(buf)
    }

    /// SHA-256 of the FPU/vector registers, the signal mask and every writable mapping
    /// (its range, permissions and bytes; the stack from the red zone up), read through
    /// /proc/PID/mem so that pages mapped without PROT_READ count too. Pages that cannot be read (a file mapping past its end) count
    /// as such, by position.
    pub fn state_digest(&self) -> Result<[u8; 32]> {
        let mut h = Sha256::new();
        let mut x = self.xstate()?;
        for r in FXSAVE_SKIP.iter().chain([&XSAVE_HEADER]) {
            if let Some(bytes) = x.get_mut(r.clone()) {
                bytes.fill(0);
            }
        }
        h.update(&x);
        let pid = self.pid();
        let io = |op: &'static str| {
            move |e: std::io::Error| Error::Os {
                op,
                pid: pid.as_raw(),
                source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            }
        };
        // The signal mask is state a program changes without a traced call.
        let sets = maps::inherited_signals(pid).map_err(io("read /proc/PID/status"))?;
        h.update(sets.blocked.to_le_bytes());
        let mappings = maps::read_maps(pid).map_err(io("read /proc/PID/maps"))?;
        let mem =
            std::fs::File::open(format!("/proc/{pid}/mem")).map_err(io("open /proc/PID/mem"))?;
        let mut buf = vec![0u8; CHUNK];
        // The stack below the red zone is dead: a signal frame written there at record
        // time holds the last trap's number and address (trapno, cr2), which differ at
        // replay, where the last trap was a breakpoint.
        let live_stack = self.regs()?.rsp().saturating_sub(RED_ZONE);
        for (start, end, perms) in writable_ranges(&mappings) {
            let start = if (start..end).contains(&live_stack) {
                live_stack
            } else {
                start
            };
            h.update(start.to_le_bytes());
            h.update(end.to_le_bytes());
            h.update(perms.as_bytes());
            let mut at = start;
            while at < end {
                let n = usize::try_from(end - at).map_or(CHUNK, |left| left.min(CHUNK));
                match mem.read_exact_at(&mut buf[..n], at) {
                    Ok(()) => h.update(&buf[..n]),
                    Err(_) => hash_pages(&mem, &mut h, at, &mut buf[..n]),
                }
                at += n as u64;
            }
        }
        Ok(h.finalize().into())
    }
}

/// The writable memory as address ranges with their permissions, adjacent mappings of
/// equal permissions joined: where the kernel draws the lines between them is not
/// program state (a replay maps a file's data anonymously, and the kernel then merges it
/// with the anonymous bss after it).
fn writable_ranges(mappings: &[maps::Mapping]) -> Vec<(u64, u64, &str)> {
    let mut out: Vec<(u64, u64, &str)> = Vec::new();
    for m in mappings.iter().filter(|m| m.perms.contains('w')) {
        match out.last_mut() {
            Some(last) if last.1 == m.start.raw() && last.2 == m.perms => last.1 = m.end.raw(),
            _ => out.push((m.start.raw(), m.end.raw(), &m.perms)),
        }
    }
    out
}

/// A chunk that did not read whole: page by page, an unreadable page as a marker.
fn hash_pages(mem: &std::fs::File, h: &mut Sha256, start: u64, buf: &mut [u8]) {
    const PAGE: usize = 4096;
    for (i, page) in buf.chunks_mut(PAGE).enumerate() {
        let at = start + (i * PAGE) as u64;
        match mem.read_exact_at(page, at) {
            Ok(()) => h.update(&*page),
            Err(_) => {
                h.update(b"unreadable page at ");
                h.update(at.to_le_bytes());
            }
        }
    }
}
