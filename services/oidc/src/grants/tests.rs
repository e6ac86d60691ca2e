use super::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CB: &str = "http://localhost:4000/auth/callback";

fn grant() -> Grant {
    Grant {
        client_id: "sigstore".into(),
        subject: "alice".into(),
        email: Some("alice@example.test".into()),
        email_verified: true,
        nonce: None,
        connector_id: "http://127.0.0.1:5556".into(),
        name: None,
        user_id: "alice".into(),
    }
}

#[test]
fn codes_are_single_use_and_bound() {
    let mut c = Codes::default();
    c.insert("a".into(), grant(), CB.into(), CHALLENGE.into(), 100);
    assert_eq!(c.redeem("a", "sigstore", CB, VERIFIER, 50), Ok(grant()));
    assert_eq!(
        c.redeem("a", "sigstore", CB, VERIFIER, 50),
        Err(GrantError::InvalidGrant("unknown, used or expired code")),
        "a code works once"
    );
    let cases: [(&str, &str, &str, i64); 4] = [
        ("other-client", CB, VERIFIER, 50),
        (
            "sigstore",
            "http://localhost:4001/auth/callback",
            VERIFIER,
            50,
        ),
        (
            "sigstore",
            CB,
            "wrong-verifier-wrong-verifier-wrong-verifier-x",
            50,
        ),
        ("sigstore", CB, VERIFIER, 101),
    ];
    for (client, redirect, verifier, now) in cases {
        c.insert("b".into(), grant(), CB.into(), CHALLENGE.into(), 100);
        let r = c.redeem("b", client, redirect, verifier, now);
        assert_eq!(
            r.as_ref().map_err(GrantError::code),
            Err("invalid_grant"),
            "{client} {redirect} {now}"
        );
        // and a failed attempt burnt the code
        assert!(c.redeem("b", "sigstore", CB, VERIFIER, 50).is_err());
    }
    assert!(c.is_empty());
}

#[test]
fn device_flow_states() {
    let mut d = Devices::default();
    let _ = d.start(
        "dev".into(),
        "BCDF-GHJK".into(),
        "sigstore".into(),
        1000,
        5,
        0,
        "a",
    );
    assert_eq!(
        d.poll("dev", "sigstore", 10),
        Err(GrantError::AuthorizationPending)
    );
    assert_eq!(d.poll("dev", "sigstore", 12), Err(GrantError::SlowDown));
    // the interval grew to 10 s
    assert_eq!(d.poll("dev", "sigstore", 20), Err(GrantError::SlowDown));
    assert_eq!(
        d.poll("dev", "sigstore", 35),
        Err(GrantError::AuthorizationPending)
    );
    assert_eq!(
        d.poll("dev", "other", 60).map_err(|e| e.code()),
        Err("invalid_grant")
    );
    assert!(
        !d.decide("ZZZZ-ZZZZ", Some(grant()), 40),
        "unknown user code"
    );
    assert!(d.decide("bcdf ghjk", Some(grant()), 40), "typed loosely");
    assert!(!d.decide("BCDF-GHJK", Some(grant()), 41), "decided once");
    assert_eq!(d.poll("dev", "sigstore", 60), Ok(grant()));
    assert_eq!(
        d.poll("dev", "sigstore", 80).map_err(|e| e.code()),
        Err("invalid_grant")
    );

    let _ = d.start(
        "no".into(),
        "CCCC-DDDD".into(),
        "sigstore".into(),
        1000,
        5,
        0,
        "a",
    );
    assert!(d.decide("CCCC-DDDD", None, 1));
    assert_eq!(d.poll("no", "sigstore", 10), Err(GrantError::AccessDenied));
    let _ = d.start(
        "old".into(),
        "DDDD-FFFF".into(),
        "sigstore".into(),
        100,
        5,
        0,
        "a",
    );
    assert_eq!(
        d.poll("old", "sigstore", 101),
        Err(GrantError::ExpiredToken)
    );
    assert!(!d.decide("DDDD-FFFF", Some(grant()), 101));
}

#[test]
fn user_codes() {
    let c = user_code([0, 1, 2, 3, 19, 20, 255, 7]);
    assert_eq!(c, "BCDF-ZBTK");
    assert!(
        c.chars()
            .all(|ch| ch == '-' || USER_CODE_ALPHABET.contains(&(ch as u8)))
    );
    assert_eq!(normalize_user_code(" bcdf zbtk "), "BCDF-ZBTK");
    assert_eq!(handle([0; 32]).len(), 43);
}

#[test]
fn pending_values_are_single_use_expire_and_are_bounded() {
    let mut p = Pending::default();
    assert!(p.insert("a".into(), 1, 100, 0, "o").is_ok());
    assert_eq!(p.take("a", 50), Some(1));
    assert_eq!(p.take("a", 50), None, "single use");
    assert!(p.insert("b".into(), 2, 100, 0, "o").is_ok());
    assert_eq!(p.take("b", 101), None, "expired");
    for i in 0..MAX_PENDING {
        assert!(
            p.insert(format!("k{i}"), i, 100, 0, &format!("o{}", i % 1000))
                .is_ok()
        );
    }
    assert_eq!(
        p.insert("full".into(), 0, 100, 0, "new"),
        Err(Full::Everyone),
        "bounded"
    );
    // expired entries make room again
    assert!(p.insert("later".into(), 0, 300, 200, "o").is_ok());
    assert_eq!(p.len(), 1);
}

#[test]
fn one_owner_cannot_fill_the_tables() {
    let mut p = Pending::default();
    let mut d = Devices::default();
    for i in 0..MAX_PENDING_PER_OWNER {
        assert!(p.insert(format!("k{i}"), i, 100, 0, "attacker").is_ok());
        assert!(
            d.start(
                format!("d{i}"),
                format!("U{i}"),
                "sigstore".into(),
                100,
                5,
                0,
                "attacker"
            )
            .is_ok()
        );
    }
    assert_eq!(
        p.insert("more".into(), 0, 100, 0, "attacker"),
        Err(Full::Owner)
    );
    assert_eq!(
        d.start(
            "more".into(),
            "M".into(),
            "sigstore".into(),
            100,
            5,
            0,
            "attacker"
        ),
        Err(Full::Owner)
    );
    // everyone else is still served
    assert!(p.insert("user".into(), 0, 100, 0, "someone").is_ok());
    assert!(
        d.start(
            "user".into(),
            "V".into(),
            "sigstore".into(),
            100,
            5,
            0,
            "someone"
        )
        .is_ok()
    );
    // and the attacker's entries expire
    assert!(p.insert("later".into(), 0, 300, 101, "attacker").is_ok());
}

#[test]
fn device_authorizations_are_bounded() {
    let mut d = Devices::default();
    for i in 0..MAX_PENDING {
        assert!(
            d.start(
                format!("d{i}"),
                format!("U{i}"),
                "sigstore".into(),
                100,
                5,
                0,
                &format!("o{}", i % 1000)
            )
            .is_ok()
        );
    }
    assert_eq!(
        d.start("x".into(), "X".into(), "sigstore".into(), 100, 5, 0, "new"),
        Err(Full::Everyone)
    );
    assert!(
        d.start(
            "y".into(),
            "Y".into(),
            "sigstore".into(),
            300,
            5,
            200,
            "new"
        )
        .is_ok()
    );
}
