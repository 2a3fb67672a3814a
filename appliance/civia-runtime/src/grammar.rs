//! Grammars of constrained answers (`response_format`): the JSON schema civiad checked and
//! wrote in canonical form (`civia_openai::schema`) turned into a GBNF grammar, cached by the
//! schema's SHA-256, and sampling under it.
//!
//! The converter is llama.cpp's own (`common/json-schema-to-grammar.cpp`, through
//! `llama_cpp_2::json_schema_to_grammar`): it is maintained upstream together with the
//! grammar sampler and writes exactly the GBNF dialect that sampler parses (its whitespace
//! rule, string escapes, integer ranges, repetitions), so there is no second dialect to keep
//! in step — a Rust crate or a converter of our own would have to track it. It runs here,
//! in the worker, like all llama.cpp code (never in civiad), on a thread with a large stack
//! (it recurses over the schema, whose size and depth civiad bounds), and its output is
//! bounded too ([`MAX_GRAMMAR_BYTES`]).
//!
//! Sampling under a grammar goes through [`sample`] rather than llama.cpp's
//! `llama_sampler_sample`: the grammar judges the token the sequence's chain chose and masks
//! the vocabulary only when it refuses it (masking 50,000 tokens at every step made answers
//! several times slower), tokens that would break UTF-8 are refused too ([`Utf8`]), and a
//! grammar that admits no token, or a token it refuses, is an
//! error for that request alone, never a C++ exception or abort in the worker.

use civia_ipc::Constraint;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// Largest grammar kept (the converter's output).
pub const MAX_GRAMMAR_BYTES: usize = 1024 * 1024;
/// Most grammars cached, and their total size.
const MAX_ENTRIES: usize = 64;
const MAX_CACHED_BYTES: usize = 8 * 1024 * 1024;
/// Stack of the converter's thread.
const CONVERTER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// A grammar, or why the schema has none (both are cached: a schema that fails fails fast).
pub(crate) type Compiled = Result<Arc<str>, String>;

struct Entry {
    grammar: Compiled,
    last_used: u64,
}

impl Entry {
    fn bytes(&self) -> usize {
        match &self.grammar {
            Ok(g) => g.len(),
            Err(e) => e.len(),
        }
    }
}

/// Grammars by SHA-256 of the canonical schema, least recently used out first.
#[derive(Default)]
pub(crate) struct GrammarCache {
    entries: HashMap<[u8; 32], Entry>,
    clock: u64,
    bytes: usize,
    /// Conversions run (cache misses), for tests.
    pub(crate) conversions: u64,
}

impl GrammarCache {
    /// The grammar of `schema` with llama.cpp's converter.
    pub(crate) fn get(&mut self, schema: &str) -> Compiled {
        self.get_with(schema, convert)
    }

