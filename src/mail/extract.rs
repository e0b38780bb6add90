//! The new text of a reply (SPEC §5.6): quoted history ("On … wrote:" and
//! its translations, Outlook header blocks, "-----Original Message-----",
//! forwarded-message markers, trailing `>` quotes) and signatures ("-- ",
//! "Sent from my …") are folded away. When nothing would be left, the whole
//! body is the reply. Line-based and linear in the input: no backtracking
//! regex runs over the whole text.

use regex::Regex;
use std::sync::LazyLock;

/// Lines that introduce quoted history: "On Tue, Jane wrote:" and its translations.
static WROTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:>\s*)?(?:-+\s*)?(?:on|at|am|le|el|il|op|den|em|no dia|w dniu|dne|på|в|у|lúc|el día|den \d|op \d|am \d|le \d|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{4}年).{0,400}?(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|skrev|escreveu|napisał\(a\)|napisał|pisze|написал\(а\)|написал|написала|написав|kirjoitti|yazdı|napsal|írta|viết|geschreven|a scris|kirjutas|rašė|rakstīja|je napisal|napisao)(?:\s*:?\s*(?:-{2,}\s*)?$|\s.{0,160}:\s*$)",
    )
    .expect("valid regex")
});

/// Chinese and Japanese forms ("在 … 写道：", "… のメッセージ:").
static WROTE_CJK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:在|於|于).{0,300}(?:写道|寫道)\s*[:：]\s*$|.{0,300}(?:写道|寫道|のメッセージ|書きました)\s*[:：]\s*$").expect("valid regex")
});

/// A header that starts with a date and names the author's address:
/// `30.09.2017, 18.30, "Jane" <jane@example.org>:` or `2016-03-03 17:21 GMT+01:00 Jane <j@x.org>:`.
static DATE_FIRST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\d{1,4}[./-]\d{1,2}[./-]\d{1,4}[,\s].{0,200}@.{0,200}:\s*$")
        .expect("valid regex")
});

/// Any header naming an address and ending with a "wrote" verb, whatever
/// comes first: `Jane <j@x.org> schrieb am Mi., 17. Mai 2017:`,
/// `20 окт. 2016 г. 19:37 пользователь "Jane" <j@x.org> написал:`.
static WROTE_ANY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)@.{0,300}(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|skrev|escreveu|napisał\(a\)|napisał|pisze|написал\(а\)|написал|написала|написав|kirjoitti|yazdı|napsal|írta|geschreven)(?:\s.{0,120})?\s*:\s*$",
    )
    .expect("valid regex")
});

/// A header that starts with a time or date and ends with the author's
/// address: `11:00 AM, November 17, 2021, "Jane" <j@x.org>:`.
static STAMP_FIRST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*\d.{0,250}@[^\s>]{1,200}>\s*:\s*$").expect("valid regex"));

/// A header that names a date or time and ends with the author's address in
/// angle brackets: `Wednesday, 17 November 2021, 3:32 PM +0300 from j@x.org <j@x.org>:`,
/// `ср, 30 апр. 2025 г. в 15:19, John Doe <doe@example.com>:`.
static STAMP_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\b(?:19|20)\d{2}\b|\b\d{1,2}[:.]\d{2}\b).{0,250}<[^<>@\s]{1,100}@[^<>\s]{1,200}\s*>\s*:\s*$")
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
const ISO_STAMP_NAME: usize = 100;

/// Whether a text is Gmail's ISO header with a name of a sensible length.
fn is_iso_stamp(text: &str) -> bool {
    ISO_STAMP
        .captures(text)
        .is_some_and(|c| c[1].chars().count() <= ISO_STAMP_NAME)
}

/// The opening word of an "On … wrote:" header, for headers wrapped over lines.
static WROTE_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:on|am|le|el|il|op|em|den|dnia|w dniu|в)\s").expect("valid regex")
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

/// Separator lines: "-----Original Message-----" and friends.
static ORIGINAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*[-_=*]{2,}\s*(?:original message|original e-?mail|ursprüngliche nachricht|originalnachricht|message d'origine|message original|mensaje original|messaggio originale|oorspronkelijk bericht|origineel bericht|opprinnelig melding|originalmelding|ursprungligt meddelande|originalmeddelande|wiadomość oryginalna|oryginalna wiadomość|mensagem original|исходное сообщение|оригинальное сообщение|вихідне повідомлення|оригінальне повідомлення|forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|videresendt melding|vidarebefordrat meddelande|oprindelig besked|alkuperäinen viesti|původní zpráva|eredeti üzenet|originalbericht)\s*[-_=*]{2,}\s*$",
    )
    .expect("valid regex")
});

