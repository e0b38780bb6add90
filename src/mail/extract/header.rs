//! Quote headers: the line or lines a client writes above quoted history
//! ("On Tue, Jane <j@x.org> wrote:", "Am … schrieb …:", an Outlook
//! "From: / Sent: / To: / Subject:" block, "-----Original Message-----").
//! Recognised by shape (a date or time and a name or address, ending in a
//! colon; a block of `Label: value` lines) with the words from
//! `phrases.rs`. Every rule is a line-level regex: linear in the input.

use super::phrases;
use regex::Regex;
use std::sync::LazyLock;

/// `a|b|c` of a phrase table, for a regex alternation.
fn alternation(words: &[&str]) -> String {
    let mut words: Vec<&str> = words.to_vec();
    // Longest first, so that "napisał(a)" wins over "napisał".
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    words.join("|")
}

/// Escaped `a|b|c` of labels (they hold no regex syntax of their own).
fn labels(words: &[&str]) -> String {
    let mut words: Vec<String> = words.iter().map(|w| regex::escape(w.trim())).collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    words.dedup();
    words.join("|")
}

/// Lines that introduce quoted history: "On Tue, Jane wrote:" and its translations.
static WROTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^\s*(?:>\s*)?(?:-+\s*)?(?:on|at|am|le|el|il|il giorno|op|den|em|pe|στις|في|no dia|w dniu|dne|på|в|у|lúc|el día|den \d|op \d|am \d|le \d|\d{{1,4}}[./-]\d{{1,2}}[./-]\d{{1,4}}|\d{{4}}年|[^\s\d]{{1,12}}\.?,?\s+\d).{{0,400}}?(?:{})(?:\s*[:：]?\s*(?:-{{2,}}\s*)?$|\s.{{0,160}}[:：]\s*$)",
        alternation(phrases::WROTE)
    ))
    .expect("valid regex")
});

/// A dated header without its colon: "Am 20.06.24 um 16:20 schrieb Jane Doe".
static WROTE_NO_COLON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?i:am|on|le|op|el|em|il)\s.{0,60}\d{1,2}[:.]\d{2}.{0,60}\s(?i:schrieb|wrote|a écrit|schreef|escribió|escreveu|ha scritto|skrev)\s+\p{Lu}[\p{L}'.-]*(?:\s+\p{Lu}[\p{L}'.-]*){0,3}(?:\s*<[^<>\s]+>)?\s*$")
        .expect("valid regex")
});

/// Chinese, Japanese and Korean forms ("在 … 写道：", "… のメッセージ:", "…님이 작성:").
static WROTE_CJK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:在|於|于).{0,300}(?:写道|寫道)\s*[:：]\s*$|.{0,300}(?:写道|寫道|のメッセージ|書きました|님이 작성|작성)\s*[:：]\s*$").expect("valid regex")
});

/// A header that starts with a date and names the author's address:
/// `30.09.2017, 18.30, "Jane" <jane@example.org>:` or `2016-03-03 17:21 GMT+01:00 Jane <j@x.org>:`.
static DATE_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\d{1,4}[./-]\d{1,2}[./-]\d{1,4}[,\s].{0,200}@.{0,200}[:：]\s*$")
        .expect("valid regex")
});

/// Any header naming an address and ending with a "wrote" verb, whatever
/// comes first: `Jane <j@x.org> schrieb am Mi., 17. Mai 2017:`,
/// `Jane <j@x.org> ezt írta (időpont: 2026. jan. 3., H, 9:00):`.
static WROTE_ANY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)@.{{0,300}}(?:{})(?:\s.{{0,120}})?\s*[:：]\s*$",
        alternation(phrases::WROTE)
    ))
    .expect("valid regex")
});

/// A name-first header without an address, ending in a "wrote" verb and a
/// date: `Jane Doe schrieb am Do., 3. Jan. 2026, 09:00:`.
static NAME_WROTE_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^\s*[^\s:]{{1,40}}(?:\s+[^\s:]{{1,40}}){{0,4}}\s+(?:{})\s+(?:am|on|le|el|il|op|den|em)\s.{{0,80}}\d.{{0,80}}[:：]\s*$",
        alternation(phrases::WROTE)
    ))
    .expect("valid regex")
});

/// A header that starts with a time or date and ends with the author's
/// address: `11:00 AM, November 17, 2021, "Jane" <j@x.org>:`.
static STAMP_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\d.{0,250}@[^\s>]{1,200}>\s*[:：]\s*$").expect("valid regex")
});

/// A header that names a date or time and ends with the author's address in
/// angle brackets: `Wednesday, 17 November 2021, 3:32 PM +0300 from j@x.org <j@x.org>:`,
/// `ср, 30 апр. 2025 г. в 15:19, John Doe <doe@example.com>:`.
static STAMP_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\b(?:19|20)\d{2}\b|\b\d{1,2}[:.]\d{2}\b|\d{4}年).{0,250}<[^<>@\s]{1,100}@[^<>\s]{1,200}\s*>\s*[:：]\s*$")
        .expect("valid regex")
});

