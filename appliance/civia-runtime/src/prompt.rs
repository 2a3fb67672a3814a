//! Chat prompts to tokens, with control tokens only where the template put them.
//!
//! A message's content is data: a user who types `</s>`, `[/INST]` or `<|im_end|>`, or a
//! document, a transcript or a saved history that contains them, must not end a turn or open
//! a new one. So the rendered prompt is never tokenized in one call with llama.cpp's
//! special-token parsing. Instead ([`PromptTokenizer::chat`]):
//!
//! 1. the template renders the conversation in pieces ([`ChatTemplate::render_pieces`]):
//!    what the template wrote, and what came from contents;
//! 2. the template's pieces are cut at the model's special-token texts exactly as llama.cpp
//!    does with `parse_special` (longest text first, with the tokens' left/right whitespace
//!    stripping), giving the template's own control tokens;
//! 3. the text between two control tokens (template text and contents together, as llama.cpp
//!    would see it) is tokenized with `parse_special = false`, so contents can only ever
//!    become text tokens; an ordinary conversation gets exactly llama.cpp's tokens;
//! 4. defence in depth: a token from step 3 that is a control token, an end-of-generation
//!    token or one of the template's own special tokens refuses the request.
//!
//! A template whose use of the contents cannot be proven from its output (it slices or
//! transforms them) falls back to rendering contents from which every special-token text
//! has been removed.

use crate::template::{ChatTemplate, Piece, TemplateError};
use civia_ipc::ChatMessage;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token_type::LlamaTokenAttr;
use std::collections::HashSet;

/// Why a chat prompt could not be tokenized.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Defence in depth; not expected with any known vocabulary.
    #[error(
        "a message's content reads as the control token {token} of this model; the request is refused"
    )]
    ControlTokenInContent { token: String },
}

/// A special token as llama.cpp's special-token parser sees it.
#[derive(Debug)]
struct Special {
    text: String,
    token: LlamaToken,
    /// Whitespace to its left is dropped.
    lstrip: bool,
    /// Whitespace to its right is dropped.
    rstrip: bool,
}

/// Tokenizes prompts for one model.
#[derive(Debug)]
pub struct PromptTokenizer {
    /// Control, user-defined and unknown tokens with a text, longest text first (llama.cpp's
    /// `cache_special_tokens` order).
    specials: Vec<Special>,
}

