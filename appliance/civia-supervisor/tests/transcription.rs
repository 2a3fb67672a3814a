//! Driving a transcription to its end against a shell script standing in for the speech
//! worker: it answers the handshake, reads the job, then writes the job's canned events.

use civia_ipc::speech::{
    AudioFormat, FromSpeech, Segment, SpeechFailure, SpeechLoadSpec, SpeechModelInfo, ToSpeech,
    TranscribeRequest, SPEECH_PROTOCOL_VERSION,
};
use civia_supervisor::{
    Phase, SpeechError, SpeechSpec, SpeechSupervisor, SpoolFile, Step, Transcribed, Transcription,
};
use std::time::Duration;

fn frames<T: serde::Serialize>(msgs: &[T]) -> Vec<u8> {
    let mut buf = Vec::new();
    for m in msgs {
        civia_ipc::write_frame(&mut buf, m).expect("frame");
    }
    buf
}

fn load() -> SpeechLoadSpec {
    SpeechLoadSpec {
        path: "/models/fake.bin".into(),
        sha256: None,
        threads: 1,
        gpu: false,
    }
}

fn segment(start: f64, text: &str) -> Segment {
    Segment {
        start,
        end: start + 2.0,
        text: text.into(),
        avg_logprob: -0.2,
        no_speech_prob: 0.01,
        tokens: vec![1, 2],
    }
}

/// A speech worker that loads, reads the first job (`req`), answers `job`, then waits for
/// the shutdown; a supervisor ready with it; the recording the job names.
async fn worker(
    dir: &tempfile::TempDir,
    job: &[FromSpeech],
) -> (SpeechSupervisor, SpoolFile, TranscribeRequest) {
    let (spool, _file) = SpoolFile::create(dir.path()).expect("spool file");
    let req = TranscribeRequest {
        id: 1, // the supervisor's first id
        audio_path: spool.path().to_string_lossy().into_owned(),
        filename_hint: None,
        language: None,
        prompt: None,
        temperature: 0.0,
        max_duration_secs: 60,
        window_secs: 30,
    };
    let hello = frames(&[
        FromSpeech::Hello {
            version: SPEECH_PROTOCOL_VERSION,
            pid: 1,
        },
        FromSpeech::Loaded(SpeechModelInfo {
            sha256: "00".into(),
            size_bytes: 1,
            kind: "base".into(),
            multilingual: true,
            gpu: false,
        }),
    ]);
    let setup = frames(&[
        ToSpeech::Hello {
            version: SPEECH_PROTOCOL_VERSION,
        },
        ToSpeech::Load(load()),
        ToSpeech::Transcribe(req.clone()),
    ]);
    let (h, j) = (dir.path().join("hello"), dir.path().join("job"));
    std::fs::write(&h, hello).expect("write frames");
    std::fs::write(&j, frames(job)).expect("write frames");
    let sup = SpeechSupervisor::start(SpeechSpec {
        program: "/bin/sh".into(),
        args: vec![
            "-c".into(),
            format!(
                "cat '{}' >&3; head -c {} <&3 >/dev/null; cat '{}' >&3; head -c 1 <&3 >/dev/null",
                h.display(),
                setup.len(),
                j.display()
            ),
        ],
        load: load(),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        backoff_reset_after: Duration::from_secs(60),
        load_timeout: Duration::from_secs(10),
        queue_depth: 1,
        sandbox: None,
    });
    let mut rx = sup.watch();
    tokio::time::timeout(
        Duration::from_secs(20),
        rx.wait_for(|s| s.phase == Phase::Ready),
    )
    .await
    .expect("never ready")
    .expect("supervisor gone");
    (sup, spool, req)
}

async fn next(t: &mut Transcription) -> Option<Result<Step, SpeechError>> {
    tokio::time::timeout(Duration::from_secs(10), t.step())
        .await
        .expect("no step")
}

