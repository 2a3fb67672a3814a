//! The listeners: TCP (plain on loopback in trial mode, TLS otherwise) and the admin Unix
//! socket. Every TCP connection passes the LAN guard (source ranges) and the connection limits
//! before its TLS handshake; handshakes and request headers are bounded in time, so slow or
//! numerous clients cannot hold the box.

use axum::extract::ConnectInfo;
use axum::Router;
use civia_api::Principal;
use civia_config::IpNet;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// The guard and limits shared by every TCP listener of the daemon.
pub struct Gate {
    allowed: Vec<IpNet>,
    per_address: usize,
    header_timeout: Duration,
    total: Arc<Semaphore>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it frees its place.
struct Admitted {
    gate: Arc<Gate>,
    ip: IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What the per-source limit counts: an IPv4 address (IPv4-mapped IPv6 included), or an
/// IPv6 /64 — one host picks any of the 2^64 addresses of its prefix (SLAAC privacy
/// addresses), so counting /128s would give it no limit at all.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(prefix))
            }
        },
        v4 => v4,
    }
}

impl Gate {
    /// The API listener's gate.
    pub fn api(cfg: &civia_config::ApiConfig) -> Arc<Self> {
        Self::new(
            cfg.allowed_sources.clone(),
            cfg.max_connections,
            cfg.max_connections_per_address,
            cfg.header_timeout_secs,
        )
    }

    /// The admin listener's gate: its own places (agents filling the API listener never lock
    /// the administrator out) and its own source ranges (default: the API's).
    pub fn admin(cfg: &civia_config::Config) -> Arc<Self> {
        Self::new(
            cfg.admin
                .allowed_sources
                .clone()
                .unwrap_or_else(|| cfg.api.allowed_sources.clone()),
            cfg.admin.max_connections,
            cfg.admin.max_connections_per_address,
            cfg.api.header_timeout_secs,
        )
    }

    fn new(
        allowed: Vec<IpNet>,
        total: usize,
        per_address: usize,
        header_timeout_secs: u64,
    ) -> Arc<Self> {
        Arc::new(Self {
            allowed,
            per_address,
            header_timeout: Duration::from_secs(header_timeout_secs),
            total: Arc::new(Semaphore::new(total)),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The LAN guard first (before TLS or any byte is read), then the limits.
    fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<Admitted> {
        if !civia_config::source_allowed(&self.allowed, peer.ip()) {
            log::warn!(
                "refused connection from {peer}: outside api.allowed_sources (LAN-only guard)"
            );
            return None;
        }
        let Ok(permit) = self.total.clone().try_acquire_owned() else {
            log::warn!("refused connection from {peer}: api.max_connections reached");
            return None;
        };
        let ip = source_key(peer.ip());
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.per_address {
            log::warn!("refused connection from {peer}: api.max_connections_per_address reached");
            return None;
        }
        *n += 1;
        Some(Admitted {
            gate: self.clone(),
            ip,
            _permit: permit,
        })
    }
}

/// Serves HTTP/1.1 on one connection; `extra` is added to every request's extensions.
async fn serve_connection<I>(
    io: I,
    app: Router,
    header_timeout: Duration,
    peer: ConnectInfo<SocketAddr>,
    local_admin: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(peer);
            if local_admin {
                req.extensions_mut().insert(Principal::LocalAdmin);
            }
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        log::debug!("connection with {} ended: {e}", peer.0);
    }
}

async fn accept_tcp(listener: &TcpListener) -> (tokio::net::TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(x) => return x,
            Err(e) => {
                // Running out of file descriptors must not end the server.
                log::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves `app` on a TCP listener, over TLS when `tls` is given.
pub async fn serve_tcp(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    gate: Arc<Gate>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = accept_tcp(&listener) => accepted,
            _ = &mut shutdown => return,
        };
        let Some(admitted) = gate.admit(peer) else {
            continue;
        };
        let (acceptor, app, timeout) = (acceptor.clone(), app.clone(), gate.header_timeout);
        tokio::spawn(async move {
            let _admitted = admitted;
            let _ = tcp.set_nodelay(true);
            let info = ConnectInfo(peer);
            let Some(acceptor) = acceptor else {
                return serve_connection(tcp, app, timeout, info, false).await;
            };
            match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve_connection(tls, app, timeout, info, false).await,
                Ok(Err(e)) => log::info!("TLS handshake with {peer} refused: {e}"),
                Err(_) => log::info!("TLS handshake with {peer} timed out"),
            }
        });
    }
}

/// Who may use the admin socket, checked on the peer's credentials (`SO_PEERCRED`,
/// `SO_PEERGROUPS`), not only on the file's mode: root, civiad's own uid, members of the
/// admin group; never the workers' uid or gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminPeers {
    pub own_uid: u32,
    /// `[admin] socket_group`, when it exists.
    pub group: Option<u32>,
    pub worker_uid: u32,
    pub worker_gid: u32,
}