enum Item<'a> {
    Token(&'a Special),
    Text(&'a str),
}

/// `isspace` in the C locale, as llama.cpp strips.
fn c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

impl PromptTokenizer {
    pub fn new(model: &LlamaModel) -> Self {
        let vocab = model.vocab();
        let mut specials: Vec<Special> = vocab
            .tokens()
            .filter_map(|token| {
                let attr = vocab.attr(token);
                let special = attr.intersects(
                    LlamaTokenAttr::Control | LlamaTokenAttr::UserDefined | LlamaTokenAttr::Unknown,
                );
                let text = vocab.text(token)?.to_str().ok()?;
                (special && !text.is_empty()).then(|| Special {
                    text: text.to_string(),
                    token,
                    lstrip: attr.contains(LlamaTokenAttr::LStrip),
                    rstrip: attr.contains(LlamaTokenAttr::RStrip),
                })
            })
            .collect();
        specials.sort_by_key(|s| std::cmp::Reverse(s.text.len()));
        Self { specials }
    }

    /// The conversation's tokens: the template's control tokens, and contents as text only.
    pub fn chat(
        &self,
        model: &LlamaModel,
        template: &ChatTemplate,
        messages: &[ChatMessage],
    ) -> Result<Vec<LlamaToken>, PromptError> {
        let pieces = match template.render_pieces(messages)? {
            Some(p) => p,
            None => {
                log::warn!(
                    "the chat template transforms message contents; control-token text is removed from them"
                );
                let scrubbed: Vec<ChatMessage> = messages
                    .iter()
                    .map(|m| ChatMessage {
                        role: m.role.clone(),
                        content: self.scrub(&m.content),
                    })
                    .collect();
                vec![Piece::Template(template.render(&scrubbed)?)]
            }
        };
        self.tokenize_pieces(model, &pieces)
    }

    /// `text` without any special-token text, repeated until none is left (removing one can
    /// join the halves of another).
    fn scrub(&self, text: &str) -> String {
        let mut s = text.to_string();
        loop {
            let before = s.len();
            for sp in &self.specials {
                if s.contains(&sp.text) {
                    s = s.replace(&sp.text, "");
                }
            }
            if s.len() == before {
                return s;
            }
        }
    }

    /// Cuts a template piece at special-token texts, llama.cpp's way: each special in turn
    /// (longest first) splits the text fragments left.
    fn partition<'a>(&'a self, text: &'a str, out: &mut Vec<Item<'a>>) {
        let mut items = vec![Item::Text(text)];
        for sp in &self.specials {
            if !text.contains(&sp.text) {
                continue;
            }
            let mut next = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Item::Text(t) => {
                        let mut rest = t;
                        while let Some(at) = rest.find(&sp.text) {
                            if at > 0 {
                                next.push(Item::Text(&rest[..at]));
                            }
                            next.push(Item::Token(sp));
                            rest = &rest[at + sp.text.len()..];
                        }
                        if !rest.is_empty() {
                            next.push(Item::Text(rest));
                        }
                    }
                    token => next.push(token),
                }
            }
            items = next;
        }
        out.extend(items);
    }

    fn tokenize_pieces(
        &self,
        model: &LlamaModel,
        pieces: &[Piece],
    ) -> Result<Vec<LlamaToken>, PromptError> {
        let vocab = model.vocab();
        let mut items = Vec::new();
        for p in pieces {
            match p {
                Piece::Template(t) => self.partition(t, &mut items),
                Piece::Content(c) => items.push(Item::Text(c)),
            }
        }
        let template_tokens: HashSet<LlamaToken> = items
            .iter()
            .filter_map(|i| match i {
                Item::Token(sp) => Some(sp.token),
                Item::Text(_) => None,
            })
            .collect();
        let mut tokens = Vec::new();
        if vocab.should_add_bos() {
            tokens.push(vocab.bos());
        }
        let mut run = String::new();
        let mut before: Option<&Special> = None;
        let flush = |run: &mut String,
                     before: Option<&Special>,
                     after: Option<&Special>,
                     tokens: &mut Vec<LlamaToken>|
         -> Result<(), PromptError> {
            let mut text = run.as_str();
            if before.is_some_and(|s| s.rstrip) {
                text = text.trim_start_matches(c_space);
            }
            if after.is_some_and(|s| s.lstrip) {
                text = text.trim_end_matches(c_space);
            }
            if !text.is_empty() {
                let start = tokens.len();
                vocab.tokenize_into(text.as_bytes(), tokens, false, false);
                if let Some(bad) = tokens[start..].iter().find(|t| {
                    vocab.attr(**t).contains(LlamaTokenAttr::Control)
                        || vocab.is_eog(**t)
                        || template_tokens.contains(t)
                }) {
                    return Err(PromptError::ControlTokenInContent {
                        token: String::from_utf8_lossy(&vocab.token_to_piece(*bad, true, None))
                            .into_owned(),
                    });
                }
            }
            run.clear();
            Ok(())
        };
        for item in &items {
            match item {
                Item::Text(t) => run.push_str(t),
                Item::Token(sp) => {
                    flush(&mut run, before, Some(sp), &mut tokens)?;
                    tokens.push(sp.token);
                    before = Some(sp);
                }
            }
        }
        flush(&mut run, before, None, &mut tokens)?;
        // Templates that write the BOS text themselves would otherwise get two.
        let bos = vocab.bos();
        if tokens.len() >= 2 && tokens[0] == bos && tokens[1] == bos {
            tokens.remove(0);
        }
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests;
