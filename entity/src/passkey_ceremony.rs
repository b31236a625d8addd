use sea_orm::entity::prelude::*;

/// The server-side state of a passkey registration or authentication between its start and
/// its finish; used once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkey_ceremonies")]
pub struct Model {
    /// The challenge id the client finishes with.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `registration`, `sign_in`, `mfa` or `reauthentication`.
    pub purpose: String,
    /// The account, when known at the start (not for a sign-in).
    pub user_id: Option<Uuid>,
    /// What started it: `session:<id>` or `ticket:<hash>`; none for a sign-in.
    pub binding: Option<String>,
    /// The WebAuthn library's serialised state (the challenge and what it checks against).
    pub state: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
