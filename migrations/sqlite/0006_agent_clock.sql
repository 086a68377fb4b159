-- The agent's clock offset (daemon clock - agent clock, seconds) at its last request.
ALTER TABLE agents ADD COLUMN clock_offset_secs INTEGER;
