-- The figures behind the English sentences of deadline events, alerts, network findings and
-- audit entries, as JSON (see src/details.rs and network::Evidence). The dashboard renders
-- them in the page's language; the sentences stay for the CLI and the API. Rows written
-- before this migration have none (NULL) and keep their sentence.
ALTER TABLE deadline_events ADD COLUMN facts TEXT;
ALTER TABLE alerts ADD COLUMN facts TEXT;
ALTER TABLE network_findings ADD COLUMN facts TEXT;
ALTER TABLE audit_log ADD COLUMN facts TEXT;
