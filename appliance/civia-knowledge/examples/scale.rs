//! Search at scale, for the benchmark (`hw-tests/bench/knowledge_bench.py`): builds a
//! knowledge database of N chunks of French municipal prose with random unit vectors (the
//! embedding model's cost is measured apart), then times lexical, semantic and hybrid search
//! and reports JSON on stdout: build time, file size, size per 1,000 chunks, query p50/p95 per
//! method, resident memory. With `--texts FILE` it also writes the chunks' texts (one per
//! line) and with `--questions FILE` the questions, for a BM25 peer to index and query the
//! same corpus.
//!
//! `cargo run --release -p civia-knowledge --example scale -- 10000 [--texts FILE]`

use civia_knowledge::store::{Db, Indexed};
use civia_knowledge::*;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

const WORDS: &[&str] = &[
    "délibération",
    "conseil",
    "municipal",
    "arrêté",
    "maire",
    "cantine",
    "scolaire",
    "tarif",
    "repas",
    "salle",
    "fêtes",
    "location",
    "caution",
    "cimetière",
    "concession",
    "voirie",
    "stationnement",
    "circulation",
    "rue",
    "fermeture",
    "travaux",
    "subvention",
    "association",
    "budget",
    "investissement",
    "école",
    "bibliothèque",
    "horaires",
    "ouverture",
    "déchets",
    "collecte",
    "encombrants",
    "urbanisme",
    "permis",
    "construire",
    "zone",
    "hauteur",
    "règlement",
    "intérieur",
    "marché",
    "noël",
    "périscolaire",
    "garderie",
    "enfants",
    "famille",
    "quotient",
    "commission",
    "vote",
    "unanimité",
    "convention",
    "gymnase",
    "piscine",
    "été",
    "novembre",
    "septembre",
    "euros",
    "article",
    "communal",
    "prix",
    "parking",
    "vacances",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, no dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim)
            .map(|_| (self.next() % 20_000) as f32 / 10_000.0 - 1.0)
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.into_iter().map(|x| x / n).collect()
    }
    /// Words as in real prose: a third from the municipal vocabulary above, the rest from
    /// 50,000 made-up words drawn with a Zipf-like skew (a few frequent, most rare), so
    /// that query terms match a realistic share of the chunks.
    fn prose(&mut self, words: usize) -> String {
        let mut s = String::new();
        for i in 0..words {
            let made;
            let w = if self.next().is_multiple_of(3) {
                WORDS[(self.next() % WORDS.len() as u64) as usize]
            } else {
                let bound = self.next() % 50_000 + 1;
                made = format!("mot{}", self.next() % bound);
                made.as_str()
            };
            s.push_str(w);
            s.push(if i % 12 == 11 { '.' } else { ' ' });
            if i % 12 == 11 {
                s.push(' ');
            }
        }
        s
    }
}

struct FixedQuery(Vec<f32>);
impl Embedder for FixedQuery {
    fn model(&self) -> String {
        "random-384".into()
    }
    fn embed(&self, texts: Vec<String>, _role: EmbedRole) -> EmbedFuture<'_> {
        let v = self.0.clone();
        Box::pin(async move { Ok(texts.iter().map(|_| v.clone()).collect()) })
    }
}

struct NoReader;
impl Extractor for NoReader {
    fn extract(&self, _: &[u8], _: &str) -> Result<Extraction, Refusal> {
        Err(Refusal {
            message: "not used".into(),
            details: serde_json::Value::Null,
        })
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let texts_out = args
        .iter()
        .position(|a| a == "--texts")
        .and_then(|i| args.get(i + 1));
    let questions_out = args
        .iter()
        .position(|a| a == "--questions")
        .and_then(|i| args.get(i + 1));
    let dir = std::env::temp_dir().join(format!("civia-knowledge-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut texts = texts_out.map(std::fs::File::create).transpose()?;
    let t0 = Instant::now();
    {
        let db = Db::open(&dir.join("knowledge.db"))?;
        let owner = 1;
        let c = db.create_collection(owner, "Archives", None, Visibility::Private)?;
        let per_doc = 50;
        for d in 0..n.div_ceil(per_doc) {
            let id = db.add_document(
                c,
                &format!("document-{d}.pdf"),
                &format!("{d:064x}"),
                1,
                None,
                "2026-01-01",
            )?;
            let count = per_doc.min(n - d * per_doc);
            let pieces: Vec<Piece> = (0..count)
                .map(|i| Piece {
                    page: Some(i as u32 / 3 + 1),
                    heading: None,
                    content: rng.prose(140),
                })
                .collect();
            if let Some(f) = texts.as_mut() {
                for p in &pieces {
                    writeln!(f, "{}", p.content)?;
                }
            }
            let vectors = Some((0..count).map(|_| rng.unit(384)).collect());
            db.store_indexed(
                id,
                c,
                &Indexed {
                    format: "PDF".into(),
                    pages: None,
                    ocr_pages: 0,
                    pieces,
                    vectors,
                    embedding_model: Some("random-384".into()),
                },
            )?;
        }
        db.compact()?;
    }
    let build_s = t0.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(dir.join("knowledge.db"))?.len();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let query = rng.unit(384);
    let k = Knowledge::open(
        &dir,
        KnowledgeSettings::default(),
        Arc::new(NoReader),
        Some(Arc::new(FixedQuery(query))),
    )?;
    let viewer = Viewer {
        user_id: 1,
        admin: false,
        peers: vec![],
    };
    let questions: Vec<String> = (0..60).map(|_| rng.prose(8)).collect();
    if let Some(path) = questions_out {
        std::fs::write(path, questions.join("\n") + "\n")?;
    }
    let rss_before = rss_kib();
    let mut report = serde_json::Map::new();
    for method in [Method::Lexical, Method::Semantic, Method::Hybrid] {
        let mut times = Vec::new();
        for (i, q) in questions.iter().enumerate() {
            let req = SearchRequest {
                collections: vec![],
                documents: vec![],
                prompt: q.clone(),
                k: 5,
                method,
                score_threshold: None,
                rrf_k: 20,
                date_from: None,
                date_to: None,
            };
            let t = Instant::now();
            let hits = rt.block_on(k.search(&viewer, &req))?;
            // The first query of a method loads the vectors: timed apart.
            if i > 0 {
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            assert!(!hits.is_empty());
        }
        times.sort_by(f64::total_cmp);
        report.insert(
            method.as_str().into(),
            serde_json::json!({"p50_ms": percentile(&times, 0.5), "p95_ms": percentile(&times, 0.95)}),
        );
    }
    report.insert("chunks".into(), n.into());
    report.insert("build_s".into(), build_s.into());
    report.insert("db_bytes".into(), bytes.into());
    report.insert(
        "bytes_per_1000_chunks".into(),
        (bytes as f64 * 1000.0 / n as f64).into(),
    );
    report.insert("rss_kib_before_search".into(), rss_before.into());
    report.insert("rss_kib_after_search".into(), rss_kib().into());
    println!("{}", serde_json::Value::Object(report));
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
