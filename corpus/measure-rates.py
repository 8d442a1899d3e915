#!/usr/bin/env python3
"""Trigger rates of the corpus scenarios, for the table in corpus/README.md.

    cargo build --release && cargo build -p umk --profile corpus
    python3 corpus/measure-rates.py [--native 50] [--chaos 20] [NAME ...]

Native: the scenario's umk arguments, init script, disk image and typed input, run as a
plain process; a crash is SIGABRT (umk's panic). Chaos: one `rewind record --chaos SEED`
per seed (101, 102, ...) with the scenario's chaos settings; a crash is exit status 134.
"""
import argparse, os, shutil, subprocess, sys, tempfile, threading, time, tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UMK = os.path.join(ROOT, "target/corpus/umk")
REWIND = os.path.join(ROOT, "target/release/rewind")


def prepare(name, work):
    sc = tomllib.load(open(os.path.join(ROOT, "corpus", name, "scenario.toml"), "rb"))
    root = os.path.join(work, "root")
    for path, text in sc["disk"].get("files", {}).items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        open(os.path.join(root, path), "w").write(text)
    os.makedirs(root, exist_ok=True)
    disk, init = os.path.join(work, "disk.img"), os.path.join(work, "init.sh")
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-d", root, disk, sc["disk"]["size"]],
                   check=True, capture_output=True)
    open(init, "w").write(sc["record"]["init"])
    args = [a.replace("{disk}", disk).replace("{init}", init) for a in sc["record"]["args"]]
    return sc["record"], args


def run(cmd, rec):
    """Runs cmd with the scenario's typed input; returns its exit status (or 'hang')."""
    inp = rec.get("input")
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if inp else subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if inp:
        def feed():
            time.sleep(inp["after_ms"] / 1000)
            end = time.time() + inp["for_ms"] / 1000
            try:
                while time.time() < end and p.poll() is None:
                    p.stdin.write(inp["bytes"].encode())
                    p.stdin.flush()
                    time.sleep(inp["every_ms"] / 1000)
            except BrokenPipeError:
                pass
        threading.Thread(target=feed, daemon=True).start()
    try:
        return p.wait(timeout=rec["timeout_secs"] + 10)
    except subprocess.TimeoutExpired:
        p.kill()
        return "hang"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--native", type=int, default=50)
    ap.add_argument("--chaos", type=int, default=20)
    ap.add_argument("names", nargs="*",
                    default=["abba", "hotplug", "uaf", "lostwake", "irqrace", "input"])
    a = ap.parse_args()
    for tool in (UMK, REWIND):
        if not os.path.exists(tool):
            sys.exit(f"{tool} is missing: cargo build --release && cargo build -p umk --profile corpus")
    for name in a.names:
        work = tempfile.mkdtemp(prefix=f"rewind-rates-{name}-")
        try:
            rec, args = prepare(name, work)
            native = sum(run([UMK] + args, rec) == -6 for _ in range(a.native))
            chaos = 0
            for seed in range(101, 101 + a.chaos):
                trace = os.path.join(work, "trace")
                shutil.rmtree(trace, ignore_errors=True)
                cmd = [REWIND, "record", "-o", trace, "--chaos", str(seed),
                       "--chaos-gap", str(rec.get("chaos_gap", 2000)),
                       "--chaos-delay", str(rec.get("chaos_delay", 64)),
                       "--timeout", str(rec["timeout_secs"]), "--", UMK] + args
                chaos += run(cmd, rec) == 134
            print(f"{name}: native {native}/{a.native}, recorded with chaos {chaos}/{a.chaos}",
                  flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


main()
