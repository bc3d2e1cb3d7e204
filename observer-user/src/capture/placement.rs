//! Where to put the TLS probes so the kernel emulates the probed instruction instead of
//! single-stepping it.
//!
//! A uprobe replaces an instruction with a breakpoint. When it fires, x86 kernels emulate a few
//! instructions (nop, push, direct call and jumps) and single-step every other one out of line,
//! which costs about ten times more (5.7 µs against 0.6 µs per hit measured on this project's
//! VMs). A uretprobe rides on the same breakpoint at the function's first instruction. OpenSSL
//! 3's SSL_read, SSL_write and their _ex variants all begin with `sub $N,%rsp`, which is
//! single-stepped, and all do little more than call one internal function with their own
//! arguments: `ssl_read_internal(ssl, buf, num, &count)` or its write twin, which begin with
//! `push` (emulated), return 1 on success and store the count. Probing that internal function
//! instead (entry and return) reads exactly what the wrappers' probes read, for all four wrappers
//! at once, without a single-step.
//!
//! This module recognises that shape in the machine code and says so only when every condition
//! holds; anything else keeps the probes on the symbol, which is always correct.

use iced_x86::{
    Code, Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, OpAccess,
    OpKind, Register,
};

/// Bytes of a wrapper decoded to find its call: the wrappers are about 40 bytes long.
pub const MAX_WRAPPER_BYTES: usize = 128;

/// Bytes of the internal function needed to decode its first instruction.
pub const MAX_INSTRUCTION_BYTES: usize = 15;

/// Instructions between the internal call and the test of its result: a `test` and the jump.
const MAX_INSTRUCTIONS_AFTER_CALL: usize = 3;

/// Whether to look for cheaper probe places at all (benchmarks compare both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PlacementPolicy {
    /// On the wrappers' internal function where the code has that shape, else on the symbol.
    #[default]
    Auto,
    /// Always on the symbol.
    Symbol,
}

/// Where the count the wrapper returns is stored by the internal function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountSlot {
    /// The wrapper passes a slot on its own stack (`mov %rsp,%rcx`) and returns the slot's value
    /// when the call succeeds: SSL_read and SSL_write.
    WrapperStack,
    /// The wrapper passes its caller's pointer through (rcx untouched): the _ex variants.
    CallersPointer,
}

/// A wrapper's call to its internal function, with the arguments passed through unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapperCall {
    /// Virtual address of the internal function.
    pub target: u64,
    pub count: CountSlot,
    /// For `WrapperStack`: the code after the call returns the slot's value when the call's
    /// result is positive, which says what the internal function returns and stores.
    pub confirmed: bool,
}

/// Find the call a wrapper makes to its internal function, if the wrapper has that shape: no
/// branch before it but forward error checks, argument registers untouched except for the two
/// moves the wrappers make (num sign-extended in place; rcx pointed at the count slot).
pub fn wrapper_call(code: &[u8], address: u64) -> Option<WrapperCall> {
    let code = &code[..code.len().min(MAX_WRAPPER_BYTES)];
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut info = InstructionInfoFactory::new();
    let mut count = CountSlot::CallersPointer;

    let call = loop {
        let instruction = next(&mut decoder)?;
        match instruction.flow_control() {
            FlowControl::Call if instruction.code() == Code::Call_rel32_64 => break instruction,
            FlowControl::Next | FlowControl::ConditionalBranch => {}
            _ => return None,
        }
        for register in written(&mut info, &instruction) {
            match register {
                Register::RDI | Register::RSI => return None,
                Register::RDX if is_sign_extend_rdx(&instruction) => {}
                Register::RCX if is_mov_rcx_rsp(&instruction) => count = CountSlot::WrapperStack,
                // The slot must stay where rcx points.
                Register::RSP if count == CountSlot::WrapperStack => return None,
                Register::RDX | Register::RCX => return None,
                _ => {}
            }
        }
    };
    let confirmed =
        count == CountSlot::WrapperStack && returns_slot_on_success(&mut decoder, &mut info);
    Some(WrapperCall {
        target: call.near_branch_target(),
        count,
        confirmed,
    })
}

