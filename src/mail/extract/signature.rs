//! What closes a message without being part of its news: "-- " signatures,
//! a client's "Sent from my iPhone" line in any language, a closing with
//! the name and contact block under it ("Kind regards,\nJane Doe\nACME"),
//! rules above a footer, and an "external sender" banner put on top by a
//! gateway. The extractor folds these away (the whole text stays on the
//! message, one click away); never when nothing would be left.

use super::phrases;
use regex::Regex;
use std::sync::LazyLock;

/// A closing line: a phrase of `phrases::CLOSINGS`, optionally with a name
/// after it ("LG, Eva") and closing punctuation.
static CLOSING: LazyLock<Regex> = LazyLock::new(|| {
    let mut words: Vec<String> = phrases::CLOSINGS.iter().map(|w| regex::escape(w)).collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    Regex::new(&format!(
        r"^(?i:{})(?:\s+(?i:and|und|et|y|e|en|och|og|i|a|ve|и)\s+\p{{L}}+(?:\s+\p{{L}}+){{0,3}})?\s*[,.!。、،，]*(?:\s*[,،，-]?\s*\p{{Lu}}[\p{{L}}'.-]*(?:\s+\p{{Lu}}[\p{{L}}'.-]*){{0,2}})?\s*[,.!]*$",
        words.join("|")
    ))
    .expect("valid regex")
});

/// A sign-off by name alone: "-Abhishek", "— Jane Doe", "/John".
static DASH_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:-{1,2}|—|–|/{1,2})\s?\p{Lu}[\p{L}'.-]*(?:\s+\p{Lu}[\p{L}'.-]*){0,2}\s*$")
        .expect("valid regex")
});

/// A device or mail app named in a short line.
static DEVICE: LazyLock<Regex> = LazyLock::new(|| {
    let words: Vec<String> = phrases::DEVICES.iter().map(|w| regex::escape(w)).collect();
    Regex::new(&format!(r"(?i)(?:{})", words.join("|"))).expect("valid regex")
});

/// The phrases of a client's "sent from" line.
static SENT_FROM: LazyLock<Regex> = LazyLock::new(|| {
    let words: Vec<String> = phrases::SENT_FROM
        .iter()
        .map(|w| regex::escape(w))
        .collect();
    Regex::new(&format!(r"(?i)(?:{})", words.join("|"))).expect("valid regex")
});

