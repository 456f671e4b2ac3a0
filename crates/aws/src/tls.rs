//! Which certificate authorities the SDK clients trust. AWS's service
//! endpoints present certificates of Amazon Trust Services, so the clients
//! trust its five roots, built into the binary, and nothing else: no other
//! authority can vouch for a DynamoDB, S3, SQS or Secrets Manager endpoint,
//! and a cold start reads no certificate file. Loading the system's roots
//! instead (every file of the system's store, each certificate parsed) took
//! more than a quarter of `public-api`'s cold start (README, Deploying).
//! `AWS_CA_BUNDLE`, the variable AWS's CLI and SDKs read for the same
//! purpose, names a file of authorities to trust instead: for a network
//! that inspects TLS with its own authority.

use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::sync::Arc;

/// The environment variable naming a PEM file of the authorities to trust
/// instead of Amazon Trust Services'.
pub const ENV_CA_BUNDLE: &str = "AWS_CA_BUNDLE";

/// The root authorities of Amazon Trust Services (Amazon Root CA 1 to 4 and
/// Starfield Services Root Certificate Authority - G2), as PEM.
const AMAZON_TRUST_SERVICES: &[u8] = include_bytes!("amazon-trust-services.pem");

/// The authorities the SDK clients trust.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SdkRoots {
    /// Amazon Trust Services' roots, which issue AWS's endpoint certificates.
    #[default]
    AmazonTrustServices,
    /// The authorities of a PEM file (`AWS_CA_BUNDLE`), each one checked when read.
    Bundle {
        /// Where they were read from, for messages.
        path: String,
        /// The file's PEM text.
        pem: Arc<[u8]>,
    },
}

impl SdkRoots {
    /// The authorities of the PEM file at `path`: every certificate in it
    /// must be one a client can trust, and there must be one at least.
    pub fn from_bundle_file(path: &str) -> Result<Self, String> {
        let pem = std::fs::read(path).map_err(|e| format!("{ENV_CA_BUNDLE}: {path} cannot be read: {e}"))?;
        let count = trusted_count(&pem).map_err(|reason| format!("{ENV_CA_BUNDLE}: {path}: {reason}"))?;
        if count == 0 {
            return Err(format!("{ENV_CA_BUNDLE}: {path} holds no PEM certificate"));
        }
        Ok(SdkRoots::Bundle { path: path.to_string(), pem: pem.into() })
    }

    fn pem(&self) -> &[u8] {
        match self {
            SdkRoots::AmazonTrustServices => AMAZON_TRUST_SERVICES,
            SdkRoots::Bundle { pem, .. } => pem,
        }
    }
}

/// How many trust anchors `pem` holds; an error names the first certificate
/// that cannot be one (the SDK's client would stop the process on it).
fn trusted_count(pem: &[u8]) -> Result<usize, String> {
    let mut roots = rustls::RootCertStore::empty();
    for (n, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let cert = cert.map_err(|e| format!("certificate {} is not valid PEM: {e:?}", n + 1))?;
        roots.add(cert).map_err(|e| format!("certificate {} cannot be trusted: {e}", n + 1))?;
    }
    Ok(roots.len())
}

/// `roots` and nothing of the system's store (which the SDK would load at
/// the first client otherwise).
fn trust_store(roots: &SdkRoots) -> TrustStore {
    TrustStore::empty().with_native_roots(false).with_pem_certificate(roots.pem().to_vec())
}

