//! Settings → Developers in a real browser: headless Chromium signs in to the plane's user
//! pool (the Cognito emulator) through the page, and uses the member API through the local
//! gateway, exactly as a member would; the tests then check what the API says happened.

mod browser;
#[path = "../members/helpers.rs"]
mod helpers;
#[path = "../members/receiver.rs"]
mod receiver;

use browser::{ensure, Browser, Step};
use helpers::Plane;
use serde_json::{json, Value};
use shared::keys::scope::Scope;
use shared::members::role::Role;
use shared::org::OrgId;

const PAGE: &str = "/settings/developers";
const DESKTOP: (u32, u32) = (1280, 900);

fn open(plane: &Plane, name: &str) -> Browser {
    open_sized(plane, name, DESKTOP)
}

fn open_sized(plane: &Plane, name: &str, (width, height): (u32, u32)) -> Browser {
    let base = plane.url("");
    plane
        .runtime
        .block_on(Browser::open(&base, name, width, height))
}

/// Hands the plane's request lines for `key_id` to the request-log writer, as the log
/// subscription does deployed (here: at once, rather than within the minute).
fn deliver_request_log(plane: &Plane, key_id: &str) {
    use shared::request_log::writer::{handle, passes_filter, subscription_event};
    let needle = format!("\"key_id\":\"{key_id}\"");
    let lines: Vec<(i64, String)> = helpers::logs()
        .text()
        .lines()
        .filter(|line| passes_filter(line) && line.contains(&needle))
        .map(|line| (chrono::Utc::now().timestamp_millis(), line.to_owned()))
        .collect();
    assert!(!lines.is_empty(), "no request line names {key_id}");
    let event = subscription_event("/aws/lambda/page-tests", &lines).unwrap();
    plane
        .runtime
        .block_on(handle(&plane.app.request_log, &event))
        .unwrap();
}

/// The key id of the newest row labelled `label` that is not one of `except` (read in one
/// script, so a table being redrawn is never read half-way).
async fn row_id(b: &Browser, label: &str, except: &[&str]) -> Step<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let rows = b
            .js(
                "return [...document.querySelectorAll('tr[data-key-id]')]
                   .map(row => [row.dataset.keyId, row.querySelector('.label').textContent]);",
                vec![],
            )
            .await?;
        let found = rows.as_array().into_iter().flatten().find_map(|row| {
            let id = row[0].as_str()?;
            (row[1] == label && !except.contains(&id)).then(|| id.to_owned())
        });
        if let Some(id) = found {
            return Ok(id);
        }
        ensure(
            std::time::Instant::now() < deadline,
            format!("no key row labelled {label:?}"),
        )?;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The plaintext a dialog shows, once.
async fn shown_key(b: &Browser) -> Step<String> {
    let key = b.text("dialog .secret-value").await?;
    ensure(
        (key.starts_with("ic_live_") || key.starts_with("ic_test_")) && key.len() > 40,
        format!("the dialog shows no key: {key:?}"),
    )?;
    Ok(key)
}

/// Closes the dialog with Done and checks that nothing in the document holds `key` any more.
async fn done_and_gone(b: &Browser, key: &str) -> Step {
    b.click_button("dialog", "Done").await?;
    b.wait_until("!document.querySelector('dialog')", "the dialog to close")
        .await?;
    let html = b
        .js("return document.documentElement.outerHTML;", vec![])
        .await?;
    ensure(
        !html.as_str().unwrap_or_default().contains(key),
        "the plaintext is still in the document after the dialog closed",
    )
}

fn customers_status(plane: &Plane, key: &str) -> u16 {
    plane.get("/v1/customers", key).status
}

