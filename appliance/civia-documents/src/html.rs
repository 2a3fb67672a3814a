//! HTML text with `html5gum`, a maintained WHATWG-compliant tokenizer (pure Rust, no
//! dependencies, no unsafe): character references are decoded by the tokenizer; the
//! contents of `script`, `style`, `template`, `noscript`, `svg`, `math`, `iframe`, `object`
//! and of the document's `head` (its title included) are left out; nothing is fetched or run.
//! Block elements become paragraphs, headings stay on lines of their own, `br` breaks a line,
//! table cells are separated by " | " and rows by lines. A DOCTYPE is normal in HTML and is
//! ignored (it cannot declare entities there).

use html5gum::{DefaultEmitter, Token, Tokenizer};

use crate::text::Sink;

/// Elements whose content is not text for a reader.
const SKIPPED: &[&[u8]] = &[
    b"script",
    b"style",
    b"template",
    b"noscript",
    b"svg",
    b"math",
    b"iframe",
    b"object",
    b"head",
];

/// Elements allowed in `head`: any other start tag closes a `head` left open.
const IN_HEAD: &[&[u8]] = &[
    b"title",
    b"meta",
    b"link",
    b"base",
    b"style",
    b"script",
    b"noscript",
    b"template",
];

/// Elements that start and end a paragraph.
const BLOCKS: &[&[u8]] = &[
    b"address",
    b"article",
    b"aside",
    b"blockquote",
    b"body",
    b"caption",
    b"center",
    b"dd",
    b"details",
    b"dialog",
    b"div",
    b"dl",
    b"dt",
    b"fieldset",
    b"figcaption",
    b"figure",
    b"footer",
    b"form",
    b"h1",
    b"h2",
    b"h3",
    b"h4",
    b"h5",
    b"h6",
    b"header",
    b"hgroup",
    b"hr",
    b"legend",
    b"li",
    b"main",
    b"nav",
    b"ol",
    b"p",
    b"pre",
    b"section",
    b"summary",
    b"table",
    b"ul",
];

/// Raw text of an HTML document, into `sink`.
pub(crate) fn html_text(html: &str, sink: &mut Sink) {
    let mut emitter = DefaultEmitter::default();
    // Raw-text elements (script, style...) are tokenized as such, so a "<" inside a script
    // never starts a tag.
    emitter.naively_switch_states(true);
    // Open skipped elements, innermost last; `pre` depth; whether the row has a cell yet.
    let mut skipped: Vec<Vec<u8>> = Vec::new();
    let (mut pre, mut row_has_cell) = (0usize, false);
    for token in Tokenizer::new_with_emitter(html, emitter) {
        let Ok(token) = token;
        match token {
            Token::StartTag(tag) => {
                let name: &[u8] = &tag.name;
                if skipped.last().is_some_and(|s| s == b"head") && !IN_HEAD.contains(&name) {
                    skipped.pop();
                }
                if SKIPPED.contains(&name) && !tag.self_closing {
                    skipped.push(name.to_vec());
                }
                if !skipped.is_empty() || SKIPPED.contains(&name) {
                    continue;
                }
                match name {
                    b"br" => sink.push('\n'),
                    b"tr" => {
                        sink.push('\n');
                        row_has_cell = false;
                    }
                    b"td" | b"th" => {
                        if row_has_cell {
                            sink.push_str(" | ");
                        }
                        row_has_cell = true;
                    }
                    b"pre" => {
                        pre += 1;
                        sink.push_str("\n\n");
                    }
                    _ if BLOCKS.contains(&name) => sink.push_str("\n\n"),
                    _ => {}
                }
            }
            Token::EndTag(tag) => {
                let name: &[u8] = &tag.name;
                if let Some(at) = skipped.iter().rposition(|s| s == name) {
                    skipped.truncate(at);
                    continue;
                }
                if !skipped.is_empty() {
                    continue;
                }
                match name {
                    b"pre" => {
                        pre = pre.saturating_sub(1);
                        sink.push_str("\n\n");
                    }
                    _ if BLOCKS.contains(&name) => sink.push_str("\n\n"),
                    _ => {}
                }
            }
            Token::String(text) if skipped.is_empty() => {
                let text = String::from_utf8_lossy(&text);
                if pre > 0 {
                    sink.push_str(&text);
                } else {
                    // Outside `pre`, HTML white space collapses to one space.
                    sink.push_str(&text.replace(['\n', '\r', '\t', '\x0c'], " "));
                }
            }
            _ => {}
        }
        if sink.full {
            break;
        }
    }
}