#[tokio::test]
async fn the_steps_follow_the_job_and_the_recording_goes_with_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (segment(0.0, " Bonjour"), segment(2.0, " à tous."));
    let (sup, spool, req) = worker(
        &dir,
        &[
            FromSpeech::Probed {
                id: 1,
                format: AudioFormat {
                    container: "wav".into(),
                    codec: "pcm_s16le".into(),
                    sample_rate: 16000,
                    channels: 1,
                    duration_secs: Some(4.0),
                },
            },
            FromSpeech::Progress {
                id: 1,
                processed_secs: 2.0,
                duration_secs: Some(4.0),
            },
            FromSpeech::Segment {
                id: 1,
                segment: a.clone(),
            },
            FromSpeech::Segment {
                id: 1,
                segment: b.clone(),
            },
            FromSpeech::Finished {
                id: 1,
                language: "fr".into(),
                duration_secs: 4.0,
                silent_secs: 0.0,
            },
        ],
    )
    .await;
    let recording = spool.path().to_path_buf();
    let job = sup.transcribe(sup.reserve().expect("a place"), req);
    let mut t = Transcription::new(job.expect("queued"), spool);
    let progress = |processed, duration| {
        Some(Ok(Step::Progress {
            processed,
            duration,
        }))
    };
    assert_eq!(next(&mut t).await, progress(0.0, Some(4.0)));
    assert_eq!(next(&mut t).await, progress(2.0, Some(4.0)));
    assert_eq!(next(&mut t).await, Some(Ok(Step::Segment(a.clone()))));
    assert!(recording.exists(), "kept while the job runs");
    assert_eq!(next(&mut t).await, Some(Ok(Step::Segment(b.clone()))));
    assert_eq!(
        next(&mut t).await,
        Some(Ok(Step::Done(Transcribed {
            segments: vec![a, b],
            language: "fr".into(),
            duration_secs: 4.0,
            audio_deleted: true,
        })))
    );
    assert!(!recording.exists());
    assert_eq!(next(&mut t).await, None);
    sup.shutdown().await;
}

#[tokio::test]
async fn collect_gives_the_result_or_the_failure_and_deletes_the_recording() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = segment(0.0, " Séance ouverte.");
    let (sup, spool, req) = worker(
        &dir,
        &[
            FromSpeech::Segment {
                id: 1,
                segment: s.clone(),
            },
            FromSpeech::Finished {
                id: 1,
                language: "fr".into(),
                duration_secs: 2.0,
                silent_secs: 0.0,
            },
        ],
    )
    .await;
    let recording = spool.path().to_path_buf();
    let job = sup.transcribe(sup.reserve().expect("a place"), req);
    let done = Transcription::new(job.expect("queued"), spool).collect();
    let done = tokio::time::timeout(Duration::from_secs(10), done).await;
    let done = done
        .expect("no end")
        .expect("transcribed")
        .expect("a result");
    assert_eq!(done.segments, vec![s]);
    assert!(done.audio_deleted && !recording.exists());
    sup.shutdown().await;

    let dir = tempfile::tempdir().expect("tempdir");
    let (sup, spool, req) = worker(
        &dir,
        &[FromSpeech::Failed {
            id: 1,
            kind: SpeechFailure::Corrupt,
            message: "illisible".into(),
        }],
    )
    .await;
    let recording = spool.path().to_path_buf();
    let job = sup.transcribe(sup.reserve().expect("a place"), req);
    let failed = Transcription::new(job.expect("queued"), spool).collect();
    let failed = tokio::time::timeout(Duration::from_secs(10), failed).await;
    assert_eq!(
        failed.expect("no end"),
        Err(SpeechError::Job {
            kind: SpeechFailure::Corrupt,
            message: "illisible".into(),
        })
    );
    assert!(!recording.exists());
    sup.shutdown().await;
}

#[test]
fn a_spool_file_is_private_and_removed_when_dropped() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (spool, _file) = SpoolFile::create(dir.path()).expect("spool file");
    let path = spool.path().to_path_buf();
    assert!(path.starts_with(dir.path()));
    let mode = std::fs::metadata(&path)
        .expect("created")
        .permissions()
        .mode();
    // Readable by the speech worker's own uid (0644): the spool directory (0711, under the
    // 0700 state directory) keeps it from everyone else, and only the speech worker's jail
    // binds it back. Never writable by others.
    assert_eq!(mode & 0o777, 0o644);
    drop(spool);
    assert!(!path.exists());
}