/// A phone number in a contact block.
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\(?\d[\d\s()./-]{6,}\d").expect("valid regex"));

/// The words of an external-sender banner.
static BANNER: LazyLock<Regex> = LazyLock::new(|| {
    let words: Vec<String> = phrases::BANNERS.iter().map(|w| regex::escape(w)).collect();
    Regex::new(&format!(r"(?i)(?:{})", words.join("|"))).expect("valid regex")
});

/// Compiles the rules now rather than on the first mail.
pub(super) fn warm_up() {
    for rule in [&CLOSING, &DASH_NAME, &DEVICE, &SENT_FROM, &PHONE, &BANNER] {
        LazyLock::force(rule);
    }
}

fn words(line: &str) -> usize {
    line.split_whitespace().count()
}

/// Whether a line is a mail client's signature ("Sent from my iPhone",
/// "Enviado do iPhone", "Az iPhone-omról küldve", "Get Outlook for
/// Android"): short, not a sentence going on, and naming a device or app
/// or saying "sent from". "Sent from my desk, is much easier…" is text.
pub(super) fn is_sent_from(line: &str) -> bool {
    let t = line.trim().trim_start_matches(['(', '<', '[']);
    if t.is_empty() || t.chars().count() > 80 || t.contains(", ") || words(t) > 9 {
        return false;
    }
    if t.ends_with('?') {
        return false;
    }
    let sent = SENT_FROM.is_match(t);
    if t.to_lowercase().starts_with("sent from my ") {
        return true;
    }
    let device = DEVICE.is_match(t);
    // "Sent from my desk" alone is not enough, "Sent from my iPhone" is; a
    // line naming a device and a sending verb in another language too.
    (sent && (device || words(t) <= 6 && t.to_lowercase().starts_with("sent ")))
        || (device && words(t) <= 6 && !t.ends_with('.') && sending_word(t))
}

/// Whether a short line says "sent"/"get" in some language, besides naming a device.
fn sending_word(t: &str) -> bool {
    let lower = t.to_lowercase();
    [
        "sent",
        "send",
        "get ",
        "gesendet",
        "envoy",
        "enviad",
        "inviato",
        "verzonden",
        "verstuurd",
        "skickat",
        "sendt",
        "wysłan",
        "trimis",
        "lähetetty",
        "küldve",
        "στάλθηκε",
        "odesláno",
        "gönder",
        "отправлено",
        "надіслано",
        "obter",
        "obtener",
        "hanki",
        "pobierz",
        "scarica",
        "download",
        "beziehen",
        "téléchargez",
        "from my",
        "von meinem",
        "mijn",
        "min ",
        "mon ",
        "mi ",
        "meu ",
        "mio ",
        "moj",
        "mój",
        "iphone-om",
        "iphonesta",
        "iphone'a",
        "iphone’a",
        "iphoneから",
        "에서 보냄",
        "發自",
        "发自",
        "傳送",
        "أرسلت",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// Whether a line opens a "-- " signature or is a client's signature line.
pub(super) fn is_signature_start(line: &str) -> bool {
    let t = line.trim_end();
    t == "--" || t == "-- " || t == "__" || t.trim() == "--" || is_sent_from(line)
}

/// A line drawn only with rule characters ("====", "____", "ᐧ", "* * *").
pub(super) fn is_rule(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.chars().all(|c| "-_,=+~#*ᐧ—. ".contains(c)) && t.chars().any(|c| c != '.')
}

/// A rule that ends the new text: what follows it is a footer or signature
/// ("____" above a mailing list's footer, "====" above a forwarded block,
/// "* * *" or ". . . . ." above a legal notice).
pub(super) fn is_closing_rule(line: &str) -> bool {
    let t = line.trim();
    if t == "ᐧ" {
        return true;
    }
    let marks: Vec<char> = t.chars().filter(|c| !c.is_whitespace()).collect();
    let spaced = t.contains(' ')
        && marks.len() >= 3
        && marks
            .iter()
            .all(|&c| c == '*' || c == '.' || c == '·' || c == '•');
    spaced || (t.chars().count() >= 4 && t.chars().all(|c| c == '_' || c == '='))
}

/// Whether a line reads like part of a name, title or contact block under a
/// closing: short, not a question, not a long sentence.
fn is_contact_line(line: &str) -> bool {
    let t = line.trim();
    t.chars().count() <= 70 && words(t) <= 8 && !t.ends_with('?') && !t.ends_with(':')
}

/// Whether a line holds a phone number, an address or a web site.
fn is_contact(line: &str) -> bool {
    let t = line.trim();
    PHONE.is_match(t) || t.contains('@') || t.contains("www.") || t.contains("http")
}

/// Whether a line looks like a person's name: one to four words, each
/// starting with a capital letter (or a letter of a script without case,
/// "山田太郎"), no digits.
fn is_name(line: &str) -> bool {
    let t = line.trim();
    let n = words(t);
    (1..=4).contains(&n)
        && !t.chars().any(|c| c.is_ascii_digit())
        && t.split_whitespace().all(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() && !c.is_lowercase())
        })
}

/// Where the closing and the signature block under it begin, if the text
/// ends with one: "Kind regards,\nJane Doe\nSupport lead" or "LG, Eva" or
/// "-Abhishek", or a name and contact block after a blank line ("Jane
/// Doe\nACME Ltd.\n+49 30 1234567"). Never the first line of the text.
pub(super) fn closing_start(lines: &[&str]) -> Option<usize> {
    let content: Vec<usize> = (0..lines.len())
        .filter(|&i| !lines[i].trim().is_empty())
        .collect();
    let first = *content.first()?;
    let tail_from = content.len().saturating_sub(8);
    for &k in &content[tail_from..] {
        if k == first {
            continue;
        }
        let t = lines[k].trim();
        let after_ok = || {
            let after: Vec<&str> = lines[k + 1..]
                .iter()
                .copied()
                .filter(|l| !l.trim().is_empty())
                .collect();
            after.len() <= 6
                && after.iter().all(|l| is_contact_line(l))
                && after
                    .first()
                    .is_none_or(|l| is_name(l) || is_contact(l) || DASH_NAME.is_match(l))
        };
        if (CLOSING.is_match(t) || DASH_NAME.is_match(t)) && after_ok() {
            return Some(k);
        }
    }
    // A contact block without a closing: after a blank line, a name, then
    // lines of which one holds a phone number, an address or a web site.
    let last_blank = (first..lines.len())
        .rev()
        .find(|&i| lines[i].trim().is_empty())?;
    let block: Vec<&str> = lines[last_blank + 1..]
        .iter()
        .copied()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let has_text_above = lines[..last_blank].iter().any(|l| !l.trim().is_empty());
    (has_text_above
        && (2..=6).contains(&block.len())
        && is_name(block[0])
        && block.iter().all(|l| is_contact_line(l))
        && block.iter().any(|l| is_contact(l)))
    .then_some(last_blank + 1)
}

/// How many lines of an external-sender banner open the text (with the
/// blank lines after it); 0 when there is none.
pub(super) fn banner_len(lines: &[&str]) -> usize {
    let Some(first) = lines.iter().position(|l| !l.trim().is_empty()) else {
        return 0;
    };
    let end = (first..lines.len())
        .find(|&i| lines[i].trim().is_empty())
        .unwrap_or(lines.len());
    let paragraph = &lines[first..end];
    let banner = paragraph.len() <= 4
        && paragraph.iter().any(|l| BANNER.is_match(l))
        && paragraph.iter().map(|l| l.len()).sum::<usize>() <= 600;
    let rest = lines[end..].iter().any(|l| !l.trim().is_empty());
    if !(banner && rest) {
        return 0;
    }
    (end..lines.len())
        .find(|&i| !lines[i].trim().is_empty())
        .unwrap_or(lines.len())
}
