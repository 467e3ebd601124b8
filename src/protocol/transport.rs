//! QUIC endpoint set-up: each side's identity certificate, mutual TLS, and
//! transport settings for bulk transfer on a LAN.
//!
//! A LAN has no CA. A peer's ID is instead the hash of its own self-signed
//! certificate (as Syncthing's device IDs are), and both sides present one:
//! TLS 1.3 proves each side holds the certificate's key, so the ID the
//! certificate hashes to is proven too. Any certificate is accepted at the
//! TLS layer; the mesh then refuses a hello whose ID is not the one the
//! connection's certificate proves (`peer_id_of_connection`).

use anyhow::{Context, Result};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Largest UDP payload this peer sends (after MTU discovery) or accepts.
const MAX_UDP_PAYLOAD: u16 = 65_527;
/// How long a silent connection lives; see `transport`.
pub const IDLE_TIMEOUT_MS: u32 = 4_000;
pub const ALPN: &[u8] = b"lanspread/1";
/// ALPN of the extra connections a download opens to each source: they carry
/// chunk requests only (no hello, no library), so one source's bytes are
/// decrypted by more than one connection task and thus more than one core.
pub const ALPN_BULK: &[u8] = b"lanspread-bulk/1";
/// Server name the client presents; the certificate is not verified against it.
pub const SERVER_NAME: &str = "lanspread";

/// A certificate and its private key: what a side presents in the handshake.
/// Its peer ID is derived, never claimed.
#[derive(Debug)]
pub struct Identity {
    pub id: String,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Identity {
    /// A new key pair and self-signed certificate (ECDSA P-256).
    pub fn generate() -> Result<Self> {
        let key = rcgen::KeyPair::generate().context("generating a key pair")?;
        let cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .context("certificate parameters")?
            .self_signed(&key)
            .context("signing the certificate")?;
        Self::from_der(cert.der().to_vec(), key.serialize_der())
    }

    /// An identity from a stored certificate and PKCS#8 key (both DER).
    pub fn from_der(cert: Vec<u8>, key: Vec<u8>) -> Result<Self> {
        // A key that does not parse would only fail at the first handshake.
        rcgen::KeyPair::try_from(key.as_slice()).context("the private key does not parse")?;
        Ok(Self {
            id: peer_id_of(&cert),
            cert: CertificateDer::from(cert),
            key: PrivatePkcs8KeyDer::from(key),
        })
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert
    }

    pub fn key_der(&self) -> &[u8] {
        self.key.secret_pkcs8_der()
    }

    fn chain(
        &self,
    ) -> (
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        (vec![self.cert.clone()], self.key.clone_key().into())
    }
}

/// The peer ID a certificate proves: the first 16 bytes of its SHA-256, in
/// hex (32 digits, the format peer IDs have always had).
pub fn peer_id_of(cert_der: &[u8]) -> String {
    hex::encode(&Sha256::digest(cert_der)[..16])
}

/// The peer ID the remote side of `conn` proved in the handshake.
pub fn peer_id_of_connection(conn: &quinn::Connection) -> Option<String> {
    let certs = conn
        .peer_identity()?
        .downcast::<Vec<CertificateDer<'static>>>()
        .ok()?;
    certs.first().map(|c| peer_id_of(c))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    // AES-128-GCM first: it is the cheapest suite with AES-NI.
    p.cipher_suites.sort_by_key(|s| {
        if s.suite() == rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 {
            0
        } else {
            1
        }
    });
    Arc::new(p)
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    // A killed peer sends nothing; keep-alives plus a short idle timeout turn
    // that into a closed connection within seconds so chunks can be retried.
    t.keep_alive_interval(Some(Duration::from_millis(750)));
    t.max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(
        IDLE_TIMEOUT_MS,
    ))));
    // A LAN's bandwidth-delay product is well under a megabyte; these
    // windows cover a few milliseconds of a descheduled reader at 1 GB/s
    // while keeping what quinn buffers per peer small (the 16/64/64 MiB
    // used before cost >130 MiB RSS per peer and were no faster).
    t.stream_receive_window(quinn::VarInt::from_u32(2 << 20));
    t.receive_window(quinn::VarInt::from_u32(8 << 20));
    t.send_window(8 << 20);
    // Bigger datagrams cost the same per-packet work (framing, crypto setup,
    // ACK tracking, syscalls) for far more bytes. The first packets stay at
    // QUIC's safe 1200 bytes; MTU discovery then probes upwards and keeps
    // what the path carries: ~1450 on an Ethernet LAN, 9000-byte jumbo
    // frames where present, up to 64 KiB on loopback.
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(MAX_UDP_PAYLOAD);
    t.mtu_discovery_config(Some(mtu));
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(256));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(16));
    Arc::new(t)
}

