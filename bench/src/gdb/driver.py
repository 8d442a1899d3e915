# Timed gdb session (rewind-bench): runs the steps of the JSON plan in BENCH_PLAN, each a
# gdb command timed with time.perf_counter, and prints one line per step:
# BENCH-STEP {"label", "cmd", "secs", "error", "out", "pc", "func", "funcs"} (funcs: the
# innermost frame and the frames it is inlined into).
# A step {"pause": NAME} prints BENCH-PAUSE NAME and waits until the file NAME appears in
# BENCH_RESUME_DIR (the bench samples /proc meanwhile, with gdb attached).
import json
import os
import time

import gdb

with open(os.environ["BENCH_PLAN"]) as f:
    plan = json.load(f)
resume_dir = os.environ["BENCH_RESUME_DIR"]
for setting in ("pagination off", "confirm off", "width 0", "height 0"):
    gdb.execute("set " + setting)

for step in plan:
    if "pause" in step:
        print("BENCH-PAUSE " + step["pause"], flush=True)
        flag = os.path.join(resume_dir, step["pause"])
        deadline = time.monotonic() + 600
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.005)
        continue
    error = None
    out = ""
    t0 = time.perf_counter()
    try:
        out = gdb.execute(step["cmd"], to_string=True)
    except gdb.error as e:
        error = str(e)
    except BaseException as e:
        error = "%s: %s" % (type(e).__name__, e)
    secs = time.perf_counter() - t0
    pc = None
    func = None
    funcs = []
    try:
        frame = gdb.selected_frame()
        pc = int(frame.pc())
        func = frame.name()
        # The innermost frame may be inlined into the function the stop is really in.
        while frame is not None:
            funcs.append(frame.name() or "")
            if frame.type() != gdb.INLINE_FRAME:
                break
            frame = frame.older()
    except BaseException:
        pass
    print("BENCH-STEP " + json.dumps({
        "label": step.get("label", ""),
        "cmd": step["cmd"],
        "secs": secs,
        "error": error,
        "out": out[-2000:],
        "pc": pc,
        "func": func,
        "funcs": funcs,
    }), flush=True)
