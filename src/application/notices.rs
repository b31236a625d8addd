//! Security notices: every change that someone holding the password would make is emailed to
//! the account's address (the old one, for an email change) with what happened, when, from
//! where, and a "this wasn't me" link that gives the account back to that address
//! (`AccountService::secure_account`). The link is stored before the operation answers, so it
//! exists whatever the account goes through next; the email leaves through the deferred
//! queue and never holds the operation up.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::domain::{
    AccountStore, AccountToken, AccountTokenRepository, AuditKind, Email, OpaqueToken, PasskeyName,
    Role, TokenPurpose, User, UserId,
};

use super::audit::{AuditTrail, Record};
use super::caller::ClientInfo;
use super::links::AccountLinks;
use super::ports::{Deferred, Mailer, OutgoingEmail};

/// What a notice is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    PasswordChanged,
    PasswordReset,
    /// Asked to move to this address (the notice carries the cancel link of the change).
    EmailChangeRequested(Email),
    /// Moved to this address.
    EmailChanged(Email),
    SecondFactorEnabled,
    SecondFactorDisabled,
    /// An administrator removed the second factor.
    SecondFactorReset,
    RecoveryCodesRegenerated,
    /// A recovery code was used to sign in; this many are left.
    RecoveryCodeUsed(u64),
    /// An administrator (or the operator) gave the account this role.
    RoleChanged(Role),
    /// An identity at this provider (its name) was linked to the account.
    IdentityLinked(String),
    /// The identity at this provider (its name) was unlinked from the account.
    IdentityUnlinked(String),
    /// A passkey of this name was added.
    PasskeyAdded(PasskeyName),
    /// A passkey of this name was removed.
    PasskeyRemoved(PasskeyName),
}

impl Notice {
    fn subject(&self) -> &'static str {
        match self {
            Notice::PasswordChanged => "Your password was changed",
            Notice::PasswordReset => "Your password was reset",
            Notice::EmailChangeRequested(_) => "Your email address is being changed",
            Notice::EmailChanged(_) => "Your email address was changed",
            Notice::SecondFactorEnabled => "Two-step sign-in was turned on",
            Notice::SecondFactorDisabled => "Two-step sign-in was turned off",
            Notice::SecondFactorReset => "An administrator turned two-step sign-in off",
            Notice::RecoveryCodesRegenerated => "New recovery codes were made",
            Notice::RecoveryCodeUsed(_) => "A recovery code was used to sign in",
            Notice::RoleChanged(_) => "Your account's role was changed",
            Notice::IdentityLinked(_) => "A sign-in through another service was added",
            Notice::IdentityUnlinked(_) => "A sign-in through another service was removed",
            Notice::PasskeyAdded(_) => "A passkey was added to your account",
            Notice::PasskeyRemoved(_) => "A passkey was removed from your account",
        }
    }

    fn sentence(&self) -> String {
        match self {
            Notice::PasswordChanged => "The password of your account was changed".into(),
            Notice::PasswordReset => {
                "The password of your account was set through a reset link".into()
            }
            Notice::EmailChangeRequested(to) => format!(
                "Someone signed in to your account asked to move it to {to}; it moves once \
                 that address confirms",
                to = to.as_str()
            ),
            Notice::EmailChanged(to) => {
                format!("Your account moved to the address {}", to.as_str())
            }
            Notice::SecondFactorEnabled => {
                "An authenticator app was set up as the second step of signing in".into()
            }
            Notice::SecondFactorDisabled => {
                "The second step of signing in (the authenticator app) was removed".into()
            }
            Notice::SecondFactorReset => {
                "An administrator removed the second step of signing in".into()
            }
            Notice::RecoveryCodesRegenerated => {
                "New recovery codes were made; the earlier ones no longer work".into()
            }
            Notice::RecoveryCodeUsed(left) => {
                format!("A recovery code was used to sign in ({left} left)")
            }
            Notice::RoleChanged(role) => format!(
                "Your account's role is now {}",
                role.as_str().to_uppercase()
            ),
            Notice::IdentityLinked(provider) => {
                format!("Your account can now be signed in to with {provider}")
            }
            Notice::IdentityUnlinked(provider) => {
                format!("Your account can no longer be signed in to with {provider}")
            }
            Notice::PasskeyAdded(name) => format!(
                "A passkey named \"{}\" was added: it signs in to your account without the \
                 password",
                name.as_str()
            ),
            Notice::PasskeyRemoved(name) => format!(
                "The passkey named \"{}\" was removed from your account",
                name.as_str()
            ),
        }
    }

    /// What the audit trail's detail says.
    fn name(&self) -> &'static str {
        match self {
            Notice::PasswordChanged => "password changed",
            Notice::PasswordReset => "password reset",
            Notice::EmailChangeRequested(_) => "email change requested",
            Notice::EmailChanged(_) => "email changed",
            Notice::SecondFactorEnabled => "second factor enabled",
            Notice::SecondFactorDisabled => "second factor disabled",
            Notice::SecondFactorReset => "second factor reset",
            Notice::RecoveryCodesRegenerated => "recovery codes regenerated",
            Notice::RecoveryCodeUsed(_) => "recovery code used",
            Notice::RoleChanged(_) => "role changed",
            Notice::IdentityLinked(_) => "identity linked",
            Notice::IdentityUnlinked(_) => "identity unlinked",
            Notice::PasskeyAdded(_) => "passkey added",
            Notice::PasskeyRemoved(_) => "passkey removed",
        }
    }
}

