//! Tokens other services verify: the published keys (`/.well-known/jwks.json`), each
//! algorithm verified from them by an independent verifier (jsonwebtoken's JWK support, as a
//! resource server would use it), rotation, and the forgeries a verifier must refuse.

use authgraph::infrastructure::security::{JwtAlgorithm, generate_pem};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    JWT_SECRET, PASSWORD, TestApp, assert_no_errors, error_code, spawn_app, spawn_app_with,
    token_claims, unique_email,
};

fn key(algorithm: JwtAlgorithm) -> String {
    generate_pem(algorithm).unwrap().unwrap()
}

async fn app_signing_with(algorithm: JwtAlgorithm, pem: &str) -> TestApp {
    let pem = pem.to_owned();
    spawn_app_with(move |c| {
        c.tokens.jwt_algorithm = Some(algorithm);
        c.tokens.jwt_private_key = Some(pem.into());
    })
    .await
}

async fn jwks(app: &TestApp) -> (reqwest::header::HeaderMap, Value) {
    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap())
}

async fn access_token(app: &TestApp) -> String {
    app.register(&unique_email(), PASSWORD).await.access()
}

/// Verifies `token` as a resource server would: the key its `kid` names in the published set,
/// that key's algorithm only, and the issuer and audience.
fn verify_from(set: &Value, token: &str) -> Result<Value, jsonwebtoken::errors::Error> {
    let set: JwkSet = serde_json::from_value(set.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(token)?.kid.unwrap_or_default();
    let jwk = set
        .find(&kid)
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)?;
    let algorithm: Algorithm = jwk
        .common
        .key_algorithm
        .unwrap()
        .to_string()
        .parse()
        .unwrap();
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&["authgraph"]);
    validation.set_audience(&["authgraph"]);
    Ok(jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims)
}

#[tokio::test]
async fn tokens_of_each_algorithm_verify_with_the_published_keys_and_nothing_secret_is_shown() {
    for (algorithm, kty, crv) in [
        (JwtAlgorithm::Es256, "EC", "P-256"),
        (JwtAlgorithm::EdDsa, "OKP", "Ed25519"),
    ] {
        let pem = key(algorithm);
        let app = app_signing_with(algorithm, &pem).await;
        let token = access_token(&app).await;
        let (headers, set) = jwks(&app).await;
        assert_eq!(headers["cache-control"], "public, max-age=300");
        assert_eq!(headers["content-type"], "application/jwk-set+json");

        let keys = set["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1, "{set}");
        let published = &keys[0];
        assert_eq!(published["kty"], kty);
        assert_eq!(published["crv"], crv);
        assert_eq!(published["alg"], algorithm.name());
        assert_eq!(published["use"], "sig");
        assert!(published.get("d").is_none(), "no private part: {published}");
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
            published["kid"].as_str()
        );
        let claims = verify_from(&set, &token).unwrap();
        assert_eq!(claims["sub"], token_claims(&token)["sub"]);
        // The service accepts its own token too, of course.
        assert_no_errors(&app.me(&token).await);
    }
}

#[tokio::test]
async fn a_shared_secret_is_never_published() {
    let app = spawn_app().await;
    let (_, set) = jwks(&app).await;
    assert_eq!(set, json!({ "keys": [] }));
    let token = access_token(&app).await;
    assert_eq!(
        jsonwebtoken::decode_header(&token).unwrap().alg,
        Algorithm::HS256
    );
}

