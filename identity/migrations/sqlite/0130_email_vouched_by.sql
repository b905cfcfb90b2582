-- Who proved the account's address: NULL when proven by mail (it counts for every tenant), else
-- the tenant whose own external provider vouched for it (it counts for that tenant only).
ALTER TABLE users ADD COLUMN email_vouched_by TEXT;
