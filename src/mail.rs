//! Mail as values: bytes in, values out, no I/O. Parsing (mail-parser),
//! classification (human / auto-reply / bounce), reply extraction, subject
//! clean-up and the `inspect` view all live here.

pub mod auth;
pub mod classify;
pub mod compose;
pub mod conversation;
pub mod extract;
pub mod html;
pub mod inspect;
pub mod subject;
pub mod token;

mod read;

pub use read::{header_in_text, html_above_quote, html_to_text, normalise_id, parse};

use crate::domain::EmailAddress;

/// The largest mail accepted; larger ones are quarantined unread.
pub const MAX_MAIL_BYTES: usize = 50 * 1024 * 1024;

/// Why bytes could not be read as a mail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("the input is empty")]
    Empty,
    #[error("the mail is {0} bytes, more than the {MAX_MAIL_BYTES} accepted")]
    TooLarge(usize),
    #[error("the input is not a mail: no header block with From, To, Subject, Date or Message-ID")]
    NotAMail,
    #[error("the MIME structure is too broken to read (the parser gave up)")]
    Malformed,
}

/// A person in an address header.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mailbox {
    pub email: EmailAddress,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An attachment (or inline part) of a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub filename: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub inline: bool,
    pub data: Vec<u8>,
    /// The content's SHA-256 in hex, under which its bytes are stored once.
    pub sha256: String,
}

impl Attachment {
    /// An attachment of `data`, its digest computed here: when a mail is
    /// parsed, off the processor's write transaction.
    pub fn new(
        filename: String,
        content_type: String,
        content_id: Option<String>,
        inline: bool,
        data: Vec<u8>,
    ) -> Self {
        use sha2::{Digest, Sha256};
        let sha256 = hex::encode(Sha256::digest(&data));
        Attachment {
            filename,
            content_type,
            content_id,
            inline,
            data,
            sha256,
        }
    }
}

/// The headers that decide whether a mail was written by a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    pub auto_submitted: Option<String>,
    pub x_autoreply: bool,
    pub x_autorespond: bool,
    pub precedence: Option<String>,
    /// `Return-Path: <>`.
    pub null_return_path: bool,
    /// `multipart/report` at the top.
    pub report_type: Option<String>,
    pub x_failed_recipients: Vec<String>,
    pub list_id: bool,
    /// Raw From header text (for mailer-daemon detection when it does not parse).
    pub from_raw: String,
    /// `Return-Path: <MAILER-DAEMON@…>` (or postmaster): a bounce's envelope.
    pub daemon_return_path: bool,
    /// A mail or its headers attached (`message/rfc822`, `text/rfc822-headers`):
    /// a returned message, with the other signs of a bounce.
    pub returned_message: bool,
    /// A list manager's error notice: `X-MLServer` from the list's `-admin` address.
    pub list_admin_notice: bool,
}

/// A delivery status report inside a mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// `message/delivery-status` fields: (Final-Recipient, Status, Action) per recipient.
    pub recipients: Vec<(String, Option<String>, Option<String>)>,
    /// Message-ID of the returned mail (from `message/rfc822` or `text/rfc822-headers`).
    pub original_message_id: Option<String>,
}

/// One mail, read once at the edge.
#[derive(Debug, Clone, Default)]
pub struct ParsedMail {
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub subject: String,
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub signals: Signals,
    /// The text body (from text/plain, or converted from HTML).
    pub text: String,
    /// The HTML body as received (sanitise before showing).
    pub html: Option<String>,
    /// The text of the HTML above the quoted history its client marked
    /// (`gmail_quote`, `divRplyFwdMsg`, …; see `extract::quote_start`).
    pub above_quote: Option<String>,
    /// Set when the HTML part was too large or deep to read as a tree
    /// (then `html` is `None` and `text` its stripped text): says so.
    pub html_notice: Option<String>,
    /// The Authentication-Results header values, top first (at most 20).
    pub auth_results: Vec<String>,
    /// The envelope recipients the receiving servers recorded
    /// (`Delivered-To`, `X-Original-To`), top first (at most 10).
    pub delivered_to: Vec<String>,
    pub attachments: Vec<Attachment>,
    pub report: Option<DeliveryReport>,
    pub size: usize,
}

#[cfg(test)]
mod tests {
    use super::read::{parser_safe, short_zone_date};
    use super::*;

    #[test]
    fn a_date_with_a_short_zone_does_not_swallow_the_next_header() {
        for (zone, eol) in ["UT", "Z", "A", "M", "GMT", "+0000"]
            .into_iter()
            .flat_map(|z| [(z, "\n"), (z, "\r\n")])
        {
            let raw = format!(
                "Date: Sat, 22 Apr 2006 17:14:50 {zone}{eol}From: Jane <jane@example.org>{eol}Subject: hi{eol}{eol}body\nline two\n"
            );
            let m = parse(raw.as_bytes()).unwrap();
            let from = m.from.as_ref().map(|f| f.email.as_str());
            assert_eq!(from, Some("jane@example.org"), "zone {zone}");
            assert_eq!(m.subject, "hi");
            assert_eq!(
                m.text.trim_end(),
                "body\nline two",
                "the body is left as it is"
            );
            assert_eq!(m.size, raw.len(), "the size is the mail's own");
        }
    }

