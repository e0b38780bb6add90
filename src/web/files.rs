//! Files over the web, for the portal and the console alike: reading a
//! multipart form with its uploads under the size limits, and answering an
//! attachment download so that no file can run script in our origin.

use std::collections::HashMap;

use axum::extract::Multipart;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::store::sessions::AttachmentInfo;

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    TooLarge(String),
    Bad(String),
}

/// A time as people read it: `24 Nov 2026, 09:30 UTC`.
pub fn when(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) {
        Ok(t) => {
            let month = t.month().to_string();
            format!(
                "{} {} {}, {:02}:{:02} UTC",
                t.day(),
                month.get(..3).unwrap_or(&month),
                t.year(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => crate::domain::rfc3339(ms),
    }
}

/// A moment as an HTML `<time>`: its machine-readable instant, and
/// [`when`]'s words, which the pages' script (`/static/local-time.js`)
/// rewrites in the viewer's own format and time zone.
pub fn time_html(ms: i64) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        crate::domain::rfc3339(ms),
        when(ms)
    )
}

/// One CSV field: quoted when it must be, and a leading `=`, `+`, `-`, `@`
/// made inert (spreadsheets would run it as a formula).
pub fn csv_field(out: &mut Vec<u8>, value: &str) {
    let inert = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = inert || value.contains([',', '"', '\n', '\r']);
    if quote {
        out.push(b'"');
    }
    if inert {
        out.push(b'\'');
    }
    for b in value.bytes() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    if quote {
        out.push(b'"');
    }
}

/// A size as people read it.
pub fn human_size(bytes: i64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Image types shown inline as previews; anything else (SVG included, which
/// can carry script) is only ever downloaded.
pub fn previewable(content_type: &str) -> bool {
    matches!(
        content_type.to_ascii_lowercase().as_str(),
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// Files sent with one message, at most this many.
pub const MAX_FILES: usize = 10;

/// A multipart form as sent: its text fields and its files.
#[derive(Default)]
pub struct Upload {
    /// Text fields by name (at most 32).
    pub fields: HashMap<String, String>,
    /// The files, in the order sent.
    pub files: Vec<crate::mail::Attachment>,
    /// Why a file was left out (over the per-file limit): the rest of the
    /// form was still read, so that a page can be shown again as typed.
    pub refused: Option<String>,
}

impl Upload {
    /// The form, or the refusal as an error for a handler that does not
    /// show the form again.
    pub fn accepted(self) -> Result<Upload, FileError> {
        match self.refused {
            Some(why) => Err(FileError::TooLarge(why)),
            None => Ok(self),
        }
    }

    /// A text field, empty when absent.
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// Reads a multipart form, refusing a file over the per-file limit (and a
/// request over the body limit, checked from its length before reading).
pub async fn read_upload(
    state: &AppState,
    headers: &HeaderMap,
    mut multipart: Multipart,
) -> Result<Upload, FileError> {
    let max_body = state.settings().http.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(FileError::TooLarge(format!(
            "The message with its files is over {} in all.",
            human_size(max_body as i64)
        )));
    }
    let max_file = state.settings().tickets.max_attachment_bytes;
    let mut form = Upload::default();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| FileError::Bad(format!("The form could not be read: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "files" => {
                let filename = field.file_name().unwrap_or_default().trim().to_string();
                let content_type = field
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_string();
                let mut data = Vec::new();
                let mut over = false;
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| FileError::Bad(format!("The upload broke off: {e}")))?
                {
                    // Past the limit the rest of the file is read and
                    // dropped (the body limit bounds it), so that the
                    // fields after it are still read.
                    if over || (data.len() + chunk.len()) as u64 > max_file {
                        over = true;
                        data = Vec::new();
                        continue;
                    }
                    data.extend_from_slice(&chunk);
                }
                if over {
                    form.refused.get_or_insert_with(|| {
                        format!(
                            "{filename} is over the limit of {} per file: nothing was sent. Attach a smaller file, or send the text alone.",
                            human_size(max_file as i64)
                        )
                    });
                    continue;
                }
                if filename.is_empty() && data.is_empty() {
                    continue; // the empty file input of a form sent without files
                }
                if form.files.len() == MAX_FILES {
                    return Err(FileError::Bad(format!(
                        "At most {MAX_FILES} files at once."
                    )));
                }
                form.files.push(crate::mail::Attachment::new(
                    if filename.is_empty() {
                        "file".into()
                    } else {
                        filename
                    },
                    content_type,
                    None,
                    false,
                    data,
                ));
            }
            _ => {
                if form.fields.len() < 32 {
                    let text = field
                        .text()
                        .await
                        .map_err(|e| FileError::Bad(format!("The form could not be read: {e}")))?;
                    form.fields.insert(name, text);
                }
            }
        }
    }
    Ok(form)
}

/// Text percent-encoded for a URL path segment or an RFC 5987 value:
/// letters, digits and `.-_` kept, every other byte `%XX`.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An attachment as a download: images that cannot carry script inline,
/// everything else as `application/octet-stream` to save; sandboxed,
/// never sniffed.
pub fn file_response(file: &AttachmentInfo, data: Vec<u8>) -> Response {
    let inline = previewable(&file.content_type);
    let content_type = if inline {
        file.content_type.to_ascii_lowercase()
    } else {
        "application/octet-stream".to_string()
    };
    let ascii: String = file
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encode(&file.filename);
    let disposition = format!(
        "{}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}",
        if inline { "inline" } else { "attachment" }
    );
    let mut r = data.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_str(&content_type)
            .unwrap_or(header::HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_str(&disposition)
            .unwrap_or(header::HeaderValue::from_static("attachment")),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, max-age=3600"),
    );
    r
}

/// The sanitised HTML of a mail as the portal and the console show it:
/// sanitised again
/// (defence in depth), inline `cid:` images pointed at their attachments
/// (under `prefix`, e.g. `/portal/attachments/`),
/// every other image source dropped (remote images are never loaded: they
/// tell a sender who read the mail, and when), links opened without a
/// referrer. Returns the HTML and how many images were held back.
pub fn mail_html(
    html: &str,
    files: &[crate::store::sessions::AttachmentInfo],
    prefix: &str,
) -> (String, usize) {
    let cids: HashMap<String, i64> = files
        .iter()
        .filter_map(|a| {
            a.content_id
                .as_deref()
                .map(|c| (c.trim_matches(['<', '>']).to_ascii_lowercase(), a.id))
        })
        .collect();
    let page_prefix = prefix;
    let prefix = prefix.to_string();
    let held = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = held.clone();
    let cleaned = ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto", "cid"].into_iter().collect())
        .attribute_filter(move |element, attribute, value| {
            if element == "img" && attribute == "src" {
                let target = value
                    .strip_prefix("cid:")
                    .and_then(|c| cids.get(&c.to_ascii_lowercase()));
                return match target {
                    Some(id) => Some(format!("{prefix}{id}").into()),
                    None => {
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        None
                    }
                };
            }
            if attribute == "src" || attribute == "srcset" {
                return None;
            }
            Some(value.into())
        })
        .clean(html)
        .to_string();
    (
        with_alt_text(&cleaned, files, page_prefix),
        held.load(std::sync::atomic::Ordering::Relaxed),
    )
}

/// Every image of cleaned mail HTML with an `alt`: a sender's image without
/// one gets its attachment's file name, or `""` (decorative: the spacers,
/// logos and pixels mail is full of), so a screen reader does not read out
/// addresses. `html` is ammonia's output: attributes are quoted and escaped.
fn with_alt_text(
    html: &str,
    files: &[crate::store::sessions::AttachmentInfo],
    prefix: &str,
) -> String {
    static IMG: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"<img\b[^>]*>").expect("a valid pattern"));
    IMG.replace_all(html, |c: &regex::Captures| {
        let tag = &c[0];
        if tag.contains(" alt=\"") {
            return tag.to_string();
        }
        let name = files
            .iter()
            .find(|a| tag.contains(&format!(" src=\"{prefix}{}\"", a.id)))
            .map(|a| escape_attribute(&a.filename))
            .unwrap_or_default();
        format!("<img alt=\"{name}\"{}", &tag[4..])
    })
    .into_owned()
}

