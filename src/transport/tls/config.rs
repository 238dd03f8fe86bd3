//! rustls configurations built from the parameter keys, with a precise error for every way a
//! certificate or key file can be wrong.

use super::names::common_name;
use crate::config::{ClientTls, ServerTls};
use crate::error::{Error, Result};
use crate::log::log;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Where the client looks for trust anchors when `ca-certs-file-path` is absent (Debian's
/// ca-certificates bundle, also used by most embedded Linux distributions).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(&format!("{key} '{}'", path.display()), &e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid(format!(
            "{key} '{}' is empty",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Every certificate in a PEM file.
fn load_certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(key, path)?;
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::invalid(format!("{key} '{}': broken PEM: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(Error::invalid(format!(
            "{key} '{}' holds no certificate",
            path.display()
        )));
    }
    Ok(certificates)
}

/// The private key of a PEM file, checked to be a kind this library can sign with.
fn load_private_key(key: &str, path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read(key, path)?;
    let text = String::from_utf8_lossy(&pem);
    let shown = path.display();
    if text.contains("-----BEGIN DSA PRIVATE KEY-----") {
        return Err(Error::new(
            libc::ENOTSUP,
            format!(
                "{key} '{shown}' is a DSA key: DSA is not supported (use RSA, ECDSA P-256/P-384 or Ed25519)"
            ),
        ));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(Error::new(
            libc::ENOTSUP,
            format!(
                "{key} '{shown}' is encrypted: give an unencrypted key (openssl pkey -in KEY -out PLAIN)"
            ),
        ));
    }
    let private_key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        Error::invalid(format!("{key} '{shown}' holds no usable private key ({e})"))
    })?;
    provider().key_provider.load_private_key(private_key.clone_key()).map_err(|e| {
        Error::new(
            libc::ENOTSUP,
            format!("{key} '{shown}': key type not supported ({e}); use RSA, ECDSA P-256/P-384 or Ed25519"),
        )
    })?;
    Ok(private_key)
}

/// Certificate chain + key, checked to belong together.
fn load_identity(
    cert_file: &Path,
    key_file: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = load_certificates("cert-file-path", cert_file)?;
    let private_key = load_private_key("pkey-file-path", key_file)?;
    let signing_key = provider()
        .key_provider
        .load_private_key(private_key.clone_key())
        .map_err(|e| Error::invalid(format!("pkey-file-path: {e}")))?;
    if let Err(rustls::Error::InconsistentKeys(_)) =
        CertifiedKey::new(chain.clone(), signing_key).keys_match()
    {
        return Err(Error::invalid(format!(
            "the private key in '{}' does not match the certificate in '{}'",
            key_file.display(),
            cert_file.display()
        )));
    }
    Ok((chain, private_key))
}

/// Trust anchors from several PEM files (newline-separated in the key's value).
fn load_roots(key: &str, files: &[impl AsRef<Path>]) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for file in files {
        let file = file.as_ref();
        for certificate in load_certificates(key, file)? {
            roots.add(certificate).map_err(|e| {
                Error::invalid(format!(
                    "{key} '{}': unusable CA certificate: {e}",
                    file.display()
                ))
            })?;
        }
    }
    Ok(roots)
}

fn tls_error(what: &str, err: impl std::fmt::Display) -> Error {
    Error::invalid(format!("{what}: {err}"))
}

/// The configuration of a wss server; fails when the server is created, never per handshake.
pub fn server_config(tls: &ServerTls) -> Result<Arc<rustls::ServerConfig>> {
    let (chain, private_key) = load_identity(&tls.cert_file, &tls.key_file)?;
    let verifier = if tls.ca_files.is_empty() {
        WebPkiClientVerifier::no_client_auth()
    } else {
        let roots = Arc::new(load_roots("ca-certs-file-path", &tls.ca_files)?);
        if tls.authority_names.is_empty() {
            WebPkiClientVerifier::builder_with_provider(roots, provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| tls_error("ca-certs-file-path", e))?
        } else {
            AuthorityVerifier::build(roots, &tls.authority_names)?
        }
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("TLS versions", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private_key)
        .map_err(|e| tls_error("cert-file-path / pkey-file-path", e))?;
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// The configuration of one client connection to `host`.
pub fn client_config(tls: &ClientTls) -> Result<Arc<rustls::ClientConfig>> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("TLS versions", e))?;
    let builder = if tls.disable_certificate_validation {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(
                provider().signature_verification_algorithms,
            )))
    } else if tls.ca_files.is_empty() {
        let roots = load_roots("system CA bundle", &[SYSTEM_CA_BUNDLE]).map_err(|e| {
            Error::new(
                e.errno,
                format!(
                    "{} (give ca-certs-file-path, or install the system CA bundle)",
                    e.message
                ),
            )
        })?;
        builder.with_root_certificates(roots)
    } else {
        builder.with_root_certificates(load_roots("ca-certs-file-path", &tls.ca_files)?)
    };
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let (chain, private_key) = load_identity(cert_file, key_file)?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|e| tls_error("cert-file-path / pkey-file-path", e))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.enable_sni = tls.use_sni;
    Ok(Arc::new(config))
}

