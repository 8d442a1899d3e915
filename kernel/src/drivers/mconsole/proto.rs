//! The mconsole wire protocol (version 2, as spoken by UML and `uml_mconsole`): decoding a
//! request datagram into a typed [`Request`] and encoding a reply as one or more packets.
//! Pure byte shuffling with no host contact, so every rule here is unit-testable.
//!
//! Wire format, all integers `u32` in host byte order (client and kernel share a host):
//!
//! - request: `magic = 0xcafebabe, version = 2, len, data[512]`. `uml_mconsole` always sends
//!   the whole 524-byte struct with a NUL-terminated command of `len` bytes (at most 511).
//! - reply: `err, more, len, data[512]`, sent as a 12-byte header plus `len` data bytes,
//!   where `data` is NUL-terminated text and `len` counts the NUL. Text longer than 511
//!   bytes goes out as several packets, `more = 1` on all but the last; the client
//!   concatenates them and prints `OK <text>` or `ERR <text>`.

use core::fmt;

/// `MCONSOLE_MAGIC`: marks a versioned request (version 0 clients sent bare text).
pub const MAGIC: u32 = 0xcafe_babe;
/// The only protocol version this driver speaks, as UML's.
pub const VERSION: u32 = 2;
/// Size of the `data` array in requests and replies.
pub const MAX_DATA: usize = 512;
/// Three `u32`s precede `data` in both directions.
pub const HEADER_LEN: usize = 12;
/// A whole request or reply struct, the largest datagram either side sends.
pub const PACKET_MAX: usize = HEADER_LEN + MAX_DATA;
/// Text carried per reply packet: the client `strlen`s `data`, so one byte is the NUL.
pub const REPLY_CHUNK: usize = MAX_DATA - 1;

/// What UML answers, unframed, to a datagram without the magic (a version 0 client reads
/// raw text).
pub const V0_REPLY: &str = "ERR Version 0 mconsole clients are not supported by this driver";

/// The reply to `help`, in the layout of UML's own help text.
pub const HELP_TEXT: &str = "Commands: \n\
    \x20   version - Get kernel version \n\
    \x20   help - Print this message \n\
    \x20   halt - Halt umk \n\
    \x20   reboot - Reboot umk \n\
    \x20   config <dev>=<config> - Add a new device to umk;  \n\
    \tsame syntax as command line \n\
    \x20   config <dev> - Query the configuration of a device \n\
    \x20   remove <dev> - Remove a device from umk \n\
    \x20   sysrq <letter> - Performs the SysRq action controlled by the letter \n\
    \x20   cad - invoke the Ctl-Alt-Del handler \n\
    \x20   stop - pause umk; it will do nothing until it receives a 'go' \n\
    \x20   go - continue umk after a 'stop' \n\
    \x20   log <string> - make umk enter <string> into the kernel log\n\
    \x20   proc <file> - returns the contents of umk's /proc/<file>\n";

