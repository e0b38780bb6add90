//! Where the quoted history starts in a reply's HTML, found from the
//! containers mail clients wrap it in, before the HTML becomes text:
//! Gmail's `gmail_quote`, Apple Mail's and Thunderbird's
//! `<blockquote type="cite">` and `moz-cite-prefix`, Outlook's
//! `divRplyFwdMsg`, `appendonsend`, `OLK_SRC_BODY_SECTION`, its bordered
//! header block and its `tabindex="-1"` rule, Outlook.com's `stopSpelling`,
//! Outlook mobile's reference message, Yahoo's `yahoo_quoted`, Proton's
//! `protonmail_quote` and Zoho's `zmail_extra`.
//!
//! Pure: a linear scan over at most [`SCAN_LIMIT`] bytes of tags.

/// Bytes of HTML looked at (the gateway reads at most 1 MiB as a tree).
const SCAN_LIMIT: usize = 1 << 20;

/// Class names (substrings, lower case) of quote containers.
const CLASSES: [&str; 6] = [
    "gmail_quote",
    "yahoo_quoted",
    "protonmail_quote",
    "zmail_extra",
    "moz-cite-prefix",
    "ms-outlook-mobile-reference-message",
];

/// Ids (prefixes, lower case) of quote containers.
const IDS: [&str; 6] = [
    "divrplyfwdmsg",
    "appendonsend",
    "olk_src_body_section",
    "stopspelling",
    "yahoo_quoted",
    "mail-editor-reference-message-container",
];

/// The byte offset in `html` of the tag that opens its quoted history,
/// if a mail client marked one.
pub fn quote_start(html: &str) -> Option<usize> {
    let bytes = html.as_bytes();
    let end = bytes.len().min(SCAN_LIMIT);
    let mut at = 0;
    while at < end {
        let open = at + memchr(&bytes[at..end], b'<')?;
        let close = match memchr(&bytes[open..end], b'>') {
            Some(n) => open + n,
            None => return None,
        };
        let tag = &html[open + 1..close];
        if is_quote_container(tag) {
            return Some(open);
        }
        at = close + 1;
    }
    None
}

fn memchr(hay: &[u8], needle: u8) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

/// Whether the inside of a start tag (`div class="gmail_quote"`) opens a
/// quote container.
fn is_quote_container(tag: &str) -> bool {
    let name_end = tag
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(tag.len());
    let name = tag[..name_end].to_ascii_lowercase();
    if !matches!(
        name.as_str(),
        "div" | "blockquote" | "hr" | "span" | "section"
    ) {
        return false;
    }
    let attrs = tag[name_end..].to_ascii_lowercase();
    let value = |attr: &str| attribute(&attrs, attr);
    if let Some(class) = value("class")
        && CLASSES.iter().any(|c| class.contains(c))
    {
        return true;
    }
    if let Some(id) = value("id") {
        // Outlook.com prefixes ids it rewrites ("ecxdivRplyFwdMsg", "x_…").
        let id = id.trim_start_matches("ecx").trim_start_matches("x_");
        if IDS.iter().any(|p| id.starts_with(p)) {
            return true;
        }
    }
    match name.as_str() {
        "blockquote" => value("type").is_some_and(|t| t == "cite"),
        // Outlook's line above the quoted header.
        "hr" => value("tabindex").is_some_and(|t| t == "-1"),
        // Outlook's quoted header block: a top border over the From/Sent lines.
        "div" => value("style").is_some_and(|s| {
            let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
            s.contains("border:none;border-top:solid") && s.contains("padding:3")
        }),
        _ => false,
    }
}

/// The value of `name` among a start tag's attributes (lower case), quoted
/// or not: the attributes are read in order, so a value that looks like an
/// attribute is not taken for one.
fn attribute<'a>(attrs: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = attrs;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return None;
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let this = &rest[..name_end];
        rest = rest[name_end..].trim_start();
        let value = if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let inner = &after[1..];
                    let stop = inner.find(q).unwrap_or(inner.len());
                    rest = inner.get(stop + 1..).unwrap_or("");
                    &inner[..stop]
                }
                _ => {
                    let stop = after.find(char::is_whitespace).unwrap_or(after.len());
                    rest = &after[stop..];
                    &after[..stop]
                }
            }
        } else {
            ""
        };
        if this == name {
            return Some(value);
        }
        if name_end == 0 && value.is_empty() {
            // Nothing consumed: a stray character; step over it.
            rest = rest.get(1..).unwrap_or("");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(html: &str) -> Option<&str> {
        quote_start(html).map(|at| &html[..at])
    }

    #[test]
    fn each_clients_container_is_found() {
        for (html, before) in [
            (
                r#"<div dir="ltr">Fine.</div><div class="gmail_quote"><div class="gmail_attr">On Mon wrote:</div><blockquote>old</blockquote></div>"#,
                r#"<div dir="ltr">Fine.</div>"#,
            ),
            (
                r#"<div>Fine.</div><div><br><blockquote type="cite">On Mon, Ann wrote:</blockquote></div>"#,
                r#"<div>Fine.</div><div><br>"#,
            ),
            (
                r#"<p>Fine.</p><div class="moz-cite-prefix">On 1/2/24 Ann wrote:<br></div><blockquote type="cite">old</blockquote>"#,
                r#"<p>Fine.</p>"#,
            ),
            (
                r#"<div>Fine.</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Ann</div>"#,
                r#"<div>Fine.</div>"#,
            ),
            (
                r#"<div>Fine.</div><hr tabindex="-1"><div id="x_divRplyFwdMsg">x</div>"#,
                r#"<div>Fine.</div>"#,
            ),
            (
                r#"<p>Fine.</p><div style='border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p><b>From:</b> Ann</p></div>"#,
                r#"<p>Fine.</p>"#,
            ),
            (
                r#"<div>Fine.</div><hr id="stopSpelling">Date: …"#,
                r#"<div>Fine.</div>"#,
            ),
            (
                r#"<div>Fine.</div><div id="yahoo_quoted_123" class="yahoo_quoted">x</div>"#,
                r#"<div>Fine.</div>"#,
            ),
            (
                r#"<div>Fine.</div><div class="protonmail_quote">x</div>"#,
                r#"<div>Fine.</div>"#,
            ),
            (
                r#"<DIV>Fine.</DIV><SPAN ID=OLK_SRC_BODY_SECTION>x</SPAN>"#,
                r#"<DIV>Fine.</DIV>"#,
            ),
        ] {
            assert_eq!(cut(html), Some(before), "{html}");
        }
    }

    #[test]
    fn ordinary_markup_is_not_a_quote() {
        for html in [
            r#"<div class="gmail_default">Hi</div><blockquote>a quoted line of my own</blockquote><p>Bye</p>"#,
            r#"<div style="border-top:1px solid red">Hi</div><hr>"#,
            r#"<p data-class="gmail_quote">x</p><div title="id=divRplyFwdMsg">y</div>"#,
            "<div>unclosed <",
            "",
        ] {
            assert_eq!(cut(html), None, "{html}");
        }
    }
}
