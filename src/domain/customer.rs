//! The customer at a glance, the pure part: which organisation a requester
//! belongs to. A set organisation name wins; else the domain of their
//! address, unless it is a public mail provider's (everyone at gmail.com is
//! not one customer).

/// Domains of public mail providers: never an organisation.
const PUBLIC_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "live.com",
    "msn.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "yahoo.de",
    "ymail.com",
    "aol.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "proton.me",
    "protonmail.com",
    "pm.me",
    "gmx.de",
    "gmx.net",
    "gmx.com",
    "web.de",
    "t-online.de",
    "freenet.de",
    "mail.ru",
    "yandex.ru",
    "yandex.com",
    "qq.com",
    "163.com",
    "126.com",
    "naver.com",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "libero.it",
    "zoho.com",
    "fastmail.com",
    "hey.com",
    "tutanota.com",
    "mail.com",
    "seznam.cz",
    "wp.pl",
    "o2.pl",
    "rediffmail.com",
];

/// How a requester's organisation is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Organisation {
    /// Set on the requester (by them on the portal, or by an agent).
    Named(String),
    /// The domain of their address.
    Domain(String),
}

impl Organisation {
    /// As people read it: the name, or the domain.
    pub fn label(&self) -> &str {
        match self {
            Organisation::Named(n) | Organisation::Domain(n) => n,
        }
    }
}

/// The organisation of a requester with this address and organisation name.
pub fn organisation_of(email: &str, organisation: &str) -> Option<Organisation> {
    let name = organisation.trim();
    if !name.is_empty() {
        return Some(Organisation::Named(name.to_string()));
    }
    let domain = email.rsplit_once('@')?.1.trim().to_lowercase();
    if domain.is_empty() || PUBLIC_MAIL.contains(&domain.as_str()) {
        return None;
    }
    Some(Organisation::Domain(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_name_wins_then_the_domain_unless_public() {
        assert_eq!(
            organisation_of("ann@acme.example", " Acme Ltd "),
            Some(Organisation::Named("Acme Ltd".into()))
        );
        assert_eq!(
            organisation_of("ann@Acme.Example", ""),
            Some(Organisation::Domain("acme.example".into()))
        );
        assert_eq!(organisation_of("ann@gmail.com", ""), None);
        assert_eq!(organisation_of("ann@GMX.de", ""), None);
        assert_eq!(organisation_of("not an address", ""), None);
        assert_eq!(
            organisation_of("ann@gmail.com", "Acme").unwrap().label(),
            "Acme"
        );
    }
}