#[test]
fn an_administrator_creates_uses_rolls_and_revokes_a_key() {
    let plane = Plane::new();
    let admin = plane.member_as("ada@acme.test", "acme", Role::Administrator);
    let b = open(&plane, "admin-flow");
    let key_id = std::cell::RefCell::new(String::new());
    let plaintext = std::cell::RefCell::new(String::new());
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.find("form input[name=email]").await?;
        b.accessible("sign-in").await?;
        // The scan sees what it must: a nameless button is a critical violation, and it
        // is reported until it is gone.
        b.js(
            "const b = document.createElement('button'); b.id = 'axe-probe'; document.body.append(b); return true;",
            vec![],
        )
        .await?;
        let found = b.axe_violations().await?;
        ensure(
            found.iter().any(|v| v.contains("button-name") && v.contains("#axe-probe")),
            format!("the scan missed a nameless button: {found:?}"),
        )?;
        b.js("document.getElementById('axe-probe').remove(); return true;", vec![])
            .await?;
        b.accessible("sign-in").await?;
        b.sign_in(&admin.email, &admin.password).await?;
        b.wait_for_text("main", "Your org has no API keys yet")
            .await?;
        ensure(
            b.text("#who-email").await? == admin.email,
            "the header names the member",
        )?;
        b.accessible("keys (empty)").await?;

        b.click("#create-key").await?;
        b.find("dialog[open] input[name=label]").await?;
        b.fill("dialog input[name=label]", "CRM sync").await?;
        for scope in ["customers:read", "customers:write", "aml:read"] {
            b.click(&format!("dialog input[value='{scope}']")).await?;
        }
        b.fill("dialog textarea[name=ip_allowlist]", "127.0.0.0/8\n::1")
            .await?;
        b.fill("dialog input[name=rate_limit]", "20").await?;
        b.js(
            "document.querySelector('dialog').scrollTop = 0; return true;",
            vec![],
        )
        .await?;
        b.document("create-dialog").await?;
        b.accessible("create dialog").await?;
        b.click("dialog button[type=submit]").await?;
        let key = shown_key(b).await?;
        ensure(
            b.text("dialog .warning")
                .await?
                .contains("won’t see it again"),
            "the dialog says the key is shown once",
        )?;
        b.accessible("new key").await?;
        done_and_gone(b, &key).await?;
        *key_id.borrow_mut() = row_id(b, "CRM sync", &[]).await?;
        *plaintext.borrow_mut() = key;
        Ok(())
    }));

    // The key works, from the allowlisted loopback, and its use is seen.
    let key = plaintext.into_inner();
    let id = key_id.into_inner();
    assert_eq!(customers_status(&plane, &key), 200);
    let stored = plane
        .get(&format!("/v1/org/api-keys/{id}"), &admin.token)
        .json();
    assert_eq!(
        stored["scopes"],
        json!(["customers:write", "customers:read", "aml:read"])
    );
    assert_eq!(stored["ip_allowlist"], json!(["127.0.0.0/8", "::1/128"]));
    assert_eq!(stored["rate_limit"], json!({"requests_per_second": 20}));
    assert_eq!(stored["created_by"]["email"], json!(admin.email));
    deliver_request_log(&plane, &id);

    let b = open(&plane, "admin-flow-2");
    let rolled_to = std::cell::RefCell::new((String::new(), String::new()));
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        let row = format!("tr[data-key-id='{id}']");
        b.wait_for_text(&format!("{row} .last-used"), "from 127.0.0.1")
            .await?;
        ensure(
            b.text(&format!("{row} .key-id")).await?
                == format!("{}…{}", &key[..12], &key[key.len() - 4..]),
            "the row shows prefix…last4",
        )?;
        b.document("keys").await?;

        b.click_button(&row, "Requests").await?;
        b.wait_for_text("table.requests", "GET /v1/customers")
            .await?;
        let cells = b.text("table.requests tbody tr").await?;
        ensure(
            cells.contains("200") && cells.contains("127.0.0.1"),
            format!("the request row: {cells}"),
        )?;
        b.accessible("request log").await?;
        b.document("request-log").await?;
        // What is shown, as CSV: a header and the one request, with its Request-Id.
        b.click_button("form.filters", "Download CSV").await?;
        let (file, csv) = b.downloaded().await?;
        ensure(
            file.starts_with(&format!("requests-{id}-")) && file.ends_with(".csv"),
            format!("the file is named after the key: {file}"),
        )?;
        let request_id = b
            .find("table.requests tbody tr")
            .await?
            .attr("data-request-id")
            .await
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let lines: Vec<&str> = csv.lines().collect();
        ensure(
            lines.len() == 2
                && lines[0]
                    .starts_with("at,request_id,method,route,path,status,error_code,source_ip")
                && lines[1].contains(&format!("\"{request_id}\",\"GET\",\"GET /v1/customers\""))
                && lines[1].contains("\"200\""),
            format!("the CSV: {csv}"),
        )?;
        // A filter that matches nothing says so, and stays in the URL.
        b.select("select[name=status]", "4xx").await?;
        b.click_button("form.filters", "Apply").await?;
        b.wait_for_text("main", "No requests match these filters")
            .await?;
        let url = b.client.current_url().await.map_err(|e| e.to_string())?;
        ensure(
            url.fragment().unwrap_or_default().contains("status=4xx"),
            format!("the filter is in the URL: {url}"),
        )?;

        b.click("p.back a").await?;
        b.click_button(&row, "Roll").await?;
        b.select("dialog select[name=grace]", "0").await?;
        b.accessible("roll dialog").await?;
        b.click("dialog button[type=submit]").await?;
        let new_key = shown_key(b).await?;
        ensure(new_key != key, "the roll shows a new key")?;
        done_and_gone(b, &new_key).await?;
        let new_id = row_id(b, "CRM sync", &[id.as_str()]).await?;
        *rolled_to.borrow_mut() = (new_id, new_key);
        Ok(())
    }));
    let (new_id, new_key) = rolled_to.into_inner();
    // Rolled with no grace: the old key has expired, the new one works with the same
    // settings.
    assert_eq!(customers_status(&plane, &key), 401);
    assert_eq!(customers_status(&plane, &new_key), 200);
    let new = plane
        .get(&format!("/v1/org/api-keys/{new_id}"), &admin.token)
        .json();
    assert_eq!(new["rolled_from"], json!(id));
    assert_eq!(new["rate_limit"], json!({"requests_per_second": 20}));

    let b = open(&plane, "admin-flow-3");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        let row = format!("tr[data-key-id='{new_id}']");
        // The expired old key offers nothing but its log.
        let old = format!("tr[data-key-id='{id}']");
        b.wait_for_text(&old, "Expired").await?;
        ensure(
            b.find_all(&format!("{old} button")).await?.is_empty(),
            "an expired key offers no action",
        )?;
        b.click_button(&row, "Revoke").await?;
        let question = b.text("dialog").await?;
        ensure(
            question.contains("CRM sync") && question.contains(&new_key[..12]),
            format!("the confirmation names the key: {question}"),
        )?;
        b.click_button("dialog", "Revoke key").await?;
        b.wait_for_text(&row, "Revoked").await?;
        Ok(())
    }));
    assert_eq!(customers_status(&plane, &new_key), 401);
    let revoked = plane
        .get(&format!("/v1/org/api-keys/{new_id}"), &admin.token)
        .json();
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revoked_by"], json!(admin.member.id));
}

