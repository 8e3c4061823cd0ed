//! TLS: certificates from files (reloaded when they change), or a CA and serving certificate
//! generated at start; rustls with TLS 1.2 and 1.3 and ALPN h2 and http/1.1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files, watched and reloaded on change; with a client CA, clients must present a
    /// certificate it signed (mTLS, as an apiserver with an admission kubeconfig does).
    Files {
        cert: PathBuf,
        key: PathBuf,
        client_ca: Option<PathBuf>,
    },
    /// A CA and a serving certificate generated in memory at start, for `names` (DNS names or
    /// IP addresses); the CA is written to `ca_bundle_out` for clients and webhook configs.
    SelfSigned {
        names: Vec<String>,
        ca_bundle_out: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: String },
    #[error("{path}: no PEM private key found ({error})")]
    NoKey { path: String, error: String },
    #[error("certificate and key do not form a usable TLS identity: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("CA certificates: {0}")]
    ClientCa(String),
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write the CA bundle to {path}: {error}")]
    WriteBundle { path: String, error: std::io::Error },
}

/// A CA and a serving certificate signed by it, as PEM.
#[derive(Debug, Clone)]
pub struct GeneratedCerts {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA and a serving certificate for `names`, valid for `validity` from now.
pub fn generate_certs(
    names: &[String],
    validity: Duration,
) -> Result<GeneratedCerts, rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let ca_params = ca_params(validity)?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_cert_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);
    let (cert_pem, key_pem) = serving_cert(names, validity, &issuer)?;
    Ok(GeneratedCerts {
        ca_cert_pem,
        ca_key_pem,
        cert_pem,
        key_pem,
    })
}

/// Signs a new serving certificate for `names` with an existing CA (PEM), so the CA bundle
/// that webhook configurations carry stays valid.
pub fn renew_serving_cert(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    names: &[String],
    validity: Duration,
) -> Result<(String, String), rcgen::Error> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key)?;
    serving_cert(names, validity, &issuer)
}

fn ca_params(validity: Duration) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "initguard CA");
    params.distinguished_name = name;
    set_validity(&mut params, validity);
    Ok(params)
}

fn serving_cert(
    names: &[String],
    validity: Duration,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), rcgen::Error> {
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        names.first().map_or("initguard", String::as_str),
    );
    params.distinguished_name = name;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    set_validity(&mut params, validity);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn set_validity(params: &mut CertificateParams, validity: Duration) {
    let now = std::time::SystemTime::now();
    // A little slack before now absorbs clock skew between nodes.
    params.not_before = (now - Duration::from_mins(5)).into();
    params.not_after = (now + validity).into();
}

/// Builds the rustls server config: TLS 1.2 and 1.3, ALPN h2 then http/1.1.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
    source: &str,
) -> Result<rustls::ServerConfig, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: source.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::NoKey {
        path: source.to_owned(),
        error: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca_pem {
        Some(pem) => {
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots_from_pem(pem)?))
                .build()
                .map_err(|e| TlsError::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// A client config that trusts only the CAs in `ca_pem`: what a webhook client (the apiserver,
/// the load harness, the tests) uses to verify this server.
pub fn client_config(ca_pem: &[u8]) -> Result<rustls::ClientConfig, TlsError> {
    let roots = roots_from_pem(ca_pem)?;
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Reads the files of a [`TlsSource::Files`] into a server config.
pub fn load_files(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<rustls::ServerConfig, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| TlsError::Read {
            path: path.display().to_string(),
            error,
        })
    };
    let client_ca = client_ca.map(read).transpose()?;
    server_config(
        &read(cert)?,
        &read(key)?,
        client_ca.as_deref(),
        &format!("{} / {}", cert.display(), key.display()),
    )
}

/// The default names of a generated serving certificate: loopback, and every form under
/// which a Service `name` in `namespace` is reached.
pub fn service_names(service: Option<&str>, namespace: Option<&str>) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(service) = service {
        names.push(service.to_owned());
        if let Some(namespace) = namespace {
            names.push(format!("{service}.{namespace}"));
            names.push(format!("{service}.{namespace}.svc"));
            names.push(format!("{service}.{namespace}.svc.cluster.local"));
        }
    }
    names
}

/// The CA certificates of a PEM bundle, as trust roots.
fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| TlsError::ClientCa(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| TlsError::ClientCa(e.to_string()))?;
    }
    Ok(roots)
}
