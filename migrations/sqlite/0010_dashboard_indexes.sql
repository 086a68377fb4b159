-- Indexes the web dashboard's scoped queries use: a department's projects, a VM's deadlines and
-- alerts, a deadline's e-mails, and a department's network rows, without scanning the tables.
CREATE INDEX projects_department ON projects (department_id);
CREATE INDEX deadlines_vm ON deadlines (vm_key);
CREATE INDEX outbox_deadline ON outbox (deadline_id);
CREATE INDEX alerts_vm ON alerts (vm_key);
CREATE INDEX network_findings_department ON network_findings (department_id);
CREATE INDEX ip_registry_department ON ip_registry (department_id);
-- The verdict grid groups every finding by (resource, verdict): read in index order, no sort.
CREATE INDEX findings_resource_verdict ON findings (resource, verdict);