/// One decoded mconsole command. Arguments borrow from the request datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Version,
    Help,
    Halt,
    Reboot,
    /// Ctrl-Alt-Del.
    Cad,
    Sysrq(char),
    /// `config NAME=VALUE`: hot-plug or reconfigure a device.
    Config {
        dev: &'a str,
        value: &'a str,
    },
    /// `config NAME`: report a device's configuration.
    ConfigQuery {
        dev: &'a str,
    },
    Remove {
        dev: &'a str,
    },
    Stop,
    Go,
    /// `log TEXT`: TEXT verbatim (uml_mconsole sends long text as several `log` requests).
    Log(&'a str),
    /// `proc FILE`: the contents of the kernel's /proc/FILE.
    Proc(&'a str),
}

/// Why a datagram is not a request this driver will execute. Each has the reply text UML
/// gives for it (or the closest umk equivalent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// The datagram ends before its header, or before `len` data bytes.
    Truncated {
        got: usize,
        need: usize,
    },
    /// No `0xcafebabe`: a version 0 client, answered with [`V0_REPLY`].
    BadMagic(u32),
    BadVersion(u32),
    /// `len` leaves no room for the NUL in `data[512]`.
    TooLarge(u32),
    NotUtf8,
    UnknownCommand,
    /// A known command with missing or malformed arguments; the text is the reply.
    BadArgument(&'static str),
}

impl RequestError {
    /// Whether the sender is a version 0 client, which must get bare text, not a packet.
    pub fn is_v0(&self) -> bool {
        matches!(self, RequestError::BadMagic(_))
    }

    /// The text sent back to the client (framed as an error unless [`Self::is_v0`]).
    pub fn reply_text(&self) -> &'static str {
        match self {
            RequestError::Truncated { .. } => "Truncated request",
            RequestError::BadMagic(_) => V0_REPLY,
            RequestError::BadVersion(_) => "This driver only supports version 2 clients",
            RequestError::TooLarge(_) => "Request too large",
            RequestError::NotUtf8 => "Request is not valid UTF-8",
            RequestError::UnknownCommand => "Unknown command",
            RequestError::BadArgument(text) => text,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Truncated { got, need } => {
                write!(f, "truncated request: {} bytes, need {}", got, need)
            }
            RequestError::BadMagic(m) => write!(f, "bad magic {:#010x} (version 0 client?)", m),
            RequestError::BadVersion(v) => write!(f, "unsupported protocol version {}", v),
            RequestError::TooLarge(len) => {
                write!(f, "request length {} exceeds {}", len, REPLY_CHUNK)
            }
            RequestError::NotUtf8 => f.write_str("request is not valid UTF-8"),
            RequestError::UnknownCommand => f.write_str("unknown command"),
            RequestError::BadArgument(text) => write!(f, "bad argument: {}", text),
        }
    }
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_ne_bytes(word)
}

/// Decodes one request datagram. Checks run in UML's order: magic, size, version.
pub fn parse_request(dgram: &[u8]) -> Result<Request<'_>, RequestError> {
    if dgram.len() < 4 {
        return Err(RequestError::Truncated {
            got: dgram.len(),
            need: HEADER_LEN,
        });
    }
    let magic = u32_at(dgram, 0);
    if magic != MAGIC {
        return Err(RequestError::BadMagic(magic));
    }
    if dgram.len() < HEADER_LEN {
        return Err(RequestError::Truncated {
            got: dgram.len(),
            need: HEADER_LEN,
        });
    }
    let version = u32_at(dgram, 4);
    let len = u32_at(dgram, 8);
    if len as usize >= MAX_DATA {
        return Err(RequestError::TooLarge(len));
    }
    if version != VERSION {
        return Err(RequestError::BadVersion(version));
    }
    let need = HEADER_LEN + len as usize;
    if dgram.len() < need {
        return Err(RequestError::Truncated {
            got: dgram.len(),
            need,
        });
    }
    let data = &dgram[HEADER_LEN..need];
    // The kernel side reads data as a C string, as UML does: a NUL ends the command early.
    let data = match data.iter().position(|&b| b == 0) {
        Some(nul) => &data[..nul],
        None => data,
    };
    let text = core::str::from_utf8(data).map_err(|_| RequestError::NotUtf8)?;
    parse_command(text)
}