impl AdminPeers {
    pub fn from_config(cfg: &civia_config::Config) -> Self {
        Self {
            // SAFETY: geteuid has no preconditions and cannot fail.
            own_uid: unsafe { libc::geteuid() },
            group: group_id(&cfg.admin.socket_group),
            worker_uid: cfg.sandbox.worker_uid,
            worker_gid: cfg.sandbox.worker_gid,
        }
    }

    /// Whether a peer with these credentials is an administrator.
    pub fn allows(&self, uid: u32, gid: u32, groups: &[u32]) -> bool {
        if uid == self.worker_uid || gid == self.worker_gid || groups.contains(&self.worker_gid) {
            return false;
        }
        uid == 0
            || uid == self.own_uid
            || self.group.is_some_and(|g| gid == g || groups.contains(&g))
    }
}

/// The supplementary groups of a Unix socket's peer (`SO_PEERGROUPS`); empty when the kernel
/// does not say.
fn peer_groups(stream: &tokio::net::UnixStream) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    let mut groups = vec![0 as libc::gid_t; 64];
    for _ in 0..2 {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into the buffer we own and updates
        // `len`; the descriptor is the open socket `stream` holds.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(n);
            return groups;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::ERANGE) {
            return Vec::new();
        }
        groups.resize(n.max(groups.len() * 2), 0);
    }
    Vec::new()
}

/// The answer to a refused peer: 403 and the connection closed.
async fn refuse(mut stream: tokio::net::UnixStream) {
    use tokio::io::AsyncWriteExt;
    let body = r#"{"error":{"message":"access denied: this process may not administer Civia","type":"permission_error","param":null,"code":"admin_socket_forbidden"}}"#;
    let answer = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(answer.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// Serves the admin router on the CLI's Unix socket to the peers `peers` allows; the others
/// get 403 and a log line.
pub async fn serve_unix(
    listener: UnixListener,
    app: Router,
    peers: AdminPeers,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let local = ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0)));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    log::warn!("admin socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let allowed = match stream.peer_cred() {
            Ok(c) => {
                let groups = peer_groups(&stream);
                let ok = peers.allows(c.uid(), c.gid(), &groups);
                if !ok {
                    log::warn!(
                        "admin socket: refused a peer with uid {} gid {} (pid {}): not root, \
                         civiad's user or a member of the admin group",
                        c.uid(),
                        c.gid(),
                        c.pid().map_or_else(|| "?".into(), |p| p.to_string())
                    );
                }
                ok
            }
            Err(e) => {
                log::warn!("admin socket: refused a peer whose credentials are unknown: {e}");
                false
            }
        };
        if !allowed {
            tokio::spawn(refuse(stream));
            continue;
        }
        let app = app.clone();
        tokio::spawn(serve_connection(
            stream,
            app,
            Duration::from_secs(30),
            local,
            true,
        ));
    }
}

/// Binds the admin socket: stale socket removed, mode 0660, group `group` when it exists.
pub fn bind_admin_socket(path: &std::path::Path, group: &str) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    if let Some(gid) = group_id(group) {
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    Ok(listener)
}

fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: all-zero is a valid `group` (null pointers, zero gid) that getgrnam_r fills in.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    // SAFETY: getgrnam_r (the thread-safe variant) reads the NUL-terminated name we own and
    // writes only into `grp` and `buf`, whose sizes we pass; `found` is null or points to `grp`.
    let rc = unsafe {
        libc::getgrnam_r(
            c.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(grp.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(per_address: usize) -> Arc<Gate> {
        let all = vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
        Gate::new(all, 100, per_address, 10)
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[tokio::test]
    async fn one_ipv6_host_counts_once_whatever_address_of_its_64_it_uses() {
        let g = gate(2);
        let a = g.admit(peer("2001:db8:1:2::1")).expect("first");
        let b = g.admit(peer("2001:db8:1:2:aaaa::7")).expect("second");
        // A third address of the same /64 is the same source: refused.
        assert!(g.admit(peer("2001:db8:1:2:ffff:ffff:ffff:ffff")).is_none());
        // Another /64 has its own places.
        let c = g.admit(peer("2001:db8:1:3::1")).expect("other prefix");
        drop((a, b));
        assert!(
            g.admit(peer("2001:db8:1:2::9")).is_some(),
            "places given back"
        );
        drop(c);
    }

    #[tokio::test]
    async fn ipv4_and_mapped_ipv4_are_one_source() {
        let g = gate(1);
        let _a = g.admit(peer("192.168.1.10")).expect("first");
        assert!(g.admit(peer("::ffff:192.168.1.10")).is_none());
        assert!(g.admit(peer("192.168.1.11")).is_some());
    }
}
