use super::*;

/// A syntactically valid bcrypt hash (of no password in particular).
const HASH: &str = "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";

fn parsed(text: &str) -> Result<WebConfig, String> {
    parse(Path::new("/etc/em/web.yml"), text)
}

fn refused(text: &str) -> String {
    parsed(text).expect_err("refused")
}

#[test]
fn an_empty_file_asks_for_nothing() {
    assert_eq!(parsed("").unwrap(), WebConfig::default());
    assert_eq!(parsed("# only a comment\n\n").unwrap(), WebConfig::default());
}

#[test]
fn the_full_format_parses_with_paths_from_the_file_directory() {
    let text = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: /keys/server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\n  \
         prefer_server_cipher_suites: false\n\
         http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    \
         Strict-Transport-Security: max-age=31536000\n    Content-Security-Policy: \"\"\n\
         basic_auth_users:\n  alice: {HASH}\n"
    );
    let w = parsed(&text).unwrap();
    let tls = w.tls.unwrap();
    assert_eq!(tls.cert, Pem::File("/etc/em/server.crt".into()));
    assert_eq!(tls.key, Pem::File("/keys/server.key".into()));
    assert_eq!(tls.client_ca, Some(Pem::File("/etc/em/ca.crt".into())));
    assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert_eq!((tls.min_version, tls.max_version), (TlsVersion::TLS13, TlsVersion::TLS13));
    assert!(!tls.prefer_server_order);
    assert_eq!(
        w.headers,
        [("X-Frame-Options", "deny".to_owned()), ("Strict-Transport-Security", "max-age=31536000".to_owned())],
        "a blank header is left unset"
    );
    assert_eq!(w.users["alice"], HASH);
}

#[test]
fn unknown_keys_are_refused_naming_them() {
    let e = refused("tls_server_config:\n  cert_file: a\n  key_file: b\n  cert_fil: c\n");
    assert!(e.contains("unknown field `cert_fil`") && e.contains("line 4"), "{e}");
    let e = refused("basic_auth:\n  alice: x\n");
    assert!(e.contains("unknown field `basic_auth`"), "{e}");
    let e = refused("http_server_config:\n  headers:\n    X-Powered-By: me\n");
    assert!(e.contains("unknown field `X-Powered-By`"), "{e}");
    let e = refused("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Always\n");
    assert!(e.contains("unknown variant `Always`") && e.contains("RequireAndVerifyClientCert"), "{e}");
}

#[test]
fn keys_of_the_format_that_are_not_implemented_are_refused_by_name() {
    for (key, text) in [
        ("tls_server_config.cipher_suites", "  cipher_suites: [TLS_AES_128_GCM_SHA256]\n"),
        ("tls_server_config.curve_preferences", "  curve_preferences: [X25519]\n"),
        ("tls_server_config.client_allowed_sans", "  client_allowed_sans: [a.example]\n"),
    ] {
        let e = refused(&format!("tls_server_config:\n  cert_file: a\n  key_file: b\n{text}"));
        assert!(e.starts_with(&format!("{key} is not supported")), "{e}");
    }
    let e = refused("rate_limit:\n  interval: 1s\n  burst: 20\n");
    assert!(e.starts_with("rate_limit is not supported"), "{e}");
    let e = refused("http_server_config:\n  http2: true\n");
    assert!(e.contains("http2: true is not supported"), "{e}");
}

#[test]
fn tls_settings_are_checked_as_a_whole() {
    assert!(refused("tls_server_config:\n  key_file: b\n").contains("needs cert_file"));
    assert!(refused("tls_server_config:\n  cert_file: a\n").contains("needs key_file"));
    let both = refused("tls_server_config:\n  cert_file: a\n  cert: \"PEM\"\n  key_file: b\n");
    assert!(both.contains("set cert or cert_file, not both"), "{both}");
    let base = "tls_server_config:\n  cert_file: a\n  key_file: b\n";
    let e = refused(&format!("{base}  client_auth_type: VerifyClientCertIfGiven\n"));
    assert!(e.contains("needs client_ca_file"), "{e}");
    let e = refused(&format!("{base}  client_ca_file: ca.crt\n"));
    assert!(e.contains("does not verify client certificates"), "{e}");
    let e = refused(&format!("{base}  min_version: TLS11\n"));
    assert!(e.contains("only TLS12 and TLS13"), "{e}");
    let e = refused(&format!("{base}  min_version: TLS13\n  max_version: TLS12\n"));
    assert!(e.contains("above max_version"), "{e}");
    let any = parsed(&format!("{base}  client_auth_type: RequireAnyClientCert\n")).unwrap().tls.unwrap();
    assert!(any.client_auth.requires() && !any.client_auth.verifies());
    let inline = parsed("tls_server_config:\n  cert: \"CERT PEM\"\n  key: \"KEY PEM\"\n").unwrap().tls.unwrap();
    assert_eq!(inline.key, Pem::Inline("KEY PEM".into()));
    assert_eq!(format!("{:?}", inline.key), "Inline(..)", "an inline key is never printed");
}

#[test]
fn bad_password_hashes_are_refused_without_being_quoted() {
    for bad in [
        "plaintext",
        "$2y$10$short",
        "$1$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
        "$2y$99$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
        "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ0123é",
    ] {
        let e = refused(&format!("basic_auth_users:\n  alice: '{bad}'\n"));
        assert!(e.contains("basic_auth_users.alice is not a bcrypt hash"), "{e}");
        assert!(!e.contains(bad), "the value is not quoted: {e}");
    }
    let e = refused(&format!("basic_auth_users:\n  'al:ice': {HASH}\n"));
    assert!(e.contains("not a usable user name"), "{e}");
    let e = refused("http_server_config:\n  headers:\n    X-Frame-Options: allow\n");
    assert!(e.contains("X-Frame-Options must be one of deny, sameorigin"), "{e}");
}
