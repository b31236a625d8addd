use sea_orm::entity::prelude::*;

/// An account's identity at an OpenID provider: the provider's (issuer, subject) pair, unique
/// across all accounts.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_identities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// SHA-256 of the issuer and the subject, lower-case hex: what uniqueness is kept on.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// The configured provider's id when the identity was linked.
    pub provider: String,
    /// The provider's issuer, exactly as its ID tokens name it.
    pub issuer: String,
    /// The provider's subject identifier of the user, exactly as given.
    pub subject: String,
    /// The email the provider gave when the identity was linked, and whether it vouched for it.
    pub email: Option<String>,
    pub email_verified: bool,
    pub linked_at: DateTimeUtc,
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
