//! Host memory: umk's "physical memory" is one anonymous private mapping made at boot,
//! exactly as UML maps its physmem. Nothing else in the kernel maps host memory.

use super::syscall::{nr, syscall6, Errno};

const PROT_READ: usize = 1;
const PROT_WRITE: usize = 2;
const MAP_PRIVATE: usize = 2;
const MAP_ANONYMOUS: usize = 0x20;
const MAP_NORESERVE: usize = 0x4000;

/// Maps `len` bytes of zeroed, readable and writable memory; returns its base address.
pub fn map_physmem(len: usize) -> Result<usize, Errno> {
    syscall6(
        nr::MMAP,
        0,
        len,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
        usize::MAX, // fd -1
        0,
    )
}
