//! Messages between the supervisor and the embedding worker (`civiad embed-worker`).
//!
//! Same framing as the other workers ([`crate::write_frame`] and friends). One `Embed`
//! request carries every input of one caller's request (at most [`MAX_INPUTS`] texts of
//! [`MAX_REQUEST_BYTES`] together) and is answered by one `Embedded` or one `Failed`; the
//! vectors travel as base64 of little-endian `f32` (exact, and a third of the size of JSON
//! numbers), so that the largest answer (2,048 vectors of 4,096 dimensions) stays well under
//! [`crate::MAX_FRAME_BYTES`].

use crate::worker::{ModelFile, Protocol, Report, Setup};
use crate::ComputeDevice;
use serde::{Deserialize, Serialize};

/// Bumped whenever an embedding message changes shape.
pub const EMBED_PROTOCOL_VERSION: u32 = 1;

/// Most inputs in one `Embed` request (OpenAI's own limit on `/v1/embeddings`).
pub const MAX_INPUTS: usize = 2048;

/// Most bytes of text (UTF-8, all inputs together) in one `Embed` request: with JSON's
/// worst escaping (6 bytes per byte) the frame stays under [`crate::MAX_FRAME_BYTES`].
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Largest vector the worker may answer with (dimensions): 2,048 of them in base64 stay
/// under [`crate::MAX_FRAME_BYTES`].
pub const MAX_DIMENSION: u32 = 2048;

/// From the supervisor to the embedding worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToEmbed {
    Hello {
        version: u32,
    },
    /// Load the embedding model; answered by `Loaded` or `LoadFailed`.
    Load(EmbedLoadSpec),
    /// Embed every input of one request; answered by `Embedded` or `Failed`. One request
    /// at a time: the supervisor queues the others.
    Embed(EmbedRequest),
    Shutdown,
}

/// From the embedding worker to the supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromEmbed {
    Hello {
        version: u32,
        pid: u32,
    },
    Loaded(EmbedModelInfo),
    LoadFailed {
        message: String,
    },
    /// One vector per input, in the inputs' order, each of unit length (L2), and the
    /// number of tokens each input took (special tokens included).
    Embedded {
        id: u64,
        #[serde(with = "vectors_base64")]
        vectors: Vec<Vec<f32>>,
        tokens: Vec<u32>,
    },
    Failed {
        id: u64,
        kind: EmbedFailure,
        /// The input at fault (its index in the request), when one is.
        #[serde(default)]
        input: Option<u32>,
        message: String,
    },
}

/// What to load and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedLoadSpec {
    pub path: String,
    /// Expected SHA-256 (lowercase hex); checked before loading when given.
    pub sha256: Option<String>,
    pub threads: u32,
    /// Layers offloaded to a GPU when the worker has a GPU backend (0: CPU only).
    pub gpu_layers: u32,
    /// Tokens evaluated in one pass (several inputs together); an input is evaluated in one
    /// pass, so it may have at most min(the model's context, `batch_size`) tokens.
    pub batch_size: u32,
    /// Inputs evaluated together in one pass (one sequence each), 1 to 256.
    pub max_sequences: u32,
}

/// How token vectors become one vector per input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// The mean of the token vectors (E5, MiniLM).
    Mean,
    /// The first token's vector (BGE).
    Cls,
    /// The last token's vector (decoder-based embedding models).
    Last,
}

/// What was loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedModelInfo {
    pub sha256: String,
    pub size_bytes: u64,
    pub n_params: u64,
    /// Length of the vectors.
    pub dimension: u32,
    /// Most tokens in one input, special tokens included: the model's training context,
    /// or the pass when it is smaller.
    pub max_tokens: u32,
    pub pooling: Pooling,
    /// Whether the pooling came from the model file (`false`: it says none, mean is used).
    pub pooling_from_model: bool,
    pub architecture: String,
    pub name: Option<String>,
    /// Tokens and inputs evaluated in one pass.
    pub batch_size: u32,
    pub max_sequences: u32,
    #[serde(default)]
    pub devices: Vec<ComputeDevice>,
    #[serde(default)]
    pub gpu_layers: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    pub id: u64,
    /// The texts, as given (the caller adds any prefix the model needs).
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbedFailure {
    /// An input has more tokens than the model takes (`input` names it); nothing is
    /// truncated.
    InputTooLong,
    /// The request breaks the protocol's bounds (too many inputs, too many bytes).
    InvalidRequest,
    /// llama.cpp or the worker failed.
    Internal,
}

/// The embedding worker's protocol ([`ToEmbed`], [`FromEmbed`]).
pub struct EmbedProtocol;

impl Protocol for EmbedProtocol {
    const VERSION: u32 = EMBED_PROTOCOL_VERSION;
    type ToWorker = ToEmbed;
    type FromWorker = FromEmbed;
    type Load = EmbedLoadSpec;
    type Info = EmbedModelInfo;

    fn setup(msg: Setup<EmbedLoadSpec>) -> ToEmbed {
        match msg {
            Setup::Hello { version } => ToEmbed::Hello { version },
            Setup::Load(l) => ToEmbed::Load(l),
            Setup::Shutdown => ToEmbed::Shutdown,
        }
    }

