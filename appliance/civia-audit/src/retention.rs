//! Retention: how long the trail is kept, and the purge of whole sealed segments past it.

use crate::entry::Entry;
use crate::fsutil::{self, io_err, segment_path, sig_path, sync_dir, write_atomic, CHECKPOINT};
use crate::seal::{read_json, Checkpoint};
use crate::time::Month;
use crate::writer::read_seal;
use crate::{AuditError, AuditLog};
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

/// How many months the trail is kept. The rule (mirrored by the configuration): 6 to 12
/// months, or any other positive number with a written justification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Months kept before the current one.
    pub months: u32,
    /// Why a value outside 6–12 is needed (e.g. a deliberation of the municipal council).
    pub justification: Option<String>,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            months: RetentionPolicy::MIN_MONTHS,
            justification: None,
        }
    }
}

impl RetentionPolicy {
    /// Lowest retention accepted without justification (AI Act art. 26(6): at least six
    /// months).
    pub const MIN_MONTHS: u32 = 6;
    /// Highest retention accepted without justification (CNIL: 6 months to 1 year).
    pub const MAX_MONTHS: u32 = 12;

    /// Refuses 0, and anything outside 6–12 months without a non-blank justification.
    pub fn validate(&self) -> Result<(), AuditError> {
        if self.months == 0 {
            return Err(AuditError::Retention(
                "audit log retention of 0 months is refused: the trail would be purged at once"
                    .into(),
            ));
        }
        let justified = self
            .justification
            .as_deref()
            .is_some_and(|j| !j.trim().is_empty());
        if !(Self::MIN_MONTHS..=Self::MAX_MONTHS).contains(&self.months) && !justified {
            return Err(AuditError::Retention(format!(
                "audit log retention of {} months is outside {}–{} months (AI Act art. 26(6), \
                 CNIL recommendation); set a written justification to allow it",
                self.months,
                Self::MIN_MONTHS,
                Self::MAX_MONTHS
            )));
        }
        Ok(())
    }
}

/// What [`AuditLog::purge`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Segments removed by this purge, oldest first.
    pub purged: Vec<String>,
    /// Files of earlier, interrupted purges removed (already covered by the checkpoint).
    pub leftovers: Vec<String>,
    /// Segments of months before this one are past retention.
    pub cutoff: String,
    /// The first segment kept, per the checkpoint written (when something was purged).
    pub first_segment: Option<String>,
}

