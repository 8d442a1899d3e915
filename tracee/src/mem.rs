//! Reading and writing tracee memory: process_vm_readv/writev for speed, and
//! /proc/PID/mem for what they refuse: writes to pages the tracee cannot write (code,
//! read-only data) and reads of pages mapped without PROT_READ (Linux UML maps its kernel
//! stacks PROT_WRITE only, and system calls write their results there).

use std::io::{IoSlice, IoSliceMut};
use std::os::unix::fs::FileExt;

use nix::errno::Errno;
use nix::sys::uio::{process_vm_readv, process_vm_writev, RemoteIoVec};

use crate::addr::Addr;
use crate::error::{Error, Result};
use crate::task::Stopped;

impl Stopped {
    /// Reads up to `buf.len()` bytes at `addr`; returns how many were readable (the read
    /// stops at the first page that is not mapped). process_vm_readv refuses pages mapped
    /// without PROT_READ with EFAULT although the tracee (and the kernel, on its behalf)
    /// can read and write them; the kernel lets a ptracer read those through
    /// /proc/PID/mem, so what process_vm_readv leaves is read there.
    pub fn read_partial(&self, addr: Addr, buf: &mut [u8]) -> Result<usize> {
        let done = self.read_vm(addr, buf)?;
        if done == buf.len() {
            return Ok(done);
        }
        let more = self.read_proc_mem(addr.byte_add(done as u64), &mut buf[done..])?;
        Ok(done + more)
    }

    /// As [`Stopped::read_partial`] with process_vm_readv alone: one system call, and
    /// pages mapped without PROT_READ read as missing. For a hot path's peek at memory
    /// that is readable when it exists at all.
    pub fn read_readable(&self, addr: Addr, buf: &mut [u8]) -> Result<usize> {
        self.read_vm(addr, buf)
    }

    fn read_vm(&self, addr: Addr, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let Ok(base) = usize::try_from(addr.raw() + done as u64) else {
                break; // not an address this host can name: unreadable, a short read
            };
            let remote = [RemoteIoVec {
                base,
                len: buf.len() - done,
            }];
            let mut local = [IoSliceMut::new(&mut buf[done..])];
            match process_vm_readv(self.pid(), &mut local, &remote) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(Errno::EFAULT) | Err(Errno::EIO) => break,
                Err(e) => return Err(Error::os("process_vm_readv", self.pid())(e)),
            }
        }
        Ok(done)
    }

    /// Reads through /proc/PID/mem (FOLL_FORCE: any mapped page); stops at the first
    /// unmapped one.
    fn read_proc_mem(&self, addr: Addr, buf: &mut [u8]) -> Result<usize> {
        let os = |op: &'static str, e: std::io::Error| Error::Os {
            op,
            pid: self.pid().as_raw(),
            source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        };
        let path = format!("/proc/{}/mem", self.pid());
        let file = std::fs::File::open(&path).map_err(|e| os("open /proc/PID/mem", e))?;
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], addr.raw() + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::EFAULT)) => break,
                Err(e) => return Err(os("read /proc/PID/mem", e)),
            }
        }
        Ok(done)
    }

    /// Reads exactly `buf.len()` bytes at `addr`.
    pub fn read_exact(&self, addr: Addr, buf: &mut [u8]) -> Result<()> {
        let done = self.read_partial(addr, buf)?;
        if done < buf.len() {
            return Err(Error::ShortAccess {
                op: "read",
                pid: self.pid().as_raw(),
                addr: addr.raw(),
                len: buf.len(),
                done,
            });
        }
        Ok(())
    }

    /// Reads `len` bytes at `addr`.
    pub fn read_vec(&self, addr: Addr, len: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.read_exact(addr, &mut v)?;
        Ok(v)
    }

    /// Reads a little-endian u64.
    pub fn read_u64(&self, addr: Addr<u64>) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_exact(addr.cast(), &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads a little-endian u32.
    pub fn read_u32(&self, addr: Addr<u32>) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read_exact(addr.cast(), &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    pub fn read_cstr(&self, addr: Addr, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 256];
        while out.len() < max {
            // Stay within the page so a string ending just before unmapped memory reads.
            let page_left = 4096 - ((addr.raw() + out.len() as u64) % 4096) as usize;
            let want = chunk.len().min(page_left).min(max - out.len());
            let got = self.read_partial(addr.byte_add(out.len() as u64), &mut chunk[..want])?;
            if got == 0 {
                return Err(Error::ShortAccess {
                    op: "read string",
                    pid: self.pid().as_raw(),
                    addr: addr.raw(),
                    len: out.len() + 1,
                    done: out.len(),
                });
            }
            if let Some(nul) = chunk[..got].iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk[..got]);
        }
        Ok(out)
    }

    /// Writes `bytes` at `addr`, even into pages the tracee cannot write.
    pub fn write_bytes(&self, addr: Addr, bytes: &[u8]) -> Result<()> {
        let base = usize::try_from(addr.raw()).map_err(|_| Error::ShortAccess {
            op: "write",
            pid: self.pid().as_raw(),
            addr: addr.raw(),
            len: bytes.len(),
            done: 0,
        })?;
        let remote = [RemoteIoVec {
            base,
            len: bytes.len(),
        }];
        let local = [IoSlice::new(bytes)];
        match process_vm_writev(self.pid(), &local, &remote) {
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(_) | Err(Errno::EFAULT) => {}
            Err(e) => return Err(Error::os("process_vm_writev", self.pid())(e)),
        }
        // Read-only mappings, a few bytes (patched instructions): PTRACE_POKEDATA, which
        // opens nothing on the host (the replayer promises to open no file).
        if bytes.len() <= 64 {
            return self.poke_bytes(addr, bytes);
        }
        // Larger ones: the kernel lets a ptracer write through /proc/PID/mem.
        let path = format!("/proc/{}/mem", self.pid());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::Os {
                op: "open /proc/PID/mem",
                pid: self.pid().as_raw(),
                source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            })?;
        file.write_all_at(bytes, addr.raw()).map_err(|e| Error::Os {
            op: "write /proc/PID/mem",
            pid: self.pid().as_raw(),
            source: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        })
    }

    /// Writes a little-endian u64.
    pub fn write_u64(&self, addr: Addr<u64>, v: u64) -> Result<()> {
        self.write_bytes(addr.cast(), &v.to_le_bytes())
    }
}