/// Text safe inside a double-quoted HTML attribute.
fn escape_attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_html_is_cleaned_inline_images_mapped_and_remote_ones_held_back() {
        let files = vec![crate::store::sessions::AttachmentInfo {
            id: 7,
            filename: "logo.png".into(),
            content_type: "image/png".into(),
            size: 10,
            content_id: Some("<Logo@Example>".into()),
        }];
        let (html, held) = mail_html(
            r#"<p onclick="x()"><b>bold</b><img src="cid:logo@example"><img src="https://tracker.example/p.gif" alt="pixel"><script>alert(1)</script><a href="https://example.org">site</a><a href="javascript:alert(2)">js</a><svg onload=alert(3)></svg></p>"#,
            &files,
            "/portal/attachments/",
        );
        assert!(html.contains("<b>bold</b>"), "{html}");
        assert!(html.contains(r#"src="/portal/attachments/7""#), "{html}");
        // Every image has an alt text: the file's name, or its own.
        assert!(
            html.contains(r#"<img alt="logo.png" src="/portal/attachments/7">"#),
            "{html}"
        );
        assert!(html.contains(r#"alt="pixel""#), "{html}");
        assert!(!html.contains("tracker.example"), "{html}");
        assert_eq!(held, 1);
        assert!(
            !html.contains("script") && !html.contains("onclick") && !html.contains("svg"),
            "{html}"
        );
        assert!(!html.contains("javascript:"), "{html}");
        assert!(
            html.contains(r#"rel="noopener noreferrer nofollow""#),
            "{html}"
        );
    }
}
