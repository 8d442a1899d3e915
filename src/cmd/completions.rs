//! `rewind completions SHELL` and `rewind man DIR`: shell completion scripts and man
//! pages, generated from the one command-line definition in `cli`.

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::command;

/// Arguments of `rewind completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell (e.g. `rewind completions bash > ~/.local/share/bash-completion/completions/rewind`).
    pub shell: clap_complete::Shell,
}

/// Arguments of `rewind man`.
#[derive(clap::Args, Debug)]
pub struct ManArgs {
    /// Directory to write rewind.1 and rewind-SUBCOMMAND.1 into (created if missing).
    pub dir: PathBuf,
}

/// Runs `rewind completions`.
pub fn run(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = command();
    clap_complete::generate(args.shell, &mut cmd, "rewind", &mut std::io::stdout());
    Ok(())
}

/// Runs `rewind man`.
pub fn man(args: ManArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let cmd = command();
    clap_mangen::generate_to(cmd, &args.dir)
        .with_context(|| format!("writing man pages into {}", args.dir.display()))?;
    eprintln!(
        "rewind: man pages in {} (read one with `man -l {}`)",
        args.dir.display(),
        args.dir.join("rewind.1").display()
    );
    Ok(())
}
