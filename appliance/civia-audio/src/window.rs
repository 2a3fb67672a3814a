//! Cutting a long recording into windows at pauses, and telling silence from speech.

use crate::decode::RATE;

/// Frame used to measure loudness: 100 ms.
const FRAME: usize = RATE / 10;
/// Below this RMS level (about -50 dBFS) a 100 ms frame is silence.
pub const SILENCE_RMS: f32 = 0.0032;
/// A window with fewer loud frames than this (300 ms) is silence and is not transcribed.
const MIN_LOUD_FRAMES: usize = 3;

pub fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt()
}

/// Whether a window holds nothing worth transcribing: fewer than 300 ms of frames above
/// -50 dBFS (a short sentence in a long quiet window still counts).
pub fn is_silent(x: &[f32]) -> bool {
    x.chunks(FRAME)
        .filter(|f| rms(f) >= SILENCE_RMS)
        .take(MIN_LOUD_FRAMES)
        .count()
        < MIN_LOUD_FRAMES
}

/// Where to end a window of `buf` (at most `buf.len()` samples): the middle of the quietest
/// 100 ms frame in its last fifth, so that words are not cut in two.
pub fn cut_point(buf: &[f32]) -> usize {
    let len = buf.len();
    if len < 2 * FRAME {
        return len;
    }
    let from = len - len / 5;
    let mut best = len;
    let mut best_level = f32::INFINITY;
    let mut start = from;
    while start + FRAME <= len {
        let level = rms(&buf[start..start + FRAME]);
        if level < best_level {
            best_level = level;
            best = start + FRAME / 2;
        }
        start += FRAME / 2;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_in_the_pause_near_the_end() {
        // 60 s of "speech" (a tone) with a 0.5 s pause at 55 s.
        let mut buf: Vec<f32> = (0..60 * RATE)
            .map(|i| 0.3 * (i as f32 * 0.1).sin())
            .collect();
        for s in &mut buf[55 * RATE..55 * RATE + RATE / 2] {
            *s = 0.0;
        }
        let cut = cut_point(&buf);
        assert!(
            (55 * RATE..55 * RATE + RATE / 2).contains(&cut),
            "cut at {cut}"
        );
        assert_eq!(cut_point(&buf[..100]), 100);
    }

    #[test]
    fn silence_is_told_from_quiet_speech() {
        assert!(is_silent(&vec![0.0; RATE]));
        assert!(is_silent(&vec![0.001; RATE]));
        let quiet: Vec<f32> = (0..RATE).map(|i| 0.02 * (i as f32 * 0.05).sin()).collect();
        assert!(!is_silent(&quiet));
        assert!(is_silent(&[]));
        // One second of speech at -30 dBFS in five minutes of silence is not skipped…
        let mut window = vec![0.0f32; 300 * RATE];
        for (i, s) in window[100 * RATE..101 * RATE].iter_mut().enumerate() {
            *s = 0.045 * (i as f32 * 0.05).sin();
        }
        assert!(!is_silent(&window));
        // …a click is.
        let mut click = vec![0.0f32; 300 * RATE];
        click[1000] = 1.0;
        assert!(is_silent(&click));
    }
}
