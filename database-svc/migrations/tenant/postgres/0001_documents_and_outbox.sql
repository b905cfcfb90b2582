CREATE TABLE collections (name TEXT PRIMARY KEY, schema JSONB, created_at BIGINT NOT NULL);
CREATE TABLE documents (
    collection TEXT NOT NULL, id TEXT NOT NULL, body JSONB NOT NULL,
    version BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
    PRIMARY KEY (collection, id));
CREATE TABLE doc_indexes (
    collection TEXT NOT NULL, name TEXT NOT NULL, field TEXT NOT NULL,
    sql_name TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL,
    PRIMARY KEY (collection, name));
CREATE TABLE changes (
    seq BIGINT PRIMARY KEY, collection TEXT NOT NULL, doc_id TEXT, op TEXT NOT NULL,
    version BIGINT, body JSONB, at BIGINT NOT NULL);
CREATE TABLE feed_seq (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL);
INSERT INTO feed_seq (id, seq) VALUES (1, 0);