    pub(crate) fn get_with(
        &mut self,
        schema: &str,
        convert: impl FnOnce(&str) -> Result<String, String>,
    ) -> Compiled {
        let key: [u8; 32] = Sha256::digest(schema.as_bytes()).into();
        self.clock += 1;
        if let Some(e) = self.entries.get_mut(&key) {
            e.last_used = self.clock;
            return e.grammar.clone();
        }
        self.conversions += 1;
        let grammar = match convert(schema) {
            Ok(g) if g.len() > MAX_GRAMMAR_BYTES => Err(format!(
                "the grammar made from this schema is {} bytes long; at most {MAX_GRAMMAR_BYTES} \
                 are accepted: simplify the schema",
                g.len()
            )),
            Ok(g) => Ok(Arc::from(g)),
            Err(e) => Err(e),
        };
        let entry = Entry {
            grammar: grammar.clone(),
            last_used: self.clock,
        };
        self.bytes += entry.bytes();
        self.entries.insert(key, entry);
        while self.entries.len() > MAX_ENTRIES
            || (self.bytes > MAX_CACHED_BYTES && self.entries.len() > 1)
        {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.bytes();
            }
        }
        grammar
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Rule names the tool-call wrapper adds. The converter names its rules after `root`, the
/// definitions and the properties below them; a tool-call schema's definitions are all
/// named `t<n>…` by civiad (`civia_openai::tools`), so no rule of its can be these.
const CALLS_RULE: &str = "civia--calls";
const ANSWER_RULE: &str = "civia--answer";

/// The grammar of constraint `c` and its start rule, from the grammar of its schema.
///
/// A JSON schema's answer is the schema's value (`root`). A tool-call answer is
/// [`civia_ipc::TOOL_CALLS_MARKER`] then the calls (`root`); with `text_allowed`, after any
/// whitespace, either that or text whose first other character is not `[` (so a `[`
/// commits the answer to calls, and the rest of the text is free).
pub(crate) fn with_root(grammar: &str, c: &Constraint) -> (String, &'static str) {
    match c {
        Constraint::JsonSchema { .. } => (grammar.to_string(), "root"),
        Constraint::ToolCalls { text_allowed, .. } => {
            let marker: String = civia_ipc::TOOL_CALLS_MARKER
                .chars()
                .map(|ch| format!("\\x{:02X}", ch as u32))
                .collect();
            let mut g = format!("{grammar}\n{CALLS_RULE} ::= \"{marker}\" root\n");
            if !text_allowed {
                return (g, CALLS_RULE);
            }
            // Whitespace first, then the calls or text that does not open with `[`: a `[`
            // after leading spaces commits to calls too (what `tools::parse_calls` reads).
            g.push_str(&format!(
                "{ANSWER_RULE} ::= [\\x09\\x0A\\x0D\\x20]* ({CALLS_RULE} | [^\\x5B\\x00\\x09\\x0A\\x0D\\x20] [^\\x00]*)\n"
            ));
            (g, ANSWER_RULE)
        }
    }
}

/// llama.cpp's JSON Schema → GBNF conversion, on its own thread with a large stack.
fn convert(schema: &str) -> Result<String, String> {
    let refused = |e: String| format!("the JSON schema cannot be turned into a grammar: {e}");
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("json-schema".into())
            .stack_size(CONVERTER_STACK_BYTES)
            .spawn_scoped(s, || llama_cpp_2::json_schema_to_grammar(schema))
            .map_err(|e| refused(format!("cannot start the converter: {e}")))?;
        match handle.join() {
            Ok(Ok(g)) => Ok(g),
            Ok(Err(e)) => Err(refused(e.to_string())),
            Err(_) => Err(refused("the converter failed".into())),
        }
    })
}

/// Every token's text as an answer gets it (no special tokens, as the engine renders them),
/// and which tokens end a generation; built once for the model at its first constrained
/// answer.
pub(crate) struct Pieces {
    text: Vec<Box<[u8]>>,
    eog: Vec<bool>,
}

impl Pieces {
    pub(crate) fn new(model: &LlamaModel) -> Self {
        let vocab = model.vocab();
        let n = u32::try_from(vocab.n_tokens()).unwrap_or(0);
        let mut buf = Vec::with_capacity(64);
        let text = (0..n)
            .map(|t| {
                buf.clear();
                vocab.token_to_piece_into(LlamaToken(t as i32), &mut buf, false, None);
                buf.clone().into_boxed_slice()
            })
            .collect();
        let eog = (0..n).map(|t| vocab.is_eog(LlamaToken(t as i32))).collect();
        Pieces { text, eog }
    }

    fn get(&self, t: LlamaToken) -> &[u8] {
        usize::try_from(t.0)
            .ok()
            .and_then(|i| self.text.get(i))
            .map_or(&[], |b| b)
    }

    /// Whether `t` may be part of a constrained answer: it ends the generation, or it writes
    /// text. llama.cpp's grammar reads a control token by its text (`[TOOL_CALLS]`, say) while
    /// the answer renders it as nothing: such a token would satisfy the grammar and leave
    /// the answer short of what it checked.
    fn usable(&self, t: LlamaToken) -> bool {
        let i = usize::try_from(t.0).ok();
        i.and_then(|i| self.eog.get(i)).copied().unwrap_or(false) || !self.get(t).is_empty()
    }
}

/// Where an answer stands in UTF-8: the continuation bytes still expected and the range the
/// next one must fall in (RFC 3629: no overlong forms, no surrogates, nothing above
/// U+10FFFF). llama.cpp's grammar decodes UTF-8 loosely and would let byte tokens write
/// sequences that are not UTF-8 (the answer would then hold U+FFFD and miss its
/// `maxLength`): the sampler refuses them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Utf8 {
    need: u8,
    lo: u8,
    hi: u8,
}

