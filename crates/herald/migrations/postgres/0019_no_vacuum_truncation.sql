-- A vacuum ends by giving the empty pages at a table's end back to the file system, which
-- takes the table's strongest lock: it retries every 50 ms while claims and records hold
-- theirs, and once it has it, every claim and record waits for it. `leases` empties its pages
-- many times a second and fills them again a moment later (measured under full load: each
-- VACUUM of it took 350 ms, 1.8 ms with its pages kept); `deliveries` empties its end when
-- retention has purged everything delivered. Their pages are kept instead.
ALTER TABLE leases SET (vacuum_truncate = false);
ALTER TABLE deliveries SET (vacuum_truncate = false);