/// A notice whose link is stored, waiting to be sent.
pub struct PreparedNotice {
    account: User,
    notice: Notice,
    at: DateTime<Utc>,
    link: Option<String>,
}

/// Sends security notices with their recovery links.
pub struct SecurityNotices {
    users: Arc<dyn AccountStore>,
    tokens: Arc<dyn AccountTokenRepository>,
    mailer: Arc<dyn Mailer>,
    deferred: Arc<dyn Deferred>,
    links: Arc<AccountLinks>,
    audit: AuditTrail,
}

/// The path of recovery links in the frontend.
pub const SECURE_ACCOUNT_PATH: &str = "secure-account";

impl SecurityNotices {
    pub fn new(
        users: Arc<dyn AccountStore>,
        tokens: Arc<dyn AccountTokenRepository>,
        mailer: Arc<dyn Mailer>,
        deferred: Arc<dyn Deferred>,
        links: Arc<AccountLinks>,
        audit: AuditTrail,
    ) -> Self {
        Self {
            users,
            tokens,
            mailer,
            deferred,
            links,
            audit,
        }
    }

    /// Tells `account` about `notice`, which happened `at` (the time the change was stored
    /// with: the link's window starts there, so what the change made falls within it).
    /// The account is read as it is after the change: the link is bound to that state (the
    /// address it goes to, the credential version the account has there). A notice whose link
    /// cannot be stored (the account changed meanwhile, the database failed) still goes,
    /// without a link: that is logged, and never fails the operation.
    pub async fn send(
        &self,
        account: UserId,
        notice: Notice,
        at: DateTime<Utc>,
        client: &ClientInfo,
    ) {
        match self.users.find_by_id(account).await {
            Ok(Some(account)) => {
                let prepared = self.prepare(&account, notice, at).await;
                self.deliver(prepared, client);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::error!(user_id = %account, %error, "a security notice was not sent");
            }
        }
    }

    /// The first half of `send`, for a change that leaves the state the link must be bound
    /// to (an email change: the old address's link is stored before the account moves).
    pub async fn prepare(
        &self,
        account: &User,
        notice: Notice,
        at: DateTime<Utc>,
    ) -> PreparedNotice {
        let link = match self.issue(account, &notice, at).await {
            Ok(link) => link,
            Err(error) => {
                tracing::error!(user_id = %account.id, %error, "no recovery link for a notice");
                None
            }
        };
        PreparedNotice {
            account: account.clone(),
            notice,
            at,
            link,
        }
    }

    /// The second half of `send`: queues the email, and audits it.
    pub fn deliver(&self, prepared: PreparedNotice, client: &ClientInfo) {
        let PreparedNotice {
            account,
            notice,
            at,
            link,
        } = prepared;
        let email = self.email(&account, &notice, at, client, link.as_deref());
        self.audit.record(Record {
            kind: AuditKind::SecurityNoticeSent,
            actor: None,
            subject: Some(account.id),
            client: Some(client),
            detail: Some(notice.name().into()),
        });
        let mailer = self.mailer.clone();
        self.deferred.defer(
            "security notice",
            Box::pin(async move { mailer.send(email).await }),
        );
    }

