//! Subjects: the clean title (reply prefixes and the ticket tag removed) and
//! the ticket tag `[TKT-1042]`; and the reply token of a plus address.

use crate::domain::{EmailAddress, TicketRef};

/// Reply and forward prefixes of the common clients and languages, lower
/// case (full-width forms folded to ASCII first), without the colon: English,
/// German (AW, WG, WTR), Nordic (SV, VS, VB, VL, Antw), Dutch (Antw, Doorst),
/// French (TR, RE, Réf), Spanish and Portuguese (RV, ENC, RES, Resp),
/// Italian (R, RIF, I), Polish (Odp, PD), Czech (Odp, Fw, Přep), Turkish
/// (YNT, İLT, Cvp), Hungarian (Vá, Továbbítás), Russian and Ukrainian
/// (Отв, Ответ, Пересл, Відп, Перес), Greek (ΑΠ, ΣΧΕΤ, ΠΡΘ), Hebrew,
/// Arabic, Chinese (回复, 答复, 回覆, 转发, 轉寄), Japanese (返信, 転送),
/// Korean (회신, 답장, 전달).
const PREFIXES: &[&str] = &[
    "re",
    "fwd",
    "fw",
    "aw",
    "sv",
    "vs",
    "vb",
    "vl",
    "wg",
    "wtr",
    "antw",
    "doorst",
    "tr",
    "réf",
    "ref",
    "rv",
    "odp",
    "pd",
    "enc",
    "res",
    "resp",
    "ynt",
    "i̇lt",
    "ilt",
    "cvp",
    "r",
    "rif",
    "i",
    "vá",
    "továbbítás",
    "přep",
    "fwd re",
    "отв",
    "ответ",
    "пересл",
    "переслать",
    "відп",
    "перес",
    "απ",
    "σχετ",
    "πρθ",
    "השב",
    "תשובה",
    "הועבר",
    "رد",
    "إعادة توجيه",
    "回复",
    "答复",
    "回覆",
    "转发",
    "轉寄",
    "轉發",
    "返信",
    "転送",
    "회신",
    "답장",
    "전달",
];

/// Full-width ASCII (`ＲＥ`, `：`) as plain ASCII, so that prefixes typed by
/// East Asian input methods are recognised.
fn fold_width(c: char) -> char {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Finds the first `[PREFIX-N]` tag with the configured prefix.
pub fn ticket_tag(subject: &str, prefix: &str) -> Option<TicketRef> {
    let mut rest = subject;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        if let Ok(r) = after[..close].parse::<TicketRef>()
            && r.prefix().eq_ignore_ascii_case(prefix)
        {
            return Some(r);
        }
        rest = &after[close.min(after.len())..];
    }
    None
}

/// Removes leading `Re:`/`Fwd:`/`AW:`… (also `Re[2]:`), any ticket tag of
/// this prefix, and surplus whitespace.
pub fn clean_subject(subject: &str, prefix: &str) -> String {
    let mut s = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(tag) = ticket_tag(&s, prefix) {
        for form in [
            format!("[{tag}]"),
            format!("[{}]", tag.to_string().to_lowercase()),
        ] {
            s = s.replace(&form, " ");
        }
        s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    loop {
        let trimmed = s.trim_start();
        // A colon, full-width or not (`回复：`), ends a prefix.
        let Some((colon, width)) = trimmed
            .char_indices()
            .find(|(_, c)| fold_width(*c) == ':')
            .map(|(i, c)| (i, c.len_utf8()))
        else {
            break;
        };
        if colon > 40 {
            break;
        }
        let head: String = trimmed[..colon]
            .trim()
            .chars()
            .map(fold_width)
            .collect::<String>()
            .to_lowercase();
        let head = match head.find('[') {
            Some(i)
                if head.ends_with(']')
                    && head[i + 1..head.len() - 1]
                        .bytes()
                        .all(|b| b.is_ascii_digit()) =>
            {
                head[..i].to_string()
            }
            _ => head,
        };
        if !PREFIXES.contains(&head.trim()) {
            break;
        }
        s = trimmed[colon + width..].trim_start().to_string();
    }
    s.trim().to_string()
}

/// The token of a plus address (`support+TOKEN@…`) sent to `mailbox`.
pub fn reply_token<'a>(
    recipients: impl IntoIterator<Item = &'a EmailAddress>,
    mailbox: &EmailAddress,
) -> Option<String> {
    plus_tokens(recipients, mailbox).into_iter().next()
}