#[test]
fn what_a_role_cannot_do_is_not_offered() {
    let plane = Plane::new();
    let developer = plane.member("acme", Role::Developer);
    let analyst = plane.member("acme", Role::Analyst);
    let admin = plane.member("acme", Role::Administrator);
    // A key of the administrator's with aml:read: the developer may not roll it.
    let (admins_key, _) = plane.create_key(&admin, &[Scope::AmlRead, Scope::CustomersRead]);

    let b = open(&plane, "developer");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&developer.email, &developer.password).await?;
        let row = format!("tr[data-key-id='{admins_key}']");
        b.find(&row).await?;
        let actions = b.text(&format!("{row} .row-actions")).await?;
        ensure(
            actions.contains("Revoke") && !actions.contains("Roll"),
            format!("a key beyond the developer's role can't be rolled by them: {actions:?}"),
        )?;
        ensure(
            !b.find("#nav-members")
                .await?
                .is_displayed()
                .await
                .map_err(|e| e.to_string())?,
            "no Members screen for a developer",
        )?;
        ensure(
            !b.find("#nav-providers")
                .await?
                .is_displayed()
                .await
                .map_err(|e| e.to_string())?,
            "no Provider keys screen for a developer",
        )?;
        ensure(
            !b.find("#nav-audit")
                .await?
                .is_displayed()
                .await
                .map_err(|e| e.to_string())?,
            "no Audit screen for a developer",
        )?;
        ensure(
            !actions.contains("History"),
            format!("no key history for a developer: {actions:?}"),
        )?;
        b.click("#create-key").await?;
        let aml = b.find("dialog input[value='aml:read']").await?;
        ensure(
            !aml.is_enabled().await.map_err(|e| e.to_string())?,
            "aml:read is disabled for a developer",
        )?;
        let why = b.text("dialog .check.disabled .why").await?;
        ensure(
            why.contains("Developer") && why.contains("aml:read"),
            format!("the reason is given: {why:?}"),
        )?;
        for scope in ["customers:read", "customers:write"] {
            let box_ = b.find(&format!("dialog input[value='{scope}']")).await?;
            ensure(
                box_.is_enabled().await.map_err(|e| e.to_string())?,
                format!("{scope} is grantable by a developer"),
            )?;
        }
        b.accessible("create dialog (developer)").await?;
        // A developer creates a key within their role: a test key, for rehearsals.
        b.fill("dialog input[name=label]", "Build server").await?;
        b.click("dialog input[value='customers:read']").await?;
        b.click("dialog #mode-test").await?;
        b.click("dialog button[type=submit]").await?;
        let key = shown_key(b).await?;
        ensure(key.starts_with("ic_test_"), "a test key")?;
        done_and_gone(b, &key).await?;
        let row = format!(
            "tr[data-key-id='{}']",
            row_id(b, "Build server", &[]).await?
        );
        b.wait_for_text(&row, "test").await?;
        Ok(())
    }));
    let keys = plane.get("/v1/org/api-keys", &admin.token).json();
    let made = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["label"] == "Build server")
        .expect("the developer's key exists");
    assert_eq!(made["scopes"], json!(["customers:read"]));
    assert_eq!(made["mode"], "test");
    assert_eq!(made["created_by"]["id"], json!(developer.member.id));

    let b = open(&plane, "analyst");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&analyst.email, &analyst.password).await?;
        b.wait_for_text("main", "doesn’t manage API keys").await?;
        ensure(
            b.find_all("#create-key").await?.is_empty(),
            "no Create button for an analyst",
        )?;
        ensure(
            b.find_all("table").await?.is_empty(),
            "no key table for an analyst",
        )?;
        b.accessible("keys (analyst)").await?;
        // Typing the members screen's address shows no members either.
        b.goto(&format!("{PAGE}#/members")).await?;
        b.wait_for_text("main", "doesn’t manage members").await?;
        // Nor webhooks: no link, and the address says why.
        ensure(
            !b.find("#nav-webhooks")
                .await?
                .is_displayed()
                .await
                .map_err(|e| e.to_string())?,
            "no Webhooks screen for an analyst",
        )?;
        b.goto(&format!("{PAGE}#/webhooks")).await?;
        b.wait_for_text("main", "doesn’t manage webhooks").await?;
        ensure(
            b.find_all("#add-endpoint").await?.is_empty(),
            "no Add endpoint for an analyst",
        )?;
        // Nor provider keys.
        b.goto(&format!("{PAGE}#/provider-keys")).await?;
        b.wait_for_text("main", "doesn’t manage provider keys")
            .await?;
        ensure(
            b.find_all("#add-provider-key").await?.is_empty(),
            "no Add provider key for an analyst",
        )?;
        Ok(())
    }));
}

#[test]
fn an_invited_member_chooses_their_password_at_first_sign_in() {
    let plane = Plane::new();
    let email = format!("{}@acme.test", uuid::Uuid::new_v4().simple());
    let temporary = infra::identity::random_password().unwrap();
    // Invited as the member API invites (a pool user with a temporary password), with the
    // temporary password known to the test instead of mailed.
    plane
        .runtime
        .block_on(shared::members::api::add_member(
            &plane.app,
            &shared::audit::Author::operator("tests"),
            &OrgId::parse("acme").unwrap(),
            &email,
            Role::Developer,
            "tests",
            Some(&temporary),
        ))
        .unwrap();
    let chosen = infra::identity::random_password().unwrap();
    let b = open(&plane, "invited");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        // A wrong password: the pool's refusal, said plainly, and the form stays.
        b.fill("input[name=email]", &email).await?;
        b.fill("input[name=password]", "Wrong-password-1").await?;
        b.click("form button[type=submit]").await?;
        b.wait_for_text("[role=alert]", "Incorrect email or password")
            .await?;
        b.fill("input[name=password]", &temporary).await?;
        b.click("form button[type=submit]").await?;
        b.wait_for_text("main h1", "Choose your password").await?;
        b.accessible("new password").await?;
        // Two different passwords are refused before the pool is asked.
        b.fill("input[name=new-password]", &chosen).await?;
        b.fill("input[name=confirm-password]", "something-else-1A")
            .await?;
        b.click("form button[type=submit]").await?;
        b.wait_for_text("[role=alert]", "differ").await?;
        b.fill("input[name=confirm-password]", &chosen).await?;
        b.click("form button[type=submit]").await?;
        b.wait_until("!document.getElementById('who').hidden", "signed in")
            .await?;
        b.wait_for_text("main", "Your org has no API keys yet")
            .await?;
        Ok(())
    }));
    // The chosen password is now the member's; the temporary one is spent.
    assert!(plane.sign_in(&email, &chosen).is_ok());
    assert!(plane.sign_in(&email, &temporary).is_err());
}

#[test]
fn an_ended_session_returns_to_sign_in_and_then_to_the_same_place() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let (id, _) = plane.create_key(&admin, &[Scope::CustomersRead]);
    let b = open(&plane, "session");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        let place = format!("#/keys/{id}/requests?range=7d&status=4xx");
        b.goto(&format!("{PAGE}{place}")).await?;
        b.find("form.filters").await?;
        // The token is kept in this tab's sessionStorage only: no cookie, no localStorage.
        let stores = b
            .js(
                "return [document.cookie, localStorage.length, Object.keys(sessionStorage)];",
                vec![],
            )
            .await?;
        ensure(
            stores == json!(["", 0, ["ic.developers.session"]]),
            format!("where the session lives: {stores}"),
        )?;
        // The pool's token stops being accepted (here: it is replaced by one the API's
        // authorizer refuses, as an expired one is): the next call ends the session.
        b.js(
            "const s = JSON.parse(sessionStorage.getItem('ic.developers.session'));
             s.accessToken = s.accessToken.slice(0, -4) + 'AAAA';
             sessionStorage.setItem('ic.developers.session', JSON.stringify(s));
             return true;",
            vec![],
        )
        .await?;
        b.click_button("form.filters", "Refresh").await?;
        b.wait_for_text("main", "Your session has ended").await?;
        let url = b.client.current_url().await.map_err(|e| e.to_string())?;
        ensure(
            url.fragment().map(|f| format!("#{f}")) == Some(place.clone()),
            format!("the place is kept while signed out: {url}"),
        )?;
        b.sign_in(&admin.email, &admin.password).await?;
        b.wait_for_text("main h1", "Request log").await?;
        // The heading may be drawn before the filters are: wait for them, then their value.
        b.wait_until(
            "document.querySelector('form.filters select[name=status]')?.value === '4xx'",
            "the filters are kept",
        )
        .await?;
        // Signing out forgets the session: a reload asks for the password.
        b.click("#sign-out").await?;
        b.wait_for_text("main", "You have signed out").await?;
        b.client.refresh().await.map_err(|e| e.to_string())?;
        b.find("input[name=password]").await?;
        let left = b.js("return sessionStorage.length;", vec![]).await?;
        ensure(left == json!(0), "nothing of the session is left")?;
        Ok(())
    }));
}

