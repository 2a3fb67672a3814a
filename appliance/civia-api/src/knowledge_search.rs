//! What the knowledge routes and the chat completions' `search` share: the caller as the
//! knowledge service sees them, OpenGateLLM's search arguments, a search run and audited,
//! the answers' shapes, and the grounding of a chat on the excerpts found. Not a handler:
//! `handlers::knowledge` and `handlers::openai` both use it.

use crate::error::Class;
use crate::extract::principal;
use crate::state::actor;
use crate::{ApiError, ApiState};
use axum::http::Extensions;
use civia_auth::Role;
use civia_knowledge::{Method, SearchRequest, StoredChunk, Viewer};
use serde::Deserialize;
use serde_json::{json, Value};

/// The caller as the knowledge service sees them.
pub(crate) async fn viewer(st: &ApiState, ext: &Extensions) -> Result<Viewer, ApiError> {
    let p = principal(ext)?;
    let Some(user) = p.user() else {
        return Err(ApiError::of(
            Class::Forbidden,
            "user_required",
            "the knowledge base is read with a user account",
        ));
    };
    let id = user.id;
    let peers = st.auth.with_store(move |s| s.service_peers(id)).await?;
    Ok(Viewer {
        user_id: id,
        admin: p.role() == Role::Admin,
        peers,
    })
}

/// A knowledge event by the caller (ids, counts and hashes, never text).
pub(crate) async fn audit(
    st: &ApiState,
    ext: &Extensions,
    name: &str,
    detail: Value,
) -> Result<(), ApiError> {
    if let (Some(a), Ok(p)) = (&st.audit, principal(ext)) {
        a.record_admin(name, Some(actor(p)), None, detail).await?;
    }
    Ok(())
}

/// A chunk in OpenGateLLM's shape.
pub(crate) fn chunk_json(c: &StoredChunk) -> Value {
    json!({
        "object": "chunk",
        "id": c.id,
        "content": c.content,
        "metadata": {
            "document_id": c.document_id,
            "document_name": c.document_name,
            "page": c.page,
            "collection_id": c.collection_id,
            "heading": c.heading,
            "position": c.seq,
        },
    })
}

/// OpenGateLLM's search arguments (also `search_args` of a chat completion).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    #[serde(default)]
    pub collections: Vec<i64>,
    #[serde(default)]
    pub documents: Vec<i64>,
    #[serde(default = "default_k")]
    pub k: usize,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub score_threshold: Option<f32>,
    /// OpenGateLLM's spelling of the fusion constant.
    #[serde(default)]
    pub rff_k: Option<u32>,
    #[serde(default)]
    pub rrf_k: Option<u32>,
    /// Only documents dated on or after this day (`YYYY-MM-DD`; Civia's extension).
    #[serde(default)]
    pub date_from: Option<String>,
    /// Only documents dated on or before this day (`YYYY-MM-DD`; Civia's extension).
    #[serde(default)]
    pub date_to: Option<String>,
    /// A chat's own prompt template (`{chunks}` and `{prompt}`; chat completions only).
    #[serde(default)]
    pub template: Option<String>,
    /// Web search: never (zero egress); `false` is accepted.
    #[serde(default)]
    pub web_search: bool,
    /// Accepted for OpenGateLLM clients and ignored (there is no web search).
    #[serde(default, rename = "web_search_k")]
    pub _web_search_k: Option<u32>,
}

fn default_k() -> usize {
    4
}

impl SearchArgs {
    /// The knowledge service's request for `prompt` (its arguments checked, see
    /// [`SearchArgs::method`]).
    pub fn request(&self, prompt: String) -> Result<SearchRequest, ApiError> {
        let method = self.method()?;
        Ok(SearchRequest {
            collections: self.collections.clone(),
            documents: self.documents.clone(),
            prompt,
            k: self.k,
            method,
            score_threshold: self.score_threshold.filter(|t| *t > 0.0),
            rrf_k: self.rrf_k.or(self.rff_k).unwrap_or(20),
            date_from: self.date_from.clone(),
            date_to: self.date_to.clone(),
        })
    }

