//! Admission in front of the worker's slots: a bounded queue, fair between users
//! (round-robin: each user with waiting requests gets the next free slot in turn), and the
//! counters the metrics endpoint shows.

use crate::Event;
use civia_ipc::GenerateRequest;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;

/// A request waiting for a slot.
pub(crate) struct Queued {
    pub req: GenerateRequest,
    pub user: String,
    pub events: mpsc::UnboundedSender<Event>,
    pub since: Instant,
}

/// Bounded, per-user round-robin queue.
pub(crate) struct FairQueue {
    users: HashMap<String, VecDeque<Queued>>,
    /// Users with waiting requests, in serving order.
    order: VecDeque<String>,
    len: usize,
    cap: usize,
}

impl FairQueue {
    pub fn new(cap: usize) -> Self {
        Self {
            users: HashMap::new(),
            order: VecDeque::new(),
            len: 0,
            cap,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds a request; gives it back when the queue is full.
    pub fn push(&mut self, q: Queued) -> Result<(), Box<Queued>> {
        if self.len >= self.cap {
            return Err(Box::new(q));
        }
        let list = self.users.entry(q.user.clone()).or_default();
        if list.is_empty() {
            self.order.push_back(q.user.clone());
        }
        list.push_back(q);
        self.len += 1;
        Ok(())
    }

    /// The next request: the oldest of the user whose turn it is.
    pub fn pop(&mut self) -> Option<Queued> {
        let user = self.order.pop_front()?;
        let list = self.users.get_mut(&user)?;
        let q = list.pop_front();
        if list.is_empty() {
            self.users.remove(&user);
        } else {
            self.order.push_back(user);
        }
        if q.is_some() {
            self.len -= 1;
        }
        q
    }

    fn retain(&mut self, mut keep: impl FnMut(&Queued) -> bool) -> Vec<Queued> {
        let mut out = Vec::new();
        for list in self.users.values_mut() {
            let (k, gone): (VecDeque<Queued>, VecDeque<Queued>) =
                list.drain(..).partition(|q| keep(q));
            *list = k;
            out.extend(gone);
        }
        self.users.retain(|_, l| !l.is_empty());
        let users = &self.users;
        self.order.retain(|u| users.contains_key(u));
        self.len -= out.len();
        out
    }

    pub fn remove(&mut self, id: u64) -> Option<Queued> {
        self.retain(|q| q.req.id != id).pop()
    }

    /// Takes out the requests queued before `deadline`.
    pub fn expire(&mut self, deadline: Instant) -> Vec<Queued> {
        self.retain(|q| q.since >= deadline)
    }

    pub fn drain(&mut self) -> Vec<Queued> {
        self.retain(|_| false)
    }
}

/// Counters and gauges shown on `/metrics` (Prometheus text format).
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) slots: AtomicU64,
    pub(crate) active: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) admitted: AtomicU64,
    pub(crate) rejected_queue_full: AtomicU64,
    pub(crate) rejected_queue_timeout: AtomicU64,
    pub(crate) rejected_unavailable: AtomicU64,
    pub(crate) failed_worker_crash: AtomicU64,
    pub(crate) prompt_tokens: AtomicU64,
    pub(crate) completion_tokens: AtomicU64,
    pub(crate) cached_tokens: AtomicU64,
    /// Completion tokens per second over the last ten seconds (f64 bits).
    pub(crate) tokens_per_second: AtomicU64,
}

impl Metrics {
    pub(crate) fn count(&self, u: &civia_ipc::Usage) {
        let add = |a: &AtomicU64, n: u32| a.fetch_add(u64::from(n), Ordering::Relaxed);
        add(&self.prompt_tokens, u.prompt_tokens);
        add(&self.cached_tokens, u.cached_tokens);
        add(&self.completion_tokens, u.completion_tokens);
    }

