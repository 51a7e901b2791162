//! Parallel work on candle's own CPU thread pool, for the fast kernels here and the
//! optimizer and augmentation of `cnn-training`.
//!
//! Using candle's pool rather than a second one (rayon's) matters on small machines:
//! candle's workers spin for a while after each of its element-wise ops, and a second pool's
//! threads would compete with them for the same cores.

use std::sync::{Mutex, PoisonError};

/// Runs `f(i)` for every `i` in `0..n` on candle's CPU thread pool.
pub fn par_for(n: usize, f: impl Fn(usize) + Sync) {
    candle_core::utils::barrier_pool().execute_chunked(n, |range| range.for_each(&f));
}

/// Calls `f(i, piece)` for each `len`-sized piece `i` of `data` (the last may be shorter),
/// in parallel on candle's pool. Which worker takes a piece does not change what it
/// computes, so element-wise work gives the same bits on any number of threads.
///
/// ```
/// let mut v = vec![1.0f32; 10];
/// cnn_models::par::for_each_piece(&mut v, 4, |i, piece| piece.iter_mut().for_each(|x| *x += i as f32));
/// assert_eq!(v, [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0]);
/// ```
pub fn for_each_piece<T: Send>(data: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let pieces: Vec<Mutex<&mut [T]>> = data.chunks_mut(len.max(1)).map(Mutex::new).collect();
    par_for(pieces.len(), |i| {
        // Each piece belongs to one worker: the lock is never contended.
        let mut piece = pieces[i].lock().unwrap_or_else(PoisonError::into_inner);
        f(i, &mut piece);
    });
}
