# umk's frames gdb cannot unwind by itself (kernel/TASKS.md, kernel/src/arch/switch.rs).
# umk_switch_to is assembly without CFI: a switched-out task rests inside it, its
# callee-saved registers pushed on its stack; the unwinder counts the pushes and pops
# before the pc to find them and the return address. umk_task_trampoline is every
# task's first frame: nothing called it, so the backtrace ends there instead of
# reading the stack's poison as return addresses.
import gdb
from gdb.FrameDecorator import FrameDecorator
from gdb.unwinder import Unwinder, register_unwinder


# struct sigcontext's general registers, in order (arch/x86/include/uapi/asm/sigcontext.h).
_SIGCONTEXT = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi",
               "rbp", "rbx", "rdx", "rax", "rcx", "rsp", "rip")


def _word(at):
    return int.from_bytes(bytes(gdb.selected_inferior().read_memory(at, 8)), "little")


class _FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class UmkFrames(Unwinder):
    def __init__(self):
        super().__init__("umk")
        self.spans = None

    def _function(self, name, last):
        # [start, end) of `name`, which ends at its first `last` instruction.
        try:
            start = int(gdb.parse_and_eval("(unsigned long)&" + name))
        except gdb.error:
            return None
        arch = gdb.selected_inferior().architecture()
        insns = arch.disassemble(start, count=64)
        for i in insns:
            if i["asm"].split()[0] == last:
                return (start, i["addr"] + i["length"], insns)
        return None

    def _load(self):
        if self.spans is None:
            self.spans = {
                "switch": self._function("umk_switch_to", "ret"),
                "trampoline": self._function("umk_task_trampoline", "ud2"),
                "sigreturn": self._function("umk_sigreturn", "ud2"),
            }
        return self.spans

    def __call__(self, pending):
        rip = pending.read_register("rip")
        pc = int(rip)
        spans = self._load()
        rsp = pending.read_register("rsp")
        code = rip.type
        data = rsp.type
        sw = spans["switch"]
        if sw is not None and sw[0] <= pc < sw[1]:
            pushed = []
            for i in sw[2]:
                if i["addr"] >= pc:
                    break
                words = i["asm"].split()
                if words[0] in ("push", "pushq"):
                    pushed.append(words[1].lstrip("%"))
                elif words[0] in ("pop", "popq") and pushed:
                    pushed.pop()
            sp = int(rsp)
            ret = sp + 8 * len(pushed)
            cfa = gdb.Value(ret + 8).cast(data)
            info = pending.create_unwind_info(_FrameId(cfa, gdb.Value(sw[0]).cast(code)))
            for k, reg in enumerate(pushed):
                slot = sp + 8 * (len(pushed) - 1 - k)
                kind = pending.read_register(reg).type
                info.add_saved_register(reg, gdb.Value(_word(slot)).cast(kind))
            info.add_saved_register("rip", gdb.Value(_word(ret)).cast(code))
            info.add_saved_register("rsp", cfa)
            return info
        sr = spans["sigreturn"]
        if sr is not None and sr[0] <= pc < sr[1]:
            # rsp is the ucontext (the handler's return popped pretcode); its
            # uc_mcontext (struct sigcontext) is 40 bytes in.
            mcontext = int(rsp) + 40
            info = pending.create_unwind_info(_FrameId(rsp, gdb.Value(sr[0]).cast(code)))
            for k, reg in enumerate(_SIGCONTEXT):
                kind = pending.read_register(reg).type
                info.add_saved_register(reg, gdb.Value(_word(mcontext + 8 * k)).cast(kind))
            return info
        tr = spans["trampoline"]
        if tr is not None and tr[0] <= pc < tr[1]:
            info = pending.create_unwind_info(_FrameId(rsp, gdb.Value(tr[0]).cast(code)))
            # A zero pc is gdb's mark of the outermost frame (the filter below hides it).
            info.add_saved_register("rip", gdb.Value(0).cast(code))
            info.add_saved_register("rsp", rsp)
            return info
        return None


class _SignalFrame(FrameDecorator):
    # The restorer's symbol has no size, so gdb cannot name its frame: name it as gdb
    # names a signal trampoline's.
    def function(self):
        return "<signal handler called>"


class UmkFrameNames:
    def __init__(self, frames):
        self.name = "umk"
        self.priority = 100
        self.enabled = True
        self.frames = frames
        gdb.frame_filters[self.name] = self

    def filter(self, decorated):
        for d in decorated:
            sr = self.frames._load()["sigreturn"]
            pc = d.inferior_frame().pc()
            if pc == 0:
                # The zero pc the trampoline's unwinding ends with is no frame.
                return
            if sr is not None and sr[0] <= pc < sr[1]:
                yield _SignalFrame(d)
            else:
                yield d


_frames = UmkFrames()
register_unwinder(None, _frames, replace=True)
UmkFrameNames(_frames)
