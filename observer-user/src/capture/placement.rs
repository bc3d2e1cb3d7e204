//! Where to put a TLS function's probes so the kernel emulates the probed instructions instead of
//! single-stepping them.
//!
//! A uprobe replaces an instruction with a breakpoint. When it fires, x86 kernels emulate a few
//! instructions (nop, push, direct call and jumps) and single-step every other one out of line,
//! which costs about ten times more (5.7 µs against 0.6 µs per hit measured on this project's
//! VMs). OpenSSL 3's SSL_read and SSL_write begin with `sub $0x18,%rsp`, which is single-stepped,
//! and a uretprobe needs that same first instruction. Both wrappers do little more than call an
//! internal function with their own arguments and return the count it stored, so both probes can
//! sit on emulated instructions instead: the entry on that call, the exit on the conditional jump
//! that tests its result.
//!
//! This module recognises that shape in the machine code and says so only when every condition
//! holds; anything else keeps the probes on the symbol, which is always correct.

use iced_x86::{
    Code, Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, OpAccess,
    OpKind, Register,
};

/// Bytes of a function decoded to find the shape: the wrappers are about 40 bytes long.
pub const MAX_WRAPPER_BYTES: usize = 128;

/// Instructions between the internal call and the test of its result: a `test` and the jump.
const MAX_INSTRUCTIONS_AFTER_CALL: usize = 3;

/// Where a hooked function's probes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// A uprobe and a uretprobe on the symbol.
    AtSymbol,
    /// Entry on the `call` to the internal function (offset from the symbol): the wrapper's
    /// arguments are intact, rcx points to the count slot. Exit on the conditional jump testing
    /// the call's result: eax holds it, and the count is in the slot.
    AroundInternalCall { call: u64, exit: u64 },
}

/// Whether to look for cheaper probe places at all (benchmarks compare both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PlacementPolicy {
    /// Around the internal call where the function has that shape, else on the symbol.
    #[default]
    Auto,
    /// Always on the symbol.
    Symbol,
}

/// Decide where to probe the function whose first bytes are `code`, loaded at `address`.
pub fn place(code: &[u8], address: u64) -> Placement {
    recognise(code, address).unwrap_or(Placement::AtSymbol)
}

fn recognise(code: &[u8], address: u64) -> Option<Placement> {
    let code = &code[..code.len().min(MAX_WRAPPER_BYTES)];
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut info = InstructionInfoFactory::new();
    let mut count_slot_in_rcx = false;

    // Before the call: no branch but forward error checks, argument registers untouched except
    // for the two moves the wrappers make (num sign-extended in place, rcx = the count slot).
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
                Register::RCX if is_mov_rcx_rsp(&instruction) => count_slot_in_rcx = true,
                // The slot must stay where rcx points.
                Register::RSP if count_slot_in_rcx => return None,
                Register::RDX | Register::RCX => return None,
                _ => {}
            }
        }
    };
    if !count_slot_in_rcx {
        return None;
    }

    // After it: eax untouched up to the conditional jump that tests it.
    let mut exit = None;
    for _ in 0..MAX_INSTRUCTIONS_AFTER_CALL {
        let instruction = next(&mut decoder)?;
        match instruction.flow_control() {
            FlowControl::ConditionalBranch => {
                exit = Some(instruction);
                break;
            }
            FlowControl::Next => {}
            _ => return None,
        }
        if written(&mut info, &instruction).any(|r| r == Register::RAX || r == Register::RSP) {
            return None;
        }
    }
    let exit = exit?;

    // Falling through (success), the wrapper returns the count from the slot: that is what
    // tells us the internal function's result is a flag and the count is in the slot.
    let success = next(&mut decoder)?;
    if !is_load_eax_from_rsp(&success) {
        return None;
    }
    Some(Placement::AroundInternalCall {
        call: call.ip() - address,
        exit: exit.ip() - address,
    })
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

    /// OpenSSL 3.0.19's SSL_write on Debian 12 (SSL_read differs only in the call target).
    const SSL_WRITE: &[u8] = &[
        0x48, 0x83, 0xec, 0x18, // sub $0x18,%rsp
        0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00, // mov %fs:0x28,%rax
        0x48, 0x89, 0x44, 0x24, 0x08, // mov %rax,0x8(%rsp)
        0x31, 0xc0, // xor %eax,%eax
        0x85, 0xd2, // test %edx,%edx
        0x78, 0x2f, // js error
        0x48, 0x89, 0xe1, // mov %rsp,%rcx
        0x48, 0x63, 0xd2, // movslq %edx,%rdx
        0xe8, 0xfd, 0xfb, 0xff, 0xff, // call ssl_write_internal
        0x85, 0xc0, // test %eax,%eax
        0x7e, 0x03, // jle out
        0x8b, 0x04, 0x24, // mov (%rsp),%eax
        0x48, 0x8b, 0x54, 0x24, 0x08, // mov 0x8(%rsp),%rdx
        0xc3, // (ret; the stack-protector check is cut here)
    ];

    /// SSL_write_ex: the count pointer is the caller's, and eax is rewritten (cmovs) before any
    /// emulated instruction.
    const SSL_WRITE_EX: &[u8] = &[
        0x48, 0x83, 0xec, 0x08, // sub $0x8,%rsp
        0xe8, 0x87, 0xfb, 0xff, 0xff, // call ssl_write_internal
        0x31, 0xd2, // xor %edx,%edx
        0x85, 0xc0, // test %eax,%eax
        0x0f, 0x48, 0xc2, // cmovs %edx,%eax
        0x48, 0x83, 0xc4, 0x08, // add $0x8,%rsp
        0xc3, // ret
    ];

    #[test]
    fn openssl3_wrappers_are_probed_around_their_internal_call() {
        assert_eq!(
            place(SSL_WRITE, 0x35980),
            Placement::AroundInternalCall {
                call: 0x1e,
                exit: 0x25
            }
        );
    }

    #[test]
    fn the_ex_wrappers_keep_their_probes_on_the_symbol() {
        assert_eq!(place(SSL_WRITE_EX, 0x35a10), Placement::AtSymbol);
    }

    #[test]
    fn any_change_to_the_shape_falls_back_to_the_symbol() {
        // An argument register overwritten before the call.
        let mut clobbered = SSL_WRITE.to_vec();
        clobbered[24..27].copy_from_slice(&[0x48, 0x89, 0xe6]); // mov %rsp,%rsi
        assert_eq!(place(&clobbered, 0), Placement::AtSymbol);
        // eax rewritten between the call and the jump.
        let mut rewritten = SSL_WRITE.to_vec();
        rewritten[35..37].copy_from_slice(&[0x31, 0xc0]); // xor %eax,%eax
        assert_eq!(place(&rewritten, 0), Placement::AtSymbol);
        // The success path does not return the slot's count.
        let mut other = SSL_WRITE.to_vec();
        other[39..42].copy_from_slice(&[0x8b, 0x44, 0x24]); // mov 0x..(%rsp),%eax (disp8 follows)
        assert_eq!(place(&other, 0), Placement::AtSymbol);
        // Cut short, or not code at all.
        assert_eq!(place(&SSL_WRITE[..30], 0), Placement::AtSymbol);
        assert_eq!(place(&[0xff; 64], 0), Placement::AtSymbol);
        assert_eq!(place(&[], 0), Placement::AtSymbol);
    }

    #[test]
    fn a_return_before_the_call_is_not_a_wrapper() {
        assert_eq!(place(&[0xc3, 0xe8, 0, 0, 0, 0], 0), Placement::AtSymbol);
    }
}
