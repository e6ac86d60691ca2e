//! Delivering matches and alerts from the outbox: a webhook (JSON, signed with a shared
//! secret, retried with backoff until the receiver answers 2xx) and e-mail over SMTP.
//! A delivery is marked done only after the receiver took it, so a crash delivers it
//! again rather than never; each carries a stable `X-Sigstack-Delivery` ID (a Message-ID
//! for e-mail) so receivers can drop a repeat.

use super::Monitor;
use super::follow::backoff;
use anyhow::{Context, bail};
use sigstack_storage::monitor::{Delivery, Due};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The header carrying `sha256=<hex HMAC-SHA256(secret, "<delivery>.<timestamp>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "x-sigstack-signature";

/// Attempts before a delivery is given up (about a day with the backoff's cap).
pub const MAX_ATTEMPTS: i64 = 150;

pub async fn run(m: Arc<Monitor>) {
    loop {
        if let Err(e) = round(&m).await {
            tracing::warn!(error = %format!("{e:#}"), "delivering notifications failed");
        }
        tokio::select! {
            _ = m.deliver.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = m.stop.notified() => return,
        }
    }
}

async fn round(m: &Arc<Monitor>) -> anyhow::Result<()> {
    loop {
        let due = m.store.due(super::now(), 64).await?;
        if due.is_empty() {
            return Ok(());
        }
        for d in due {
            let result = send(m, &d).await;
            match result {
                Ok(()) => {
                    m.store.delivered(d.id, super::now()).await?;
                    m.delivery_outcome(&d.delivery.channel, true);
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    tracing::warn!(channel = %d.delivery.channel, to = %d.delivery.recipient, attempt = d.attempts + 1, error = %msg, "a notification was not delivered; retrying later");
                    let next = if d.attempts + 1 >= MAX_ATTEMPTS {
                        i64::MAX
                    } else {
                        super::now() + backoff(d.attempts).as_secs() as i64
                    };
                    m.store.failed(d.id, &msg, next).await?;
                    m.delivery_outcome(&d.delivery.channel, false);
                }
            }
        }
    }
}

async fn send(m: &Monitor, d: &Due) -> anyhow::Result<()> {
    match d.delivery.channel.as_str() {
        "webhook" => webhook(m, d).await,
        "email" => {
            let smtp = m.smtp.as_ref().context("no [smtp] configured")?;
            let (subject, text) = mail_text(&d.delivery);
            send_mail(
                &smtp.server,
                &smtp.from,
                &d.delivery.recipient,
                &subject,
                &text,
                &format!("<{}@sigstack-monitor>", d.delivery.uid),
            )
            .await
        }
        other => bail!("unknown channel {other}"),
    }
}

/// `sha256=<hex>` of the body under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    format!(
        "sha256={}",
        hex::encode(aws_lc_rs::hmac::sign(&key, body).as_ref())
    )
}

async fn webhook(m: &Monitor, d: &Due) -> anyhow::Result<()> {
    let secret = m
        .webhook_secret
        .as_deref()
        .context("no [webhook] configured")?;
    let body = d.delivery.payload.as_bytes();
    // the delivery ID and the time are signed with the body: a captured delivery
    // replayed under another ID, or long after, does not verify
    let ts = super::now().to_string();
    let id = d.delivery.uid.clone();
    let mut signed = format!("{id}.{ts}.").into_bytes();
    signed.extend_from_slice(body);
    let res = m
        .http
        .post(&d.delivery.recipient)
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .header("x-sigstack-event", &d.delivery.event)
        .header("x-sigstack-delivery", &id)
        .header("x-sigstack-timestamp", &ts)
        .header(SIGNATURE_HEADER, signature(secret, &signed))
        .body(body.to_vec())
        .send()
        .await
        .with_context(|| format!("reaching {}", d.delivery.recipient))?;
    if !res.status().is_success() {
        bail!("{} answered HTTP {}", d.delivery.recipient, res.status());
    }
    Ok(())
}

/// A subject line and plain text for a delivery's JSON payload.
fn mail_text(d: &Delivery) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(&d.payload).unwrap_or_default();
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    if d.event == "alert" {
        (
            format!("[sigstack monitor] {} alert on log {}", s("kind"), s("log")),
            format!(
                "{}\n\nLog: {}\nKind: {}\n\nEvidence:\n{}\n",
                s("message"),
                s("log"),
                s("kind"),
                serde_json::to_string_pretty(&v["evidence"]).unwrap_or_default()
            ),
        )
    } else {
        let who = v["certSubject"]
            .as_str()
            .unwrap_or(v["matched"].as_str().unwrap_or(""));
        (
            format!("[sigstack monitor] {who} signed in log {}", s("log")),
            format!(
                "An entry matching what you watch was added to a transparency log.\n\nIdentity: {who}\nIssuer: {}\nMatched ({}): {}\nLog: {}\nIndex: {}\nUUID: {}\nArtifact digest: {}\nEntry: {}\n\nIf you did not sign this, someone else holds your identity: revoke access and investigate.\n",
                s("issuer"),
                s("matchedType"),
                s("matched"),
                s("log"),
                v["index"],
                s("uuid"),
                s("digest"),
                s("entryUrl"),
            ),
        )
    }
}

/// Sends one message over plain SMTP (RFC 5321): EHLO, MAIL, RCPT, DATA.
pub async fn send_mail(
    server: &str,
    from: &str,
    to: &str,
    subject: &str,
    text: &str,
    message_id: &str,
) -> anyhow::Result<()> {
    for v in [from, to] {
        if v.contains(['\r', '\n', '<', '>']) || !v.contains('@') {
            bail!("{v:?} is not an e-mail address");
        }
    }
    let stream = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(server),
    )
    .await
    .with_context(|| format!("connecting to {server}: timed out"))?
    .with_context(|| format!("connecting to {server}"))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let step = Duration::from_secs(30);
    async fn reply(
        r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        want: u8,
    ) -> anyhow::Result<()> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).await? == 0 {
                bail!("the SMTP server closed the connection");
            }
            if line.len() < 4 {
                bail!("SMTP: {line:?}");
            }
            if line.as_bytes()[3] == b'-' {
                continue;
            }
            if line.as_bytes()[0] != want {
                bail!("SMTP server said: {}", line.trim_end());
            }
            return Ok(());
        }
    }
    let subject: String = subject.chars().filter(|c| !c.is_control()).collect();
    let date = httpdate(super::now());
    // values from log entries may carry any control character: none but the line
    // breaks we write survive (a bare CR could end the DATA on some relays)
    let text: String = text
        .chars()
        .filter(|c| *c == '\n' || *c == '\t' || !c.is_control())
        .collect();
    // dot-stuffing: a line starting with '.' gets another
    let body: String = text
        .lines()
        .map(|l| {
            if l.starts_with('.') {
                format!(".{l}\r\n")
            } else {
                format!("{l}\r\n")
            }
        })
        .collect();
    let exchange = async {
        reply(&mut r, b'2').await?;
        w.write_all(b"EHLO sigstack-monitor\r\n").await?;
        reply(&mut r, b'2').await?;
        w.write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())
            .await?;
        reply(&mut r, b'2').await?;
        w.write_all(format!("RCPT TO:<{to}>\r\n").as_bytes())
            .await?;
        reply(&mut r, b'2').await?;
        w.write_all(b"DATA\r\n").await?;
        reply(&mut r, b'3').await?;
        let msg = format!(
            "From: sigstack monitor <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {message_id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}.\r\n"
        );
        w.write_all(msg.as_bytes()).await?;
        reply(&mut r, b'2').await?;
        w.write_all(b"QUIT\r\n").await?;
        anyhow::Ok(())
    };
    tokio::time::timeout(step, exchange)
        .await
        .context("the SMTP exchange timed out")?
}

/// RFC 5322 date of a Unix time (UTC).
fn httpdate(t: i64) -> String {
    let d = sigstack_types::time::rfc3339(t);
    // rfc3339 → "YYYY-MM-DDTHH:MM:SSZ": enough for a Date header as "DD Mon YYYY HH:MM:SS +0000"
    let (date, time) = d.split_once('T').unwrap_or((&d, "00:00:00Z"));
    let mut p = date.split('-');
    let (y, mo, da) = (
        p.next().unwrap_or("1970"),
        p.next().unwrap_or("01"),
        p.next().unwrap_or("01"),
    );
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mon = MONTHS[(mo.parse::<usize>().unwrap_or(1).clamp(1, 12)) - 1];
    format!(
        "{da} {mon} {y} {} +0000",
        time.trim_end_matches('Z').get(..8).unwrap_or("00:00:00")
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231 test case 2
        assert_eq!(
            super::signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_date_header() {
        assert_eq!(super::httpdate(0), "01 Jan 1970 00:00:00 +0000");
    }
}
