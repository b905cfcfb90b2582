CREATE TABLE collections (name TEXT PRIMARY KEY, schema TEXT, created_at INTEGER NOT NULL);
CREATE TABLE documents (
    collection TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL,
    version INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (collection, id)) WITHOUT ROWID;
CREATE TABLE doc_indexes (
    collection TEXT NOT NULL, name TEXT NOT NULL, field TEXT NOT NULL,
    sql_name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,
    PRIMARY KEY (collection, name));
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY, collection TEXT NOT NULL, doc_id TEXT, op TEXT NOT NULL,
    version INTEGER, body TEXT, at INTEGER NOT NULL);
CREATE TABLE feed_seq (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
INSERT INTO feed_seq (id, seq) VALUES (1, 0);
