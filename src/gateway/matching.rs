//! Which ticket a mail belongs to (SPEC §5.4), as a pure decision over what
//! the lookups found. Order: (a) signed reply token, (b) a known Message-ID
//! in In-Reply-To/References, (c) the signed marker in the body, (d) the
//! subject tag, (e) a new ticket. A match by (b), (c) or (d) whose sender is
//! neither a participant nor an agent opens a new linked ticket instead.

/// How a mail was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ReplyToken,
    MessageId,
    Marker,
    SubjectTag,
}

/// What the lookups found, each step's ticket id if it matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Found {
    pub reply_token: Option<i64>,
    pub message_id: Option<i64>,
    pub marker: Option<i64>,
    pub subject_tag: Option<i64>,
}

impl Found {
    /// The first step that matched, in SPEC order.
    pub fn first(&self) -> Option<(i64, Method)> {
        [
            (self.reply_token, Method::ReplyToken),
            (self.message_id, Method::MessageId),
            (self.marker, Method::Marker),
            (self.subject_tag, Method::SubjectTag),
        ]
        .into_iter()
        .find_map(|(t, m)| t.map(|t| (t, m)))
    }
}

/// Who the sender is with respect to the matched ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// An active staff account has the sender's address.
    pub is_agent: bool,
    /// The sender is the requester or a CC participant of the matched ticket.
    pub is_participant: bool,
}

/// Where the mail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A reply by an agent on this ticket.
    AgentReply(i64),
    /// A reply by the requester or a CC on this ticket.
    RequesterReply(i64),
    /// A new ticket linked to this one (a stranger answered its thread).
    NewLinked(i64),
    /// A new ticket.
    New,
}

/// Decides where a human mail goes.
pub fn decide(found: &Found, sender: Sender) -> Decision {
    match found.first() {
        None => Decision::New,
        Some((t, _)) if sender.is_agent => Decision::AgentReply(t),
        Some((t, Method::ReplyToken)) => Decision::RequesterReply(t),
        Some((t, _)) if sender.is_participant => Decision::RequesterReply(t),
        Some((t, _)) => Decision::NewLinked(t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRANGER: Sender = Sender {
        is_agent: false,
        is_participant: false,
    };
    const REQUESTER: Sender = Sender {
        is_agent: false,
        is_participant: true,
    };
    const AGENT: Sender = Sender {
        is_agent: true,
        is_participant: false,
    };

    #[test]
    fn steps_apply_in_order() {
        let all = Found {
            reply_token: Some(1),
            message_id: Some(2),
            marker: Some(3),
            subject_tag: Some(4),
        };
        assert_eq!(all.first(), Some((1, Method::ReplyToken)));
        let later = Found {
            reply_token: None,
            ..all
        };
        assert_eq!(later.first(), Some((2, Method::MessageId)));
        let tag_only = Found {
            subject_tag: Some(4),
            ..Found::default()
        };
        assert_eq!(tag_only.first(), Some((4, Method::SubjectTag)));
        assert_eq!(Found::default().first(), None);
    }

    #[test]
    fn strangers_never_write_into_a_ticket_they_are_not_part_of() {
        for found in [
            Found {
                message_id: Some(7),
                ..Found::default()
            },
            Found {
                marker: Some(7),
                ..Found::default()
            },
            Found {
                subject_tag: Some(7),
                ..Found::default()
            },
        ] {
            assert_eq!(decide(&found, STRANGER), Decision::NewLinked(7));
            assert_eq!(decide(&found, REQUESTER), Decision::RequesterReply(7));
            assert_eq!(decide(&found, AGENT), Decision::AgentReply(7));
        }
        let token = Found {
            reply_token: Some(7),
            ..Found::default()
        };
        assert_eq!(
            decide(&token, STRANGER),
            Decision::RequesterReply(7),
            "a signed token is the capability"
        );
        assert_eq!(decide(&Found::default(), AGENT), Decision::New);
    }
}
