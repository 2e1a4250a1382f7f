//! A mail relay on loopback for tests: real SMTP, optionally over TLS, that refuses, fails,
//! hangs and garbles as a test steers it.

/// A mail server on loopback that speaks enough SMTP for a real client and keeps each
/// message it accepts. `refuse_next` makes it answer the next N messages with a permanent
/// refusal (550) at RCPT. It can also speak SMTP over TLS, either from the first byte or after
/// STARTTLS (with the test certificate in `fixtures/tls`), as council relays do.
#[derive(Clone, Default)]
pub struct SmtpSink {
    pub messages: std::sync::Arc<std::sync::Mutex<Vec<Mail>>>,
    /// The next N recipients are refused for good (550).
    pub refuse_next: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// The next N recipients are refused for now (451), as a relay under load does.
    pub fail_next: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// The next N messages are stored, then never acknowledged, as a relay that hangs after
    /// taking the data does.
    pub hang_next: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// The next N recipients are answered with a line that is not SMTP, as a relay behind a
    /// broken proxy does.
    pub garble_next: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

/// Takes one from `counter` if it is above zero.
fn take_one(counter: &std::sync::atomic::AtomicU32) -> bool {
    counter
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok()
}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// Whether it arrived over TLS.
    pub encrypted: bool,
}

/// How an [`SmtpSink`] speaks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SmtpMode {
    Plain,
    /// Plain until the client says STARTTLS; no mail is taken before it does.
    StartTls,
    /// TLS from the first byte (port 465 style).
    ImplicitTls,
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

fn test_tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = format!("{}/fixtures/tls", env!("CARGO_MANIFEST_DIR"));
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{dir}/cert.pem"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

impl SmtpSink {
    pub async fn start() -> (SmtpSink, u16) {
        SmtpSink::start_with(SmtpMode::Plain).await
    }

    pub async fn start_with(mode: SmtpMode) -> (SmtpSink, u16) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sink = SmtpSink::default();
        let s = sink.clone();
        let acceptor = test_tls_acceptor();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, acceptor) = (s.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let conn: Box<dyn Io> = if mode == SmtpMode::ImplicitTls {
                        match acceptor.accept(stream).await {
                            Ok(tls) => Box::new(tls),
                            Err(_) => return,
                        }
                    } else {
                        Box::new(stream)
                    };
                    s.session(conn, mode, acceptor).await;
                });
            }
        });
        (sink, port)
    }

    /// One SMTP session, upgraded in place on STARTTLS.
    async fn session(
        &self,
        conn: Box<dyn Io>,
        mode: SmtpMode,
        acceptor: tokio_rustls::TlsAcceptor,
    ) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let mut encrypted = mode == SmtpMode::ImplicitTls;
        let mut io = BufReader::new(conn);
        let _ = io.get_mut().write_all(b"220 sink.test ESMTP\r\n").await;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.trim_end().to_string();
            let upper = cmd.to_ascii_uppercase();
            let must_encrypt = mode == SmtpMode::StartTls && !encrypted;
            let reply: &[u8] = if upper.starts_with("EHLO") {
                if must_encrypt {
                    b"250-sink.test\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
                } else {
                    b"250-sink.test\r\n250 8BITMIME\r\n"
                }
            } else if upper.starts_with("HELO") {
                b"250 sink.test\r\n"
            } else if upper == "STARTTLS" && must_encrypt {
                if io
                    .get_mut()
                    .write_all(b"220 ready to start TLS\r\n")
                    .await
                    .is_err()
                    || io.get_mut().flush().await.is_err()
                {
                    return;
                }
                // The client says nothing more in the clear, so nothing is buffered.
                let plain = io.into_inner();
                let Ok(tls) = acceptor.accept(plain).await else {
                    return;
                };
                io = BufReader::new(Box::new(tls) as Box<dyn Io>);
                encrypted = true;
                continue;
            } else if must_encrypt && !upper.starts_with("QUIT") && !upper.starts_with("NOOP") {
                b"530 5.7.0 Must issue a STARTTLS command first\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                from = cmd[10..].trim().to_string();
                to.clear();
                b"250 ok\r\n"
            } else if upper.starts_with("RCPT TO:") {
                if take_one(&self.refuse_next) {
                    b"550 5.1.1 mailbox unavailable\r\n"
                } else if take_one(&self.fail_next) {
                    b"451 4.3.0 try again later\r\n"
                } else if take_one(&self.garble_next) {
                    b"<html>502 Bad Gateway</html>\r\n"
                } else {
                    to.push(cmd[8..].trim().to_string());
                    b"250 ok\r\n"
                }
            } else if upper == "DATA" {
                let _ = io.get_mut().write_all(b"354 go ahead\r\n").await;
                let _ = io.get_mut().flush().await;
                let mut data = String::new();
                loop {
                    line.clear();
                    if io.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                self.messages.lock().unwrap().push(Mail {
                    from: from.clone(),
                    to: to.clone(),
                    data,
                    encrypted,
                });
                if take_one(&self.hang_next) {
                    // Stored, never acknowledged: the sender cannot know it arrived.
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    return;
                }
                b"250 queued\r\n"
            } else if upper == "QUIT" {
                let _ = io.get_mut().write_all(b"221 bye\r\n").await;
                let _ = io.get_mut().flush().await;
                return;
            } else if upper == "RSET" || upper == "NOOP" {
                b"250 ok\r\n"
            } else {
                b"502 not implemented\r\n"
            };
            if io.get_mut().write_all(reply).await.is_err() {
                return;
            }
            let _ = io.get_mut().flush().await;
        }
    }

    pub fn messages(&self) -> Vec<Mail> {
        self.messages.lock().unwrap().clone()
    }
}