/// "Begin forwarded message:" and similar openers.
static FORWARDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:begin forwarded message|anfang der weitergeleiteten nachricht|début du message réexpédié|inicio del mensaje reenviado)\s*:?\s*$").expect("valid regex")
});

/// The "From:" line of an Outlook-style header block, in several languages, with optional bold markers.
static HEADER_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*[*>]?\s*\*?(?:from|von|de|van|fra|från|od|от|від|da|lähettäjä|kimden|feladó|expéditeur|发件人)\s*[:：]\*?\s*\S").expect("valid regex")
});

/// Other lines of such a block ("Sent:", "Date:", "To:", "Subject:", …).
static HEADER_OTHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*[*>]?\s*\*?(?:sent|date|to|subject|cc|gesendet|datum|an|betreff|envoyé|date d'envoi|à|objet|enviado|fecha|para|asunto|verzonden|aan|onderwerp|sendt|til|emne|skickat|till|ämne|wysłano|data|do|temat|отправлено|дата|кому|тема|надіслано|inviato|oggetto|a|enviada|assunto|envoyé le|date d'envoi|sujet|copie à|destinataire|répondre à|message du|emne|ämne|risposta|beantwoorden - aan|enviada em|reply-to|收件人|主题|发送时间)\s*[:：]").expect("valid regex")
});

/// "Sent from my iPhone" and the like: a signature line of mobile clients.
static SENT_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*[(<]*(?:sent from my\b|sent (?:from|via|with|by) \S|get outlook for|envoyé de mon|envoyé depuis (?:mon|yahoo)|envoyé à partir de|von meinem .{0,40} gesendet|diese nachricht wurde von .{0,60} gesendet|enviado desde mi|enviado do meu|inviato da|verzonden met|verstuurd vanaf mijn|skickat från min|från min|sendt fra min|wysłane z mojego|отправлено с моего|sent via |gesendet von |envoyé depuis |enviado desde |отправлено из |從我的 iphone 傳送|\w+ from mobile)").expect("valid regex")
});

/// Whether a line is a mobile client's signature: one of the phrases above,
/// on a short line that is not a sentence going on ("Sent from my desk, is
/// much easier…" is text).
fn is_sent_from(line: &str) -> bool {
    let t = line.trim();
    t.chars().count() <= 80 && !t.contains(", ") && SENT_FROM.is_match(t)
}

/// Whether a text (one line, or a header joined from several) is a quote header.
fn is_header_text(text: &str) -> bool {
    WROTE.is_match(text)
        || WROTE_CJK.is_match(text)
        || ORIGINAL.is_match(text)
        || DATE_FIRST.is_match(text)
        || WROTE_ANY.is_match(text)
        || STAMP_FIRST.is_match(text)
        || STAMP_ADDRESS.is_match(text)
        || is_iso_stamp(text)
        || FORWARDED.is_match(text)
        || DATE_WROTE.is_match(text)
        || DATE_ADDRESS.is_match(text)
}

/// A line of an Outlook-style header block ("From:", "Sent:", "Sujet :", …).
fn is_header_field(line: &str) -> bool {
    HEADER_FROM.is_match(line) || HEADER_OTHER.is_match(line)
}

/// How many lines a header starting at `i` takes: through the first line
/// ending with a colon, within a few lines (a header wrapped by the client).
fn header_len(lines: &[&str], i: usize) -> usize {
    (i..lines.len().min(i + 6))
        .find(|&k| {
            let t = lines[k].trim_end();
            t.ends_with(':') || t.ends_with('：')
        })
        .map_or(1, |k| k + 1 - i)
}