#[test]
fn members_are_invited_given_roles_and_deactivated_with_their_keys_moved() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let leaving = plane.member("acme", Role::Developer);
    let heir = plane.member("acme", Role::ComplianceOfficer);
    let (leaving_key, leaving_plaintext) = plane.create_key(&leaving, &[Scope::CustomersRead]);
    let invited = format!("{}@acme.test", uuid::Uuid::new_v4().simple());
    let b = open(&plane, "members");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        b.click("#nav-members").await?;
        b.wait_for_text("table.members", &leaving.email).await?;
        b.accessible("members").await?;
        // No action on oneself.
        let me = format!("tr[data-member-id='{}']", admin.member.id);
        ensure(
            b.find_all(&format!("{me} button")).await?.is_empty(),
            "no action on oneself",
        )?;

        b.click("#invite-member").await?;
        b.fill("dialog input[name=email]", &invited).await?;
        b.select("dialog select[name=role]", "analyst").await?;
        b.accessible("invite dialog").await?;
        b.click("dialog button[type=submit]").await?;
        b.wait_for_text("table.members", &invited).await?;

        let row = format!("tr[data-member-id='{}']", leaving.member.id);
        b.click_button(&row, "Change role").await?;
        b.select("dialog select[name=role]", "analyst").await?;
        b.click("dialog button[type=submit]").await?;
        b.wait_for_text(&row, "Analyst").await?;

        b.click_button(&row, "Deactivate").await?;
        b.wait_for_text("dialog .member-keys", "test").await?;
        b.click("dialog #keys-transfer").await?;
        b.select("dialog select[name=transfer_keys_to]", &heir.member.id)
            .await?;
        b.accessible("deactivate dialog").await?;
        b.click("dialog button[type=submit]").await?;
        b.wait_for_text(&row, "Deactivated").await?;
        Ok(())
    }));
    let members = plane.get("/v1/org/members", &admin.token).json();
    let find = |email: &str| -> Value {
        members["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == email)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(find(&invited)["role"], "analyst");
    assert_eq!(find(&leaving.email)["status"], "deactivated");
    assert_eq!(find(&leaving.email)["role"], "analyst");
    // The key moved to the heir and still works.
    let key = plane
        .get(&format!("/v1/org/api-keys/{leaving_key}"), &admin.token)
        .json();
    assert_eq!(key["owned_by"]["id"], json!(heir.member.id));
    assert_eq!(key["status"], "active");
    assert_eq!(customers_status(&plane, &leaving_plaintext), 200);
}

#[test]
fn the_create_dialog_checks_as_typed_keeps_focus_and_shows_the_apis_errors() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let b = open(&plane, "create-dialog");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        b.click("#create-key").await?;
        let allowlist = "dialog textarea[name=ip_allowlist]";
        b.fill(allowlist, "203.0.113.0/24\n10.0.0.1/8").await?;
        b.wait_for_text(
            "dialog",
            "Line 2: \"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?",
        )
        .await?;
        let invalid = b
            .find(allowlist)
            .await?
            .attr("aria-invalid")
            .await
            .map_err(|e| e.to_string())?;
        ensure(
            invalid.as_deref() == Some("true"),
            "the field is marked invalid",
        )?;
        b.fill(allowlist, "0.0.0.0/0").await?;
        b.wait_for_text("dialog", "allows every address").await?;
        b.fill(allowlist, "").await?;

        // Keyboard: Tab never leaves the open dialog.
        for _ in 0..25 {
            b.find(":focus")
                .await?
                .send_keys("\u{e004}")
                .await
                .map_err(|e| e.to_string())?;
            let inside = b
                .js(
                    "return Boolean(document.activeElement.closest('dialog'));",
                    vec![],
                )
                .await?;
            ensure(inside == json!(true), "focus left the open dialog")?;
        }

        // What only the API refuses (an invisible character in the name) comes back with
        // its message, on the field, with the Request-Id.
        b.fill("dialog input[name=label]", "CRM\u{200b}sync")
            .await?;
        b.click("dialog input[value='customers:read']").await?;
        b.click("dialog button[type=submit]").await?;
        b.wait_for_text("dialog [role=alert]", "label must be")
            .await?;
        let alert = b.text("dialog [role=alert]").await?;
        ensure(
            alert.contains("Request-Id: "),
            format!("the Request-Id is shown: {alert}"),
        )?;
        let label_error = b
            .find("dialog input[name=label]")
            .await?
            .attr("aria-invalid")
            .await
            .map_err(|e| e.to_string())?;
        ensure(
            label_error.as_deref() == Some("true"),
            "the API's error is put on its field",
        )?;

        // Escape closes the dialog; nothing was created.
        b.find("dialog input[name=label]")
            .await?
            .send_keys("\u{e00c}")
            .await
            .map_err(|e| e.to_string())?;
        b.wait_until(
            "!document.querySelector('dialog')",
            "Escape to close the dialog",
        )
        .await?;
        Ok(())
    }));
    let keys = plane.get("/v1/org/api-keys", &admin.token).json();
    assert_eq!(keys["data"], json!([]), "a refused create leaves nothing");
}

