//! Which ticket a mail belongs to (SPEC §5.4), as a pure decision over what
//! the lookups found. Order: (a) signed reply token, (b) a known Message-ID
//! in In-Reply-To/References, (c) the signed marker in the body, (d) the
//! subject tag, (e) a new ticket. A match by (b), (c) or (d) whose sender is
//! neither a participant nor an agent opens a new linked ticket instead.
//! An unverified sender (§5.11) joins only through a secret it got from us
//! (token, its own Message-IDs, marker); an agent's mail counts as the
//! agent's reply only when verified and carrying that agent's own token.

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
    /// The matched Message-ID is a secret of the sender's: one postdesk
    /// sent to that address, or one received on that ticket from someone
    /// on it (a participant replying to the thread holds it).
    pub message_id_secret: bool,
    pub marker: Option<i64>,
    pub subject_tag: Option<i64>,
    /// An agent's own token (ticket, agent user id) among the recipients.
    pub agent_token: Option<(i64, i64)>,
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

    /// The first step that matched through a secret the sender got from
    /// us (SPEC §5.11): the reply token, a Message-ID that is theirs to
    /// know, the hidden marker.
    pub fn first_secret(&self) -> Option<(i64, Method)> {
        [
            (self.reply_token, Method::ReplyToken),
            (
                self.message_id.filter(|_| self.message_id_secret),
                Method::MessageId,
            ),
            (self.marker, Method::Marker),
        ]
        .into_iter()
        .find_map(|(t, m)| t.map(|t| (t, m)))
    }
}

/// Who the sender is with respect to the matched ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// The active staff account with the sender's address, if any.
    pub agent: Option<i64>,
    /// The sender is the requester or a CC participant of the matched ticket.
    pub is_participant: bool,
    /// A trusted server vouched for the From address (SPEC §5.11).
    pub verified: bool,
}

/// Where the mail goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A reply by an agent on this ticket.
    AgentReply(i64),
    /// Mail claiming to be an agent's, not verified or without that
    /// agent's own token: an internal note on this ticket, nothing sent.
    UnverifiedAgent(i64),
    /// A reply by the requester or a CC on this ticket.
    RequesterReply(i64),
    /// A new ticket linked to this one: a stranger answered its thread, or
    /// an unverified sender named it by its subject tag alone.
    NewLinked(i64, LinkReason),
    /// A new ticket.
    New,
}

/// Why a mail that named a ticket opened a new one linked to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkReason {
    /// The sender takes no part in that ticket.
    NotAParticipant,
    /// The sender could not be verified and named it by a guessable way only.
    UnverifiedSender,
}

