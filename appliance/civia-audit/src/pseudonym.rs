//! Pseudonymous user identifiers: the audit trail names users by a keyed hash of their id,
//! never by name. Only whoever holds the secret (the DPO, through the daemon) can link a
//! pseudonym back to a user, by recomputing it for each candidate id.

use hmac::digest::generic_array::GenericArray;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// Computes `hex(HMAC-SHA256(secret, "civia-user\0" + decimal id))[..32]`.
#[derive(Clone)]
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl Pseudonymizer {
    /// Keys the pseudonyms with a 32-byte secret (see
    /// [`secret_load_or_create`](crate::secret_load_or_create)). Changing the secret changes
    /// every pseudonym.
    pub fn new(secret: [u8; 32]) -> Pseudonymizer {
        // HMAC zero-pads keys shorter than the hash's 64-byte block, so keying with the padded
        // block is the same as keying with the secret, and this constructor cannot fail.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&secret);
        Pseudonymizer {
            mac: <Hmac<Sha256> as Mac>::new(GenericArray::from_slice(&block)),
        }
    }

    /// The pseudonym of a user id: 32 lowercase hex digits (128 bits).
    pub fn pseudonym(&self, user_id: i64) -> String {
        let mut mac = self.mac.clone();
        mac.update(b"civia-user\0");
        mac.update(user_id.to_string().as_bytes());
        let mut out = hex::encode(mac.finalize().into_bytes());
        out.truncate(32);
        out
    }

    /// The first candidate id whose pseudonym is `pseudonym`, if any (the DPO passes every
    /// user id of the store).
    pub fn resolve(&self, pseudonym: &str, candidates: impl Iterator<Item = i64>) -> Option<i64> {
        let wanted = pseudonym.to_ascii_lowercase();
        candidates
            .into_iter()
            .find(|id| self.pseudonym(*id) == wanted)
    }
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer { secret: <redacted> }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_hmac() {
        let secret = [7u8; 32];
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret).unwrap();
        mac.update(b"civia-user\0-42");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(Pseudonymizer::new(secret).pseudonym(-42), expected[..32]);
    }

    #[test]
    fn stable_distinct_resolvable() {
        let p = Pseudonymizer::new([1u8; 32]);
        let q = Pseudonymizer::new([2u8; 32]);
        assert_eq!(p.pseudonym(5), p.pseudonym(5));
        assert_eq!(p.pseudonym(5).len(), 32);
        assert_ne!(p.pseudonym(5), p.pseudonym(6));
        assert_ne!(p.pseudonym(5), q.pseudonym(5));
        assert_eq!(p.resolve(&p.pseudonym(77), 1..1000), Some(77));
        assert_eq!(p.resolve(&q.pseudonym(77), 1..1000), None);
        assert!(!format!("{p:?}").contains("1, 1"));
    }
}
