//! Outgoing mail: the password-reset and e-mail verification links of `crate::domain::verification`, sent
//! through the SMTP server the operator configures (`--smtp-url`, `--mail-from`; lettre over tokio and rustls).
//! A link carries its token in the fragment (`…/auth/reset-password#token=…`): browsers never send a fragment,
//! so the token reaches no request log and no proxy; the page posts it in a request body. The base of the link
//! is the configured public address, never a request's `Host`. What goes wrong is logged here without the
//! SMTP credentials and answered to the client as "could not be sent", never with the server's words.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::MailConfig;

/// How long one mail may take to hand over (connect, TLS, authentication, data).
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// The SMTP transport and the sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    link_base: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("link_base", &self.link_base)
            .finish_non_exhaustive()
    }
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MailError {
    /// The recipient is not an address a mail can go to.
    #[error("not a valid e-mail address")]
    Recipient,
    /// The SMTP server could not be reached or did not accept the mail (details are in the server's log).
    #[error("the mail server did not accept the mail")]
    NotSent,
}

impl Mailer {
    /// A mailer for `config`; a bad SMTP URL or sender is an error at start, without the URL's credentials.
    pub fn new(config: &MailConfig) -> Result<Mailer, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| format!("--smtp-url ({config:?}) is not usable: {e}"))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = config
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("--mail-from {:?} is not a mail address: {e}", config.from))?;
        Ok(Mailer {
            transport,
            from,
            link_base: config.link_base.trim_end_matches('/').to_string(),
        })
    }

    /// The link to page `page` (`reset-password`, `verify-email`) carrying `token` in its fragment.
    pub fn link(&self, page: &str, token: &str) -> String {
        format!("{}/auth/{page}#token={token}", self.link_base)
    }

    /// Sends a plain-text mail.
    pub async fn send(&self, to: &str, subject: &str, text: String) -> Result<(), MailError> {
        let to = to.parse::<Mailbox>().map_err(|_| MailError::Recipient)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(None)
            .header(ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|_| MailError::Recipient)?;
        self.transport.send(message).await.map_err(|e| {
            tracing::warn!(error = %e, "a mail could not be sent");
            MailError::NotSent
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> MailConfig {
        MailConfig {
            smtp_url: url.into(),
            from: "App <noreply@example.com>".into(),
            link_base: "https://im.example.com/".into(),
        }
    }

    #[test]
    fn links_carry_the_token_in_the_fragment_under_the_configured_base() {
        let mailer = Mailer::new(&config("smtp://127.0.0.1:2525")).expect("mailer");
        assert_eq!(
            "https://im.example.com/auth/reset-password#token=abc",
            mailer.link("reset-password", "abc")
        );
    }

    #[test]
    fn a_bad_url_or_sender_is_refused_without_the_password() {
        let err =
            Mailer::new(&config("gopher://user:s3cret@mail.example.com")).expect_err("bad URL");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("gopher://mail.example.com"), "{err}");
        let mut bad_from = config("smtp://127.0.0.1:2525");
        bad_from.from = "not an address".into();
        let err = Mailer::new(&bad_from).expect_err("bad sender");
        assert!(err.contains("--mail-from"), "{err}");
    }
}