    fn as_setup(msg: ToEmbed) -> Result<Setup<EmbedLoadSpec>, ToEmbed> {
        match msg {
            ToEmbed::Hello { version } => Ok(Setup::Hello { version }),
            ToEmbed::Load(l) => Ok(Setup::Load(l)),
            ToEmbed::Shutdown => Ok(Setup::Shutdown),
            other => Err(other),
        }
    }

    fn report(msg: Report<EmbedModelInfo>) -> FromEmbed {
        match msg {
            Report::Hello { version, pid } => FromEmbed::Hello { version, pid },
            Report::Loaded(i) => FromEmbed::Loaded(i),
            Report::LoadFailed { message } => FromEmbed::LoadFailed { message },
        }
    }

    fn as_report(msg: FromEmbed) -> Result<Report<EmbedModelInfo>, FromEmbed> {
        match msg {
            FromEmbed::Hello { version, pid } => Ok(Report::Hello { version, pid }),
            FromEmbed::Loaded(i) => Ok(Report::Loaded(i)),
            FromEmbed::LoadFailed { message } => Ok(Report::LoadFailed { message }),
            other => Err(other),
        }
    }

    fn model_file(load: &EmbedLoadSpec) -> ModelFile<'_> {
        ModelFile {
            path: &load.path,
            sha256: load.sha256.as_deref(),
        }
    }
}

/// Whether a request keeps the protocol's bounds ([`MAX_INPUTS`], [`MAX_REQUEST_BYTES`]);
/// the reason when it does not.
pub fn check_request(inputs: &[String]) -> Result<(), String> {
    if inputs.len() > MAX_INPUTS {
        return Err(format!(
            "{} inputs in one request: at most {MAX_INPUTS}",
            inputs.len()
        ));
    }
    let bytes: usize = inputs.iter().map(String::len).sum();
    if bytes > MAX_REQUEST_BYTES {
        return Err(format!(
            "{bytes} bytes of text in one request: at most {MAX_REQUEST_BYTES}"
        ));
    }
    Ok(())
}

/// Scales `v` to unit length (L2); a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

/// The vectors as a list of base64 strings of little-endian `f32`.
mod vectors_base64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(vectors: &[Vec<f32>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(vectors.iter().map(|v| {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            STANDARD.encode(bytes)
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<f32>>, D::Error> {
        let encoded = Vec::<String>::deserialize(d)?;
        encoded
            .iter()
            .map(|e| {
                let bytes = STANDARD.decode(e).map_err(D::Error::custom)?;
                if bytes.len() % 4 != 0 {
                    return Err(D::Error::custom("a vector is not a whole number of f32"));
                }
                Ok(bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_exactly_and_compactly() {
        let v = vec![
            vec![0.1f32, -0.25, f32::MIN_POSITIVE, 1.0e-7],
            vec![],
            vec![0.333_333_34; 384],
        ];
        let msg = FromEmbed::Embedded {
            id: 9,
            vectors: v.clone(),
            tokens: vec![4, 2, 512],
        };
        let mut buf = Vec::new();
        crate::write_frame(&mut buf, &msg).unwrap();
        // 384 floats: 1,536 bytes, 2,048 in base64 (JSON numbers would take ~4,000).
        assert!(buf.len() < 2300, "{}", buf.len());
        let back: FromEmbed = crate::read_frame(&mut &buf[..]).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn the_largest_answer_fits_in_a_frame() {
        let vectors = vec![vec![-1.234_567_9e-5f32; MAX_DIMENSION as usize]; MAX_INPUTS];
        let msg = FromEmbed::Embedded {
            id: u64::MAX,
            vectors,
            tokens: vec![u32::MAX; MAX_INPUTS],
        };
        let mut buf = Vec::new();
        crate::write_frame(&mut buf, &msg).unwrap();
        assert!(buf.len() < crate::MAX_FRAME_BYTES as usize);
    }

    #[test]
    fn the_largest_request_fits_in_a_frame_even_when_escaped() {
        // Control characters are escaped as \u00XX: six bytes each.
        let per = MAX_REQUEST_BYTES / MAX_INPUTS;
        let inputs = vec!["\u{1}".repeat(per); MAX_INPUTS];
        check_request(&inputs).unwrap();
        let mut buf = Vec::new();
        crate::write_frame(&mut buf, &ToEmbed::Embed(EmbedRequest { id: 1, inputs })).unwrap();
        let mut too_many = vec![String::new(); MAX_INPUTS + 1];
        assert!(check_request(&too_many).is_err());
        too_many.truncate(2);
        too_many[0] = "x".repeat(MAX_REQUEST_BYTES + 1);
        assert!(check_request(&too_many).unwrap_err().contains("bytes"));
    }

    #[test]
    fn a_failure_names_its_input() {
        let msg = FromEmbed::Failed {
            id: 3,
            kind: EmbedFailure::InputTooLong,
            input: Some(2),
            message: "600 tokens, at most 512".into(),
        };
        let mut buf = Vec::new();
        crate::write_frame(&mut buf, &msg).unwrap();
        assert_eq!(crate::read_frame::<FromEmbed>(&mut &buf[..]).unwrap(), msg);
        let json = String::from_utf8(buf[4..].to_vec()).unwrap();
        assert!(json.contains("\"kind\":\"input_too_long\""), "{json}");
    }

    #[test]
    fn normalize_gives_unit_length() {
        let mut v = vec![3.0f32, 4.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut z = vec![0.0f32; 3];
        normalize(&mut z);
        assert_eq!(z, vec![0.0; 3]);
    }
}