    /// Checks every argument (also those a chat's `search: false` leaves unused) and gives
    /// the method.
    pub fn method(&self) -> Result<Method, ApiError> {
        let bad = |param: &str, message: String| ApiError::bad_request(message, Some(param.into()));
        if self.web_search {
            return Err(bad(
                "web_search",
                "there is no web search on this box: no data leaves it".into(),
            ));
        }
        if !(1..=100).contains(&self.k) {
            return Err(bad("k", "`k` must be between 1 and 100.".into()));
        }
        if [self.rrf_k, self.rff_k]
            .into_iter()
            .flatten()
            .any(|k| !(1..=1000).contains(&k))
        {
            return Err(bad("rff_k", "`rff_k` must be between 1 and 1000.".into()));
        }
        if self
            .score_threshold
            .is_some_and(|t| !(0.0..=1.0).contains(&t))
        {
            return Err(bad(
                "score_threshold",
                "`score_threshold` must be between 0 and 1.".into(),
            ));
        }
        for (param, d) in [("date_from", &self.date_from), ("date_to", &self.date_to)] {
            if d.as_deref()
                .is_some_and(|d| civia_base::time::parse_date(d).is_none())
            {
                return Err(bad(param, format!("`{param}` must be a date YYYY-MM-DD.")));
            }
        }
        if let Some(t) = &self.template {
            if !t.contains("{chunks}")
                || !t.contains("{prompt}")
                || t.chars().count() > MAX_TEMPLATE_CHARS
            {
                return Err(bad(
                    "template",
                    format!("`template` must contain {{chunks}} and {{prompt}} and hold at most {MAX_TEMPLATE_CHARS} characters."),
                ));
            }
        }
        match self.method.as_deref().unwrap_or("hybrid") {
            "hybrid" => Ok(Method::Hybrid),
            "semantic" => Ok(Method::Semantic),
            "lexical" => Ok(Method::Lexical),
            _ => Err(bad(
                "method",
                "`method` must be `hybrid`, `semantic` or `lexical`.".into(),
            )),
        }
    }
}

/// Runs a search for the caller and audits it; `(method, results)`.
pub async fn run_search(
    st: &ApiState,
    ext: &Extensions,
    args: &SearchArgs,
    prompt: String,
) -> Result<(Method, Vec<(f64, StoredChunk)>), ApiError> {
    let k = st.knowledge()?;
    let req = args.request(prompt)?;
    let v = viewer(st, ext).await?;
    let hits = k.search(&v, &req).await?;
    audit(
        st,
        ext,
        "knowledge.search",
        json!({
            "method": req.method.as_str(),
            "collections": req.collections,
            "k": req.k,
            "date_from": req.date_from,
            "date_to": req.date_to,
            "results": hits.len(),
            "prompt_sha256": civia_base::hash::sha256_hex(req.prompt.as_bytes()),
            "chunks": hits.iter().map(|h| h.1.id).collect::<Vec<_>>(),
        }),
    )
    .await?;
    Ok((req.method, hits))
}

/// The `data` items of a search answer (also a chat completion's `search_results`).
pub fn results_json(method: Method, hits: &[(f64, StoredChunk)]) -> Vec<Value> {
    hits.iter()
        .map(
            |(score, c)| json!({"method": method.as_str(), "score": score, "chunk": chunk_json(c)}),
        )
        .collect()
}

/// OpenGateLLM's chat extension: `search: true` (with `search_args`, or their defaults over
/// every collection the caller may see) grounds the answer and returns the excerpts as
/// `search_results`.
#[derive(Debug, Default, Deserialize)]
pub struct ChatSearch {
    #[serde(default)]
    search: Option<bool>,
    #[serde(default)]
    search_args: Option<SearchArgs>,
}

const MAX_TEMPLATE_CHARS: usize = 4000;
/// Longest question searched (`civia-knowledge` refuses longer prompts).
const MAX_SEARCH_PROMPT_CHARS: usize = 4000;

impl ChatSearch {
    /// When `search` is true: searches with the last user message, rewrites that message
    /// with the numbered excerpts (or the client's template), and returns `search_results`.
    pub async fn ground(
        &self,
        st: &ApiState,
        ext: &Extensions,
        messages: &mut [civia_ipc::ChatMessage],
    ) -> Result<Option<Value>, ApiError> {
        if let Some(args) = &self.search_args {
            args.method().map_err(|mut e| {
                e.param = e.param.map(|p| format!("search_args.{p}"));
                e
            })?;
        }
        if self.search != Some(true) {
            return Ok(None);
        }
        // Without `search_args`: OpenGateLLM's defaults over every visible collection.
        let defaults;
        let args = match &self.search_args {
            Some(a) => a,
            None => {
                defaults = serde_json::from_value::<SearchArgs>(json!({}))
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                &defaults
            }
        };
        let Some(last) = messages.iter_mut().rev().find(|m| m.role == "user") else {
            return Err(ApiError::bad_request(
                "`search` needs a user message to search with.",
                Some("messages".into()),
            ));
        };
        // The question searched: the message's first characters (an empty one finds nothing).
        let question: String = last
            .content
            .trim()
            .chars()
            .take(MAX_SEARCH_PROMPT_CHARS)
            .collect();
        let (method, hits) = if question.is_empty() {
            (args.method()?, Vec::new())
        } else {
            run_search(st, ext, args, question).await?
        };
        let chunks: Vec<StoredChunk> = hits.iter().map(|h| h.1.clone()).collect();
        last.content = match &args.template {
            Some(t) => civia_knowledge::grounding::with_template(t, &last.content, &chunks),
            None => civia_knowledge::grounding::grounded_question(&last.content, &chunks),
        };
        Ok(Some(Value::Array(results_json(method, &hits))))
    }
}
