//! TLS on the gRPC port (rustls through tonic, ring provider) and on the
//! HTTP port (the web view, [`http_config`]).
//!
//! Every node has a certificate from the cluster CA and presents it both as
//! a server and, when it dials a peer, as a client. The port asks clients
//! for a certificate but does not require one: API clients authenticate
//! with a bearer token. The internal Raft service, however, is open to
//! members only: a call without a certificate from the cluster CA is
//! refused before it is decoded (see [`members_only`]). That is the trust
//! boundary: whoever holds a node certificate can append to the log and
//! forward requests in any user's name, so the CA must sign node
//! certificates only (`scripts/certs.sh`).

use std::path::{Path, PathBuf};

use tokio_rustls::rustls;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tonic::{Request, Status};

/// The PEM files of a node's TLS setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate (chain), PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// The cluster CA that signed every node's certificate, PEM.
    pub ca: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} holds no PEM block (-----BEGIN ...)")]
    NotPem { what: &'static str, path: PathBuf },
    #[error("TLS on the HTTP port: {0}")]
    Http(String),
}

struct Pems {
    cert: Vec<u8>,
    key: Vec<u8>,
    ca: Vec<u8>,
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    // rustls parses the files only at the first handshake; a file that is
    // not PEM at all is better refused at startup, with its name.
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(TlsError::NotPem {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

fn read(files: &TlsFiles) -> Result<Pems, TlsError> {
    Ok(Pems {
        cert: read_pem("tls_cert", &files.cert)?,
        key: read_pem("tls_key", &files.key)?,
        ca: read_pem("tls_ca", &files.ca)?,
    })
}

/// The server side: this node's identity; client certificates from the
/// cluster CA are verified when offered, and optional.
pub fn server_config(files: &TlsFiles) -> Result<ServerTlsConfig, TlsError> {
    let pems = read(files)?;
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(pems.cert, pems.key))
        .client_ca_root(Certificate::from_pem(pems.ca))
        .client_auth_optional(true))
}

/// The HTTP port's TLS (the web view): this node's certificate, as on the
/// gRPC port, read by the same code; no client certificate asked for, since a
/// browser would prompt for one.
pub fn http_config(files: &TlsFiles) -> Result<std::sync::Arc<rustls::ServerConfig>, TlsError> {
    let pems = read(files)?;
    let certs = rustls_pemfile::certs(&mut pems.cert.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Http(format!("tls_cert {}: {e}", files.cert.display())))?;
    let key = rustls_pemfile::private_key(&mut pems.key.as_slice())
        .map_err(|e| TlsError::Http(format!("tls_key {}: {e}", files.key.display())))?
        .ok_or_else(|| {
            TlsError::Http(format!(
                "tls_key {} holds no private key",
                files.key.display()
            ))
        })?;
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsError::Http(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| TlsError::Http(format!("tls_cert {}: {e}", files.cert.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// The client side towards peers: trust only the cluster CA, and present
/// this node's certificate.
pub fn peer_config(files: Option<&TlsFiles>) -> Result<Option<ClientTlsConfig>, TlsError> {
    let Some(files) = files else {
        return Ok(None);
    };
    let pems = read(files)?;
    Ok(Some(
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(pems.ca))
            .identity(Identity::from_pem(pems.cert, pems.key)),
    ))
}

/// Interceptor of the internal Raft service on a TLS node: only a caller
/// that presented a certificate the cluster CA signed (rustls has verified
/// it during the handshake) gets through.
#[allow(clippy::result_large_err)]
pub fn members_only(request: Request<()>) -> Result<Request<()>, Status> {
    if request.peer_certs().is_some_and(|certs| !certs.is_empty()) {
        Ok(request)
    } else {
        Err(Status::permission_denied(
            "the internal Raft service serves cluster members only: present a node certificate signed by the cluster CA",
        ))
    }
}
