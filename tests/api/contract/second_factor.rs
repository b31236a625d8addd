//! The second factor: an account's TOTP factor and recovery codes (`SecondFactorStore`), the
//! tries a sign-in's MFA ticket allows (`AccountTokenRepository::attempt`), and a session
//! proving its user again (`SessionRepository::reauthenticate`).
//!
//! A factor is enrolled unconfirmed, turned on once by a first code, and accepts each later
//! code's time step once, only forward; recovery codes work once; turning the factor on or
//! off moves the account's credential version on, so links and tickets issued before die.

use authgraph::domain::{
    AccountToken, AuthMethods, Authentication, OpaqueToken, PasswordHash, Role, SessionId,
    TokenHash, TokenPurpose, Totp, TotpFactor, UsedToken, User,
};

use super::{Stores, at, issued, session_of, used};

/// The time step of a code read `seconds` after t0.
fn step(seconds: i64) -> i64 {
    Totp::step_at(at(seconds))
}

/// Hashes of fresh recovery codes.
fn codes(how_many: usize) -> Vec<TokenHash> {
    (0..how_many)
        .map(|_| OpaqueToken::generate().unwrap().hash())
        .collect()
}

/// An unconfirmed factor of `user` with this sealed secret, enrolled at `seconds`.
fn enrolment(user: &User, sealed_secret: &str, seconds: i64) -> TotpFactor {
    TotpFactor {
        user_id: user.id,
        sealed_secret: sealed_secret.into(),
        created_at: at(seconds),
        confirmed_at: None,
        last_step: 0,
    }
}

/// Begins an enrolment of `user` at `seconds`, which the store takes.
async fn enrolling(stores: &Stores, user: &User, sealed_secret: &str, seconds: i64) -> TotpFactor {
    let factor = enrolment(user, sealed_secret, seconds);
    assert!(
        stores.factors.begin_enrollment(&factor).await.unwrap(),
        "the enrolment begins"
    );
    factor
}

/// Turns `user`'s factor on: enrolled at 0, confirmed at 10 by a code of that moment.
/// Returns its recovery codes.
async fn turned_on(stores: &Stores, user: &User) -> Vec<TokenHash> {
    enrolling(stores, user, "sealed-secret", 0).await;
    let recovery = codes(3);
    assert!(
        stores
            .factors
            .confirm(user.id, "sealed-secret", step(10), &recovery, at(10))
            .await
            .unwrap(),
        "the factor is confirmed"
    );
    recovery
}

async fn use_code(stores: &Stores, user: &User, code: &TokenHash, seconds: i64) -> bool {
    stores
        .factors
        .use_recovery_code(user.id, code, at(seconds))
        .await
        .unwrap()
}

async fn codes_left(stores: &Stores, user: &User) -> u64 {
    stores.factors.recovery_codes_left(user.id).await.unwrap()
}

async fn factor_of(stores: &Stores, user: &User) -> Option<TotpFactor> {
    stores.factors.find(user.id).await.unwrap()
}

// Enrolment and confirmation.

#[tokio::test]
async fn an_enrolment_is_stored_unconfirmed() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;

    let factor = enrolling(&stores, &ada, "sealed-secret", 5).await;

    assert_eq!(factor_of(&stores, &ada).await, Some(factor));
    let account = stores.reread(&ada).await.unwrap();
    assert_eq!(account.mfa_enabled_at, None, "not on before a first code");
    assert_eq!(
        account.credential_version, ada.credential_version,
        "an enrolment alone voids nothing"
    );
    assert_eq!(codes_left(&stores, &ada).await, 0);
}

#[tokio::test]
async fn a_new_enrolment_replaces_an_unconfirmed_one() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    enrolling(&stores, &ada, "first-secret", 5).await;

    let second = enrolling(&stores, &ada, "second-secret", 6).await;

    assert_eq!(factor_of(&stores, &ada).await, Some(second));
    assert!(
        !stores
            .factors
            .confirm(ada.id, "first-secret", step(10), &codes(3), at(10))
            .await
            .unwrap(),
        "the secret shown first is no longer waiting"
    );
}

