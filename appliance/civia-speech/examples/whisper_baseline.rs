//! Benchmark baseline (hw-tests/bench/speech_bench.py): whisper.cpp called directly, in one
//! process, on a whole recording — no HTTP, no worker, no windows. Prints one JSON line:
//! `{"audio_secs", "decode_secs", "whisper_secs", "words"}`.
//!
//! `cargo run --release -p civia-speech --example whisper_baseline -- MODEL AUDIO LANG THREADS`

use std::time::Instant;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, audio, lang, threads] = args.as_slice() else {
        return Err("usage: whisper_baseline MODEL AUDIO LANG THREADS".into());
    };
    let threads: i32 = threads.parse()?;
    let t0 = Instant::now();
    let mut stream = civia_audio::AudioStream::open(std::path::Path::new(audio), Some(audio))?;
    let mut samples = Vec::new();
    while stream.next_chunk(&mut samples)? {}
    let decode_secs = t0.elapsed().as_secs_f64();
    let ctx = WhisperContext::new_with_params(model, WhisperContextParameters::default())?;
    let mut state = ctx.create_state()?;
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_n_threads(threads);
    params.set_language(Some(lang));
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_timestamps(false);
    let t1 = Instant::now();
    state.full(params, &samples)?;
    let whisper_secs = t1.elapsed().as_secs_f64();
    let mut words = 0;
    for i in 0..state.full_n_segments() {
        if let Some(seg) = state.get_segment(i) {
            words += seg.to_str_lossy()?.split_whitespace().count();
        }
    }
    println!(
        "{{\"audio_secs\": {:.3}, \"decode_secs\": {decode_secs:.3}, \"whisper_secs\": {whisper_secs:.3}, \"words\": {words}}}",
        samples.len() as f64 / civia_audio::RATE as f64
    );
    Ok(())
}