#[test]
fn on_a_phone_the_page_fits_and_stays_usable() {
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    plane.create_key(&admin, &[Scope::CustomersRead, Scope::CustomersWrite]);
    let made = plane.post(
        "/v1/org/provider-keys",
        &admin.token,
        json!({"key_type": "W", "label": "World Check screening for the EU desk", "secret": format!("{}:{}", provider_secret("wc"), provider_secret("wcs"))}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let b = open_sized(&plane, "phone", (375, 812));
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        b.find("tr[data-key-id]").await?;
        let fits = "window.innerWidth === 375 && document.documentElement.scrollWidth <= 375";
        b.wait_until(fits, "the keys screen to fit 375 px").await?;
        b.accessible("keys (375 px)").await?;
        b.document("keys-phone").await?;
        b.click("#create-key").await?;
        b.find("dialog[open]").await?;
        b.wait_until(fits, "the create dialog to fit 375 px")
            .await?;
        let dialog_width = b
            .js(
                "return document.querySelector('dialog').getBoundingClientRect().right;",
                vec![],
            )
            .await?;
        ensure(
            dialog_width.as_f64().unwrap_or(f64::MAX) <= 375.0,
            format!("the dialog ends within the screen: {dialog_width}"),
        )?;
        b.click_button("dialog", "Cancel").await?;
        // The provider keys screen, every nav link of an administrator shown, fits too.
        b.click("#nav-providers").await?;
        b.find("tr[data-provider-key-id]").await?;
        b.wait_until(fits, "the provider keys screen to fit 375 px")
            .await?;
        b.accessible("provider keys (375 px)").await?;
        Ok(())
    }));
}

/// What `make run` serves: the real local-stack binary prints the page's address and the
/// demo administrator's password, and that member signs in there and finds the demo key.
#[test]
fn the_page_of_make_run_signs_in_the_demo_administrator() {
    let stack = helpers::http::Stack::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{}", stack.port);
    let b = runtime.block_on(Browser::open(&base, "make-run", 1280, 900));
    runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in("admin@demo.test", &stack.admin_password).await?;
        b.wait_for_text("table.keys", "local demo key").await?;
        ensure(
            b.text("#who-role").await? == "Administrator",
            "the demo member is an administrator",
        )?;
        // The header links to the docs site the stack serves at /docs/ (make docs builds it;
        // make docs-test checks the built site is what is served there).
        ensure(
            b.text("a.docs-link").await? == "Docs",
            "the header has a Docs link",
        )?;
        let href = b
            .js("return document.querySelector('a.docs-link').href", vec![])
            .await?;
        ensure(
            href.as_str() == Some(format!("{}/docs/", b.base()).as_str()),
            format!("the Docs link goes to /docs/ on the stack, not {href}"),
        )?;
        Ok(())
    }));
}

/// The page over plain HTTP: what it is served with.
#[test]
fn the_page_is_served_with_a_strict_policy_and_no_cache_for_the_document() {
    let plane = Plane::new();
    let page = plane.call_with("GET", PAGE, &[], None);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    // The page calls this origin and the pool's endpoint, nothing else.
    let cognito = helpers::cognito().endpoint();
    assert!(
        csp.contains(&format!(
            "connect-src 'self' {}",
            cognito.trim_end_matches('/')
        )),
        "{csp}"
    );
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.header("request-id").is_some());
    assert!(page.body.contains(&format!(
        "<meta name=\"ic-client-id\" content=\"{}\">",
        plane.pool.client_id
    )));
    // No inline script or style anywhere in the document.
    assert!(!page.body.contains("<script>") && !page.body.contains("style="));

    let js = plane.call_with("GET", &format!("{PAGE}/keys.js"), &[], None);
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("cache-control"), Some("no-cache"));
    let etag = js.header("etag").unwrap().to_owned();
    let again = plane.call_with(
        "GET",
        &format!("{PAGE}/keys.js"),
        &[("if-none-match", &etag)],
        None,
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    plane
        .call_with("GET", &format!("{PAGE}/secrets.txt"), &[], None)
        .assert_error(404, "not_found");
    plane
        .call_with("POST", PAGE, &[], Some("{}"))
        .assert_error(405, "method_not_allowed");
}

#[test]
fn an_administrator_adds_a_webhook_endpoint_sees_its_deliveries_and_resends_one() {
    let plane = Plane::new();
    let (_webhooks, _workers) = plane.webhooks(|_| {});
    let admin = plane.member("acme", Role::Administrator);
    let hook = receiver::Receiver::start(&plane.runtime);
    let url = hook.url("/hooks/page");
    let secret = std::cell::RefCell::new(String::new());

    let b = open(&plane, "webhooks-1");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        b.click("#nav-webhooks").await?;
        b.wait_for_text("main", "No endpoints yet").await?;
        b.accessible("webhooks, empty").await?;
        b.click("#add-endpoint").await?;
        // Nothing chosen and no URL: both fields say so, nothing is made.
        b.js(
            "document.querySelectorAll('dialog input[name=events]').forEach(i => { i.checked = false; });",
            vec![],
        )
        .await?;
        b.click_button("dialog form .actions", "Add endpoint").await?;
        b.wait_for_text("dialog", "Enter the URL to deliver to").await?;
        b.fill("dialog input[name=url]", &url).await?;
        b.click_button("dialog form .actions", "Add endpoint").await?;
        b.wait_for_text("dialog", "Choose at least one event").await?;
        b.click("dialog input[value='customer.created']").await?;
        b.fill("dialog input[name=description]", "Back office").await?;
        b.accessible("add endpoint dialog").await?;
        b.click_button("dialog form .actions", "Add endpoint").await?;
        b.wait_for_text("dialog", "Verify deliveries with this secret").await?;
        *secret.borrow_mut() = b.text("dialog .secret-value").await?;
        b.accessible("endpoint added dialog").await?;
        b.click_button("dialog", "Done").await?;
        b.wait_for_text("table.webhooks", "Back office").await?;
        b.document("webhooks").await?;
        Ok(())
    }));
    let secret = secret.into_inner();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let listed = plane.get("/v1/org/webhook-endpoints", &admin.token).json();
    let endpoint = &listed["data"][0];
    assert_eq!(endpoint["url"], json!(url));
    assert_eq!(endpoint["events"], json!(["customer.created"]));
    assert_eq!(endpoint["description"], "Back office");
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();

    // A customer is created: the receiver gets it, signed with the secret the page showed.
    let (_, key) = plane.create_key(&admin, &[Scope::CustomersWrite]);
    let made = plane.post(
        "/v1/customers",
        &key,
        json!({"external_id": "crm-page", "full_name": "Page Person"}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
    let got = hook.wait_for(1);
    assert_eq!(
        receiver::verified_by("python", &secret, &got)
            .unwrap()
            .len(),
        1
    );

    let b = open(&plane, "webhooks-2");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(&format!("{PAGE}#/webhooks")).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        let row = format!("tr[data-endpoint-id='{endpoint_id}']");
        b.click_button(&row, "Deliveries").await?;
        b.wait_for_text("table.deliveries", "customer.created")
            .await?;
        b.wait_for_text("table.deliveries", "Succeeded").await?;
        b.wait_for_text("table.deliveries", "HTTP 200").await?;
        b.accessible("deliveries").await?;
        b.document("webhook-deliveries").await?;
        b.click_button("table.deliveries", "Re-send").await?;
        b.wait_for_text("#announce", "Re-sending").await?;
        // Filtered to failures: none, said so, and kept in the URL.
        b.select("select[name=status]", "failed").await?;
        b.wait_for_text("main", "No deliveries with this status")
            .await?;
        let place = b.client.current_url().await.map_err(|e| e.to_string())?;
        ensure(
            place
                .fragment()
                .unwrap_or_default()
                .ends_with("?status=failed"),
            format!("the filter is in the URL: {place}"),
        )?;
        // Back to the list: disable it.
        b.click("main p a").await?;
        b.click_button(&row, "Disable").await?;
        b.wait_for_text(&row, "Disabled").await?;
        Ok(())
    }));
    let again = hook.wait_for(2);
    assert_eq!(
        again[0].id(),
        again[1].id(),
        "a re-send keeps the webhook-id"
    );
    let seen = plane
        .get(
            &format!("/v1/org/webhook-endpoints/{endpoint_id}"),
            &admin.token,
        )
        .json();
    assert_eq!(seen["enabled"], false);
}