#[tokio::test]
async fn a_confirmed_factor_refuses_a_new_enrolment() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    turned_on(&stores, &ada).await;
    let before = factor_of(&stores, &ada).await;

    let began = stores
        .factors
        .begin_enrollment(&enrolment(&ada, "another-secret", 20))
        .await
        .unwrap();

    assert!(!began);
    assert_eq!(
        factor_of(&stores, &ada).await,
        before,
        "the factor is as it was"
    );
}

#[tokio::test]
async fn confirming_turns_the_factor_on() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    enrolling(&stores, &ada, "sealed-secret", 5).await;
    let recovery = codes(3);

    let confirmed = stores
        .factors
        .confirm(ada.id, "sealed-secret", step(10), &recovery, at(10))
        .await
        .unwrap();

    assert!(confirmed);
    assert_eq!(
        factor_of(&stores, &ada).await,
        Some(TotpFactor {
            user_id: ada.id,
            sealed_secret: "sealed-secret".into(),
            created_at: at(5),
            confirmed_at: Some(at(10)),
            last_step: step(10),
        }),
        "the confirming code's step counts as used"
    );
    assert_eq!(codes_left(&stores, &ada).await, 3);
    let account = stores.reread(&ada).await.unwrap();
    assert_eq!(account.mfa_enabled_at, Some(at(10)));
    assert_eq!(account.credential_version, ada.credential_version + 1);
}

#[tokio::test]
async fn confirming_binds_to_the_secret_that_was_shown() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let factor = enrolling(&stores, &ada, "sealed-secret", 5).await;

    let confirmed = stores
        .factors
        .confirm(ada.id, "another-secret", step(10), &codes(3), at(10))
        .await
        .unwrap();

    assert!(!confirmed);
    assert_eq!(
        factor_of(&stores, &ada).await,
        Some(factor),
        "still waiting"
    );
    assert_eq!(codes_left(&stores, &ada).await, 0, "no codes stored");
    let account = stores.reread(&ada).await.unwrap();
    assert_eq!(account.mfa_enabled_at, None);
    assert_eq!(account.credential_version, ada.credential_version);
}

#[tokio::test]
async fn confirming_replaces_earlier_recovery_codes() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    enrolling(&stores, &ada, "sealed-secret", 5).await;
    let earlier = codes(2);
    stores
        .factors
        .replace_recovery_codes(ada.id, &earlier, at(6))
        .await
        .unwrap();
    let recovery = codes(3);

    stores
        .factors
        .confirm(ada.id, "sealed-secret", step(10), &recovery, at(10))
        .await
        .unwrap();

    assert_eq!(codes_left(&stores, &ada).await, 3);
    assert!(!use_code(&stores, &ada, &earlier[0], 11).await, "replaced");
    assert!(use_code(&stores, &ada, &recovery[0], 11).await);
}

#[tokio::test]
async fn a_factor_is_confirmed_once() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let recovery = turned_on(&stores, &ada).await;
    let on = stores.reread(&ada).await.unwrap();
    let factor = factor_of(&stores, &ada).await;

    let again = stores
        .factors
        .confirm(ada.id, "sealed-secret", step(40), &codes(3), at(40))
        .await
        .unwrap();

    assert!(!again);
    assert_eq!(factor_of(&stores, &ada).await, factor, "nothing moved");
    assert!(
        use_code(&stores, &ada, &recovery[0], 41).await,
        "the first codes still work"
    );
    assert_eq!(stores.reread(&ada).await.unwrap(), on);
}

#[tokio::test]
async fn nothing_is_confirmed_without_an_enrolment() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;

    let confirmed = stores
        .factors
        .confirm(ada.id, "sealed-secret", step(10), &codes(3), at(10))
        .await
        .unwrap();

    assert!(!confirmed);
    assert_eq!(factor_of(&stores, &ada).await, None);
    assert_eq!(codes_left(&stores, &ada).await, 0);
    assert_eq!(stores.reread(&ada).await.unwrap(), ada);
}

// Codes of the authenticator: each time step once, only forward.

#[tokio::test]
async fn a_step_is_accepted_once_and_only_forward() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    turned_on(&stores, &ada).await;

    assert!(
        !stores.factors.accept_step(ada.id, step(10)).await.unwrap(),
        "the confirming code's step"
    );
    assert!(stores.factors.accept_step(ada.id, step(40)).await.unwrap());
    assert!(
        !stores.factors.accept_step(ada.id, step(40)).await.unwrap(),
        "the same step again"
    );
    assert!(
        !stores.factors.accept_step(ada.id, step(10)).await.unwrap(),
        "an earlier step"
    );
    assert!(stores.factors.accept_step(ada.id, step(100)).await.unwrap());
    assert_eq!(factor_of(&stores, &ada).await.unwrap().last_step, step(100));
}

