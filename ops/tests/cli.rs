//! The operator's command on the embedded store, as an operator runs it.

use serde_json::Value;
use std::process::Command;

fn admin(data_dir: &std::path::Path, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_publinks-admin"))
        .env_remove("PUBLINKS_DATA_DIR")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("the command runs");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).expect("JSON on stdout"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn a_directory_without_a_store_is_refused_except_by_init() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("x").join("typo");
    for command in [
        &["list-accounts"][..],
        &["set-plan", "--account", "6f1f0e0e-0000-4000-8000-000000000000", "--plan", "standard"],
        &["create-account", "--name", "Acme", "--admin-name", "Ann", "--admin-email", "ann@acme.example"],
    ] {
        let err = admin(&typo, command).unwrap_err();
        assert!(err.contains("no publinks store") && err.contains(&typo.display().to_string()), "{err}");
        assert!(err.contains("init"), "says how to make one: {err}");
        assert!(!typo.exists(), "nothing was created by {command:?}");
    }
    let made = admin(&typo, &["init"]).unwrap();
    assert_eq!(made["created"], true);
    assert!(typo.join("catalog.sqlite3").is_file() && typo.join("keys.json").is_file());
    assert_eq!(admin(&typo, &["list-accounts"]).unwrap()["accounts"], serde_json::json!([]));
    assert_eq!(admin(&typo, &["init"]).unwrap()["created"], false, "init leaves a store as it is");
}

#[test]
fn an_operator_creates_an_account_and_changes_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    admin(d, &["init"]).unwrap();
    let made =
        admin(d, &["create-account", "--name", "Acme", "--admin-name", "Ann", "--admin-email", "ann@acme.example"])
            .unwrap();
    let account = made["account"]["id"].as_str().unwrap().to_string();
    assert_eq!(made["account"]["plan"], "enterprise");
    assert_eq!(made["account"]["link_limit"], 100);
    assert_eq!(made["admin"]["role"], "admin");

    let changed = admin(d, &["set-link-limit", "--account", &account, "--limit", "10000"]).unwrap();
    assert_eq!(changed["account"]["link_limit"], 10000);
    let changed = admin(d, &["set-plan", "--account", &account, "--plan", "standard"]).unwrap();
    assert_eq!(changed["account"]["plan"], "standard");
    let changed = admin(d, &["set-drafts", "--account", &account, "--enabled", "true"]).unwrap();
    assert_eq!(changed["account"]["drafts_enabled"], true);

    let listed = admin(d, &["list-accounts"]).unwrap();
    let accounts = listed["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!((accounts[0]["link_limit"].as_u64(), accounts[0]["plan"].as_str()), (Some(10000), Some("standard")));

    let user = made["admin"]["id"].as_str().unwrap();
    let token = admin(d, &["token", "--user", user]).unwrap();
    assert!(token["token"].as_str().unwrap().split('.').count() == 3, "a JWT");
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    admin(d, &["init"]).unwrap();
    let made =
        admin(d, &["create-account", "--name", "Acme", "--admin-name", "Ann", "--admin-email", "ann@acme.example"])
            .unwrap();
    let account = made["account"]["id"].as_str().unwrap().to_string();
    let err = admin(d, &["set-link-limit", "--account", &account, "--limit", "0"]).unwrap_err();
    assert!(err.contains("link_limit"), "{err}");
    let err = admin(d, &["set-plan", "--account", "not-an-id", "--plan", "standard"]).unwrap_err();
    assert!(err.contains("account"), "{err}");
    let err =
        admin(d, &["set-plan", "--account", "6f1f0e0e-0000-4000-8000-000000000000", "--plan", "standard"]).unwrap_err();
    assert!(err.contains("not found"), "{err}");
    let err = admin(d, &["create-account", "--name", "../x", "--admin-name", "A", "--admin-email", "a@b.example"])
        .unwrap_err();
    assert!(err.contains("name"), "{err}");
    let listed = admin(d, &["list-accounts"]).unwrap();
    assert_eq!(listed["accounts"][0]["link_limit"], 100);
    assert_eq!(listed["accounts"].as_array().unwrap().len(), 1);
}