/// A secret no test hard-codes: a prefix and 32 random characters.
fn provider_secret(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// The row of the provider key labelled `label`.
async fn provider_row(b: &Browser, label: &str) -> Step<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found = b
            .js(
                "return [...document.querySelectorAll('tr[data-provider-key-id]')]
                   .filter(row => row.querySelector('.label').textContent === arguments[0])
                   .map(row => row.dataset.providerKeyId)[0] || null;",
                vec![json!(label)],
            )
            .await?;
        if let Some(id) = found.as_str() {
            return Ok(format!("tr[data-provider-key-id='{id}']"));
        }
        ensure(
            std::time::Instant::now() < deadline,
            format!("no provider key row labelled {label:?}"),
        )?;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Nothing in the document (inputs' values included) holds `secret`.
async fn nowhere_in_the_page(b: &Browser, secret: &str) -> Step {
    let found = b
        .js(
            "const html = document.documentElement.outerHTML;
             const values = [...document.querySelectorAll('input')].map(i => i.value).join(' ');
             return html.includes(arguments[0]) || values.includes(arguments[0]);",
            vec![json!(secret)],
        )
        .await?;
    ensure(
        found == json!(false),
        "the secret is still in the page after its dialog closed",
    )
}

#[test]
fn an_administrator_adds_verifies_rotates_and_retires_provider_keys() {
    use shared::providers::kind::KeyType;
    let plane = Plane::new();
    let admin = plane.member("acme", Role::Administrator);
    let first = provider_secret("chain");
    let wrong = provider_secret("chain");
    let (wc_key, wc_secret) = (provider_secret("wck"), provider_secret("wcs"));
    plane.fakes.accept(KeyType::Chainalysis, &first);
    plane
        .fakes
        .accept(KeyType::WorldCheck, &format!("{wc_key}:{wc_secret}"));
    let today = chrono::Utc::now().date_naive().to_string();

    let b = open(&plane, "providers");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        b.click("#nav-providers").await?;
        b.wait_for_text("main", "No provider keys yet").await?;
        b.accessible("provider keys, empty").await?;

        // Nothing typed: the dialog says what is missing and nothing is made.
        b.click("#add-provider-key").await?;
        b.click_button("dialog form .actions", "Add key").await?;
        b.wait_for_text("dialog", "Give the key a label").await?;
        b.fill("dialog input[name=label]", "Screening").await?;
        b.click_button("dialog form .actions", "Add key").await?;
        b.wait_for_text("dialog", "Enter the secret").await?;
        // The API's own refusal lands on the secret's field: a smart quote pasted with it.
        b.fill("dialog input[name=secret]", "key’s").await?;
        b.click_button("dialog form .actions", "Add key").await?;
        b.wait_until(
            "document.querySelector('dialog input[name=secret]').getAttribute('aria-invalid') === 'true'
             && document.querySelector('dialog .problem').textContent.includes('not printable ASCII')",
            "the API's error on the secret field",
        )
        .await?;
        b.fill("dialog input[name=secret]", &first).await?;
        b.accessible("add provider key dialog").await?;
        b.click_button("dialog form .actions", "Add key").await?;
        b.wait_until("!document.querySelector('dialog')", "the dialog to close")
            .await?;
        let row = provider_row(b, "Screening").await?;
        let masked = b
            .js(
                "return document.querySelector(arguments[0] + ' code.masked').textContent;",
                vec![json!(row)],
            )
            .await?;
        ensure(
            masked == json!(format!("{}{}", "•".repeat(first.len() - 4), &first[first.len() - 4..])),
            format!("the key is masked as the API masks it: {masked}"),
        )?;
        let tail = b.text(&format!("{row} code.masked .tail")).await?;
        ensure(
            tail == first[first.len() - 4..],
            format!("its last 4 show whatever the width: {tail:?}"),
        )?;
        nowhere_in_the_page(b, &first).await?;
        b.wait_for_text(&row, "0 calls").await?;

        // Verify: the fake accepts it; the call is counted.
        b.click_button(&row, "Verify").await?;
        b.click_button("dialog form .actions", "Verify key").await?;
        b.wait_for_text("dialog", "The key works").await?;
        b.wait_for_text("dialog", "HTTP 200").await?;
        b.accessible("verification dialog").await?;
        b.click_button("dialog", "Done").await?;
        b.wait_for_text(&row, "1 call").await?;

        // Rotate to a secret the provider refuses: verify says so, in words.
        b.click_button(&row, "Rotate").await?;
        b.fill("dialog input[name=secret]", &wrong).await?;
        b.click_button("dialog form .actions", "Rotate key").await?;
        b.wait_until("!document.querySelector('dialog')", "the dialog to close")
            .await?;
        b.wait_for_text(&row, "Rotated").await?;
        nowhere_in_the_page(b, &wrong).await?;
        b.click_button(&row, "Verify").await?;
        b.click_button("dialog form .actions", "Verify key").await?;
        b.wait_for_text("dialog", "The key was refused").await?;
        b.wait_for_text("dialog", "HTTP 401").await?;
        b.click_button("dialog", "Done").await?;
        b.wait_for_text(&row, "2 calls").await?;

        // The day's calls: two, one of them an error.
        b.click_button(&row, "Calls").await?;
        b.wait_for_text("dialog", "2 calls, 1 error").await?;
        let day = format!("dialog tr[data-date='{today}']");
        ensure(
            b.text(&day).await?.split_whitespace().collect::<Vec<_>>() == [today.as_str(), "2", "1"],
            format!("today's row: {:?}", b.text(&day).await?),
        )?;
        b.accessible("call summary dialog").await?;
        b.click_button("dialog", "Done").await?;

        // World Check takes its key and secret apart; a pasted pair is caught.
        b.click("#add-provider-key").await?;
        b.select("dialog select[name=key_type]", "W").await?;
        ensure(
            !b.find("dialog input[name=secret]")
                .await?
                .is_displayed()
                .await
                .map_err(|e| e.to_string())?,
            "World Check asks for its two parts, not one secret",
        )?;
        b.fill("dialog input[name=label]", "EU desk").await?;
        b.fill("dialog input[name=api_key]", &format!("{wc_key}:{wc_secret}"))
            .await?;
        b.fill("dialog input[name=api_secret]", &wc_secret).await?;
        b.click_button("dialog form .actions", "Add key").await?;
        b.wait_for_text("dialog", "An API key has no colon").await?;
        b.fill("dialog input[name=api_key]", &wc_key).await?;
        b.click_button("dialog form .actions", "Add key").await?;
        b.wait_until("!document.querySelector('dialog')", "the dialog to close")
            .await?;
        let wc_row = provider_row(b, "EU desk").await?;
        b.click_button(&wc_row, "Verify").await?;
        b.click_button("dialog form .actions", "Verify key").await?;
        b.wait_for_text("dialog", "The key works").await?;
        b.click_button("dialog", "Done").await?;
        nowhere_in_the_page(b, &wc_secret).await?;

        // Rename, then retire the Chainalysis key: asked first, its history kept.
        b.click_button(&row, "Rename").await?;
        b.fill("dialog input[name=label]", "Old screening").await?;
        b.click_button("dialog form .actions", "Save").await?;
        b.wait_for_text(&row, "Old screening").await?;
        b.click_button(&row, "Disable").await?;
        b.wait_for_text("dialog", "Its calls and history stay").await?;
        b.click_button("dialog form .actions", "Disable key").await?;
        b.wait_for_text(&row, "Disabled").await?;
        let verify_enabled = b
            .js(
                "return [...document.querySelectorAll(arguments[0] + ' button')]
                   .find(x => x.textContent.startsWith('Verify')).disabled === false;",
                vec![json!(row)],
            )
            .await?;
        ensure(
            verify_enabled == json!(false),
            "a disabled key can't be verified",
        )?;
        b.wait_for_text(&row, "2 calls").await?;
        b.accessible("provider keys").await?;
        b.document("provider-keys").await?;
        Ok(())
    }));

    // What the API says happened: as the page showed it.
    let listed = plane.get("/v1/org/provider-keys", &admin.token).json();
    let keys = listed["data"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{listed}");
    let chain = keys.iter().find(|k| k["key_type"] == "H").unwrap();
    assert_eq!(chain["label"], "Old screening");
    assert_eq!(chain["enabled"], false);
    assert_eq!(chain["usage_count"], 2);
    assert!(chain["rotated_at"].is_string());
    assert!(chain["masked_key"]
        .as_str()
        .unwrap()
        .ends_with(&wrong[wrong.len() - 4..]));
    let wc = keys.iter().find(|k| k["key_type"] == "W").unwrap();
    assert_eq!(wc["label"], "EU desk");
    assert_eq!(wc["usage_count"], 1);
    assert!(!listed.to_string().contains(&wc_secret));
    // The providers saw each secret as the page typed it, and only those.
    assert_eq!(plane.fakes.seen(KeyType::Chainalysis), vec![first, wrong]);
    assert_eq!(plane.fakes.seen(KeyType::WorldCheck), vec![wc_key]);
}

