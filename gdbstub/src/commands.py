# The gdb commands `rewind gdb` adds (loaded before `target remote`). A replay's every
# position is exact, so rr's way of moving through it applies: `goto POSITION`, and
# gdb's own checkpoint, restart and run, which there mean positions of the recording.
import re

import gdb


class RewindGoto(gdb.Command):
    """Go to a replay position (eN, eN+tK, eN+tK+sJ) and show it."""

    def __init__(self):
        super().__init__("goto", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        said = gdb.execute("monitor goto " + arg, to_string=True)
        gdb.write(said.split("\n")[0] + "\n")
        # A monitor command cannot tell gdb the program moved: forget what it showed.
        gdb.execute("maintenance flush register-cache")
        gdb.execute("info threads", to_string=True)
        _select_running_thread()
        gdb.execute("frame")


def _select_running_thread():
    # The task that runs at the new position, as `monitor where` names it: gdb would
    # otherwise stay on a thread that may not exist there.
    m = re.search(r"Thread 1\.([0-9]+) running", gdb.execute("monitor where", to_string=True))
    if m is None:
        return
    tid = int(m.group(1))
    for t in gdb.selected_inferior().threads():
        if t.ptid[1] == tid:
            t.switch()
            return


_checkpoints = {}


def _here():
    said = gdb.execute("monitor where", to_string=True)
    return said.split()[0] if said.strip() else "unknown"


class RewindCheckpoint(gdb.Command):
    """Remember this replay position as checkpoint N (the replay keeps a copy there)."""

    def __init__(self):
        super().__init__("checkpoint", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        said = gdb.execute("monitor checkpoint", to_string=True).strip()
        if not said.startswith("checkpoint at "):
            raise gdb.GdbError(said)
        n = max(_checkpoints, default=0) + 1
        _checkpoints[n] = said[len("checkpoint at "):].split()[0]
        gdb.write("checkpoint %d: %s\n" % (n, _checkpoints[n]))


class RewindRestart(gdb.Command):
    """Go back to checkpoint N (`info checkpoints` lists them)."""

    def __init__(self):
        super().__init__("restart", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        try:
            n = int(arg)
        except ValueError:
            raise gdb.GdbError("restart takes a checkpoint number")
        if n not in _checkpoints:
            raise gdb.GdbError("no checkpoint %d" % n)
        gdb.execute("goto " + _checkpoints[n])


class RewindInfoCheckpoints(gdb.Command):
    """The checkpoints taken, with their replay positions."""

    def __init__(self):
        super().__init__("info checkpoints", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        if not _checkpoints:
            gdb.write("No checkpoints.\n")
        here = _here()
        for n, pos in sorted(_checkpoints.items()):
            gdb.write("%s %d %s\n" % ("*" if pos == here else " ", n, pos))


class RewindRun(gdb.Command):
    """Go back to the start of the recording (the replay never restarts the program)."""

    def __init__(self):
        super().__init__("run", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("the recording fixed the arguments: run takes none")
        gdb.execute("goto e0")


RewindGoto()
RewindCheckpoint()
RewindRestart()
RewindInfoCheckpoints()
RewindRun()
