//! A guest kernel's own reports made readable, as Linux's scripts/decode_stacktrace.sh
//! does for a kernel log: every code address in a line — a call trace's `[<address>]`,
//! an oops's `RIP: address`, a `function+0xoff/0xsize` — gets the source frames behind
//! it, each frame inlined there on a line of its own marked `[inline]` before the line
//! itself, which ends with the function, offset and `file:line`. Lines without a code
//! address come out as they went in, so a whole console log can go through.

use crate::binary::Binary;

/// Decodes every line of `text` (see the module's description).
pub fn decode(bin: &Binary, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        for l in decode_line(bin, body) {
            out.push_str(&l);
            out.push('\n');
        }
        if end.is_empty() {
            // No newline after the last line: none added either.
            out.pop();
        }
    }
    out
}

/// The lines one log line becomes: the frames inlined at its address, then the line
/// with its function and place appended; the line alone without a code address in it.
fn decode_line(bin: &Binary, line: &str) -> Vec<String> {
    let Some((at, addr, exact)) = code_address(bin, line) else {
        return vec![line.to_string()];
    };
    // A call trace's addresses are return addresses: their call is the instruction
    // before (the kernel's %pB does the same).
    let lookup = if exact { addr } else { addr.wrapping_sub(1) };
    let frames = bin.frames(lookup);
    let Some((outer, inlined)) = frames.split_last() else {
        return vec![line.to_string()];
    };
    let indent = &line[..at];
    let mut out: Vec<String> = inlined
        .iter()
        .map(|f| format!("{indent}{}{} [inline]", f.function, f.place()))
        .collect();
    let mut last = line.to_string();
    if !line.contains(&outer.function) {
        last.push(' ');
        last.push_str(&bin.symbol_offset(addr));
    }
    last.push_str(&outer.place());
    out.push(last);
    out
}

/// The first code address in `line`: where its token starts, the address, and whether
/// it is an exact instruction address (a RIP) rather than a return address.
fn code_address(bin: &Binary, line: &str) -> Option<(usize, u64, bool)> {
    let exact = line.contains("RIP");
    if let Some(i) = line.find("[<") {
        let rest = &line[i + 2..];
        let hex = rest.split('>').next()?;
        let addr = u64::from_str_radix(hex, 16).ok()?;
        return bin.symbol(addr).map(|_| (i, addr, exact));
    }
    if let Some(i) = line.find("RIP: ") {
        let tok = line[i + 5..].split_whitespace().next()?;
        let hex = tok.trim_start_matches("0x");
        if let Ok(addr) = u64::from_str_radix(hex, 16) {
            return bin.symbol(addr).map(|_| (i, addr, true));
        }
    }
    // `function+0xoff/0xsize`, the kernel's %pS and %pB.
    let mut start = 0;
    for tok in line.split_whitespace() {
        let at = start + line[start..].find(tok)?;
        start = at + tok.len();
        let tok = tok
            .trim_start_matches(['(', '?'])
            .trim_end_matches([')', ',']);
        let Some((name, rest)) = tok.split_once("+0x") else {
            continue;
        };
        let Some((off, _size)) = rest.split_once("/0x") else {
            continue;
        };
        let (Some(base), Ok(off)) = (bin.address(name), u64::from_str_radix(off, 16)) else {
            continue;
        };
        return Some((at, base.wrapping_add(off), exact));
    }
    None
}