#[test]
fn a_leaked_key_shows_a_banner_with_a_prefilled_replacement_until_dismissed() {
    let plane = Plane::new();
    let admin = plane.member_as("ada@acme.test", "acme", Role::Administrator);
    let created = plane.post(
        "/v1/org/api-keys",
        &admin.token,
        json!({"label": "Zapier", "mode": "test", "scopes": ["customers:read", "webhooks:write"],
               "ip_allowlist": ["127.0.0.0/8"], "rate_limit": {"requests_per_second": 30}}),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let leaked = created.json();
    let leaked_id = leaked["id"].as_str().unwrap().to_owned();
    let leaked_key = leaked["key"].as_str().unwrap().to_owned();
    let found_at = "https://github.com/acme/zaps/blob/main/config.js";
    let body = infra::secret_scanner::report(&[(&leaked_key, Some(found_at))]);
    let reply = plane.post_with(
        "/v1/secret-scanning/github",
        &plane.scanner_key.headers(&body),
        &body,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(customers_status(&plane, &leaked_key), 401);

    let b = open(&plane, "leak-banner");
    let replacement = std::cell::RefCell::new((String::new(), String::new()));
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        let banner = format!(".leak-banner[data-key-id='{leaked_id}']");
        b.wait_for_text(&banner, "“Zapier” was found in public").await?;
        let text = b.text(&banner).await?;
        ensure(
            text.contains("GitHub secret scanning")
                && text.contains("revoked automatically")
                && text.contains(&leaked_key[..12]),
            format!("the banner says who found which key and what happened: {text}"),
        )?;
        ensure(!text.contains(&leaked_key), "the banner shows the plaintext")?;
        let link = b
            .js(
                "const a = document.querySelector(arguments[0] + ' a.leak-url'); return [a.href, a.rel];",
                vec![json!(banner)],
            )
            .await?;
        ensure(
            link == json!([found_at, "noopener noreferrer"]),
            format!("the banner links where it was found: {link}"),
        )?;
        let row = format!("tr[data-key-id='{leaked_id}']");
        b.wait_for_text(&row, "Leaked").await?;
        b.accessible("keys with a leak banner").await?;
        b.document("leak-banner").await?;

        // The replacement starts from the leaked key's settings.
        b.click_button(&banner, "Create a replacement").await?;
        b.find("dialog[open] input[name=label]").await?;
        let form = b
            .js(
                "const d = document.querySelector('dialog');
                 return {
                   title: d.querySelector('h2').textContent,
                   label: d.querySelector('input[name=label]').value,
                   scopes: [...d.querySelectorAll('input[name=scopes]:checked')].map(x => x.value),
                   mode: d.querySelector('input[name=mode]:checked').value,
                   allowlist: d.querySelector('textarea[name=ip_allowlist]').value,
                   rate: d.querySelector('input[name=rate_limit]').value,
                 };",
                vec![],
            )
            .await?;
        ensure(
            form == json!({"title": "Replace “Zapier”", "label": "Zapier",
                           "scopes": ["customers:read", "webhooks:write"], "mode": "test",
                           "allowlist": "127.0.0.0/8", "rate": "30"}),
            format!("the replacement's form: {form}"),
        )?;
        b.accessible("replacement dialog").await?;
        b.fill("dialog input[name=label]", "Zapier (replaced)").await?;
        b.click("dialog button[type=submit]").await?;
        let key = shown_key(b).await?;
        done_and_gone(b, &key).await?;
        let id = row_id(b, "Zapier (replaced)", &[]).await?;
        *replacement.borrow_mut() = (id, key);

        // Dismissed: the banner goes, for good.
        b.click_button(&banner, "Dismiss").await?;
        b.wait_until(
            &format!("!document.querySelector(\"{banner}\")"),
            "the banner to go",
        )
        .await?;
        b.goto(PAGE).await?;
        b.wait_for_text(&row, "Leaked").await?;
        ensure(
            b.find_all(".leak-banner").await?.is_empty(),
            "a dismissed banner comes back",
        )?;
        Ok(())
    }));

    let (new_id, new_key) = replacement.into_inner();
    assert!(
        new_key.starts_with("ic_test_"),
        "the replacement keeps the mode"
    );
    assert_eq!(customers_status(&plane, &new_key), 200);
    let new = plane
        .get(&format!("/v1/org/api-keys/{new_id}"), &admin.token)
        .json();
    assert_eq!(new["scopes"], json!(["customers:read", "webhooks:write"]));
    assert_eq!(new["ip_allowlist"], json!(["127.0.0.0/8"]));
    assert_eq!(new["rate_limit"], json!({"requests_per_second": 30}));
    let old = plane
        .get(&format!("/v1/org/api-keys/{leaked_id}"), &admin.token)
        .json();
    assert_eq!(old["leak"]["dismissed_by"], json!(admin.member.id));
}

