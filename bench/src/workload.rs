//! The workloads: umk running a CPU-heavy (`compute`), a filesystem-heavy (`stress` on
//! ext2 over ubd) and an idle-heavy (`sleep`) script, the idle/compute mix of the long and
//! scaling recordings, a C program mixing small writes with computation, a shell
//! pipeline (a tree of processes: fork, exec, pipes, wait), and everyday programs with
//! processes and threads (`make` running gcc, Python's `threading`, a pthread
//! ping-pong). Sizes come
//! from umk's calibrated compute rate so that a workload lasts about as long on any host.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::exec;
use crate::lab::Lab;

/// umk's timer rate in every workload (its default).
pub const HZ: f64 = 250.0;

/// One program with its arguments, and how to reset its inputs before each run.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    /// An ext2 image made afresh (mke2fs) before each run.
    pub image: Option<PathBuf>,
    /// A file the program writes, removed before each run.
    pub output: Option<PathBuf>,
}

impl Workload {
    /// The native command.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args);
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c
    }

    /// The command run under `tool` (e.g. `strace -f -o /dev/null`).
    pub fn command_under(&self, tool: &[&str]) -> Command {
        let mut c = Command::new(tool[0]);
        c.args(&tool[1..]).arg(&self.program).args(&self.args);
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        c
    }

    /// Resets the inputs: a fresh ext2 image, no output file.
    pub fn prepare(&self) -> anyhow::Result<()> {
        if let Some(img) = &self.image {
            mke2fs(img)?;
        }
        if let Some(out) = &self.output {
            let _ = std::fs::remove_file(out);
        }
        Ok(())
    }
}

/// A fresh 32 MB ext2 image.
pub fn mke2fs(img: &std::path::Path) -> anyhow::Result<()> {
    exec::run_ok(
        Command::new("mke2fs")
            .args(["-q", "-F", "-t", "ext2"])
            .arg(img)
            .arg("32M"),
        Duration::from_secs(60),
    )
    .map(drop)
    .context("making an ext2 image")
}

/// A umk workload running `script` with `mem=64M` and a fresh ext2 image as ubd0.
pub fn umk(lab: &Lab, name: &str, tag: &str, mem: &str, script: &str) -> anyhow::Result<Workload> {
    let init = lab.path(&format!("{tag}.sh"));
    std::fs::write(&init, script).context("writing an init script")?;
    let image = lab.path(&format!("{tag}.img"));
    Ok(Workload {
        name: name.to_string(),
        program: lab.umk.clone(),
        args: vec![
            format!("mem={mem}"),
            format!("ubd0={}", image.display()),
            format!("init={}", init.display()),
        ],
        cwd: None,
        image: Some(image),
        output: None,
    })
}

/// `compute` units (thousands) that take `secs` natively.
pub fn units(lab: &Lab, secs: f64) -> u64 {
    ((lab.compute_rate * secs).round() as u64).max(1)
}

/// umk `compute` for about `secs` seconds.
pub fn umk_cpu(lab: &Lab, secs: f64) -> anyhow::Result<Workload> {
    let n = units(lab, secs);
    umk(
        lab,
        &format!("umk cpu (compute {n})"),
        "cpu",
        "64M",
        &format!("compute {n}\nhalt\n"),
    )
}

/// umk `stress TASKS ROUNDS` on ext2, then sync.
pub fn umk_fs(lab: &Lab, tasks: u32, rounds: u32) -> anyhow::Result<Workload> {
    umk(
        lab,
        &format!("umk fs (stress {tasks} {rounds})"),
        &format!("fs-{tasks}-{rounds}"),
        "64M",
        &format!("stress {tasks} {rounds}\nsync\nhalt\n"),
    )
}

/// umk sleeping `sleeps` times half a second, with a sliver of compute after each.
pub fn umk_idle(lab: &Lab, sleeps: u32) -> anyhow::Result<Workload> {
    let n = units(lab, 0.01);
    let script = "sleep 0.5\n".to_string() + &format!("compute {n}\n");
    umk(
        lab,
        &format!("umk idle ({sleeps}x sleep 0.5)"),
        "idle",
        "64M",
        &(script.repeat(sleeps as usize) + "halt\n"),
    )
}

/// The long and scaling workload: each second a quarter of compute and three quarters of
/// sleep, for `secs` seconds.
pub fn mixed(lab: &Lab, secs: u64) -> anyhow::Result<Workload> {
    let n = units(lab, 0.25);
    let block = format!("compute {n}\nsleep 0.75\n");
    umk(
        lab,
        &format!("umk mix {secs} s (compute 25% / sleep 75%)"),
        &format!("mix-{secs}"),
        "64M",
        &(block.repeat(secs as usize) + "halt\n"),
    )
}

