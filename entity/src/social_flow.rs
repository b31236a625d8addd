use sea_orm::entity::prelude::*;

/// A redirect to an OpenID provider on its way back: used once, until it expires.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_flows")]
pub struct Model {
    /// SHA-256 of the `state` sent to the provider, lower-case hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The configured provider's id.
    pub provider: String,
    /// `sign_in`, `link` or `reauthenticate`.
    pub purpose: String,
    /// The account a `link` or `reauthenticate` flow acts on.
    pub user_id: Option<Uuid>,
    /// The signed-in session that started a `link` or `reauthenticate` flow.
    pub session_id: Option<Uuid>,
    /// SHA-256 of the value in the starting browser's cookie.
    pub binding_hash: String,
    /// The PKCE code verifier (RFC 7636).
    pub pkce_verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// Where the browser goes when the flow ends.
    pub redirect_to: String,
    /// `cookies` or `code`: how the flow hands the sign-in to the client.
    pub delivery: String,
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
    #[sea_orm(
        belongs_to = "super::session::Entity",
        from = "Column::SessionId",
        to = "super::session::Column::Id",
        on_delete = "Cascade"
    )]
    Session,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
