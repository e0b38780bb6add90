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
        r"(?i)^\s*(?:>\s*)?(?:on|at|am|le|el|il|op|den|em|no dia|w dniu|dne|på|в|у|lúc|el día|den \d|op \d|am \d|le \d|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{4}年).{0,400}?(?:wrote|schrieb|a écrit|escribió|ha scritto|schreef|skrev|escreveu|napisał\(a\)|napisał|pisze|написал\(а\)|написал|написала|написав|kirjoitti|yazdı|napsal|írta|viết|geschreven|a scris|kirjutas|rašė|rakstīja|je napisal|napisao)(?:\s*:?\s*$|\s.{0,160}:\s*$)",
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
    Regex::new(r"(?i)^\s*[*>]?\s*\*?(?:from|von|de|van|fra|från|od|от|від|da|lähettäjä|kimden|feladó)\s*:\*?\s*\S").expect("valid regex")
});

/// Other lines of such a block ("Sent:", "Date:", "To:", "Subject:", …).
static HEADER_OTHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*[*>]?\s*\*?(?:sent|date|to|subject|cc|gesendet|datum|an|betreff|envoyé|date d'envoi|à|objet|enviado|fecha|para|asunto|verzonden|aan|onderwerp|sendt|til|emne|skickat|till|ämne|wysłano|data|do|temat|отправлено|дата|кому|тема|надіслано|inviato|oggetto|a|enviada|assunto|envoyé le|date d'envoi)\s*:").expect("valid regex")
});

/// "Sent from my iPhone" and the like: a signature line of mobile clients.
static SENT_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:sent from my\b|sent from (?:mail|outlook|yahoo|samsung)|get outlook for|envoyé de mon|von meinem .{0,40} gesendet|enviado desde mi|inviato da|verzonden met|skickat från min|sendt fra min|wysłane z mojego|отправлено с моего|sent via |gesendet von |envoyé depuis |enviado desde |отправлено из )").expect("valid regex")
});

fn is_quote_header(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    if line.trim().is_empty() {
        return false;
    }
    if WROTE.is_match(line)
        || WROTE_CJK.is_match(line)
        || ORIGINAL.is_match(line)
        || DATE_FIRST.is_match(line)
        || WROTE_ANY.is_match(line)
        || STAMP_FIRST.is_match(line)
        || FORWARDED.is_match(line)
    {
        return true;
    }
    // "On Tue, 3 Jan 2026, Jane Doe <jane@example.org>\nwrote:" split over two or three lines.
    for span in 2..=3 {
        if i + span <= lines.len() {
            let joined = lines[i..i + span]
                .iter()
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join(" ");
            if joined.len() < 500
                && (WROTE.is_match(&joined)
                    || WROTE_CJK.is_match(&joined)
                    || DATE_FIRST.is_match(&joined))
                && !lines[i].trim_start().starts_with('>')
            {
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
        return next.filter(|l| HEADER_OTHER.is_match(l)).count() >= 2;
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
    t == "--" || t == "-- " || t == "__" || t.trim() == "--" || SENT_FROM.is_match(line)
}

/// Whether a line is `>` quoted.
fn quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
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
            let body_from = (cut..(cut + 3).min(all.len()))
                .find(|&i| all[i].trim_end().ends_with(':'))
                .map_or(cut + 1, |i| i + 1);
            all[body_from..]
                .iter()
                .filter(|l| !quoted(l))
                .copied()
                .collect()
        }
        Some(cut) => all[..cut].to_vec(),
        None => all.clone(),
    };
    let mut end = lines.len();
    // Trailing quoted block (top posting without a header, or its remains).
    while end > 0 && (quoted(lines[end - 1]) || lines[end - 1].trim().is_empty()) {
        end -= 1;
    }
    // Interleaved answers keep their text but lose the quotes at the top.
    let mut start = 0;
    while start < end && (quoted(lines[start]) || lines[start].trim().is_empty()) {
        start += 1;
    }
    if let Some(sig) = (start..end).find(|&i| is_signature_start(lines[i])) {
        end = sig;
    }
    // "-Jane" (a dash glued to a name) closing the text is a signature too.
    let tail: Vec<usize> = (start..end)
        .rev()
        .filter(|&i| !lines[i].trim().is_empty())
        .take(2)
        .collect();
    if let Some(&i) = tail.iter().find(|&&i| {
        let t = lines[i].trim();
        t.len() < 40 && t.starts_with('-') && t.chars().nth(1).is_some_and(char::is_alphabetic)
    }) && i > start
    {
        end = i;
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
    use super::extract_reply;

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
                "> question?\nanswer\n> q2\nanswer2\n",
                "answer\n> q2\nanswer2",
            ),
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
