//! Sends webhook deliveries: the `WebhookTransport` port of
//! `publinks-domain` over one HTTP/1 connection per attempt. The domain
//! resolves nothing itself and judges the addresses this crate resolves;
//! this crate then connects to exactly the address it was given (so a name
//! cannot resolve elsewhere between the check and the connection), sends
//! one POST, reads the status and never follows a redirect. TLS is rustls
//! on *ring* with the system's root certificates, as the rest of the build.

use async_trait::async_trait;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use publinks_domain::webhooks::{Attempt, Endpoint, WebhookTransport};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long one attempt may take, connection to status.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The transport of deployed and local servers alike. Its TLS settings (the
/// system's root certificates) are read at the first HTTPS delivery, once
/// per process: a function that never sends pays nothing at its cold start.
#[derive(Clone, Default)]
pub struct HttpTransport {
    /// The roots trusted instead of the system's, if any ([`HttpTransport::trusting`]).
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let roots = if self.tls.is_some() { "given" } else { "the system's" };
        f.debug_struct("HttpTransport").field("roots", &roots).finish()
    }
}

/// The process's TLS client settings, made at first use.
static TLS: OnceLock<tokio_rustls::TlsConnector> = OnceLock::new();

fn system_tls() -> &'static tokio_rustls::TlsConnector {
    TLS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            // A certificate the parser refuses is left out, as browsers do.
            let _ = roots.add(cert);
        }
        connector(roots)
    })
}

/// TLS client settings that verify servers against `roots`: rustls on
/// *ring*, its safe default versions, no client certificate.
fn connector(roots: rustls::RootCertStore) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

impl HttpTransport {
    /// A transport trusting the system's root certificates.
    pub fn new() -> Self {
        HttpTransport::default()
    }

    /// A transport trusting `roots` alone instead of the system's: for
    /// endpoints behind a private authority, and for tests that serve HTTPS
    /// with a certificate they made. Certificates are verified as ever
    /// (chain, name, validity); there is no way to turn that off.
    pub fn trusting(roots: rustls::RootCertStore) -> Self {
        HttpTransport { tls: Some(connector(roots)) }
    }

    async fn send(
        &self,
        endpoint: &Endpoint,
        ip: IpAddr,
        headers: &[(&str, String)],
        body: &str,
    ) -> Result<u16, String> {
        let tcp = tokio::net::TcpStream::connect(SocketAddr::new(ip, endpoint.port))
            .await
            .map_err(|e| format!("connection to {} failed: {e}", endpoint.host))?;
        let authority = if matches!(endpoint.port, 80 | 443) {
            endpoint.host.clone()
        } else {
            format!("{}:{}", endpoint.host, endpoint.port)
        };
        let request = hyper::Request::post(&endpoint.path)
            .header("host", authority)
            .header("content-type", "application/json")
            .header("user-agent", "publinks-webhooks/1");
        let request = headers.iter().fold(request, |r, (name, value)| r.header(*name, value));
        let request = request.body(Full::new(Bytes::from(body.to_string()))).map_err(|e| e.to_string())?;
        if endpoint.scheme == "https" {
            let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
                .map_err(|e| format!("{} is not a TLS server name: {e}", endpoint.host))?;
            let connector = match &self.tls {
                Some(given) => given,
                None => system_tls(),
            };
            let tls =
                connector.connect(name, tcp).await.map_err(|e| format!("TLS with {} failed: {e}", endpoint.host))?;
            exchange(TokioIo::new(tls), request).await
        } else {
            exchange(TokioIo::new(tcp), request).await
        }
    }
}

/// One request on a fresh HTTP/1 connection: the answer's status (its body is drained, not kept).
async fn exchange<T>(io: T, request: hyper::Request<Full<Bytes>>) -> Result<u16, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await.map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    // Up to a little of the answer is read so the connection ends cleanly.
    let _ = tokio::time::timeout(Duration::from_secs(2), response.into_body().collect()).await;
    driver.abort();
    Ok(status)
}

#[async_trait]
impl WebhookTransport for HttpTransport {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
        let found = tokio::time::timeout(ATTEMPT_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| format!("resolving {host} timed out"))?
            .map_err(|e| format!("resolving {host} failed: {e}"))?;
        Ok(found.map(|a| a.ip()).collect())
    }

    async fn post(&self, endpoint: &Endpoint, ip: IpAddr, headers: &[(&str, String)], body: &str) -> Attempt {
        match tokio::time::timeout(ATTEMPT_TIMEOUT, self.send(endpoint, ip, headers, body)).await {
            Ok(Ok(status)) => Attempt::Answered(status),
            Ok(Err(why)) => Attempt::Failed(why),
            Err(_) => {
                Attempt::Failed(format!("{} did not answer within {} s", endpoint.host, ATTEMPT_TIMEOUT.as_secs()))
            }
        }
    }
}
