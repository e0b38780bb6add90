//! The conversation a raw mail belongs to, read from its header alone and
//! before it is parsed: the processing partition it is stored under
//! (docs/operations.md "Several daemons"). Mails of one partition are
//! processed in arrival order, one batch at a time across daemons; mails of
//! different partitions side by side.
//!
//! A reply goes to the partition of the mail it answers when that one was
//! stored before it ([`assign`]; the store looks the parents up by
//! [`ThreadIds`]), so a conversation stays in one partition however its
//! clients fill `References`. Otherwise the key is the first Message-ID of
//! `References` (the thread's root), else the one of `In-Reply-To`, else
//! the mail's own `Message-ID`. A reply stored before the mail it answers
//! may land elsewhere; the gateway joins the two if it then commits first
//! (`gateway/processor/apply.rs`).

use std::collections::HashMap;

/// How many processing partitions there are. Stored with each mail, so
/// changing it only changes how new mail is spread.
pub const PARTITIONS: i32 = 64;

/// The most header bytes read: a header longer than this is hostile or
/// broken, and its mail goes to the partition of what was read.
const MAX_HEADER: usize = 64 * 1024;

/// The processing partition of a raw mail on its own, in `0..PARTITIONS`
/// (before [`assign`] looks at the mails it answers).
pub fn partition(raw: &[u8]) -> i32 {
    ThreadIds::of(raw).partition
}

/// The partition a conversation key names; a mail without one goes by its
/// first bytes.
fn partition_of(key: Option<&[u8]>, raw: &[u8]) -> i32 {
    let bytes = key.unwrap_or(&raw[..raw.len().min(512)]);
    (fnv(bytes) % PARTITIONS as u64) as i32
}

/// FNV-1a over the bytes, case folded: stable across versions and
/// platforms, unlike std's hasher.
fn fnv(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(b.to_ascii_lowercase());
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A Message-ID as the store keeps it to find a mail's parents: a 64-bit
/// hash (a collision only puts two conversations in one partition).
pub fn id_hash(id: &[u8]) -> i64 {
    fnv(id) as i64
}

/// What a stored mail needs to find its place: its own Message-ID's hash,
/// the hashes of the mails it answers (nearest first: `In-Reply-To`, the
/// last and the first of `References`) and its partition on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadIds {
    pub own: Option<i64>,
    pub parents: Vec<i64>,
    pub partition: i32,
}

impl ThreadIds {
    /// Reads them from the mail's header.
    pub fn of(raw: &[u8]) -> Self {
        let head = &raw[..raw.len().min(MAX_HEADER)];
        let (mut own, mut in_reply_to, mut references) = (None, None, Vec::new());
        for (name, value) in header_fields(head) {
            if name.eq_ignore_ascii_case(b"message-id") && own.is_none() {
                own = first_id(&value);
            } else if name.eq_ignore_ascii_case(b"in-reply-to") && in_reply_to.is_none() {
                in_reply_to = first_id(&value);
            } else if name.eq_ignore_ascii_case(b"references") && references.is_empty() {
                references = all_ids(&value);
            }
        }
        let mut parents: Vec<i64> = Vec::new();
        for id in in_reply_to
            .iter()
            .chain(references.last())
            .chain(references.first())
        {
            let h = id_hash(id);
            if !parents.contains(&h) {
                parents.push(h);
            }
        }
        // The conversation key (see `conversation_key`), from this one scan.
        let key = references.first().or(in_reply_to.as_ref()).or(own.as_ref());
        ThreadIds {
            own: own.as_deref().map(id_hash),
            parents,
            partition: partition_of(key.map(Vec::as_slice), raw),
        }
    }
}

/// The partition of each of `mails`, stored in this order: the partition of
/// the nearest mail each answers that is in `stored` (parent hash →
/// partition, read from the store) or earlier in `mails`, else its own.
pub fn assign(mails: &[ThreadIds], stored: &HashMap<i64, i32>) -> Vec<i32> {
    let mut here: HashMap<i64, i32> = HashMap::new();
    mails
        .iter()
        .map(|m| {
            let part = m
                .parents
                .iter()
                .find_map(|p| here.get(p).or_else(|| stored.get(p)).copied())
                .unwrap_or(m.partition);
            if let Some(own) = m.own {
                here.entry(own).or_insert(part);
            }
            part
        })
        .collect()
}

/// The Message-ID that names the mail's conversation (without its angle
/// brackets), or `None` when the header names none.
pub fn conversation_key(raw: &[u8]) -> Option<Vec<u8>> {
    let head = &raw[..raw.len().min(MAX_HEADER)];
    let (mut references, mut in_reply_to, mut own) = (None, None, None);
    for (name, value) in header_fields(head) {
        let slot = if name.eq_ignore_ascii_case(b"references") {
            &mut references
        } else if name.eq_ignore_ascii_case(b"in-reply-to") {
            &mut in_reply_to
        } else if name.eq_ignore_ascii_case(b"message-id") {
            &mut own
        } else {
            continue;
        };
        if slot.is_none() {
            *slot = first_id(&value);
        }
    }
    references.or(in_reply_to).or(own)
}

/// The header's fields as (name, unfolded value), up to the blank line.
fn header_fields(head: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut fields: Vec<(&[u8], Vec<u8>)> = Vec::new();
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, value)) = fields.last_mut() {
                value.push(b' ');
                value.extend_from_slice(line);
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            fields.push((&line[..colon], line[colon + 1..].to_vec()));
        }
    }
    fields
}

