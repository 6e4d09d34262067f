//! Table tests for `remote add`'s checks before dialing and its CA fingerprint checks.

use super::*;

const FP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn token() -> String {
    crate::model::credential::ApiToken::generate().text()
}

fn args(endpoint: &str) -> AddArgs {
    AddArgs {
        endpoint: endpoint.into(),
        ..AddArgs::default()
    }
}

#[test]
fn the_token_and_fingerprint_form_is_pinned() {
    let tok = token();
    let a = AddArgs {
        token: Some(format!(" {tok}\n")),
        // Upper case and colons, as some tools print it.
        ca_fingerprint: Some(
            FP.to_uppercase()
                .as_bytes()
                .chunks(2)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(":"),
        ),
        ..args("https://h:7400/")
    };
    let want = Plan::Pinned {
        remote: Remote {
            endpoint: "https://h:7400".into(),
            token: Some(tok),
            ..Remote::default()
        },
        fingerprint: FP.into(),
    };
    assert_eq!(plan_add(&a, Path::new("/w")).unwrap(), want);
}

#[test]
fn file_forms_take_relative_paths_from_the_current_directory() {
    let a = AddArgs {
        client_dir: Some("alice".into()),
        ..args("https://h:7400")
    };
    let Plan::Files(r) = plan_add(&a, Path::new("/w")).unwrap() else {
        panic!("expected files");
    };
    assert_eq!(
        (r.ca, r.cert, r.key),
        (
            Some("/w/alice/ca.crt".into()),
            Some("/w/alice/client.crt".into()),
            Some("/w/alice/client.key".into())
        )
    );
    let a = AddArgs {
        ca: Some("/etc/q/ca.crt".into()),
        token: Some(token()),
        ..args("https://h:7400")
    };
    let Plan::Files(r) = plan_add(&a, Path::new("/w")).unwrap() else {
        panic!("expected files");
    };
    assert_eq!((r.ca, r.cert), (Some("/etc/q/ca.crt".into()), None));
    let Plan::Files(r) = plan_add(&args("unix:///var/lib/q.sock"), Path::new("/w")).unwrap() else {
        panic!("expected files");
    };
    assert_eq!(r.endpoint, "unix:///var/lib/q.sock");
}

#[test]
fn bad_combinations_are_refused_before_dialing() {
    let tok = token();
    let with = |f: &dyn Fn(&mut AddArgs)| {
        let mut a = args("https://h:7400");
        f(&mut a);
        a
    };
    let cases: Vec<(AddArgs, &str)> = vec![
        (args("http://h:7400"), "use https://h:7400"),
        (args("h:7400"), "an endpoint is https://"),
        (args("https://"), "an endpoint is https://"),
        (
            with(&|a| a.token = Some(tok.clone())),
            "say how to trust the cluster",
        ),
        (
            with(&|a| a.ca = Some("ca.crt".into())),
            "a remote needs a credential",
        ),
        (
            with(&|a| {
                a.token = Some("hello".into());
                a.ca_fingerprint = Some(FP.into());
            }),
            "--token: bearer token is malformed",
        ),
        (
            with(&|a| {
                a.token = Some(tok.clone());
                a.ca_fingerprint = Some("abc".into());
            }),
            "--ca-fingerprint abc: expected the 64 hex digits",
        ),
        (
            with(&|a| {
                a.token = Some(tok.clone());
                a.ca_fingerprint = Some("z".repeat(64));
            }),
            "expected the 64 hex digits",
        ),
        (
            with(&|a| {
                a.token = Some(tok.clone());
                a.ca = Some("ca.crt".into());
                a.ca_fingerprint = Some(FP.into());
            }),
            "--ca-fingerprint is for when you have no CA file",
        ),
        (
            with(&|a| {
                a.cert = Some("c".into());
                a.key = Some("k".into());
                a.ca_fingerprint = Some(FP.into());
            }),
            "--ca-fingerprint goes with --token",
        ),
        (
            with(&|a| {
                a.client_dir = Some("d".into());
                a.ca = Some("ca.crt".into());
            }),
            "drop --ca/--cert/--key",
        ),
        (
            with(&|a| {
                a.ca = Some("ca.crt".into());
                a.cert = Some("c".into());
            }),
            "both --cert and --key",
        ),
        (
            AddArgs {
                token: Some(tok.clone()),
                ..args("unix:///s.sock")
            },
            "needs no CA or credential",
        ),
    ];
    for (a, words) in cases {
        let e = plan_add(&a, Path::new("/w")).unwrap_err().to_string();
        assert!(e.contains(words), "{a:?}: {e}");
    }
}

#[test]
fn a_refused_pin_is_the_wrong_cluster_not_an_unreachable_host() {
    let connect = |message: &str| CliError::Connect {
        endpoint: "https://h:7400".into(),
        message: message.into(),
    };
    let cases = [
        (
            connect(&format!(
                "transport error: the server's CA is not ... (sha256 {FP})"
            )),
            "https://h:7400 does not present a CA with sha256",
        ),
        (
            connect("transport error: Connection refused (os error 111)"),
            "cannot reach quantixd at https://h:7400: transport error: Connection refused \
             (os error 111) (this connection trusts only a CA with sha256",
        ),
        (usage("--token: malformed"), "--token: malformed"),
    ];
    for (e, words) in cases {
        let got = pinned_refusal(e, FP).to_string();
        assert!(got.contains(words), "{got}");
    }
    let wrong = pinned_refusal(connect(&format!("bad (sha256 {FP})")), FP).to_string();
    assert!(wrong.contains("not the cluster you meant"), "{wrong}");
    assert_eq!(wrong.matches(FP).count(), 1, "{wrong}");
}

#[test]
fn a_fetched_ca_must_match_the_fingerprint() {
    let ca = crate::tls::ca::Ca::generate("c").unwrap();
    let fp = ca.fingerprint();
    assert!(check_fingerprint(&ca.cert_pem, &fp).is_ok());
    assert!(check_fingerprint(&ca.cert_pem, &fp.to_uppercase()).is_ok());
    let other = crate::tls::ca::Ca::generate("d").unwrap().fingerprint();
    let e = check_fingerprint(&ca.cert_pem, &other)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not the cluster you meant"), "{e}");
    assert!(check_fingerprint("not a pem", &fp).is_err());
}
