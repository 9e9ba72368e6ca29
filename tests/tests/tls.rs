//! The SDK's trust store over real TLS: a server on 127.0.0.1 with a
//! certificate from a private CA made here (openssl), answering as SSM (and
//! as PagerDuty's Events API, whose HTTPS client shares the SDK's roots). The
//! compiled-in Mozilla roots refuse it; `SSL_CERT_FILE` naming the CA is
//! trusted; a bundle that cannot be parsed falls back to the compiled-in
//! roots (logged), never a panic. One test in its own binary: it sets the
//! process's environment.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()?;
    ensure!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A CA and a server certificate for localhost and 127.0.0.1 it signed.
fn private_ca(dir: &Path) -> Result<()> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "1"]);
    ca.extend(["-subj", "/CN=first-responder test CA"]);
    openssl(dir, &ca)?;
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr)?;
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    )
}

/// Serves SSM's GetParameter answer over TLS until dropped.
async fn serve(dir: &Path) -> Result<(u16, tokio::task::JoinHandle<()>)> {
    let certs =
        CertificateDer::pem_file_iter(dir.join("server.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust us ends the handshake: fine.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let (status, body) = if buf.starts_with(b"POST /v2/enqueue ") {
                    (
                        "202 Accepted",
                        r#"{"status":"success","message":"Event processed","dedup_key":"inc-tls"}"#,
                    )
                } else {
                    (
                        "200 OK",
                        r#"{"Parameter":{"Name":"over-tls","Type":"String","Value":"trusted","Version":1}}"#,
                    )
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Ok((port, task))
}

async fn read_over_tls(port: u16) -> Result<String> {
    let sdk = harness::sdk_config(&format!("https://localhost:{port}")).await;
    let out = aws_sdk_ssm::Client::new(&sdk)
        .get_parameter()
        .name("over-tls")
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_ssm::error::DisplayErrorContext(e)))?;
    out.parameter()
        .and_then(|p| p.value())
        .map(str::to_owned)
        .context("no value")
}

/// One PagerDuty event over TLS, by a client built now (it reads the roots
/// at its first event, as in a function).
async fn page_over_tls(port: u16) -> Result<first_responder::aws::pagerduty::Sent> {
    let ssm = aws_sdk_ssm::Client::new(&harness::sdk_config("http://127.0.0.1:9").await);
    let pd = first_responder::aws::pagerduty::PagerDuty::new(ssm);
    let event =
        serde_json::json!({"routing_key": "k", "event_action": "resolve", "dedup_key": "inc-tls"});
    Ok(pd
        .send(&format!("https://localhost:{port}/v2/enqueue"), &event)
        .await)
}

#[tokio::test]
async fn the_sdk_trusts_the_compiled_in_roots_or_ssl_cert_file() -> Result<()> {
    let dir = tempfile_dir()?;
    private_ca(&dir)?;
    let (port, server) = serve(&dir).await?;

    // SAFETY (set_var/remove_var): this binary's only test, and every SDK
    // client here reads the variable at its first request, after the change.
    // Mozilla's roots only: a private CA is not among them.
    unsafe { std::env::remove_var("SSL_CERT_FILE") };
    let refused = read_over_tls(port).await;
    let why = format!("{refused:?}");
    ensure!(refused.is_err(), "trusted without the CA: {why}");
    ensure!(
        why.contains("UnknownIssuer") || why.to_ascii_lowercase().contains("certificate"),
        "{why}"
    );
    let paged = page_over_tls(port).await?;
    ensure!(
        !paged.ok && paged.attempts == 3,
        "PagerDuty trusted without the CA: {paged:?}"
    );

    // SSL_CERT_FILE names the private CA: trusted.
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.join("ca.pem")) };
    assert_eq!(read_over_tls(port).await?, "trusted");
    let paged = page_over_tls(port).await?;
    ensure!(paged.ok && paged.attempts == 1, "{paged:?}");
    assert_eq!(
        paged.detail,
        "PagerDuty resolve accepted (dedup_key inc-tls)"
    );

    // A file that is not a bundle: logged, and the compiled-in roots used
    // (so the private CA is refused again); the process does not panic.
    std::fs::write(
        dir.join("broken.pem"),
        "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n",
    )?;
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.join("broken.pem")) };
    ensure!(
        read_over_tls(port).await.is_err(),
        "trusted a broken bundle"
    );
    unsafe { std::env::set_var("SSL_CERT_FILE", dir.join("missing.pem")) };
    ensure!(
        read_over_tls(port).await.is_err(),
        "trusted a missing bundle"
    );

    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("first-responder-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