#[tokio::test]
async fn no_step_is_accepted_without_a_confirmed_factor() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    assert!(
        !stores.factors.accept_step(ada.id, step(10)).await.unwrap(),
        "no factor"
    );

    let waiting = enrolling(&stores, &ada, "sealed-secret", 5).await;

    assert!(
        !stores.factors.accept_step(ada.id, step(10)).await.unwrap(),
        "an enrolment that waits for its first code"
    );
    assert_eq!(factor_of(&stores, &ada).await, Some(waiting));
}

#[tokio::test]
async fn of_two_concurrent_uses_of_a_step_one_succeeds() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    turned_on(&stores, &ada).await;

    let (one, other) = stores
        .race(async {
            tokio::join!(
                stores.factors.accept_step(ada.id, step(40)),
                stores.factors.accept_step(ada.id, step(40)),
            )
        })
        .await;

    assert_eq!(one.unwrap() as u8 + other.unwrap() as u8, 1);
}

// Recovery codes.

#[tokio::test]
async fn a_recovery_code_works_once() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let recovery = turned_on(&stores, &ada).await;

    assert!(use_code(&stores, &ada, &recovery[1], 20).await);
    assert!(!use_code(&stores, &ada, &recovery[1], 21).await, "used");
    assert!(
        !use_code(&stores, &ada, &codes(1)[0], 21).await,
        "never issued"
    );
}

#[tokio::test]
async fn a_recovery_code_works_only_for_its_account() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let bob = stores.account("bob@example.com", Role::User, at(0)).await;
    turned_on(&stores, &ada).await;
    let bobs = turned_on(&stores, &bob).await;

    assert!(!use_code(&stores, &ada, &bobs[0], 20).await);
    assert!(
        use_code(&stores, &bob, &bobs[0], 21).await,
        "still unused for its own account"
    );
}

#[tokio::test]
async fn only_unused_recovery_codes_are_left() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let bob = stores.account("bob@example.com", Role::User, at(0)).await;
    let recovery = turned_on(&stores, &ada).await;
    turned_on(&stores, &bob).await;

    use_code(&stores, &ada, &recovery[0], 20).await;
    use_code(&stores, &ada, &recovery[2], 21).await;

    assert_eq!(codes_left(&stores, &ada).await, 1);
    assert_eq!(codes_left(&stores, &bob).await, 3, "another account's");
}

#[tokio::test]
async fn new_recovery_codes_void_the_old_ones() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let old = turned_on(&stores, &ada).await;
    use_code(&stores, &ada, &old[0], 20).await;
    let new = codes(4);

    stores
        .factors
        .replace_recovery_codes(ada.id, &new, at(30))
        .await
        .unwrap();

    assert_eq!(codes_left(&stores, &ada).await, 4);
    assert!(!use_code(&stores, &ada, &old[1], 31).await, "an old one");
    assert!(use_code(&stores, &ada, &new[0], 31).await);
}

#[tokio::test]
async fn of_two_concurrent_uses_of_a_recovery_code_one_succeeds() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let recovery = turned_on(&stores, &ada).await;

    let (one, other) = stores
        .race(async {
            tokio::join!(
                use_code(&stores, &ada, &recovery[0], 20),
                use_code(&stores, &ada, &recovery[0], 20),
            )
        })
        .await;

    assert_eq!(one as u8 + other as u8, 1);
    assert_eq!(codes_left(&stores, &ada).await, 2);
}

#[tokio::test]
async fn an_empty_set_of_recovery_codes_works_like_any_other() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let bob = stores.account("bob@example.com", Role::User, at(0)).await;
    let adas = turned_on(&stores, &ada).await;
    enrolling(&stores, &bob, "sealed-secret", 0).await;

    stores
        .factors
        .replace_recovery_codes(ada.id, &[], at(20))
        .await
        .unwrap();
    let confirmed = stores
        .factors
        .confirm(bob.id, "sealed-secret", step(10), &[], at(10))
        .await
        .unwrap();

    assert_eq!(codes_left(&stores, &ada).await, 0);
    assert!(!use_code(&stores, &ada, &adas[0], 21).await, "voided");
    assert!(confirmed, "a factor without recovery codes");
    assert_eq!(codes_left(&stores, &bob).await, 0);
    assert_eq!(
        stores.reread(&bob).await.unwrap().mfa_enabled_at,
        Some(at(10))
    );
}

