//! Deliveries over HTTPS through the production client (hyper on rustls),
//! against a TLS server on loopback whose certificates the test makes: the
//! body and signature arrive; a certificate for another name, or from an
//! authority the client does not trust, is refused before anything is
//! sent; a redirect is answered, never followed.

use publinks_domain::webhooks::{Attempt, Endpoint, SIGNATURE_HEADER, WebhookTransport, signature, verify_signature};
use publinks_outbound::HttpTransport;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The name the endpoints are called by (never resolved: the transport is
/// handed the address, as the domain hands it the one it judged).
const HOST: &str = "hooks.publinks.test";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A certificate authority made for one test.
struct Authority {
    der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    /// An authority named `name` (authorities of one name would be taken
    /// for one another, and refused for a bad signature instead).
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Authority { der, issuer: Issuer::new(params, key) }
    }

    /// A server certificate for `name`, and its key.
    fn certify(&self, name: &str) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()]).unwrap().signed_by(&key, &self.issuer).unwrap();
        (cert.der().clone(), PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())))
    }

    /// A client that trusts this authority alone.
    fn client(&self) -> HttpTransport {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        HttpTransport::trusting(roots)
    }
}

/// One request as the server read it.
#[derive(Clone, Debug)]
struct Received {
    head: String,
    body: String,
}

/// An HTTPS server on loopback presenting `cert` for any name, answering
/// every request with `answer` (a status line and headers): its port, and
/// what it received.
async fn serve(
    cert: (CertificateDer<'static>, PrivateKeyDer<'static>),
    answer: &'static str,
) -> (u16, Arc<Mutex<Vec<Received>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.0], cert.1)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let kept = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, kept) = (acceptor.clone(), kept.clone());
            tokio::spawn(async move {
                // A refused handshake ends here, with nothing read.
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                if let Some(request) = read_request(&mut tls).await {
                    kept.lock().unwrap().push(request);
                    let _ = tls.write_all(format!("{answer}content-length: 0\r\n\r\n").as_bytes()).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (port, received)
}

/// Reads one HTTP/1 request: its head, and a body of its `content-length`.
async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<Received> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        bytes.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(bytes[..head_end].to_vec()).ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))?
        .parse()
        .ok()?;
    while bytes.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        bytes.extend_from_slice(&chunk[..n]);
    }
    Some(Received { head, body: String::from_utf8(bytes[head_end..head_end + length].to_vec()).ok()? })
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint { scheme: "https".into(), host: HOST.into(), port, path: "/in?k=1".into() }
}

/// The value of header `name` in a request's head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

#[tokio::test]
async fn a_delivery_over_https_arrives_signed_to_a_server_the_client_trusts() {
    let authority = Authority::new("Test authority");
    let (port, received) = serve(authority.certify(HOST), "HTTP/1.1 204 No Content\r\n").await;
    let body = r#"{"id":"d1","type":"link.first_opened"}"#;
    let now = chrono::Utc::now();
    let headers = [(SIGNATURE_HEADER, signature("whsec_test", now.timestamp(), body))];
    let attempt = authority.client().post(&endpoint(port), LOOPBACK, &headers, body).await;
    assert_eq!(attempt, Attempt::Answered(204));
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    let Received { head, body: got } = &received[0];
    assert!(head.starts_with("POST /in?k=1 HTTP/1.1\r\n"), "{head}");
    assert_eq!(header(head, "host").as_deref(), Some(format!("{HOST}:{port}").as_str()));
    assert_eq!(got, body, "the body arrives as signed");
    let sent = header(head, SIGNATURE_HEADER).expect("the signature arrives");
    assert!(verify_signature("whsec_test", &sent, got, now));
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_before_anything_is_sent() {
    let authority = Authority::new("Test authority");
    let (port, received) = serve(authority.certify("elsewhere.publinks.test"), "HTTP/1.1 200 OK\r\n").await;
    let attempt = authority.client().post(&endpoint(port), LOOPBACK, &[], "{}").await;
    let Attempt::Failed(why) = attempt else { panic!("sent to a server of another name: {attempt:?}") };
    assert!(why.contains("TLS") && why.contains("not valid for name"), "{why}");
    assert!(received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_authority_is_refused_before_anything_is_sent() {
    let (trusted, stranger) = (Authority::new("Trusted test authority"), Authority::new("Stranger"));
    let (port, received) = serve(stranger.certify(HOST), "HTTP/1.1 200 OK\r\n").await;
    let attempt = trusted.client().post(&endpoint(port), LOOPBACK, &[], "{}").await;
    let Attempt::Failed(why) = attempt else { panic!("sent to an untrusted server: {attempt:?}") };
    assert!(why.contains("TLS") && why.contains("UnknownIssuer"), "{why}");
    assert!(received.lock().unwrap().is_empty());
    // Nor does the system's store trust a certificate made here.
    let attempt = HttpTransport::new().post(&endpoint(port), LOOPBACK, &[], "{}").await;
    assert!(matches!(attempt, Attempt::Failed(ref why) if why.contains("UnknownIssuer")), "{attempt:?}");
}

#[tokio::test]
async fn a_redirect_is_answered_not_followed() {
    let authority = Authority::new("Test authority");
    let (elsewhere, reached) = serve(authority.certify(HOST), "HTTP/1.1 200 OK\r\n").await;
    let moved: &'static str =
        format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: https://{HOST}:{elsewhere}/in\r\n").leak();
    let (port, received) = serve(authority.certify(HOST), moved).await;
    let attempt = authority.client().post(&endpoint(port), LOOPBACK, &[], "{}").await;
    assert_eq!(attempt, Attempt::Answered(307), "the redirect's status is the attempt's answer");
    assert_eq!(received.lock().unwrap().len(), 1);
    assert!(reached.lock().unwrap().is_empty(), "the redirect's target was never asked");
}
