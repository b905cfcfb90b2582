-- The DPoP key a public client's refresh token family is bound to (RFC 9449 §5).
ALTER TABLE refresh_families ADD COLUMN dpop_jkt TEXT;
