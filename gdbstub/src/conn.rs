//! A connection that checks packets before gdbstub sees them. gdbstub ends a session on a
//! bad checksum or a client NAK; the remote protocol says to NAK and go on, so this layer
//! answers a bad packet with `-`, retransmits the last reply on a client `-`, and drops
//! bytes outside packets, handing gdbstub only well-formed packets, acks and interrupts.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;

use gdbstub::conn::{Connection, ConnectionExt};

/// Ctrl-C as gdb sends it.
const INTERRUPT: u8 = 0x03;
/// Longest packet accepted; longer ones are NAKed (gdbstub's buffer is 4096 by default).
const MAX_PACKET: usize = 4096;

/// A TCP connection with packet checking; see the module documentation.
pub struct Checked {
    stream: TcpStream,
    ready: VecDeque<u8>,
    /// The reply being written, then the last one written (for retransmission).
    out: Vec<u8>,
    last: Vec<u8>,
}

impl Checked {
    /// Wraps an accepted connection.
    pub fn new(stream: TcpStream) -> Checked {
        Checked {
            stream,
            ready: VecDeque::new(),
            out: Vec::new(),
            last: Vec::new(),
        }
    }

    fn byte(&mut self) -> std::io::Result<u8> {
        let mut b = [0u8];
        self.stream.set_nonblocking(false)?;
        Read::read_exact(&mut self.stream, &mut b)?;
        Ok(b[0])
    }

    /// Reads from the socket until something for gdbstub is ready.
    fn fill(&mut self) -> std::io::Result<()> {
        while self.ready.is_empty() {
            match self.byte()? {
                b @ (b'+' | INTERRUPT) => self.ready.push_back(b),
                b'-' => {
                    let again = self.last.clone();
                    Write::write_all(&mut self.stream, &again)?;
                }
                b'$' => self.packet()?,
                _ => {} // noise between packets
            }
        }
        Ok(())
    }

    /// The rest of a packet after its `$`: queued if its checksum holds, NAKed if not.
    fn packet(&mut self) -> std::io::Result<()> {
        let mut body = Vec::new();
        loop {
            match self.byte()? {
                b'#' => break,
                // A new start: the previous packet was cut short.
                b'$' => {
                    Write::write_all(&mut self.stream, b"-")?;
                    body.clear();
                }
                b => body.push(b),
            }
            if body.len() > MAX_PACKET {
                Write::write_all(&mut self.stream, b"-")?;
                return Ok(());
            }
        }
        let hex = [self.byte()?, self.byte()?];
        let given = std::str::from_utf8(&hex)
            .ok()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        let sum = body.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        if given != Some(sum) {
            Write::write_all(&mut self.stream, b"-")?;
            return Ok(());
        }
        if malformed(&body) {
            // gdbstub would end the session on these; an error reply keeps it.
            Write::write_all(&mut self.stream, b"+$E16#ac")?;
            self.last = b"$E16#ac".to_vec();
            return Ok(());
        }
        self.ready.push_back(b'$');
        self.ready.extend(body);
        self.ready.push_back(b'#');
        self.ready.extend(hex);
        Ok(())
    }
}

/// Whether a memory or breakpoint packet has arguments that are not the hex numbers its
/// syntax asks for (`mA,L`, `MA,L:XX…`, `Zt,A,K`, `zt,A,K`).
fn malformed(body: &[u8]) -> bool {
    let hex = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_hexdigit);
    let fields = |s: &[u8], n: usize| {
        let parts: Vec<&[u8]> = s.split(|&b| b == b',').collect();
        parts.len() != n || !parts.iter().all(|p| hex(p))
    };
    match body.split_first() {
        Some((b'm', rest)) => fields(rest, 2),
        Some((b'M', rest)) => match rest.iter().position(|&b| b == b':') {
            Some(i) => fields(&rest[..i], 2) || !rest[i + 1..].iter().all(u8::is_ascii_hexdigit),
            None => true,
        },
        Some((b'Z' | b'z', rest)) => {
            let head = rest.split(|&b| b == b';').next().unwrap_or_default();
            fields(head, 3)
        }
        _ => false,
    }
}

impl Connection for Checked {
    type Error = std::io::Error;

    fn write(&mut self, byte: u8) -> Result<(), Self::Error> {
        self.write_all(&[byte])
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Self::Error> {
        for &b in buf {
            if b == b'$' {
                self.out.clear();
            }
            self.out.push(b);
        }
        if self.out.first() == Some(&b'$') {
            self.last.clone_from(&self.out);
        }
        Write::write_all(&mut self.stream, buf)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        Write::flush(&mut self.stream)
    }

    fn on_session_start(&mut self) -> Result<(), Self::Error> {
        // Replies are small and interactive: send them at once.
        self.stream.set_nodelay(true)
    }
}

impl ConnectionExt for Checked {
    fn read(&mut self) -> Result<u8, Self::Error> {
        self.fill()?;
        Ok(self.ready.pop_front().unwrap_or(b'+'))
    }

    fn peek(&mut self) -> Result<Option<u8>, Self::Error> {
        if let Some(&b) = self.ready.front() {
            return Ok(Some(b));
        }
        self.stream.set_nonblocking(true)?;
        let mut b = [0u8];
        let r = match TcpStream::peek(&self.stream, &mut b) {
            Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => Ok(Some(b[0])),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        };
        self.stream.set_nonblocking(false)?;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::malformed;

    #[test]
    fn checks_memory_and_breakpoint_arguments() {
        for ok in [
            "m1000,8",
            "M10,2:abcd",
            "Z0,401000,1",
            "z2,7fff0,4",
            "g",
            "?",
            "vCont;c",
        ] {
            assert!(!malformed(ok.as_bytes()), "{ok}");
        }
        for bad in ["mzz,qq", "m1000", "M10,2", "M10,2:zz", "Z0,xyz,1", "z1"] {
            assert!(malformed(bad.as_bytes()), "{bad}");
        }
    }
}
