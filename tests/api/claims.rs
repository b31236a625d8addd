//! Claims for GraphQL engines: the Hasura and PostGraphile presets, checked the way each engine
//! reads a token (Hasura from its documented `HASURA_GRAPHQL_JWT_SECRET`), and the claims hook.

use authgraph::config::{ClaimsPresetName, Config};
use authgraph::infrastructure::security::{JwtAlgorithm, generate_pem};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app_with, token_claims, unique_email};

fn es256(c: &mut Config) {
    c.tokens.jwt_algorithm = Some(JwtAlgorithm::Es256);
    c.tokens.jwt_private_key = Some(generate_pem(JwtAlgorithm::Es256).unwrap().unwrap().into());
}

fn hasura(c: &mut Config) {
    es256(c);
    c.claims.token_claims_preset = ClaimsPresetName::Hasura;
}

fn postgraphile(c: &mut Config) {
    es256(c);
    c.claims.token_claims_preset = ClaimsPresetName::Postgraphile;
    c.claims.database_roles = vec!["user:app_user".into(), "admin:app_admin".into()];
}

/// What docs/graphql-engines.md tells an operator to give Hasura as
/// `HASURA_GRAPHQL_JWT_SECRET`, built from the service's own discovery document.
async fn hasura_jwt_secret(app: &TestApp) -> Value {
    let discovery: Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    json!({
        "jwk_url": discovery["jwks_uri"],
        "claims_namespace": "https://hasura.io/jwt/claims",
        "audience": "authgraph",
        "issuer": discovery["issuer"],
    })
}

/// Verifies `token` as Hasura does in JWT mode with `config`: the key from `jwk_url` by `kid`,
/// then `audience` and `issuer`; returns the session variables under `claims_namespace` after
/// Hasura's own checks (the default role is one of the allowed roles, every variable a
/// string but the allowed roles).
async fn hasura_reads(app: &TestApp, config: &Value, token: &str) -> Value {
    let keys: JwkSet = app
        .client
        .get(config["jwk_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = keys.find(&kid).expect("the token's key is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[config["audience"].as_str().unwrap()]);
    validation.set_issuer(&[config["issuer"].as_str().unwrap()]);
    let claims =
        jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap()
            .claims;
    let variables = claims[config["claims_namespace"].as_str().unwrap()].clone();
    let allowed = variables["x-hasura-allowed-roles"].as_array().unwrap();
    assert!(
        allowed.contains(&variables["x-hasura-default-role"]),
        "{variables}"
    );
    for (name, value) in variables.as_object().unwrap() {
        assert!(name.starts_with("x-hasura-"), "{name}");
        if name != "x-hasura-allowed-roles" {
            assert!(value.is_string(), "{name}: {value}");
        }
    }
    variables
}

#[tokio::test]
async fn hasura_verifies_a_users_token_from_the_documented_config_and_reads_its_roles() {
    let app = spawn_app_with(hasura).await;
    let config = hasura_jwt_secret(&app).await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let variables = hasura_reads(&app, &config, &user.access()).await;
    assert_eq!(
        variables,
        json!({
            "x-hasura-allowed-roles": ["user"],
            "x-hasura-default-role": "user",
            "x-hasura-user-id": user.user.id,
        })
    );

    let admin = app.admin().await;
    let variables = hasura_reads(&app, &config, &admin.access()).await;
    assert_eq!(
        variables["x-hasura-allowed-roles"],
        json!(["admin", "user"])
    );
    assert_eq!(variables["x-hasura-default-role"], "admin");
    assert_eq!(variables["x-hasura-user-id"], admin.user.id);

    // Refreshed tokens carry the same claims.
    let refreshed = app.refreshed(&user.refresh_token.clone().unwrap()).await;
    let variables = hasura_reads(&app, &config, &refreshed.access()).await;
    assert_eq!(variables["x-hasura-user-id"], user.user.id);
}

#[tokio::test]
async fn a_configured_namespace_holds_the_variables() {
    let app = spawn_app_with(|c| {
        hasura(c);
        c.claims.hasura_claims_namespace = "hasura".into();
    })
    .await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let claims = token_claims(&user.access());
    assert_eq!(claims["hasura"]["x-hasura-user-id"], user.user.id);
    assert!(claims.get("https://hasura.io/jwt/claims").is_none());
}

#[tokio::test]
async fn the_postgraphile_preset_names_the_database_role_and_the_user() {
    let app = spawn_app_with(postgraphile).await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let claims = token_claims(&user.access());
    assert_eq!(claims["role"], "app_user");
    assert_eq!(claims["user_id"], user.user.id);
    assert_eq!(claims["sub"], user.user.id);

    let admin = app.admin().await;
    let claims = token_claims(&admin.access());
    assert_eq!(claims["role"], "app_admin");
    assert_eq!(claims["user_id"], admin.user.id);
}

#[tokio::test]
async fn without_a_preset_tokens_carry_the_registered_claims_only() {
    let app = spawn_app_with(es256).await;
    let user = app.register(&unique_email(), PASSWORD).await;
    let claims = token_claims(&user.access());
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["amr", "aud", "auth_time", "exp", "iat", "iss", "sid", "sub"]
    );
}

#[tokio::test]
async fn a_postgraphile_preset_without_database_roles_does_not_start() {
    let database = crate::helpers::TestDatabase::create().await;
    let config = crate::helpers::test_config(&database.url, |c| {
        c.claims.token_claims_preset = ClaimsPresetName::Postgraphile;
    });
    let error = authgraph::app::Application::build(&config)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("DATABASE_ROLES"), "{error:#}");
}
