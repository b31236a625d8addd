use sea_orm::entity::prelude::*;

/// A passkey (WebAuthn credential) of an account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkeys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// SHA-256 of the raw credential id, lower-case hex: unique across all accounts.
    #[sea_orm(unique)]
    pub credential_key: String,
    /// The credential as the WebAuthn library serialises it (public key, flags, counter).
    pub credential: String,
    pub name: String,
    /// The authenticator's signature counter at the last use (0 for those that keep none).
    pub sign_count: i64,
    /// Whether the credential may be synced to other devices; fixed at registration.
    pub backup_eligible: bool,
    /// Whether it was synced, as of the last use.
    pub backed_up: bool,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
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
