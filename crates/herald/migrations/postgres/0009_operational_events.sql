-- DeliveryFailed is told at most once an hour per endpoint: when it last was, and how many
-- failed deliveries have not been told since.
ALTER TABLE endpoints ADD COLUMN failures_told_at BIGINT;
ALTER TABLE endpoints ADD COLUMN failures_untold BIGINT NOT NULL DEFAULT 0;
