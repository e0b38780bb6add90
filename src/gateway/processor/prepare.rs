//! The processor's pure preparation of a stored mail, before any
//! transaction: parse, classify, extract the reply's text, convert and
//! sanitise its HTML. A panic in it quarantines that mail alone.

use super::*;

/// A stored mail parsed, with the work that needs no database done before
/// the transaction starts: its class, and the text and sanitised HTML its
/// message shows (for a mail from a person).
pub(super) struct Prepared {
    pub(super) mail: ParsedMail,
    pub(super) class: Classification,
    pub(super) bounce: Option<BounceInfo>,
    pub(super) body_text: String,
    pub(super) full_text: Option<String>,
    pub(super) body_html: Option<String>,
    /// What postdesk found checking DKIM, SPF and DMARC itself, for a
    /// mailbox that asks for it (filled in before the batch is applied).
    pub(super) local_auth: Option<AuthResults>,
}

/// A stored mail prepared, or why it could not be.
pub(super) type Parsed = Result<Prepared, String>;

/// The gateway's pure preparation of one mail as the processor runs it
/// (parse, classify, extract the reply, convert and sanitise its HTML),
/// storing nothing: for benchmarks and fuzzing. `Err` is the quarantine reason.
pub fn prepare_bytes(raw: &[u8]) -> Result<usize, String> {
    let raw = RawMail {
        id: 0,
        mailbox_id: None,
        raw: raw.to_vec(),
        received_at: 0,
        silent: false,
        attempts: 0,
    };
    let p = prepare(&raw)?;
    Ok(p.body_text.len() + p.body_html.map_or(0, |h| h.len()))
}

/// Parses and prepares a stored mail. A panic anywhere in this pure work
/// (parsing, HTML, extraction, sanitising) quarantines that mail with the
/// reason instead of stopping the batch behind it.
pub(super) fn prepare(raw: &RawMail) -> Parsed {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| prepare_unguarded(raw)))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".into());
            Err(format!(
                "preparing the mail failed (a bug in postdesk): {what}"
            ))
        })
}

fn prepare_unguarded(raw: &RawMail) -> Parsed {
    let mail = parse_raw(raw)?;
    // Debug builds only: a hook for the tests to make preparation panic.
    #[cfg(debug_assertions)]
    if mail.subject == "postdesk test hook: panic while preparing" {
        panic!("the test hook asked for a panic");
    }
    let (class, bounce) = classify(&mail);
    let (body_text, full_text, body_html) = if class == Classification::Human {
        let (text, full) = bodies(&mail);
        (text, full, mail.html.as_deref().map(sanitise))
    } else {
        (String::new(), None, None)
    };
    Ok(Prepared {
        mail,
        class,
        bounce,
        body_text,
        full_text,
        body_html,
        local_auth: None,
    })
}

/// Parses a stored mail; one without a Message-ID is known by a digest of
/// its bytes, so that a second copy of it is recognised all the same.
fn parse_raw(raw: &RawMail) -> Result<ParsedMail, String> {
    let mut mail = parse(&raw.raw).map_err(|e| format!("unreadable mail: {e}"))?;
    if mail.message_id.is_none() {
        mail.message_id = Some(format!(
            "<{}@digest.postdesk>",
            crate::secrets::bytes_digest(&raw.raw)
        ));
    }
    Ok(mail)
}

/// The text a message shows, and the whole text when it differs.
fn bodies(mail: &ParsedMail) -> (String, Option<String>) {
    let reply = extract_reply_with_html(&mail.text, mail.above_quote.as_deref());
    let reply = if reply.trim().is_empty() {
        "(no text)".to_string()
    } else {
        reply
    };
    let whole = mail.text.replace("\r\n", "\n");
    let full =
        (reply.trim() != whole.trim() && !whole.trim().is_empty()).then(|| mail.text.clone());
    (reply, full)
}

/// The HTML sanitiser's rules, built once.
static SANITISER: std::sync::LazyLock<ammonia::Builder<'static>> = std::sync::LazyLock::new(|| {
    let mut rules = ammonia::Builder::default();
    rules.link_rel(Some("noopener noreferrer nofollow"));
    // `cid:` names the mail's own inline parts: kept, so that the pages can
    // point each at its attachment (`web::files::mail_html`, which drops
    // every other image source).
    rules.add_url_schemes(["cid"]);
    rules
});

fn sanitise(html: &str) -> String {
    SANITISER.clean(html).to_string()
}

/// Builds what processing the first mail would otherwise build (the reply
/// extraction rules, the sanitiser), so that it is not slower than the rest.
pub fn warm_up() {
    crate::mail::extract::warm_up();
    std::sync::LazyLock::force(&SANITISER);
}

#[cfg(test)]
mod tests {
    use super::sanitise;

    #[test]
    fn stored_html_keeps_inline_image_names_and_nothing_active() {
        let html = sanitise(
            r#"<p><img src="cid:smoke@client.test" alt="smoke"><img src="javascript:alert(1)"><a href="javascript:alert(2)">x</a><script>alert(3)</script></p>"#,
        );
        assert!(html.contains(r#"src="cid:smoke@client.test""#), "{html}");
        assert!(
            !html.contains("javascript") && !html.contains("script"),
            "{html}"
        );
    }
}
