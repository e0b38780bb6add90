//! `@name` mentions in an internal note: which handles a text names, and
//! which agents they are. Pure: the note action asks, and tells those
//! agents (a mail, a mark in their console).
//!
//! A handle starts with `@` at the start of the text or after a character
//! that is not a letter or digit (so an address like `ann@example.org` in
//! the text mentions nobody), and runs over letters, digits and `. _ - + @`;
//! a trailing `.`, `-` or `_` is punctuation, not handle. An agent answers
//! to their full address (`@alan@example.test`), the part of it before the
//! `@` (`@alan`), their name written without spaces or with `.`/`_` for the
//! spaces (`@alanturing`, `@alan.turing`), or their first name (`@Alan`)
//! when no other agent has it. Case does not matter.

/// The most handles read from one note.
const MOST: usize = 20;

/// The handles `text` names (lowercase, each once, at most 20).
pub fn handles(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() && out.len() < MOST {
        let (at, c) = chars[i];
        let starts = c == '@' && (i == 0 || !chars[i - 1].1.is_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < chars.len() && j - i <= 100 {
            let c = chars[j].1;
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@') {
                j += 1;
            } else {
                break;
            }
        }
        let end = chars.get(j).map_or(text.len(), |(e, _)| *e);
        let handle = text[at + 1..end]
            .trim_end_matches(['.', '-', '_', '@'])
            .to_lowercase();
        if !handle.is_empty() && !out.contains(&handle) {
            out.push(handle);
        }
        i = j.max(i + 1);
    }
    out
}

/// An agent as mentions see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mentionable {
    pub id: i64,
    pub email: String,
    pub name: String,
}

/// The agents `handles` name, each once, in the order named.
pub fn resolve(handles: &[String], agents: &[Mentionable]) -> Vec<i64> {
    // (id, address, its local part, name), lowercase.
    type Known = (i64, String, String, String);
    let lower: Vec<Known> = agents
        .iter()
        .map(|a| {
            let email = a.email.to_lowercase();
            let local = email.split('@').next().unwrap_or("").to_string();
            (a.id, email, local, a.name.to_lowercase())
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        let exact = |f: &dyn Fn(&Known) -> bool| {
            let found: Vec<i64> = lower.iter().filter(|a| f(a)).map(|a| a.0).collect();
            (found.len() == 1).then(|| found[0])
        };
        let words = |name: &str, sep: &str| name.split_whitespace().collect::<Vec<_>>().join(sep);
        let id = exact(&|a| &a.1 == h)
            .or_else(|| exact(&|a| &a.2 == h))
            .or_else(|| {
                exact(&|a| {
                    !a.3.trim().is_empty()
                        && ["", ".", "_", "-"].iter().any(|sep| &words(&a.3, sep) == h)
                })
            })
            .or_else(|| exact(&|a| a.3.split_whitespace().next() == Some(h.as_str())));
        if let Some(id) = id
            && !out.contains(&id)
        {
            out.push(id);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: i64, email: &str, name: &str) -> Mentionable {
        Mentionable {
            id,
            email: email.into(),
            name: name.into(),
        }
    }

    #[test]
    fn handles_are_read_where_a_mention_can_start() {
        assert_eq!(
            handles("@alan can you look? cc @Bea.Liskov, and ann@example.org wrote. (@carl) @alan"),
            vec!["alan", "bea.liskov", "carl"]
        );
        assert_eq!(handles("@dora@example.test."), vec!["dora@example.test"]);
        assert!(handles("mail ann@example.org or @ alone, @@").is_empty());
        assert_eq!(handles("Grüße an @Jürgen!"), vec!["jürgen"]);
        assert_eq!(handles(&"@a ".repeat(10_000)), vec!["a"]);
        let long = format!("@{}", "x".repeat(500));
        assert!(handles(&long)[0].len() <= 100);
        let many: String = (0..100).map(|i| format!("@u{i} ")).collect();
        assert_eq!(handles(&many).len(), 20);
    }

    #[test]
    fn agents_answer_to_address_local_part_name_and_unique_first_name() {
        let team = [
            agent(1, "alan@example.test", "Alan Turing"),
            agent(2, "bea@example.test", "Bea Liskov"),
            agent(3, "b.lamport@example.test", "Bea Lamport"),
            agent(4, "grace@example.test", ""),
        ];
        let ids = |text: &str| resolve(&handles(text), &team);
        assert_eq!(ids("@alan"), vec![1]);
        assert_eq!(ids("@Alan.Turing and @alanturing"), vec![1]);
        assert_eq!(ids("@bea"), vec![2], "the local part first");
        assert_eq!(ids("@bea.lamport @b.lamport"), vec![3]);
        assert_eq!(ids("@b.lamport@example.test"), vec![3]);
        assert_eq!(ids("@grace @nobody"), vec![4]);
        let twins = [
            agent(1, "a1@example.test", "Sam One"),
            agent(2, "a2@example.test", "Sam Two"),
        ];
        assert!(
            resolve(&handles("@sam"), &twins).is_empty(),
            "two Sams: nobody"
        );
        assert_eq!(resolve(&handles("@sam_two"), &twins), vec![2]);
    }
}
