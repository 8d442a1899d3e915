//! A corpus scenario (`corpus/NAME/scenario.toml`): how a umk bug is recorded (arguments,
//! init script, disk image recipe, typed input, the `--until` goal) and what its replay
//! and analysis must show; plus `recorded.toml`, the facts `rewind corpus record` wrote
//! about the shipped recording. The scenario files are compiled in, so `rewind demo` and
//! `rewind corpus record` work from any directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use recorder::until;
use serde::{Deserialize, Serialize};

/// Every scenario, by name, with its scenario.toml text.
pub const SCENARIOS: [(&str, &str); 6] = [
    ("abba", include_str!("../corpus/abba/scenario.toml")),
    ("hotplug", include_str!("../corpus/hotplug/scenario.toml")),
    ("uaf", include_str!("../corpus/uaf/scenario.toml")),
    ("lostwake", include_str!("../corpus/lostwake/scenario.toml")),
    ("irqrace", include_str!("../corpus/irqrace/scenario.toml")),
    ("input", include_str!("../corpus/input/scenario.toml")),
];

/// The shipped recording's file name inside `corpus/NAME/`; recordings for hosts that
/// cannot replay it are `recording.KIND.rwpack` (KIND from `replayer::host_kind`).
pub const RECORDING: &str = "recording.rwpack";

/// One shipped recording of a scenario and the recorded.toml that describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipped {
    /// `recording.rwpack` or `recording.KIND.rwpack`.
    pub pack: PathBuf,
    /// `recorded.toml` or `recorded.KIND.toml`.
    pub recorded: PathBuf,
}

impl Shipped {
    /// The recording for hosts of `kind` in `dir` (`None`: the scenario's first one).
    pub fn at(dir: &Path, kind: Option<&str>) -> Shipped {
        match kind {
            None => Shipped {
                pack: dir.join(RECORDING),
                recorded: dir.join("recorded.toml"),
            },
            Some(k) => Shipped {
                pack: dir.join(format!("recording.{k}.rwpack")),
                recorded: dir.join(format!("recorded.{k}.toml")),
            },
        }
    }

    /// Every recording shipped in `dir`, `recording.rwpack` first.
    pub fn all(dir: &Path) -> Vec<Shipped> {
        let mut kinds: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| {
                n.strip_prefix("recording.")?
                    .strip_suffix(".rwpack")
                    .map(str::to_string)
            })
            .collect();
        kinds.sort();
        let first = dir
            .join(RECORDING)
            .is_file()
            .then(|| Shipped::at(dir, None));
        first
            .into_iter()
            .chain(kinds.iter().map(|k| Shipped::at(dir, Some(k))))
            .collect()
    }

    /// Why this host cannot replay it (empty when it can).
    pub fn mismatch(&self) -> Result<Vec<String>> {
        replayer::host_mismatch_of(&self.pack)
            .with_context(|| format!("reading {}", self.pack.display()))
    }

    /// The file name, for messages.
    pub fn name(&self) -> String {
        self.pack
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// One scenario.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// One line: what goes wrong.
    pub summary: String,
    /// Where the bug lives in umk's source.
    pub source: String,
    /// The disk image ubd0 gets.
    pub disk: Disk,
    /// How the run is recorded.
    pub record: Record,
    /// What the replay and the analyzer must show.
    pub expect: Expect,
}

/// A fresh ext2 image made by mke2fs from the listed files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    /// mke2fs size, e.g. "16M".
    pub size: String,
    /// Path inside the image → contents.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// The recording recipe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// umk's arguments; `{disk}` and `{init}` become the image and script paths.
    pub args: Vec<String>,
    /// The init script.
    pub init: String,
    /// `crash`, `hang` or `exit-nonzero`.
    pub until: String,
    /// Seed of the first run.
    #[serde(default = "one")]
    pub first_seed: u64,
    /// Most runs before giving up.
    pub max_runs: u32,
    /// Seconds after which a run counts as hung.
    pub timeout_secs: u64,
    /// Mean ticks between chaos's added timer interrupts (`--chaos-gap`).
    #[serde(default = "default_gap")]
    pub chaos_gap: u64,
    /// Most ticks chaos delays a real interrupt (`--chaos-delay`).
    #[serde(default = "default_delay")]
    pub chaos_delay: u64,
    /// Console input typed during the run.
    pub input: Option<Input>,
}

fn one() -> u64 {
    1
}

fn default_gap() -> u64 {
    recorder::chaos::DEFAULT_MEAN_GAP
}

fn default_delay() -> u64 {
    recorder::chaos::DEFAULT_MAX_DELAY
}

/// Typed console input (see `recorder::InputFeed`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The bytes, as a TOML string (`"\u0014"` is Ctrl-T).
    pub bytes: String,
    /// Milliseconds before the first.
    pub after_ms: u64,
    /// Milliseconds between repeats.
    pub every_ms: u64,
    /// Milliseconds of repeating.
    pub for_ms: u64,
}

/// The expected outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Lines the replayed console must contain.
    pub console: Vec<String>,
    /// The `rewind analyze` subcommand that explains the bug.
    pub analyze: String,
    /// Lines its report must contain.
    pub report: Vec<String>,
    /// Lines its report must not contain.
    #[serde(default)]
    pub report_lacks: Vec<String>,
}

/// recorded.toml: what `rewind corpus record` saw when it made the shipped recording.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Recorded {
    /// The chaos seed of the kept run.
    pub seed: u64,
    /// Runs `--until` needed (the kept one included).
    pub runs: u32,
    /// How the other runs ended.
    pub tally: String,
    /// How the program ended, in `rewind replay`'s words ("killed by signal 6 at rip 0x…").
    pub ending: String,
    /// Events in the trace.
    pub events: u64,
    /// Size of the packed recording in bytes.
    pub pack_bytes: u64,
    /// SHA-256 of the umk binary inside the pack.
    pub umk_sha256: String,
    /// SHA-256 over umk's sources when it was built (see [`kernel_sources_sha256`]).
    pub kernel_sources_sha256: String,
}