// Turning the factor off.

#[tokio::test]
async fn removing_the_factor_takes_its_codes_and_the_mark_with_it() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let recovery = turned_on(&stores, &ada).await;
    let on = stores.reread(&ada).await.unwrap();

    let removed = stores.factors.remove(ada.id).await.unwrap();

    assert!(removed);
    assert_eq!(factor_of(&stores, &ada).await, None);
    assert_eq!(codes_left(&stores, &ada).await, 0);
    assert!(!use_code(&stores, &ada, &recovery[0], 20).await);
    assert!(!stores.factors.accept_step(ada.id, step(40)).await.unwrap());
    let off = stores.reread(&ada).await.unwrap();
    assert_eq!(off.mfa_enabled_at, None);
    assert_eq!(off.credential_version, on.credential_version + 1);
    assert!(
        stores
            .factors
            .begin_enrollment(&enrolment(&ada, "new-secret", 30))
            .await
            .unwrap(),
        "a new enrolment may begin"
    );
}

#[tokio::test]
async fn only_a_confirmed_factor_is_removed() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    assert!(!stores.factors.remove(ada.id).await.unwrap(), "no factor");

    let waiting = enrolling(&stores, &ada, "sealed-secret", 5).await;

    assert!(
        !stores.factors.remove(ada.id).await.unwrap(),
        "an enrolment that waits for its first code"
    );
    assert_eq!(factor_of(&stores, &ada).await, Some(waiting));
    assert_eq!(
        stores.reread(&ada).await.unwrap(),
        ada,
        "the account as it was"
    );
}

#[tokio::test]
async fn a_deleted_account_takes_its_factor_and_codes_with_it() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let recovery = turned_on(&stores, &ada).await;

    stores.accounts.delete(ada.id, at(20)).await.unwrap();

    assert_eq!(factor_of(&stores, &ada).await, None);
    assert_eq!(codes_left(&stores, &ada).await, 0);
    assert!(!use_code(&stores, &ada, &recovery[0], 21).await);
    assert!(!stores.factors.accept_step(ada.id, step(40)).await.unwrap());
    assert!(!stores.factors.remove(ada.id).await.unwrap());
}

// Sealing a secret again with the current key.

#[tokio::test]
async fn resealing_replaces_the_sealed_secret_and_nothing_else() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let bob = stores.account("bob@example.com", Role::User, at(0)).await;
    turned_on(&stores, &ada).await;
    turned_on(&stores, &bob).await;
    assert!(stores.factors.accept_step(ada.id, step(40)).await.unwrap());
    let before = factor_of(&stores, &ada).await.unwrap();
    let bobs = factor_of(&stores, &bob).await;
    let account = stores.reread(&ada).await;

    let resealed = stores
        .factors
        .reseal(ada.id, "sealed-secret", "sealed-again")
        .await
        .unwrap();

    assert!(resealed);
    assert_eq!(
        factor_of(&stores, &ada).await,
        Some(TotpFactor {
            sealed_secret: "sealed-again".into(),
            ..before
        }),
        "confirmed, with its last step"
    );
    assert_eq!(codes_left(&stores, &ada).await, 3);
    assert_eq!(
        stores.reread(&ada).await,
        account,
        "the same secret: nothing issued before is voided"
    );
    assert_eq!(
        factor_of(&stores, &bob).await,
        bobs,
        "another account's factor, sealed alike, is its own"
    );
}

#[tokio::test]
async fn a_secret_replaced_meanwhile_is_not_resealed() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    assert!(
        !stores
            .factors
            .reseal(ada.id, "sealed-secret", "sealed-again")
            .await
            .unwrap(),
        "no factor"
    );
    turned_on(&stores, &ada).await;
    // Read by one instance, then reset and enrolled anew before it writes.
    assert!(stores.factors.remove(ada.id).await.unwrap());
    let enrolled_anew = enrolling(&stores, &ada, "new-secret", 30).await;

    let resealed = stores
        .factors
        .reseal(ada.id, "sealed-secret", "sealed-again")
        .await
        .unwrap();

    assert!(!resealed);
    assert_eq!(factor_of(&stores, &ada).await, Some(enrolled_anew));
}