fn is_quote_header(lines: &[&str], i: usize) -> bool {
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
    // opens like a header ("On …", "Le …", a date): "I ordered 3.\nOn Tue, Jane
    // <j@x.org> wrote:" starts at its second line.
    let first = line.trim();
    if !quoted(line)
        && (first.contains('@')
            || first.chars().any(|c| c.is_ascii_digit())
            || WROTE_START.is_match(first))
    {
        let opens = WROTE_START.is_match(first) || DATE_START.is_match(first);
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
            // "> wrote:" continues the header; ">:" closes an address.
            let part = next.trim_start();
            let part = part.strip_prefix("> ").unwrap_or(part).trim();
            joined.push(' ');
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
    if rule.len() >= 10 && rule.chars().all(|c| c == '_' || c == '-') {
        return lines[i + 1..]
            .iter()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| HEADER_FROM.is_match(l));
    }
    false
}

fn is_signature_start(line: &str) -> bool {
    let t = line.trim_end();
    t == "--" || t == "-- " || t == "__" || t.trim() == "--" || is_sent_from(line)
}

/// A line drawn only with rule characters ("====", "____", "ᐧ", "***").
fn is_rule(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && t.chars().all(|c| "-_,=+~#*ᐧ—".contains(c))
}

/// A rule that ends the new text: what follows it is a footer or signature
/// ("____" above a mailing list's footer, "====" above a forwarded block).
fn is_closing_rule(line: &str) -> bool {
    let t = line.trim();
    t == "ᐧ" || (t.chars().count() >= 4 && t.chars().all(|c| c == '_' || c == '='))
}

/// Whether a line is quoted: `>` or a Supercite-style `Jo>` prefix.
fn quoted(line: &str) -> bool {
    let t = line.trim_start();
    if t.starts_with('>') {
        return true;
    }
    let prefix: String = t.chars().take(4).collect();
    prefix
        .find('>')
        .is_some_and(|k| k > 0 && prefix[..k].chars().all(|c| c.is_ascii_uppercase()))
}

/// Whether `line` continues the quoted `previous` line, wrapped by a client
/// that did not repeat the `>`: the quote was cut at its full width, or the
/// line goes on in lower case from a sentence left open.
fn wraps_quote(previous: &str, line: &str) -> bool {
    if !quoted(previous) || quoted(line) || line.trim().is_empty() {
        return false;
    }
    let prev = previous.trim_end();
    prev.chars().count() >= 60
        || (line.trim_start().starts_with(char::is_lowercase)
            && !prev.ends_with(['.', '?', '!', ':']))
}

/// Compiles the extraction rules now rather than on the first mail (the
/// processor calls it as it starts: compiling them all takes ~75 ms).
pub fn warm_up() {
    for rule in [
        &WROTE,
        &WROTE_CJK,
        &DATE_FIRST,
        &WROTE_ANY,
        &STAMP_FIRST,
        &STAMP_ADDRESS,
        &DATE_ADDRESS,
        &ISO_STAMP,
        &WROTE_START,
        &DATE_START,
        &DATE_WROTE,
        &ORIGINAL,
        &FORWARDED,
        &HEADER_FROM,
        &HEADER_OTHER,
        &SENT_FROM,
    ] {
        LazyLock::force(rule);
    }
}

