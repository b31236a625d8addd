use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Trimmed and lower-cased by the domain; unique.
    #[sea_orm(unique)]
    pub email: String,
    /// A PHC string.
    pub password_hash: String,
    pub display_name: Option<String>,
    /// `user` or `admin`.
    pub role: String,
    pub email_verified_at: Option<DateTimeUtc>,
    pub suspended_at: Option<DateTimeUtc>,
    pub suspension_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Moves on when the password, the email or a suspension changes: emailed links carry
    /// the version they were issued for and die with it.
    pub credential_version: i64,
    /// An address the user asked to move to, until the link sent to it is used.
    pub pending_email: Option<String>,
    /// Set while the account has a confirmed second factor (`totp_factors`).
    pub mfa_enabled_at: Option<DateTimeUtc>,
    /// Whether the account has a password of its own; `false` for an account created by a
    /// social sign-in (its hash is the dummy one) until a password reset sets one.
    pub has_password: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
