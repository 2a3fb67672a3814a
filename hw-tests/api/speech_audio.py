"""Test recordings for the transcription tests: French (and English) sentences spoken by
espeak-ng, silences, encoded by PyAV (FFmpeg) into each container the box accepts, and the
word error rate of a transcript."""

import io
import re
import struct
import subprocess
import unicodedata
import wave
from pathlib import Path

import av
import numpy as np

RATE = 22050  # espeak-ng's output rate

FRENCH = [
    "Le conseil municipal s'est réuni lundi soir à la mairie.",
    "Madame Durand présente le budget de la commune pour l'année prochaine.",
    "La décision est adoptée à l'unanimité des membres présents.",
    "Monsieur Martin doit envoyer le courrier aux habitants avant vendredi.",
    "La prochaine réunion aura lieu le douze janvier.",
]
ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call the town hall tomorrow morning.",
    "The council approved the new budget for the school.",
]

# (file name, container, codec, sample rate)
FORMATS = [
    ("reunion.wav", "wav", "pcm_s16le", 22050),
    ("reunion.mp3", "mp3", "libmp3lame", 44100),
    ("reunion.ogg", "ogg", "libopus", 48000),
    ("reunion.flac", "flac", "flac", 22050),
    ("reunion.m4a", "ipod", "aac", 44100),
]


def speak(text: str, voice: str = "fr", speed: int = 140) -> np.ndarray:
    """espeak-ng's voice as float32 samples at RATE Hz."""
    out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                         check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(out)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def encode(samples: np.ndarray, container: str, codec: str, rate: int) -> bytes:
    """Encodes mono float samples at RATE Hz into `container`/`codec` at `rate` Hz (stereo
    for the lossy codecs, as recorders make them)."""
    if container == "wav":
        return wav_bytes(samples)
    buf = io.BytesIO()
    layout = "mono" if codec == "flac" else "stereo"
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        resampler = av.AudioResampler(format=stream.codec_context.format, layout=layout, rate=rate)
        frame_len = 4096
        pts = 0
        for i in range(0, len(samples), frame_len):
            chunk = samples[i:i + frame_len].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts = pts
            pts += chunk.shape[1]
            for f in resampler.resample(frame):
                for packet in stream.encode(f):
                    out.mux(packet)
        for f in resampler.resample(None):
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return re.findall(r"[a-z0-9]+", text)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length (case, accents
    and punctuation ignored)."""
    r, h = words(reference), words(hypothesis)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
    return d[len(h)] / max(len(r), 1)


def sparse_wav(path: Path, seconds: float, rate: int, bits: int, size: int | None = None) -> Path:
    """A mono PCM WAV of silence without writing its data (a sparse file): `seconds` long,
    or `size` bytes long when given."""
    width = bits // 8
    data_len = size - 44 if size else int(seconds * rate) * width
    header = b"RIFF" + struct.pack("<I", 36 + data_len) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * width, width, bits) + b"data" + struct.pack("<I", data_len)
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(44 + data_len)
    if bits == 8:  # unsigned 8-bit: silence is 0x80, not 0
        with open(path, "r+b") as f:
            f.seek(44)
            block = b"\x80" * (1 << 20)
            left = data_len
            while left > 0:
                n = min(left, len(block))
                f.write(block[:n])
                left -= n
    return path