/// The new text of a reply; the whole text when stripping would leave nothing.
pub fn extract_reply(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let all: Vec<&str> = normalised.lines().take(20_000).collect();
    let cut = (0..all.len()).find(|&i| is_quote_header(&all, i));
    let text_before = |end: usize| {
        all[..end]
            .iter()
            .any(|l| !l.trim().is_empty() && !quoted(l))
    };
    let lines: Vec<&str> = match cut {
        // Bottom posting: the header comes first, the answer after the quotes.
        Some(cut) if !text_before(cut) => {
            // A forwarded block's own fields ("From:", "Subject:" wrapped, "To:") go too.
            let mut from = cut + header_len(&all, cut);
            if all.get(from).is_some_and(|l| is_header_field(l)) {
                while from < all.len() && !all[from].trim().is_empty() {
                    from += 1;
                }
            }
            all[from..].iter().filter(|l| !quoted(l)).copied().collect()
        }
        Some(cut) => all[..cut].to_vec(),
        None => all.clone(),
    };
    let mut end = lines.len();
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(end);
    if let Some(sig) = (start..end).find(|&i| is_signature_start(lines[i])) {
        end = sig;
    }
    if let Some(rule) = (start + 1..end).find(|&i| is_closing_rule(lines[i])) {
        end = rule;
    }
    // Trailing quotes (top posting without a header, or its remains) and rules.
    while end > start
        && (quoted(lines[end - 1])
            || lines[end - 1].trim().is_empty()
            || is_rule(lines[end - 1])
            || (end >= 2 && wraps_quote(lines[end - 2], lines[end - 1])))
    {
        end -= 1;
    }
    let reply = lines[start..end.max(start)].join("\n");
    let reply = reply.trim();
    if reply.is_empty() {
        normalised.trim().to_string()
    } else {
        reply.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{ISO_STAMP_NAME, extract_reply, is_iso_stamp};

    #[test]
    fn gmail_iso_headers_take_names_up_to_the_limit() {
        let header = |name: &str| format!("2016-03-03 17:21 GMT+01:00 {name}");
        assert!(is_iso_stamp(&header("Some One")));
        assert!(is_iso_stamp(&header("Jöns O'Neil-Åberg Jr.")));
        assert!(is_iso_stamp(&header(&"é".repeat(ISO_STAMP_NAME))));
        assert!(!is_iso_stamp(&header(&"é".repeat(ISO_STAMP_NAME + 1))));
        assert!(!is_iso_stamp(&header("Jane <j@x.org>")));
        assert!(!is_iso_stamp("2016-03-03 17:21 GMT+01:00 "));
        assert_eq!(
            extract_reply(&format!("Sure.\n\n{}\n> old\n", header("Some One"))),
            "Sure."
        );
    }

    #[test]
    fn strips_quotes_headers_and_signatures() {
        let cases = [
            (
                "Thanks!\n\nOn Tue, Jan 3, 2026 at 9:00 AM Jane <j@x.org> wrote:\n> old\n",
                "Thanks!",
            ),
            (
                "Danke\n\nAm 03.01.2026 um 09:00 schrieb Jane Doe:\n> alt\n",
                "Danke",
            ),
            (
                "Merci\n\nLe mar. 3 janv. 2026 à 09:00, Jane <j@x.org> a écrit :\n> vieux\n",
                "Merci",
            ),
            (
                "Yes\n\n-----Original Message-----\nFrom: a\nSent: b\n",
                "Yes",
            ),
            (
                "Fine\n\nFrom: Support <s@x.org>\nSent: Monday\nTo: me\nSubject: x\n\nold text",
                "Fine",
            ),
            ("Done\n\n-- \nJane Doe\nACME", "Done"),
            ("Ok\n\nSent from my iPhone", "Ok"),
            ("> quoted only\n> more", "> quoted only\n> more"),
            ("On Tue, Jane\nwrote:\n> x\n", "On Tue, Jane\nwrote:\n> x"),
            (
                "On Tue, Jane wrote:\n> question\n\nanswer below\n",
                "answer below",
            ),
            (
                "> question?\nAnswer.\n> q2?\nAnswer 2.\n",
                "> question?\nAnswer.\n> q2?\nAnswer 2.",
            ),
            (
                "Thanks\n\nSent from TypeApp<http://www.typeapp.com/r>",
                "Thanks",
            ),
            (
                "Saved?\n\n2013/7/20 sam via Meta <info@x.org>\n\n| old\n",
                "Saved?",
            ),
            (
                "Fine\n\n> a quoted line that a client wrapped at its full width, with\nthe rest here\n",
                "Fine",
            ),
            ("Text\n\nIK> quoted the old way\n", "Text"),
            (
                "Here\n\nSent from my desk, is much easier then my mobile phone.",
                "Here\n\nSent from my desk, is much easier then my mobile phone.",
            ),
            (
                "Fine\n\n====\n\nMessage du : 12/12/2016\nDe : a\nA : b\nSujet : c\n\nold",
                "Fine",
            ),
            ("Yes\n\nEnvoyé à partir de Outlook pour iOS", "Yes"),
        ];
        for (input, want) in cases {
            assert_eq!(extract_reply(input), want, "{input:?}");
        }
    }

    #[test]
    fn bounded_on_hostile_input() {
        let long = "a".repeat(200_000) + " wrote:";
        assert!(!extract_reply(&long).is_empty());
        let many = "x\n".repeat(100_000);
        assert!(extract_reply(&many).len() <= 40_000);
    }
}
