//! Graph export shared by every diagram the analyzer draws (the lock class graph, the
//! provenance graph): a small DOT writer with the house style (boxes, monospace, the
//! story's path in red) and rendering to SVG with graphviz.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Attributes of a highlighted node: the path the report is about.
pub const RED_NODE: &str = ", color=red, fontcolor=red, penwidth=2";

/// A DOT digraph being written.
pub struct Dot {
    out: String,
}

impl Dot {
    /// `digraph name` laid out in direction `rankdir` (`LR`, `BT`).
    pub fn new(name: &str, rankdir: &str) -> Dot {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {name} {{");
        let _ = writeln!(out, "  rankdir={rankdir};");
        out.push_str("  node [shape=box, fontname=\"monospace\"];\n");
        out.push_str("  edge [fontname=\"monospace\", fontsize=10];\n");
        Dot { out }
    }

    /// A node; `attrs` follow the label (`, shape=ellipse`, [`RED_NODE`]).
    pub fn node(&mut self, id: &str, label: &str, attrs: &str) {
        let _ = writeln!(self.out, "  {id} [label=\"{}\"{attrs}];", escape(label));
    }

    /// An edge `from -> to`; `attrs` follow the label.
    pub fn edge(&mut self, from: &str, to: &str, label: &str, attrs: &str) {
        let _ = writeln!(
            self.out,
            "  {from} -> {to} [label=\"{}\"{attrs}];",
            escape(label)
        );
    }

    /// The finished graph.
    pub fn finish(mut self) -> String {
        self.out.push_str("}\n");
        self.out
    }
}

/// Escapes a DOT string: quotes and backslashes, and newlines as DOT's centred `\n`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Renders DOT to SVG with graphviz's `dot -Tsvg`.
pub fn render_svg(dot: &str) -> Result<String> {
    let program = "dot";
    let err = |why: String| Error::Graphviz {
        program: program.to_string(),
        why,
    };
    let mut child = Command::new(program)
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                err("not found on PATH; install graphviz (apt-get install graphviz)".to_string())
            } else {
                err(e.to_string())
            }
        })?;
    // Graphviz reads all of its input before writing, so writing first cannot deadlock.
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| err(format!("writing the graph: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for it: {e}")))?;
    if !output.status.success() {
        return Err(err(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout).map_err(|e| err(format!("output is not UTF-8: {e}")))
}