    /// Stores a recovery link for `account` as it is; `None` if it is no longer so.
    async fn issue(
        &self,
        account: &User,
        notice: &Notice,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, crate::domain::RepositoryError> {
        let Ok(token) = OpaqueToken::generate() else {
            return Ok(None);
        };
        let target = match notice {
            Notice::EmailChangeRequested(to) | Notice::EmailChanged(to) => Some(to.clone()),
            _ => None,
        };
        let issued = self
            .tokens
            .issue(&AccountToken {
                hash: token.hash(),
                user_id: account.id,
                purpose: TokenPurpose::SecureAccount,
                email: account.email.clone(),
                credential_version: account.credential_version,
                target_email: target,
                created_at: at,
                expires_at: at + self.links.email_change_revert_window,
            })
            .await?;
        if !issued {
            tracing::warn!(user_id = %account.id, "the account changed before its recovery link was stored");
        }
        // The cancel link of an email change keeps the path it shipped with; frontends
        // route both to `secureAccount` (or `cancelEmailChange`, which is the same).
        let path = match notice {
            Notice::EmailChangeRequested(_) => "cancel-email-change",
            _ => SECURE_ACCOUNT_PATH,
        };
        Ok(issued.then(|| self.links.link(path, &token)))
    }

    fn email(
        &self,
        account: &User,
        notice: &Notice,
        at: DateTime<Utc>,
        client: &ClientInfo,
        link: Option<&str>,
    ) -> OutgoingEmail {
        let what = format!(
            "{} on {} UTC, from {}.",
            notice.sentence(),
            at.format("%Y-%m-%d at %H:%M"),
            whence(client),
        );
        let action = match link {
            Some(link) => format!(
                "If it wasn't you, open this link within {} hours. It gives the account back \
                 to this address, signs it out everywhere, undoes what was changed since, and \
                 asks you to choose a new password:\n\n{link}\n",
                self.links.email_change_revert_window.num_hours()
            ),
            None => "If it wasn't you, reset your password now from the sign-in page: whoever \
                     did it knew your password.\n"
                .into(),
        };
        OutgoingEmail {
            to: account.email.as_str().to_owned(),
            subject: notice.subject().into(),
            text: format!("{what}\n\nIf it was you, you need not do anything.\n\n{action}"),
        }
    }
}

/// Where a request came from, coarsely: the network (an IPv4 /24, an IPv6 /48) and the kind of
/// browser or program, so the owner recognises it without the email holding an address.
fn whence(client: &ClientInfo) -> String {
    let network = match client.ip {
        Some(IpAddr::V4(ip)) => {
            let [a, b, c, _] = ip.octets();
            format!("the network {a}.{b}.{c}.0/24")
        }
        Some(IpAddr::V6(ip)) => {
            let s = ip.segments();
            format!("the network {:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        None => "an unknown network".into(),
    };
    format!("{network} ({})", agent_family(client.user_agent.as_deref()))
}

/// The browser or program a user agent names, among the common ones.
fn agent_family(user_agent: Option<&str>) -> &'static str {
    let Some(ua) = user_agent else {
        return "an unknown program";
    };
    // Order matters: Edge and Opera say Chrome too, and Chrome says Safari.
    const FAMILIES: [(&str, &str); 9] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("node", "Node.js"),
        ("python", "Python"),
        ("okhttp", "an Android app"),
    ];
    FAMILIES
        .iter()
        .find(|(marker, _)| ua.contains(marker))
        .map_or("another program", |(_, family)| family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_is_coarse_a_network_and_a_browser_family() {
        let client = ClientInfo {
            ip: Some("203.0.113.77".parse().unwrap()),
            user_agent: Some(
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                 Chrome/131.0.0.0 Safari/537.36"
                    .into(),
            ),
        };
        assert_eq!(whence(&client), "the network 203.0.113.0/24 (Chrome)");
        let client = ClientInfo {
            ip: Some("2001:db8:abcd:12::1".parse().unwrap()),
            user_agent: Some("curl/8.5.0".into()),
        };
        assert_eq!(whence(&client), "the network 2001:db8:abcd::/48 (curl)");
        assert_eq!(
            whence(&ClientInfo::default()),
            "an unknown network (an unknown program)"
        );
    }
}
