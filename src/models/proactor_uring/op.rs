//! The names of the operations in flight: each submission's user_data says what it is, the
//! connection's slot, and a 16-bit extra (for a zero-copy send, its held memory's key + 1).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Accept = 1,
    AcceptRetry,
    Wake,
    /// Cancels of loop-wide operations when stopping.
    LoopCancel,
    /// Closes of connections accepted while stopping.
    StrayClose,
    Recv,
    Send,
    Cancel,
    Shutdown,
    Close,
    /// The idle sweep's timer.
    Sweep,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Accept,
            2 => Op::AcceptRetry,
            3 => Op::Wake,
            4 => Op::LoopCancel,
            5 => Op::StrayClose,
            6 => Op::Recv,
            7 => Op::Send,
            8 => Op::Cancel,
            9 => Op::Shutdown,
            10 => Op::Close,
            11 => Op::Sweep,
            _ => return None,
        })
    }
}

pub(super) fn user_data(op: Op, slot: usize, extra: u16) -> u64 {
    debug_assert!(slot <= u32::MAX as usize);
    (op as u64) << 56 | (extra as u64) << 32 | slot as u64
}

pub(super) fn decode(ud: u64) -> (Option<Op>, usize, u16) {
    (
        Op::from_u8((ud >> 56) as u8),
        (ud & 0xffff_ffff) as usize,
        (ud >> 32) as u16,
    )
}
