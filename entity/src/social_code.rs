use sea_orm::entity::prelude::*;

/// What a finished social sign-in flow hands on by a one-time code.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_codes")]
pub struct Model {
    /// SHA-256 of the code, lower-case hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_hash: String,
    /// `sign_in` (a bearer client finishes it) or `link` (an identity waiting for its account
    /// to prove itself).
    pub kind: String,
    pub user_id: Uuid,
    /// The identity the flow verified: provider id, issuer, subject, email.
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// Whether the provider asserted a multi-factor sign-in (`amr`).
    pub provider_mfa: bool,
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