#[tokio::test]
async fn rotation_keeps_earlier_tokens_working_and_publishes_both_keys_until_retired() {
    let (old_pem, new_pem) = (key(JwtAlgorithm::Es256), key(JwtAlgorithm::EdDsa));
    let before = app_signing_with(JwtAlgorithm::Es256, &old_pem).await;
    let old_token = access_token(&before).await;

    let (old, new) = (old_pem.clone(), new_pem.clone());
    let rotated = before
        .another_instance_with(move |c| {
            c.tokens.jwt_algorithm = Some(JwtAlgorithm::EdDsa);
            c.tokens.jwt_private_key = Some(new.into());
            c.tokens.jwt_previous_keys = Some(old.into());
        })
        .await;
    assert_no_errors(&rotated.me(&old_token).await);
    let new_token = access_token(&rotated).await;
    let (_, set) = jwks(&rotated).await;
    let algs: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(algs, ["EdDSA", "ES256"], "the signing key first");
    assert!(verify_from(&set, &old_token).is_ok());
    assert!(verify_from(&set, &new_token).is_ok());

    // Once the old key is retired, so are its tokens, here and for every verifier.
    let retired = before
        .another_instance_with(move |c| {
            c.tokens.jwt_algorithm = Some(JwtAlgorithm::EdDsa);
            c.tokens.jwt_private_key = Some(new_pem.into());
        })
        .await;
    assert_eq!(error_code(&retired.me(&old_token).await), "UNAUTHENTICATED");
    assert_no_errors(&retired.me(&new_token).await);
    let (_, set) = jwks(&retired).await;
    assert_eq!(set["keys"].as_array().unwrap().len(), 1);
    assert!(verify_from(&set, &old_token).is_err());
}

#[tokio::test]
async fn forged_tokens_are_refused_an_unknown_kid_another_key_and_algorithm_confusion() {
    let pem = key(JwtAlgorithm::Es256);
    let app = app_signing_with(JwtAlgorithm::Es256, &pem).await;
    let genuine = access_token(&app).await;
    let claims = token_claims(&genuine);
    let (_, set) = jwks(&app).await;
    let published = &set["keys"][0];
    let kid = published["kid"].as_str().unwrap();

    let sign = |algorithm: Algorithm, kid: &str, key: &EncodingKey| {
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    };
    let attacker_der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(
        &<p256::SecretKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_pem(&key(
            JwtAlgorithm::Es256,
        ))
        .unwrap(),
    )
    .unwrap();
    let attacker = EncodingKey::from_ec_der(attacker_der.as_bytes());
    // The public key, as a verifier confused about the algorithm would use it as an HMAC
    // secret: its JWK coordinates, its PEM.
    let public_material = [
        published["x"].as_str().unwrap().to_owned(),
        published.to_string(),
        format!("{}{}", published["x"], published["y"]),
    ];
    let mut forgeries = vec![
        (
            "an unknown kid",
            sign(Algorithm::ES256, "someone-elses-key", &attacker),
        ),
        (
            "another key under our kid",
            sign(Algorithm::ES256, kid, &attacker),
        ),
        (
            "HS256 under our kid, keyed with our JWT_SECRET",
            sign(
                Algorithm::HS256,
                kid,
                &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
            ),
        ),
    ];
    for material in &public_material {
        forgeries.push((
            "HS256 keyed with the public key",
            sign(
                Algorithm::HS256,
                kid,
                &EncodingKey::from_secret(material.as_bytes()),
            ),
        ));
    }
    // `alg: none`, which jsonwebtoken cannot even produce: by hand.
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    forgeries.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(&json!({ "alg": "none", "typ": "JWT", "kid": kid })),
            b64(&claims)
        ),
    ));
    for (what, token) in forgeries {
        assert_eq!(
            error_code(&app.me(&token).await),
            "UNAUTHENTICATED",
            "{what}"
        );
        assert!(verify_from(&set, &token).is_err(), "{what}");
    }
    assert_no_errors(&app.me(&genuine).await);
}

#[tokio::test]
async fn the_discovery_document_names_the_issuer_and_where_its_keys_are() {
    let discovery = |app: &TestApp| {
        let request = app.client.get(app.url("/.well-known/openid-configuration"));
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let app = spawn_app_with(|c| c.tokens.api_url = Some("https://auth.example.com/".into())).await;
    let document = discovery(&app).await;
    assert_eq!(document["issuer"], "authgraph");
    assert_eq!(
        document["jwks_uri"],
        "https://auth.example.com/.well-known/jwks.json"
    );

    // Without API_URL, the address it listens on, which serves the keys.
    let app = spawn_app().await;
    let document = discovery(&app).await;
    let uri = document["jwks_uri"].as_str().unwrap();
    assert_eq!(uri, app.url("/.well-known/jwks.json"));
    let fetched = app.client.get(uri).send().await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
}
