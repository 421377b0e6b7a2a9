"""The unsubscribe links' signing key of the tests: long enough for the processes to accept
(they refuse short keys and the samples' placeholders)."""

SIGNING_KEY = "fmn-tests-signing-key-0123456789abcdefghij"
