//! The batched generation engine: up to `n_parallel` sequences share one llama.cpp context.
//!
//! Every step builds one batch: the last sampled token of each generating sequence, then
//! chunks of pending prompts (small chunks while others are generating, so a long prompt
//! never freezes the agents already reading an answer). A new request joins at the next step.
//! Each sequence keeps its own sampler, stop matcher and limits; a constrained answer
//! (`response_format`) has its grammar in its own sampler chain (`grammar`). A finished sequence's KV
//! cache stays in place, and a new request reuses the longest cached prefix (its own slot's,
//! or copied from another slot), so shared system prompts are evaluated once.

use crate::grammar::{Constrained, GrammarCache, Pieces, Utf8};
use crate::prompt::PromptTokenizer;
use crate::stop::{StopMatcher, Utf8Assembler};
use crate::template::ChatTemplate;
use civia_ipc::{
    write_frame, Constraint, FailureKind, FinishReason, FromWorker, GenerateRequest, Prompt,
    SamplingParams, ToWorker, Usage,
};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, TryRecvError};

use crate::error::WorkerError;

/// One generation in progress.
struct Job {
    id: u64,
    prompt: Vec<LlamaToken>,
    sampler: LlamaSampler,
    /// The grammar of a constrained answer (`grammar::sample` uses it with `sampler`).
    grammar: Option<Constrained>,
    utf8: Utf8Assembler,
    stops: StopMatcher,
    generated: u32,
    budget: usize,
    /// Prompt tokens reused from the KV cache.
    cached: usize,
    /// Sampled and not yet in the KV cache.
    pending: Option<LlamaToken>,
    /// Index of this job's logits in the batch being decoded.
    logits_at: Option<i32>,
}

/// One sequence of the context.
struct Slot {
    seq: i32,
    /// The tokens whose keys and values are in this sequence, in order.
    cached: Vec<LlamaToken>,
    job: Option<Job>,
}

pub(crate) struct EngineConfig {
    pub n_parallel: usize,
    /// Tokens of context each sequence may use.
    pub n_ctx_seq: usize,
    pub prefix_reuse: bool,
}

