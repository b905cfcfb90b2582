-- The highest sequence number compaction removed: a follower behind it missed changes.
CREATE TABLE changes_floor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
INSERT INTO changes_floor (id, seq) VALUES (1, 0);