/// Decides where a human mail goes (SPEC §5.4, §5.11).
pub fn decide(found: &Found, sender: Sender) -> Decision {
    if let Some(agent) = sender.agent {
        // An agent's own signed token names the ticket; without it (or
        // unverified) mail claiming to be an agent's is only a note.
        if let Some((t, user)) = found.agent_token
            && user == agent
        {
            return if sender.verified {
                Decision::AgentReply(t)
            } else {
                Decision::UnverifiedAgent(t)
            };
        }
        return match found.first() {
            Some((t, _)) => Decision::UnverifiedAgent(t),
            None => Decision::New,
        };
    }
    let Some((t, method)) = found.first() else {
        return Decision::New;
    };
    if method == Method::ReplyToken {
        return Decision::RequesterReply(t);
    }
    if !sender.is_participant {
        return Decision::NewLinked(t, LinkReason::NotAParticipant);
    }
    if sender.verified {
        return Decision::RequesterReply(t);
    }
    match found.first_secret() {
        Some((secret, _)) if secret == t => Decision::RequesterReply(t),
        _ => Decision::NewLinked(t, LinkReason::UnverifiedSender),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRANGER: Sender = Sender {
        agent: None,
        is_participant: false,
        verified: true,
    };
    const REQUESTER: Sender = Sender {
        agent: None,
        is_participant: true,
        verified: true,
    };
    const AGENT: Sender = Sender {
        agent: Some(9),
        is_participant: false,
        verified: true,
    };

    fn unverified(s: Sender) -> Sender {
        Sender {
            verified: false,
            ..s
        }
    }

    #[test]
    fn steps_apply_in_order() {
        let all = Found {
            reply_token: Some(1),
            message_id: Some(2),
            marker: Some(3),
            subject_tag: Some(4),
            ..Found::default()
        };
        assert_eq!(all.first(), Some((1, Method::ReplyToken)));
        let later = Found {
            reply_token: None,
            ..all
        };
        assert_eq!(later.first(), Some((2, Method::MessageId)));
        assert_eq!(later.first_secret(), Some((3, Method::Marker)));
        let tag_only = Found {
            subject_tag: Some(4),
            ..Found::default()
        };
        assert_eq!(tag_only.first(), Some((4, Method::SubjectTag)));
        assert_eq!(tag_only.first_secret(), None);
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
            assert_eq!(
                decide(&found, STRANGER),
                Decision::NewLinked(7, LinkReason::NotAParticipant)
            );
            assert_eq!(decide(&found, REQUESTER), Decision::RequesterReply(7));
        }
        let token = Found {
            reply_token: Some(7),
            ..Found::default()
        };
        assert_eq!(
            decide(&token, unverified(STRANGER)),
            Decision::RequesterReply(7),
            "a signed token is the capability"
        );
        assert_eq!(decide(&Found::default(), AGENT), Decision::New);
    }

    #[test]
    fn an_unverified_sender_joins_only_through_a_secret() {
        let tag = Found {
            subject_tag: Some(7),
            ..Found::default()
        };
        assert_eq!(
            decide(&tag, unverified(REQUESTER)),
            Decision::NewLinked(7, LinkReason::UnverifiedSender),
            "a tag is guessable"
        );
        let public_id = Found {
            message_id: Some(7),
            ..Found::default()
        };
        assert_eq!(
            decide(&public_id, unverified(REQUESTER)),
            Decision::NewLinked(7, LinkReason::UnverifiedSender)
        );
        for secret in [
            Found {
                message_id: Some(7),
                message_id_secret: true,
                subject_tag: Some(7),
                ..Found::default()
            },
            Found {
                marker: Some(7),
                subject_tag: Some(7),
                ..Found::default()
            },
        ] {
            assert_eq!(
                decide(&secret, unverified(REQUESTER)),
                Decision::RequesterReply(7)
            );
        }
        // A secret of another ticket does not vouch for the tagged one.
        let mixed = Found {
            message_id: Some(7),
            marker: Some(8),
            ..Found::default()
        };
        assert_eq!(
            decide(&mixed, unverified(REQUESTER)),
            Decision::NewLinked(7, LinkReason::UnverifiedSender)
        );
    }

    #[test]
    fn an_agent_reply_needs_verification_and_the_agents_own_token() {
        let own = Found {
            reply_token: Some(7),
            agent_token: Some((7, 9)),
            ..Found::default()
        };
        assert_eq!(decide(&own, AGENT), Decision::AgentReply(7));
        assert_eq!(
            decide(&own, unverified(AGENT)),
            Decision::UnverifiedAgent(7)
        );
        let someone_elses = Found {
            agent_token: Some((7, 10)),
            ..own
        };
        assert_eq!(decide(&someone_elses, AGENT), Decision::UnverifiedAgent(7));
        let tag = Found {
            subject_tag: Some(7),
            message_id: Some(7),
            message_id_secret: true,
            ..Found::default()
        };
        assert_eq!(decide(&tag, AGENT), Decision::UnverifiedAgent(7));
        // The agent's own token is what names the ticket.
        let token_only = Found {
            agent_token: Some((7, 9)),
            ..Found::default()
        };
        assert_eq!(decide(&token_only, AGENT), Decision::AgentReply(7));
        // Someone else holding an agent's token gets nothing from it.
        assert_eq!(decide(&token_only, REQUESTER), Decision::New);
    }
}
