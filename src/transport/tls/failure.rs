//! TLS handshake failures as the application sees them: a sentence for the log and
//! `oasis_last_error()`, an `errno` for a blocking `wsOpenConnection`, and close code 1015.

use rustls::{AlertDescription, CertificateError, Error as RustlsError};
use std::fmt;
use std::io;

/// A failed TLS handshake or record, carried inside an `io::Error` through the transport.
#[derive(Debug, Clone)]
pub struct TlsFailure {
    pub errno: i32,
    pub what: String,
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for TlsFailure {}

/// The TLS failure inside an I/O error, if that is what it is.
pub fn tls_failure(err: &io::Error) -> Option<&TlsFailure> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<TlsFailure>())
}

fn certificate(problem: &CertificateError, whose: &str) -> (i32, String) {
    match problem {
        CertificateError::UnknownIssuer => (
            libc::EKEYREJECTED,
            format!("{whose} certificate is not signed by a trusted CA (unknown CA)"),
        ),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
            libc::EKEYEXPIRED,
            format!("{whose} certificate has expired"),
        ),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
            libc::EKEYEXPIRED,
            format!("{whose} certificate is not valid yet"),
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => (
            libc::EKEYREJECTED,
            format!("{whose} certificate does not match the host name (name mismatch)"),
        ),
        CertificateError::Revoked => (libc::EKEYREVOKED, format!("{whose} certificate is revoked")),
        CertificateError::BadSignature => (
            libc::EKEYREJECTED,
            format!("{whose} certificate has a bad signature"),
        ),
        CertificateError::ApplicationVerificationFailure => (
            libc::EKEYREJECTED,
            format!(
                "{whose} certificate was refused: not issued by an authority in tls-certificate-request-authority-names"
            ),
        ),
        other => (
            libc::EKEYREJECTED,
            format!("{whose} certificate is invalid: {other:?}"),
        ),
    }
}

/// Describes a rustls error from the point of view of `local_is_server`.
pub fn describe(err: &RustlsError, local_is_server: bool) -> TlsFailure {
    let peer = if local_is_server { "client" } else { "server" };
    let (errno, what) = match err {
        RustlsError::InvalidCertificate(problem) => certificate(problem, peer),
        RustlsError::NoCertificatesPresented => (
            libc::EACCES,
            "client certificate missing: this server requires one".to_string(),
        ),
        RustlsError::AlertReceived(alert) => {
            let (errno, what) = match alert {
                AlertDescription::CertificateRequired => (
                    libc::EACCES,
                    "client certificate missing: the server requires one".to_string(),
                ),
                AlertDescription::UnknownCA => (
                    libc::EKEYREJECTED,
                    format!("the {peer} does not trust our certificate (unknown CA)"),
                ),
                AlertDescription::BadCertificate
                | AlertDescription::CertificateUnknown
                | AlertDescription::AccessDenied
                | AlertDescription::UnsupportedCertificate => (
                    libc::EACCES,
                    format!("the {peer} refused our certificate ({alert:?})"),
                ),
                AlertDescription::CertificateExpired => (
                    libc::EKEYEXPIRED,
                    format!("the {peer} says our certificate has expired"),
                ),
                AlertDescription::ProtocolVersion
                | AlertDescription::HandshakeFailure
                | AlertDescription::InsufficientSecurity => (
                    libc::EPROTO,
                    format!(
                        "protocol mismatch: the {peer} has no TLS version or cipher suite in common ({alert:?})"
                    ),
                ),
                other => (
                    libc::EPROTO,
                    format!("the {peer} ended the TLS handshake with alert {other:?}"),
                ),
            };
            (errno, what)
        }
        RustlsError::PeerIncompatible(why) => (libc::EPROTO, format!("protocol mismatch: {why:?}")),
        RustlsError::InvalidMessage(why) => (
            libc::EPROTO,
            format!("not TLS, or a broken TLS message from the {peer}: {why:?}"),
        ),
        RustlsError::PeerMisbehaved(why) => (
            libc::EPROTO,
            format!("the {peer} broke the TLS protocol: {why:?}"),
        ),
        other => (libc::EPROTO, format!("TLS failed: {other}")),
    };
    TlsFailure {
        errno,
        what: format!("TLS handshake failed: {what}"),
    }
}
