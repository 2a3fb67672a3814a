//! `/v1/embeddings`: the request as OpenAI defines it, its validation, and the answer's
//! shape (`float` vectors, or `base64` of little-endian `f32` as OpenAI sends them).
//!
//! `input` is a string or an array of strings, passed to the model as they are (a model
//! that wants prefixes, like E5's `query: ` and `passage: `, gets them from the client).
//! Arrays of token ids, which OpenAI also accepts, are refused with a clear message: token
//! ids are the model's own, and a client cannot know the box's.

use crate::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The request's fields (others, like `user`, are ignored as OpenAI's own clients send them).
#[derive(Debug, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub input: Value,
    pub encoding_format: Option<Value>,
    pub dimensions: Option<Value>,
}

/// How the vectors are written in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingFormat {
    /// JSON numbers (the default).
    Float,
    /// A base64 string of the little-endian `f32` bytes per vector.
    Base64,
}

/// The limits of `[embeddings]` a request is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingLimits {
    pub max_inputs: usize,
    pub max_input_chars: usize,
}

const TOKENS_REFUSED: &str = "Arrays of token ids are not accepted: the token ids are the \
    box's model's own. Send the text itself, as a string or an array of strings.";

impl EmbeddingsRequest {
    /// The texts to embed, in order: one string, or an array of 1 to `max_inputs` non-empty
    /// strings of at most `max_input_chars` characters.
    pub fn inputs(&self, limits: &EmbeddingLimits) -> Result<Vec<String>, Error> {
        let shape = || {
            Error::invalid(
                "input",
                "`input` must be a string or an array of strings (one vector per string).",
            )
        };
        let texts: Vec<String> = match &self.input {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(Error::invalid(
                        "input",
                        "`input` is an empty array: give at least one string to embed.",
                    ));
                }
                if items.len() > limits.max_inputs {
                    return Err(Error::invalid(
                        "input",
                        format!(
                            "`input` holds {} strings; this box embeds at most {} per request \
                             (send several requests).",
                            items.len(),
                            limits.max_inputs
                        ),
                    ));
                }
                let mut texts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => texts.push(s.clone()),
                        Value::Number(_) => {
                            return Err(Error::unsupported("input", TOKENS_REFUSED))
                        }
                        Value::Array(inner) if inner.iter().all(Value::is_number) => {
                            return Err(Error::unsupported("input", TOKENS_REFUSED))
                        }
                        _ => return Err(shape()),
                    }
                }
                texts
            }
            _ => return Err(shape()),
        };
        for (i, text) in texts.iter().enumerate() {
            let name = if self.input.is_array() {
                format!("`input[{i}]`")
            } else {
                "`input`".to_string()
            };
            if text.is_empty() {
                return Err(Error::invalid(
                    "input",
                    format!("{name} is an empty string: there is nothing to embed."),
                ));
            }
            // Counting stops past the limit: a huge input costs no more than a long one.
            if text.chars().nth(limits.max_input_chars).is_some() {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "{name} is longer than {} characters, the most this box embeds in one \
                         input: split the text into shorter passages.",
                        limits.max_input_chars
                    ),
                ));
            }
        }
        Ok(texts)
    }

    /// `encoding_format`: `float` (default) or `base64`.
    pub fn encoding_format(&self) -> Result<EncodingFormat, Error> {
        match &self.encoding_format {
            None | Some(Value::Null) => Ok(EncodingFormat::Float),
            Some(Value::String(s)) if s == "float" => Ok(EncodingFormat::Float),
            Some(Value::String(s)) if s == "base64" => Ok(EncodingFormat::Base64),
            Some(other) => Err(Error::invalid(
                "encoding_format",
                format!("`encoding_format` must be \"float\" or \"base64\", got {other}."),
            )),
        }
    }

    /// `dimensions`: accepted only when it is the model's own (`model_dimension`); this box
    /// does not shorten vectors.
    pub fn check_dimensions(&self, model_dimension: u32) -> Result<(), Error> {
        match &self.dimensions {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Number(n)) if n.as_u64() == Some(u64::from(model_dimension)) => Ok(()),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|d| d >= 1) => {
                Err(Error::unsupported(
                    "dimensions",
                    format!(
                        "This model's vectors have {model_dimension} dimensions and the box does \
                     not shorten them: leave `dimensions` out or set it to {model_dimension} \
                     (asked: {n})."
                    ),
                ))
            }
            Some(other) => Err(Error::invalid(
                "dimensions",
                format!("`dimensions` must be a positive integer, got {other}."),
            )),
        }
    }
}

/// One vector in the answer: numbers, or base64 text.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize)]
pub struct EmbeddingObject {
    pub object: &'static str,
    pub index: usize,
    pub embedding: Vector,
}

#[derive(Debug, Serialize)]
pub struct EmbeddingsUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

/// The answer: `{"object": "list", "data": [...], "model", "usage"}`.
#[derive(Debug, Serialize)]
pub struct EmbeddingsResponse {
    pub object: &'static str,
    pub data: Vec<EmbeddingObject>,
    pub model: String,
    pub usage: EmbeddingsUsage,
}

