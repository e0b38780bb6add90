//! Subjects: the clean title (reply prefixes and the ticket tag removed) and
//! the ticket tag `[TKT-1042]`; and the reply token of a plus address.

use crate::domain::{EmailAddress, TicketRef};

/// Reply and forward prefixes of the common clients and languages, lower case, without the colon.
const PREFIXES: [&str; 16] = [
    "re", "fwd", "fw", "aw", "sv", "vs", "wg", "antw", "tr", "rv", "odp", "enc", "res", "ynt", "r",
    "fwd re",
];

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
        let Some(colon) = trimmed.find(':') else {
            break;
        };
        let head = trimmed[..colon].trim().to_lowercase();
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
        if !PREFIXES.contains(&head.as_str()) {
            break;
        }
        s = trimmed[colon + 1..].trim_start().to_string();
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