/// Decodes the command text of a request. Commands are whole words (UML matches prefixes,
/// so "versionx" was `version` there; here it is unknown).
pub fn parse_command(text: &str) -> Result<Request<'_>, RequestError> {
    let text = text.trim_start();
    let (word, rest) = match text.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    let arg = rest.trim();
    match word {
        "version" => Ok(Request::Version),
        "help" => Ok(Request::Help),
        "halt" => Ok(Request::Halt),
        "reboot" => Ok(Request::Reboot),
        "cad" => Ok(Request::Cad),
        "stop" => Ok(Request::Stop),
        "go" => Ok(Request::Go),
        "sysrq" => {
            let mut chars = arg.chars();
            match (chars.next(), chars.next()) {
                (Some(key), None) => Ok(Request::Sysrq(key)),
                _ => Err(RequestError::BadArgument("Usage: sysrq <letter>")),
            }
        }
        "config" => {
            const BAD: RequestError = RequestError::BadArgument("Bad configuration option");
            match arg.split_once('=') {
                Some((dev, value)) => match dev.trim_end() {
                    "" => Err(BAD),
                    dev => Ok(Request::Config { dev, value }),
                },
                None if arg.is_empty() || arg.contains(|c: char| c.is_ascii_whitespace()) => {
                    Err(BAD)
                }
                None => Ok(Request::ConfigQuery { dev: arg }),
            }
        }
        "remove" => match arg {
            "" => Err(RequestError::BadArgument("Bad remove option")),
            dev => Ok(Request::Remove { dev }),
        },
        // Log text is kept byte for byte, trailing newline included: it goes to the log.
        "log" => Ok(Request::Log(rest)),
        "proc" => match arg {
            "" => Err(RequestError::BadArgument("Usage: proc <file>")),
            file => Ok(Request::Proc(file)),
        },
        _ => Err(RequestError::UnknownCommand),
    }
}

/// Builds the request datagram `uml_mconsole` would send for `command` (for host-side
/// tools and tests). Commands over 511 bytes are rejected rather than cut.
pub fn encode_request(command: &str) -> Result<[u8; PACKET_MAX], RequestError> {
    if command.len() > REPLY_CHUNK {
        return Err(RequestError::TooLarge(command.len() as u32));
    }
    let mut buf = [0u8; PACKET_MAX];
    buf[0..4].copy_from_slice(&MAGIC.to_ne_bytes());
    buf[4..8].copy_from_slice(&VERSION.to_ne_bytes());
    buf[8..12].copy_from_slice(&(command.len() as u32).to_ne_bytes());
    buf[HEADER_LEN..HEADER_LEN + command.len()].copy_from_slice(command.as_bytes());
    Ok(buf)
}

/// One encoded reply datagram.
pub struct ReplyPacket {
    buf: [u8; PACKET_MAX],
    len: usize,
}

impl ReplyPacket {
    /// The bytes to send: header plus `len` data bytes (the unused tail stays home).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The packets of one reply, in sending order; see [`reply_packets`].
pub struct ReplyPackets<'a> {
    rest: &'a [u8],
    err: bool,
    done: bool,
}

/// Splits `text` into reply packets of at most [`REPLY_CHUNK`] bytes each, `more` set on
/// all but the last. An empty text is still one packet: the client waits for a reply.
///
/// `err` is set on every packet, not only the first as UML does: `uml_mconsole` takes the
/// verdict from the last packet it reads, so UML's long error replies print as `OK`.
pub fn reply_packets(text: &str, err: bool) -> ReplyPackets<'_> {
    ReplyPackets {
        rest: text.as_bytes(),
        err,
        done: false,
    }
}

impl Iterator for ReplyPackets<'_> {
    type Item = ReplyPacket;

    fn next(&mut self) -> Option<ReplyPacket> {
        if self.done {
            return None;
        }
        // Splitting inside a UTF-8 sequence is harmless: the client concatenates bytes.
        let n = self.rest.len().min(REPLY_CHUNK);
        let (chunk, rest) = self.rest.split_at(n);
        self.rest = rest;
        self.done = rest.is_empty();

        let mut buf = [0u8; PACKET_MAX];
        buf[0..4].copy_from_slice(&(self.err as u32).to_ne_bytes());
        buf[4..8].copy_from_slice(&(!self.done as u32).to_ne_bytes());
        buf[8..12].copy_from_slice(&(n as u32 + 1).to_ne_bytes());
        let data = &mut buf[HEADER_LEN..HEADER_LEN + n];
        data.copy_from_slice(chunk);
        // The client treats data as a C string; an embedded NUL would silently cut the
        // rest of the packet, so make it visible instead.
        for b in data.iter_mut().filter(|b| **b == 0) {
            *b = b'?';
        }
        // buf[HEADER_LEN + n] is already the terminating NUL.
        Some(ReplyPacket {
            buf,
            len: HEADER_LEN + n + 1,
        })
    }
}

