//! The kernel command line, UML-style: `umk mem=64M ubd0=IMG[,COW] init=SCRIPT hz=250
//! mconsole=SOCKET`. Parsed before memory exists, so values are slices of the host's argv
//! strings (which live as long as the process) and nothing is allocated.

use core::fmt;

pub const MAX_UBD: usize = 8;
pub const MIN_MEM: usize = 8 << 20;
pub const MAX_MEM: usize = 4 << 30;

/// One `ubdN=` device: an image and an optional copy-on-write file over it. A lone COW
/// file (which names its backing file in its header) is also accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UbdSpec<'a> {
    pub image: &'a [u8],
    pub cow: Option<&'a [u8]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args<'a> {
    pub mem: usize,
    pub ubd: [Option<UbdSpec<'a>>; MAX_UBD],
    pub init: Option<&'a [u8]>,
    pub hz: u64,
    pub mconsole: Option<&'a [u8]>,
    /// Seconds a task may stay UNINTERRUPTIBLE before the hung-task detector reports it;
    /// 0 disables it. `None` means the default (120 s, or 2 s in bug scenarios).
    pub hung_task_timeout: Option<u64>,
    /// Whether the hung-task detector panics (on by default in bug scenarios).
    pub hung_task_panic: Option<bool>,
    /// Widens the race windows of the bug scenarios (0 = natural timing).
    pub bug_window: u64,
    pub help: bool,
    pub version: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgError<'a> {
    /// An argument that is not `key=value` or a known flag.
    NotKeyValue(&'a [u8]),
    UnknownKey(&'a [u8]),
    BadValue {
        key: &'a [u8],
        value: &'a [u8],
        why: &'static str,
    },
    MemTooSmall(usize),
    MemTooLarge(usize),
    Duplicate(&'a [u8]),
}

struct Bytes<'a>(&'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for ArgError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArgError::NotKeyValue(a) => {
                write!(f, "argument '{}' is not of the form key=value", Bytes(a))
            }
            ArgError::UnknownKey(k) => write!(f, "unknown argument '{}' (see --help)", Bytes(k)),
            ArgError::BadValue { key, value, why } => write!(
                f,
                "bad value '{}' for '{}': {}",
                Bytes(value),
                Bytes(key),
                why
            ),
            ArgError::MemTooSmall(m) => write!(
                f,
                "mem={}K is too small: umk needs at least {}M",
                m >> 10,
                MIN_MEM >> 20
            ),
            ArgError::MemTooLarge(m) => write!(
                f,
                "mem={}M is too large: at most {}M",
                m >> 20,
                MAX_MEM >> 20
            ),
            ArgError::Duplicate(k) => write!(f, "argument '{}' given twice", Bytes(k)),
        }
    }
}

pub const HELP: &str = "\
Usage: umk [key=value ...]
  mem=SIZE            physical memory, with K/M/G suffix (default 64M, at least 8M)
  ubdN=IMG[,COW]      block device N (0-7) backed by host file IMG, optionally through
                      the UML copy-on-write file COW (created if missing); a lone COW
                      file names its own backing file. ubd0 is mounted as root (ext2).
  init=PATH           host file of shell commands to run at boot (one per line)
  hz=N                timer interrupts per second (10-1000, default 250)
  mconsole=PATH       UML management console on a host unix socket at PATH
  hung_task_timeout=S seconds before a blocked task is reported (0 = off)
  hung_task_panic=0|1 panic when a hung task is found
  bug_window=N        widen the race windows of `bug` scenarios (0 = natural timing)
  --help, --version
";

fn parse_size(v: &[u8]) -> Option<usize> {
    let (digits, mult) = match v.last()? {
        b'K' | b'k' => (&v[..v.len() - 1], 1usize << 10),
        b'M' | b'm' => (&v[..v.len() - 1], 1 << 20),
        b'G' | b'g' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    parse_u64(digits).and_then(|n| (n as usize).checked_mul(mult))
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + (d - b'0') as u64))
}

