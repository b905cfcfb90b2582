-- RP-initiated logout: where a client may send the browser after sign-out (JSON array).
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
