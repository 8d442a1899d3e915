//! The context switch. A task that is not running keeps its callee-saved registers on its
//! own stack and its stack pointer in its task-table slot; the layout below is the ABI
//! that debuggers use to show a sleeping task's registers (kernel/TASKS.md).
//!
//! Saved frame, from the saved stack pointer upward:
//! `r15, r14, r13, r12, rbx, rbp, return address`.

use core::arch::global_asm;

global_asm!(
    ".globl umk_switch_to",
    ".type umk_switch_to, @function",
    // umk_switch_to(prev_rsp_slot: *mut u64 (rdi), next_rsp: u64 (rsi))
    "umk_switch_to:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".size umk_switch_to, .-umk_switch_to",
    // First entry of a new task: the switch "returns" here with the entry point in r12
    // and its argument in r13.
    ".globl umk_task_trampoline",
    ".type umk_task_trampoline, @function",
    "umk_task_trampoline:",
    "xor ebp, ebp",
    "mov rdi, r13",
    "call r12",
    "ud2",
    ".size umk_task_trampoline, .-umk_task_trampoline",
);

extern "C" {
    fn umk_switch_to(prev_rsp_slot: *mut u64, next_rsp: u64);
    fn umk_task_trampoline();
}

/// Number of u64 words in a saved context frame.
pub const FRAME_WORDS: usize = 7;

/// Switches from the current task (whose stack pointer is stored into `*prev_rsp_slot`)
/// to the task whose saved stack pointer is `next_rsp`.
///
/// # Safety
/// `prev_rsp_slot` must be the current task's slot and `next_rsp` a frame made by this
/// function or by [`prepare_stack`]; the next task's stack must be live.
pub unsafe fn switch_to(prev_rsp_slot: *mut u64, next_rsp: u64) {
    // SAFETY: upheld by the caller as documented above.
    unsafe { umk_switch_to(prev_rsp_slot, next_rsp) }
}

/// Lays a first frame on a fresh stack so that switching to it calls `entry(arg)`.
/// Returns the stack pointer to store in the task's slot.
///
/// # Safety
/// `[stack_lo, stack_hi)` must be writable memory owned by the new task.
pub unsafe fn prepare_stack(
    stack_lo: u64,
    stack_hi: u64,
    entry: extern "C" fn(usize) -> !,
    arg: usize,
) -> u64 {
    // 16-byte aligned before the trampoline's `call`, as the SysV ABI wants.
    let top = stack_hi & !15;
    let frame = top - (FRAME_WORDS as u64) * 8;
    debug_assert!(frame > stack_lo);
    let words = [
        0u64,
        0,
        arg as u64,
        entry as *const () as u64,
        0,
        0,
        umk_task_trampoline as *const () as u64,
    ];
    for (i, w) in words.iter().enumerate() {
        // SAFETY: frame..top lies inside the new stack (checked above by the caller's size).
        unsafe { ((frame + i as u64 * 8) as *mut u64).write(*w) };
    }
    frame
}
