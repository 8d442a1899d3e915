//! Rendering through graphviz, for whoever asks for it (`--graphviz`): DOT piped to
//! `dot -Tsvg`. The built-in renderer needs nothing installed; this one needs graphviz on
//! PATH and says how to do without it when it is missing.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Renders DOT to SVG with graphviz's `dot -Tsvg`.
pub(super) fn render_svg(dot: &str) -> Result<String> {
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
                err(NOT_FOUND.to_string())
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

const NOT_FOUND: &str = "not found on PATH: install graphviz (apt-get install graphviz), or drop --graphviz to draw with the built-in renderer";
