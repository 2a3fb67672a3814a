//! The box's backups while it runs: the service the admin plane uses and the daily backup to
//! the configured destination.

use civia_backup::{Backups, By, Settings, Target};
use civia_config::Config;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// The backups service of this configuration (`smb_key` encrypts the NAS password;
/// `escrow`: the TPM-sealed secrets every archive escrows).
pub fn service(
    cfg: &Config,
    audit: Arc<civia_audit::Audit>,
    smb_key: Zeroizing<[u8; 32]>,
    escrow: Option<civia_backup::Escrow>,
) -> Arc<Backups> {
    let b = &cfg.backup;
    let mut backups = Backups::new(
        &cfg.state_dir,
        env!("CARGO_PKG_VERSION"),
        Settings {
            destination: b.destination.clone(),
            // Checked when the configuration was loaded.
            smb: b.smb_share().ok().flatten(),
            hour_utc: b.hour_utc,
            keep: b.keep,
            max_age_hours: b.max_age_hours,
            kept_elsewhere: vec![
                ("secrets.dir", cfg.secrets_dir()),
                ("knowledge.dir", cfg.knowledge_dir()),
            ],
        },
        audit,
    )
    .with_smb_key(smb_key);
    if let Some(escrow) = escrow {
        backups = backups.with_escrow(escrow);
    }
    Arc::new(backups)
}

/// Runs the daily backup at `[backup] hour_utc` while a destination is configured (a box
/// without the key yet checks again at the next hour). A failure is kept in the backups'
/// status, in `/metrics` and in the audit trail; the next day tries again.
pub async fn daily(backups: Arc<Backups>) {
    if !backups.has_destination() {
        return;
    }
    let mut failed = false;
    loop {
        let now = civia_base::time::now_unix();
        let next_hour = (now / 3600 + 1) * 3600;
        // After a failure, again at the next hour rather than tomorrow.
        let next = match backups.next_run(now) {
            Some(daily) if !failed => daily,
            _ => next_hour,
        };
        let wait = u64::try_from(next - now).unwrap_or(1).max(1);
        tokio::time::sleep(Duration::from_secs(wait)).await;
        if !backups.has_key() {
            continue;
        }
        let b = backups.clone();
        let done = tokio::task::spawn_blocking(move || match b.begin(Target::Destination) {
            Ok(job) => job
                .to_destination(&By::default())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => {
                let why = e.to_string();
                b.record_refusal(Target::Destination, &By::default(), e);
                Err(why)
            }
        })
        .await;
        failed = !matches!(done, Ok(Ok(())));
        match done {
            Ok(Ok(())) => log::info!("daily backup written"),
            Ok(Err(e)) => log::error!("daily backup failed: {e}"),
            Err(e) => log::error!("daily backup task failed: {e}"),
        }
    }
}