/// A date, a name and an address, nothing more: `2013/7/20 sam via Meta <info@x.org>`.
static DATE_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\s.{0,200}<[^<>@\s]{1,100}@[^<>\s]{1,200}>\s*:?\s*$",
    )
    .expect("valid regex")
});

/// Gmail's ISO form without a verb: `2016-03-03 17:21 GMT+01:00 Some One`
/// (the name, group 1, is at most `ISO_STAMP_NAME` characters: counted by
/// `is_iso_stamp`, since `{1,100}` over Unicode's `\w` compiled to 5.7 MB).
static ISO_STAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\d{4}-\d{2}-\d{2} \d{1,2}:\d{2} GMT[+-]\d{2}:\d{2} ([\w\s.'-]+)$")
        .expect("valid regex")
});

/// The longest name `ISO_STAMP` accepts after the time, in characters.
pub(super) const ISO_STAMP_NAME: usize = 100;

/// Whether a text is Gmail's ISO header with a name of a sensible length.
pub(super) fn is_iso_stamp(text: &str) -> bool {
    ISO_STAMP
        .captures(text)
        .is_some_and(|c| c[1].chars().count() <= ISO_STAMP_NAME)
}

/// The opening word of an "On … wrote:" header, for headers wrapped over lines.
static WROTE_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:on|am|le|el|il|op|em|den|pe|dnia|w dniu|в|στις|في|wiadomość napisana)\s")
        .expect("valid regex")
});

/// A line opening with a date: "2016-03-03", "tir. 18. apr.", "ср, 30 апр.", "Wednesday, 17".
static DATE_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:\d|[^\s\d]{1,12}\.?,?\s+\d)").expect("valid regex"));

/// "20 окт. 2016 г. 19:37 пользователь … написал:", "30 серп. 2016 р. 20:45 … пише:".
static DATE_WROTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\d{4}.{1,200}(?:написал\(а\)|написала|написал|написав|пише|napisał\(a\)|napisał)\s*:\s*$",
    )
    .expect("valid regex")
});

/// Apple Mail in Polish: "Wiadomość napisana przez Jane <j@x.org> w dniu 03.01.2026, o godz. 09:00:".
static APPLE_PL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*wiadomość napisana przez .{1,300}[:：]\s*$").expect("valid regex")
});

/// Separator lines: "-----Original Message-----" and friends, also when the
/// client ran the next line onto it ("-------- Ursprüngliche Nachricht --------Von: …").
static ORIGINAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^\s*[-_=*>\s]{{2,}}\s*(?:{})\s*(?:[-_=*]{{2,}}.*|[-_=*]*\s*$)",
        alternation(phrases::ORIGINAL)
    ))
    .expect("valid regex")
});

/// "Begin forwarded message:" and similar openers.
static FORWARDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^\s*(?:{})\s*[:：]?\s*$",
        alternation(phrases::FORWARDED)
    ))
    .expect("valid regex")
});

/// The "From:" line of an Outlook-style header block, in many languages,
/// with optional bold (`*From:*`, `**Von:**`) or quote markers.
static HEADER_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^\s*(?:>\s*)?\**\s*(?:{})\s*\**\s*[:：]\s*\**\s*\S",
        labels(phrases::FROM_LABELS)
    ))
    .expect("valid regex")
});

/// Other lines of such a block ("Sent:", "Date:", "To:", "Subject:", …).
static HEADER_OTHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^\s*(?:>\s*)?\**\s*(?:{})\s*\**\s*[:：]",
        labels(phrases::OTHER_LABELS)
    ))
    .expect("valid regex")
});

/// Compiles the rules now rather than on the first mail.
pub(super) fn warm_up() {
    for rule in [
        &WROTE,
        &WROTE_CJK,
        &WROTE_NO_COLON,
        &DATE_FIRST,
        &WROTE_ANY,
        &NAME_WROTE_DATE,
        &STAMP_FIRST,
        &STAMP_ADDRESS,
        &DATE_ADDRESS,
        &ISO_STAMP,
        &WROTE_START,
        &DATE_START,
        &DATE_WROTE,
        &APPLE_PL,
        &ORIGINAL,
        &FORWARDED,
        &HEADER_FROM,
        &HEADER_OTHER,
    ] {
        LazyLock::force(rule);
    }
}

/// Whether a text (one line, or a header joined from several) is a quote header.
fn is_header_text(text: &str) -> bool {
    WROTE.is_match(text)
        || WROTE_CJK.is_match(text)
        || WROTE_NO_COLON.is_match(text)
        || ORIGINAL.is_match(text)
        || DATE_FIRST.is_match(text)
        || WROTE_ANY.is_match(text)
        || NAME_WROTE_DATE.is_match(text)
        || STAMP_FIRST.is_match(text)
        || STAMP_ADDRESS.is_match(text)
        || is_iso_stamp(text)
        || FORWARDED.is_match(text)
        || DATE_WROTE.is_match(text)
        || DATE_ADDRESS.is_match(text)
        || APPLE_PL.is_match(text)
}

