//! Keeping the library invisible: `rewind record` puts it first in LD_PRELOAD; once the
//! loader has read that, `hide` takes it out of the program's environment (the program
//! sees the environment it was given), and the interposed exec functions put it back into
//! the environment they pass on, so a program the recorded one runs is buffered too.
//! Execs the library does not see (glibc's own, inside `system` or `execl`) run their
//! program without it: unbuffered, which is slower, never wrong.

use core::ffi::c_void;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// The library's LD_PRELOAD element, as `hide` found it (atomics: written once before
/// any other code runs, read by the exec functions).
static OURS: [AtomicU8; 1024] = [const { AtomicU8::new(0) }; 1024];
static OURS_LEN: AtomicUsize = AtomicUsize::new(0);

const KEY: &[u8] = b"LD_PRELOAD=";
const NAME: &[u8] = b"librewind_preload.so";

#[link(name = "c")]
extern "C" {
    static mut environ: *mut *mut u8;
    fn dlsym(handle: *mut c_void, symbol: *const u8) -> *mut c_void;
}

/// The NUL-terminated string at `p` as a slice.
///
/// # Safety
/// `p` points at a NUL-terminated string that outlives the slice.
unsafe fn cstr<'a>(p: *const u8) -> &'a [u8] {
    let mut n = 0;
    // SAFETY: per the contract, every byte up to the NUL is readable.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
    }
    // SAFETY: the `n` bytes before the NUL were just read.
    unsafe { core::slice::from_raw_parts(p, n) }
}

/// Takes the library's element out of LD_PRELOAD (the whole entry if it was the only
/// one), remembering it for `with_preload`. Runs in the library's constructor, before the
/// program's code and before any other thread exists.
pub fn hide() {
    // SAFETY: `environ` is the C library's environment array, NULL-terminated, whose
    // strings are writable (on the initial stack); nothing else runs yet.
    unsafe {
        let env = environ;
        if env.is_null() {
            return;
        }
        let mut i = 0;
        while !(*env.add(i)).is_null() {
            let entry = *env.add(i);
            let s = cstr(entry);
            if let Some(value) = s.strip_prefix(KEY) {
                let first = value
                    .split(|&c| c == b':' || c == b' ')
                    .next()
                    .unwrap_or(&[]);
                if !first.ends_with(NAME) || first.len() > 1024 {
                    return;
                }
                for (slot, b) in OURS.iter().zip(first) {
                    slot.store(*b, Ordering::Relaxed);
                }
                OURS_LEN.store(first.len(), Ordering::Relaxed);
                if first.len() == value.len() {
                    // The only element: the entry goes, the later ones move up.
                    let mut j = i;
                    loop {
                        *env.add(j) = *env.add(j + 1);
                        if (*env.add(j)).is_null() {
                            break;
                        }
                        j += 1;
                    }
                } else {
                    // "LD_PRELOAD=ours:rest" becomes "LD_PRELOAD=rest", in place.
                    let from = entry.add(KEY.len() + first.len() + 1);
                    let rest = cstr(from).len();
                    core::ptr::copy(from, entry.add(KEY.len()), rest + 1);
                }
                return;
            }
            i += 1;
        }
    }
}

/// Room for the environment `with_preload` builds.
const MAX_ENV: usize = 2048;
const MAX_ENTRY: usize = 8192;

/// Calls `f` with `envp` plus the library's LD_PRELOAD element (first, as the recorder
/// put it), or with `envp` itself when the library hid nothing or it does not fit.
///
/// # Safety
/// `envp` is NULL or a NULL-terminated array of NUL-terminated strings.
pub unsafe fn with_preload<T>(envp: *const *const u8, f: impl FnOnce(*const *const u8) -> T) -> T {
    let ours_len = OURS_LEN.load(Ordering::Relaxed);
    if ours_len == 0 || envp.is_null() {
        return f(envp);
    }
    let mut list = [core::ptr::null::<u8>(); MAX_ENV];
    let mut entry = [0u8; MAX_ENTRY];
    let mut n = 0;
    let mut preload_at = None;
    // SAFETY: per the contract, envp is a NULL-terminated array of strings.
    unsafe {
        while !(*envp.add(n)).is_null() {
            if n + 2 >= MAX_ENV {
                return f(envp);
            }
            let s = *envp.add(n);
            if preload_at.is_none() && cstr(s).starts_with(KEY) {
                preload_at = Some(n);
            }
            list[n] = s;
            n += 1;
        }
    }
    // "LD_PRELOAD=" ours [":" their value] NUL
    // SAFETY: `preload_at` indexes a string of envp.
    let theirs = preload_at.map(|i| unsafe { &cstr(list[i])[KEY.len()..] });
    let len = KEY.len() + ours_len + theirs.map_or(0, |t| 1 + t.len()) + 1;
    if len > MAX_ENTRY {
        return f(envp);
    }
    entry[..KEY.len()].copy_from_slice(KEY);
    for (to, from) in entry[KEY.len()..].iter_mut().zip(&OURS[..ours_len]) {
        *to = from.load(Ordering::Relaxed);
    }
    let mut at = KEY.len() + ours_len;
    if let Some(t) = theirs.filter(|t| !t.is_empty()) {
        entry[at] = b':';
        entry[at + 1..at + 1 + t.len()].copy_from_slice(t);
        at += 1 + t.len();
    }
    entry[at] = 0;
    match preload_at {
        Some(i) => list[i] = entry.as_ptr(),
        None => {
            list[n] = entry.as_ptr();
            n += 1;
        }
    }
    list[n] = core::ptr::null();
    f(list.as_ptr())
}

/// The program's environment, as `environ` holds it now.
pub fn current() -> *const *const u8 {
    // SAFETY: reads the C library's environment pointer.
    unsafe { environ as *const *const u8 }
}

/// The next definition of `name` (a NUL-terminated symbol name) after this library's:
/// the C library's.
pub fn next(name: &[u8]) -> *mut c_void {
    const RTLD_NEXT: *mut c_void = -1isize as *mut c_void;
    // SAFETY: `name` is NUL-terminated (callers pass literals ending in \0).
    unsafe { dlsym(RTLD_NEXT, name.as_ptr()) }
}