/// Every plus-address token among `recipients` for `mailbox`, in order
/// (a reply may carry a reply token and an agent's token; a bounce its VERP token).
pub fn plus_tokens<'a>(
    recipients: impl IntoIterator<Item = &'a EmailAddress>,
    mailbox: &EmailAddress,
) -> Vec<String> {
    let Some((base_local, base_domain)) = mailbox.as_str().split_once('@') else {
        return Vec::new();
    };
    recipients
        .into_iter()
        .filter_map(|r| {
            let (local, domain) = r.as_str().split_once('@')?;
            let token = local.strip_prefix(base_local)?.strip_prefix('+')?;
            (domain.eq_ignore_ascii_case(base_domain) && !token.is_empty())
                .then(|| token.to_string())
        })
        .take(20)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_lose_prefixes_and_tags() {
        let cases = [
            ("Re: [TKT-7] Printer", "Printer"),
            ("RE: AW: Fwd: SV: Printer", "Printer"),
            ("Re[2]: Printer", "Printer"),
            ("[tkt-7] Re: Printer", "Printer"),
            ("Printer [TKT-7]", "Printer"),
            ("Re: Meeting: agenda", "Meeting: agenda"),
            ("Question about [OTHER-5]", "Question about [OTHER-5]"),
            ("回复: 打印机", "打印机"),
            ("答复：打印机", "打印机"),
            ("回覆：回复: [TKT-7] 印表機", "印表機"),
            ("ＲＥ：プリンタ", "プリンタ"),
            ("Ｒｅ: 返信: プリンタ", "プリンタ"),
            ("転送: 資料", "資料"),
            ("회신: 프린터", "프린터"),
            ("RE: 답장: 전달: 프린터", "프린터"),
            ("رد: الطابعة", "الطابعة"),
            ("השב: מדפסת", "מדפסת"),
            ("ΑΠ: Εκτυπωτής", "Εκτυπωτής"),
            ("Σχετ: Εκτυπωτής", "Εκτυπωτής"),
            ("YNT: Yazıcı", "Yazıcı"),
            ("Отв: Принтер", "Принтер"),
            ("Ответ: Пересл: Принтер", "Принтер"),
            ("Відп: Принтер", "Принтер"),
            ("Odp: PD: Drukarka", "Drukarka"),
            ("VS: Tulostin", "Tulostin"),
            ("Doorst: Printer", "Printer"),
            ("Report: numbers", "Report: numbers"),
            ("Ticket: 回复 is a word", "Ticket: 回复 is a word"),
            ("  ", ""),
        ];
        for (raw, clean) in cases {
            assert_eq!(clean_subject(raw, "TKT"), clean, "{raw}");
        }
    }

    #[test]
    fn tags_are_found_with_the_configured_prefix() {
        assert_eq!(
            ticket_tag("Re: [TKT-1042] x", "TKT").unwrap().number(),
            1042
        );
        assert_eq!(ticket_tag("[HD-3] [TKT-9]", "tkt").unwrap().number(), 9);
        assert!(ticket_tag("[TKT-x] [TKT-]", "TKT").is_none());
        assert!(ticket_tag("no tag ]][[", "TKT").is_none());
    }

    #[test]
    fn plus_tokens_only_for_the_mailbox() {
        let mailbox: EmailAddress = "support@example.test".parse().unwrap();
        let to: Vec<EmailAddress> = vec![
            "other+x@example.test".parse().unwrap(),
            "support+abc123@example.test".parse().unwrap(),
        ];
        assert_eq!(reply_token(&to, &mailbox).as_deref(), Some("abc123"));
        let none: Vec<EmailAddress> = vec!["support@example.test".parse().unwrap()];
        assert_eq!(reply_token(&none, &mailbox), None);
    }
}
