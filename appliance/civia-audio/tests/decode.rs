//! The decoding side of the speech worker on hand-made files: rates and channels converted to
//! 16 kHz mono, and every kind of bad file refused with its own error (no model needed).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions fail loudly

use civia_audio::{AudioError, AudioStream, RATE};
use std::io::Write;

fn wav(
    rate: u32,
    channels: u16,
    bits: u16,
    frames: usize,
    sample: impl Fn(usize) -> f32,
) -> Vec<u8> {
    let width = usize::from(bits / 8);
    let data_len = frames * width * usize::from(channels);
    let mut out = Vec::with_capacity(44 + data_len);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(channels) * width as u32).to_le_bytes());
    out.extend_from_slice(&(channels * bits / 8).to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_len as u32).to_le_bytes());
    for i in 0..frames {
        let v = sample(i);
        for _ in 0..channels {
            match bits {
                16 => out.extend_from_slice(&((v * 32767.0) as i16).to_le_bytes()),
                8 => out.push(((v * 127.0) + 128.0) as u8),
                _ => unreachable!(),
            }
        }
    }
    out
}

fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(bytes).unwrap();
    f
}

fn decode_all(bytes: &[u8], hint: &str) -> Result<Vec<f32>, AudioError> {
    let f = file(bytes);
    let mut s = AudioStream::open(f.path(), Some(hint))?;
    let mut out = Vec::new();
    while s.next_chunk(&mut out)? {}
    Ok(out)
}

#[test]
fn any_rate_and_layout_becomes_16_khz_mono() {
    let tone = |rate: u32| {
        move |i: usize| 0.5 * (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin()
    };
    for (rate, channels, bits) in [
        (8_000, 1, 8),
        (22_050, 1, 16),
        (44_100, 2, 16),
        (48_000, 2, 16),
    ] {
        let bytes = wav(rate, channels, bits, rate as usize * 2, tone(rate));
        let f = file(&bytes);
        let s = AudioStream::open(f.path(), Some("x.wav")).unwrap();
        let fmt = s.format().clone();
        assert_eq!((fmt.sample_rate, fmt.channels), (rate, u32::from(channels)));
        assert!((fmt.duration_secs.unwrap() - 2.0).abs() < 1e-6);
        let out = decode_all(&bytes, "x.wav").unwrap();
        assert!(
            (out.len() as i64 - 2 * RATE as i64).abs() <= 2,
            "{rate}: {}",
            out.len()
        );
        let rms = (out[1000..30000].iter().map(|x| x * x).sum::<f32>() / 29000.0).sqrt();
        assert!(
            (rms - 0.5 / 2f32.sqrt()).abs() < 0.03,
            "{rate} Hz: rms {rms}"
        );
    }
}

#[test]
fn empty_unknown_and_damaged_files_are_told_apart() {
    assert!(matches!(decode_all(b"", "x.wav"), Err(AudioError::Empty)));
    let header_only = wav(16_000, 1, 16, 0, |_| 0.0);
    assert!(matches!(decode_all(&header_only, "x.wav"), Ok(v) if v.is_empty()));
    let text = "Madame, Monsieur, ".repeat(200);
    assert!(matches!(
        decode_all(text.as_bytes(), "x.mp3"),
        Err(AudioError::Unsupported(_) | AudioError::Corrupt(_))
    ));
    let mut zero_rate = wav(16_000, 1, 16, 16_000, |_| 0.1);
    zero_rate[24..28].copy_from_slice(&0u32.to_le_bytes());
    assert!(decode_all(&zero_rate, "x.wav").is_err());
    let mut channels = wav(16_000, 1, 16, 16_000, |_| 0.1);
    channels[22..24].copy_from_slice(&60_000u16.to_le_bytes());
    assert!(decode_all(&channels, "x.wav").is_err());
    // Truncated data: what is there is decoded.
    let full = wav(16_000, 1, 16, 32_000, |_| 0.1);
    let out = decode_all(&full[..full.len() / 2], "x.wav").unwrap();
    assert!((out.len() as i64 - 16_000).abs() < 100, "{}", out.len());
    // Random bytes never panic, whatever the name says.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for name in ["x.wav", "x.mp3", "x.ogg", "x.flac", "x.m4a", "x"] {
        let noise: Vec<u8> = (0..50_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = decode_all(&noise, name);
        let mut bad = full.clone();
        bad[100..5000].copy_from_slice(&noise[..4900]);
        let _ = decode_all(&bad, name);
    }
}
