//! Main-memory read bandwidth, measured on request: what bounds the decoding speed of a model
//! on the CPU (each generated token reads every weight once), so that the acceptance suite can
//! compare the tokens per second it gets with what the hardware allows.

use serde::Serialize;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The buffer read by default: larger than the last-level cache of the CPUs a box uses, so the
/// reads come from memory.
pub const DEFAULT_BUFFER_BYTES: usize = 256 << 20;
/// The smallest buffer accepted (below it the caches answer, not memory).
pub const MIN_BUFFER_BYTES: usize = 16 << 20;
/// The largest buffer accepted.
pub const MAX_BUFFER_BYTES: usize = 2 << 30;
/// Most reading threads.
pub const MAX_THREADS: usize = 256;
/// Most timed passes.
pub const MAX_PASSES: u32 = 16;

/// The best of `passes` timed reads of the whole buffer by `threads` threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryBandwidth {
    pub bytes_per_second: u64,
    pub buffer_bytes: u64,
    pub threads: u32,
    pub passes: u32,
    /// Wall time of the fastest pass, in microseconds.
    pub best_pass_us: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BandwidthError {
    #[error("buffer of {0} bytes outside {MIN_BUFFER_BYTES}..={MAX_BUFFER_BYTES}")]
    BufferSize(usize),
    #[error("{0} threads outside 1..={MAX_THREADS}")]
    Threads(usize),
    #[error("{0} passes outside 1..={MAX_PASSES}")]
    Passes(u32),
    #[error("cannot allocate {0} bytes to measure memory bandwidth")]
    OutOfMemory(usize),
    #[error("a reading thread failed: {0}")]
    Thread(String),
}

/// Allocates `buffer_bytes`, writes it once (so every page is backed), then times `passes`
/// reads of all of it split among `threads` threads and keeps the fastest. The buffer is freed
/// before returning. Memory that cannot be had is an error, never an abort.
pub fn measure_memory_read(
    buffer_bytes: usize,
    threads: usize,
    passes: u32,
) -> Result<MemoryBandwidth, BandwidthError> {
    if !(MIN_BUFFER_BYTES..=MAX_BUFFER_BYTES).contains(&buffer_bytes) {
        return Err(BandwidthError::BufferSize(buffer_bytes));
    }
    if !(1..=MAX_THREADS).contains(&threads) {
        return Err(BandwidthError::Threads(threads));
    }
    if !(1..=MAX_PASSES).contains(&passes) {
        return Err(BandwidthError::Passes(passes));
    }
    let words = buffer_bytes / 8;
    let mut buf: Vec<u64> = Vec::new();
    buf.try_reserve_exact(words)
        .map_err(|_| BandwidthError::OutOfMemory(buffer_bytes))?;
    buf.extend((0..words as u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
    let chunk = words.div_ceil(threads);
    let mut best = Duration::MAX;
    for _ in 0..passes {
        let start = Instant::now();
        let sums = std::thread::scope(|s| {
            let handles: Vec<_> = buf
                .chunks(chunk)
                .map(|part| s.spawn(move || sum_words(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join())
                .collect::<Result<Vec<u64>, _>>()
        })
        .map_err(|_| BandwidthError::Thread("a reading thread panicked".into()))?;
        let elapsed = start.elapsed();
        black_box(sums);
        best = best.min(elapsed);
    }
    let read = (words * 8) as u64;
    let secs = best.as_secs_f64().max(1e-9);
    Ok(MemoryBandwidth {
        bytes_per_second: (read as f64 / secs) as u64,
        buffer_bytes: read,
        threads: threads as u32,
        passes,
        best_pass_us: best.as_micros().min(u64::MAX as u128) as u64,
    })
}

/// Sums with eight independent accumulators so the loop is bound by loads, not by one
/// dependency chain.
fn sum_words(words: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut it = words.chunks_exact(8);
    for c in &mut it {
        for (a, w) in acc.iter_mut().zip(c) {
            *a = a.wrapping_add(*w);
        }
    }
    let tail = it.remainder().iter().fold(0u64, |s, w| s.wrapping_add(*w));
    acc.iter().fold(tail, |s, a| s.wrapping_add(*a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_every_word() {
        let v: Vec<u64> = (1..=21).collect();
        assert_eq!(sum_words(&v), 231);
        assert_eq!(sum_words(&[]), 0);
        assert_eq!(sum_words(&[u64::MAX, 2]), 1);
    }

    #[test]
    fn measures_a_buffer() {
        let m = measure_memory_read(MIN_BUFFER_BYTES, 2, 2).expect("measure");
        assert_eq!(m.buffer_bytes, MIN_BUFFER_BYTES as u64);
        assert_eq!((m.threads, m.passes), (2, 2));
        assert!(m.bytes_per_second > 0 && m.best_pass_us > 0, "{m:?}");
        // The rate is the buffer over the best pass (within rounding).
        let expected = m.buffer_bytes as f64 / (m.best_pass_us as f64 / 1e6);
        let ratio = m.bytes_per_second as f64 / expected;
        assert!((0.99..1.01).contains(&ratio), "{m:?} vs {expected}");
    }

    #[test]
    fn refuses_out_of_range_requests() {
        assert_eq!(
            measure_memory_read(MIN_BUFFER_BYTES - 1, 1, 1),
            Err(BandwidthError::BufferSize(MIN_BUFFER_BYTES - 1))
        );
        assert_eq!(
            measure_memory_read(MAX_BUFFER_BYTES + 1, 1, 1),
            Err(BandwidthError::BufferSize(MAX_BUFFER_BYTES + 1))
        );
        assert_eq!(
            measure_memory_read(MIN_BUFFER_BYTES, 0, 1),
            Err(BandwidthError::Threads(0))
        );
        assert_eq!(
            measure_memory_read(MIN_BUFFER_BYTES, MAX_THREADS + 1, 1),
            Err(BandwidthError::Threads(MAX_THREADS + 1))
        );
        assert_eq!(
            measure_memory_read(MIN_BUFFER_BYTES, 1, 0),
            Err(BandwidthError::Passes(0))
        );
        assert_eq!(
            measure_memory_read(MIN_BUFFER_BYTES, 1, MAX_PASSES + 1),
            Err(BandwidthError::Passes(MAX_PASSES + 1))
        );
    }
}
