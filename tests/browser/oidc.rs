//! The dashboard's OpenID Connect sign-in (authorization code with PKCE) in
//! headless Chromium, against a small identity provider this test runs on
//! loopback — the stand-in for Cognito, as the webhook receivers of other
//! tests stand in for the outside world. It keeps the challenge of each
//! code and refuses a verifier that does not hash to it (`invalid_grant`),
//! and issues a real dashboard token of the demo's administrator.

use super::dashboard::{click, heading, no_axe_violations};
use super::{Chromium, chromium_with_env, snap, text_of};
use axum::extract::{Form, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use fantoccini::{Client, Locator};
use publinks_e2e::spawn_app_with_dashboard_oidc;
use publinks_local::dashboard::OidcConfig;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const CLIENT_ID: &str = "dashboard-client";

/// What the provider does at `/authorize` for the next sign-in.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// A code and the state it was given.
    Code,
    /// A code, and a state that is not the one it was given.
    TamperedState,
    /// `error=access_denied`.
    Deny,
    /// A page of its own with the way back (a code and the state) as a link.
    Hold,
}

/// The provider's memory: the challenge of each code it gave out, the token
/// it issues, and what it was asked.
struct Provider {
    answer: Answer,
    codes: HashMap<String, (String, String)>,
    token: String,
    token_calls: usize,
    logouts: usize,
    next: u32,
}

type Shared = Arc<Mutex<Provider>>;

async fn authorize(State(p): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let param = |k: &str| q.get(k).cloned().unwrap_or_default();
    assert_eq!(param("response_type"), "code");
    assert_eq!(param("client_id"), CLIENT_ID);
    assert_eq!(param("code_challenge_method"), "S256");
    assert_eq!(param("scope"), "openid email");
    assert_eq!(param("code_challenge").len(), 43, "a challenge is 32 bytes in base64url");
    let mut p = p.lock().unwrap();
    p.next += 1;
    let code = format!("code-{}", p.next);
    p.codes.insert(code.clone(), (param("code_challenge"), param("redirect_uri")));
    let redirect = param("redirect_uri");
    let state = param("state");
    let to = match p.answer {
        Answer::Code => format!("{redirect}?code={code}&state={state}"),
        Answer::TamperedState => format!("{redirect}?code={code}&state={state}x"),
        Answer::Deny => format!("{redirect}?error=access_denied&error_description=The+user+declined&state={state}"),
        Answer::Hold => {
            let page =
                format!("<!doctype html><a id=continue href=\"{redirect}?code={code}&amp;state={state}\">Continue</a>");
            return axum::response::Html(page).into_response();
        }
    };
    Redirect::to(&to).into_response()
}

async fn token(State(p): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let mut p = p.lock().unwrap();
    p.token_calls += 1;
    // The page calls from the dashboard's origin: CORS as Cognito answers it.
    let cors = || [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")];
    let refuse = |why: &str| {
        let body = serde_json::json!({ "error": "invalid_grant", "error_description": why });
        (StatusCode::BAD_REQUEST, cors(), Json(body)).into_response()
    };
    assert_eq!(field("grant_type"), "authorization_code");
    assert_eq!(field("client_id"), CLIENT_ID);
    let Some((challenge, redirect)) = p.codes.remove(&field("code")) else {
        return refuse("unknown or used code");
    };
    if redirect != field("redirect_uri") {
        return refuse("redirect_uri differs");
    }
    let hashed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(field("code_verifier")));
    if hashed != challenge {
        return refuse("The code verifier does not match the challenge");
    }
    // The id token is not one the API takes: the page must send the access token.
    let body = serde_json::json!({
        "access_token": p.token, "id_token": "not-for-the-api", "token_type": "Bearer", "expires_in": 600,
    });
    (cors(), Json(body)).into_response()
}

async fn logout(State(p): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    p.lock().unwrap().logouts += 1;
    assert_eq!(q.get("client_id").map(String::as_str), Some(CLIENT_ID));
    Redirect::to(&q["logout_uri"]).into_response()
}

