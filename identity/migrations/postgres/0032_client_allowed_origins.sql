-- The browser origins a public client's pages call the token endpoint from (CORS): a JSON
-- list of serialized origins (`https://app.example`). Empty: no browser origin may.
ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