    #[test]
    fn only_the_header_block_of_a_mail_is_rewritten_for_the_parser() {
        let crlf = b"From: a@example.org\r\nDate: Sat, 1 Jan 2000 00:00:00 GMT\r\n\r\nbody\n";
        assert!(matches!(parser_safe(crlf), std::borrow::Cow::Borrowed(_)));
        let rewritten: [(&[u8], &[u8]); 4] = [
            (
                b"From: a@example.org\nSubject: x\n\nbody\nmore\n",
                b"From: a@example.org\r\nSubject: x\r\n\r\nbody\nmore\n",
            ),
            (
                b"From: a@example.org\r\nSubject: x\n\r\nbody\n",
                b"From: a@example.org\r\nSubject: x\r\n\r\nbody\n",
            ),
            (
                b"DATE: Sat, 1 Jan 2000 00:00:00 Z\r\nFrom: a@example.org\r\n\r\nDate: 1 Z\r\n",
                b"DATE: Sat, 1 Jan 2000 00:00:00 Z  \r\nFrom: a@example.org\r\n\r\nDate: 1 Z\r\n",
            ),
            (
                b"From: a@example.org\nSubject: x",
                b"From: a@example.org\r\nSubject: x",
            ),
        ];
        for (raw, read) in rewritten {
            assert_eq!(
                &parser_safe(raw)[..],
                read,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(
            parser_safe(b"\r\nbody\n"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert!(!short_zone_date(b"X-Date: 1 Jan 2000 Z"));
        assert!(!short_zone_date(b"Date: 1 Jan 2000 +0000"));
        assert!(short_zone_date(b"Resent-Date: 1 Jan 2000 ut "));
    }

    #[test]
    fn a_parsed_attachment_carries_the_digest_its_bytes_are_stored_under() {
        let raw = b"From: a@example.org\r\nSubject: file\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\n\
Content-Transfer-Encoding: base64\r\n\r\nYWJj\r\n--b--\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].data, b"abc");
        // SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(
            m.attachments[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn every_common_charset_decodes_in_subjects_and_bodies() {
        // (charset, base64 of the text in it, the text)
        let cases = [
            (
                "gb2312",
                "1tDOxLLiytQgtPLTobv6u7XByw==",
                "中文测试 打印机坏了",
            ),
            ("GBK", "1tDOxLLiytQgtPLTobv6u7XByw==", "中文测试 打印机坏了"),
            (
                "gb18030",
                "1tDOxLLiytQgtPLTobv6u7XByw==",
                "中文测试 打印机坏了",
            ),
            (
                "big5",
                "wWPF6aSkpOUgpkyq7b73w2GkRg==",
                "繁體中文 印表機壞了",
            ),
            (
                "shift_jis",
                "k/qWe4zqgsyDZYNYg2cgg3aDioOTg14=",
                "日本語のテスト プリンタ",
            ),
            (
                "euc-jp",
                "xvzL3LjspM6lxqW5pcggpdel6qXzpb8=",
                "日本語のテスト プリンタ",
            ),
            ("euc-kr", "x9Gxub7uIL3Dx+ggx8G4sMXN", "한국어 시험 프린터"),
            (
                "iso-2022-jp",
                "GyRCRnxLXDhsJE4lRiU5JUgbKEIgGyRCJVclaiVzJT8bKEI=",
                "日本語のテスト プリンタ",
            ),
            ("koi8-r", "8NLJztTF0iDTzM/NwczT0Q==", "Принтер сломался"),
            (
                "windows-1251",
                "z/Do7fLl8CDx6+7s4Ovx/w==",
                "Принтер сломался",
            ),
            ("iso-8859-7", "zyDl6vT18Pn03vI=", "Ο εκτυπωτής"),
            ("windows-1256", "x+HYx8jaySDj2tjhyQ==", "الطابعة معطلة"),
        ];
        for (charset, b64, text) in cases {
            let raw = format!(
                "From: a@example.org\r\nTo: b@example.org\r\nSubject: =?{charset}?B?{b64}?=\r\n\
                 Message-ID: <c@example.org>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
            );
            let m = parse(raw.as_bytes()).unwrap();
            assert_eq!(m.subject, text, "{charset} subject");
            assert_eq!(m.text.trim(), text, "{charset} body");
        }
    }

    #[test]
    fn parses_a_simple_mail() {
        let raw = b"From: Jane Doe <Jane@Example.org>\r\nTo: support@example.test, \"Bob\" <bob@example.org>\r\n\
Subject: Re: [TKT-7] Printer\r\nMessage-ID: <abc@x>\r\nIn-Reply-To: <p1@x>\r\nReferences: <p0@x> <p1@x>\r\n\r\nHello\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.from.unwrap().email.as_str(), "jane@example.org");
        assert_eq!(m.to.len(), 2);
        assert_eq!(m.message_id.as_deref(), Some("<abc@x>"));
        assert_eq!(m.references, vec!["<p0@x>", "<p1@x>"]);
        assert_eq!(m.in_reply_to, vec!["<p1@x>"]);
        assert!(m.text.contains("Hello"));
    }

    #[test]
    fn rejects_what_is_not_a_mail() {
        assert_eq!(parse(b"").unwrap_err(), MailError::Empty);
        assert_eq!(
            parse(b"just some words\nand more\n").unwrap_err(),
            MailError::NotAMail
        );
        assert_eq!(
            parse(&[0u8, 159, 146, 150, 1, 2]).unwrap_err(),
            MailError::NotAMail
        );
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw = b"From: a@b.org\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n<p>Hello <b>there</b></p><script>x()</script>\r\n";
        let m = parse(raw).unwrap();
        assert!(m.text.contains("Hello"), "{}", m.text);
        assert!(m.html.unwrap().contains("<b>there</b>"));
    }
}
