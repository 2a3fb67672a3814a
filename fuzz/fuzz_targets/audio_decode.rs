//! Fuzzes the recording decoder (containers and codecs through symphonia, Opus through
//! libopus) with hostile bytes under each file-name hint: it must return an error or samples,
//! never panic nor allocate without bound. Seeds: fuzz/seeds/audio_decode (one short
//! recording per accepted format, made by PyAV).
#![no_main]

use civia_audio::AudioStream;
use libfuzzer_sys::fuzz_target;

const HINTS: [&str; 6] = ["x.wav", "x.mp3", "x.ogg", "x.flac", "x.m4a", "x"];

fuzz_target!(|data: &[u8]| {
    // symphonia's decoders panic on some hostile streams (an AAC section index out of range,
    // found here); civia-audio catches those panics and answers "corrupt", which is what the
    // product does. libfuzzer-sys's hook would abort on any panic, caught or not: it is
    // silenced, so what the fuzzer reports is what escapes — a panic outside the guard (the
    // closure's own catch), an abort, an unbounded allocation.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let hint = HINTS[usize::from(pick) % HINTS.len()];
    let Ok(mut stream) = AudioStream::from_bytes(bytes.to_vec(), Some(hint)) else {
        return;
    };
    let mut out = Vec::new();
    // At most 60 s of output per input keeps each run short.
    while out.len() < 60 * civia_audio::RATE {
        match stream.next_chunk(&mut out) {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
    }
    assert!(out.iter().all(|s| s.is_finite()));
});
