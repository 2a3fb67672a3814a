//! Logging: journald (structured) when started by systemd, stderr otherwise. llama.cpp's own
//! chatter is kept at warning level unless debug logging is asked for.

use log::{LevelFilter, Log, Metadata, Record};

struct Filtered {
    inner: Box<dyn Log>,
    level: LevelFilter,
}

impl Filtered {
    fn allows(&self, m: &Metadata<'_>) -> bool {
        let noisy = m.target().starts_with("llama_cpp") || m.target().starts_with("tracing");
        let max = if noisy && self.level < LevelFilter::Debug {
            LevelFilter::Warn
        } else {
            self.level
        };
        m.level() <= max
    }
}

impl Log for Filtered {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.allows(m) && self.inner.enabled(m)
    }
    fn log(&self, r: &Record<'_>) {
        if self.allows(r.metadata()) {
            self.inner.log(r);
        }
    }
    fn flush(&self) {
        self.inner.flush();
    }
}

pub fn init(level: &str) {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .or_else(|| level.parse().ok())
        .unwrap_or(LevelFilter::Info);
    let under_systemd = std::env::var_os("JOURNAL_STREAM").is_some();
    let inner: Box<dyn Log> = match systemd_journal_logger::JournalLog::new() {
        Ok(j) if under_systemd => Box::new(j.with_syslog_identifier("civiad".into())),
        _ => Box::new(
            env_logger::Builder::new()
                .filter_level(LevelFilter::Trace)
                .format_target(false)
                .build(),
        ),
    };
    if log::set_boxed_logger(Box::new(Filtered { inner, level })).is_ok() {
        log::set_max_level(level);
    }
}