/// The server name to verify and (for names, with `tls-use-sni`) to send.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_string())
        .map_err(|_| Error::invalid(format!("'{host}' is not a valid TLS server name")))
}

/// `tls-disable-certificate-validation`: any server certificate is accepted; the handshake
/// signatures are still checked, so the session is encrypted to whoever holds that key.
#[derive(Debug)]
struct AcceptAnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `tls-certificate-request-authority-names`: client certificates are mandatory, must chain to
/// `ca-certs-file-path` and must be issued directly by one of the named authorities, whose
/// names are also what the CertificateRequest lists.
#[derive(Debug)]
struct AuthorityVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    /// Subject names (DER contents) of the allowed issuers.
    allowed: Vec<Vec<u8>>,
    hints: Vec<DistinguishedName>,
}

impl AuthorityVerifier {
    fn build(roots: Arc<RootCertStore>, names: &[String]) -> Result<Arc<dyn ClientCertVerifier>> {
        let mut allowed = Vec::new();
        for name in names {
            let subject = roots
                .roots
                .iter()
                .map(|anchor| anchor.subject.as_ref())
                .find(|subject| common_name(subject).as_deref() == Some(name.as_str()))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "tls-certificate-request-authority-names: no certificate in ca-certs-file-path has the common name '{name}'"
                    ))
                })?;
            allowed.push(subject.to_vec());
        }
        let hints: Vec<DistinguishedName> = allowed
            .iter()
            .map(|s| DistinguishedName::in_sequence(s))
            .collect();
        let inner = WebPkiClientVerifier::builder_with_provider(roots, provider())
            .clear_root_hint_subjects()
            .add_root_hint_subjects(hints.clone())
            .build()
            .map_err(|e| tls_error("ca-certs-file-path", e))?;
        Ok(Arc::new(AuthorityVerifier {
            inner,
            allowed,
            hints,
        }))
    }
}

impl ClientCertVerifier for AuthorityVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let certificate = webpki::EndEntityCert::try_from(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self
            .allowed
            .iter()
            .any(|subject| subject.as_slice() == certificate.issuer())
        {
            return Ok(verified);
        }
        log!(
            Warn,
            "client certificate from '{}' refused: not in tls-certificate-request-authority-names",
            common_name(certificate.issuer()).unwrap_or_else(|| "?".into())
        );
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::server_config;
    use crate::config::{HttpServerConfig, ServerConfig};

    /// An HTTP server's TLS keys reach the loader a WebSocket server's reach, so a bad file
    /// fails both with the same errno and sentence.
    #[test]
    fn http_and_websocket_servers_refuse_the_same_files_alike() {
        let dir = std::env::temp_dir().join(format!("oasis-tls-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "\n").unwrap();
        let empty = empty.to_str().unwrap();
        for (cert, key, errno) in [
            ("/nonexistent/chain.pem", empty, libc::ENOENT),
            (empty, "/nonexistent/key.pem", libc::EINVAL),
        ] {
            let list: Vec<(String, String)> = [
                ("port", "0"),
                ("cert-file-path", cert),
                ("pkey-file-path", key),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let ws = ServerConfig::parse(&list).unwrap().tls.unwrap();
            let http = HttpServerConfig::parse(&list).unwrap().tls.unwrap();
            let ws = server_config(&ws).err().unwrap();
            let http = server_config(&http).err().unwrap();
            assert_eq!(http, ws);
            assert_eq!(http.errno, errno, "{}", http.message);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
