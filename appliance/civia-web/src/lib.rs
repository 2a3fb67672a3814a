//! The agents' web application and the administration console, in French (RGAA level AA):
//! plain HTML, CSS and ES modules, no build step, embedded in the binary at compile time
//! (every file under `assets/`, listed by `build.rs`) and served by civiad under `/app/`.
//!
//! Owns: the assets and their content types, and the security headers they are served with
//! (a strict Content-Security-Policy: no inline script, no third-party origin).
//!
//! Must never: fetch anything at run time from outside the box, hold credentials (the
//! browser's session cookie does; the pages send the CSRF token on each change), or decide
//! access: the API checks every request, the pages only hide what a role cannot use.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Path under `/app/`, e.g. `app.js`, `views/tasks.js`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The page every application URL serves.
pub const INDEX: &str = "index.html";

/// The asset at `path` (relative to `/app/`); `""` is the application's page.
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = if path.is_empty() { INDEX } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

/// Headers every page and asset is served with.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-cache"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_script_are_embedded() {
        let index = asset("").expect("index.html");
        assert!(index.content_type.starts_with("text/html"));
        let html = std::str::from_utf8(index.bytes).expect("utf-8");
        assert!(html.contains("lang=\"fr\""), "the page is in French");
        for a in ASSETS {
            assert!(
                !a.path.starts_with('/') && !a.path.contains(".."),
                "{}",
                a.path
            );
            if a.path.ends_with(".js") {
                assert!(a.content_type.starts_with("text/javascript"));
            }
        }
        assert!(asset("../Cargo.toml").is_none());
    }

    #[test]
    fn no_inline_script_or_remote_origin() {
        for a in ASSETS.iter().filter(|a| a.path.ends_with(".html")) {
            let html = std::str::from_utf8(a.bytes).expect("utf-8");
            assert!(!html.contains("<script>"), "{}: inline script", a.path);
            assert!(!html.contains(" onclick="), "{}: inline handler", a.path);
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "{}: remote URL",
                a.path
            );
        }
    }
}