// Links and sign-in tickets issued before the factor went on or off.

/// A token of `purpose` for `user` as it is now, issued at `seconds`, for half an hour.
fn token_for(user: &User, purpose: TokenPurpose, seconds: i64) -> AccountToken {
    AccountToken {
        hash: OpaqueToken::generate().unwrap().hash(),
        user_id: user.id,
        purpose,
        email: user.email.clone(),
        credential_version: user.credential_version,
        target_email: None,
        created_at: at(seconds),
        expires_at: at(seconds + 1800),
    }
}

/// One try with an MFA ticket that allows `max` of them, at `seconds`.
async fn tried(
    stores: &Stores,
    ticket: &AccountToken,
    max: u32,
    seconds: i64,
) -> Option<UsedToken> {
    stores
        .links
        .attempt(&ticket.hash, ticket.purpose, max, at(seconds))
        .await
        .unwrap()
}

#[tokio::test]
async fn turning_the_factor_on_voids_earlier_links() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let reset = token_for(&ada, TokenPurpose::PasswordReset, 1);
    issued(&stores, &reset).await;

    turned_on(&stores, &ada).await;

    assert_eq!(used(&stores, &reset, 20).await, None);
}

#[tokio::test]
async fn turning_the_factor_off_voids_earlier_links_and_tickets() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    turned_on(&stores, &ada).await;
    let on = stores.reread(&ada).await.unwrap();
    let reset = token_for(&on, TokenPurpose::PasswordReset, 11);
    let ticket = token_for(&on, TokenPurpose::MfaTicket, 11);
    issued(&stores, &reset).await;
    issued(&stores, &ticket).await;

    stores.factors.remove(ada.id).await.unwrap();

    assert_eq!(used(&stores, &reset, 20).await, None);
    assert_eq!(tried(&stores, &ticket, 5, 20).await, None);
    assert_eq!(used(&stores, &ticket, 20).await, None);
}

// Tries with a sign-in's MFA ticket.

/// An MFA ticket of a user with a second factor, issued at 11 for half an hour.
async fn ticket_of_signed_in_user(stores: &Stores) -> (User, AccountToken) {
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    turned_on(stores, &ada).await;
    let on = stores.reread(&ada).await.unwrap();
    let ticket = token_for(&on, TokenPurpose::MfaTicket, 11);
    issued(stores, &ticket).await;
    (on, ticket)
}

#[tokio::test]
async fn a_ticket_allows_its_tries_and_no_more() {
    let stores = Stores::new().await;
    let (ada, ticket) = ticket_of_signed_in_user(&stores).await;
    let holder = UsedToken {
        user_id: ada.id,
        email: ada.email.clone(),
        target_email: None,
        credential_version: ada.credential_version,
    };

    for n in 0..3 {
        assert_eq!(
            tried(&stores, &ticket, 3, 20 + n).await,
            Some(holder.clone()),
            "try {n}"
        );
    }
    assert_eq!(tried(&stores, &ticket, 3, 30).await, None, "a fourth try");
}

#[tokio::test]
async fn tries_do_not_use_the_ticket() {
    let stores = Stores::new().await;
    let (ada, ticket) = ticket_of_signed_in_user(&stores).await;
    tried(&stores, &ticket, 3, 20).await.unwrap();
    tried(&stores, &ticket, 3, 21).await.unwrap();

    assert_eq!(
        used(&stores, &ticket, 22)
            .await
            .map(|holder| holder.user_id),
        Some(ada.id),
        "the sign-in completes"
    );
    assert_eq!(
        tried(&stores, &ticket, 3, 23).await,
        None,
        "a used ticket allows no more tries"
    );
}

#[tokio::test]
async fn a_ticket_allows_no_tries_once_expired() {
    let stores = Stores::new().await;
    let (_, ticket) = ticket_of_signed_in_user(&stores).await;

    assert_eq!(tried(&stores, &ticket, 3, 11 + 1800).await, None, "expired");
    assert!(
        tried(&stores, &ticket, 3, 11 + 1799).await.is_some(),
        "a second earlier it allowed one"
    );
}

