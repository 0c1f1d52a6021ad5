//! Every documented sample payload of the Instagram Platform, decoded from the fixtures next to this file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use instagram_api::{
    ContainerStatus, ContainerStatusCode, Error, Insight, Media, Page, Profile,
    PublishingErrorKind, PublishingLimit, ReauthReason, Usage, decode_insights,
    decode_long_lived_token, decode_short_lived_token,
};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("fixtures/", $name))
    };
}

const USER_ID: &str = "27640875392278831";

#[test]
fn exchange_documented_data_shape() {
    let t = decode_short_lived_token(fixture!("exchange_data_shape.json")).unwrap();
    assert_eq!(t.access_token.expose_secret(), "IGAAx...short");
    assert_eq!(t.user_id, USER_ID);
    assert_eq!(
        t.permissions,
        [
            "instagram_business_basic",
            "instagram_business_manage_messages",
            "instagram_business_manage_comments",
            "instagram_business_content_publish"
        ]
    );
}

#[test]
fn exchange_observed_flat_shape() {
    let t = decode_short_lived_token(fixture!("exchange_flat_shape.json")).unwrap();
    assert_eq!(t.access_token.expose_secret(), "IGAAx...short");
    // 27640875392278831 > 2^53: an f64 path would give ...832.
    assert_eq!(t.user_id, USER_ID);
    assert_eq!(
        t.permissions,
        [
            "instagram_business_basic",
            "instagram_business_content_publish"
        ]
    );

    let t = decode_short_lived_token(fixture!("exchange_flat_go_test.json")).unwrap();
    assert_eq!(t.user_id, USER_ID);
    assert_eq!(t.permissions, ["instagram_business_basic"]);
}

#[test]
fn exchange_mixed_variants() {
    let t = decode_short_lived_token(fixture!("exchange_flat_string_id_string_permissions.json"))
        .unwrap();
    assert_eq!(t.user_id, USER_ID);
    assert_eq!(
        t.permissions,
        [
            "instagram_business_basic",
            "instagram_business_content_publish"
        ]
    );

    let t = decode_short_lived_token(fixture!("exchange_data_number_id_array_permissions.json"))
        .unwrap();
    assert_eq!(t.user_id, USER_ID);
    assert_eq!(t.permissions, ["instagram_business_basic"]);
}

#[test]
fn exchange_basic_display_without_permissions() {
    let t = decode_short_lived_token(fixture!("exchange_basic_display.json")).unwrap();
    assert_eq!(t.user_id, "17841405793187218");
    assert!(t.permissions.is_empty());
}

