-- Platform administrators (issue #4): only users with this flag may receive `admin.full`.
-- Dev mode sets it for the seeded `admin@tansu.local`.
ALTER TABLE users ADD COLUMN platform_admin BOOLEAN NOT NULL DEFAULT FALSE;
