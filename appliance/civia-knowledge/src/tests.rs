//! The service end to end on a temporary directory: access, search, deletion without trace.
//! Extraction is a plain-text reader (pages split at form feeds) and the embedder a
//! bag-of-words hash: the real ones run in the API suite (hw-tests/api/test_knowledge.py).

use crate::*;
use std::sync::Arc;
use std::time::Duration;

struct PlainText;

impl Extractor for PlainText {
    fn extract(&self, bytes: &[u8], _name: &str) -> Result<Extraction, Refusal> {
        assert_ne!(bytes, b"panique", "a reader with a bug");
        let text = std::str::from_utf8(bytes).map_err(|_| Refusal {
            message: "not UTF-8".into(),
            details: serde_json::json!({"code": "document_unsupported", "reason": "unsupported"}),
        })?;
        let pages: Vec<PageText> = text
            .split('\x0c')
            .enumerate()
            .map(|(i, t)| PageText {
                page: Some(i as u32 + 1),
                text: t.to_owned(),
            })
            .collect();
        Ok(Extraction {
            format: "TXT".into(),
            page_count: Some(pages.len() as u32),
            pages,
            ocr_pages: 0,
        })
    }
}

/// Words hashed into 64 buckets, normalised: texts sharing words are close.
struct Buckets;

impl Embedder for Buckets {
    fn model(&self) -> String {
        "buckets-embed".into()
    }
    fn embed(&self, texts: Vec<String>, _role: EmbedRole) -> EmbedFuture<'_> {
        Box::pin(async move {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0f32; 64];
                    for w in analyze::terms(t) {
                        let h = civia_base::hash::sha256_hex(&w);
                        v[usize::from_str_radix(&h[..2], 16).unwrap() % 64] += 1.0;
                    }
                    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                    v.iter().map(|x| x / n).collect()
                })
                .collect())
        })
    }
}

fn viewer(id: i64, peers: &[i64]) -> Viewer {
    Viewer {
        user_id: id,
        admin: false,
        peers: peers.to_vec(),
    }
}

async fn service(dir: &std::path::Path) -> Arc<Knowledge> {
    let k = Knowledge::open(
        dir,
        KnowledgeSettings::default(),
        Arc::new(PlainText),
        Some(Arc::new(Buckets)),
    )
    .unwrap();
    tokio::spawn(k.clone().run());
    k
}