/// A line of an Outlook-style header block ("From:", "Sent:", "Sujet :", …).
pub(super) fn is_header_field(line: &str) -> bool {
    HEADER_FROM.is_match(line) || HEADER_OTHER.is_match(line)
}

/// How many lines a header starting at `i` takes: through the first line
/// ending with a colon, within a few lines (a header wrapped by the client).
pub(super) fn header_len(lines: &[&str], i: usize) -> usize {
    (i..lines.len().min(i + 6))
        .find(|&k| {
            let t = lines[k].trim_end();
            t.ends_with(':') || t.ends_with('：')
        })
        .map_or(1, |k| k + 1 - i)
}

/// Whether a line ends a sentence of the requester's ("… tomorrow."): a
/// header's first part ends in an abbreviation ("mar.") at most.
fn ends_sentence(line: &str) -> bool {
    let t = line.trim_end();
    if !t.ends_with(['.', '!', '?']) {
        return false;
    }
    let last = t.split_whitespace().last().unwrap_or("");
    last.ends_with(['!', '?']) || last.chars().count() > 5
}

/// Whether line `i` begins a quote header (alone, or wrapped over the next lines).
pub(super) fn is_quote_header(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    if line.trim().is_empty() {
        return false;
    }
    if is_header_text(line) {
        return true;
    }
    // A header wrapped over several lines by the client: "On Tue, 3 Jan 2026,
    // Jane Doe <jane@example.org>\nwrote:", "… schrieb am Di., 16. Aug. 2016\num
    // 12:52 Uhr:", "Le 4 janv. 2016 19:03, \"Neil\"\n<n@x.org> a écrit :". The
    // lines are contiguous and the first names a date or an address. When the
    // later lines are a header on their own, the first belongs to it only if it
    // opens like a header ("On …", "Le …", a date) and does not end a sentence:
    // "Le fichier est joint.\nLe mar. 3 janv. … a écrit :" starts at its second line.
    let first = line.trim();
    if !super::quoted(line)
        && (first.contains('@')
            || first.chars().any(|c| c.is_ascii_digit())
            || WROTE_START.is_match(first))
    {
        let opens =
            (WROTE_START.is_match(first) || DATE_START.is_match(first)) && !ends_sentence(first);
        let mut joined = first.to_string();
        let mut rest = String::new();
        // Only a dated "On …" header is wrapped around blank lines ("On Thu, 31 Mar
        // 2016 at 11:16 Some One\n\n<\nmailto:…>\n> wrote:"); "On this day\n\nI
        // wrote something" is text.
        let gaps = WROTE_START.is_match(first) && first.chars().any(|c| c.is_ascii_digit());
        for next in lines[i + 1..]
            .iter()
            .take(6)
            .take_while(|l| gaps || !l.trim().is_empty())
            .filter(|l| !l.trim().is_empty())
            .take(4)
        {
            // "> wrote:" continues the header; ">:" closes an address; an
            // address cut after its "<" goes on without a space.
            let part = next.trim_start();
            let part = part.strip_prefix("> ").unwrap_or(part).trim();
            if !joined.ends_with('<') {
                joined.push(' ');
            }
            joined.push_str(part);
            rest.push(' ');
            rest.push_str(part);
            if joined.len() > 600 {
                break;
            }
            if is_header_text(&joined) && (opens || !is_header_text(rest.trim())) {
                return true;
            }
        }
    }
    // An Outlook block: "From:" followed within a few lines by "Sent:"/"Date:"/"To:"/"Subject:".
    if HEADER_FROM.is_match(line) {
        let next = lines[i + 1..]
            .iter()
            .take(6)
            .filter(|l| !l.trim().is_empty())
            .take(4);
        if next.filter(|l| HEADER_OTHER.is_match(l)).count() >= 2 {
            return true;
        }
    }
    // Or three header fields in a row, one of them the sender ("Message du :",
    // "De :", "A :", "Sujet :").
    if is_header_field(line) {
        let block: Vec<&&str> = lines[i..]
            .iter()
            .take(8)
            .take_while(|l| is_header_field(l))
            .collect();
        if block.len() >= 3 && block.iter().any(|l| HEADER_FROM.is_match(l)) {
            return true;
        }
    }
    // A rule of underscores or dashes directly followed by such a block.
    let rule = line.trim();
    if rule.chars().count() >= 10 && rule.chars().all(|c| c == '_' || c == '-' || c == '—') {
        return lines[i + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| HEADER_FROM.is_match(l));
    }
    false
}