impl Utf8 {
    /// The state after `bytes`, or `None` when they break UTF-8.
    pub(crate) fn after(mut self, bytes: &[u8]) -> Option<Utf8> {
        for &b in bytes {
            if self.need > 0 {
                if b < self.lo || b > self.hi {
                    return None;
                }
                self = match self.need {
                    1 => Utf8::default(),
                    n => Utf8 {
                        need: n - 1,
                        lo: 0x80,
                        hi: 0xbf,
                    },
                };
                continue;
            }
            self = match b {
                0x00..=0x7f => Utf8::default(),
                0xc2..=0xdf => Utf8 {
                    need: 1,
                    lo: 0x80,
                    hi: 0xbf,
                },
                0xe0 => Utf8 {
                    need: 2,
                    lo: 0xa0,
                    hi: 0xbf,
                },
                0xed => Utf8 {
                    need: 2,
                    lo: 0x80,
                    hi: 0x9f,
                },
                0xe1..=0xef => Utf8 {
                    need: 2,
                    lo: 0x80,
                    hi: 0xbf,
                },
                0xf0 => Utf8 {
                    need: 3,
                    lo: 0x90,
                    hi: 0xbf,
                },
                0xf4 => Utf8 {
                    need: 3,
                    lo: 0x80,
                    hi: 0x8f,
                },
                0xf1..=0xf3 => Utf8 {
                    need: 3,
                    lo: 0x80,
                    hi: 0xbf,
                },
                _ => return None,
            };
        }
        Some(self)
    }
}

/// A constrained sequence's grammar and where its answer stands in UTF-8.
pub(crate) struct Constrained {
    pub(crate) grammar: LlamaSampler,
    pub(crate) utf8: Utf8,
}

/// One token of a constrained sequence, as llama.cpp's own `common_sampler` does it: the
/// sequence's chain (penalties, top_p, temperature, draw) picks a token from the logits at
/// batch index `at`; when the grammar admits it (and it keeps the answer UTF-8), it is taken
/// (the common case, and cheap: the grammar judges one token); otherwise every token the
/// grammar or UTF-8 refuses is masked and the chain picks again. With a draw, the result is
/// the same distribution as masking first. The token is then accepted by the grammar through
/// the shim that turns a C++ exception into an error, and by the chain (the penalties'
/// history).
pub(crate) fn sample(
    c: &mut Constrained,
    chain: &mut LlamaSampler,
    pieces: &Pieces,
    ctx: &LlamaContext<'_>,
    at: i32,
) -> Result<LlamaToken, String> {
    let mut candidates = ctx.token_data_array_ith(at);
    candidates.apply_sampler(chain);
    let (first, _) = chosen(&candidates)?;
    let fits = |utf8: Utf8, t: LlamaToken| pieces.usable(t) && utf8.after(pieces.get(t)).is_some();
    let token = if fits(c.utf8, first) && admits(&mut c.grammar, first) {
        first
    } else {
        let mut candidates = ctx.token_data_array_ith(at);
        candidates.apply_sampler(&mut c.grammar);
        for d in &mut candidates.data {
            if d.logit() != f32::NEG_INFINITY && !fits(c.utf8, d.id()) {
                d.set_logit(f32::NEG_INFINITY);
            }
        }
        candidates.apply_sampler(chain);
        let (token, logit) = chosen(&candidates)?;
        // Every token refused is at minus infinity: if the chain still chose one, none is
        // left and the answer cannot go on.
        if logit == f32::NEG_INFINITY || logit.is_nan() {
            return Err("no token can continue an answer that follows the schema".into());
        }
        token
    };
    c.grammar
        .try_accept(token)
        .map_err(|e| format!("the grammar refused the sampled token ({e})"))?;
    chain.accept(token);
    c.utf8 = c.utf8.after(pieces.get(token)).unwrap_or_default();
    Ok(token)
}

fn chosen(candidates: &LlamaTokenDataArray) -> Result<(LlamaToken, f32), String> {
    candidates
        .selected
        .and_then(|i| candidates.data.get(i))
        .map(|d| (d.id(), d.logit()))
        .ok_or_else(|| "the sampler chose no token".to_string())
}

