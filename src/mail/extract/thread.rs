//! Thread-aware quote removal: postdesk holds every message of a ticket,
//! the ones it sent too, so a reply that quotes one of them is cut where
//! the copy begins, in any language and any client's formatting, with or
//! without `>`. Texts are compared as runs of words (lower case, quote
//! markers, punctuation and line breaks ignored), so rewrapping and
//! re-quoting do not hide a copy. Linear: one pass to index the known
//! texts' word runs, one over the reply.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Words per compared run.
const RUN: usize = 4;
/// How many words of known text a block must hold to count as a copy.
const MIN_COPY: usize = 10;
/// Words read from each known text and from the reply, at most.
const MAX_WORDS: usize = 60_000;

/// The words of a text, lower case; a run of CJK characters counts one
/// word per character, since those scripts put no spaces between words.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            out.push(c.to_string());
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if out.len() >= MAX_WORDS {
            return out;
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
}

fn run_hash(run: &[String]) -> u64 {
    let mut h = DefaultHasher::new();
    run.hash(&mut h);
    h.finish()
}

/// The word runs of the texts a ticket already holds.
pub struct Known {
    runs: HashSet<u64>,
}

impl Known {
    /// Indexes `texts` (the ticket's earlier messages, as sent or received).
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut runs = HashSet::new();
        for text in texts {
            let w = words(text);
            for run in w.windows(RUN) {
                runs.insert(run_hash(run));
            }
        }
        Known { runs }
    }

    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// For each line, whether it is a copy of known text (most of its words
    /// fall in a known run); `None` for a line without words.
    fn copied_lines(&self, lines: &[&str]) -> Vec<Option<bool>> {
        // The reply's words in order, with the line each came from.
        let mut all: Vec<(usize, String)> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            for w in words(line) {
                all.push((i, w));
                if all.len() >= MAX_WORDS {
                    break;
                }
            }
        }
        let mut covered = vec![false; all.len()];
        let texts: Vec<String> = all.iter().map(|(_, w)| w.clone()).collect();
        for (start, run) in texts.windows(RUN).enumerate() {
            if self.runs.contains(&run_hash(run)) {
                covered[start..start + RUN]
                    .iter_mut()
                    .for_each(|c| *c = true);
            }
        }
        let mut per_line = vec![(0usize, 0usize); lines.len()];
        for ((line, _), hit) in all.iter().zip(&covered) {
            per_line[*line].0 += 1;
            per_line[*line].1 += usize::from(*hit);
        }
        per_line
            .into_iter()
            .map(|(n, hit)| (n > 0).then_some(hit * 10 >= n * 7))
            .collect()
    }

    /// The first block of `lines` that copies known text: its first line
    /// and the line after it. A block is consecutive copied lines (lines
    /// without words in between are part of it) holding at least
    /// `MIN_COPY` words; a single short line that happens to repeat a few
    /// words ("Thank you for your help") is not a copy.
    pub fn first_copy(&self, lines: &[&str]) -> Option<(usize, usize)> {
        if self.runs.is_empty() {
            return None;
        }
        let copied = self.copied_lines(lines);
        let mut i = 0;
        while i < lines.len() {
            if copied[i] == Some(true) {
                let start = i;
                let mut count = 0;
                let mut end = i;
                while i < lines.len() && copied[i] != Some(false) {
                    if copied[i] == Some(true) {
                        count += words(lines[i]).len();
                        end = i + 1;
                    }
                    i += 1;
                }
                if count >= MIN_COPY {
                    return Some((start, end));
                }
            } else {
                i += 1;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::Known;

    #[test]
    fn finds_a_rewrapped_requoted_copy() {
        let sent = "Hello Jane,\n\nwe have reset your password. Please sign in again and tell us whether the error is gone.\n\nAlan, ACME support";
        let known = Known::new([sent]);
        let reply = "It works, thanks!\n\nXYZ 3.1.2026 09:00 Support <s@x.org> QQQ:\n> Hello Jane,\n>\n> we have reset your password. Please sign in\n> again and tell us whether the error is gone.\n";
        let lines: Vec<&str> = reply.lines().collect();
        assert_eq!(known.first_copy(&lines), Some((3, 7)));
    }

    #[test]
    fn a_few_repeated_words_are_not_a_copy() {
        let known = Known::new(["Thank you for your help with the printer"]);
        let lines = ["Thank you for your help", "", "It prints again."];
        assert_eq!(known.first_copy(&lines), None);
        assert_eq!(Known::new([""]).first_copy(&lines), None);
    }
}