impl Scenario {
    /// The named scenario, or an error listing the known ones.
    pub fn named(name: &str) -> Result<Scenario> {
        let Some((_, text)) = SCENARIOS.iter().find(|(n, _)| *n == name) else {
            bail!(
                "unknown scenario {name:?}; the corpus has: {}",
                SCENARIOS.map(|(n, _)| n).join(", ")
            );
        };
        toml::from_str(text).with_context(|| format!("corpus/{name}/scenario.toml"))
    }

    /// Makes the disk image and init script in `dir` and returns the recorder options.
    pub fn prepare(&self, umk: &Path, dir: &Path) -> Result<recorder::RecordOptions> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let disk = self.make_disk(dir)?;
        let init = dir.join("init.sh");
        std::fs::write(&init, &self.record.init)
            .with_context(|| format!("writing {}", init.display()))?;
        let args = self.record.args.iter().map(|a| {
            a.replace("{disk}", &disk.display().to_string())
                .replace("{init}", &init.display().to_string())
        });
        let mut opts = recorder::RecordOptions::new(umk.as_os_str(), args);
        opts.timeout = Some(Duration::from_secs(self.record.timeout_secs));
        opts.chaos = Some(recorder::ChaosOptions {
            seed: self.record.first_seed,
            max_delay: self.record.chaos_delay,
            mean_gap: self.record.chaos_gap,
        });
        opts.input = self.record.input.as_ref().map(|i| recorder::InputFeed {
            bytes: i.bytes.as_bytes().to_vec(),
            after: Duration::from_millis(i.after_ms),
            every: Duration::from_millis(i.every_ms),
            repeat_for: Duration::from_millis(i.for_ms),
        });
        Ok(opts)
    }

    /// Prepares `work` (disk image, init script) and records with chaos until the run
    /// ends as the scenario expects, calling `progress` after each run. The kept trace is
    /// `work/trace`; the guest's console goes to `work/console.txt`.
    pub fn record_until(
        &self,
        umk: &Path,
        work: &Path,
        max_runs: Option<u32>,
        progress: impl FnMut(&until::Run, &recorder::Recording),
    ) -> Result<(until::Reproduced, PathBuf)> {
        let mut opts = self.prepare(umk, work)?;
        let trace = work.join("trace");
        if trace.exists() {
            std::fs::remove_dir_all(&trace)
                .with_context(|| format!("clearing {}", trace.display()))?;
        }
        opts.out_dir = Some(trace.clone());
        let console = work.join("console.txt");
        let file = std::fs::File::create(&console)
            .with_context(|| format!("creating {}", console.display()))?;
        opts.stdout = Some(file.into());
        let found = until::record_until(&opts, self.until(max_runs)?, progress)?;
        Ok((found, trace))
    }

    /// The `--until` settings.
    pub fn until(&self, max_runs: Option<u32>) -> Result<until::UntilOptions> {
        Ok(until::UntilOptions {
            goal: self.record.until.parse().map_err(anyhow::Error::msg)?,
            first_seed: self.record.first_seed,
            max_runs: max_runs.unwrap_or(self.record.max_runs),
        })
    }

    fn make_disk(&self, dir: &Path) -> Result<PathBuf> {
        let root = dir.join("disk-root");
        if root.exists() {
            std::fs::remove_dir_all(&root)
                .with_context(|| format!("clearing {}", root.display()))?;
        }
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        for (path, contents) in &self.disk.files {
            let p = root.join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(&p, contents).with_context(|| format!("writing {}", p.display()))?;
        }
        let image = dir.join("disk.img");
        let _ = std::fs::remove_file(&image);
        // Quiet unless it fails: mke2fs prints "Creating regular file …" even with -q.
        let out = Command::new(mke2fs()?)
            .args(["-q", "-F", "-t", "ext2", "-d"])
            .arg(&root)
            .arg(&image)
            .arg(&self.disk.size)
            .output()
            .context("running mke2fs to make the scenario's disk image")?;
        if !out.status.success() {
            bail!(
                "mke2fs failed making {} ({}): {}{}",
                image.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(image)
    }
}

/// The `mke2fs` scenarios make their disk images with: on PATH, or in the sbin
/// directories Debian keeps it in (not on an ordinary user's PATH).
pub fn mke2fs() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("mke2fs"))
        .find(|p| p.is_file())
        .context(
            "mke2fs is not on PATH nor in /usr/sbin or /sbin; the scenario's disk image needs it: \
             install e2fsprogs (`apt-get install e2fsprogs`)",
        )
}

impl Recorded {
    /// Reads `corpus/NAME/recorded.toml`.
    pub fn read(path: &Path) -> Result<Recorded> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes it, with a line saying where it came from and which pack it describes.
    pub fn write(&self, path: &Path, pack: &str) -> Result<()> {
        let body = toml::to_string(self).context("serializing recorded.toml")?;
        let text =
            format!("# Written by `rewind corpus record`; describes {pack} beside it.\n{body}");
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// SHA-256 over umk's sources (every file under kernel/ but build output, by relative path
/// and contents, in path order) and the cargo config its build reads: a recording whose
/// value differs from the tree's was made from another kernel.
pub fn kernel_sources_sha256(workspace: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    collect(&workspace.join("kernel"), &mut files)?;
    files.push(workspace.join(".cargo/config.toml"));
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        let rel = f.strip_prefix(workspace).unwrap_or(&f);
        let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        h.update(rel.to_string_lossy().as_bytes());
        h.update([0]);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            collect(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}
