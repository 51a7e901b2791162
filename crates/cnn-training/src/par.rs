//! Work split into pieces of one output slice, run on candle's CPU thread pool.

use std::sync::{Mutex, PoisonError};

/// Calls `f(i, piece)` for each `len`-sized piece `i` of `data` (the last may be shorter),
/// in parallel on candle's pool: a second pool would compete with candle's spinning workers
/// for the same cores. Which worker takes a piece does not change what it computes.
pub(crate) fn for_each_piece<T: Send>(
    data: &mut [T],
    len: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let pieces: Vec<Mutex<&mut [T]>> = data.chunks_mut(len.max(1)).map(Mutex::new).collect();
    candle_core::utils::barrier_pool().execute_chunked(pieces.len(), |range| {
        for i in range {
            // Each piece belongs to one worker: the lock is never contended.
            let mut piece = pieces[i].lock().unwrap_or_else(PoisonError::into_inner);
            f(i, &mut piece);
        }
    });
}