#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server's side of `AcceptAnyCert`: a client presenting a certificate
/// (its identity), whichever one it is, must prove its key.
#[derive(Debug)]
struct RequireAnyClientCert(AcceptAnyCert);

impl rustls::server::danger::ClientCertVerifier for RequireAnyClientCert {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    /// Optional at the TLS layer, so that a client without one (an older
    /// peer) reaches the hello check and is refused there with a log line
    /// that says why, instead of a bare handshake failure.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::client::danger::ServerCertVerifier::verify_tls12_signature(
            &self.0, message, cert, dss,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::client::danger::ServerCertVerifier::verify_tls13_signature(
            &self.0, message, cert, dss,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::client::danger::ServerCertVerifier::supported_verify_schemes(&self.0)
    }
}

/// A client config offering `alpn` (`ALPN` or `ALPN_BULK`) and presenting
/// `identity`.
pub fn client_config(alpn: &[u8], identity: &Identity) -> Result<quinn::ClientConfig> {
    let provider = provider();
    let (chain, key) = identity.chain();
    let mut client_tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 client config")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
        .with_client_auth_cert(chain, key)
        .context("installing the client certificate")?;
    client_tls.alpn_protocols = vec![alpn.to_vec()];
    let mut client = quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::try_from(client_tls).context("QUIC client config")?,
    ));
    client.transport_config(transport());
    Ok(client)
}

/// Binds a QUIC endpoint that both accepts and opens connections, and
/// presents `identity` either way.
pub fn endpoint(listen: SocketAddr, identity: &Identity) -> Result<quinn::Endpoint> {
    let provider = provider();
    let (chain, key) = identity.chain();
    let mut server_tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 server config")?
        .with_client_cert_verifier(Arc::new(RequireAnyClientCert(AcceptAnyCert(
            provider.clone(),
        ))))
        .with_single_cert(chain, key)
        .context("installing the certificate")?;
    server_tls.alpn_protocols = vec![ALPN.to_vec(), ALPN_BULK.to_vec()];
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(
        QuicServerConfig::try_from(server_tls).context("QUIC server config")?,
    ));
    server.transport_config(transport());

    let client = client_config(ALPN, identity)?;

    let socket = std::net::UdpSocket::bind(listen)
        .with_context(|| format!("binding QUIC endpoint on {listen}"))?;
    for (opt, name) in [
        (libc::SO_RCVBUF, "SO_RCVBUF"),
        (libc::SO_SNDBUF, "SO_SNDBUF"),
    ] {
        if let Err(e) = set_buffer(&socket, opt) {
            tracing::warn!("cannot set {name}: {e}");
        }
    }
    let runtime = quinn::default_runtime().context("no async runtime for QUIC")?;
    let mut config = quinn::EndpointConfig::default();
    // Accept (and announce) datagrams as large as MTU discovery may find.
    config
        .max_udp_payload_size(MAX_UDP_PAYLOAD)
        .context("max UDP payload size")?;
    let socket = runtime
        .wrap_udp_socket(socket)
        .context("registering the QUIC socket")?;
    let socket = Arc::new(GsoSplit(socket));
    let mut endpoint =
        quinn::Endpoint::new_with_abstract_socket(config, Some(server), socket, runtime)
            .with_context(|| format!("starting the QUIC endpoint on {listen}"))?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// Largest sum of datagrams one GSO send may carry: Linux refuses a UDP send
