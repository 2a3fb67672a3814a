//! The two measurements the admin API runs on request — the egress probe and the memory read
//! bandwidth — with what makes them safe to offer over the network: a validated target and
//! timeout, at most [`PARALLEL_PROBES`] probes at once (others wait their turn), one
//! bandwidth measurement at a time (others are refused with [`MeasureError::Busy`]), the
//! blocking work moved off the async executor, and the decoding-speed bound derived from the
//! loaded model's weight bytes.

use crate::bandwidth::{
    measure_memory_read, BandwidthError, MemoryBandwidth, DEFAULT_BUFFER_BYTES, MAX_THREADS,
};
use crate::net::{check_probe_target, probe_egress, EgressResult, ProbeError, MAX_PROBE_TIMEOUT};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Probes running at once; more wait their turn.
pub const PARALLEL_PROBES: usize = 2;
/// The probe's timeout when the request gives none.
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 3000;
/// Timed reads of the buffer; the fastest counts.
pub const BANDWIDTH_PASSES: u32 = 3;

static PROBES: Semaphore = Semaphore::const_new(PARALLEL_PROBES);
/// One memory-bandwidth measurement at a time.
static BANDWIDTH: Semaphore = Semaphore::const_new(1);

/// A probe the box agrees to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeTarget {
    pub address: SocketAddr,
    pub timeout_ms: u64,
}

/// Why a probe request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    Address(#[from] ProbeError),
    /// The timeout is not a whole number of milliseconds in `1..=`[`max_probe_timeout_ms`].
    #[error("the timeout must be between 1 and {} ms", max_probe_timeout_ms())]
    Timeout,
}

/// The longest timeout a request may ask for, in milliseconds.
pub fn max_probe_timeout_ms() -> u64 {
    MAX_PROBE_TIMEOUT.as_millis() as u64
}

impl ProbeTarget {
    /// Checks the address ([`check_probe_target`]) and the timeout (`None`: the default).
    pub fn new(address: SocketAddr, timeout_ms: Option<u64>) -> Result<Self, TargetError> {
        check_probe_target(address)?;
        let timeout_ms = match timeout_ms {
            None => DEFAULT_PROBE_TIMEOUT_MS,
            Some(ms) if (1..=max_probe_timeout_ms()).contains(&ms) => ms,
            Some(_) => return Err(TargetError::Timeout),
        };
        Ok(Self {
            address,
            timeout_ms,
        })
    }

    /// Runs the probe once a place is free among the [`PARALLEL_PROBES`].
    pub async fn run(self) -> Result<EgressResult, MeasureError> {
        let _turn = PROBES
            .acquire()
            .await
            .map_err(|e| MeasureError::Task(format!("egress probe: {e}")))?;
        let (addr, timeout) = (self.address, Duration::from_millis(self.timeout_ms));
        tokio::task::spawn_blocking(move || probe_egress(addr, timeout))
            .await
            .map_err(|e| MeasureError::Task(format!("egress probe task failed: {e}")))
    }
}

/// Why a measurement gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeasureError {
    /// Another bandwidth measurement is running.
    #[error("a memory bandwidth measurement is already running")]
    Busy,
    #[error(transparent)]
    Failed(#[from] BandwidthError),
    /// The blocking task could not run or did not finish (a bug, not the hardware).
    #[error("{0}")]
    Task(String),
}

/// Measures the main-memory read rate with every core (at most [`MAX_THREADS`]): the default
/// buffer, [`BANDWIDTH_PASSES`] passes. One at a time: [`MeasureError::Busy`] while another
/// runs.
pub async fn measure_bandwidth() -> Result<MemoryBandwidth, MeasureError> {
    let Ok(_turn) = BANDWIDTH.try_acquire() else {
        return Err(MeasureError::Busy);
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_THREADS);
    tokio::task::spawn_blocking(move || {
        measure_memory_read(DEFAULT_BUFFER_BYTES, threads, BANDWIDTH_PASSES)
    })
    .await
    .map_err(|e| MeasureError::Task(format!("memory bandwidth task failed: {e}")))?
    .map_err(MeasureError::Failed)
}

/// The decoding speed the memory allows one sequence on the CPU, in tokens per second: each
/// decoded token reads every weight once, so the read rate divided by the weight bytes bounds
/// it. `None` when the weights are unknown (no model, or zero bytes) or when layers are on a
/// GPU (`gpu_layers > 0`): then the GPU's memory bounds it, which the box does not measure.
pub fn decode_bound(
    memory: &MemoryBandwidth,
    weights_bytes: Option<u64>,
    gpu_layers: u32,
) -> Option<f64> {
    match weights_bytes {
        Some(w) if w > 0 && gpu_layers == 0 => Some(memory.bytes_per_second as f64 / w as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(bytes_per_second: u64) -> MemoryBandwidth {
        MemoryBandwidth {
            bytes_per_second,
            buffer_bytes: DEFAULT_BUFFER_BYTES as u64,
            threads: 1,
            passes: 1,
            best_pass_us: 1,
        }
    }

    #[test]
    fn decode_bound_is_rate_over_weights_on_the_cpu_only() {
        let m = rate(40_000_000_000);
        assert_eq!(decode_bound(&m, Some(4_000_000_000), 0), Some(10.0));
        assert_eq!(decode_bound(&m, Some(4_000_000_000), 33), None);
        assert_eq!(decode_bound(&m, Some(0), 0), None);
        assert_eq!(decode_bound(&m, None, 0), None);
    }

    #[test]
    fn probe_targets() {
        let a: SocketAddr = "192.0.2.10:443".parse().expect("addr");
        assert_eq!(
            ProbeTarget::new(a, None),
            Ok(ProbeTarget {
                address: a,
                timeout_ms: DEFAULT_PROBE_TIMEOUT_MS
            })
        );
        assert_eq!(
            ProbeTarget::new(a, Some(5000)).map(|t| t.timeout_ms),
            Ok(5000)
        );
        assert_eq!(ProbeTarget::new(a, Some(1)).map(|t| t.timeout_ms), Ok(1));
        assert_eq!(ProbeTarget::new(a, Some(0)), Err(TargetError::Timeout));
        assert_eq!(ProbeTarget::new(a, Some(5001)), Err(TargetError::Timeout));
        for bad in [
            "192.0.2.1:0",
            "0.0.0.0:80",
            "224.0.0.1:80",
            "255.255.255.255:80",
        ] {
            let addr: SocketAddr = bad.parse().expect("addr");
            assert!(
                matches!(ProbeTarget::new(addr, None), Err(TargetError::Address(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn one_bandwidth_measurement_at_a_time() {
        let held = BANDWIDTH.try_acquire().expect("free");
        assert_eq!(measure_bandwidth().await, Err(MeasureError::Busy));
        drop(held);
    }

    #[tokio::test]
    async fn a_probe_runs_and_reports() {
        // A listener on loopback: the probe connects and closes, within the limit.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let target = ProbeTarget::new(l.local_addr().expect("addr"), Some(2000)).expect("valid");
        let r = target.run().await.expect("ran");
        assert!(r.connected, "{r:?}");
        assert_eq!(PROBES.available_permits(), PARALLEL_PROBES);
    }
}