/// After the call: eax untouched up to a conditional jump that tests it, and falling through
/// (success) the wrapper returns the count from the slot at `[rsp]`.
fn returns_slot_on_success(decoder: &mut Decoder<'_>, info: &mut InstructionInfoFactory) -> bool {
    for _ in 0..MAX_INSTRUCTIONS_AFTER_CALL {
        let Some(instruction) = next(decoder) else {
            return false;
        };
        match instruction.flow_control() {
            FlowControl::ConditionalBranch => {
                return next(decoder).is_some_and(|i| is_load_eax_from_rsp(&i))
            }
            FlowControl::Next => {}
            _ => return false,
        }
        if written(info, &instruction).any(|r| r == Register::RAX || r == Register::RSP) {
            return false;
        }
    }
    false
}

/// Whether the kernel emulates the instruction at the start of `code` (a probe there costs no
/// single-step): push of a general register, or a nop.
pub fn starts_with_emulated_instruction(code: &[u8]) -> bool {
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    let Some(instruction) = next(&mut decoder) else {
        return false;
    };
    match instruction.code() {
        // The kernel emulates `push r64`, with REX.B for r8-r15 and nothing else.
        Code::Push_r64 => instruction.len() == 1 || (instruction.len() == 2 && code[0] == 0x41),
        Code::Nopd | Code::Nopq | Code::Nopw => code[0] == 0x90,
        _ => false,
    }
}

fn next(decoder: &mut Decoder<'_>) -> Option<Instruction> {
    if !decoder.can_decode() {
        return None;
    }
    let instruction = decoder.decode();
    (!instruction.is_invalid()).then_some(instruction)
}

/// Full registers an instruction writes (or may write).
fn written<'a>(
    info: &'a mut InstructionInfoFactory,
    instruction: &Instruction,
) -> impl Iterator<Item = Register> + 'a {
    info.info(instruction)
        .used_registers()
        .iter()
        .filter(|used| {
            matches!(
                used.access(),
                OpAccess::Write
                    | OpAccess::CondWrite
                    | OpAccess::ReadWrite
                    | OpAccess::ReadCondWrite
            )
        })
        .map(|used| used.register().full_register())
}

/// `movsxd rdx, edx`: the int argument widened in place, same value.
fn is_sign_extend_rdx(instruction: &Instruction) -> bool {
    instruction.code() == Code::Movsxd_r64_rm32
        && instruction.op0_register() == Register::RDX
        && instruction.op1_kind() == OpKind::Register
        && instruction.op1_register() == Register::EDX
}

/// `mov rcx, rsp`, in either encoding.
fn is_mov_rcx_rsp(instruction: &Instruction) -> bool {
    matches!(instruction.code(), Code::Mov_rm64_r64 | Code::Mov_r64_rm64)
        && instruction.op0_kind() == OpKind::Register
        && instruction.op1_kind() == OpKind::Register
        && instruction.op0_register() == Register::RCX
        && instruction.op1_register() == Register::RSP
}

