//! A mail's HTML, read without trusting it: a linear pre-scan measures how
//! deep its elements nest and how large it is, and only HTML within those
//! bounds goes to the tree-building converters (html2text, ammonia), whose
//! cost grows faster than the input on deep or unclosed markup (40,000
//! nested `<div>`s took 15–28 s, 2 MB of unclosed tags a gigabyte). Past
//! the bounds the HTML becomes plain text by a single pass that strips the
//! tags, and the mail says so.

/// The largest HTML part converted and sanitised as a tree.
pub const MAX_HTML_BYTES: usize = 1024 * 1024;
/// The deepest nesting of elements converted and sanitised as a tree (real
/// mail, Outlook's nested tables included, stays well under 100).
pub const MAX_HTML_DEPTH: usize = 128;
/// The most text the fallback keeps from one HTML part.
const MAX_STRIPPED_CHARS: usize = 1_000_000;

/// Why an HTML part was not read as a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Larger than [`MAX_HTML_BYTES`].
    TooLarge(usize),
    /// Elements nested deeper than [`MAX_HTML_DEPTH`] (or left unclosed).
    TooDeep,
}

impl Refusal {
    /// A sentence for the message: what happened and why.
    pub fn notice(&self) -> String {
        match self {
            Refusal::TooLarge(n) => format!(
                "The HTML of this mail ({n} bytes, more than {MAX_HTML_BYTES}) was not rendered: it is shown as plain text."
            ),
            Refusal::TooDeep => format!(
                "The HTML of this mail nests elements deeper than {MAX_HTML_DEPTH} (or leaves them unclosed) and was not rendered: it is shown as plain text."
            ),
        }
    }
}

/// Elements that never have content.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "keygen", "frame", "basefont", "isindex",
];
/// Elements whose end tag may be left out: the next sibling closes them,
/// so they do not deepen the tree however many are left open.
const OPTIONAL_END: &[&str] = &[
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot",
    "colgroup", "rp", "rt", "rb", "rtc", "html", "head", "body",
];
/// Elements whose content is raw text, not markup.
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "noscript"];

/// One tag found by [`tags`]: its lower-case name, whether it closes, and
/// whether it closes itself (`<br/>`); the byte range it spans.
struct Tag {
    name: [u8; 16],
    len: usize,
    /// A comment, doctype or processing instruction: no element.
    comment: bool,
    closing: bool,
    self_closing: bool,
    start: usize,
    end: usize,
}

impl Tag {
    fn comment(start: usize, end: usize) -> Self {
        Tag {
            name: [0; 16],
            len: 0,
            comment: true,
            closing: false,
            self_closing: false,
            start,
            end,
        }
    }

    fn name(&self) -> &str {
        std::str::from_utf8(&self.name[..self.len]).unwrap_or("")
    }
}

