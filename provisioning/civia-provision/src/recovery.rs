//! Recovery keys: 256 random bits written in "modhex" (`cbdefghijklnrtuv`), 8 groups of 8,
//! the format of systemd-cryptenroll's recovery keys. Modhex letters sit at the same place on
//! QWERTY, AZERTY and QWERTZ keyboards, so the IT person types the key on any layout, and
//! systemd-cryptsetup's recovery prompt accepts it.

use zeroize::Zeroizing;

const MODHEX: &[u8; 16] = b"cbdefghijklnrtuv";

/// Formats 32 bytes as a recovery key (71 characters with dashes).
pub fn format_key(bytes: &[u8; 32]) -> Zeroizing<String> {
    let mut s = Zeroizing::new(String::with_capacity(71));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push('-');
        }
        s.push(char::from(MODHEX[usize::from(b >> 4)]));
        s.push(char::from(MODHEX[usize::from(b & 0xf)]));
    }
    s
}

/// A new recovery key from `random` (32 bytes of good randomness).
pub fn new_key(random: &[u8]) -> Zeroizing<String> {
    let mut b = Zeroizing::new([0u8; 32]);
    b.copy_from_slice(&random[..32]);
    format_key(&b)
}

/// Normalizes what a person typed (case, spaces, missing dashes); `None` if it is not a
/// recovery key.
pub fn normalize(typed: &str) -> Option<Zeroizing<String>> {
    let chars: Zeroizing<Vec<u8>> = Zeroizing::new(
        typed
            .bytes()
            .filter(|c| !c.is_ascii_whitespace() && *c != b'-')
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    if chars.len() != 64 || !chars.iter().all(|c| MODHEX.contains(c)) {
        return None;
    }
    let mut s = Zeroizing::new(String::with_capacity(71));
    for (i, c) in chars.iter().enumerate() {
        if i > 0 && i % 8 == 0 {
            s.push('-');
        }
        s.push(char::from(*c));
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_normalize() {
        let k = format_key(&[0x01; 32]);
        assert_eq!(k.len(), 71);
        assert!(k.starts_with("cbcbcbcb-cbcbcbcb-"));
        let typed = k.to_uppercase().replace('-', " ");
        assert_eq!(normalize(&typed).as_deref(), Some(&*k));
        assert!(normalize("not-a-key").is_none());
        assert!(normalize(&k.replace('c', "a")).is_none());
    }
}
