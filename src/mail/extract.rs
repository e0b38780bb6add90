//! The new text of a reply (SPEC §5.6): quoted history ("On … wrote:" and
//! its translations, Outlook header blocks, "-----Original Message-----",
//! forwarded-message markers, trailing `>` quotes, and copies of the
//! ticket's own messages in any language), signatures, closings ("Kind
//! regards,\nJane") and external-sender banners are folded away; the whole
//! text stays on the message. When nothing would be left, the whole body is
//! the reply. Line-based and linear in the input: no backtracking regex
//! runs over the whole text.
//!
//! - `header.rs`: quote headers, by shape and by the words of `phrases.rs`;
//! - `signature.rs`: signatures, closings, rules and banners;
//! - `thread.rs`: copies of the ticket's earlier messages;
//! - `html_quote.rs`: where an HTML reply's client put its quoted history;
//! - `phrases.rs`: the words, as data.

mod header;
mod html_quote;
mod phrases;
mod signature;
mod thread;

pub use html_quote::quote_start;
pub use thread::Known;

use header::{header_len, is_header_field, is_quote_header};
use signature::{banner_len, closing_start, is_closing_rule, is_rule, is_signature_start};

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
    header::warm_up();
    signature::warm_up();
}

/// Characters that change nothing a reader sees but break matching: bidi
/// marks (Arabic and Hebrew clients wrap addresses in them), zero-width
/// spaces and joiners, the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Whether a line can belong to the header above a copied quote: short,
/// naming a date, a time or an address, or ending in a colon (a header in a
/// language no table lists: "Dne 3. 1. 2026 v 9:00 Jane napsal(a):").
fn header_like(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty()
        && t.chars().count() <= 300
        && (t.ends_with(':')
            || t.ends_with('：')
            || t.contains('@')
            || t.chars().filter(|c| c.is_ascii_digit()).count() >= 4
            || is_header_field(t)
            || is_rule(t))
}

/// The lines of `lines` left when the signature ("-- ", "Sent from my
/// iPhone"), a closing rule and the closing with its name block are folded
/// away, with trailing quotes and blank lines: `start..end`.
fn without_signature(lines: &[&str]) -> (usize, usize) {
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
    let trim = |mut end: usize| {
        while end > start
            && (quoted(lines[end - 1])
                || lines[end - 1].trim().is_empty()
                || is_rule(lines[end - 1])
                || (end >= 2 && wraps_quote(lines[end - 2], lines[end - 1])))
        {
            end -= 1;
        }
        end
    };
    end = trim(end);
    if let Some(closing) = closing_start(&lines[start..end]) {
        end = trim(start + closing);
    }
    (start, end.max(start))
}

/// A text with its signature and closing folded away, as `extract_reply`
/// folds them (for comparing with texts that keep them).
pub fn fold_signature(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let (start, end) = without_signature(&lines);
    let folded = lines[start..end].join("\n");
    if folded.trim().is_empty() {
        text.trim().to_string()
    } else {
        folded.trim().to_string()
    }
}

/// The lines after a quote header at `cut` and the quoted block under it
/// (quoted lines, their wrapped remains, a known copy ending at
/// `copy_end`): the answers of a bottom-posted or interleaved reply. Its
/// own `>` lines and later interleaved quotes are the requester's to keep.
fn answers_after<'a>(all: &[&'a str], cut: usize, copy_end: Option<usize>) -> Vec<&'a str> {
    let mut from = match copy_end {
        Some(_) => cut,
        None => cut + header_len(all, cut),
    };
    // A forwarded block's own fields ("From:", "Subject:" wrapped, "To:") go too.
    if all.get(from).is_some_and(|l| is_header_field(l)) {
        while from < all.len() && !all[from].trim().is_empty() {
            from += 1;
        }
    }
    let copy_end = copy_end.filter(|&e| e > from).unwrap_or(from);
    while from < all.len()
        && (from < copy_end
            || quoted(all[from])
            || all[from].trim().is_empty()
            || (from > 0 && wraps_quote(all[from - 1], all[from])))
    {
        from += 1;
    }
    all[from..].to_vec()
}

/// Whether the text above a quote header is only a greeting ("Hi,",
/// "Hallo Anna,"): one short line ending with a comma.
fn greeting_only(lines: &[&str]) -> bool {
    let text: Vec<&&str> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
    text.len() == 1 && {
        let t = text[0].trim();
        !quoted(t)
            && t.chars().count() <= 40
            && t.ends_with(',')
            && t.split_whitespace().count() <= 4
    }
}

/// The new text of a reply; the whole text when stripping would leave nothing.
pub fn extract_reply(text: &str) -> String {
    extract_reply_in_thread(text, &Known::new([]))
}

/// The new text of a reply whose HTML marked where its quoted history
/// starts: `above_quote` is the HTML's text above that mark. The text's
/// own reply is cut where the HTML's ends, when it begins with the same
/// words and goes on (the rest is quote no text rule recognised: a quote
/// header in an unknown language, a header block without `>`); otherwise
/// it is kept as the text rules made it.
pub fn extract_reply_with_html(text: &str, above_quote: Option<&str>) -> String {
    let plain = extract_reply(text);
    let Some(above) = above_quote else {
        return plain;
    };
    let html = extract_reply(above);
    let (want, have) = (letters(&html), letters(&plain));
    if want.is_empty() || have.len() <= want.len() || !have.starts_with(&want) {
        return plain;
    }
    // Cut the text's reply at the end of the line where the HTML's letters
    // end (one pass over the lines: linear whatever their length).
    let mut seen = 0;
    let mut cut = plain.len();
    let mut offset = 0;
    'lines: for line in plain.split_inclusive('\n') {
        if !is_link_line(line) {
            for _ in line.chars().filter(|c| c.is_alphanumeric()) {
                seen += 1;
                if seen == want.len() {
                    cut = offset + line.trim_end_matches('\n').len();
                    break 'lines;
                }
            }
        }
        offset += line.len();
    }
    extract_reply(&plain[..cut])
}