async fn indexed(k: &Knowledge, v: &Viewer, id: i64) -> Document {
    for _ in 0..500 {
        let d = k.document(v, id).await.unwrap();
        if matches!(d.status, DocumentStatus::Indexed | DocumentStatus::Failed) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("document {id} not indexed");
}

fn upload(name: &str, text: &str) -> Upload {
    Upload {
        name: name.into(),
        bytes: text.as_bytes().to_vec(),
        metadata: None,
    }
}

fn req(collections: &[i64], prompt: &str, method: Method) -> SearchRequest {
    SearchRequest {
        collections: collections.to_vec(),
        documents: vec![],
        prompt: prompt.into(),
        k: 5,
        method,
        score_threshold: None,
        rrf_k: 20,
        date_from: None,
        date_to: None,
    }
}

const CANTINE: &str = "Délibération du conseil municipal\n\nTarifs\n\nLe prix du repas au restaurant scolaire est fixé à 3,20 euros.\x0cArticle 2 – Goûter\n\nLe goûter périscolaire coûte 0,80 euro. Mot témoin : zorglubine.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_cited_and_french_queries_find_inflected_words() {
    let dir = tempfile::tempdir().unwrap();
    let k = service(dir.path()).await;
    let alice = viewer(1, &[]);
    let c = k
        .create_collection(&alice, "Délibérations", None, Visibility::Private)
        .await
        .unwrap();
    let d = k
        .upload(&alice, c.id, upload("cantine_2026.txt", CANTINE))
        .await
        .unwrap();
    assert_eq!(d.status, DocumentStatus::Queued);
    let d = indexed(&k, &alice, d.id).await;
    assert_eq!(d.status, DocumentStatus::Indexed, "{:?}", d.error);
    assert_eq!(d.pages, Some(2));
    for method in [Method::Lexical, Method::Semantic, Method::Hybrid] {
        let hits = k
            .search(&alice, &req(&[c.id], "goûters périscolaires", method))
            .await
            .unwrap();
        assert_eq!(hits[0].1.page, Some(2), "{method:?}: {hits:?}");
        assert_eq!(hits[0].1.document_name, "cantine_2026.txt");
    }
    let hits = k
        .search(
            &alice,
            &req(&[], "délibérations restaurants scolaires", Method::Lexical),
        )
        .await
        .unwrap();
    assert_eq!(hits[0].1.page, Some(1));
    // The same bytes again: the existing document.
    match k.upload(&alice, c.id, upload("copie.txt", CANTINE)).await {
        Err(KnowledgeError::Duplicate(id)) => assert_eq!(id, d.id),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_retrieves_what_they_may_not_see() {
    let dir = tempfile::tempdir().unwrap();
    let k = service(dir.path()).await;
    // Users 1 and 2 are in the same service, 3 in another, 4 without one.
    let alice = viewer(1, &[1, 2]);
    let bob = viewer(2, &[1, 2]);
    let carol = viewer(3, &[3]);
    let dave = viewer(4, &[]);
    let private = k
        .create_collection(&alice, "Privé", None, Visibility::Private)
        .await
        .unwrap();
    let service = k
        .create_collection(&alice, "Service", None, Visibility::Service)
        .await
        .unwrap();
    for (c, word) in [(private.id, "privatissime"), (service.id, "servicissime")] {
        let d = k
            .upload(
                &alice,
                c,
                upload(
                    &format!("{word}.txt"),
                    &format!("Note sur le {word} budget."),
                ),
            )
            .await
            .unwrap();
        assert_eq!(
            indexed(&k, &alice, d.id).await.status,
            DocumentStatus::Indexed
        );
    }
    // Public collections are an administrator's.
    assert!(matches!(
        k.create_collection(&alice, "Pour tous", None, Visibility::Public)
            .await,
        Err(KnowledgeError::Forbidden(_))
    ));
    let everything = ["privatissime budget", "servicissime budget"];
    for method in [Method::Lexical, Method::Semantic, Method::Hybrid] {
        for q in everything {
            let seen = |hits: Vec<(f64, StoredChunk)>| {
                hits.iter().map(|h| h.1.collection_id).collect::<Vec<_>>()
            };
            // Alice sees both, Bob the service one only, Carol and Dave nothing.
            let a = seen(k.search(&alice, &req(&[], q, method)).await.unwrap());
            assert!(a.contains(&private.id) && a.contains(&service.id), "{a:?}");
            let b = seen(k.search(&bob, &req(&[], q, method)).await.unwrap());
            assert_eq!(b, vec![service.id], "{method:?} {q}");
            for other in [&carol, &dave] {
                assert!(k
                    .search(other, &req(&[], q, method))
                    .await
                    .unwrap()
                    .is_empty());
                // Naming a collection one may not see is "not found", like an absent one.
                for c in [private.id, service.id, 999] {
                    assert!(matches!(
                        k.search(other, &req(&[c], q, method)).await,
                        Err(KnowledgeError::CollectionNotFound(_))
                    ));
                }
            }
            assert!(matches!(
                k.search(&bob, &req(&[private.id], q, method)).await,
                Err(KnowledgeError::CollectionNotFound(_))
            ));
        }
    }
    // Documents and chunks follow their collection.
    let docs = k.documents(&alice, None, 100, 0).await.unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(k.documents(&bob, None, 100, 0).await.unwrap().len(), 1);
    assert!(k.documents(&carol, None, 100, 0).await.unwrap().is_empty());
    for d in &docs {
        assert!(k.document(&carol, d.id).await.is_err());
        assert!(k.chunks(&carol, d.id, 10, 0).await.is_err());
        assert!(k.delete_document(&carol, d.id).await.is_err());
    }
    assert!(k.delete_collection(&carol, service.id).await.is_err());
    assert_eq!(k.collections(&carol).await.unwrap().len(), 0);
    // A reader of the service's collection may not publish it.
    assert!(matches!(
        k.update_collection(&bob, service.id, None, None, Some(Visibility::Public))
            .await,
        Err(KnowledgeError::Forbidden(_))
    ));
    // Nor hide it from the service: who sees a collection is its owner's choice.
    assert!(matches!(
        k.update_collection(&bob, service.id, None, None, Some(Visibility::Private))
            .await,
        Err(KnowledgeError::Forbidden(_))
    ));
    assert_eq!(
        k.collection(&bob, service.id).await.unwrap().visibility,
        Visibility::Service
    );
    // An owner who is no longer an administrator no longer changes a public collection.
    let admin = Viewer {
        admin: true,
        ..viewer(5, &[])
    };
    let public = k
        .create_collection(&admin, "Commune", None, Visibility::Public)
        .await
        .unwrap();
    let demoted = viewer(5, &[]);
    assert!(matches!(
        k.update_collection(&demoted, public.id, Some("Mien".into()), None, None)
            .await,
        Err(KnowledgeError::Forbidden(_))
    ));
    assert!(k
        .upload(&demoted, public.id, upload("x.txt", "texte"))
        .await
        .is_err());
    // Lexical scores depend on the rank only: a word in a collection one may not see does not
    // change them (FTS5's own bm25 uses the statistics of the whole index).
    let before = k
        .search(&bob, &req(&[], "servicissime budget", Method::Lexical))
        .await
        .unwrap();
    let d = k
        .upload(
            &alice,
            private.id,
            upload("b.txt", "servicissime servicissime servicissime"),
        )
        .await
        .unwrap();
    indexed(&k, &alice, d.id).await;
    let after = k
        .search(&bob, &req(&[], "servicissime budget", Method::Lexical))
        .await
        .unwrap();
    assert_eq!(
        before.iter().map(|h| h.0).collect::<Vec<_>>(),
        after.iter().map(|h| h.0).collect::<Vec<_>>()
    );
    // Carol joins the service: she now sees its collection (the service is read at query time).
    let carol_joined = viewer(3, &[1, 2, 3]);
    let hits = k
        .search(&carol_joined, &req(&[], "servicissime", Method::Lexical))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_leaves_no_trace_in_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let k = service(dir.path()).await;
    let alice = viewer(1, &[]);
    let c = k
        .create_collection(&alice, "Temp", None, Visibility::Private)
        .await
        .unwrap();
    let keep = k
        .create_collection(&alice, "Garde", None, Visibility::Private)
        .await
        .unwrap();
    let canary = "Kzqwertyx";
    let text = format!("{CANTINE}\n\nLe code secret est {canary} pour la salle.");
    let d = k
        .upload(&alice, c.id, upload("canari.txt", &text))
        .await
        .unwrap();
    assert_eq!(
        indexed(&k, &alice, d.id).await.status,
        DocumentStatus::Indexed
    );
    let other = k
        .upload(
            &alice,
            keep.id,
            upload("autre.txt", "Horaires de la mairie."),
        )
        .await
        .unwrap();
    indexed(&k, &alice, other.id).await;
    let stem = analyze::terms(canary).remove(0);
    let scan = |needle: &str| -> Vec<String> {
        let mut found = Vec::new();
        for entry in walk(dir.path()) {
            let bytes = std::fs::read(&entry).unwrap();
            if bytes
                .windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
            {
                found.push(entry.display().to_string());
            }
        }
        found
    };
    k.compact_now().await.unwrap();
    assert!(
        !scan(canary).is_empty(),
        "the canary should be stored before deletion"
    );
    k.delete_document(&alice, d.id).await.unwrap();
    k.delete_collection(&alice, c.id).await.unwrap();
    k.compact_now().await.unwrap();
    for needle in [
        canary,
        &stem,
        "zorglubin",
        &civia_base::hash::sha256_hex(text.as_bytes()),
    ] {
        assert_eq!(scan(needle), Vec::<String>::new(), "{needle} still on disk");
    }
    // The other collection still works.
    let hits = k
        .search(&alice, &req(&[], "horaires mairie", Method::Hybrid))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_half_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let k = service(dir.path()).await;
    let alice = viewer(1, &[]);
    for name in [
        "",
        "   ",
        "a\u{0}b",
        &"n".repeat(200),
        "facture\u{202E}fdp.exe",
        "a\u{200B}b",
    ] {
        assert!(
            k.create_collection(&alice, name, None, Visibility::Private)
                .await
                .is_err(),
            "{name:?}"
        );
    }
    let c = k
        .create_collection(&alice, "C", None, Visibility::Private)
        .await
        .unwrap();
    assert!(k
        .upload(&alice, c.id, upload("vide.txt", ""))
        .await
        .is_err());
    assert!(matches!(
        k.upload(&alice, c.id, upload("arr\u{202E}fdp.txt", "texte"))
            .await,
        Err(KnowledgeError::Invalid { .. })
    ));
    // A search names 1,000 collections or documents at most (each is checked).
    let mut r = req(&[c.id], "texte", Method::Hybrid);
    r.documents = (1..=1001).collect();
    assert!(matches!(
        k.search(&alice, &r).await,
        Err(KnowledgeError::Invalid { .. })
    ));
    // Unreadable: failed with a French reason, no chunk, no spool file left.
    let d = k
        .upload(
            &alice,
            c.id,
            Upload {
                name: "x.bin".into(),
                bytes: vec![0xff, 0xfe, 0x00, 0x80],
                metadata: None,
            },
        )
        .await
        .unwrap();
    let d = indexed(&k, &alice, d.id).await;
    assert_eq!(d.status, DocumentStatus::Failed);
    assert_eq!(d.error.as_deref(), Some("not UTF-8"));
    assert_eq!(
        d.error_details,
        Some(serde_json::json!({"code": "document_unsupported", "reason": "unsupported"}))
    );
    // A reader that panics: failed too, its upload not kept.
    let p = k
        .upload(&alice, c.id, upload("p.txt", "panique"))
        .await
        .unwrap();
    let p = indexed(&k, &alice, p.id).await;
    assert_eq!(p.status, DocumentStatus::Failed);
    assert_eq!(p.error.as_deref(), Some("the document could not be read"));
    assert_eq!(
        p.error_details,
        Some(serde_json::json!({"code": "indexing_failed", "reason": "unreadable"}))
    );
    assert_eq!(d.chunks, 0);
    assert_eq!(
        std::fs::read_dir(dir.path().join("spool")).unwrap().count(),
        0
    );
    for (prompt, kk) in [("", 5), ("a", 0), ("a", 1000), (&*"x".repeat(5000), 5)] {
        let mut r = req(&[c.id], prompt, Method::Hybrid);
        r.k = kk;
        assert!(matches!(
            k.search(&alice, &r).await,
            Err(KnowledgeError::Invalid { .. })
        ));
    }
    // Only stop words: no lexical hit, no error.
    assert!(k
        .search(&alice, &req(&[c.id], "de la et", Method::Lexical))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_interrupted_by_a_stop_is_indexed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let alice = viewer(1, &[]);
    let id = {
        // No indexing task: the upload stays queued, as when the box stops.
        let k = Knowledge::open(
            dir.path(),
            KnowledgeSettings::default(),
            Arc::new(PlainText),
            None,
        )
        .unwrap();
        let c = k
            .create_collection(&alice, "C", None, Visibility::Private)
            .await
            .unwrap();
        k.upload(
            &alice,
            c.id,
            upload("a.txt", "Arrêté de circulation rue des Lilas."),
        )
        .await
        .unwrap()
        .id
    };
    // What a stop left besides: a half-written temporary file, a deleted document's upload.
    let spool = dir.path().join("spool");
    std::fs::write(spool.join(".77.upload.tmp"), "texte secret").unwrap();
    std::fs::write(spool.join("78.upload"), "texte secret").unwrap();
    let k = service(dir.path()).await;
    let mut left: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != &format!("{id}.upload"))
        .collect();
    left.sort();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        indexed(&k, &alice, id).await.status,
        DocumentStatus::Indexed
    );
}

fn dated(name: &str, text: &str, date: serde_json::Value) -> Upload {
    Upload {
        metadata: Some(serde_json::json!({ "date": date })),
        ..upload(name, text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_range_narrows_the_documents_before_ranking() {
    let dir = tempfile::tempdir().unwrap();
    let k = service(dir.path()).await;
    let alice = viewer(1, &[]);
    let c = k
        .create_collection(&alice, "Délibérations", None, Visibility::Private)
        .await
        .unwrap();
    let text = |price: &str| format!("Tarif de la cantine scolaire : {price} euros le repas.");
    let old = k
        .upload(
            &alice,
            c.id,
            dated("2019.txt", &text("2,50"), "2019-03-01".into()),
        )
        .await
        .unwrap();
    let new = k
        .upload(
            &alice,
            c.id,
            dated("2024.txt", &text("3,20"), "2024-03-01".into()),
        )
        .await
        .unwrap();
    let today = k
        .upload(&alice, c.id, upload("projet.txt", &text("3,50")))
        .await
        .unwrap();
    assert_eq!(old.date, "2019-03-01");
    let now = civia_base::time::date(civia_base::time::now_unix());
    assert_eq!(today.date, now);
    for bad in [
        serde_json::json!("2024-02-30"),
        serde_json::json!("01/03/2024"),
        serde_json::json!(20240301),
        serde_json::Value::Null,
    ] {
        let r = k
            .upload(&alice, c.id, dated("x.txt", &text("9"), bad.clone()))
            .await;
        assert!(
            matches!(r, Err(KnowledgeError::Invalid { .. })),
            "{bad}: {r:?}"
        );
    }
    for d in [&old, &new, &today] {
        assert_eq!(
            indexed(&k, &alice, d.id).await.status,
            DocumentStatus::Indexed
        );
    }
    let found = |from: Option<&str>, to: Option<&str>, documents: Vec<i64>, method| {
        let mut r = req(&[c.id], "prix de la cantine", method);
        r.date_from = from.map(Into::into);
        r.date_to = to.map(Into::into);
        r.documents = documents;
        let k = k.clone();
        let alice = alice.clone();
        async move {
            let mut ids: Vec<i64> = k
                .search(&alice, &r)
                .await
                .unwrap()
                .iter()
                .map(|h| h.1.document_id)
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        }
    };
    for method in [Method::Lexical, Method::Semantic, Method::Hybrid] {
        assert_eq!(
            found(None, None, vec![], method).await,
            vec![old.id, new.id, today.id]
        );
        assert_eq!(
            found(Some("2020-01-01"), Some("2024-12-31"), vec![], method).await,
            vec![new.id]
        );
        assert_eq!(
            found(None, Some("2019-03-01"), vec![], method).await,
            vec![old.id]
        );
        assert_eq!(
            found(Some(&now), None, vec![], method).await,
            vec![today.id]
        );
        // Documents outside the range stay out even when named.
        assert!(found(Some("2020-01-01"), None, vec![old.id], method)
            .await
            .is_empty());
    }
    assert!(found(
        Some("2024-12-31"),
        Some("2020-01-01"),
        vec![],
        Method::Hybrid
    )
    .await
    .is_empty());
    for (from, to) in [(Some("2024-13-01"), None), (None, Some("hier"))] {
        let mut r = req(&[c.id], "cantine", Method::Hybrid);
        r.date_from = from.map(Into::into);
        r.date_to = to.map(Into::into);
        assert!(
            matches!(
                k.search(&alice, &r).await,
                Err(KnowledgeError::Invalid { .. })
            ),
            "{from:?} {to:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_administration_imports_into_shared_collections_only() {
    let dir = tempfile::tempdir().unwrap();
    let k = service(dir.path()).await;
    let (alice, bob, carol) = (viewer(1, &[1, 2]), viewer(2, &[1, 2]), viewer(3, &[]));
    let private = k
        .create_collection(&alice, "Mes brouillons", None, Visibility::Private)
        .await
        .unwrap();
    let shared = k
        .create_collection(&alice, "Urbanisme", None, Visibility::Service)
        .await
        .unwrap();
    let listed: Vec<i64> = k
        .shared_collections()
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, vec![shared.id]);
    // An agent's private collection is neither listed nor filled by the administration.
    assert!(matches!(
        k.import(private.id, upload("a.txt", "texte")).await,
        Err(KnowledgeError::CollectionNotFound(_))
    ));
    assert!(matches!(
        k.import(9999, upload("a.txt", "texte")).await,
        Err(KnowledgeError::CollectionNotFound(_))
    ));
    assert_eq!(
        k.documents(&alice, Some(private.id), 10, 0)
            .await
            .unwrap()
            .len(),
        0
    );
    let d = k
        .import(
            shared.id,
            upload(
                "dossiers/plu/reglement.txt",
                "Hauteur maximale des clôtures : 1,80 mètre.",
            ),
        )
        .await
        .unwrap();
    assert_eq!(d.status, DocumentStatus::Queued);
    assert_eq!(d.name, "reglement.txt");
    assert_eq!(
        indexed(&k, &bob, d.id).await.status,
        DocumentStatus::Indexed
    );
    let hits = k
        .search(&bob, &req(&[], "hauteur des clôtures", Method::Lexical))
        .await
        .unwrap();
    assert_eq!(hits[0].1.document_id, d.id);
    assert!(k
        .search(&carol, &req(&[], "hauteur des clôtures", Method::Lexical))
        .await
        .unwrap()
        .is_empty());
    // The same file again is a duplicate, not a second copy.
    assert!(matches!(
        k.import(shared.id, upload("copie.txt", "Hauteur maximale des clôtures : 1,80 mètre.")).await,
        Err(KnowledgeError::Duplicate(id)) if id == d.id
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_departing_user_leaves_no_private_collection_and_no_orphan() {
    let dir = tempfile::tempdir().unwrap();
    let k = service(dir.path()).await;
    let alice = Viewer {
        admin: true,
        ..viewer(1, &[1, 2])
    };
    let mut ids = Vec::new();
    for (name, vis) in [
        ("Brouillons", Visibility::Private),
        ("Urbanisme", Visibility::Service),
        ("Commune", Visibility::Public),
    ] {
        let c = k.create_collection(&alice, name, None, vis).await.unwrap();
        let d = k
            .upload(
                &alice,
                c.id,
                upload(&format!("{name}.txt"), &format!("Note {name} zorglub.")),
            )
            .await
            .unwrap();
        indexed(&k, &alice, d.id).await;
        ids.push(c.id);
    }
    let (private, service, public) = (ids[0], ids[1], ids[2]);
    let owned = k.owned_by(1).await.unwrap();
    assert_eq!(owned.len(), 3);
    assert!(owned.iter().all(|(_, docs)| docs.len() == 1));
    // A data-subject erasure without the account: the private collection goes.
    assert_eq!(
        k.owner_leaves(1, false, None).await.unwrap(),
        (vec![private], vec![])
    );
    assert!(k.collection(&alice, private).await.is_err());
    // The account goes: the service collection passes to Bob, who still sees it alone.
    assert_eq!(
        k.owner_leaves(1, true, Some(2)).await.unwrap(),
        (vec![], vec![service])
    );
    let bob = viewer(2, &[2]);
    assert_eq!(k.collection(&bob, service).await.unwrap().owner_id, 2);
    assert!(!k
        .search(&bob, &req(&[], "zorglub", Method::Lexical))
        .await
        .unwrap()
        .is_empty());
    // Bob leaves with nobody left in the service: erased, not orphaned.
    assert_eq!(
        k.owner_leaves(2, true, None).await.unwrap(),
        (vec![service], vec![])
    );
    assert!(k.collection(&viewer(3, &[]), public).await.is_ok());
    k.compact_now().await.unwrap();
    for f in walk(dir.path()) {
        let bytes = std::fs::read(&f).unwrap();
        for word in ["Brouillons", "Urbanisme"] {
            assert!(
                !bytes.windows(word.len()).any(|w| w == word.as_bytes()),
                "{word} in {}",
                f.display()
            );
        }
    }
}