/// Walks the tags of `html` once, in order, skipping comments, doctypes and
/// the content of raw-text elements; `visit` gets each tag.
fn tags(html: &[u8], mut visit: impl FnMut(&Tag)) {
    let mut i = 0;
    while let Some(off) = memchr(b'<', &html[i..]) {
        let start = i + off;
        let rest = &html[start + 1..];
        if rest.starts_with(b"!--") {
            i = match find(&rest[3..], b"-->") {
                Some(e) => start + 1 + 3 + e + 3,
                None => html.len(),
            };
            visit(&Tag::comment(start, i));
            continue;
        }
        let (closing, name_at) = if rest.first() == Some(&b'/') {
            (true, 1)
        } else {
            (false, 0)
        };
        let name_bytes = &rest[name_at..];
        if !name_bytes.first().is_some_and(u8::is_ascii_alphabetic) {
            // `<!doctype`, `<?xml`, a lone `<`: not an element.
            i = start + 1;
            if matches!(rest.first(), Some(b'!' | b'?')) {
                i = match memchr(b'>', rest) {
                    Some(e) => start + 1 + e + 1,
                    None => html.len(),
                };
                visit(&Tag::comment(start, i));
            }
            continue;
        }
        let mut tag = Tag {
            name: [0; 16],
            len: 0,
            comment: false,
            closing,
            self_closing: false,
            start,
            end: html.len(),
        };
        for &b in name_bytes
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-' || **b == b':')
        {
            if tag.len < tag.name.len() {
                tag.name[tag.len] = b.to_ascii_lowercase();
                tag.len += 1;
            }
        }
        // The tag ends at the next `>` outside a quoted attribute value.
        let mut quote = None;
        let mut j = start + 1 + name_at + tag.len;
        while j < html.len() {
            let b = html[j];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if b == b'>' => {
                    tag.self_closing = j > 0 && html[j - 1] == b'/';
                    tag.end = j + 1;
                    break;
                }
                None => {}
            }
            j += 1;
        }
        i = tag.end;
        visit(&tag);
        if !tag.closing && RAW_TEXT.contains(&tag.name()) {
            // Skip to the matching end tag, case-insensitively.
            let want = format!("</{}", tag.name());
            i = match find_ascii_ci(&html[i..], want.as_bytes()) {
                Some(e) => i + e,
                None => html.len(),
            };
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn find_ascii_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Whether `html` may be read as a tree: `Err` says why not. Linear in its
/// size; stops at the first bound crossed.
pub fn check(html: &str) -> Result<(), Refusal> {
    if html.len() > MAX_HTML_BYTES {
        return Err(Refusal::TooLarge(html.len()));
    }
    let mut depth = 0usize;
    let mut deepest = 0usize;
    tags(html.as_bytes(), |t| {
        let name = t.name();
        if t.comment || VOID.contains(&name) || OPTIONAL_END.contains(&name) || t.self_closing {
            return;
        }
        if t.closing {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
        }
    });
    if deepest > MAX_HTML_DEPTH {
        Err(Refusal::TooDeep)
    } else {
        Ok(())
    }
}

/// Plain text from any HTML in one pass: tags dropped (block ends and `<br>`
/// become line breaks), script and style content skipped, common entities
/// decoded, blank runs collapsed; at most a million characters.
pub fn strip_tags(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len().min(MAX_STRIPPED_CHARS) / 2);
    let mut pos = 0;
    let mut chars = 0usize;
    let push_text = |out: &mut String, text: &str, chars: &mut usize| {
        for c in decode_entities(text).chars() {
            if *chars >= MAX_STRIPPED_CHARS {
                return;
            }
            let c = if c == '\u{a0}' || c == '\t' || c == '\r' || c == '\n' {
                ' '
            } else {
                c
            };
            if c == ' ' && (out.ends_with(' ') || out.ends_with('\n') || out.is_empty()) {
                continue;
            }
            out.push(c);
            *chars += 1;
        }
    };
    tags(bytes, |t| {
        if t.start > pos {
            let text = html.get(pos..t.start).unwrap_or("");
            push_text(&mut out, text, &mut chars);
        }
        pos = t.end;
        let name = t.name();
        let breaks = matches!(
            name,
            "br" | "p"
                | "div"
                | "tr"
                | "li"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "blockquote"
                | "table"
                | "pre"
                | "hr"
        );
        if breaks && chars < MAX_STRIPPED_CHARS {
            while out.ends_with(' ') {
                out.pop();
            }
            if !out.ends_with('\n') && !out.is_empty() {
                out.push('\n');
                chars += 1;
            }
        }
        if !t.closing && RAW_TEXT.contains(&name) {
            // Its content is skipped by `tags`; resume after its end tag.
            pos = usize::MAX;
        }
    });
    if pos < bytes.len() {
        let text = html.get(pos..).unwrap_or("");
        push_text(&mut out, text, &mut chars);
    }
    out.trim().to_string()
}

/// Decodes the named entities mail uses most and numeric ones; anything
/// else stays as written.
fn decode_entities(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let end = rest.as_bytes()[..rest.len().min(12)]
            .iter()
            .position(|&b| b == b';');
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    let num = name.strip_prefix('#')?;
                    let n = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(n).filter(|c| !c.is_control() || *c == '\n')
                }
            }?;
            Some((c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(tag: &str, n: usize) -> String {
        format!(
            "{}x{}",
            format!("<{tag}>").repeat(n),
            format!("</{tag}>").repeat(n)
        )
    }

    #[test]
    fn ordinary_mail_html_is_read_as_a_tree() {
        let html = "<!DOCTYPE html><html><head><style>p { a<b }</style><title>x</title></head><body>\
            <table><tr><td><p>Hello<br>there<p>again<ul><li>one<li>two</ul></td></tr></table>\
            <img src=cid:x><!-- <div><div><div> --></body></html>";
        assert_eq!(check(html), Ok(()));
        assert_eq!(check(&nested("div", MAX_HTML_DEPTH)), Ok(()));
    }

    #[test]
    fn deep_unclosed_and_large_html_is_refused() {
        assert_eq!(
            check(&nested("div", MAX_HTML_DEPTH + 1)),
            Err(Refusal::TooDeep)
        );
        assert_eq!(check(&"<b>".repeat(10_000)), Err(Refusal::TooDeep));
        assert_eq!(check(&"<table><tr><td>".repeat(500)), Err(Refusal::TooDeep));
        let big = "<p>hello</p>".repeat(100_000);
        assert_eq!(check(&big), Err(Refusal::TooLarge(big.len())));
    }

    #[test]
    fn unclosed_paragraphs_and_list_items_do_not_count_as_depth() {
        assert_eq!(check(&"<p>para".repeat(50_000)), Ok(()));
        assert_eq!(
            check(&format!("<ul>{}</ul>", "<li>x".repeat(50_000))),
            Ok(())
        );
    }

    #[test]
    fn quoted_angle_brackets_do_not_end_a_tag() {
        let html = format!("<a title=\"<div><div>\" href='x>y'>{}</a>", "z");
        assert_eq!(check(&html), Ok(()));
        assert_eq!(strip_tags(&html), "z");
    }

    #[test]
    fn stripping_keeps_the_words_and_the_lines() {
        let html = "<html><head><style>.a{color:red}</style><script>if (a<b) x()</script></head>\
            <body><div>Hello&nbsp;<b>Jane</b>,</div><p>Fish &amp; chips &#8364;5 &#x41;</p>\
            line<br>next &bogus; &amp</body></html>";
        assert_eq!(
            strip_tags(html),
            "Hello Jane,\nFish & chips €5 A\nline\nnext &bogus; &amp"
        );
    }

    #[test]
    fn stripping_is_bounded_and_survives_broken_markup() {
        assert_eq!(strip_tags("<div"), "");
        assert_eq!(strip_tags("a < b > c"), "a < b > c");
        assert_eq!(strip_tags("<!-- never closed"), "");
        assert_eq!(strip_tags("<script>never closed"), "");
        let long = "word ".repeat(400_000);
        assert!(strip_tags(&long).chars().count() <= MAX_STRIPPED_CHARS);
        let deep = nested("div", 100_000);
        assert_eq!(strip_tags(&deep), "x");
    }
}
