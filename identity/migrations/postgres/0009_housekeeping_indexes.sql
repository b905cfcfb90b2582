-- Indexes for logout (families of a session) and for purging expired state.
CREATE INDEX refresh_families_session ON refresh_families (session_id);
CREATE INDEX refresh_families_expires ON refresh_families (expires_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX client_assertions_expires ON client_assertions (expires_at);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);
