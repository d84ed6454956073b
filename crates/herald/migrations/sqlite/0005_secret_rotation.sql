-- A rotated secret stays valid until previous_secret_until: calls carry a signature with
-- each valid secret, so receivers can switch without missing one.
ALTER TABLE endpoints ADD COLUMN previous_secret TEXT;
ALTER TABLE endpoints ADD COLUMN previous_secret_until INTEGER;