pub(crate) struct Engine<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    template: ChatTemplate,
    prompts: PromptTokenizer,
    out: UnixStream,
    rx: Receiver<Option<ToWorker>>,
    queue: VecDeque<GenerateRequest>,
    slots: Vec<Slot>,
    cfg: EngineConfig,
    grammars: GrammarCache,
    /// Every token's text, once a constrained answer needs it.
    pieces: Option<Pieces>,
    shutdown: bool,
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<'m> Engine<'m> {
    pub(crate) fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        template: ChatTemplate,
        out: UnixStream,
        rx: Receiver<Option<ToWorker>>,
        cfg: EngineConfig,
    ) -> Self {
        let slots = (0..cfg.n_parallel)
            .map(|i| Slot {
                seq: i as i32,
                cached: Vec::new(),
                job: None,
            })
            .collect();
        Self {
            model,
            ctx,
            prompts: PromptTokenizer::new(model),
            template,
            out,
            rx,
            queue: VecDeque::new(),
            slots,
            cfg,
            grammars: GrammarCache::default(),
            pieces: None,
            shutdown: false,
        }
    }

    fn send(&mut self, msg: &FromWorker) -> Result<(), WorkerError> {
        Ok(write_frame(&mut self.out, msg)?)
    }

    fn busy(&self) -> bool {
        self.slots.iter().any(|s| s.job.is_some())
    }

    pub(crate) fn serve(&mut self) -> Result<(), WorkerError> {
        while !self.shutdown {
            if !self.busy() && self.queue.is_empty() {
                match self.rx.recv() {
                    Ok(Some(msg)) => self.handle(msg)?,
                    Ok(None) | Err(_) => return Ok(()),
                }
            }
            self.poll()?;
            if self.shutdown {
                break;
            }
            self.admit()?;
            self.step()?;
        }
        Ok(())
    }

    /// Reads everything pending without blocking.
    fn poll(&mut self) -> Result<(), WorkerError> {
        loop {
            match self.rx.try_recv() {
                Ok(Some(msg)) => self.handle(msg)?,
                Ok(None) | Err(TryRecvError::Disconnected) => {
                    self.shutdown = true;
                    return Ok(());
                }
                Err(TryRecvError::Empty) => return Ok(()),
            }
        }
    }

    fn handle(&mut self, msg: ToWorker) -> Result<(), WorkerError> {
        match msg {
            ToWorker::Generate(r) => self.queue.push_back(r),
            ToWorker::Cancel { id } => {
                if let Some(pos) = self.queue.iter().position(|r| r.id == id) {
                    self.queue.remove(pos);
                    self.finish_msg(id, FinishReason::Cancelled, Usage::default())?;
                }
                if let Some(i) = self
                    .slots
                    .iter()
                    .position(|s| s.job.as_ref().is_some_and(|j| j.id == id))
                {
                    self.finish(i, FinishReason::Cancelled)?;
                }
            }
            ToWorker::Shutdown => self.shutdown = true,
            ToWorker::Hello { .. } | ToWorker::Load(_) => {
                log::warn!("worker ignores a repeated hello/load");
            }
        }
        Ok(())
    }

    fn finish_msg(
        &mut self,
        id: u64,
        finish_reason: FinishReason,
        usage: Usage,
    ) -> Result<(), WorkerError> {
        self.send(&FromWorker::Finished {
            id,
            finish_reason,
            usage,
        })
    }

    /// Ends the job of slot `i`: flushes held text (unless cancelled) and reports.
    fn finish(&mut self, i: usize, reason: FinishReason) -> Result<(), WorkerError> {
        let Some(mut job) = self.slots[i].job.take() else {
            return Ok(());
        };
        if reason != FinishReason::Cancelled {
            let rest = job.stops.push(&job.utf8.finish());
            let mut tail = rest.text;
            if !rest.stopped {
                tail.push_str(&job.stops.finish());
            }
            if !tail.is_empty() {
                self.send(&FromWorker::Delta {
                    id: job.id,
                    text: tail,
                })?;
            }
        }
        let usage = Usage {
            prompt_tokens: job.prompt.len() as u32,
            cached_tokens: job.cached as u32,
            completion_tokens: job.generated,
        };
        self.finish_msg(job.id, reason, usage)
    }

    fn fail(&mut self, id: u64, kind: FailureKind, message: String) -> Result<(), WorkerError> {
        self.send(&FromWorker::Failed { id, kind, message })
    }

    fn tokenize(&self, prompt: &Prompt) -> Result<Vec<LlamaToken>, (FailureKind, String)> {
        let tokens = match prompt {
            // Control tokens come from the template only; contents are text (prompt.rs).
            Prompt::Chat { messages } => self
                .prompts
                .chat(self.model, &self.template, messages)
                .map_err(|e| (FailureKind::InvalidPrompt, e.to_string()))?,
            Prompt::Text { text } => {
                let vocab = self.model.vocab();
                let mut tokens = vocab.tokenize(text.as_bytes(), vocab.should_add_bos(), false);
                let bos = vocab.bos();
                if tokens.len() >= 2 && tokens[0] == bos && tokens[1] == bos {
                    tokens.remove(0);
                }
                tokens
            }
        };
        if tokens.is_empty() {
            return Err((FailureKind::InvalidPrompt, "the prompt is empty".into()));
        }
        if tokens.len() >= self.cfg.n_ctx_seq {
            return Err((
                FailureKind::ContextOverflow,
                format!(
                    "the prompt is {} tokens long; this model's context window is {} tokens",
                    tokens.len(),
                    self.cfg.n_ctx_seq
                ),
            ));
        }
        Ok(tokens)
    }

    /// The sampler chain of `p` (penalties, then greedy or top_p, temperature and the
    /// seeded draw) and the grammar of its constraint, applied before the chain whenever it
    /// masks (`grammar::sample`: so that top_p never keeps only tokens the grammar refuses).
    /// An error when the constraint has no grammar llama.cpp accepts.
    #[allow(clippy::type_complexity)]
    fn sampler(
        &mut self,
        p: &SamplingParams,
    ) -> Result<(LlamaSampler, Option<Constrained>), String> {
        let mut chain = Vec::new();
        if p.frequency_penalty != 0.0 || p.presence_penalty != 0.0 {
            chain.push(LlamaSampler::penalties(
                self.model.n_vocab(),
                64,
                1.0,
                p.frequency_penalty,
                p.presence_penalty,
            ));
        }
        let grammar = match &p.constraint {
            Some(
                c @ (Constraint::JsonSchema { schema } | Constraint::ToolCalls { schema, .. }),
            ) => {
                let grammar = self.grammars.get(schema)?;
                let (grammar, root) = crate::grammar::with_root(&grammar, c);
                let grammar = LlamaSampler::grammar(self.model, &grammar, root).map_err(|e| {
                    format!("llama.cpp refused the grammar made from this JSON schema ({e})")
                })?;
                let model = self.model;
                self.pieces.get_or_insert_with(|| Pieces::new(model));
                Some(Constrained {
                    grammar,
                    utf8: Utf8::default(),
                })
            }
            None => None,
        };
        if p.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if p.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(p.top_p, 1));
            }
            chain.push(LlamaSampler::temp(p.temperature));
            // u32::MAX asks llama.cpp for a random seed.
            chain.push(LlamaSampler::dist(p.seed.unwrap_or(u32::MAX)));
        }
        Ok((LlamaSampler::chain_simple(chain), grammar))
    }

    /// Moves queued requests into free slots, reusing cached prefixes.
    fn admit(&mut self) -> Result<(), WorkerError> {
        while let Some(free) = self.slots.iter().position(|s| s.job.is_none()) {
            let Some(req) = self.queue.pop_front() else {
                return Ok(());
            };
            let prompt = match self.tokenize(&req.prompt) {
                Ok(t) => t,
                Err((kind, message)) => {
                    self.fail(req.id, kind, message)?;
                    continue;
                }
            };
            let (sampler, grammar) = match self.sampler(&req.params) {
                Ok(s) => s,
                Err(message) => {
                    self.fail(req.id, FailureKind::InvalidGrammar, message)?;
                    continue;
                }
            };
            // The free slot whose cache shares most with this prompt, and the best donor
            // among all slots (a busy one included) to copy a longer prefix from.
            let mut target = free;
            let mut donor = None;
            if self.cfg.prefix_reuse {
                let score = |s: &Slot| common_prefix(&s.cached, &prompt);
                target = self
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.job.is_none())
                    .max_by_key(|(_, s)| (score(s), std::cmp::Reverse(s.cached.len())))
                    .map_or(free, |(i, _)| i);
                let own = score(&self.slots[target]);
                donor = self
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != target)
                    .map(|(i, s)| (i, score(s)))
                    .filter(|(_, n)| *n > own + 16)
                    .max_by_key(|(_, n)| *n);
            }
            // At least the last prompt token is evaluated, to get its logits.
            let limit = prompt.len() - 1;
            let seq = self.slots[target].seq;
            let keep = match donor {
                Some((d, n)) if self.cfg.prefix_reuse => {
                    let n = n.min(limit);
                    let src = self.slots[d].seq;
                    self.clear_seq(seq);
                    // Each sequence has its own KV stream (outputs then do not depend on
                    // what else is batched); llama.cpp copies whole streams only, and the
                    // copy is trimmed to the shared prefix below.
                    if let Err(e) = self.ctx.kv_cache_seq_cp(src, seq, None, None) {
                        log::warn!("KV prefix copy failed: {e}");
                        0
                    } else {
                        n
                    }
                }
                _ if self.cfg.prefix_reuse => {
                    common_prefix(&self.slots[target].cached, &prompt).min(limit)
                }
                _ => 0,
            };
            let keep = match self.ctx.kv_cache_seq_rm(seq, Some(keep as u32), None) {
                Ok(()) => keep,
                Err(e) => {
                    log::warn!("KV cache trim failed ({e}); evaluating the whole prompt");
                    self.clear_seq(seq);
                    0
                }
            };
            self.slots[target].cached = prompt[..keep].to_vec();
            let budget = (req.params.max_tokens as usize)
                .min(self.cfg.n_ctx_seq.saturating_sub(prompt.len()));
            let job = Job {
                id: req.id,
                sampler,
                grammar,
                utf8: Utf8Assembler::default(),
                stops: StopMatcher::new(&req.params.stop),
                generated: 0,
                budget,
                cached: keep,
                pending: None,
                logits_at: None,
                prompt,
            };
            self.slots[target].job = Some(job);
        }
        Ok(())
    }

    fn clear_seq(&mut self, seq: i32) {
        let _ = self.ctx.kv_cache_seq_rm(seq, None, None);
    }

    /// One decode step over every active sequence.
    fn step(&mut self) -> Result<(), WorkerError> {
        let n_batch = self.ctx.n_batch() as usize;
        let mut batch = LlamaBatch::new(n_batch, self.cfg.n_parallel as i32);
        let generating = self
            .slots
            .iter()
            .filter(|s| s.job.as_ref().is_some_and(|j| j.pending.is_some()))
            .count();
        // Prompt tokens this step: a small share while others wait for their next token.
        let mut prompt_budget = if generating > 0 {
            (n_batch / 4).max(32).min(n_batch - generating)
        } else {
            n_batch
        };
        let mut failed = Vec::new();
        for slot in &mut self.slots {
            let Some(job) = slot.job.as_mut() else {
                continue;
            };
            job.logits_at = None;
            if let Some(t) = job.pending.take() {
                let at = batch.n_tokens();
                if batch
                    .add(t, slot.cached.len() as i32, &[slot.seq], true)
                    .is_err()
                {
                    failed.push(job.id);
                    continue;
                }
                slot.cached.push(t);
                job.logits_at = Some(at);
            }
        }
        // Pending prompts, shortest remaining first: a short question is never stuck behind
        // a long document (which advances with whatever budget is left).
        let mut prompting: Vec<(usize, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                let job = slot.job.as_ref()?;
                let left = job.prompt.len().saturating_sub(slot.cached.len());
                (job.logits_at.is_none() && left > 0).then_some((left, i))
            })
            .collect();
        prompting.sort_unstable();
        for (_, i) in prompting {
            let slot = &mut self.slots[i];
            let Some(job) = slot.job.as_mut() else {
                continue;
            };
            let start = slot.cached.len();
            let n = (job.prompt.len() - start).min(prompt_budget);
            if n == 0 {
                continue;
            }
            for (k, t) in job.prompt[start..start + n].iter().enumerate() {
                let pos = start + k;
                let last = pos == job.prompt.len() - 1;
                if last {
                    job.logits_at = Some(batch.n_tokens());
                }
                if batch.add(*t, pos as i32, &[slot.seq], last).is_err() {
                    failed.push(job.id);
                    break;
                }
            }
            slot.cached.extend_from_slice(&job.prompt[start..start + n]);
            prompt_budget -= n;
        }
        for id in failed {
            self.abort_job(id, "the batch is full".into())?;
        }
        if batch.n_tokens() == 0 {
            return Ok(());
        }
        if let Err(e) = self.ctx.decode(&mut batch) {
            let ids: Vec<u64> = self
                .slots
                .iter()
                .filter_map(|s| s.job.as_ref().map(|j| j.id))
                .collect();
            for id in ids {
                self.abort_job(id, format!("decoding failed: {e}"))?;
            }
            return Ok(());
        }
        for i in 0..self.slots.len() {
            self.after_decode(i)?;
        }
        Ok(())
    }

    /// Fails a job after a llama.cpp error and forgets its slot's cache.
    fn abort_job(&mut self, id: u64, message: String) -> Result<(), WorkerError> {
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.job.as_ref().is_some_and(|j| j.id == id))
        {
            self.slots[i].job = None;
            let seq = self.slots[i].seq;
            self.clear_seq(seq);
            self.slots[i].cached.clear();
        }
        self.fail(id, FailureKind::Internal, message)
    }

    /// Samples the next token of slot `i` if its logits were computed in this step.
    fn after_decode(&mut self, i: usize) -> Result<(), WorkerError> {
        let vocab = self.model.vocab();
        let Some(job) = self.slots[i].job.as_mut() else {
            return Ok(());
        };
        let Some(at) = job.logits_at.take() else {
            return Ok(());
        };
        let id = job.id;
        if job.generated == 0 && job.pending.is_none() {
            let prompt_tokens = job.prompt.len() as u32;
            self.send(&FromWorker::Started { id, prompt_tokens })?;
        }
        let Some(job) = self.slots[i].job.as_mut() else {
            return Ok(());
        };
        if job.budget == 0 {
            return self.finish(i, FinishReason::Length);
        }
        let constrained = job.grammar.as_mut().zip(self.pieces.as_ref());
        let token = if let Some((c, pieces)) = constrained {
            match crate::grammar::sample(c, &mut job.sampler, pieces, &self.ctx, at) {
                Ok(t) => t,
                Err(message) => return self.abort_job(id, message),
            }
        } else {
            job.sampler.sample(&self.ctx, at)
        };
        if vocab.is_eog(token) {
            return self.finish(i, FinishReason::Stop);
        }
        job.generated += 1;
        let mut piece = Vec::with_capacity(16);
        vocab.token_to_piece_into(token, &mut piece, false, None);
        let text = job.utf8.push(&piece);
        let emitted = job.stops.push(&text);
        let at_limit = job.generated as usize >= job.budget;
        job.pending = Some(token);
        if !emitted.text.is_empty() {
            self.send(&FromWorker::Delta {
                id,
                text: emitted.text,
            })?;
        }
        if emitted.stopped {
            if let Some(j) = self.slots[i].job.as_mut() {
                // The stop sequence and what follows are dropped: nothing left to flush.
                j.utf8 = Utf8Assembler::default();
                j.stops = StopMatcher::new(&[]);
            }
            return self.finish(i, FinishReason::Stop);
        }
        if at_limit {
            return self.finish(i, FinishReason::Length);
        }
        Ok(())
    }
}