#[tokio::test]
async fn only_a_ticket_allows_tries_as_one() {
    let stores = Stores::new().await;
    let (ada, _) = ticket_of_signed_in_user(&stores).await;
    let never_issued = token_for(&ada, TokenPurpose::MfaTicket, 11);
    let reset = token_for(&ada, TokenPurpose::PasswordReset, 11);
    issued(&stores, &reset).await;

    assert_eq!(tried(&stores, &never_issued, 3, 20).await, None);
    let reset_as_ticket = stores
        .links
        .attempt(&reset.hash, TokenPurpose::MfaTicket, 3, at(20))
        .await
        .unwrap();
    assert_eq!(reset_as_ticket, None, "a link of another purpose");
}

#[tokio::test]
async fn a_ticket_allows_no_tries_once_the_account_changed() {
    let stores = Stores::new().await;
    let (ada, ticket) = ticket_of_signed_in_user(&stores).await;

    stores
        .accounts
        .set_password_hash(ada.id, &PasswordHash::new("$argon2id$new".into()), at(15))
        .await
        .unwrap();

    assert_eq!(tried(&stores, &ticket, 3, 20).await, None);
}

#[tokio::test]
async fn concurrent_tries_cannot_outrun_the_count() {
    let stores = Stores::new().await;
    let (_, ticket) = ticket_of_signed_in_user(&stores).await;

    let tries = stores
        .race(async {
            tokio::join!(
                tried(&stores, &ticket, 3, 20),
                tried(&stores, &ticket, 3, 20),
                tried(&stores, &ticket, 3, 20),
                tried(&stores, &ticket, 3, 20),
                tried(&stores, &ticket, 3, 20),
            )
        })
        .await;

    let allowed = [tries.0, tries.1, tries.2, tries.3, tries.4]
        .iter()
        .filter(|t| t.is_some())
        .count();
    assert_eq!(allowed, 3);
}

// A session proving its user again.

#[tokio::test]
async fn reauthentication_records_when_and_how() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let session = session_of(&ada, at(0));
    stores
        .sessions
        .create(&session, &OpaqueToken::generate().unwrap().hash())
        .await
        .unwrap();
    let again = Authentication {
        at: at(600),
        methods: AuthMethods::PasswordAndOtp,
    };

    let recorded = stores
        .sessions
        .reauthenticate(session.id, again)
        .await
        .unwrap();

    assert!(recorded);
    let found = stores.sessions.find(session.id).await.unwrap().unwrap();
    assert_eq!(found.authenticated, again);
    assert_eq!(
        found.last_used_at, session.last_used_at,
        "the rest of the session is as it was"
    );
    assert_eq!(found.expires_at, session.expires_at);
}

#[tokio::test]
async fn an_ended_session_is_not_reauthenticated() {
    let stores = Stores::new().await;
    let ada = stores.account("ada@example.com", Role::User, at(0)).await;
    let revoked = session_of(&ada, at(0));
    let expiring = session_of(&ada, at(0));
    for session in [&revoked, &expiring] {
        stores
            .sessions
            .create(session, &OpaqueToken::generate().unwrap().hash())
            .await
            .unwrap();
    }
    stores.sessions.revoke(revoked.id, at(10)).await.unwrap();
    let when = |at| Authentication {
        at,
        methods: AuthMethods::PasswordAndOtp,
    };

    assert!(
        !stores
            .sessions
            .reauthenticate(revoked.id, when(at(20)))
            .await
            .unwrap(),
        "revoked"
    );
    assert!(
        !stores
            .sessions
            .reauthenticate(expiring.id, when(expiring.expires_at))
            .await
            .unwrap(),
        "expired"
    );
    assert!(
        !stores
            .sessions
            .reauthenticate(SessionId::generate(), when(at(20)))
            .await
            .unwrap(),
        "never opened"
    );
    for session in [&revoked, &expiring] {
        let found = stores.sessions.find(session.id).await.unwrap().unwrap();
        assert_eq!(found.authenticated, session.authenticated, "unchanged");
    }
    assert!(
        stores
            .sessions
            .reauthenticate(
                expiring.id,
                when(expiring.expires_at - chrono::Duration::seconds(1))
            )
            .await
            .unwrap(),
        "a second before it expired"
    );
}