/// Every `<…>` of a header value (at most 100), without their brackets.
fn all_ids(value: &[u8]) -> Vec<Vec<u8>> {
    let mut ids = Vec::new();
    let mut rest = value;
    while ids.len() < 100
        && let Some(start) = rest.iter().position(|b| *b == b'<')
    {
        rest = &rest[start..];
        match first_id(rest) {
            Some(id) => ids.push(id),
            None => break,
        }
        let Some(end) = rest.iter().position(|b| *b == b'>') else {
            break;
        };
        rest = &rest[end + 1..];
    }
    ids
}

/// The first `<…>` of a header value, without its brackets.
fn first_id(value: &[u8]) -> Option<Vec<u8>> {
    let start = value.iter().position(|b| *b == b'<')? + 1;
    let len = value[start..].iter().position(|b| *b == b'>')?;
    let id: Vec<u8> = value[start..start + len]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_root_names_the_conversation() {
        let request = b"Message-ID: <root@x>\r\nSubject: Help\r\n\r\nbody";
        let reply =
            b"Message-ID: <r1@y>\r\nIn-Reply-To: <root@x>\r\nReferences: <root@x>\r\n\r\nbody";
        let reply_of_reply =
            b"message-id: <r2@x>\r\nreferences: <root@x>\r\n <r1@y>\r\nin-reply-to: <r1@y>\r\n\r\n";
        assert_eq!(conversation_key(request).unwrap(), b"root@x");
        assert_eq!(conversation_key(reply).unwrap(), b"root@x");
        assert_eq!(conversation_key(reply_of_reply).unwrap(), b"root@x");
        assert_eq!(partition(request), partition(reply));
        assert_eq!(partition(request), partition(reply_of_reply));
    }

    #[test]
    fn in_reply_to_counts_when_references_are_missing() {
        let reply = b"Message-ID: <r1@y>\nIn-Reply-To: Someone's mail\n <root@x>\n\nbody";
        assert_eq!(conversation_key(reply).unwrap(), b"root@x");
        assert_eq!(
            partition(reply),
            partition(b"Message-ID: <ROOT@X>\r\n\r\n"),
            "case does not move a mail to another partition"
        );
    }

    #[test]
    fn only_the_header_is_read() {
        let body_names_one = b"Subject: x\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(conversation_key(body_names_one), None);
        let folded_id = b"Message-ID:\r\n\t<folded@x>\r\n\r\n";
        assert_eq!(conversation_key(folded_id).unwrap(), b"folded@x");
    }

    #[test]
    fn any_bytes_get_a_partition_in_range() {
        let mut huge = b"References: ".to_vec();
        huge.extend(std::iter::repeat_n(b'<', 200_000));
        for raw in [
            &b""[..],
            b"\r\n\r\n",
            b":::",
            b"Message-ID: <>\r\n\r\n",
            b"Message-ID: <unterminated\r\n",
            &[0xff, 0xfe, b'\n', b' ', 0x80],
            &huge,
        ] {
            let p = partition(raw);
            assert!((0..PARTITIONS).contains(&p), "{p}");
        }
    }

    #[test]
    fn a_reply_goes_where_the_mail_it_answers_went() {
        let root = ThreadIds::of(b"Message-ID: <root@x>\r\n\r\n");
        // Names only its parent, as some clients do.
        let reply = ThreadIds::of(b"Message-ID: <r1@x>\r\nIn-Reply-To: <root@x>\r\n\r\n");
        let reply2 = ThreadIds::of(b"Message-ID: <r2@x>\r\nReferences: <r1@x>\r\n\r\n");
        assert_eq!(reply2.parents, vec![id_hash(b"r1@x")]);
        // All in one chunk.
        let parts = assign(&[root.clone(), reply, reply2.clone()], &HashMap::new());
        assert_eq!(parts, vec![root.partition; 3]);
        // The parent stored earlier, in another partition (before this
        // version, or moved by its own parent): the reply follows it.
        let stored = HashMap::from([(id_hash(b"r1@x"), 7)]);
        assert_eq!(assign(std::slice::from_ref(&reply2), &stored), vec![7]);
        // Nothing known: its own key.
        assert_eq!(
            assign(std::slice::from_ref(&reply2), &HashMap::new()),
            vec![reply2.partition]
        );
        // The nearest known parent wins over the root.
        let both = ThreadIds::of(
            b"Message-ID: <r3@x>\r\nIn-Reply-To: <r2@x>\r\nReferences: <root@x> <r1@x> <r2@x>\r\n\r\n",
        );
        assert_eq!(
            both.parents,
            vec![id_hash(b"r2@x"), id_hash(b"root@x")],
            "In-Reply-To and the last reference are one"
        );
        let stored = HashMap::from([(id_hash(b"r2@x"), 5), (id_hash(b"root@x"), 9)]);
        assert_eq!(assign(&[both], &stored), vec![5]);
    }

    #[test]
    fn many_references_are_bounded() {
        let mut raw = b"References:".to_vec();
        for i in 0..10_000 {
            raw.extend_from_slice(format!(" <{i}@x>").as_bytes());
        }
        raw.extend_from_slice(b"\r\n\r\n");
        let ids = ThreadIds::of(&raw);
        assert_eq!(ids.parents, vec![id_hash(b"99@x"), id_hash(b"0@x")]);
    }

    #[test]
    fn unrelated_conversations_spread() {
        let used: std::collections::HashSet<i32> = (0..1000)
            .map(|i| partition(format!("Message-ID: <m{i}@example.org>\r\n\r\n").as_bytes()))
            .collect();
        assert!(used.len() > PARTITIONS as usize * 3 / 4, "{}", used.len());
    }
}