/// The address bar holds neither a code, a state nor a token.
async fn clean_address(client: &Client) {
    let url = client.current_url().await.unwrap();
    let s = url.as_str();
    assert!(url.query().is_none() && !s.contains("code") && !s.contains("state") && !s.contains("eyJ"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_signs_in_through_the_identity_provider_with_pkce_and_out_again() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp = format!("http://{}", listener.local_addr().unwrap());
    let oidc = OidcConfig::parse(
        &serde_json::json!({
            "issuer_name": "Test IdP",
            "authorization_endpoint": format!("{idp}/authorize"),
            "token_endpoint": format!("{idp}/token"),
            "logout_endpoint": format!("{idp}/logout"),
            "client_id": CLIENT_ID,
            "scope": "openid email",
        })
        .to_string(),
    )
    .unwrap();
    let app = spawn_app_with_dashboard_oidc(oidc).await;
    let provider = Arc::new(Mutex::new(Provider {
        answer: Answer::Code,
        codes: HashMap::new(),
        token: app.admin(),
        token_calls: 0,
        logouts: 0,
        next: 0,
    }));
    let router = Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/logout", get(logout))
        .with_state(provider.clone());
    let _idp = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let Chromium { client, downloads: _d, _driver, _profile } = chromium_with_env(&[]).await;
    let dashboard = format!("{}/app/", app.base);

    // Sign in through the provider: back on the library, as the administrator.
    client.goto(&dashboard).await.unwrap();
    heading(&client, "Sign in to the dashboard").await;
    assert_eq!(client.find_all(Locator::Css("button.user, #paste-form")).await.unwrap().len(), 0, "no local sign-in");
    no_axe_violations(&client, "oidc sign-in").await;
    snap(&client, "dashboard-30-oidc-sign-in").await;
    click(&client, "#oidc-sign-in").await;
    heading(&client, "Library").await;
    assert!(text_of(&client, "#who").await.contains("Ada Admin"));
    clean_address(&client).await;
    assert_eq!(client.current_url().await.unwrap().as_str(), format!("{dashboard}#/library"));
    let kept = client.execute("return [sessionStorage.length, sessionStorage.getItem('publinks.token')];", vec![]);
    let kept = kept.await.unwrap();
    assert_eq!(kept[0], 1, "only the token is kept once signed in: {kept}");
    let issued = provider.lock().unwrap().token.clone();
    assert_eq!(kept[1], issued.as_str(), "the access token is the one sent to the API");
    // Back in the history: the provider's redirect with its code is not there.
    client.back().await.unwrap();
    let back = client.current_url().await.unwrap();
    assert!(!back.as_str().contains("code="), "{back}");
    client.goto(&format!("{dashboard}#/library")).await.unwrap();
    heading(&client, "Library").await;

    // Sign out: the tab forgets everything, and the provider's session ends too.
    click(&client, "#sign-out").await;
    heading(&client, "Sign in to the dashboard").await;
    assert_eq!(provider.lock().unwrap().logouts, 1);
    let kept = client.execute("return sessionStorage.length;", vec![]).await.unwrap();
    assert_eq!(kept.as_i64(), Some(0), "nothing kept after signing out");
    client.goto(&format!("{dashboard}#/library")).await.unwrap();
    heading(&client, "Sign in to the dashboard").await;

    // A state that is not this tab's: refused in words, no code exchanged.
    provider.lock().unwrap().answer = Answer::TamperedState;
    let calls = provider.lock().unwrap().token_calls;
    click(&client, "#oidc-sign-in").await;
    heading(&client, "Sign in to the dashboard").await;
    let said = text_of(&client, "#sign-in-error").await;
    assert!(said.contains("state does not match"), "{said}");
    assert_eq!(provider.lock().unwrap().token_calls, calls, "no exchange on a foreign state");
    clean_address(&client).await;
    no_axe_violations(&client, "oidc refused").await;
    snap(&client, "dashboard-31-oidc-refused").await;

    // The provider refuses: its words are shown.
    provider.lock().unwrap().answer = Answer::Deny;
    client.goto(&dashboard).await.unwrap();
    heading(&client, "Sign in to the dashboard").await;
    click(&client, "#oidc-sign-in").await;
    heading(&client, "Sign in to the dashboard").await;
    let said = text_of(&client, "#sign-in-error").await;
    assert!(said.contains("access_denied") && said.contains("The user declined"), "{said}");
    clean_address(&client).await;

    // A verifier that is not the challenge's: the provider says invalid_grant,
    // and the page says so. The provider holds the browser on a page of its
    // own; meanwhile, back in the dashboard's tab, its verifier is replaced.
    provider.lock().unwrap().answer = Answer::Hold;
    client.goto(&dashboard).await.unwrap();
    heading(&client, "Sign in to the dashboard").await;
    click(&client, "#oidc-sign-in").await;
    let onward = client.wait().for_element(Locator::Id("continue")).await.unwrap();
    let onward = onward.attr("href").await.unwrap().unwrap();
    client.back().await.unwrap();
    heading(&client, "Sign in to the dashboard").await;
    let swap = "const flow = JSON.parse(sessionStorage.getItem('publinks.oidc'));
        flow.verifier = 'x'.repeat(flow.verifier.length);
        sessionStorage.setItem('publinks.oidc', JSON.stringify(flow));
        return flow.verifier.length;";
    assert_eq!(client.execute(swap, vec![]).await.unwrap(), 64);
    client.goto(&onward).await.unwrap();
    heading(&client, "Sign in to the dashboard").await;
    let said = text_of(&client, "#sign-in-error").await;
    assert!(said.contains("invalid_grant") && said.contains("does not match the challenge"), "{said}");
    clean_address(&client).await;
    let token = client.execute("return sessionStorage.getItem('publinks.token');", vec![]).await.unwrap();
    assert_eq!(token, serde_json::Value::Null, "no token from a refused exchange");
    client.close().await.unwrap();
}
