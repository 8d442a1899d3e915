# gdb `record full` baseline (rewind-bench): starts the program (`break main` + `run`, or
# `starti` for a program without main), turns on `record full` with no instruction limit,
# and times `continue` with time.perf_counter. A timer interrupts gdb (SIGINT) when the
# budget runs out (and every second after, until gdb stops). Prints one line: BENCH-RESULT {json}.
import json
import os
import signal
import threading
import time

import gdb

budget = float(os.environ["BENCH_BUDGET"])
gdb.execute("set pagination off")
gdb.execute("set confirm off")
gdb.execute("set width 0")
if os.environ.get("BENCH_START") == "main":
    gdb.execute("break main", to_string=True)
    gdb.execute("run", to_string=True)
else:
    gdb.execute("starti", to_string=True)
gdb.execute("record full")
gdb.execute("set record full insn-number-max unlimited")

fired = threading.Event()
done = threading.Event()


def interrupt():
    # Once the budget is spent, interrupt gdb every second until `continue` returns: an
    # interrupt that lands while the inferior blocks in a host call can be lost.
    if done.wait(budget):
        return
    fired.set()
    while not done.is_set():
        os.kill(os.getpid(), signal.SIGINT)
        done.wait(1.0)


timer = threading.Thread(target=interrupt, daemon=True)
error = None
out = ""
t0 = time.perf_counter()
timer.start()
try:
    out = gdb.execute("continue", to_string=True)
except BaseException as e:  # gdb.error, or KeyboardInterrupt from the budget's SIGINT
    error = "%s: %s" % (type(e).__name__, e)
secs = time.perf_counter() - t0
done.set()
try:
    info = gdb.execute("info record", to_string=True)
except BaseException as e:
    info = "info record: %s" % e
try:
    where = gdb.selected_frame().name() or ""
except BaseException:
    where = ""
print("BENCH-RESULT " + json.dumps({
    "secs": secs,
    "budget_hit": fired.is_set(),
    "error": error,
    "out": out,
    "info": info,
    "where": where,
}), flush=True)