/// Measures umk's compute rate (thousands of units per native second) from its own
/// report `compute: N units in J jiffies`.
pub fn calibrate(lab: &Lab) -> anyhow::Result<f64> {
    let init = lab.path("calibrate.sh");
    std::fs::write(&init, "compute 3000\nhalt\n")?;
    let o = exec::run_ok(
        Command::new(&lab.umk)
            .arg("mem=64M")
            .arg(format!("init={}", init.display())),
        Duration::from_secs(120),
    )?;
    let jiffies = compute_jiffies(&o.stdout);
    match jiffies.first() {
        Some(&j) if j > 0 => Ok(3000.0 / (j as f64 / HZ)),
        _ => bail!("umk did not report its compute time:\n{}", o.stdout),
    }
}

/// The jiffies of every `compute: N units in J jiffies` line of a umk console log.
pub fn compute_jiffies(console: &str) -> Vec<u64> {
    console
        .lines()
        .filter_map(|l| l.strip_prefix("compute: "))
        .filter_map(|l| {
            l.split(" in ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The C workload: `ITERS` rounds of 2000 multiply-xor steps, a formatted 20-odd-byte
/// line written to a file every fourth round.
pub const C_SOURCE: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 1000;
    const char *path = argc > 2 ? argv[2] : "/dev/null";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { perror(path); return 1; }
    unsigned long h = 1469598103934665603UL;
    char line[64];
    for (long i = 0; i < iters; i++) {
        for (int j = 0; j < 2000; j++) h = (h ^ (unsigned long)(i + j)) * 1099511628211UL;
        if (i % 4 == 0) {
            int n = snprintf(line, sizeof line, "%ld %lx\n", i, h);
            if (write(fd, line, (size_t)n) != n) { perror("write"); return 1; }
        }
    }
    close(fd);
    printf("%lx\n", h);
    return 0;
}
"#;

/// Compiles the C workload (`cc -O1 -g`) into the scratch directory once.
pub fn c_binary(lab: &Lab) -> anyhow::Result<PathBuf> {
    compile(lab, "mix", C_SOURCE, &[])
}

/// Compiles `source` (`cc -O1 -g` and `flags`) into the scratch directory as `name`, once.
fn compile(lab: &Lab, name: &str, source: &str, flags: &[&str]) -> anyhow::Result<PathBuf> {
    if let Err(why) = &lab.cc {
        bail!("{why}");
    }
    let exe = lab.path(name);
    if !exe.is_file() {
        let src = lab.path(&format!("{name}.c"));
        std::fs::write(&src, source)?;
        exec::run_ok(
            Command::new("cc")
                .args(["-O1", "-g"])
                .args(flags)
                .arg("-o")
                .arg(&exe)
                .arg(&src),
            Duration::from_secs(120),
        )?;
    }
    Ok(exe)
}

/// The Python interpreter itself, as `sys.executable` names it: `python3` on `$PATH` may
/// be a shim (pyenv's is a bash script running a dozen commands per start), whose start-up
/// would be measured instead of Python's.
pub fn python_interpreter() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from("python3"), PathBuf::from)
    })
    .clone()
}

/// Python making `n` one-byte writes to /dev/null with os.write.
pub fn python_writes(n: u64) -> Workload {
    Workload {
        name: format!("Python {n} writes to /dev/null"),
        program: python_interpreter(),
        args: vec![
            "-c".into(),
            format!(
                "import os\nfd = os.open('/dev/null', os.O_WRONLY)\nfor _ in range({n}):\n    \
                 os.write(fd, b'x')\n"
            ),
        ],
        cwd: None,
        image: None,
        output: None,
    }
}

/// The C workload with `iters` rounds writing to a file in the scratch directory.
pub fn c_mix(lab: &Lab, iters: u64) -> anyhow::Result<Workload> {
    let program = c_binary(lab)?;
    let out = lab.path(&format!("mix-{iters}.out"));
    Ok(Workload {
        name: format!("C writes+compute ({iters} rounds)"),
        program,
        args: vec![iters.to_string(), out.display().to_string()],
        cwd: Some(lab.scratch.path().to_path_buf()),
        image: None,
        output: Some(out),
    })
}

