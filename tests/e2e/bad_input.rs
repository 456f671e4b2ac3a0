//! Bad input: every malformed request gets a 4xx with a JSON body naming the
//! problem, and changes nothing.

use publinks_e2e::{TestApp, expect, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Everything a test could have changed, to compare before and after.
async fn snapshot(app: &TestApp) -> Value {
    let token = app.admin();
    let mut out = json!({});
    out["top_folders"] = app.get("/api/folders/root/folders?limit=200", &token, StatusCode::OK).await;
    out["top_files"] = app.get("/api/folders/root/files?limit=200", &token, StatusCode::OK).await;
    let products = app.folder_id(&["Products"]).await;
    out["products"] = app.get(&format!("/api/folders/{products}/files?limit=200"), &token, StatusCode::OK).await;
    out["collections"] = app.get("/api/collections", &token, StatusCode::OK).await;
    out["users"] = app.get("/api/users", &token, StatusCode::OK).await;
    out
}

#[tokio::test]
async fn malformed_bodies_are_named_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.admin();
    let before = snapshot(&app).await;
    let products = app.folder_id(&["Products"]).await;
    let blue = app.file_id(&products, "product-blue.png").await;

    let raw = |method: Method, path: String, body: &'static str, content_type: &'static str| {
        app.request(method, &path, &token).header("content-type", content_type).body(body).send()
    };
    /// method, path, body, content type, expected status, error code, field at fault
    type Case<'a> = (Method, String, &'a str, &'a str, StatusCode, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/api/folders".into(),
            "{\"name\": ",
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            Method::POST,
            "/api/folders".into(),
            "{\"name\": \"a\"} trailing",
            "application/json",
            StatusCode::BAD_REQUEST,
            "malformed_json",
            None,
        ),
        (
            Method::POST,
            "/api/folders".into(),
            "{\"name\": \"a\"}",
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            None,
        ),
        (
            Method::POST,
            "/api/folders".into(),
            "{\"name\": 5}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("name"),
        ),
        (
            Method::POST,
            "/api/folders".into(),
            "{}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        ),
        (
            Method::POST,
            "/api/folders".into(),
            "{\"name\": \"a\", \"colour\": 1}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            None,
        ),
        (
            Method::PATCH,
            format!("/api/files/{blue}"),
            "{\"tags\": \"not a list\"}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("tags"),
        ),
        (
            Method::PATCH,
            format!("/api/files/{blue}"),
            "{\"custom_coordinates\": [{\"x\": -1}]}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("custom_coordinates[0].x"),
        ),
        (
            Method::POST,
            "/api/users".into(),
            "{\"name\": \"a\", \"email\": \"a@b.example\", \"role\": \"emperor\"}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("role"),
        ),
        (
            Method::POST,
            "/api/users".into(),
            "{\"name\": \"a\", \"email\": \"nope\", \"role\": \"admin\"}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("email"),
        ),
        (
            Method::POST,
            "/api/uploads".into(),
            "{\"name\": \"a\", \"content_type\": \"not a type\", \"size\": 1}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("content_type"),
        ),
        (
            Method::POST,
            "/api/uploads".into(),
            "{\"name\": \"a\", \"content_type\": \"text/plain\", \"size\": -1}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("size"),
        ),
        (
            Method::POST,
            "/api/uploads".into(),
            "{\"name\": \"a\", \"content_type\": \"text/plain\", \"size\": 99999999999999}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("size"),
        ),
        (
            Method::POST,
            "/api/uploads".into(),
            "{\"content_type\": \"text/plain\", \"size\": 1}",
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("name"),
        ),
    ];
    for (method, path, body, ct, status, code, field) in cases {
        let res = raw(method.clone(), path.clone(), body, ct).await.unwrap();
        let got = expect(res, status).await;
        assert_eq!(got["error"]["code"], code, "{method} {path} {body}: {got}");
        if let Some(f) = field {
            assert_eq!(got["error"]["field"], f, "{method} {path} {body}: {got}");
        }
    }
    assert_eq!(snapshot(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn names_with_path_tricks_or_too_long_are_refused_by_field() {
    let app = spawn_app().await;
    let token = app.admin();
    let before = snapshot(&app).await;
    let products = app.folder_id(&["Products"]).await;
    let blue = app.file_id(&products, "product-blue.png").await;
    let long = "x".repeat(256);
    for name in ["../escape", "a/b", "..", ".", "back\\slash", "", "   ", "tab\tname", long.as_str()] {
        for (method, path, body) in [
            (Method::POST, "/api/folders".to_string(), json!({"name": name})),
            (Method::PATCH, format!("/api/files/{blue}"), json!({"name": name})),
            (Method::PATCH, format!("/api/folders/{products}"), json!({"name": name})),
            (Method::POST, "/api/collections".to_string(), json!({"name": name})),
            (Method::POST, "/api/uploads".to_string(), json!({"name": name, "content_type": "text/plain", "size": 1})),
        ] {
            let got = app.send(method.clone(), &path, &token, body, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(got["error"]["field"], "name", "{method} {path} {name:?}: {got}");
        }
    }
    let tags = json!({"tags": ["ok", "x".repeat(65)]});
    let got =
        app.send(Method::PATCH, &format!("/api/files/{blue}"), &token, tags, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(got["error"]["field"], "tags");
    assert_eq!(snapshot(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn bad_ids_cursors_and_routes_are_clear_4xx() {
    let app = spawn_app().await;
    let token = app.admin();
    let got = app.get("/api/files/not-a-uuid", &token, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        (got["error"]["code"].as_str(), got["error"]["field"].as_str()),
        (Some("invalid_path"), Some("file_id"))
    );
    app.get(&format!("/api/files/{}", uuid::Uuid::new_v4()), &token, StatusCode::NOT_FOUND).await;
    app.get("/api/folders/nope/files", &token, StatusCode::BAD_REQUEST).await;
    app.get("/api/files/x/download?version=-1", &token, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.get("/api/nothing-here", &token, StatusCode::NOT_FOUND).await["error"]["code"], "no_route");
    let res = app.request(Method::PUT, "/api/me", &token).send().await.unwrap();
    assert_eq!(expect(res, StatusCode::METHOD_NOT_ALLOWED).await["error"]["code"], "method_not_allowed");
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(400 * 1024));
    let res = app.request(Method::POST, "/api/folders", &token).header("content-type", "application/json").body(huge);
    assert_eq!(
        expect(res.send().await.unwrap(), StatusCode::PAYLOAD_TOO_LARGE).await["error"]["code"],
        "payload_too_large"
    );
    let bad_grant = json!({"target": {"kind": "planet", "id": uuid::Uuid::new_v4()}, "level": "view"});
    let path = format!("/api/users/{}/grants", app.demo.restricted.id);
    let got = app.send(Method::PUT, &path, &token, bad_grant, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(got["error"]["field"], "target.kind");
    let missing = json!({"target": {"kind": "file", "id": uuid::Uuid::new_v4()}, "level": "view"});
    app.send(Method::PUT, &path, &token, missing, StatusCode::NOT_FOUND).await;
}

/// Every problem with a query string gets one answer — 400 `invalid_query`,
/// the parameter named, what is expected said in the project's words — on
/// every API: the library's, the links' and the visitor's.
#[tokio::test]
async fn every_query_error_is_one_400_naming_the_parameter() {
    let app = spawn_app().await;
    let token = app.admin();
    let link = app
        .send(
            Method::POST,
            "/api/links",
            &token,
            json!({"target": {"kind": "folder", "id": app.folder_id(&["Products"]).await}}),
            StatusCode::CREATED,
        )
        .await;
    let share = link["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
    let file = app.file_id("root", "logo.png").await;
    for (path, field, says) in [
        ("/api/folders/root/files?limit=0".to_string(), "limit", "limit must be a whole number from 1 to 200"),
        ("/api/folders/root/files?limit=201".into(), "limit", "from 1 to 200"),
        ("/api/folders/root/files?limit=many".into(), "limit", "from 1 to 200"),
        ("/api/folders/root/files?limit=123456789012345678901234567890".into(), "limit", "from 1 to 200"),
        ("/api/folders/root/files?foo=1".into(), "foo", "unknown field"),
        ("/api/folders/root/files?cursor=garbage".into(), "cursor", "next_cursor"),
        ("/api/links?state=%3Cscript%3E".into(), "state", "unknown variant"),
        ("/api/links?limit=0".into(), "limit", "from 1 to 200"),
        ("/api/audit?target_kind=file".into(), "target_id", "target_id is needed"),
        ("/api/audit?limit=1000".into(), "limit", "from 1 to 200"),
        (format!("/api/files/{file}/download?version=0"), "version", "from 1 to 4294967295"),
        (format!("/api/files/{file}/download?version=99999999999"), "version", "from 1 to 4294967295"),
        (format!("{share}/api/folders/root?limit=0"), "limit", "from 1 to 200"),
        (format!("{share}/api/folders/root?page=2"), "page", "unknown field"),
    ] {
        let got = app.get(&path, &token, StatusCode::BAD_REQUEST).await;
        let error = &got["error"];
        assert_eq!(
            (error["code"].as_str(), error["field"].as_str()),
            (Some("invalid_query"), Some(field)),
            "{path}: {got}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
        for leak in ["deserialize", "script", "<", "garbage", "many", "1234567890"] {
            assert!(!message.contains(leak), "{path}: {message}");
        }
    }
}

/// Dates say the format they want and which field; a date without a time
/// is refused with the same hint; a number too big for its field is out of
/// range, with the field's bounds. Nothing is created.
#[tokio::test]
async fn dates_and_numbers_are_refused_with_what_is_expected() {
    let app = spawn_app().await;
    let token = app.admin();
    let before = snapshot(&app).await;
    let folder = app.folder_id(&["Products"]).await;
    let target = json!({"kind": "folder", "id": folder});
    let blue = app.file_id(&folder, "product-blue.png").await;
    for (field, value, says) in [
        ("valid_until", json!("2026-02-30"), "a date alone is not enough"),
        (
            "valid_until",
            json!("2026-02-30T10:00:00Z"),
            "must be an RFC 3339 date-time with a time zone, e.g. 2026-12-31T18:00:00Z",
        ),
        ("valid_from", json!("2026-12-31T18:00:00"), "e.g. 2026-12-31T18:00:00Z"),
        ("valid_from", json!(20261231), "e.g. 2026-12-31T18:00:00Z"),
    ] {
        let mut body = json!({"target": target});
        body[field] = value.clone();
        let got = app.send(Method::POST, "/api/links", &token, body, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(got["error"]["field"], field, "{value}: {got}");
        let message = got["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field) && message.contains(says), "{value}: {message}");
        assert!(!message.contains("line 1") && !message.contains("premature"), "{message}");
    }
    // Thirty digits: more than JSON numbers here can hold, so sent as text.
    let raw_json = |method: Method, path: String, body: &'static str| {
        let request = app.request(method, &path, &token).header("content-type", "application/json").body(body);
        async move { expect(request.send().await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await }
    };
    let coordinates =
        r#"{"custom_coordinates": [{"x": 123456789012345678901234567890, "y": 0, "width": 1, "height": 1}]}"#;
    let got = raw_json(Method::PATCH, format!("/api/files/{blue}"), coordinates).await;
    assert_eq!(got["error"]["field"], "custom_coordinates[0].x");
    let message = got["error"]["message"].as_str().unwrap();
    assert!(message.contains("is out of range: it must be a whole number from 0 to 4294967295"), "{message}");
    assert!(!message.contains("floating") && !message.contains("e+29"), "{message}");
    let upload = r#"{"name": "big.bin", "content_type": "text/plain", "size": 123456789012345678901234567890}"#;
    let got = raw_json(Method::POST, "/api/uploads".into(), upload).await;
    assert_eq!(got["error"]["field"], "size");
    assert!(got["error"]["message"].as_str().unwrap().contains("out of range"), "{got}");
    assert_eq!(snapshot(&app).await, before, "nothing changed");
}
