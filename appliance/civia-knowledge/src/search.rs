//! Search: lexical (FTS5 BM25 over French index terms), semantic (exact cosine over the
//! vectors of the collections the viewer may see) and hybrid (reciprocal rank fusion of both).
//!
//! Why exact search and no ANN index: a commune holds thousands to a few hundred thousand
//! chunks; at 384 `f32`s (1.5 KiB) per chunk, 100,000 chunks are 150 MiB of RAM and one
//! query is 38 million multiply-adds (tens of milliseconds on one core), with perfect recall,
//! no index to build or rebuild, and the access filter applied by construction (only the
//! allowed collections' vectors are scanned). An HNSW graph would save milliseconds at the
//! cost of memory, build time and a filter that has to be pushed into the graph walk.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashMap;

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    #[default]
    Hybrid,
    Semantic,
    Lexical,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Hybrid => "hybrid",
            Method::Semantic => "semantic",
            Method::Lexical => "lexical",
        }
    }
}

/// A search, as OpenGateLLM's `/v1/search` takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// Collections to search; empty: every collection the viewer may see.
    pub collections: Vec<i64>,
    /// Only these documents, when not empty.
    pub documents: Vec<i64>,
    pub prompt: String,
    pub k: usize,
    pub method: Method,
    /// Semantic results below this cosine are dropped.
    pub score_threshold: Option<f32>,
    /// The constant of reciprocal rank fusion.
    pub rrf_k: u32,
    /// Only documents dated on or after this day (`YYYY-MM-DD`, see [`crate::Document::date`]).
    pub date_from: Option<String>,
    /// Only documents dated on or before this day (`YYYY-MM-DD`).
    pub date_to: Option<String>,
}

/// One result: the chunk id and its score for the method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub chunk_id: i64,
    pub score: f64,
}

/// The `k` best `(chunk, document, vector)` by cosine with `query` (vectors are
/// L2-normalised, so the dot product is the cosine), best first.
pub fn nearest<'a>(
    query: &[f32],
    vectors: impl Iterator<Item = &'a (i64, i64, Vec<f32>)>,
    documents: &[i64],
    k: usize,
) -> Vec<Hit> {
    let wanted: std::collections::HashSet<i64> = documents.iter().copied().collect();
    let mut best: Vec<Hit> = Vec::with_capacity(k + 1);
    for (chunk, document, v) in vectors {
        if !wanted.is_empty() && !wanted.contains(document) {
            continue;
        }
        if v.len() != query.len() {
            continue;
        }
        let score: f32 = v.iter().zip(query).map(|(a, b)| a * b).sum();
        let score = f64::from(score);
        if best.len() == k && best.last().is_some_and(|h| h.score >= score) {
            continue;
        }
        let at = best.partition_point(|h| h.score >= score);
        best.insert(
            at,
            Hit {
                chunk_id: *chunk,
                score,
            },
        );
        best.truncate(k);
    }
    best
}

/// Reciprocal rank fusion: each list gives `1 / (rrf_k + rank)` (rank from 1) to its chunks;
/// the `k` best sums, best first (ties by chunk id, for stable answers).
pub fn fuse(lists: &[Vec<Hit>], rrf_k: u32, k: usize) -> Vec<Hit> {
    let mut sums: HashMap<i64, f64> = HashMap::new();
    for list in lists {
        for (rank, hit) in list.iter().enumerate() {
            *sums.entry(hit.chunk_id).or_default() += 1.0 / (f64::from(rrf_k) + rank as f64 + 1.0);
        }
    }
    let mut out: Vec<Hit> = sums
        .into_iter()
        .map(|(chunk_id, score)| Hit { chunk_id, score })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(Ordering::Equal)
            .then(a.chunk_id.cmp(&b.chunk_id))
    });
    out.truncate(k);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn nearest_ranks_by_cosine_and_filters_documents() {
        let data = [
            (1, 10, unit(&[1.0, 0.0])),
            (2, 10, unit(&[0.7, 0.7])),
            (3, 11, unit(&[0.0, 1.0])),
            (4, 11, vec![1.0]), // wrong dimension: skipped
        ];
        let q = unit(&[1.0, 0.1]);
        let hits = nearest(&q, data.iter(), &[], 2);
        assert_eq!(hits.iter().map(|h| h.chunk_id).collect::<Vec<_>>(), [1, 2]);
        let hits = nearest(&q, data.iter(), &[11], 5);
        assert_eq!(hits.iter().map(|h| h.chunk_id).collect::<Vec<_>>(), [3]);
        assert!(nearest(&q, data.iter(), &[], 0).is_empty());
    }

    #[test]
    fn fusion_rewards_agreement() {
        let h = |id| Hit {
            chunk_id: id,
            score: 0.0,
        };
        let lexical = vec![h(1), h(2), h(3)];
        let semantic = vec![h(3), h(4), h(1)];
        let fused = fuse(&[lexical, semantic], 20, 3);
        assert_eq!(fused[0].chunk_id, 1);
        assert_eq!(fused[1].chunk_id, 3);
        assert_eq!(fused.len(), 3);
    }
}