/// whose payloads add up to more than an IPv4 packet could hold.
const MAX_GSO_BYTES: usize = 65_535 - 20 - 8;

/// Bytes per GSO send for datagrams of `segment` bytes: as many whole
/// datagrams as fit, at least one.
fn gso_send_size(segment: usize) -> usize {
    (MAX_GSO_BYTES / segment).max(1) * segment
}

/// The runtime's UDP socket, with GSO batches cut to what the kernel takes.
/// quinn batches up to ten datagrams of the path MTU into one GSO send;
/// with the large datagrams MTU discovery finds on loopback (or jumbo
/// frames) such a batch exceeds 64 KiB, the kernel refuses it with EMSGSIZE
/// and quinn-udp drops it silently as if it were an MTU probe.
#[derive(Debug)]
struct GsoSplit(Arc<dyn quinn::AsyncUdpSocket>);

impl quinn::AsyncUdpSocket for GsoSplit {
    fn create_io_poller(self: Arc<Self>) -> std::pin::Pin<Box<dyn quinn::UdpPoller>> {
        self.0.clone().create_io_poller()
    }

    fn try_send(&self, t: &quinn::udp::Transmit) -> std::io::Result<()> {
        let Some(segment) = t.segment_size.filter(|_| t.contents.len() > MAX_GSO_BYTES) else {
            return self.0.try_send(t);
        };
        let per_send = gso_send_size(segment);
        // If a later piece would block, quinn retries the whole transmit and
        // the pieces already sent arrive twice; QUIC discards duplicates.
        for piece in t.contents.chunks(per_send) {
            self.0.try_send(&quinn::udp::Transmit {
                destination: t.destination,
                ecn: t.ecn,
                contents: piece,
                segment_size: (piece.len() > segment).then_some(segment),
                src_ip: t.src_ip,
            })?;
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut std::task::Context,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [quinn::udp::RecvMeta],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.0.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.0.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.0.may_fragment()
    }
}

/// Kernel buffer size asked for the QUIC socket. The default (~208 KiB) holds
/// well under a millisecond at LAN speed, so a receiver that is briefly not
/// scheduled drops packets and QUIC backs off. The kernel caps the value at
/// net.core.rmem_max / wmem_max.
const SOCKET_BUFFER: libc::c_int = 4 << 20;

fn set_buffer(socket: &std::net::UdpSocket, option: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = SOCKET_BUFFER;
    // SAFETY: the fd is open for the duration of the call (borrowed from
    // `socket`) and the option value is a c_int of the size passed.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_the_hash_of_its_certificate() -> Result<()> {
        let a = Identity::generate()?;
        let b = Identity::generate()?;
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 32);
        let again = Identity::from_der(a.cert_der().to_vec(), a.key_der().to_vec())?;
        assert_eq!(again.id, a.id);
        assert!(Identity::from_der(a.cert_der().to_vec(), b"not a key".to_vec()).is_err());
        Ok(())
    }

    #[test]
    fn gso_sends_stay_within_one_ip_packet() {
        assert_eq!(gso_send_size(1452), 45 * 1452);
        assert_eq!(gso_send_size(8952), 7 * 8952);
        // One datagram of the largest size is sent alone.
        assert_eq!(gso_send_size(MAX_GSO_BYTES), MAX_GSO_BYTES);
        for seg in [1200, 1452, 9000, 20_000, 40_000, 65_507] {
            let n = gso_send_size(seg);
            assert!(
                n <= MAX_GSO_BYTES && n.is_multiple_of(seg) && n >= seg,
                "{seg}: {n}"
            );
        }
    }
}