/// A decoded reply packet (for host-side clients and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyView<'a> {
    pub err: bool,
    pub more: bool,
    /// The text, without its NUL.
    pub text: &'a [u8],
}

/// Decodes one reply datagram; `None` if it is shorter than its header says.
pub fn parse_reply(dgram: &[u8]) -> Option<ReplyView<'_>> {
    if dgram.len() < HEADER_LEN {
        return None;
    }
    let len = u32_at(dgram, 8) as usize;
    if len > MAX_DATA || dgram.len() < HEADER_LEN + len {
        return None;
    }
    let data = &dgram[HEADER_LEN..HEADER_LEN + len];
    let text = match data.iter().position(|&b| b == 0) {
        Some(nul) => &data[..nul],
        None => data,
    };
    Some(ReplyView {
        err: u32_at(dgram, 0) != 0,
        more: u32_at(dgram, 4) != 0,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    fn raw(magic: u32, version: u32, len: u32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&magic.to_ne_bytes());
        v.extend_from_slice(&version.to_ne_bytes());
        v.extend_from_slice(&len.to_ne_bytes());
        v.extend_from_slice(data);
        v
    }

    /// A request exactly as uml_mconsole sends it: the full 524-byte struct.
    fn full(cmd: &str) -> [u8; PACKET_MAX] {
        encode_request(cmd).unwrap()
    }

    #[test]
    fn parses_every_command() {
        let cases: &[(&str, Request<'_>)] = &[
            ("version", Request::Version),
            ("help", Request::Help),
            ("halt", Request::Halt),
            ("reboot", Request::Reboot),
            ("cad", Request::Cad),
            ("stop", Request::Stop),
            ("go", Request::Go),
            ("sysrq t", Request::Sysrq('t')),
            ("sysrq   s  ", Request::Sysrq('s')),
            (
                "config ubd1=/x",
                Request::Config {
                    dev: "ubd1",
                    value: "/x",
                },
            ),
            (
                "config ubd1=/cow,/backing",
                Request::Config {
                    dev: "ubd1",
                    value: "/cow,/backing",
                },
            ),
            ("config ubd2", Request::ConfigQuery { dev: "ubd2" }),
            ("remove ubd1", Request::Remove { dev: "ubd1" }),
            ("log hello world\n", Request::Log("hello world\n")),
            ("proc meminfo", Request::Proc("meminfo")),
        ];
        for (cmd, want) in cases {
            assert_eq!(parse_request(&full(cmd)), Ok(*want), "{cmd:?}");
        }
    }

    #[test]
    fn rejects_bad_commands_with_uml_texts() {
        let unknown = parse_request(&full("frobnicate")).unwrap_err();
        assert_eq!(unknown, RequestError::UnknownCommand);
        assert_eq!(unknown.reply_text(), "Unknown command");
        assert_eq!(parse_request(&full("")), Err(RequestError::UnknownCommand));
        assert_eq!(
            parse_request(&full("versionx")),
            Err(RequestError::UnknownCommand)
        );
        for cmd in ["sysrq", "sysrq tt"] {
            assert_eq!(
                parse_request(&full(cmd)),
                Err(RequestError::BadArgument("Usage: sysrq <letter>"))
            );
        }
        for cmd in ["config", "config =x", "config a b"] {
            assert_eq!(
                parse_request(&full(cmd)).unwrap_err().reply_text(),
                "Bad configuration option"
            );
        }
        assert_eq!(
            parse_request(&full("remove ")).unwrap_err().reply_text(),
            "Bad remove option"
        );
    }

    #[test]
    fn accepts_minimal_datagram_without_padding_or_nul() {
        assert_eq!(
            parse_request(&raw(MAGIC, VERSION, 4, b"halt")),
            Ok(Request::Halt)
        );
        // A NUL inside len ends the command, as in UML's C string handling.
        assert_eq!(
            parse_request(&raw(MAGIC, VERSION, 9, b"go\0garbage")),
            Ok(Request::Go)
        );
    }

    #[test]
    fn framing_errors_are_typed() {
        assert_eq!(
            parse_request(&[]),
            Err(RequestError::Truncated { got: 0, need: 12 })
        );
        assert_eq!(
            parse_request(&[0xbe, 0xba]),
            Err(RequestError::Truncated { got: 2, need: 12 })
        );
        assert_eq!(
            parse_request(&MAGIC.to_ne_bytes()),
            Err(RequestError::Truncated { got: 4, need: 12 })
        );
        let bad_magic = parse_request(b"version\0\0\0\0\0\0\0").unwrap_err();
        assert!(matches!(bad_magic, RequestError::BadMagic(_)));
        assert!(bad_magic.is_v0());
        assert_eq!(bad_magic.reply_text(), V0_REPLY);
        assert_eq!(
            parse_request(&raw(MAGIC, 1, 4, b"halt")),
            Err(RequestError::BadVersion(1))
        );
        assert_eq!(
            parse_request(&raw(MAGIC, VERSION, 512, &[b'a'; 512])),
            Err(RequestError::TooLarge(512))
        );
        assert_eq!(
            parse_request(&raw(MAGIC, VERSION, u32::MAX, b"")),
            Err(RequestError::TooLarge(u32::MAX))
        );
        assert_eq!(
            parse_request(&raw(MAGIC, VERSION, 7, b"vers")),
            Err(RequestError::Truncated { got: 16, need: 19 })
        );
        assert_eq!(
            parse_request(&raw(MAGIC, VERSION, 2, &[0xff, 0xfe])),
            Err(RequestError::NotUtf8)
        );
        // Every error renders for the log without panicking.
        let mut s = String::new();
        use core::fmt::Write;
        write!(s, "{} {}", bad_magic, RequestError::TooLarge(600)).unwrap();
        assert!(s.starts_with("bad magic 0x") && s.contains("600"), "{s}");
    }

    #[test]
    fn short_reply_is_one_packet() {
        let pkts: Vec<ReplyPacket> = reply_packets("umk 0.1.0", false).collect();
        assert_eq!(pkts.len(), 1);
        let b = pkts[0].as_bytes();
        assert_eq!(b.len(), HEADER_LEN + 10);
        assert_eq!(&b[HEADER_LEN..], b"umk 0.1.0\0");
        assert_eq!(
            parse_reply(b),
            Some(ReplyView {
                err: false,
                more: false,
                text: b"umk 0.1.0"
            })
        );
    }

    #[test]
    fn empty_reply_still_sends_a_packet() {
        let pkts: Vec<ReplyPacket> = reply_packets("", true).collect();
        assert_eq!(pkts.len(), 1);
        assert_eq!(
            parse_reply(pkts[0].as_bytes()),
            Some(ReplyView {
                err: true,
                more: false,
                text: b""
            })
        );
    }

    #[test]
    fn long_reply_splits_at_511_with_more_on_all_but_last() {
        for total in [511usize, 512, 1022, 1023, 5000] {
            let text: String = (0..total)
                .map(|i| (b'a' + (i % 26) as u8) as char)
                .collect();
            let pkts: Vec<ReplyPacket> = reply_packets(&text, true).collect();
            assert_eq!(pkts.len(), total.div_ceil(REPLY_CHUNK), "total {total}");
            let mut joined = Vec::new();
            for (i, p) in pkts.iter().enumerate() {
                assert!(p.as_bytes().len() <= PACKET_MAX);
                let v = parse_reply(p.as_bytes()).unwrap();
                assert_eq!(v.more, i + 1 < pkts.len());
                assert!(v.err);
                joined.extend_from_slice(v.text);
            }
            assert_eq!(joined, text.as_bytes());
        }
    }

    #[test]
    fn embedded_nul_cannot_truncate_the_client_output() {
        let p = reply_packets("a\0b", false).next().unwrap();
        assert_eq!(parse_reply(p.as_bytes()).unwrap().text, b"a?b");
    }

    #[test]
    fn help_text_lists_the_commands() {
        for cmd in [
            "version", "halt", "reboot", "config", "remove", "sysrq", "stop", "go",
        ] {
            assert!(HELP_TEXT.contains(cmd), "{cmd}");
        }
    }
}
