"""The unsubscribe links' signing key of the tests: long enough for the processes to accept
(they refuse short keys and the samples' placeholders)."""

SIGNING_KEY = "fmn-tests-signing-key-0123456789abcdefghij"

# The tests' VAPID (Web Push) private key: base64url of a P-256 private number, made for the
# tests only.
VAPID_KEY = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
