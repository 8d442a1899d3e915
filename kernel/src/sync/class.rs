//! Lock classes: a static name and definition site per kind of lock, as lockdep's keys.
//! Layout (kernel/PROBES.md): name pointer and length, file pointer and length, line.

#[repr(C)]
pub struct LockClass {
    name_ptr: *const u8,
    name_len: usize,
    file_ptr: *const u8,
    file_len: usize,
    pub line: u32,
}

// SAFETY: the pointers refer to 'static string literals and are never written.
unsafe impl Sync for LockClass {}

impl LockClass {
    pub const fn new(name: &'static str, file: &'static str, line: u32) -> Self {
        LockClass {
            name_ptr: name.as_ptr(),
            name_len: name.len(),
            file_ptr: file.as_ptr(),
            file_len: file.len(),
            line,
        }
    }

    pub fn name(&self) -> &'static str {
        // SAFETY: built by `new` from a &'static str.
        unsafe {
            core::str::from_utf8_unchecked(core::slice::from_raw_parts(
                self.name_ptr,
                self.name_len,
            ))
        }
    }

    pub fn file(&self) -> &'static str {
        // SAFETY: built by `new` from a &'static str.
        unsafe {
            core::str::from_utf8_unchecked(core::slice::from_raw_parts(
                self.file_ptr,
                self.file_len,
            ))
        }
    }
}

/// Defines a lock class at the call site: `lock_class!(UBD_LOCK_CLASS, "ubd_lock");`
#[macro_export]
macro_rules! lock_class {
    ($vis:vis $ident:ident, $name:expr) => {
        $vis static $ident: $crate::sync::LockClass = $crate::sync::LockClass::new($name, file!(), line!());
    };
}
