//! Streaming conversion of mono audio at any rate to 16 kHz: a windowed-sinc low-pass filter
//! (against aliasing when the source rate is higher) followed by linear interpolation.

/// whisper's input rate.
pub const TARGET_RATE: u32 = 16_000;

/// Half-length of the low-pass filter, in source samples.
const HALF_TAPS: usize = 24;

/// Converts chunks of mono samples at `from` Hz into 16 kHz, keeping state between chunks.
pub struct Resampler {
    /// Source samples per output sample.
    step: f64,
    taps: Vec<f32>,
    /// Filtered source samples not yet consumed, and the index of `pos` in them.
    filtered: Vec<f32>,
    /// Raw samples kept for the filter's history.
    history: Vec<f32>,
    /// Position of the next output sample, in `filtered` coordinates.
    pos: f64,
}

impl Resampler {
    pub fn new(from: u32) -> Self {
        let step = f64::from(from) / f64::from(TARGET_RATE);
        // Cut at 0.45 of the output rate (7.2 kHz), relative to the source rate.
        let taps = if from > TARGET_RATE {
            let fc = 0.45 * f64::from(TARGET_RATE) / f64::from(from);
            let n = 2 * HALF_TAPS + 1;
            let mut taps: Vec<f64> = (0..n)
                .map(|i| {
                    let x = i as f64 - HALF_TAPS as f64;
                    let sinc = if x == 0.0 {
                        2.0 * fc
                    } else {
                        (2.0 * std::f64::consts::PI * fc * x).sin() / (std::f64::consts::PI * x)
                    };
                    // Blackman window.
                    let w = 0.42
                        - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos()
                        + 0.08 * (4.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos();
                    sinc * w
                })
                .collect();
            let sum: f64 = taps.iter().sum();
            taps.iter_mut().for_each(|t| *t /= sum);
            taps.into_iter().map(|t| t as f32).collect()
        } else {
            vec![1.0]
        };
        let half = taps.len() / 2;
        Self {
            step,
            taps,
            filtered: Vec::new(),
            // The filter starts on silence, centred on the first sample (no delay).
            history: vec![0.0; half],
            pos: 0.0,
        }
    }

    /// Feeds source samples; appends the 16 kHz samples now computable to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        let n = self.taps.len();
        self.history.extend_from_slice(input);
        if self.history.len() >= n {
            let produced = self.history.len() + 1 - n;
            for i in 0..produced {
                let acc: f32 = self.history[i..i + n]
                    .iter()
                    .zip(&self.taps)
                    .map(|(s, t)| s * t)
                    .sum();
                self.filtered.push(acc);
            }
            self.history.drain(..produced);
        }
        self.interpolate(out);
    }

    /// Flushes the filter's tail at the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        let tail = vec![0.0; self.taps.len() / 2];
        self.push(&tail, out);
        // The last sample can be emitted exactly at the end.
        if let Some(&last) = self.filtered.last() {
            if self.pos <= (self.filtered.len() - 1) as f64 {
                self.filtered.push(last);
                self.interpolate(out);
            }
        }
    }

    fn interpolate(&mut self, out: &mut Vec<f32>) {
        while self.pos + 1.0 < self.filtered.len() as f64 {
            let i = self.pos.floor() as usize;
            let frac = (self.pos - i as f64) as f32;
            out.push(self.filtered[i] * (1.0 - frac) + self.filtered[i + 1] * frac);
            self.pos += self.step;
        }
        let consumed = (self.pos.floor() as usize).min(self.filtered.len());
        self.filtered.drain(..consumed);
        self.pos -= consumed as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt()
    }

    fn run(rate: u32, input: &[f32], chunk: usize) -> Vec<f32> {
        let mut r = Resampler::new(rate);
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            r.push(c, &mut out);
        }
        r.finish(&mut out);
        out
    }

    #[test]
    fn length_follows_the_rate_ratio_whatever_the_chunking() {
        for rate in [8_000, 16_000, 22_050, 44_100, 48_000] {
            let input = tone(rate, 440.0, 2.0);
            let a = run(rate, &input, 1000);
            let b = run(rate, &input, 7);
            assert_eq!(a.len(), b.len(), "rate {rate}");
            assert!(
                (a.len() as i64 - 32_000).abs() <= 2,
                "rate {rate}: {}",
                a.len()
            );
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn speech_band_passes_and_aliases_are_removed() {
        // 1 kHz keeps its level; 12 kHz (would alias to 4 kHz) is filtered out.
        let pass = run(48_000, &tone(48_000, 1000.0, 1.0), 4096);
        let stop = run(48_000, &tone(48_000, 12_000.0, 1.0), 4096);
        let mid = &pass[2000..14000];
        assert!((rms(mid) - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.05);
        assert!(rms(&stop[2000..14000]) < 0.01);
    }
}