/// `mov eax, dword ptr [rsp]`.
fn is_load_eax_from_rsp(instruction: &Instruction) -> bool {
    instruction.code() == Code::Mov_r32_rm32
        && instruction.op0_register() == Register::EAX
        && instruction.op1_kind() == OpKind::Memory
        && instruction.memory_base() == Register::RSP
        && instruction.memory_index() == Register::None
        && instruction.memory_displacement64() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenSSL 3.0.19's SSL_write on Debian 12, at 0x35980 (SSL_read differs only in the call
    /// target).
    const SSL_WRITE: &[u8] = &[
        0x48, 0x83, 0xec, 0x18, // sub $0x18,%rsp
        0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00, // mov %fs:0x28,%rax
        0x48, 0x89, 0x44, 0x24, 0x08, // mov %rax,0x8(%rsp)
        0x31, 0xc0, // xor %eax,%eax
        0x85, 0xd2, // test %edx,%edx
        0x78, 0x2f, // js error
        0x48, 0x89, 0xe1, // mov %rsp,%rcx
        0x48, 0x63, 0xd2, // movslq %edx,%rdx
        0xe8, 0xfd, 0xfb, 0xff, 0xff, // call 0x355a0 (ssl_write_internal)
        0x85, 0xc0, // test %eax,%eax
        0x7e, 0x03, // jle out
        0x8b, 0x04, 0x24, // mov (%rsp),%eax
        0x48, 0x8b, 0x54, 0x24, 0x08, // mov 0x8(%rsp),%rdx
        0xc3, // (ret; the stack-protector check is cut here)
    ];

    /// SSL_write_ex at 0x35a10: the caller's count pointer passes through in rcx.
    const SSL_WRITE_EX: &[u8] = &[
        0x48, 0x83, 0xec, 0x08, // sub $0x8,%rsp
        0xe8, 0x87, 0xfb, 0xff, 0xff, // call 0x355a0 (ssl_write_internal)
        0x31, 0xd2, // xor %edx,%edx
        0x85, 0xc0, // test %eax,%eax
        0x0f, 0x48, 0xc2, // cmovs %edx,%eax
        0x48, 0x83, 0xc4, 0x08, // add $0x8,%rsp
        0xc3, // ret
    ];

    /// ssl_write_internal's first instructions.
    const INTERNAL: &[u8] = &[0x41, 0x56, 0x41, 0x55, 0x41, 0x54, 0x55, 0x53];

    #[test]
    fn both_wrappers_call_the_same_internal_function() {
        let plain = wrapper_call(SSL_WRITE, 0x35980).expect("SSL_write has the shape");
        assert_eq!(
            plain,
            WrapperCall {
                target: 0x355a0,
                count: CountSlot::WrapperStack,
                confirmed: true
            }
        );
        let ex = wrapper_call(SSL_WRITE_EX, 0x35a10).expect("SSL_write_ex has the shape");
        assert_eq!(
            ex,
            WrapperCall {
                target: 0x355a0,
                count: CountSlot::CallersPointer,
                confirmed: false
            }
        );
    }

    #[test]
    fn the_internal_function_starts_with_an_emulated_push() {
        assert!(starts_with_emulated_instruction(INTERNAL));
        assert!(starts_with_emulated_instruction(&[0x53]));
        assert!(starts_with_emulated_instruction(&[0x90, 0x90]));
        // sub $0x18,%rsp is single-stepped; so is a push with a 16-bit prefix.
        assert!(!starts_with_emulated_instruction(&SSL_WRITE[..4]));
        assert!(!starts_with_emulated_instruction(&[0x66, 0x53]));
        assert!(!starts_with_emulated_instruction(&[]));
    }

    #[test]
    fn any_change_to_the_shape_is_refused_or_unconfirmed() {
        // An argument register overwritten before the call.
        let mut clobbered = SSL_WRITE.to_vec();
        clobbered[24..27].copy_from_slice(&[0x48, 0x89, 0xe6]); // mov %rsp,%rsi
        assert_eq!(wrapper_call(&clobbered, 0), None);
        // eax rewritten between the call and the jump: the result is not returned as tested.
        let mut rewritten = SSL_WRITE.to_vec();
        rewritten[35..37].copy_from_slice(&[0x31, 0xc0]); // xor %eax,%eax
        assert!(!wrapper_call(&rewritten, 0).expect("still a call").confirmed);
        // The success path does not return the slot's value.
        let mut other = SSL_WRITE.to_vec();
        other[39..42].copy_from_slice(&[0x8b, 0x44, 0x24]); // mov 0x..(%rsp),%eax
        assert!(!wrapper_call(&other, 0).expect("still a call").confirmed);
        // Cut short, or not code at all.
        assert_eq!(wrapper_call(&SSL_WRITE[..30], 0), None);
        assert_eq!(wrapper_call(&[0xff; 64], 0), None);
        assert_eq!(wrapper_call(&[], 0), None);
    }

    #[test]
    fn a_return_before_the_call_is_not_a_wrapper() {
        assert_eq!(wrapper_call(&[0xc3, 0xe8, 0, 0, 0, 0], 0), None);
    }
}
