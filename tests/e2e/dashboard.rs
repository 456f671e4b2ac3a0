//! The dashboard's files and the local sign-in over HTTP: every file under
//! `/app/` with its strict content policy, and a token only for a real user,
//! asked from this machine under the server's own address, in the body.

use publinks_e2e::spawn_app;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn the_dashboard_is_served_with_a_strict_policy_and_no_inline_script() {
    let app = spawn_app().await;
    let res = app.http.get(format!("{}/app", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()["location"], "/app/", "/app leads to the dashboard");
    let res = app.http.get(format!("{}/app/", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let policy = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script>") && !html.contains(" on"), "no inline script or handler: {html}");
    for (path, kind) in
        [("style.css", "text/css"), ("js/app.js", "text/javascript"), ("js/links.js", "text/javascript")]
    {
        let res = app.http.get(format!("{}/app/{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    }
    let config: Value =
        app.http.get(format!("{}/app/config.json", app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["mode"], "local");
}

#[tokio::test]
async fn the_local_sign_in_gives_a_working_token_only_to_a_real_user_under_the_servers_own_address() {
    let app = spawn_app().await;
    let users: Value =
        app.http.get(format!("{}/app/local/users", app.base)).send().await.unwrap().json().await.unwrap();
    let users = users["items"].as_array().unwrap();
    assert_eq!(users.len(), 3, "the demo's users: {users:?}");
    let viewer = users.iter().find(|u| u["role"] == "view_only").unwrap();

    let res = app
        .http
        .post(format!("{}/app/local/token", app.base))
        .json(&json!({"user_id": viewer["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let token = res.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let me = app.get("/api/me", &token, StatusCode::OK).await;
    assert_eq!(me["user"]["id"], viewer["id"], "the token is the chosen user's");

    // An unknown user, a body that is not one, and another name for the server.
    let post = |body: &'static str| {
        app.http.post(format!("{}/app/local/token", app.base)).header("content-type", "application/json").body(body)
    };
    let res = post(r#"{"user_id": "6f1c2a8e-3b7d-4e59-9a01-0d2c4b6e8f10"}"#).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["field"], "user_id");
    let res = post(r#"{"user": 1}"#).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "invalid_field");
    let rebound =
        app.http.get(format!("{}/app/local/users", app.base)).header("host", "attacker.example").send().await.unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN, "a rebound DNS name gets nothing");
    assert_eq!(rebound.json::<Value>().await.unwrap()["error"]["code"], "wrong_host");
    let port = app.base.rsplit(':').next().unwrap();
    let res = app
        .http
        .get(format!("{}/app/local/users", app.base))
        .header("host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "localhost is this machine too");
}

#[tokio::test]
async fn with_an_identity_provider_config_json_names_its_endpoints_and_the_policy_lets_the_page_reach_its_token_endpoint()
 {
    use publinks_local::dashboard::OidcConfig;
    let settings = json!({
        "issuer_name": "Example IdP",
        "authorization_endpoint": "https://auth.example.com/oauth2/authorize",
        "token_endpoint": "https://auth.example.com:8443/oauth2/token?x=1",
        "client_id": "abc123",
        "scope": "openid email",
        "logout_endpoint": "https://auth.example.com/logout",
    });
    let app = publinks_e2e::spawn_app_with_dashboard_oidc(OidcConfig::parse(&settings.to_string()).unwrap()).await;
    let res = app.http.get(format!("{}/app/config.json", app.base)).send().await.unwrap();
    let policy = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(policy.contains("connect-src 'self' https://auth.example.com:8443;"), "{policy}");
    let config: Value = res.json().await.unwrap();
    assert_eq!(config["mode"], "oidc");
    assert_eq!(config["api"], "");
    for key in ["issuer_name", "authorization_endpoint", "token_endpoint", "client_id", "scope", "logout_endpoint"] {
        assert_eq!(config[key], settings[key], "{key}");
    }
    assert!(config.get("redirect_uri").is_none(), "absent: the page uses its own address");
    let page = app.http.get(format!("{}/app/", app.base)).send().await.unwrap();
    assert_eq!(page.headers()["content-security-policy"].to_str().unwrap(), policy, "every file has it");
    let script = app.http.get(format!("{}/app/js/oidc.js", app.base)).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);

    // The provider is the only way in: the local sign-in would mint a token
    // for any user to whoever reaches the server from this machine.
    let users = app.http.get(format!("{}/app/local/users", app.base)).send().await.unwrap();
    assert_eq!(users.status(), StatusCode::NOT_FOUND);
    let body: Value = users.json().await.unwrap();
    assert_eq!(body["error"]["code"], "local_sign_in_off", "{body}");
    let token = app
        .http
        .post(format!("{}/app/local/token", app.base))
        .header("content-type", "application/json")
        .body(json!({"user_id": "00000000-0000-0000-0000-000000000000"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::NOT_FOUND);

    // Without one, the local mode and this origin only.
    let local = spawn_app().await;
    let res = local.http.get(format!("{}/app/config.json", local.base)).send().await.unwrap();
    let policy = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("connect-src 'self';"), "{policy}");

    // Settings that would break the policy or the flow are refused at start.
    for (bad, why) in [
        (json!({"token_endpoint": "https://a.example; script-src *"}), "not an http(s) URL"),
        (json!({"token_endpoint": "javascript:alert(1)"}), "not an http(s) URL"),
        (json!({"authorization_endpoint": "/relative"}), "not an http(s) URL"),
        (json!({"token": "refresh_token"}), "access_token or id_token"),
        (json!({"client_secret": "no"}), "unknown field"),
    ] {
        let mut s = settings.clone();
        s.as_object_mut().unwrap().extend(bad.as_object().unwrap().clone());
        let err = OidcConfig::parse(&s.to_string()).unwrap_err();
        assert!(err.contains(why) && err.contains("PUBLINKS_DASHBOARD_OIDC"), "{err}");
    }
}
