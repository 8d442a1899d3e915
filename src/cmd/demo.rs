//! `rewind demo`: boots umk on a fresh ext2 image and runs a short script that exercises
//! the filesystem, the scheduler and the shell, then checks the image with e2fsck.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args)]
pub struct DemoArgs {
    /// Directory for the disk image and script (default: a new directory under /tmp).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const SCRIPT: &str = "\
uptime
ls /
cat /etc/motd
echo written by umk > /hello.txt
mkdir /data
stress 4 5
ps
free
sync
halt
";

pub fn run(args: DemoArgs) -> Result<()> {
    let umk = super::umk::locate()?;
    let dir = match args.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("rewind-demo-{}", std::process::id())),
    };
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc"))
        .with_context(|| format!("creating {}", root.display()))?;
    std::fs::write(
        root.join("etc/motd"),
        "Welcome to umk, recorded by Rewind.\n",
    )?;
    let image = dir.join("disk.img");
    let _ = std::fs::remove_file(&image);
    let status = Command::new("mke2fs")
        .args(["-q", "-t", "ext2", "-d"])
        .arg(&root)
        .arg(&image)
        .arg("16M")
        .status()
        .context("running mke2fs (install e2fsprogs)")?;
    if !status.success() {
        bail!("mke2fs failed ({status})");
    }
    let script = dir.join("init.sh");
    std::fs::write(&script, SCRIPT)?;
    let status = Command::new(&umk)
        .arg("mem=64M")
        .arg(format!("ubd0={}", image.display()))
        .arg(format!("init={}", script.display()))
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {}", umk.display()))?;
    if !status.success() {
        bail!("umk ended with {status}");
    }
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&image)
        .output()
        .context("running e2fsck")?;
    println!(
        "e2fsck -fn {}: {}",
        image.display(),
        if fsck.status.success() {
            "clean"
        } else {
            "PROBLEMS"
        }
    );
    if !fsck.status.success() {
        bail!(
            "e2fsck found problems:\n{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
    }
    println!("demo files are in {}", dir.display());
    Ok(())
}