#[test]
fn seventeen_digit_id_is_not_rounded() {
    // The same id as a float would be 27640875392278832.
    assert_ne!(format!("{}", 27640875392278831_u64 as f64), USER_ID);
    let t =
        decode_short_lived_token(br#"{"access_token":"x","user_id":27640875392278831}"#).unwrap();
    assert_eq!(t.user_id, USER_ID);
    let t =
        decode_short_lived_token(br#"{"access_token":"x","user_id":"27640875392278831"}"#).unwrap();
    assert_eq!(t.user_id, USER_ID);
    assert!(
        decode_short_lived_token(br#"{"access_token":"x","user_id":2.7640875392278831e16}"#)
            .is_err()
    );
}

#[test]
fn exchange_error_is_flat_oauth() {
    let e = Error::from_response(400, fixture!("exchange_error.json"), Usage::default());
    match e {
        Error::OAuth {
            error_type,
            code,
            message,
        } => {
            assert_eq!(error_type, "OAuthException");
            assert_eq!(code, 400);
            assert_eq!(message, "Matching code was not found or was already used");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn long_lived_and_refresh() {
    let t = decode_long_lived_token(fixture!("long_lived.json")).unwrap();
    assert_eq!(t.access_token.expose_secret(), "IGAAx...long");
    assert_eq!(t.token_type.as_deref(), Some("bearer"));
    assert_eq!(t.expires_in, 5_183_944);

    let t = decode_long_lived_token(fixture!("refresh.json")).unwrap();
    assert_eq!(t.access_token.expose_secret(), "IGAAx...long2");

    let t = decode_long_lived_token(fixture!("long_lived_without_token_type.json")).unwrap();
    assert_eq!(t.token_type, None);
    assert_eq!(t.expires_in, 5_184_000);
}

#[test]
fn me_profile() {
    let p: Profile = serde_json::from_slice(fixture!("me.json")).unwrap();
    assert_eq!(p.id, USER_ID);
    assert_eq!(p.user_id.as_deref(), Some("17841400000000001"));
    assert_eq!(p.username.as_deref(), Some("acme_shop"));
    assert_eq!(p.name.as_deref(), Some("Acme Shop"));
    assert_eq!(p.account_type.as_deref(), Some("BUSINESS"));
    assert_eq!(
        p.profile_picture_url.as_deref(),
        Some("https://scontent.example/pp.jpg")
    );
    assert_eq!(
        (p.followers_count, p.follows_count, p.media_count),
        (Some(1234), Some(56), Some(42))
    );
}

#[test]
fn media_page_with_paging() {
    let page: Page<Media> = serde_json::from_slice(fixture!("media_page.json")).unwrap();
    let m = &page.data[0];
    assert_eq!(m.id, "17895695668004550");
    assert_eq!(m.caption.as_deref(), Some("Launch day"));
    assert_eq!(m.media_type.as_deref(), Some("IMAGE"));
    assert_eq!(m.media_product_type.as_deref(), Some("FEED"));
    assert_eq!(m.timestamp.as_deref(), Some("2026-05-02T10:15:00+0000"));
    assert_eq!((m.like_count, m.comments_count), (Some(12), Some(3)));
    assert_eq!(page.after_cursor(), Some("QVFIUmlKdXBzYWtyUml3"));
    assert_eq!(
        page.next_url(),
        Some(
            "https://graph.instagram.com/v25.0/17841400000000001/media?fields=id,caption&limit=25&after=QVFIUmlKdXBzYWtyUml3"
        )
    );
}

#[test]
fn publishing_payloads() {
    let created: serde_json::Value =
        serde_json::from_slice(fixture!("container_created.json")).unwrap();
    assert_eq!(created["id"], "17920001001");
    let published: serde_json::Value =
        serde_json::from_slice(fixture!("media_published.json")).unwrap();
    assert_eq!(published["id"], "17900001029");

    let s: ContainerStatus =
        serde_json::from_slice(fixture!("container_status_finished.json")).unwrap();
    assert_eq!(s.status_code, Some(ContainerStatusCode::Finished));
    assert_eq!(s.id, "17920001001");
    let s: ContainerStatus =
        serde_json::from_slice(fixture!("container_status_in_progress.json")).unwrap();
    assert_eq!(s.status_code, Some(ContainerStatusCode::InProgress));
    let s: ContainerStatus =
        serde_json::from_slice(fixture!("container_status_error.json")).unwrap();
    assert_eq!(s.status_code, Some(ContainerStatusCode::Error));
    assert_eq!(s.error_code(), Some(2_207_026));

    let limit: Page<PublishingLimit> =
        serde_json::from_slice(fixture!("content_publishing_limit.json")).unwrap();
    let limit = &limit.data[0];
    assert_eq!(limit.quota_usage, Some(2));
    let config = limit.config.as_ref().unwrap();
    assert_eq!(
        (config.quota_total, config.quota_duration),
        (Some(50), Some(86_400))
    );
    assert_eq!(limit.remaining(), Some(48));

    // Meta's current sample asks for `rate_limit_settings`, which answers the same object.
    let limit: Page<PublishingLimit> = serde_json::from_slice(fixture!(
        "content_publishing_limit_rate_limit_settings.json"
    ))
    .unwrap();
    let limit = &limit.data[0];
    assert!(limit.config.is_none());
    let settings = limit.settings().unwrap();
    assert_eq!(
        (settings.quota_total, settings.quota_duration),
        (Some(100), Some(86_400))
    );
    assert_eq!(limit.remaining(), Some(98));
}

#[test]
fn insights_both_shapes() {
    let metrics: Vec<Insight> = decode_insights(fixture!("insights.json")).unwrap();
    assert_eq!(metrics.len(), 2);
    assert_eq!(metrics[0].name, "reach");
    assert_eq!(metrics[0].total_value.as_ref().unwrap().value, 120);
    assert_eq!(metrics[0].total(), Some(120));
    assert!(metrics[0].values.is_empty());
    assert_eq!(metrics[1].name, "follower_count");
    assert_eq!(metrics[1].values[0].as_i64(), Some(4));
    assert_eq!(
        metrics[1].values[0].end_time.as_deref(),
        Some("2026-05-02T07:00:00+0000")
    );
    assert_eq!(metrics[1].total(), Some(4));
}

#[test]
fn usage_headers() {
    let usage = Usage::parse(
        Some(
            std::str::from_utf8(fixture!("x_app_usage.txt"))
                .unwrap()
                .trim(),
        ),
        Some(
            std::str::from_utf8(fixture!("x_business_use_case_usage.txt"))
                .unwrap()
                .trim(),
        ),
    );
    let app = usage.app.as_ref().unwrap();
    assert_eq!(
        (app.call_count, app.total_time, app.total_cputime),
        (Some(28), Some(25), Some(25))
    );
    let b = &usage.business[0];
    assert_eq!(b.business_id, "17841400000000001");
    assert_eq!(b.usage_type.as_deref(), Some("instagram"));
    assert_eq!(
        (b.call_count, b.total_cputime, b.total_time),
        (Some(97), Some(23), Some(23))
    );
    assert_eq!(b.estimated_time_to_regain_access, Some(Duration::ZERO));
    assert_eq!(usage.regain_access_in(), None);
    assert_eq!(usage.max_percent(), Some(97));
}

fn graph_error(body: &[u8]) -> Error {
    Error::from_response(400, body, Usage::default())
}

#[test]
fn graph_error_envelopes_reauth() {
    let e = graph_error(fixture!("graph_error_expired.json"));
    match &e {
        Error::Reauth {
            code: 190,
            subcode: Some(463),
            reason: ReauthReason::Expired,
            message,
            details,
        } => {
            assert!(message.starts_with("Error validating access token: Session has expired"));
            assert_eq!(details.fbtrace_id.as_deref(), Some("AWpk5h2ceG6"));
            assert_eq!(details.error_type.as_deref(), Some("OAuthException"));
            assert_eq!(details.is_transient, Some(false));
            assert_eq!(details.http_status, Some(400));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.requires_reauth() && !e.is_transient());
    assert_eq!(e.graph_code(), Some(190));

    let cases: [(&[u8], ReauthReason); 5] = [
        (
            fixture!("graph_error_password_changed.json"),
            ReauthReason::PasswordChanged,
        ),
        (
            fixture!("graph_error_app_removed.json"),
            ReauthReason::AppRemoved,
        ),
        (
            fixture!("graph_error_invalid_token.json"),
            ReauthReason::Other,
        ),
        (
            fixture!("graph_error_cannot_parse.json"),
            ReauthReason::Other,
        ),
        (
            fixture!("graph_error_session_102.json"),
            ReauthReason::Other,
        ),
    ];
    for (body, reason) in cases {
        let e = graph_error(body);
        assert!(
            matches!(e, Error::Reauth { reason: r, .. } if r == reason),
            "{e:?}"
        );
    }
}

#[test]
fn graph_error_envelopes_bad_request() {
    for body in [
        &fixture!("graph_error_video_url_required.json")[..],
        fixture!("graph_error_object_missing.json"),
        fixture!("graph_error_unknown_object.json"),
        fixture!("graph_error_unknown_alias.json"),
        fixture!("graph_error_unknown_path.json"),
    ] {
        let e = graph_error(body);
        assert!(matches!(e, Error::BadRequest { .. }), "{e:?}");
        assert!(!e.is_transient() && !e.requires_reauth());
    }
    assert!(graph_error(fixture!("graph_error_unknown_object.json")).is_unknown_object());
    assert!(graph_error(fixture!("graph_error_unknown_alias.json")).is_unknown_object());
    let path = graph_error(fixture!("graph_error_unknown_path.json"));
    assert!(!path.is_unknown_object());
    assert_eq!(path.graph_code(), Some(2500));
    let e = graph_error(fixture!("graph_error_video_url_required.json"));
    assert!(
        matches!(e, Error::BadRequest { code: 100, ref message, .. } if message == "The parameter video_url is required")
    );
}

#[test]
fn unsupported_get_means_the_app_is_not_approved_for_the_account() {
    for body in [
        &fixture!("graph_error_not_approved_for_user.json")[..],
        fixture!("graph_error_unsupported_get.json"),
    ] {
        let e = graph_error(body);
        assert!(
            matches!(e, Error::AppNotApprovedForUser { code: 100, .. }),
            "{e:?}"
        );
        assert!(!e.is_transient() && !e.requires_reauth());
        assert_eq!(e.to_graph_envelope().unwrap()["error"]["code"], 100);
    }
}

#[test]
fn page_rate_limit_32_slows_down() {
    let e = graph_error(fixture!("graph_error_page_rate_limit.json"));
    assert!(matches!(e, Error::RateLimited { code: 32, .. }), "{e:?}");
    assert!(e.is_transient());
}

#[test]
fn graph_error_envelopes_publishing() {
    let cases: [(&[u8], PublishingErrorKind, bool); 5] = [
        (
            fixture!("graph_error_not_ready.json"),
            PublishingErrorKind::NotReady,
            true,
        ),
        (
            fixture!("graph_error_quota.json"),
            PublishingErrorKind::QuotaExceeded,
            false,
        ),
        (
            fixture!("graph_error_download_failed.json"),
            PublishingErrorKind::DownloadFailed,
            false,
        ),
        (
            fixture!("graph_error_server.json"),
            PublishingErrorKind::ServerError,
            true,
        ),
        (
            fixture!("graph_error_media_too_large.json"),
            PublishingErrorKind::InvalidMedia,
            false,
        ),
    ];
    for (body, kind, transient) in cases {
        let e = graph_error(body);
        assert!(
            matches!(e, Error::Publishing { kind: k, .. } if k == kind),
            "{e:?}"
        );
        assert_eq!(e.is_transient(), transient, "{e:?}");
    }
    let e = graph_error(fixture!("graph_error_not_ready.json"));
    assert_eq!((e.graph_code(), e.subcode()), (Some(9007), Some(2_207_027)));
    assert_eq!(
        e.details().unwrap().user_message.as_deref(),
        Some("The media is not ready for publishing, please wait for a moment")
    );
}

#[test]
fn graph_error_envelopes_rate_limits_and_transient() {
    for body in [
        &fixture!("graph_error_buc_rate_limit.json")[..],
        fixture!("graph_error_user_rate_limit.json"),
        fixture!("graph_error_custom_rate_limit.json"),
    ] {
        let e = graph_error(body);
        assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
        assert!(e.is_transient());
    }
    let usage = Usage::parse(
        None,
        Some(
            r#"{"17841400000000001":[{"type":"instagram","call_count":100,"estimated_time_to_regain_access":12}]}"#,
        ),
    );
    let e = Error::from_response(400, fixture!("graph_error_buc_rate_limit.json"), usage);
    assert!(
        matches!(e, Error::RateLimited { code: 80002, retry_after: Some(d), .. } if d == Duration::from_secs(720))
    );
    assert_eq!(e.usage().unwrap().max_percent(), Some(100));

    for body in [
        &fixture!("graph_error_unknown_transient.json")[..],
        fixture!("graph_error_policy_block.json"),
    ] {
        let e = graph_error(body);
        assert!(matches!(e, Error::Transient { .. }), "{e:?}");
        assert!(e.is_transient());
    }
}

#[test]
fn graph_error_envelopes_permissions() {
    let e = graph_error(fixture!("graph_error_missing_permission.json"));
    assert!(
        matches!(e, Error::MissingPermission { code: 200, permission: Some(ref p), .. } if p == "instagram_business_manage_insights"),
        "{e:?}"
    );
    let e = graph_error(fixture!("graph_error_permission_denied.json"));
    assert!(
        matches!(
            e,
            Error::MissingPermission {
                code: 10,
                permission: None,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn subscribed_apps_success_body() {
    let v: serde_json::Value =
        serde_json::from_slice(fixture!("subscribed_apps_success.json")).unwrap();
    assert_eq!(v["success"], true);
}

#[test]
fn numeric_ids_survive_flattened_structs() {
    // Media and Comment collect unknown fields with `#[serde(flatten)]`, which buffers values.
    let m: Media =
        serde_json::from_str(r#"{"id":27640875392278831,"owner":{"id":17841400000000001},"x":1}"#)
            .unwrap();
    assert_eq!(m.id, USER_ID);
    assert_eq!(m.owner.unwrap().id, "17841400000000001");
    assert_eq!(m.extra["x"], 1);
    let c: instagram_api::Comment = serde_json::from_str(
        r#"{"id":27640875392278831,"parent_id":27640875392278832,"from":{"id":1,"username":"u"}}"#,
    )
    .unwrap();
    assert_eq!(c.id, USER_ID);
    assert_eq!(c.parent_id.as_deref(), Some("27640875392278832"));
}
