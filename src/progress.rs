//! Progress bars for long work (a replay, a seek, an analysis): drawn on stderr when it is
//! a terminal, absent otherwise, so logs and pipes get no control characters.

use std::io::IsTerminal;

/// A `(done, total)` callback that draws a bar labelled `what`, or `None` when stderr is
/// not a terminal. The bar clears itself when `done` reaches `total`.
pub fn bar(what: &str) -> Option<Box<dyn FnMut(u64, u64)>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(1);
    let template = format!("{what} {{bar:40}} {{pos}}/{{len}} events ({{elapsed}})");
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(Box::new(move |done, total| {
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
        }
    }))
}
