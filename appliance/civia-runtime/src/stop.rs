//! Incremental text assembly: UTF-8 reassembly of token bytes and stop-sequence matching that
//! never emits text that might turn out to be the start of a stop sequence.

/// Reassembles UTF-8 from token pieces, which may split a character across tokens.
#[derive(Debug, Default)]
pub struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// Appends bytes and returns the text that is complete so far.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // The prefix is valid UTF-8 by construction.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match e.error_len() {
                        // Incomplete character at the end: keep it for the next piece.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Invalid bytes: replace them and go on.
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + n);
                        }
                    }
                }
            }
        }
    }

    /// Whatever is left (an incomplete character at the end of generation).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

/// Cuts generated text at the first stop sequence.
#[derive(Debug)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What [`StopMatcher::push`] lets through.
#[derive(Debug, PartialEq, Eq)]
pub struct Emitted {
    pub text: String,
    pub stopped: bool,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds text; returns what can be shown now and whether a stop sequence was reached
    /// (the stop sequence itself and anything after it are dropped).
    pub fn push(&mut self, text: &str) -> Emitted {
        self.held.push_str(text);
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(pos) = first {
            let text = self.held[..pos].to_string();
            self.held.clear();
            return Emitted {
                text,
                stopped: true,
            };
        }
        // Hold back the longest tail that could still become a stop sequence.
        let keep_from = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| {
                let tail = &self.held[i..];
                self.stops.iter().any(|s| s.starts_with(tail))
            })
            .unwrap_or(self.held.len());
        let text = self.held[..keep_from].to_string();
        self.held.drain(..keep_from);
        Emitted {
            text,
            stopped: false,
        }
    }

    /// Releases held text when generation ends for another reason.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_pieces() {
        let mut a = Utf8Assembler::default();
        let bytes = "é😀".as_bytes();
        assert_eq!(a.push(&bytes[..1]), "");
        assert_eq!(a.push(&bytes[1..3]), "é");
        assert_eq!(a.push(&bytes[3..]), "😀");
        assert_eq!(a.finish(), "");
    }

    #[test]
    fn utf8_invalid_bytes_are_replaced_not_fatal() {
        let mut a = Utf8Assembler::default();
        assert_eq!(a.push(&[b'a', 0xff, b'b']), "a\u{fffd}b");
        assert_eq!(a.push(&[0xe2, 0x82]), "");
        assert_eq!(a.finish(), "\u{fffd}");
    }

    #[test]
    fn stop_sequence_split_over_tokens() {
        let mut m = StopMatcher::new(&["\n\nFIN".to_string()]);
        let mut out = String::new();
        let mut stopped = false;
        for piece in ["Bonjour", "\n", "\nF", "IN", " after"] {
            let e = m.push(piece);
            out.push_str(&e.text);
            if e.stopped {
                stopped = true;
                break;
            }
        }
        assert!(stopped);
        assert_eq!(out, "Bonjour");
    }

    #[test]
    fn false_start_is_released() {
        let mut m = StopMatcher::new(&["STOP".to_string()]);
        assert_eq!(m.push("ab ST").text, "ab ");
        let e = m.push("AR");
        assert_eq!(e.text, "STAR");
        assert!(!e.stopped);
        assert_eq!(m.push("S").text, "");
        assert_eq!(m.finish(), "S");
    }

    #[test]
    fn earliest_of_several_stops_wins_and_multibyte_is_safe() {
        let mut m = StopMatcher::new(&["b".to_string(), "éa".to_string(), String::new()]);
        let e = m.push("xxéabc");
        assert_eq!(
            e,
            Emitted {
                text: "xx".into(),
                stopped: true
            }
        );
        let mut m = StopMatcher::new(&["é".to_string()]);
        assert_eq!(m.push("€€").text, "€€");
    }

    #[test]
    fn no_stops_passes_everything() {
        let mut m = StopMatcher::new(&[]);
        assert_eq!(m.push("tout").text, "tout");
    }
}