impl AuditLog {
    /// Removes the whole sealed segments of months older than `retention_months` before the
    /// current month (per the clock): with 6 months in December, segments up to May go, from
    /// June on stay, so every entry is kept at least 6 months. First writes a signed
    /// `checkpoint.json` (first kept segment, its first seq, the last purged hash) so that
    /// what remains still verifies. Never removes the last segment, an unsealed segment or
    /// anything after one, and refuses to purge if the chain does not link across the cut.
    ///
    /// Appends wait while it runs. Call it, say, daily.
    pub fn purge(&self) -> Result<PurgeReport, AuditError> {
        let w = self.lock_writer()?;
        let now = Month::of((self.clock)())?;
        let cutoff = now.minus(self.retention_months);
        let listing = fsutil::list(&self.dir)?;
        let mut report = PurgeReport {
            cutoff: cutoff.to_string(),
            ..PurgeReport::default()
        };
        let key = self.key.verifying_key();
        let existing = if listing.checkpoint {
            let path = self.dir.join(CHECKPOINT);
            let cp: Checkpoint = read_json(&path)?;
            cp.check(&key)
                .map_err(|reason| AuditError::Corrupt { path, reason })?;
            let first =
                Month::from_segment_name(&cp.first_segment).ok_or_else(|| AuditError::Corrupt {
                    path: self.dir.join(CHECKPOINT),
                    reason: format!("bad first_segment `{}`", cp.first_segment),
                })?;
            Some((cp, first))
        } else {
            None
        };
        let chain_start = existing.as_ref().map(|(_, m)| *m);
        for (m, f) in &listing.months {
            if chain_start.is_some_and(|s| *m < s) {
                if f.segment {
                    remove(&segment_path(&self.dir, *m))?;
                    report.leftovers.push(m.segment_name());
                }
                if f.sig {
                    remove(&sig_path(&self.dir, *m))?;
                    report.leftovers.push(m.sig_name());
                }
            }
        }
        let last_segment = listing.last_segment();
        let open = w.open.as_ref().map(|o| o.month);
        let mut purge = Vec::new();
        for (m, f) in listing
            .months
            .range(chain_start.unwrap_or(Month { year: 0, month: 1 })..)
        {
            if *m >= cutoff || Some(*m) == last_segment || Some(*m) == open {
                break;
            }
            if !f.segment || !f.sig {
                log::warn!(
                    "audit purge stops at {}: segment or seal missing (run verify)",
                    m.segment_name()
                );
                break;
            }
            purge.push(*m);
        }
        let Some(&last_purged) = purge.last() else {
            if !report.leftovers.is_empty() {
                sync_dir(&self.dir)?;
            }
            return Ok(report);
        };
        let seal = read_seal(&self.dir, last_purged)?;
        seal.check(&key).map_err(|reason| AuditError::Corrupt {
            path: sig_path(&self.dir, last_purged),
            reason,
        })?;
        let Some((&first_kept, _)) = listing
            .months
            .range(last_purged..)
            .find(|(m, f)| **m > last_purged && f.segment)
        else {
            return Ok(report); // unreachable: the last segment is never purged
        };
        let kept_path = segment_path(&self.dir, first_kept);
        let first_seq = match fsutil::read_first_line(&kept_path)? {
            Some(line) => {
                let entry: Entry =
                    serde_json::from_slice(&line).map_err(|e| AuditError::Corrupt {
                        path: kept_path.clone(),
                        reason: format!("first line unreadable: {e}"),
                    })?;
                if entry.seq != seal.last_seq + 1 || entry.prev != seal.last_hash {
                    return Err(AuditError::Corrupt {
                        path: kept_path,
                        reason: format!(
                            "first entry (seq {}) does not follow {} (seq {}): refusing to purge; \
                             run verify",
                            entry.seq, seal.segment, seal.last_seq
                        ),
                    });
                }
                entry.seq
            }
            None => seal.last_seq + 1,
        };
        let mut purged_all = existing.map(|(cp, _)| cp.purged).unwrap_or_default();
        purged_all.extend(purge.iter().map(|m| m.segment_name()));
        let cp = Checkpoint::sign(
            &self.key,
            first_kept.segment_name(),
            first_seq,
            seal.last_hash,
            purged_all,
        );
        let json = serde_json::to_vec_pretty(&cp).map_err(|e| AuditError::Corrupt {
            path: self.dir.join(CHECKPOINT),
            reason: e.to_string(),
        })?;
        write_atomic(&self.dir, CHECKPOINT, &json)?;
        for m in &purge {
            remove(&segment_path(&self.dir, *m))?;
            remove(&sig_path(&self.dir, *m))?;
            report.purged.push(m.segment_name());
        }
        sync_dir(&self.dir)?;
        log::info!(
            "audit purge: removed {} segment(s) before {cutoff}; chain resumes at {} seq {first_seq}",
            purge.len(),
            first_kept.segment_name()
        );
        report.first_segment = Some(first_kept.segment_name());
        Ok(report)
    }
}

fn remove(path: &Path) -> Result<(), AuditError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(io_err(path, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rule() {
        let p = |months, j: Option<&str>| RetentionPolicy {
            months,
            justification: j.map(String::from),
        };
        for m in [6, 9, 12] {
            p(m, None).validate().unwrap();
        }
        for m in [1, 5, 13, 36] {
            let err = p(m, None).validate().unwrap_err().to_string();
            assert!(err.contains("justification"), "{err}");
            assert!(p(m, Some("   ")).validate().is_err());
            p(m, Some("délibération du conseil municipal n° 2026-14"))
                .validate()
                .unwrap();
        }
        assert!(p(0, Some("x")).validate().is_err());
        RetentionPolicy::default().validate().unwrap();
    }
}