/// Linux built as UML (`linux/build`'s target/linux/linux) running KUnit with kunit.py's
/// arguments and simulated time. The bench does not build it (10 to 20 minutes): its
/// rows say to run linux/build when it is missing.
pub fn linux_kunit(lab: &Lab) -> anyhow::Result<Workload> {
    let kernel = lab.target.join("linux/linux");
    anyhow::ensure!(
        kernel.is_file(),
        "no {}: run linux/build first",
        kernel.display()
    );
    Ok(Workload {
        name: "Linux UML KUnit run (22 suites, time-travel=inf-cpu)".into(),
        program: kernel,
        args: [
            "mem=256M",
            "console=tty",
            "kunit.enable=1",
            "kunit_shutdown=halt",
            "time-travel=inf-cpu",
        ]
        .map(String::from)
        .to_vec(),
        cwd: None,
        image: None,
        output: None,
    })
}

/// `sh -c SCRIPT`: with a pipeline, a tree of processes the recorder follows one at a
/// time, switching where one waits on a pipe.
pub fn shell(name: &str, script: &str) -> Workload {
    command(name, "/bin/sh", &["-c", script])
}

/// `program args`, run as it is.
pub fn command(name: &str, program: &str, args: &[&str]) -> Workload {
    Workload {
        name: name.to_string(),
        program: PathBuf::from(program),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: None,
        image: None,
        output: None,
    }
}

/// A two-file C project: `make -B` rebuilds it every run (make, then gcc forking cc1, as
/// and collect2/ld for each file: a dozen processes, each exec'd from the trace).
pub fn make_project(lab: &Lab) -> anyhow::Result<Workload> {
    if let Err(why) = &lab.cc {
        bail!("{why}");
    }
    let dir = lab.path("make-project");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("main.c"),
        "int add(int, int);\nint main(void) { return add(2, 3) == 5 ? 0 : 1; }\n",
    )?;
    std::fs::write(
        dir.join("add.c"),
        "int add(int a, int b) { return a + b; }\n",
    )?;
    std::fs::write(
        dir.join("Makefile"),
        "prog: main.o add.o\n\tcc -o prog main.o add.o\n%.o: %.c\n\tcc -O1 -c $<\n",
    )?;
    Ok(Workload {
        name: "make -B of a two-file C project".into(),
        program: PathBuf::from("make"),
        args: vec!["-s".into(), "-B".into()],
        cwd: Some(dir),
        image: None,
        output: None,
    })
}

/// Python's `threading`: four threads adding to a shared counter under a lock, `n` times
/// each (the recorder runs one thread at a time and switches at each contended futex).
pub fn python_threads(n: u64) -> Workload {
    Workload {
        name: format!("Python 4 threads x {n} locked increments"),
        program: python_interpreter(),
        args: vec![
            "-c".into(),
            format!(
                "import threading\nlock = threading.Lock()\ncount = 0\ndef work():\n    \
                 global count\n    for _ in range({n}):\n        with lock:\n            \
                 count += 1\nts = [threading.Thread(target=work) for _ in range(4)]\n\
                 for t in ts: t.start()\nfor t in ts: t.join()\nprint(count)\n"
            ),
        ],
        cwd: None,
        image: None,
        output: None,
    }
}

/// Two pthreads handing a token back and forth `rounds` times through a mutex and a
/// condition variable: every hand-over is a futex wait and wake, a thread switch.
const PINGPONG_SOURCE: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static long turn, rounds;
static void *player(void *arg) {
    long me = (long)arg;
    for (long i = 0; i < rounds; i++) {
        pthread_mutex_lock(&m);
        while (turn % 2 != me) pthread_cond_wait(&c, &m);
        turn++;
        pthread_cond_signal(&c);
        pthread_mutex_unlock(&m);
    }
    return NULL;
}
int main(int argc, char **argv) {
    rounds = argc > 1 ? atol(argv[1]) : 1000;
    pthread_t a, b;
    pthread_create(&a, NULL, player, (void *)0);
    pthread_create(&b, NULL, player, (void *)1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("%ld\n", turn);
    return 0;
}
"#;

/// The pthread ping-pong (`PINGPONG_SOURCE`) with `rounds` hand-overs per thread.
pub fn pthread_pingpong(lab: &Lab, rounds: u64) -> anyhow::Result<Workload> {
    let exe = compile(lab, "pingpong", PINGPONG_SOURCE, &["-pthread"])?;
    Ok(Workload {
        name: format!("C pthread mutex+condvar ping-pong ({rounds} rounds)"),
        program: exe,
        args: vec![rounds.to_string()],
        cwd: None,
        image: None,
        output: None,
    })
}
