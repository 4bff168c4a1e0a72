//! Closed sets of label values, as enums: call sites name a variant, never
//! type a label string, and the exported set is derived from the enum.

/// An enum whose variants are label values: `ALL`, `as_str` and `labels`.
macro_rules! label_values {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }

            /// Every label value, for creating the series at zero.
            pub fn labels() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.as_str()).collect()
            }
        }
    };
}

label_values! {
    /// The `result` of an offset commit or a checkpoint.
    Attempt { Ok => "ok", Failed => "failed" }
}

label_values! {
    /// What restoring found at start (`engagement_checkpoint_restores_total`).
    Restore { Restored => "restored", Discarded => "discarded", None => "none" }
}

label_values! {
    /// The topic a produced message is for (the `kind` label).
    Topic { DeadLetter => "dead_letter", RankEvent => "rank_event" }
}

label_values! {
    /// What became of a produced message (the `result` label).
    Delivery { Queued => "queued", Dropped => "dropped", Delivered => "delivered", Failed => "failed" }
}

label_values! {
    /// Why a request was refused by basic auth (`engagement_http_auth_failures_total`):
    /// no `Authorization` header; one that is not `Basic` with base64 of
    /// `user:password`; an unknown user or a wrong password.
    AuthFailure { Missing => "missing", Malformed => "malformed", Wrong => "wrong" }
}

label_values! {
    /// Why a TLS handshake did not complete (`engagement_http_tls_handshake_failures_total`):
    /// refused by either side (no TLS spoken, an untrusted certificate, a
    /// missing client certificate) or not done within `http.header_timeout`.
    HandshakeFailure { Failed => "failed", TimedOut => "timed_out" }
}