#[test]
fn an_administrator_reads_who_did_what_to_a_key_on_the_audit_screen() {
    let plane = Plane::new();
    let admin = plane.member_as("ada@acme.test", "acme", Role::Administrator);
    let developer = plane.member_as("dev@acme.test", "acme", Role::Developer);
    let (edited, _) = plane.create_key(&developer, &[Scope::CustomersRead]);
    let reply = plane.patch(
        &format!("/v1/org/api-keys/{edited}"),
        &developer.token,
        json!({"label": "CRM sync"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let (revoked, _) = plane.create_key(&admin, &[Scope::CustomersRead]);
    let reply = plane.post(
        &format!("/v1/org/api-keys/{revoked}/revoke"),
        &admin.token,
        json!({}),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);

    let b = open(&plane, "audit");
    plane.runtime.block_on(b.run(async |b: &mut Browser| {
        b.goto(PAGE).await?;
        b.sign_in(&admin.email, &admin.password).await?;
        b.click("#nav-audit").await?;
        b.wait_until(
            "document.querySelectorAll('tr[data-event-id]').length === 6",
            "the org's six events",
        )
        .await?;
        let actions = b
            .js(
                "return [...document.querySelectorAll('tr[data-event-id]')].map(r => r.dataset.action);",
                vec![],
            )
            .await?;
        ensure(
            actions
                == json!(["api_key.revoked", "api_key.created", "api_key.updated", "api_key.created",
                          "member.invited", "member.invited"]),
            format!("newest first: {actions}"),
        )?;
        // The edit as a diff: the old label struck out, the new one marked, by whom.
        let row = "tr[data-action='api_key.updated']";
        let change = b
            .js(
                "const r = document.querySelector(arguments[0]);
                 return [r.querySelector('del').textContent, r.querySelector('ins').textContent,
                         r.querySelector('td[data-label=Who]').textContent];",
                vec![json!(row)],
            )
            .await?;
        ensure(
            change == json!(["test", "CRM sync", "dev@acme.test Member"]),
            format!("the edit's diff and who made it: {change}"),
        )?;
        b.accessible("audit trail").await?;
        b.document("audit-trail").await?;

        // Filters: only revocations.
        b.select("select[name=action]", "api_key.revoked").await?;
        b.click_button("form.filters", "Apply").await?;
        b.wait_until(
            "document.querySelectorAll('tr[data-event-id]').length === 1",
            "one revocation",
        )
        .await?;
        ensure(
            b.text("tr[data-event-id]").await?.contains("ada@acme.test"),
            "the revocation was the administrator's",
        )?;
        let hash = b.js("return location.hash;", vec![]).await?;
        ensure(
            hash.as_str().is_some_and(|h| h.contains("action=api_key.revoked")),
            format!("the filter is in the URL: {hash}"),
        )?;

        // From a key's row to its history.
        b.click("#nav-keys").await?;
        let key_row = format!("tr[data-key-id='{edited}']");
        b.find(&key_row).await?;
        b.click_button(&key_row, "History").await?;
        b.wait_until(
            "document.querySelectorAll('tr[data-event-id]').length === 2",
            "the key's two events",
        )
        .await?;
        let target = b
            .js("return document.querySelector('input[name=target]').value;", vec![])
            .await?;
        ensure(target == json!(edited), format!("filtered to the key: {target}"))?;

        // And the CSV of what is shown.
        b.click_button("form.filters", "Download CSV").await?;
        let (file, csv) = b.downloaded().await?;
        ensure(file.starts_with("audit-events-"), format!("file name {file}"))?;
        let lines: Vec<&str> = csv.lines().collect();
        ensure(
            lines.len() == 3 && lines[0].starts_with("at,id,actor_type"),
            format!("a header and two rows: {csv}"),
        )?;
        ensure(
            csv.contains(&edited) && csv.contains("api_key.updated"),
            format!("the key's events: {csv}"),
        )?;

        // From a member's row to what they did.
        b.click("#nav-members").await?;
        let member_row = format!("tr[data-member-id='{}']", developer.member.id);
        b.find(&member_row).await?;
        b.click_button(&member_row, "History").await?;
        b.wait_until(
            "document.querySelectorAll('tr[data-event-id]').length === 2",
            "the developer's two events",
        )
        .await?;
        Ok(())
    }));
}
