-- The Umbraco identity a request was forwarded as when `[upstream.credential]` replaced the
-- caller's credential (the API user's client id); NULL when the caller's own went upstream.
ALTER TABLE audit_events ADD COLUMN IF NOT EXISTS upstream_identity text;