/// The HTTPS client of every SDK client (and of the credential providers):
/// rustls on *ring*, trusting `roots` only. The SDK's default is rustls on
/// aws-lc, a C build that is slower to compile and larger, with the
/// system's roots.
pub fn https_client(roots: &SdkRoots) -> aws_sdk_dynamodb::config::SharedHttpClient {
    let tls = TlsContext::builder()
        .with_trust_store(trust_store(roots))
        .build()
        .expect("a trust store of PEM roots is a valid TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_built_in_roots_are_amazon_trust_services_five() {
        // SHA-256 of each certificate, as AWS publishes them.
        let expected = [
            "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e", // Amazon Root CA 1
            "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4", // Amazon Root CA 2
            "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4", // Amazon Root CA 3
            "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092", // Amazon Root CA 4
            "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5", // Starfield Services Root G2
        ];
        let found: Vec<String> = CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES)
            .map(|cert| Sha256::digest(cert.unwrap().as_ref()).iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        assert_eq!(found, expected);
        assert_eq!(trusted_count(AMAZON_TRUST_SERVICES), Ok(5));
    }

    #[test]
    fn the_system_store_is_never_read() {
        // The SDK's store has no accessor: its Debug form says what it holds.
        for roots in
            [SdkRoots::AmazonTrustServices, SdkRoots::Bundle { path: "b".into(), pem: b"pem".as_slice().into() }]
        {
            let store = format!("{:?}", trust_store(&roots));
            assert!(store.contains("enable_native_roots: false"), "{store}");
        }
    }

    #[test]
    fn a_bundle_must_hold_certificates_a_client_can_trust() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = SdkRoots::from_bundle_file(missing.to_str().unwrap()).unwrap_err();
        assert!(err.starts_with("AWS_CA_BUNDLE: ") && err.contains("cannot be read"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let err = SdkRoots::from_bundle_file(empty.to_str().unwrap()).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let err = SdkRoots::from_bundle_file(garbage.to_str().unwrap()).unwrap_err();
        assert!(err.contains("certificate 1 cannot be trusted"), "{err}");

        let good = dir.path().join("good.pem");
        let authority = Authority::new();
        std::fs::write(&good, &authority.pem).unwrap();
        let roots = SdkRoots::from_bundle_file(good.to_str().unwrap()).unwrap();
        assert!(matches!(&roots, SdkRoots::Bundle { pem, .. } if **pem == *authority.pem.as_bytes()));
    }

    /// An authority made for the test, and a certificate it signed for `localhost`.
    struct Authority {
        pem: String,
        server_cert: CertificateDer<'static>,
        server_key: PrivateKeyDer<'static>,
    }

    impl Authority {
        fn new() -> Self {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, "publinks test authority");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let key = KeyPair::generate().unwrap();
            let der = params.self_signed(&key).unwrap().der().clone();
            let pem = pem_of(&der);
            let issuer = Issuer::new(params, key);
            let server_key = KeyPair::generate().unwrap();
            let server =
                CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&server_key, &issuer).unwrap();
            Authority {
                pem,
                server_cert: server.der().clone(),
                server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            }
        }
    }

    /// `der` as a PEM certificate.
    fn pem_of(der: &[u8]) -> String {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = text.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect();
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
    }

    /// An HTTPS server on loopback with `authority`'s certificate, answering
    /// every request as DynamoDB's `ListTables` would (one table, `reached`);
    /// the count is of the requests that got past the TLS handshake.
    async fn endpoint(authority: &Authority) -> (String, Arc<AtomicUsize>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![authority.server_cert.clone()], authority.server_key.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, counted) = (acceptor.clone(), counted.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let body = r#"{"TableNames":["reached"]}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        (format!("https://localhost:{port}"), requests)
    }

    fn dynamodb(roots: &SdkRoots, url: &str) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(https_client(roots))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .region(Region::new("us-east-1"))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .endpoint_url(url)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    #[tokio::test]
    async fn the_sdk_clients_trust_amazon_trust_services_alone_unless_a_bundle_names_others() {
        let authority = Authority::new();
        let (url, requests) = endpoint(&authority).await;

        let refused = dynamodb(&SdkRoots::AmazonTrustServices, &url).list_tables().send().await;
        let err = aws_sdk_dynamodb::error::DisplayErrorContext(refused.unwrap_err()).to_string();
        assert!(err.contains("UnknownIssuer") || err.contains("invalid peer certificate"), "{err}");
        assert_eq!(requests.load(Ordering::SeqCst), 0, "nothing is sent to an endpoint the roots do not vouch for");

        let bundle = SdkRoots::Bundle { path: "test".into(), pem: authority.pem.as_bytes().into() };
        let tables = dynamodb(&bundle, &url).list_tables().send().await.unwrap();
        assert_eq!(tables.table_names(), ["reached"]);
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }
}
