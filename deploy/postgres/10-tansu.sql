-- Run once by the postgres image on an empty data volume (as the POSTGRES_USER, a superuser):
-- one database per service store. database-svc creates each tenant's database and role itself.
CREATE DATABASE tansu_identity;
CREATE DATABASE tansu_database;
CREATE DATABASE tansu_storage;
