//! `rewind pack [TRACE] [-o FILE]`: one self-contained file holding the trace and the guest
//! binary; `rewind pack --unpack FILE -o DIR` turns it back into a trace directory (with
//! the binary as `DIR/binary`).

use std::path::PathBuf;

use anyhow::Context;

/// Arguments of `rewind pack`.
#[derive(clap::Args, Debug)]
pub struct PackArgs {
    /// The trace directory (default: the latest recording), or with --unpack the pack.
    pub trace: Option<PathBuf>,
    /// Output file (default: TRACE.rwpack), or with --unpack the directory to create.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The guest binary to pack, if it is no longer at the path the trace records (it must
    /// have the recorded SHA-256).
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// Unpack a packed trace instead (every entry checked against its hash).
    #[arg(long)]
    pub unpack: bool,
}

/// Runs `rewind pack`.
pub fn run(args: PackArgs) -> anyhow::Result<()> {
    let src = super::trace_path(args.trace.as_deref())?;
    // `latest` is a link: name the pack after the trace it points to.
    let src = std::fs::canonicalize(&src).unwrap_or(src);
    if args.unpack {
        let out = args.output.context("--unpack needs -o DIR")?;
        let mut pack = trace::pack::Pack::open(&src)?;
        pack.unpack(&out)?;
        eprintln!(
            "rewind: unpacked {} into {} (guest binary at {})",
            src.display(),
            out.display(),
            out.join(trace::pack::BINARY_ENTRY).display()
        );
        return Ok(());
    }
    let reader = trace::TraceReader::open(&src)?;
    let binary = args.binary.unwrap_or_else(|| {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(&reader.header().binary.path))
    });
    let out = args.output.unwrap_or_else(|| src.with_extension("rwpack"));
    let stats = trace::pack::write(&src, &binary, &out)?;
    eprintln!(
        "rewind: packed {} and {} into {} — {} entries ({} shared), {} bytes",
        src.display(),
        binary.display(),
        out.display(),
        stats.entries,
        stats.shared,
        stats.bytes
    );
    Ok(())
}