    pub fn render(&self, restarts: u32, ready: bool) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, values: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in values {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        metric(
            "civia_ready",
            "gauge",
            "1 while the model is loaded and the worker healthy.",
            &[("", u8::from(ready).to_string())],
        );
        metric(
            "civia_slots",
            "gauge",
            "Sequences the worker decodes together (model.n_parallel).",
            &[("", g(&self.slots).to_string())],
        );
        metric(
            "civia_slots_active",
            "gauge",
            "Requests being generated now.",
            &[("", g(&self.active).to_string())],
        );
        metric(
            "civia_queue_depth",
            "gauge",
            "Requests waiting for a slot.",
            &[("", g(&self.queued).to_string())],
        );
        metric(
            "civia_requests_admitted_total",
            "counter",
            "Requests sent to the worker.",
            &[("", g(&self.admitted).to_string())],
        );
        metric(
            "civia_requests_rejected_total",
            "counter",
            "Requests refused before generation, by reason.",
            &[
                (
                    "{reason=\"queue_full\"}",
                    g(&self.rejected_queue_full).to_string(),
                ),
                (
                    "{reason=\"queue_timeout\"}",
                    g(&self.rejected_queue_timeout).to_string(),
                ),
                (
                    "{reason=\"unavailable\"}",
                    g(&self.rejected_unavailable).to_string(),
                ),
                (
                    "{reason=\"worker_crash\"}",
                    g(&self.failed_worker_crash).to_string(),
                ),
            ],
        );
        metric(
            "civia_prompt_tokens_total",
            "counter",
            "Prompt tokens of finished requests.",
            &[("", g(&self.prompt_tokens).to_string())],
        );
        metric(
            "civia_prompt_tokens_cached_total",
            "counter",
            "Prompt tokens reused from the KV cache (prefix reuse).",
            &[("", g(&self.cached_tokens).to_string())],
        );
        metric(
            "civia_completion_tokens_total",
            "counter",
            "Generated tokens of finished requests.",
            &[("", g(&self.completion_tokens).to_string())],
        );
        metric(
            "civia_generation_tokens_per_second",
            "gauge",
            "Generated tokens per second over the last 10 seconds.",
            &[(
                "",
                format!("{:.2}", f64::from_bits(g(&self.tokens_per_second))),
            )],
        );
        metric(
            "civia_worker_restarts_total",
            "counter",
            "Runtime worker restarts.",
            &[("", restarts.to_string())],
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use civia_ipc::{Prompt, SamplingParams};

    fn q(id: u64, user: &str) -> Queued {
        let (events, _) = mpsc::unbounded_channel();
        Queued {
            req: GenerateRequest {
                id,
                prompt: Prompt::Text {
                    text: String::new(),
                },
                params: SamplingParams {
                    temperature: 0.0,
                    top_p: 1.0,
                    seed: None,
                    max_tokens: 1,
                    stop: vec![],
                    frequency_penalty: 0.0,
                    presence_penalty: 0.0,
                    constraint: None,
                },
            },
            user: user.into(),
            events,
            since: Instant::now(),
        }
    }

    #[test]
    fn a_burst_does_not_starve_another_user() {
        let mut fq = FairQueue::new(100);
        for i in 0..50 {
            assert!(fq.push(q(i, "alice")).is_ok());
        }
        assert!(fq.push(q(100, "bob")).is_ok());
        let first_two: Vec<u64> = (0..2).map(|_| fq.pop().unwrap().req.id).collect();
        assert_eq!(first_two, vec![0, 100]);
        assert_eq!(fq.len(), 49);
    }

    #[test]
    fn bounded_and_removable() {
        let mut fq = FairQueue::new(2);
        assert!(fq.push(q(1, "a")).is_ok());
        assert!(fq.push(q(2, "b")).is_ok());
        assert!(fq.push(q(3, "a")).is_err());
        assert_eq!(fq.remove(1).map(|q| q.req.id), Some(1));
        assert!(fq.remove(1).is_none());
        assert_eq!(fq.len(), 1);
        assert_eq!(fq.pop().map(|q| q.req.id), Some(2));
        assert!(fq.pop().is_none());
        assert_eq!(fq.len(), 0);
    }

    #[test]
    fn expiry_takes_only_old_requests() {
        let mut fq = FairQueue::new(10);
        let mut old = q(1, "a");
        old.since = Instant::now() - std::time::Duration::from_secs(100);
        assert!(fq.push(old).is_ok());
        assert!(fq.push(q(2, "a")).is_ok());
        let gone = fq.expire(Instant::now() - std::time::Duration::from_secs(10));
        assert_eq!(gone.len(), 1);
        assert_eq!(fq.pop().map(|q| q.req.id), Some(2));
    }
}
