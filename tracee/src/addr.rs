//! Typed tracee addresses: an address in another process is never a bare `u64` or a
//! pointer of ours.

use std::fmt;
use std::marker::PhantomData;

/// An address in the tracee's address space, pointing at a `T`.
#[repr(transparent)]
pub struct Addr<T = u8> {
    raw: u64,
    _t: PhantomData<fn() -> T>,
}

impl<T> Addr<T> {
    /// The address `raw`.
    pub const fn new(raw: u64) -> Self {
        Addr {
            raw,
            _t: PhantomData,
        }
    }

    /// The numeric value.
    pub const fn raw(self) -> u64 {
        self.raw
    }

    /// Whether it is zero.
    pub const fn is_null(self) -> bool {
        self.raw == 0
    }

    /// The address `bytes` further on.
    pub const fn byte_add(self, bytes: u64) -> Self {
        Addr::new(self.raw.wrapping_add(bytes))
    }

    /// The same address, seen as pointing at a `U`.
    pub const fn cast<U>(self) -> Addr<U> {
        Addr::new(self.raw)
    }
}

impl<T> Clone for Addr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Addr<T> {}
impl<T> PartialEq for Addr<T> {
    fn eq(&self, o: &Self) -> bool {
        self.raw == o.raw
    }
}
impl<T> Eq for Addr<T> {}
impl<T> std::hash::Hash for Addr<T> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.raw.hash(h)
    }
}
impl<T> fmt::Debug for Addr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Addr({:#x})", self.raw)
    }
}
impl<T> fmt::Display for Addr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.raw)
    }
}