/// Whether the grammar, in its current state, admits `token` next.
fn admits(grammar: &mut LlamaSampler, token: LlamaToken) -> bool {
    let mut one = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 0.0, 0.0)], false);
    one.apply_sampler(grammar);
    one.data
        .first()
        .is_some_and(|d| d.logit() != f32::NEG_INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_by_schema_and_errors_too() {
        let mut c = GrammarCache::default();
        let g = c.get_with("{\"type\":\"null\"}", |_| Ok("root ::= \"null\"".into()));
        assert_eq!(g.as_deref(), Ok("root ::= \"null\""));
        let again = c.get_with("{\"type\":\"null\"}", |_| panic!("converted twice"));
        assert_eq!(again, g);
        let e = c.get_with("bad", |_| Err("no".into()));
        assert_eq!(e, Err("no".into()));
        assert_eq!(
            c.get_with("bad", |_| panic!("an error is cached too")),
            Err("no".into())
        );
        assert_eq!(c.conversions, 2);
        let big = c.get_with("big", |_| Ok("x".repeat(MAX_GRAMMAR_BYTES + 1)));
        assert!(big.is_err_and(|e| e.contains("simplify the schema")));
    }

    #[test]
    fn least_recently_used_goes_first() {
        let mut c = GrammarCache::default();
        for i in 0..MAX_ENTRIES {
            let _ = c.get_with(&format!("s{i}"), |s| Ok(s.to_string()));
        }
        // s0 is used again: s1 is now the oldest.
        let _ = c.get_with("s0", |_| panic!("cached"));
        let _ = c.get_with("new", |s| Ok(s.to_string()));
        assert_eq!(c.len(), MAX_ENTRIES);
        let _ = c.get_with("s0", |_| panic!("s0 was kept"));
        let mut converted = false;
        let _ = c.get_with("s1", |s| {
            converted = true;
            Ok(s.to_string())
        });
        assert!(converted, "s1 was evicted");
        // The byte cap holds too.
        let mut c = GrammarCache::default();
        for i in 0..20 {
            let _ = c.get_with(&format!("b{i}"), |_| Ok("y".repeat(MAX_GRAMMAR_BYTES)));
        }
        assert!(c.bytes <= MAX_CACHED_BYTES, "{}", c.bytes);
        assert_eq!(c.len(), MAX_CACHED_BYTES / MAX_GRAMMAR_BYTES);
    }

    #[test]
    fn llama_cpp_converts_canonical_schemas() {
        let mut c = GrammarCache::default();
        let g = c
            .get(r#"{"type":"object","properties":{"b":{"enum":["x","y"]},"a":{"type":"integer","minimum":1,"maximum":12}},"required":["b","a"],"additionalProperties":false}"#)
            .expect("a grammar");
        // Rules come sorted by name; the root keeps the schema's property order.
        assert!(
            g.contains("root ::= \"{\" space b-kv \",\" space a-kv"),
            "{g}"
        );
        // A tree through `$ref` (recursion through an array) converts.
        let tree = r##"{"$ref":"#/$defs/root","$defs":{"root":{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#/$defs/root"},"maxItems":3}},"required":["children"],"additionalProperties":false}}}"##;
        assert!(c.get(tree).is_ok());
        let g = c
            .get(r#"{"type":"string","pattern":"^[0-9]{5}$"}"#)
            .expect("a pattern");
        assert!(g.contains("[0-9]"), "{g}");
        assert!(c
            .get("not json")
            .is_err_and(|e| e.contains("cannot be turned")));
        assert!(c.get(r##"{"$ref":"#/$defs/none"}"##).is_err());
    }

    #[test]
    fn utf8_states() {
        let ok = |b: &[u8]| Utf8::default().after(b);
        assert_eq!(ok("aé€😀".as_bytes()), Some(Utf8::default()));
        for bad in [
            &[0x80][..],
            &[0xc0, 0x80],
            &[0xed, 0xa0, 0x80],
            &[0xf4, 0x90, 0x80, 0x80],
            &[0xf8],
            &[0xe0, 0x80],
        ] {
            assert_eq!(ok(bad), None, "{bad:x?}");
        }
        // A character split across tokens.
        let half = ok(&[0xe2, 0x82]).expect("a prefix");
        assert_eq!(half.after(&[0xac]), Some(Utf8::default()));
        assert_eq!(half.after(b"a"), None);
    }

    /// What the tiny random model writes under `grammar` (start rule `root`), sampled at
    /// temperature 1 with `seed`.
    fn sample_text(
        m: &llama_cpp_2::model::LlamaModel,
        grammar: &str,
        root: &str,
        seed: u32,
    ) -> String {
        use crate::test_models::backend;
        use llama_cpp_2::context::params::LlamaContextParams;
        use llama_cpp_2::llama_batch::LlamaBatch;
        use std::num::NonZeroU32;

        let params = LlamaContextParams::default().with_n_ctx(NonZeroU32::new(512));
        let mut ctx = m.new_context(backend(), params).expect("a context");
        let vocab = m.vocab();
        let pieces = Pieces::new(m);
        let prompt = vocab.tokenize(b"[INST] JSON [/INST]", true, false);
        let mut batch = LlamaBatch::new(512, 1);
        let last = prompt.len() - 1;
        for (i, t) in prompt.iter().enumerate() {
            batch.add(*t, i as i32, &[0], i == last).expect("batch");
        }
        ctx.decode(&mut batch).expect("decode");
        let mut c = Constrained {
            grammar: LlamaSampler::grammar(m, grammar, root).expect("sampler"),
            utf8: Utf8::default(),
        };
        let mut chain =
            LlamaSampler::chain_simple([LlamaSampler::temp(1.0), LlamaSampler::dist(seed)]);
        let mut out = Vec::new();
        let mut at = batch.n_tokens() - 1;
        for pos in (prompt.len() as i32..).take(300) {
            let t = sample(&mut c, &mut chain, &pieces, &ctx, at).expect("a token");
            if vocab.is_eog(t) {
                break;
            }
            vocab.token_to_piece_into(t, &mut out, false, None);
            batch.clear();
            batch.add(t, pos, &[0], true).expect("batch");
            ctx.decode(&mut batch).expect("decode");
            at = 0;
        }
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn sampling_under_a_grammar_on_a_real_model() {
        use crate::test_models::model;

        let m = model("tiny-mistral.gguf");
        // A grammar llama.cpp refuses (left recursion) is an error, not a crash.
        assert!(LlamaSampler::grammar(&m, "root ::= root \"a\"", "root").is_err());
        assert!(LlamaSampler::grammar(&m, "root ::= (", "root").is_err());
        let schema = r#"{"type":"object","properties":{"k":{"enum":["oui","non"]},"n":{"type":"integer","minimum":1,"maximum":99}},"required":["k","n"],"additionalProperties":false}"#;
        let g = GrammarCache::default().get(schema).expect("a grammar");
        // The random model, sampled at temperature 1: every answer still follows the schema.
        for seed in 0..3 {
            let text = sample_text(&m, &g, "root", seed);
            let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert!(
                ["oui", "non"].contains(&v["k"].as_str().expect("k")),
                "{text}"
            );
            assert!((1..=99).contains(&v["n"].as_i64().expect("n")), "{text}");
        }
    }

    #[test]
    fn control_tokens_never_satisfy_a_grammar() {
        use crate::test_models::model;

        let m = model("tiny-mistral.gguf");
        let bos = m.vocab().bos();
        let pieces = Pieces::new(&m);
        assert!(!pieces.usable(bos), "the control token <s> writes nothing");
        assert!(
            pieces.usable(m.vocab().eos()),
            "end of generation stays usable"
        );
        // llama.cpp's grammar reads <s> by its text: the answer must write those characters,
        // never the control token (which would leave the answer empty).
        for seed in 0..8 {
            assert_eq!(sample_text(&m, "root ::= \"<s>\"", "root", seed), "<s>");
        }
    }

    #[test]
    fn tool_calls_open_with_the_marker_or_are_text() {
        use crate::test_models::model;

        let m = model("tiny-mistral.gguf");
        let schema = r#"{"type":"array","items":{"type":"object","properties":{"name":{"const":"meteo"},"arguments":{"type":"object","properties":{"ville":{"enum":["Lyon","Brest"]}},"required":["ville"],"additionalProperties":false}},"required":["name","arguments"],"additionalProperties":false},"minItems":1,"maxItems":2}"#;
        let g = GrammarCache::default().get(schema).expect("a grammar");
        let calls = |text: &str| -> Vec<serde_json::Value> {
            let rest = text
                .strip_prefix(civia_ipc::TOOL_CALLS_MARKER)
                .unwrap_or_else(|| panic!("no marker: {text}"));
            serde_json::from_str(rest).unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        let required = Constraint::ToolCalls {
            schema: schema.into(),
            text_allowed: false,
        };
        let (grammar, root) = with_root(&g, &required);
        for seed in 0..3 {
            let c = calls(&sample_text(&m, &grammar, root, seed));
            assert!((1..=2).contains(&c.len()));
            for call in c {
                assert_eq!(call["name"], "meteo");
                assert!(["Lyon", "Brest"]
                    .contains(&call["arguments"]["ville"].as_str().expect("ville")));
            }
        }
        let auto = Constraint::ToolCalls {
            schema: schema.into(),
            text_allowed: true,
        };
        let (grammar, root) = with_root(&g, &auto);
        // `[` commits the answer to calls: forced here by a grammar that starts with it.
        assert!(LlamaSampler::grammar(&m, &grammar, root).is_ok());
        for seed in 0..6 {
            let text = sample_text(&m, &grammar, root, seed);
            if text.trim_start().starts_with('[') {
                assert!(!calls(text.trim_start()).is_empty());
            } else {
                assert!(!text.trim().is_empty(), "{text:?}");
            }
        }
    }
}