/// Parses the arguments after argv[0].
pub fn parse<'a>(argv: impl Iterator<Item = &'a [u8]>) -> Result<Args<'a>, ArgError<'a>> {
    let mut a = Args {
        mem: 64 << 20,
        ubd: [None; MAX_UBD],
        init: None,
        hz: 250,
        mconsole: None,
        hung_task_timeout: None,
        hung_task_panic: None,
        bug_window: 0,
        help: false,
        version: false,
    };
    let mut seen_mem = false;
    for arg in argv {
        match arg {
            b"--help" | b"-h" => {
                a.help = true;
                continue;
            }
            b"--version" | b"-V" => {
                a.version = true;
                continue;
            }
            _ => {}
        }
        let eq = arg
            .iter()
            .position(|&c| c == b'=')
            .ok_or(ArgError::NotKeyValue(arg))?;
        let (key, value) = (&arg[..eq], &arg[eq + 1..]);
        let bad = |why| ArgError::BadValue { key, value, why };
        match key {
            b"mem" => {
                if seen_mem {
                    return Err(ArgError::Duplicate(key));
                }
                seen_mem = true;
                let m = parse_size(value).ok_or(bad("expected a size such as 64M"))?;
                if m < MIN_MEM {
                    return Err(ArgError::MemTooSmall(m));
                }
                if m > MAX_MEM {
                    return Err(ArgError::MemTooLarge(m));
                }
                a.mem = m;
            }
            b"init" => {
                if value.is_empty() {
                    return Err(bad("expected a host path"));
                }
                a.init = Some(value);
            }
            b"mconsole" => {
                if value.is_empty() {
                    return Err(bad("expected a socket path"));
                }
                a.mconsole = Some(value);
            }
            b"hz" => {
                let hz = parse_u64(value)
                    .filter(|h| (10..=1000).contains(h))
                    .ok_or(bad("expected 10 to 1000"))?;
                a.hz = hz;
            }
            b"hung_task_timeout" => {
                a.hung_task_timeout = Some(parse_u64(value).ok_or(bad("expected seconds"))?)
            }
            b"hung_task_panic" => {
                a.hung_task_panic = Some(match value {
                    b"0" => false,
                    b"1" => true,
                    _ => return Err(bad("expected 0 or 1")),
                })
            }
            b"bug_window" => a.bug_window = parse_u64(value).ok_or(bad("expected a number"))?,
            _ if key.len() == 4 && key.starts_with(b"ubd") && key[3].is_ascii_digit() => {
                let n = (key[3] - b'0') as usize;
                if n >= MAX_UBD {
                    return Err(ArgError::UnknownKey(key));
                }
                if a.ubd[n].is_some() {
                    return Err(ArgError::Duplicate(key));
                }
                a.ubd[n] = Some(parse_ubd(value).ok_or(bad("expected IMG or IMG,COW"))?);
            }
            _ => return Err(ArgError::UnknownKey(key)),
        }
    }
    Ok(a)
}

/// Parses `IMG[,COW]`.
pub fn parse_ubd(value: &[u8]) -> Option<UbdSpec<'_>> {
    let mut parts = value.splitn(2, |&c| c == b',');
    let image = parts.next().filter(|p| !p.is_empty())?;
    let cow = match parts.next() {
        Some([]) => return None,
        other => other,
    };
    Some(UbdSpec { image, cow })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&'static str]) -> Result<Args<'static>, ArgError<'static>> {
        parse(args.iter().map(|s| s.as_bytes()))
    }

    #[test]
    fn defaults_and_values() {
        let a = p(&[
            "mem=32M",
            "ubd0=root.img",
            "ubd1=base.img,over.cow",
            "init=/tmp/s",
            "hz=100",
            "mconsole=/tmp/mc",
        ])
        .unwrap();
        assert_eq!(a.mem, 32 << 20);
        assert_eq!(
            a.ubd[0],
            Some(UbdSpec {
                image: b"root.img",
                cow: None
            })
        );
        assert_eq!(
            a.ubd[1],
            Some(UbdSpec {
                image: b"base.img",
                cow: Some(b"over.cow")
            })
        );
        assert_eq!(a.init, Some(&b"/tmp/s"[..]));
        assert_eq!(a.hz, 100);
        assert_eq!(a.mconsole, Some(&b"/tmp/mc"[..]));
        assert_eq!(p(&[]).unwrap().mem, 64 << 20);
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(p(&["foo=1"]), Err(ArgError::UnknownKey(b"foo")));
        assert_eq!(p(&["mem=1M"]), Err(ArgError::MemTooSmall(1 << 20)));
        assert!(matches!(
            p(&["mem=lots"]),
            Err(ArgError::BadValue { key: b"mem", .. })
        ));
        assert!(matches!(
            p(&["hz=5"]),
            Err(ArgError::BadValue { key: b"hz", .. })
        ));
        assert_eq!(p(&["ubd9=x"]), Err(ArgError::UnknownKey(b"ubd9")));
        assert_eq!(p(&["ubd0=a", "ubd0=b"]), Err(ArgError::Duplicate(b"ubd0")));
        assert!(matches!(p(&["ubd0=a,"]), Err(ArgError::BadValue { .. })));
        assert_eq!(p(&["bogus"]), Err(ArgError::NotKeyValue(b"bogus")));
        let msg = format!("{}", p(&["foo=1"]).unwrap_err());
        assert!(msg.contains("'foo'"), "{msg}");
    }
}