/// The little-endian bytes of a vector, in base64 (what OpenAI's clients decode).
pub fn base64_le(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64_encode(&bytes)
}

/// Standard base64 with padding (RFC 4648), written here to keep this crate dependency-free.
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The answer for `vectors` (in input order) made by `model` from `tokens` tokens.
pub fn response(
    model: &str,
    vectors: Vec<Vec<f32>>,
    format: EncodingFormat,
    tokens: u64,
) -> EmbeddingsResponse {
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| EmbeddingObject {
            object: "embedding",
            index,
            embedding: match format {
                EncodingFormat::Float => Vector::Float(v),
                EncodingFormat::Base64 => Vector::Base64(base64_le(&v)),
            },
        })
        .collect();
    EmbeddingsResponse {
        object: "list",
        data,
        model: model.to_string(),
        usage: EmbeddingsUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: EmbeddingLimits = EmbeddingLimits {
        max_inputs: 3,
        max_input_chars: 10,
    };

    fn req(v: Value) -> EmbeddingsRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_string_or_an_array_of_strings() {
        let r = req(json!({"model": "e5", "input": "query: x"}));
        assert_eq!(r.inputs(&LIMITS).unwrap(), vec!["query: x"]);
        let r = req(json!({"model": "e5", "input": ["a", "é"]}));
        assert_eq!(r.inputs(&LIMITS).unwrap(), vec!["a", "é"]);
        assert_eq!(r.encoding_format().unwrap(), EncodingFormat::Float);
    }

    #[test]
    fn refusals_name_the_field_and_say_why() {
        let cases = [
            (json!([]), "invalid_value", "empty array"),
            (json!(""), "invalid_value", "empty string"),
            (
                json!(["a", ""]),
                "invalid_value",
                "`input[1]` is an empty string",
            ),
            (
                json!(["a", "b", "c", "d"]),
                "invalid_value",
                "at most 3 per request",
            ),
            (
                json!("0123456789x"),
                "invalid_value",
                "longer than 10 characters",
            ),
            (json!([1, 2, 3]), "unsupported_parameter", "token ids"),
            (json!([[1, 2], [3]]), "unsupported_parameter", "token ids"),
            (json!(["a", null]), "invalid_value", "array of strings"),
            (json!({"text": "a"}), "invalid_value", "array of strings"),
            (json!(42), "invalid_value", "array of strings"),
        ];
        for (input, code, words) in cases {
            let e = req(json!({"model": "e5", "input": input.clone()}))
                .inputs(&LIMITS)
                .unwrap_err();
            assert_eq!((e.code(), e.param()), (code, "input"), "{input}");
            assert!(e.to_string().contains(words), "{input}: {e}");
        }
        // Ten characters, not ten bytes.
        let r = req(json!({"model": "e5", "input": "éééééééééé"}));
        assert!(r.inputs(&LIMITS).is_ok());
    }

    #[test]
    fn encoding_and_dimensions() {
        let r = req(
            json!({"model": "e5", "input": "a", "encoding_format": "base64", "dimensions": 384}),
        );
        assert_eq!(r.encoding_format().unwrap(), EncodingFormat::Base64);
        r.check_dimensions(384).unwrap();
        let e = r.check_dimensions(1024).unwrap_err();
        assert_eq!(
            (e.code(), e.param()),
            ("unsupported_parameter", "dimensions")
        );
        for bad in [json!(0), json!(-3), json!("384"), json!(1.5)] {
            let r = req(json!({"model": "e5", "input": "a", "dimensions": bad}));
            assert_eq!(r.check_dimensions(384).unwrap_err().code(), "invalid_value");
        }
        let r = req(json!({"model": "e5", "input": "a", "encoding_format": "int8"}));
        assert_eq!(r.encoding_format().unwrap_err().param(), "encoding_format");
    }

    #[test]
    fn the_answer_has_openai_s_shape() {
        let v = vec![vec![0.5f32, -1.0], vec![0.25, 0.0]];
        let r = serde_json::to_value(response("e5", v, EncodingFormat::Float, 7)).unwrap();
        assert_eq!(
            r,
            json!({
                "object": "list",
                "data": [
                    {"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
                    {"object": "embedding", "index": 1, "embedding": [0.25, 0.0]},
                ],
                "model": "e5",
                "usage": {"prompt_tokens": 7, "total_tokens": 7},
            })
        );
        let r = response("e5", vec![vec![1.0f32, -2.0]], EncodingFormat::Base64, 1);
        // 1.0 = 00 00 80 3f, -2.0 = 00 00 00 c0 (little-endian).
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"embedding\":\"AACAPwAAAMA=\""), "{text}");
    }

    #[test]
    fn base64_pads_like_rfc_4648() {
        for (raw, enc) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"\xff\xfe\xfd", "//79"),
        ] {
            assert_eq!(base64_encode(raw), enc);
        }
    }
}