/// The letters and digits of `text`, without the link lists HTML
/// conversion appends (`[1]: https://…` lines).
fn letters(text: &str) -> Vec<char> {
    text.lines()
        .filter(|l| !is_link_line(l))
        .flat_map(str::chars)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// `[12]: https://example.org/…`, as html2text lists a part's links.
fn is_link_line(line: &str) -> bool {
    let t = line.trim_start();
    t.strip_prefix('[')
        .and_then(|r| r.split_once("]: "))
        .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// The new text of a reply to a ticket whose earlier messages are `known`:
/// besides the rules of `extract_reply`, a copy of any of them is cut
/// with the header lines right above it.
pub fn extract_reply_in_thread(text: &str, known: &Known) -> String {
    let normalised: String = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|&c| !invisible(c))
        .collect();
    let all: Vec<&str> = normalised.lines().take(20_000).collect();
    let skip = banner_len(&all);
    let all = &all[skip..];
    let by_rule = (0..all.len()).find(|&i| is_quote_header(all, i));
    // A copy of a known message, with the header lines directly above it
    // (one blank line between them allowed).
    let copy = known.first_copy(all).map(|(start, end)| {
        let mut top = start;
        let mut k = start;
        let mut gap = false;
        while k > 0 {
            let line = all[k - 1];
            if line.trim().is_empty() && !gap && top == start {
                gap = true;
            } else if header_like(line) && start - k < 5 {
                top = k - 1;
            } else {
                break;
            }
            k -= 1;
        }
        (top, end)
    });
    let cut = match (by_rule, copy) {
        (Some(r), Some((c, _))) => Some(r.min(c)),
        (r, c) => r.or(c.map(|(c, _)| c)),
    };
    let copy_end = copy.map(|(_, end)| end);
    let text_before = |end: usize| {
        all[..end]
            .iter()
            .any(|l| !l.trim().is_empty() && !quoted(l))
    };
    let lines: Vec<&str> = match cut {
        // Bottom posting: the header comes first, the answer after the quote.
        Some(cut) if !text_before(cut) => {
            answers_after(all, cut, copy.filter(|&(c, _)| c == cut).map(|(_, e)| e))
        }
        // Only a greeting above the header ("Hi,"): the answers are under
        // the quote, interleaved.
        Some(cut) if greeting_only(&all[..cut]) => {
            let after = answers_after(all, cut, copy_end);
            let mut lines = all[..cut].to_vec();
            if !after.is_empty() {
                lines.extend(after);
            }
            lines
        }
        Some(cut) => all[..cut].to_vec(),
        None => all.to_vec(),
    };
    let (start, end) = without_signature(&lines);
    let reply = lines[start..end].join("\n");
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
    use super::header::{ISO_STAMP_NAME, is_iso_stamp};

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
            // A sentence right above the header is the requester's.
            (
                "Le fichier est joint.\nLe mar. 3 janv. 2026 à 09:00, Jane <j@x.org> a écrit :\n> vieux\n",
                "Le fichier est joint.",
            ),
            // A date-only header split inside the address.
            (
                "Done.\n\n2013/11/1 John Smith <\njohn@smith.org>\n\n> old\n",
                "Done.",
            ),
            // Thunderbird in German without its colon.
            (
                "Passt.\n\nAm 20.06.24 um 16:20 schrieb Jane Doe\n> alt\n",
                "Passt.",
            ),
            // A separator the client ran onto the next field.
            (
                "Gut.\n\n-------- Ursprüngliche Nachricht --------Von: Jane <j@x.org>\nDatum: 03.01.26\nAn: s@x.org\n\nalt",
                "Gut.",
            ),
            // Arabic with the bidi marks clients put around addresses.
            (
                "شكرا لكم.\n\n\u{202B}في السبت، 3 يناير 2026 في 9:00 ص، كتب Jane <\u{202A}j@x.org\u{202C}>:\u{202C}\n> قديم\n",
                "شكرا لكم.",
            ),
            // An external-sender banner on top, a legal footer under "* * *".
            (
                "CAUTION: This email originated from outside of the organization. Do not click links.\n\nThe printer works again.\n\n* * *\n\nThis message is confidential.",
                "The printer works again.",
            ),
            // Closings and name blocks fold; a closing alone is the text.
            (
                "It works.\n\nKind regards,\nJane Doe\nACME Ltd.",
                "It works.",
            ),
            ("Thanks!", "Thanks!"),
            (
                "Thanks, I will try that tomorrow.\nJane",
                "Thanks, I will try that tomorrow.\nJane",
            ),
            // A line that merely starts like a header is text.
            (
                "On Monday at 10:30 Jane wrote to me again\nabout the invoice.",
                "On Monday at 10:30 Jane wrote to me again\nabout the invoice.",
            ),
            // Quote above: the answer keeps its own quoted command.
            (
                "On Tue, Jan 3, 2026 at 9:00 AM Jane <j@x.org> wrote:\n> old\n\nRunning\n> make\nfails.\nPlease help.",
                "Running\n> make\nfails.\nPlease help.",
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
