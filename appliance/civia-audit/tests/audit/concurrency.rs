use super::*;
use std::sync::atomic::{AtomicI64, Ordering};
use std::thread;
use std::time::{Duration, Instant, UNIX_EPOCH};

fn hammer(log: &Arc<AuditLog>, threads: u32, per_thread: u32) -> Vec<u64> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let log = Arc::clone(log);
            thread::spawn(move || {
                (0..per_thread)
                    .map(|i| log.append(event(t * 1000 + i)).unwrap().seq)
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    seqs
}

#[test]
fn eight_threads_group_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = FakeClock::at("2026-06-01T12:00:00Z");
    let log = Arc::new(open(tmp.path(), &clock));
    let start = Instant::now();
    let seqs = hammer(&log, 8, 200);
    let elapsed = start.elapsed();
    assert_eq!(seqs, (1..=1600).collect::<Vec<_>>());
    let fsyncs = log.fsync_count();
    println!(
        "1600 appends from 8 threads: {fsyncs} fdatasyncs ({:.1} entries per sync) in {elapsed:?}",
        1600.0 / fsyncs as f64
    );
    assert!((1..=1600).contains(&fsyncs));
    let r = verify_ok(tmp.path());
    assert_eq!((r.entries, r.last_seq), (1600, Some(1600)));
}

#[test]
fn concurrent_appends_across_month_boundaries() {
    // Each clock read advances one hour: 1600 appends span three months (June to August), so segments are
    // sealed in the middle of groups.
    let tmp = tempfile::tempdir().unwrap();
    let start = t("2026-06-25T00:00:00Z")
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let now = Arc::new(AtomicI64::new(start));
    let clock: Clock = {
        let now = Arc::clone(&now);
        Arc::new(move || {
            UNIX_EPOCH + Duration::from_millis(now.fetch_add(3_600_000, Ordering::SeqCst) as u64)
        })
    };
    let log = Arc::new(AuditLog::open_with_clock(tmp.path(), key(), 6, clock).unwrap());
    let seqs = hammer(&log, 8, 200);
    assert_eq!(seqs, (1..=1600).collect::<Vec<_>>());
    let r = verify_ok(tmp.path());
    assert_eq!((r.entries, r.segments, r.sealed_segments), (1600, 3, 2));
}
